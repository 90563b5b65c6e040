//! Phones the tests start. sipp plays scripted phones and carriers (`sipp`); three real SIP
//! stacks are driven through their consoles, each behind the `Phone` trait: baresip, twinkle
//! (console) and linphonec. What each needs to run headless here, and its quirks, is written
//! beside it:
//!
//! - baresip 1.0 (`baresip.rs`): no sound card needed (aubridge, ausine, sndfile modules);
//!   refuses a 401 that also offers SHA-256; unregisters only by deleting its account (`/uadel`).
//! - twinkle 1.10 (`twinkle.rs`, `twinkle-console`): its registrar and outbound proxy settings
//!   take no `sip:` prefix; one instance per HOME (a lock file), its profile and system settings
//!   in `$HOME/.twinkle`; ALSA's `null` device for sound, so it sends and hears only silence.
//! - linphonec 5.1 (`linphonec.rs`): its core leaves its startup state only when its database
//!   directory ($HOME/.local/share/linphone) exists; without it, it opens no SIP socket of its
//!   own and answers incoming INVITEs 503. It is used as a caller only. Over TLS (mbedtls) it
//!   matches the server's name against DNS names only. `soundcard use files` with
//!   `play`/`record` give it audio.
mod baresip;
mod console;
mod linphonec;
mod sipp;
mod twinkle;

pub use baresip::{Baresip, BaresipAudio, CARRIER_RTP_PORTS, PHONE_RTP_PORTS};
pub use console::Console;
pub use linphonec::{Linphonec, LINPHONEC_RTP_PORT};
pub use sipp::{call, Answerer, NsSipp};
pub use twinkle::Twinkle;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Who a phone is and where it registers.
pub struct PhoneConfig<'a> {
    pub user: &'a str,
    pub password: &'a str,
    pub domain: &'a str,
    /// The phone's SIP address (an address of its namespace).
    pub addr: SocketAddr,
    /// Where it sends REGISTERs (the SBA, or Kamailio directly).
    pub registrar: SocketAddr,
    pub expires: u32,
    /// Time between two registrations.
    pub refresh: Duration,
}

impl<'a> PhoneConfig<'a> {
    /// `user` on `addr` registering at `registrar` for 60 s, again every 30 s.
    pub fn new(user: &'a str, password: &'a str, domain: &'a str, addr: SocketAddr, registrar: SocketAddr) -> PhoneConfig<'a> {
        PhoneConfig { user, password, domain, addr, registrar, expires: 60, refresh: Duration::from_secs(30) }
    }
}

/// What a phone's console reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Incoming,
    /// A call, placed or taken, is answered.
    Connected,
    /// A call ended, by either side.
    Ended,
}

/// A SIP stack driven through its console.
pub trait Phone {
    fn terminal(&self) -> &Console;
    /// What its console prints for `event` (any of these, once per event).
    fn reports(&self, event: Event) -> &'static [&'static str];
    /// Calls `target`: a SIP URI or a number, through its registrar.
    fn dial(&mut self, target: &str);
    fn hang_up(&mut self);
    fn unregister(&mut self);

    /// How many times `event` was reported so far.
    fn count(&self, event: Event) -> usize {
        let text = self.terminal().text();
        self.reports(event).iter().map(|needle| text.matches(needle).count()).sum()
    }

    /// Waits until `event` has been reported more than `before` times, at most `within`.
    fn wait(&self, event: Event, before: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.count(event) > before {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}
