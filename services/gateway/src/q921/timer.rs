//! Q.921 timers: one deadline slot per kind.

use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Retransmission / response wait (1 s).
    T200,
    /// Maximum time with no frame exchanged while established (10 s).
    T203,
}

impl Timer {
    pub const VALUES: [Timer; 2] = [Timer::T200, Timer::T203];
}

#[derive(Debug, Default)]
pub struct TimerTable {
    deadlines: [Option<Instant>; 2],
}

impl TimerTable {
    pub fn set(&mut self, timer: Timer, deadline: Instant) {
        self.deadlines[timer as usize] = Some(deadline);
    }

    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer as usize] = None;
    }

    pub fn is_running(&self, timer: Timer) -> bool {
        self.deadlines[timer as usize].is_some()
    }

    pub fn stop_all(&mut self) {
        self.deadlines = [None; 2];
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Clears and reports `timer` if it expired at `now`.
    pub fn expire(&mut self, timer: Timer, now: Instant) -> bool {
        match self.deadlines[timer as usize] {
            Some(at) if at <= now => {
                self.deadlines[timer as usize] = None;
                true
            }
            _ => false,
        }
    }
}
