//! Support for the integration tests: locating the built binaries, scratch directories, and driving
//! the real peers (sipp, baresip, Kamailio, qemu) that the tests start themselves.
pub mod vm;
