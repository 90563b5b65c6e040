//! sba-registrar's pieces that others read: its configuration parser (sba-web's configuration
//! page checks `[registrar]`, `[central]`, `[survival]` and `[[directory]]` with it), and the
//! number directory and routing decision that parser's checks and the server share.
pub mod config;
pub mod directory;
pub mod routing;
