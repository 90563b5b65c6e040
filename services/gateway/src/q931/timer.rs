//! Q.931 call timers (§9.1/9.2). One runs per call at a time, so a call keeps a single slot.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallTimer {
    /// SETUP sent, waiting for any answer.
    T303,
    /// DISCONNECT sent, waiting for RELEASE or DISCONNECT.
    T305,
    /// RELEASE sent, waiting for RELEASE COMPLETE or RELEASE.
    T308,
    /// CALL PROCEEDING received, waiting for ALERTING, CONNECT or DISCONNECT.
    T310,
    /// CONNECT sent (user side), waiting for CONNECT ACK.
    T313,
}

impl CallTimer {
    pub fn duration(self) -> Duration {
        Duration::from_secs(match self {
            CallTimer::T303 => 4,
            CallTimer::T305 => 30,
            CallTimer::T308 => 4,
            CallTimer::T310 => 10,
            CallTimer::T313 => 4,
        })
    }
}
