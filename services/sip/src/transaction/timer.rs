//! RFC 3261 §17 timers: their names, their durations, and one transaction's deadlines.
use std::time::{Duration, Instant};

/// The timers of RFC 3261 §17 (Table 4 of Appendix A). C belongs to proxies, L and M to RFC 6026;
/// neither is used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE request retransmission (client, unreliable transports).
    A,
    /// INVITE transaction timeout (client); after a CANCEL it also bounds the wait for the
    /// final response (§9.1).
    B,
    /// Wait time for response retransmissions after a non-2xx final response (client INVITE).
    D,
    /// Non-INVITE request retransmission (client, unreliable transports).
    E,
    /// Non-INVITE transaction timeout (client).
    F,
    /// INVITE final response retransmission (server, unreliable transports).
    G,
    /// Wait time for the ACK (server INVITE).
    H,
    /// Wait time for ACK retransmissions (server INVITE).
    I,
    /// Wait time for request retransmissions (server non-INVITE).
    J,
    /// Wait time for response retransmissions (client non-INVITE).
    K,
    /// Sends the 100 (Trying) of an INVITE its TU has not answered within 200 ms (server
    /// INVITE, §17.2.1): a TU that answers sooner saves the datagram.
    Trying,
}

impl Timer {
    const COUNT: usize = 11;
    /// On a tie the timers that end a transaction come first: no retransmission at the
    /// instant the transaction times out.
    const ALL: [Timer; Timer::COUNT] = [
        Timer::B,
        Timer::D,
        Timer::F,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::A,
        Timer::E,
        Timer::G,
        Timer::Trying,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// T1, T2 and T4 of RFC 3261 §17; every other duration derives from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    t1: Duration,
    t2: Duration,
    t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

impl TimerConfig {
    /// A zero T1 or T2 would make retransmission timers fire forever at the same instant, so
    /// both are at least a millisecond.
    pub fn new(t1: Duration, t2: Duration, t4: Duration) -> Self {
        let floor = Duration::from_millis(1);
        TimerConfig { t1: t1.max(floor), t2: t2.max(floor), t4 }
    }

    /// RTT estimate: the first retransmission interval.
    pub fn t1(&self) -> Duration {
        self.t1
    }

    /// Cap on retransmission intervals of non-INVITE requests and INVITE responses.
    pub fn t2(&self) -> Duration {
        self.t2
    }

    /// Maximum time a message stays in the network.
    pub fn t4(&self) -> Duration {
        self.t4
    }

    /// How long a server INVITE transaction leaves its TU to answer before it sends 100 (Trying)
    /// itself: 200 ms (§17.2.1).
    pub fn trying_after(&self) -> Duration {
        Duration::from_millis(200)
    }

    /// Timers B, F, H and J.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: at least 32 s on unreliable transports, zero on reliable ones.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            Duration::from_secs(32).max(self.transaction_timeout())
        }
    }

    /// Timers I and K: T4 on unreliable transports, zero on reliable ones.
    pub fn wait_t4(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }

    /// Timer J: 64*T1 on unreliable transports, zero on reliable ones.
    pub fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.transaction_timeout()
        }
    }
}

/// The armed deadlines of one transaction.
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; Timer::COUNT],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    pub(crate) fn stop_all(&mut self) {
        self.deadlines = [None; Timer::COUNT];
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns the earliest timer due at `now`, so a caller can fire them in order.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let timer = Timer::ALL
            .into_iter()
            .filter(|t| self.deadlines[t.index()].is_some_and(|at| at <= now))
            .min_by_key(|t| self.deadlines[t.index()])?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_timers_pop_earliest_first() {
        let now = Instant::now();
        let mut table = TimerTable::default();
        table.set(Timer::F, now + Duration::from_secs(32));
        table.set(Timer::E, now + Duration::from_millis(500));
        assert_eq!(table.next_timeout(), Some(now + Duration::from_millis(500)));
        assert_eq!(table.pop_expired(now), None);
        let later = now + Duration::from_secs(40);
        assert_eq!(table.pop_expired(later), Some(Timer::E));
        assert_eq!(table.pop_expired(later), Some(Timer::F));
        assert_eq!(table.pop_expired(later), None);
        assert_eq!(table.next_timeout(), None);
    }
}
