//! Runs the simulated exchange over the far end's trunk on holdfast-sip's `Driver` (a core with
//! no SIP: the far trunk's PRI events, the audio it hears and the control socket's requests are
//! its inputs, its trunk actions the work the driver awaits), and serves the control socket
//! (`sbactl pstn call`).

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use holdfast_sip::driver::{Core, DriveError, Driver, Inputs, Outbound};
use holdfast_sip::transport::{Incoming, TransportError};
use log::{debug, info, warn};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::control::{CallRequest, MAX_LINE};
use super::{Action, Exchange};
use crate::dahdi::Law;
use crate::pri::PriEvent;
use crate::q931::{CallError, Outgoing};
use crate::span::AudioSink;
use crate::trunk::{TrunkError, TrunkHandle};

/// Blocks heard and not yet echoed; beyond it they are dropped (late audio is worth nothing).
const HEARD_QUEUE: usize = 256;
/// Requests from the control socket waiting for the loop.
const REQUEST_QUEUE: usize = 8;
/// A control client has this long to send its line.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

type Request = (CallRequest, oneshot::Sender<String>);

/// What arrives on a B-channel, passed to the exchange's loop.
struct Heard {
    channel: u8,
    to_loop: mpsc::Sender<(u8, Vec<u8>)>,
}

impl AudioSink for Heard {
    fn block(&mut self, samples: &[u8], _read_at: std::time::Instant) {
        // Never waits on the span's reading task; a full queue loses this block.
        let _ = self.to_loop.try_send((self.channel, samples.to_vec()));
    }
}

/// Binds the control socket at `path`, replacing a socket left by an earlier run.
pub fn bind_control(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    UnixListener::bind(path)
}

/// Runs until the far trunk stops.
pub async fn run(mut trunk: TrunkHandle, law: Law, control: Option<UnixListener>) -> Result<(), TrunkError> {
    let (heard_tx, heard_rx) = mpsc::channel(HEARD_QUEUE);
    let (request_tx, request_rx) = mpsc::channel::<Request>(REQUEST_QUEUE);
    if let Some(listener) = control {
        tokio::spawn(accept_clients(listener, request_tx));
    }
    let mut inputs = FarInputs { pri: trunk.take_events(), heard: heard_rx, requests: request_rx };
    let mut far = FarEnd { exchange: Exchange::new(law), trunk, heard: heard_tx, requests: VecDeque::new() };
    match Driver::without_sip().run(&mut far, &mut inputs, std::future::pending()).await {
        Ok(_) => Ok(()),
        Err(DriveError::Core(e)) => Err(e),
        // A driver without SIP has no transport to stop.
        Err(DriveError::TransportStopped) => Ok(()),
    }
}

/// What reaches the exchange's loop.
enum FarInput {
    Pri(PriEvent),
    Heard { channel: u8, samples: Vec<u8> },
    Request(Request),
}

struct FarInputs {
    pri: mpsc::UnboundedReceiver<PriEvent>,
    heard: mpsc::Receiver<(u8, Vec<u8>)>,
    requests: mpsc::Receiver<Request>,
}

impl Inputs for FarInputs {
    type Item = FarInput;

    /// `None` once the far trunk has stopped.
    async fn recv(&mut self) -> Option<FarInput> {
        tokio::select! {
            event = self.pri.recv() => event.map(FarInput::Pri),
            Some((channel, samples)) = self.heard.recv() => Some(FarInput::Heard { channel, samples }),
            Some(request) = self.requests.recv() => Some(FarInput::Request(request)),
        }
    }

    fn try_recv(&mut self) -> Option<FarInput> {
        match self.pri.try_recv() {
            Ok(event) => Some(FarInput::Pri(event)),
            Err(_) => self.heard.try_recv().ok().map(|(channel, samples)| FarInput::Heard { channel, samples }),
        }
    }
}

/// The exchange with what it drives: the far trunk, and where the audio it hears goes.
struct FarEnd {
    exchange: Exchange,
    trunk: TrunkHandle,
    heard: mpsc::Sender<(u8, Vec<u8>)>,
    /// Control requests to place, with the control client waiting for the answer.
    requests: VecDeque<Request>,
}

impl Core for FarEnd {
    type Input = FarInput;
    type Error = TrunkError;

    fn next_timeout(&mut self) -> Option<Instant> {
        self.exchange.next_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.exchange.handle_timeout(now);
    }

    /// The exchange speaks PRI only: its driver has no SIP transport.
    fn on_message(&mut self, _incoming: Incoming, _now: Instant) {}

    fn on_input(&mut self, input: FarInput, now: Instant) -> Result<(), TrunkError> {
        match input {
            FarInput::Pri(event) => self.exchange.on_event(&event, now),
            FarInput::Heard { channel, samples } => self.exchange.heard(channel, &samples),
            FarInput::Request(request) => self.requests.push_back(request),
        }
        Ok(())
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Outbound> {
        None
    }

    fn on_send_error(&mut self, _failed: Outbound, _error: TransportError, _now: Instant) {}

    async fn settle(&mut self, _now: Instant) -> Result<bool, TrunkError> {
        let mut busy = false;
        while let Some(action) = self.exchange.poll_action() {
            busy = true;
            apply(&self.trunk, action, &self.heard).await?;
        }
        while let Some((request, reply)) = self.requests.pop_front() {
            busy = true;
            let answer = place(&self.trunk, &mut self.exchange, &request).await?;
            info!("simulated PSTN: {answer}");
            // The client may have gone; the call goes on regardless.
            let _ = reply.send(answer);
        }
        Ok(busy)
    }
}

async fn place(trunk: &TrunkHandle, exchange: &mut Exchange, request: &CallRequest) -> Result<String, TrunkError> {
    let outgoing = Outgoing {
        called: crate::sip::party(&request.called),
        calling: Some(crate::sip::party(&request.calling)),
        channel: None,
    };
    Ok(match trunk.place_call(outgoing).await? {
        Ok(call) => {
            exchange.placed(call, request.hangup_after);
            format!("calling {} from {} ({call})", request.called, request.calling)
        }
        Err(cause) => format!("refused: cause {cause}"),
    })
}

async fn apply(trunk: &TrunkHandle, action: Action, heard: &mpsc::Sender<(u8, Vec<u8>)>) -> Result<(), TrunkError> {
    let refused = |call, what: &str, result: Result<(), TrunkError>| match result {
        // The call changed state meanwhile (the branch hung up): nothing to do.
        Err(TrunkError::Call(e @ CallError::WrongState { .. } | e @ CallError::UnknownCall(_))) => {
            debug!("simulated PSTN: {call}: {what} not sent: {e}");
            Ok(())
        }
        other => other,
    };
    match action {
        Action::Alert(call) => refused(call, "ALERTING", trunk.alert(call).await),
        Action::Answer(call) => refused(call, "CONNECT", trunk.answer(call).await),
        Action::Hangup { call, cause } => refused(call, "DISCONNECT", trunk.hangup(call, cause).await),
        Action::Audio { channel, samples } => {
            if !trunk.offer_audio(channel, samples)? {
                debug!("simulated PSTN: B-channel {channel}: trunk busy, block dropped");
            }
            Ok(())
        }
        Action::Listen { channel, on } => {
            let sink: Option<Box<dyn AudioSink>> = on.then(|| Box::new(Heard { channel, to_loop: heard.clone() }) as _);
            trunk.connect_audio(channel, sink).await
        }
    }
}

/// Serves each control client on a task of its own, until the exchange stops.
async fn accept_clients(listener: UnixListener, to_loop: mpsc::Sender<Request>) {
    loop {
        tokio::select! {
            _ = to_loop.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_client(stream, to_loop.clone()));
                }
                Err(e) => warn!("simulated PSTN control socket: {e}"),
            },
        }
    }
}

/// One control client: one request line, one answer line.
async fn serve_client(stream: UnixStream, to_loop: mpsc::Sender<Request>) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read.take(MAX_LINE as u64));
    let answer = match tokio::time::timeout(CLIENT_TIMEOUT, reader.read_line(&mut line)).await {
        Err(_) => "refused: no request within 5 s".to_string(),
        Ok(Err(e)) => format!("refused: {e}"),
        Ok(Ok(_)) if !line.ends_with('\n') => format!("refused: one line of at most {MAX_LINE} bytes"),
        Ok(Ok(_)) => match CallRequest::parse(&line) {
            Err(e) => format!("refused: {e}"),
            Ok(request) => {
                let (tx, rx) = oneshot::channel();
                match to_loop.send((request, tx)).await {
                    Ok(()) => rx.await.unwrap_or_else(|_| "refused: the exchange stopped".to_string()),
                    Err(_) => "refused: the exchange stopped".to_string(),
                }
            }
        },
    };
    if let Err(e) = write.write_all(format!("{answer}\n").as_bytes()).await {
        debug!("simulated PSTN control client gone: {e}");
    }
}
