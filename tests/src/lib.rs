//! Support for the integration tests: locating the built binaries, scratch directories, and driving
//! the real peers (sipp, baresip, Kamailio, qemu) that the tests start themselves.
#![forbid(unsafe_code)]
pub mod audio;
pub mod bins;
pub mod branch;
pub mod carrier;
pub mod kamailio;
pub mod local;
pub mod netns;
pub mod no_new_connections;
pub mod phones;
pub mod pki;
pub mod ports;
pub mod registrar;
pub mod scratch;
pub mod sip_client;
pub mod sip_probe;
pub mod sipp;
pub mod stub_central;
pub mod tls_client;
pub mod vm;
pub mod wait;
pub mod web;
pub mod webdriver;
pub mod wire;
