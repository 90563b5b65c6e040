//! Q.931 timers (§9.1/9.2). One runs per call at a time, so a call keeps a single slot; the
//! restart procedure's T316 runs per RESTART outstanding, outside any call.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallTimer {
    /// SETUP ACKNOWLEDGE sent: waiting for the next INFORMATION with digits. Q.931 runs it on the
    /// network side; the user side collecting digits runs it too, as its digit timeout.
    T302,
    /// SETUP sent, waiting for any answer.
    T303,
    /// DISCONNECT sent, waiting for RELEASE or DISCONNECT.
    T305,
    /// RELEASE sent, waiting for RELEASE COMPLETE or RELEASE.
    T308,
    /// The data link failed while the call was active: kept this long for the link to return.
    T309,
    /// CALL PROCEEDING received, waiting for ALERTING, CONNECT or DISCONNECT.
    T310,
    /// CONNECT sent (user side), waiting for CONNECT ACK.
    T313,
}

impl CallTimer {
    pub fn duration(self) -> Duration {
        Duration::from_secs(match self {
            CallTimer::T302 => 15,
            CallTimer::T303 => 4,
            CallTimer::T305 => 30,
            CallTimer::T308 => 4,
            CallTimer::T309 => 6,
            CallTimer::T310 => 10,
            CallTimer::T313 => 4,
        })
    }
}

/// RESTART sent, waiting for RESTART ACKNOWLEDGE (§5.5.1).
pub const T316: Duration = Duration::from_secs(120);
/// RESTARTs sent for one channel before it is left out of service and the failure reported.
pub const RESTART_ATTEMPTS: u8 = 2;
