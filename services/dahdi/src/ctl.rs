//! DAHDI's control device, /dev/dahdi/ctl: span status and the configuration dahdi_cfg would
//! apply (line settings, channel signalling, startup).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::raw::c_int;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::ioctl;
use crate::structs::{ChanConfig, LineConfig, Params, SpanInfo};
use crate::DahdiError;

const CTL_DEVICE: &str = "/dev/dahdi/ctl";

pub struct Ctl {
    fd: OwnedFd,
}

impl Ctl {
    /// Fails with ENOENT while the dahdi module is not loaded (no card's driver has pulled it in).
    pub fn open() -> Result<Ctl, DahdiError> {
        let fd = open(CTL_DEVICE, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| DahdiError::Open(CTL_DEVICE, e))?;
        Ok(Ctl { fd })
    }

    fn raw(&self) -> c_int {
        self.fd.as_raw_fd()
    }

    /// The span's state; EINVAL when no driver has registered span `spanno`.
    pub fn span_info(&self, spanno: c_int) -> Result<SpanInfo, DahdiError> {
        let mut info = SpanInfo::for_span(spanno);
        // SAFETY: valid fd, pointer to a live packed SpanInfo of the encoded size.
        unsafe { ioctl::span_stat(self.raw(), &mut info) }
            .map_err(|errno| DahdiError::SpanIoctl { name: "DAHDI_SPANSTAT", spanno, errno })?;
        Ok(info)
    }

    /// Channel `channo`'s parameters; `master` is its master channel (itself unless a slave).
    pub fn channel_params(&self, channo: c_int) -> Result<(Params, c_int), DahdiError> {
        let mut params = Params::for_channel(channo | ioctl::GET_PARAMS_RETURN_MASTER);
        // SAFETY: valid fd, pointer to a live Params of the encoded size.
        unsafe { ioctl::get_params(self.raw(), &mut params) }
            .map_err(|errno| DahdiError::Ioctl { name: "DAHDI_GET_PARAMS", channo, errno })?;
        let master = params.channo >> 16;
        Ok((params, master))
    }

    pub fn configure_span(&self, line: &LineConfig) -> Result<(), DahdiError> {
        // SAFETY: valid fd, pointer to a live LineConfig the kernel only reads.
        unsafe { ioctl::span_config(self.raw(), line) }
            .map_err(|errno| DahdiError::SpanIoctl { name: "DAHDI_SPANCONFIG", spanno: line.span, errno })?;
        Ok(())
    }

    pub fn configure_channel(&self, chan: &ChanConfig) -> Result<(), DahdiError> {
        // SAFETY: valid fd, pointer to a live ChanConfig the kernel only reads.
        unsafe { ioctl::chan_config(self.raw(), chan) }
            .map_err(|errno| DahdiError::Ioctl { name: "DAHDI_CHANCONFIG", channo: chan.chan, errno })?;
        Ok(())
    }

    /// Starts the span (a running span is left as it is).
    pub fn start_span(&self, spanno: c_int) -> Result<(), DahdiError> {
        // SAFETY: valid fd, pointer to a live int.
        unsafe { ioctl::startup(self.raw(), &spanno) }
            .map_err(|errno| DahdiError::SpanIoctl { name: "DAHDI_STARTUP", spanno, errno })?;
        Ok(())
    }
}
