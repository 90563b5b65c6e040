//! Wall-clock time, read in one place. A service reads it at its edge; a sans-IO core is given a
//! `WallClock` once and the monotonic `now` of each call, and derives the wall time from them,
//! so it never reads a clock itself and runs under test at any time it is told.
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch now; zero on a clock set before 1970.
pub fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO)
}

/// `unix_now` in whole seconds, as the store keeps its times (SQLite integers).
pub fn unix_secs() -> i64 {
    i64::try_from(unix_now().as_secs()).unwrap_or(i64::MAX)
}

/// `unix_now` in milliseconds: the time base of the status snapshots.
pub fn unix_ms() -> u64 {
    u64::try_from(unix_now().as_millis()).unwrap_or(u64::MAX)
}

/// The wall clock's reading at one monotonic instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClock {
    at: Instant,
    unix: Duration,
}

impl WallClock {
    /// Both clocks read now (at the edge).
    pub fn read() -> WallClock {
        WallClock { at: Instant::now(), unix: unix_now() }
    }

    /// At `at` it was `unix` since the epoch.
    pub fn new(at: Instant, unix: Duration) -> WallClock {
        WallClock { at, unix }
    }

    /// The time since the Unix epoch at `now`.
    pub fn unix(&self, now: Instant) -> Duration {
        self.unix + now.saturating_duration_since(self.at)
    }

    pub fn unix_ms(&self, now: Instant) -> i64 {
        i64::try_from(self.unix(now).as_millis()).unwrap_or(i64::MAX)
    }

    pub fn system_time(&self, now: Instant) -> SystemTime {
        UNIX_EPOCH + self.unix(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wall_time_follows_the_monotonic_now() {
        let at = Instant::now();
        let clock = WallClock::new(at, Duration::from_secs(1_000));
        assert_eq!(clock.unix(at + Duration::from_millis(1500)), Duration::from_millis(1_001_500));
        assert_eq!(clock.unix_ms(at + Duration::from_secs(5)), 1_005_000);
        assert_eq!(clock.unix(at), Duration::from_secs(1_000), "never before its reading");
        assert_eq!(clock.system_time(at), UNIX_EPOCH + Duration::from_secs(1_000));
        assert!(unix_now() > Duration::from_secs(1_600_000_000));
    }
}
