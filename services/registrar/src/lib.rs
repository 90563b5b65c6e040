//! sba-registrar's pieces that others read: its configuration parser (sba-web's configuration
//! page checks `[registrar]`, `[central]`, `[survival]` and `[[directory]]` with it), the number
//! directory its checks use, and the routing decision over that directory (pure, sans-IO).
#![forbid(unsafe_code)]
pub mod config;
pub mod directory;
pub mod routing;
