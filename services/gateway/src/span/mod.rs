//! A span seen by the gateway: D-channel frames, B-channel audio and alarms. Two kinds: DAHDI
//! (the kernel's telephony interface) and simulated (in-process, for tests and laptops).

mod dahdi_span;
mod simulated;

pub use dahdi_span::{DahdiSpan, DahdiSpanConfig};
pub use simulated::{SimulatedLine, SimulatedSpan};

use std::future::Future;
use std::time::Instant;

use crate::alarms::Alarms;
use crate::dahdi::DahdiError;
use crate::q931::Layout;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanEvent {
    /// One HDLC frame from the D-channel, without its FCS.
    DFrame(Vec<u8>),
    /// G.711 samples from an open B-channel, and when the read returned them (the start of the
    /// delay to their RTP packet).
    Audio { channel: u8, samples: Vec<u8>, read_at: Instant },
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
}

pub trait Span: Send {
    /// For logs: says which kind of span this is.
    fn name(&self) -> &str;
    fn layout(&self) -> Layout;
    fn alarms(&self) -> Alarms;
    fn send_dframe(&mut self, frame: &[u8]) -> impl Future<Output = Result<(), SpanError>> + Send;
    fn send_audio(&mut self, channel: u8, samples: &[u8]) -> impl Future<Output = Result<(), SpanError>> + Send;
    /// Starts delivering audio of B-channel `channel` (a call is using it).
    fn open_bchannel(&mut self, channel: u8) -> Result<(), SpanError>;
    fn close_bchannel(&mut self, channel: u8);
    /// The next event. Cancel-safe: nothing is lost if the future is dropped.
    fn recv(&mut self) -> impl Future<Output = Result<SpanEvent, SpanError>> + Send;
    /// An event already waiting, without waiting for one.
    fn try_recv(&mut self) -> Option<Result<SpanEvent, SpanError>>;
}
