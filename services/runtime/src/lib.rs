//! Service plumbing shared by sba-registrar, sba-mediation and sba-gateway.
pub mod config;
mod logging;
mod notify;

pub use logging::init_logging;
pub use notify::{Notifier, NotifyError};
