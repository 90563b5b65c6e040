//! Service plumbing shared by sba-registrar, sba-mediation and sba-gateway.
#![forbid(unsafe_code)]
mod clock;
pub mod config;
mod limits;
mod logging;
mod notify;

pub use clock::{unix_ms, unix_now, unix_secs, WallClock};
pub use limits::raise_open_files_limit;
pub use logging::init_logging;
pub use notify::{Notifier, NotifyError};

/// The database when no configuration names one: under the working directory, as a laptop run
/// (image/run-local) keeps it. The appliance's sba.toml names /var/lib/sba/sba.db. The services'
/// status files are beside it.
pub const DEFAULT_DB: &str = "./var/sba.db";
