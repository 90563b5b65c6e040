//! Runs the simulated exchange over the far end's trunk, with tokio time, and serves its
//! control socket (`sbactl pstn call`).

use std::path::Path;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::sleep_until;

use super::control::{CallRequest, MAX_LINE};
use super::{Action, Exchange};
use crate::dahdi::Law;
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
    let mut exchange = Exchange::new(law);
    let (heard_tx, mut heard_rx) = mpsc::channel(HEARD_QUEUE);
    let (request_tx, mut request_rx) = mpsc::channel::<Request>(REQUEST_QUEUE);
    loop {
        while let Some(action) = exchange.poll_action() {
            apply(&trunk, action, &heard_tx).await?;
        }
        let deadline = exchange.next_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            event = trunk.recv() => match event {
                None => return Ok(()),
                Some(event) => exchange.on_event(&event, Instant::now()),
            },
            Some((channel, samples)) = heard_rx.recv() => exchange.heard(channel, &samples),
            Some((request, reply)) = request_rx.recv() => {
                let answer = place(&trunk, &mut exchange, &request).await?;
                info!("simulated PSTN: {answer}");
                // The client may have gone; the call goes on regardless.
                let _ = reply.send(answer);
            }
            accepted = accept(control.as_ref()) => match accepted {
                Ok(stream) => {
                    tokio::spawn(serve_client(stream, request_tx.clone()));
                }
                Err(e) => warn!("simulated PSTN control socket: {e}"),
            },
            _ = async { if let Some(d) = deadline { sleep_until(d).await } }, if deadline.is_some() => {
                exchange.handle_timeout(Instant::now());
            }
        }
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

/// The next control client; never, without a control socket.
async fn accept(control: Option<&UnixListener>) -> std::io::Result<UnixStream> {
    match control {
        Some(listener) => Ok(listener.accept().await?.0),
        None => std::future::pending().await,
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
