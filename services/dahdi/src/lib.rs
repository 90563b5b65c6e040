//! Binding to the kernel's DAHDI interface (include/dahdi/user.h) through nix: the one crate of
//! Holdfast with unsafe code (each ioctl is a call into the kernel with a pointer), kept here so
//! that every other crate forbids it.

mod channel;
mod ctl;
mod event;
pub mod ioctl;
mod structs;

pub use channel::{Channel, Io, Law, AUDIO_BLOCK};
pub use ctl::Ctl;
pub use event::Event;
pub use structs::{BufferInfo, ChanConfig, LineConfig, Params, SpanInfo};

use std::os::raw::c_int;

use nix::errno::Errno;

#[derive(Debug, thiserror::Error)]
pub enum DahdiError {
    #[error("open {0}: {1}")]
    Open(&'static str, Errno),
    #[error("{name} on channel {channo}: {errno}")]
    Ioctl { name: &'static str, channo: c_int, errno: Errno },
    #[error("{name} on span {spanno}: {errno}")]
    SpanIoctl { name: &'static str, spanno: c_int, errno: Errno },
    #[error("{op} on channel {channo}: {errno}")]
    Io { op: &'static str, channo: c_int, errno: Errno },
    #[error("registering the channel with the reactor: {0}")]
    Register(std::io::Error),
    #[error("polling the channel: {0}")]
    Poll(std::io::Error),
    #[error("reading {path}")]
    Sysfs { path: String, source: std::io::Error },
}
