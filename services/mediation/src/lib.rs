//! sba-mediation: the branch's Mediation Server. It stands between the registrar and the PSTN
//! side (the local gateway, carrier SIP trunks, an IP-PBX over direct SIP).
//!
//! `numbers` normalizes dialled numbers to E.164 per the dial plan, `routing` decides which
//! PSTN usage, route and trunks a user's call takes (pure, no I/O), `config` reads the
//! `[mediation]` section of /etc/sba/sba.toml.
#![forbid(unsafe_code)]
pub mod config;
pub mod numbers;
pub mod routing;
pub mod srtp_policy;
pub mod b2bua;
pub mod health;
pub mod media_ip;
pub mod relay_media;
pub mod server;
pub mod status;
pub mod registration;
pub mod tls;
pub mod trust;
