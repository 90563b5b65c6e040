//! One DAHDI channel opened through /dev/dahdi/channel and driven by tokio's AsyncFd.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::raw::c_int;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use tokio::io::unix::AsyncFd;
use tokio::io::{Interest, Ready};

use crate::event::Event;
use crate::ioctl;
use crate::structs::{BufferInfo, Params, SpanInfo};
use crate::DahdiError;

const CHANNEL_DEVICE: &str = "/dev/dahdi/channel";

/// errno of read()/write() while an event waits in the channel's queue (DAHDI's ELAST).
const ELAST: i32 = 500;

/// 20 ms of G.711 at 8 kHz.
pub const AUDIO_BLOCK: c_int = 160;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    Mulaw = 1,
    Alaw = 2,
}

/// What a read or write on a channel came back with.
#[derive(Debug, PartialEq, Eq)]
pub enum Io {
    Done(usize),
    /// An event was queued; it has been fetched and the data operation should be retried.
    Event(Event),
}

pub struct Channel {
    fd: AsyncFd<OwnedFd>,
    channo: c_int,
}

impl Channel {
    /// Opens channel `channo` (global DAHDI number). Needs a tokio runtime.
    pub fn open(channo: c_int) -> Result<Channel, DahdiError> {
        let fd = open(
            CHANNEL_DEVICE,
            OFlag::O_RDWR | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| DahdiError::Open(CHANNEL_DEVICE, e))?;
        // SAFETY: fd is open and the argument is a valid int the kernel only reads.
        unsafe { ioctl::specify(fd.as_raw_fd(), &channo) }
            .map_err(|e| DahdiError::Ioctl { name: "DAHDI_SPECIFY", channo, errno: e })?;
        let interest = Interest::READABLE | Interest::WRITABLE | Interest::PRIORITY;
        // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open and the same for its lifetime.
        let fd = unsafe { AsyncFd::register_with_interest(fd, interest) }
            .map_err(|e| DahdiError::Register(e.into()))?;
        Ok(Channel { fd, channo })
    }

    pub fn channo(&self) -> c_int {
        self.channo
    }

    fn raw(&self) -> c_int {
        self.fd.get_ref().as_raw_fd()
    }

    fn failed(&self, name: &'static str) -> impl FnOnce(Errno) -> DahdiError {
        let channo = self.channo;
        move |errno| DahdiError::Ioctl { name, channo, errno }
    }

    pub fn set_blocksize(&self, size: c_int) -> Result<(), DahdiError> {
        // SAFETY: valid fd, pointer to a live int.
        unsafe { ioctl::set_blocksize(self.raw(), &size) }.map_err(self.failed("DAHDI_SET_BLOCKSIZE"))?;
        Ok(())
    }

    pub fn blocksize(&self) -> Result<c_int, DahdiError> {
        let mut size: c_int = 0;
        // SAFETY: valid fd, pointer to a live int the kernel writes.
        unsafe { ioctl::get_blocksize(self.raw(), &mut size) }.map_err(self.failed("DAHDI_GET_BLOCKSIZE"))?;
        Ok(size)
    }

    pub fn set_law(&self, law: Law) -> Result<(), DahdiError> {
        let law = law as c_int;
        // SAFETY: valid fd, pointer to a live int.
        unsafe { ioctl::set_law(self.raw(), &law) }.map_err(self.failed("DAHDI_SETLAW"))?;
        Ok(())
    }

    /// Buffer count and size with the immediate policy, as HDLC D-channels want (many small frames).
    pub fn set_buffers(&self, numbufs: c_int, bufsize: c_int) -> Result<(), DahdiError> {
        let mut info = BufferInfo::default();
        // SAFETY: valid fd, pointer to a live BufferInfo of the size the ioctl encodes.
        unsafe { ioctl::get_bufinfo(self.raw(), &mut info) }.map_err(self.failed("DAHDI_GET_BUFINFO"))?;
        info.txbufpolicy = 0;
        info.rxbufpolicy = 0;
        info.numbufs = numbufs;
        info.bufsize = bufsize;
        // SAFETY: as above, the kernel only reads it.
        unsafe { ioctl::set_bufinfo(self.raw(), &info) }.map_err(self.failed("DAHDI_SET_BUFINFO"))?;
        Ok(())
    }

    pub fn flush(&self) -> Result<(), DahdiError> {
        // SAFETY: valid fd, pointer to a live int.
        unsafe { ioctl::flush(self.raw(), &ioctl::FLUSH_ALL) }.map_err(self.failed("DAHDI_FLUSH"))?;
        Ok(())
    }

    pub fn params(&self) -> Result<Params, DahdiError> {
        let mut params = Params::for_channel(0);
        // SAFETY: valid fd, pointer to a live Params of the encoded size.
        unsafe { ioctl::get_params(self.raw(), &mut params) }.map_err(self.failed("DAHDI_GET_PARAMS"))?;
        Ok(params)
    }

    /// DAHDI_SPANSTAT works on any DAHDI fd; `spanno` selects the span.
    pub fn span_info(&self, spanno: c_int) -> Result<SpanInfo, DahdiError> {
        let mut info = SpanInfo::for_span(spanno);
        // SAFETY: valid fd, pointer to a live packed SpanInfo of the encoded size.
        unsafe { ioctl::span_stat(self.raw(), &mut info) }.map_err(self.failed("DAHDI_SPANSTAT"))?;
        Ok(info)
    }

    pub fn get_event(&self) -> Result<Event, DahdiError> {
        let mut code: c_int = 0;
        // SAFETY: valid fd, pointer to a live int the kernel writes.
        unsafe { ioctl::get_event(self.raw(), &mut code) }.map_err(self.failed("DAHDI_GETEVENT"))?;
        Ok(Event::from(code))
    }

    /// Reads one block (audio) or one frame (HDLC), or reports the event that blocked it.
    pub async fn read(&self, buf: &mut [u8]) -> Result<Io, DahdiError> {
        loop {
            let mut guard = self
                .fd
                .ready(Interest::READABLE | Interest::PRIORITY)
                .await
                .map_err(DahdiError::Poll)?;
            if guard.ready().is_priority() {
                guard.clear_ready_matching(Ready::PRIORITY);
                match self.get_event()? {
                    Event::None => {}
                    event => return Ok(Io::Event(event)),
                }
            }
            match nix::unistd::read(self.fd.get_ref().as_fd(), buf) {
                Ok(n) => return Ok(Io::Done(n)),
                Err(Errno::EAGAIN) => guard.clear_ready_matching(Ready::READABLE),
                Err(e) if e as i32 == ELAST => return Ok(Io::Event(self.get_event()?)),
                Err(e) => return Err(DahdiError::Io { op: "read", channo: self.channo, errno: e }),
            }
        }
    }

    /// Writes as much of `buf` as the channel takes now (at most one block), waiting for space.
    pub async fn write(&self, buf: &[u8]) -> Result<Io, DahdiError> {
        loop {
            let mut guard = self.fd.writable().await.map_err(DahdiError::Poll)?;
            match nix::unistd::write(self.fd.get_ref().as_fd(), buf) {
                Ok(n) => return Ok(Io::Done(n)),
                Err(Errno::EAGAIN) => guard.clear_ready_matching(Ready::WRITABLE),
                Err(e) if e as i32 == ELAST => return Ok(Io::Event(self.get_event()?)),
                Err(e) => return Err(DahdiError::Io { op: "write", channo: self.channo, errno: e }),
            }
        }
    }
}
