//! A span seen by the gateway: D-channel frames, B-channel audio and alarms. Two kinds: DAHDI
//! (the kernel's telephony interface) and simulated (in-process, for tests and laptops).
//!
//! Signalling and media travel apart: D-channel frames and alarms queue for the trunk's loop,
//! while each B-channel's blocks go straight to the sink connected to it (a call's RTP sender)
//! as they are read, so audio never waits behind signalling or behind another task.

mod dahdi_setup;
mod dahdi_span;
mod simulated;

pub use dahdi_setup::{Coding, Framing, Line};
pub use dahdi_span::{DahdiSpan, DahdiSpanConfig};
pub use simulated::{SimulatedLine, SimulatedSpan};

use std::future::Future;
use std::os::raw::c_int;
use std::time::Instant;

use crate::alarms::Alarms;
use crate::dahdi::DahdiError;
use crate::q931::Layout;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanEvent {
    /// One HDLC frame from the D-channel, without its FCS.
    DFrame(Vec<u8>),
    /// The span's alarms changed.
    Alarms(Alarms),
}

#[derive(Debug, thiserror::Error)]
pub enum SpanError {
    #[error(transparent)]
    Dahdi(#[from] DahdiError),
    #[error("the span is closed")]
    Closed,
    #[error("channel {0} is not a B-channel of this span")]
    NotBChannel(u8),
    #[error("DAHDI is not loaded: no card's driver has started")]
    NoDahdi,
    #[error("no DAHDI span {0}: no card, or its driver has not registered it yet")]
    NoSpan(c_int),
    #[error("DAHDI span {spanno} is {spantype:?} with {channels} channels, not the {wanted:?} span sba.toml names")]
    WrongKind { spanno: c_int, spantype: String, channels: c_int, wanted: Layout },
}

/// Takes a B-channel's blocks as the span reads them. Called on the span's reading task: it must
/// not block.
pub trait AudioSink: Send {
    /// G.711 samples, and when the read returned them (the start of the delay to their RTP packet).
    fn block(&mut self, samples: &[u8], read_at: Instant);
}

/// A queue as a sink: each block is copied into it.
impl AudioSink for tokio::sync::mpsc::UnboundedSender<Vec<u8>> {
    fn block(&mut self, samples: &[u8], _read_at: Instant) {
        // A receiver that went away wants no more audio.
        let _ = self.send(samples.to_vec());
    }
}

pub trait Span: Send {
    /// For logs: says which kind of span this is.
    fn name(&self) -> &str;
    fn layout(&self) -> Layout;
    fn alarms(&self) -> Alarms;
    fn send_dframe(&mut self, frame: &[u8]) -> impl Future<Output = Result<(), SpanError>> + Send;
    fn send_audio(&mut self, channel: u8, samples: &[u8]) -> impl Future<Output = Result<(), SpanError>> + Send;
    /// Starts reading B-channel `channel` (a call is using it).
    fn open_bchannel(&mut self, channel: u8) -> Result<(), SpanError>;
    fn close_bchannel(&mut self, channel: u8);
    /// Where the blocks read from `channel` go while it is open; None drops them (and the sink
    /// that was connected). A sink outlives the channel's closing until it is replaced.
    fn connect_audio(&mut self, channel: u8, sink: Option<Box<dyn AudioSink>>) -> Result<(), SpanError>;
    /// The next event. Cancel-safe: nothing is lost if the future is dropped.
    fn recv(&mut self) -> impl Future<Output = Result<SpanEvent, SpanError>> + Send;
}
