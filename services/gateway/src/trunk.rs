//! The async edge: runs a `Pri` over a `Span`, with tokio time, and talks to the rest of the
//! gateway through a command queue and an event queue.

use std::collections::HashMap;
use std::time::Duration;

use log::{debug, info, warn};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};

use crate::alarms::Alarms;
use crate::pri::{Pri, PriEvent};
use crate::q931::{CallError, CallEvent, CallId, Outgoing};
use crate::span::{AudioSink, Span, SpanError, SpanEvent};

enum Command {
    Place { request: Outgoing, reply: oneshot::Sender<Result<CallId, u8>> },
    Alert { call: CallId, reply: oneshot::Sender<Result<(), CallError>> },
    Answer { call: CallId, reply: oneshot::Sender<Result<(), CallError>> },
    Hangup { call: CallId, cause: u8, reply: oneshot::Sender<Result<(), CallError>> },
    Audio { channel: u8, samples: Vec<u8> },
    ConnectAudio { channel: u8, sink: Option<Box<dyn AudioSink>> },
    Status { reply: oneshot::Sender<TrunkStatus> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrunkStatus {
    pub in_service: bool,
    pub free_channels: usize,
    pub alarms: Alarms,
}

#[derive(Debug, thiserror::Error)]
pub enum TrunkError {
    #[error("the trunk task has stopped")]
    Stopped,
    #[error(transparent)]
    Call(#[from] CallError),
}

/// One block's time: a B-channel write that cannot start within it is dropped, so that a full
/// channel buffer never holds up the D-channel.
const FRAME: Duration = Duration::from_millis(20);

/// The application's side of a running trunk. Signalling and audio travel apart: PRI events
/// queue here and are never dropped (there are a few per call); B-channel audio goes from the
/// span straight to the sink connected to its channel.
pub struct TrunkHandle {
    commands: mpsc::Sender<Command>,
    pri: mpsc::UnboundedReceiver<PriEvent>,
}

impl TrunkHandle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, TrunkError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| TrunkError::Stopped)?;
        rx.await.map_err(|_| TrunkError::Stopped)
    }

    /// Places a call; `Ok(Err(cause))` when refused at once (no channel, out of service).
    pub async fn place_call(&self, request: Outgoing) -> Result<Result<CallId, u8>, TrunkError> {
        self.ask(|reply| Command::Place { request, reply }).await
    }

    pub async fn alert(&self, call: CallId) -> Result<(), TrunkError> {
        Ok(self.ask(|reply| Command::Alert { call, reply }).await??)
    }

    pub async fn answer(&self, call: CallId) -> Result<(), TrunkError> {
        Ok(self.ask(|reply| Command::Answer { call, reply }).await??)
    }

    pub async fn hangup(&self, call: CallId, cause: u8) -> Result<(), TrunkError> {
        Ok(self.ask(|reply| Command::Hangup { call, cause, reply }).await??)
    }

    pub async fn send_audio(&self, channel: u8, samples: Vec<u8>) -> Result<(), TrunkError> {
        self.commands.send(Command::Audio { channel, samples }).await.map_err(|_| TrunkError::Stopped)
    }

    /// Queues a block without waiting: `Ok(false)` when the command queue is full and the block
    /// was dropped (real-time audio that cannot go now is worth nothing later).
    pub fn offer_audio(&self, channel: u8, samples: Vec<u8>) -> Result<bool, TrunkError> {
        match self.commands.try_send(Command::Audio { channel, samples }) {
            Ok(()) => Ok(true),
            Err(mpsc::error::TrySendError::Full(_)) => Ok(false),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(TrunkError::Stopped),
        }
    }

    /// Sends the blocks read from B-channel `channel` to `sink` (None: nowhere, and the sink
    /// connected before is dropped).
    pub async fn connect_audio(&self, channel: u8, sink: Option<Box<dyn AudioSink>>) -> Result<(), TrunkError> {
        self.commands.send(Command::ConnectAudio { channel, sink }).await.map_err(|_| TrunkError::Stopped)
    }

    /// The next PRI event. Cancel-safe; None once the trunk has stopped.
    /// The PRI events, handed to an event loop's inputs; `recv` on this handle then has none.
    pub fn take_events(&mut self) -> mpsc::UnboundedReceiver<PriEvent> {
        std::mem::replace(&mut self.pri, mpsc::unbounded_channel().1)
    }

    pub async fn recv(&mut self) -> Option<PriEvent> {
        self.pri.recv().await
    }

    pub async fn status(&self) -> Result<TrunkStatus, TrunkError> {
        self.ask(|reply| Command::Status { reply }).await
    }

    /// A handle that asks for the trunk's status only, for a task beside the one holding this.
    pub fn status_source(&self) -> StatusSource {
        StatusSource { commands: self.commands.clone() }
    }
}

/// Asks a running trunk for its status.
#[derive(Clone)]
pub struct StatusSource {
    commands: mpsc::Sender<Command>,
}

impl StatusSource {
    pub async fn status(&self) -> Result<TrunkStatus, TrunkError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Status { reply }).await.map_err(|_| TrunkError::Stopped)?;
        answer.await.map_err(|_| TrunkError::Stopped)
    }
}

/// Starts the trunk task. It ends when the handle is dropped or the span fails.
pub fn spawn<S: Span + 'static>(span: S, pri: Pri) -> (TrunkHandle, JoinHandle<Result<(), SpanError>>) {
    let (commands_tx, commands_rx) = mpsc::channel(64);
    let (pri_tx, pri_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(span, pri, commands_rx, pri_tx));
    (TrunkHandle { commands: commands_tx, pri: pri_rx }, task)
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

async fn run<S: Span>(
    mut span: S,
    mut pri: Pri,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<PriEvent>,
) -> Result<(), SpanError> {
    info!("trunk on {} ({:?} side, {:?})", span.name(), pri.side(), span.layout());
    pri.handle_alarms(span.alarms(), now());
    pri.start(now());
    // B-channels carrying audio, by call: the stack may have freed the channel by the time the
    // call's end is reported.
    let mut audio: HashMap<CallId, u8> = HashMap::new();
    loop {
        while let Some(frame) = pri.poll_transmit() {
            span.send_dframe(&frame).await?;
        }
        while let Some(event) = pri.poll_event() {
            match &event {
                PriEvent::Call(CallEvent::Connected { call }) => {
                    if let Some(channel) = pri.channel(*call) {
                        span.open_bchannel(channel)?;
                        audio.insert(*call, channel);
                    }
                }
                PriEvent::Call(CallEvent::Cleared { call, .. }) => {
                    if let Some(channel) = audio.remove(call) {
                        span.close_bchannel(channel);
                    }
                }
                _ => {}
            }
            // The application may have stopped listening; the trunk keeps the line up regardless.
            let _ = events.send(event);
        }
        let deadline = pri.next_timeout().map(Instant::from_std);
        tokio::select! {
            // Requests first: they are few, and a request made before a frame arrived is handled
            // before it, so crossing SETUPs really cross (glare) instead of racing.
            biased;
            command = commands.recv() => match command {
                None => return Ok(()),
                Some(command) => apply(&mut span, &mut pri, &mut audio, command).await?,
            },
            event = span.recv() => match event? {
                SpanEvent::DFrame(frame) => pri.handle_dframe(&frame, now()),
                SpanEvent::Alarms(alarms) => {
                    info!("{}: alarms {alarms}", span.name());
                    pri.handle_alarms(alarms, now());
                }
            },
            _ = async { if let Some(d) = deadline { sleep_until(d).await } }, if deadline.is_some() => {
                pri.handle_timeout(now());
            }
        }
    }
}

async fn apply<S: Span>(
    span: &mut S,
    pri: &mut Pri,
    audio: &mut HashMap<CallId, u8>,
    command: Command,
) -> Result<(), SpanError> {
    // A dropped reply receiver only means the caller gave up waiting.
    match command {
        Command::Place { request, reply } => {
            let _ = reply.send(pri.place_call(request, now()));
        }
        Command::Alert { call, reply } => {
            let _ = reply.send(pri.alert(call, now()));
        }
        Command::Answer { call, reply } => {
            let result = pri.answer(call, now());
            if result.is_ok() {
                if let Some(channel) = pri.channel(call) {
                    span.open_bchannel(channel)?;
                    audio.insert(call, channel);
                }
            }
            let _ = reply.send(result);
        }
        Command::Hangup { call, cause, reply } => {
            let result = pri.hangup(call, cause, now());
            if let Some(channel) = audio.remove(&call) {
                span.close_bchannel(channel);
            }
            let _ = reply.send(result);
        }
        Command::Audio { channel, samples } => match timeout(FRAME, span.send_audio(channel, &samples)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!("{}: audio on B-channel {channel}: {e}", span.name()),
            Err(_) => debug!("{}: B-channel {channel} buffer full, block dropped", span.name()),
        },
        Command::ConnectAudio { channel, sink } => {
            if let Err(e) = span.connect_audio(channel, sink) {
                warn!("{}: audio of B-channel {channel} not connected: {e}", span.name());
            }
        }
        Command::Status { reply } => {
            let _ = reply.send(TrunkStatus { in_service: pri.in_service(), free_channels: pri.free_channels(), alarms: span.alarms() });
        }
    }
    Ok(())
}
