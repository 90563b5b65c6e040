//! Service plumbing shared by sba-registrar, sba-mediation and sba-gateway.
pub mod config;
mod limits;
mod logging;
mod notify;

pub use limits::raise_open_files_limit;
pub use logging::init_logging;
pub use notify::{Notifier, NotifyError};
