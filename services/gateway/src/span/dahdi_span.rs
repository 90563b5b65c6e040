//! A span on DAHDI: the D-channel in HDLC-FCS mode, read by a task feeding the event queue, and
//! B-channels as 20 ms G.711 blocks, each read by its own task that hands every block to the
//! channel's sink at once.

use std::collections::HashMap;
use std::os::raw::c_int;
use std::sync::{Arc, Mutex, MutexGuard};

use log::{debug, info, warn};
use nix::errno::Errno;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::dahdi_setup::{self, Line};
use super::{AudioSink, Span, SpanError, SpanEvent};
use crate::alarms::Alarms;
use crate::dahdi::{Channel, Ctl, DahdiError, Event, Io, Law, AUDIO_BLOCK};
use crate::q931::Layout;

/// Longest HDLC frame we read: a Q.931 message fits many times over.
const DFRAME_MAX: usize = 1024;
/// Octets of FCS the kernel appends on read and expects room for on write (HDLCFCS).
const FCS_LEN: usize = 2;

#[derive(Debug, Clone, Copy)]
pub struct DahdiSpanConfig {
    /// DAHDI span number (1-based).
    pub spanno: c_int,
    pub layout: Layout,
    pub law: Law,
    /// Global number of the span's first channel; read from sysfs when absent.
    pub basechan: Option<c_int>,
    pub line: Line,
}

/// A B-channel's sink, shared by the span (which connects it) and the channel's reading task.
/// Both run on the gateway's one runtime thread: the lock is never contended.
type SinkSlot = Arc<Mutex<Option<Box<dyn AudioSink>>>>;

fn lock(slot: &SinkSlot) -> MutexGuard<'_, Option<Box<dyn AudioSink>>> {
    // A sink that panicked left nothing half-done that the next block could trip over.
    slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub struct DahdiSpan {
    name: String,
    config: DahdiSpanConfig,
    basechan: c_int,
    dchannel: Arc<Channel>,
    bchannels: HashMap<u8, (Arc<Channel>, JoinHandle<()>)>,
    sinks: HashMap<u8, SinkSlot>,
    dreader: JoinHandle<()>,
    rx: mpsc::Receiver<Result<SpanEvent, SpanError>>,
    alarms: Alarms,
}

fn span_alarms(channel: &Channel, spanno: c_int) -> Result<Alarms, DahdiError> {
    let info = channel.span_info(spanno)?;
    let alarms = info.alarms;
    Ok(Alarms(alarms as u32))
}

impl DahdiSpan {
    /// Configures the span (dahdi_setup) and opens its D-channel. Needs a tokio runtime.
    pub fn open(config: DahdiSpanConfig) -> Result<DahdiSpan, SpanError> {
        let ctl = match Ctl::open() {
            Err(DahdiError::Open(_, Errno::ENOENT)) => return Err(SpanError::NoDahdi),
            ctl => ctl?,
        };
        let basechan = dahdi_setup::configure(&ctl, &config)?;
        let dchan_no = basechan + c_int::from(config.layout.dchannel()) - 1;
        let dchannel = Arc::new(Channel::open(dchan_no)?);
        dchannel.set_buffers(32, DFRAME_MAX as c_int)?;
        let params = dchannel.params()?;
        let info = dchannel.span_info(config.spanno)?;
        let alarms = Alarms(info.alarms as u32);
        let name = format!("DAHDI span {} ({})", config.spanno, info.name());
        info!(
            "{name}: D-channel {dchan_no} ({}), span type {}, alarms {alarms}",
            params.name(),
            info.spantype()
        );
        let (tx, rx) = mpsc::channel(1024);
        let dreader = tokio::spawn(read_dchannel(dchannel.clone(), config.spanno, tx));
        Ok(DahdiSpan {
            name,
            config,
            basechan,
            dchannel,
            bchannels: HashMap::new(),
            sinks: HashMap::new(),
            dreader,
            rx,
            alarms,
        })
    }
}

async fn read_dchannel(channel: Arc<Channel>, spanno: c_int, tx: mpsc::Sender<Result<SpanEvent, SpanError>>) {
    let mut buf = [0u8; DFRAME_MAX];
    loop {
        let event = match channel.read(&mut buf).await {
            Ok(Io::Done(n)) if n > FCS_LEN => match buf.get(..n - FCS_LEN) {
                Some(frame) => Ok(SpanEvent::DFrame(frame.to_vec())),
                None => continue,
            },
            Ok(Io::Done(_)) => continue,
            Ok(Io::Event(Event::Alarm | Event::NoAlarm)) => span_alarms(&channel, spanno).map(SpanEvent::Alarms).map_err(SpanError::from),
            Ok(Io::Event(e @ (Event::BadFcs | Event::Abort | Event::Overrun))) => {
                debug!("D-channel {}: {e:?}, frame dropped", channel.channo());
                continue;
            }
            Ok(Io::Event(e)) => {
                debug!("D-channel {}: event {e:?}", channel.channo());
                continue;
            }
            Err(e) => Err(SpanError::from(e)),
        };
        let fatal = event.is_err();
        if tx.send(event).await.is_err() || fatal {
            return;
        }
    }
}

async fn read_bchannel(channel: Arc<Channel>, sink: SinkSlot) {
    let mut buf = [0u8; AUDIO_BLOCK as usize];
    loop {
        match channel.read(&mut buf).await {
            Ok(Io::Done(n)) => {
                let read_at = std::time::Instant::now();
                if let Some(sink) = lock(&sink).as_mut() {
                    sink.block(buf.get(..n).unwrap_or_default(), read_at);
                }
            }
            Ok(Io::Event(e)) => debug!("B-channel {}: event {e:?}", channel.channo()),
            Err(e) => {
                warn!("B-channel {}: {e}", channel.channo());
                return;
            }
        }
    }
}

/// Writes all of `data`, a block at a time (the kernel takes at most one block per write).
async fn write_all(channel: &Channel, mut data: &[u8]) -> Result<(), SpanError> {
    // A bounded number of attempts: each either writes or consumes a queued event.
    for _ in 0..1024 {
        if data.is_empty() {
            return Ok(());
        }
        match channel.write(data).await? {
            Io::Done(n) => data = data.get(n..).unwrap_or_default(),
            Io::Event(e) => debug!("channel {}: event {e:?} while writing", channel.channo()),
        }
    }
    Err(SpanError::Closed)
}

impl Span for DahdiSpan {
    fn name(&self) -> &str {
        &self.name
    }

    fn layout(&self) -> Layout {
        self.config.layout
    }

    fn alarms(&self) -> Alarms {
        self.alarms
    }

    async fn send_dframe(&mut self, frame: &[u8]) -> Result<(), SpanError> {
        // HDLCFCS: the kernel fills in the two FCS octets we leave room for.
        let mut buf = Vec::with_capacity(frame.len() + FCS_LEN);
        buf.extend_from_slice(frame);
        buf.extend_from_slice(&[0; FCS_LEN]);
        match self.dchannel.write(&buf).await? {
            Io::Done(_) => Ok(()),
            Io::Event(e) => {
                debug!("{}: event {e:?} on D-channel write, frame dropped", self.name);
                Ok(())
            }
        }
    }

    async fn send_audio(&mut self, channel: u8, samples: &[u8]) -> Result<(), SpanError> {
        let (chan, _) = self.bchannels.get(&channel).ok_or(SpanError::NotBChannel(channel))?;
        write_all(chan, samples).await
    }

    fn open_bchannel(&mut self, channel: u8) -> Result<(), SpanError> {
        if !self.config.layout.is_bchannel(channel) {
            return Err(SpanError::NotBChannel(channel));
        }
        if self.bchannels.contains_key(&channel) {
            return Ok(());
        }
        let chan = Arc::new(Channel::open(self.basechan + c_int::from(channel) - 1)?);
        chan.set_blocksize(AUDIO_BLOCK)?;
        chan.set_law(self.config.law)?;
        chan.flush()?;
        let sink = self.sinks.entry(channel).or_default().clone();
        let reader = tokio::spawn(read_bchannel(chan.clone(), sink));
        self.bchannels.insert(channel, (chan, reader));
        Ok(())
    }

    fn close_bchannel(&mut self, channel: u8) {
        if let Some((_, reader)) = self.bchannels.remove(&channel) {
            reader.abort();
        }
    }

    fn connect_audio(&mut self, channel: u8, sink: Option<Box<dyn AudioSink>>) -> Result<(), SpanError> {
        if !self.config.layout.is_bchannel(channel) {
            return Err(SpanError::NotBChannel(channel));
        }
        *lock(self.sinks.entry(channel).or_default()) = sink;
        Ok(())
    }

    async fn recv(&mut self) -> Result<SpanEvent, SpanError> {
        let event = self.rx.recv().await.ok_or(SpanError::Closed)??;
        if let SpanEvent::Alarms(a) = event {
            self.alarms = a;
        }
        Ok(event)
    }
}

impl Drop for DahdiSpan {
    fn drop(&mut self) {
        self.dreader.abort();
        for (_, (_, reader)) in self.bchannels.drain() {
            reader.abort();
        }
    }
}
