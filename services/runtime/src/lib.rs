//! Service plumbing shared by sba-registrar, sba-mediation and sba-gateway.
#![forbid(unsafe_code)]
mod clock;
pub mod config;
mod limits;
mod logging;
mod notify;

pub use clock::{unix_ms, unix_now, WallClock};
pub use limits::raise_open_files_limit;
pub use logging::init_logging;
pub use notify::{Notifier, NotifyError};
