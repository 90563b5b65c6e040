//! Our user side against libpri's network side (tests/gateway/pri-peer, Debian libpri-dev): the
//! independent Q.921/Q.931 implementation Asterisk uses, over a datagram socket that carries
//! D-channel frames with two FCS octets as a DAHDI HDLC-FCS channel does.
//!
//! Needs gcc and libpri-dev (tests/run installs them).

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use holdfast_telephony::cause;
use sba_gateway::alarms::Alarms;
use sba_gateway::pri::{Pri, PriEvent};
use sba_gateway::q921::Side;
use sba_gateway::q931::ie::{Layer1, NumberingPlan, PartyNumber, TypeOfNumber};
use sba_gateway::q931::{CallEvent, Layout, Outgoing};
use sba_gateway::span::{AudioSink, Span, SpanError, SpanEvent};
use sba_gateway::trunk::{self, TrunkHandle};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::UnixDatagram;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::watch;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(15);
const FCS: [u8; 2] = [0, 0];

/// The D-channel as a datagram socket; this span has no B-channels. While `gate` is false frames
/// are held back (the one already read waits in `held`), so the test can make two SETUPs cross
/// on the line.
struct SocketSpan {
    sock: UnixDatagram,
    layout: Layout,
    gate: watch::Receiver<bool>,
    held: Option<Vec<u8>>,
}

impl Span for SocketSpan {
    fn name(&self) -> &str {
        "socket to libpri"
    }

    fn layout(&self) -> Layout {
        self.layout
    }

    fn alarms(&self) -> Alarms {
        Alarms::NONE
    }

    async fn send_dframe(&mut self, frame: &[u8]) -> Result<(), SpanError> {
        let mut buf = frame.to_vec();
        buf.extend_from_slice(&FCS);
        self.sock.send(&buf).await.map_err(|_| SpanError::Closed)?;
        Ok(())
    }

    async fn send_audio(&mut self, _channel: u8, _samples: &[u8]) -> Result<(), SpanError> {
        Ok(())
    }

    fn open_bchannel(&mut self, _channel: u8) -> Result<(), SpanError> {
        Ok(())
    }

    fn close_bchannel(&mut self, _channel: u8) {}

    fn connect_audio(&mut self, channel: u8, _sink: Option<Box<dyn AudioSink>>) -> Result<(), SpanError> {
        Err(SpanError::NotBChannel(channel))
    }

    // Cancel-safe like the real spans: a frame read while the gate is shut stays in `held`.
    async fn recv(&mut self) -> Result<SpanEvent, SpanError> {
        let mut buf = [0u8; 1024];
        loop {
            if self.held.is_none() {
                let n = self.sock.recv(&mut buf).await.map_err(|_| SpanError::Closed)?;
                self.held = n.checked_sub(FCS.len()).and_then(|len| buf.get(..len)).map(<[u8]>::to_vec);
            }
            self.gate.wait_for(|open| *open).await.map_err(|_| SpanError::Closed)?;
            if let Some(frame) = self.held.take() {
                return Ok(SpanEvent::DFrame(frame));
            }
        }
    }
}

struct Peer {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Peer {
    async fn send(&mut self, command: &str) {
        self.stdin.write_all(format!("{command}\n").as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The next event line starting with `word`; other lines before it must be in `allowed`.
    async fn expect(&mut self, word: &str, allowed: &[&str]) -> String {
        self.expect_one_of(&[word], allowed).await
    }

    async fn expect_one_of(&mut self, words: &[&str], allowed: &[&str]) -> String {
        for _ in 0..100 {
            let line = timeout(WAIT, self.lines.next_line()).await.expect("libpri answered in time").unwrap();
            let line = line.expect("pri-peer still running");
            if line.split(' ').next().is_some_and(|w| words.contains(&w)) {
                return line;
            }
            assert!(allowed.iter().any(|a| line.starts_with(a)), "libpri said {line:?} while we waited for {words:?}");
        }
        panic!("no {words:?} from libpri");
    }

    /// libpri's end of a call: HANGUP when the far end released, HANGUP_ACK when it did.
    async fn expect_released(&mut self) -> String {
        self.expect_one_of(&["hangup", "hangup_ack"], &["connect_ack"]).await
    }
}

fn field(line: &str, key: &str) -> String {
    line.split(' ')
        .find_map(|w| w.strip_prefix(key).and_then(|w| w.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        .to_owned()
}

/// Built once per test binary: the tests run in parallel.
fn peer_binary() -> &'static PathBuf {
    static PEER: OnceLock<PathBuf> = OnceLock::new();
    PEER.get_or_init(build_peer)
}

fn build_peer() -> PathBuf {
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/gateway/pri-peer/pri_peer.c");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let out = dir.join("pri-peer");
    // nextest runs each test in its own process: each builds its own copy and renames it into
    // place, so none overwrites a binary another is running ("Text file busy").
    let built = dir.join(format!("pri-peer.{}", std::process::id()));
    let status = std::process::Command::new("cc")
        .args(["-Wall", "-O1", "-o"])
        .arg(&built)
        .arg(&source)
        .arg("-lpri")
        .status()
        .expect("cc runs (install gcc)");
    assert!(status.success(), "building pri-peer failed: is libpri-dev installed?");
    std::fs::rename(&built, &out).expect("pri-peer moved into place");
    out
}

async fn start() -> (TrunkHandle, Peer) {
    let (trunk, peer, _gate) = start_with(Layout::T1).await;
    (trunk, peer)
}

async fn start_with(layout: Layout) -> (TrunkHandle, Peer, watch::Sender<bool>) {
    let peer_bin = peer_binary();
    let (ours, theirs) = std::os::unix::net::UnixDatagram::pair().unwrap();
    // The peer inherits its end under the same number.
    fcntl(&theirs, FcntlArg::F_SETFD(FdFlag::empty())).unwrap();
    let mut child = Command::new(peer_bin)
        .args(["--fd", &theirs.as_raw_fd().to_string(), "--network"])
        .arg(if layout == Layout::E1 { "--e1" } else { "--t1" })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    drop(theirs);
    ours.set_nonblocking(true).unwrap();
    let (gate, gate_rx) = watch::channel(true);
    let span = SocketSpan { sock: UnixDatagram::from_std(ours).unwrap(), layout, gate: gate_rx, held: None };
    let law = if layout == Layout::E1 { Layer1::Alaw } else { Layer1::Mulaw };
    let (mut trunk, _task) = trunk::spawn(span, Pri::new(Side::User, layout, law));
    let stdin = child.stdin.take().unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut peer = Peer { _child: child, stdin, lines };
    peer.expect("up", &[]).await;
    assert_eq!(next_pri(&mut trunk).await, PriEvent::InService(true));
    (trunk, peer, gate)
}

async fn next_pri(trunk: &mut TrunkHandle) -> PriEvent {
    timeout(WAIT, trunk.recv()).await.expect("an event in time").expect("trunk running")
}

async fn next_call(trunk: &mut TrunkHandle) -> CallEvent {
    match next_pri(trunk).await {
        PriEvent::Call(e) => e,
        other => panic!("expected a call event, got {other:?}"),
    }
}

#[tokio::test]
async fn libpri_calls_us_we_answer_and_clear() {
    let (mut trunk, mut peer) = start().await;
    peer.send("call 5 2000").await;
    let placed = peer.expect("placed", &[]).await;
    let id = placed.split(' ').nth(1).unwrap().to_owned();
    let (call, channel, called) = match next_call(&mut trunk).await {
        CallEvent::Incoming { call, channel, called, calling } => {
            assert_eq!(calling.map(|c| c.digits).as_deref(), Some("5551000"));
            (call, channel, called.map(|c| c.digits))
        }
        other => panic!("{other:?}"),
    };
    assert_eq!((channel, called.as_deref()), (5, Some("2000")));
    let proceeding = peer.expect("proceeding", &[]).await;
    assert_eq!(field(&proceeding, "chan"), "5");
    trunk.alert(call).await.unwrap();
    peer.expect("ringing", &[]).await;
    trunk.answer(call).await.unwrap();
    peer.expect("answer", &[]).await;
    assert_eq!(next_call(&mut trunk).await, CallEvent::Connected { call });
    trunk.hangup(call, cause::NORMAL_CLEARING).await.unwrap();
    let req = peer.expect("hangup_req", &["connect_ack"]).await;
    assert_eq!(field(&req, "cause"), "16");
    assert!(req.starts_with(&format!("hangup_req {id} ")));
    peer.expect_released().await;
    for _ in 0..50 {
        if trunk.status().await.unwrap().free_channels == 23 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("B-channel 5 not freed after RELEASE COMPLETE");
}

#[tokio::test]
async fn we_call_libpri_it_answers_and_clears_with_its_cause() {
    let (mut trunk, mut peer) = start().await;
    let number = PartyNumber::new(TypeOfNumber::National, NumberingPlan::Isdn, "0612345678");
    let call = trunk
        .place_call(Outgoing { called: number, calling: None, channel: None })
        .await
        .unwrap()
        .expect("placed");
    let ring = peer.expect("ring", &[]).await;
    assert_eq!(field(&ring, "chan"), "1");
    assert_eq!(field(&ring, "called"), "0612345678");
    let id = ring.split(' ').nth(1).unwrap().to_owned();
    assert_eq!(next_call(&mut trunk).await, CallEvent::Proceeding { call, channel: 1 });
    peer.send(&format!("alert {id}")).await;
    assert_eq!(next_call(&mut trunk).await, CallEvent::Alerting { call });
    peer.send(&format!("answer {id}")).await;
    assert_eq!(next_call(&mut trunk).await, CallEvent::Connected { call });
    peer.send(&format!("hangup {id} 17")).await;
    match next_call(&mut trunk).await {
        CallEvent::Cleared { call: c, cause: k } => {
            assert_eq!(c, call);
            assert_eq!(k.value, cause::USER_BUSY);
        }
        other => panic!("{other:?}"),
    }
    peer.expect_released().await;
}

#[tokio::test]
async fn libpri_refuses_our_setup_before_answering() {
    let (mut trunk, mut peer) = start().await;
    let number = PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, "404");
    let call = trunk.place_call(Outgoing { called: number, calling: None, channel: Some(7) }).await.unwrap().unwrap();
    let ring = peer.expect("ring", &[]).await;
    assert_eq!(field(&ring, "chan"), "7");
    let id = ring.split(' ').nth(1).unwrap().to_owned();
    assert_eq!(next_call(&mut trunk).await, CallEvent::Proceeding { call, channel: 7 });
    peer.send(&format!("hangup {id} 1")).await;
    match next_call(&mut trunk).await {
        CallEvent::Cleared { cause: k, .. } => {
            assert_eq!(k.value, cause::UNALLOCATED_NUMBER);
            assert_eq!(holdfast_telephony::cause::sip_status_at(k.value, k.location), 404);
        }
        other => panic!("{other:?}"),
    }
    // libpri refuses an unanswered call with RELEASE COMPLETE and reports nothing more.
    assert_eq!(trunk.status().await.unwrap().free_channels, 23);
}

#[tokio::test]
async fn euroisdn_e1_call_on_timeslot_17_both_ways() {
    let (mut trunk, mut peer, _gate) = start_with(Layout::E1).await;
    peer.send("call 17 100").await;
    peer.expect("placed", &[]).await;
    let CallEvent::Incoming { call, channel: 17, .. } = next_call(&mut trunk).await else {
        panic!("expected a call on timeslot 17")
    };
    trunk.answer(call).await.unwrap();
    peer.expect("answer", &["proceeding"]).await;
    assert_eq!(next_call(&mut trunk).await, CallEvent::Connected { call });
    // Our own call hunts from the bottom and skips nothing below 16.
    let number = PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, "200");
    let out = trunk.place_call(Outgoing { called: number, calling: None, channel: Some(16) }).await.unwrap();
    assert!(out.is_ok(), "timeslot 16 is the D-channel: another channel is taken");
    let ring = peer.expect("ring", &["connect_ack"]).await;
    assert_eq!(field(&ring, "chan"), "1");
    trunk.hangup(call, cause::NORMAL_CLEARING).await.unwrap();
    peer.expect("hangup_req", &["connect_ack", "proceeding"]).await;
}

#[tokio::test]
async fn glare_with_libpri_the_network_keeps_the_channel_and_our_call_moves() {
    let (mut trunk, mut peer, gate) = start_with(Layout::T1).await;
    // libpri's SETUP for channel 9 waits unread on our side while ours for 9 goes out.
    gate.send_replace(false);
    peer.send("call 9 2000").await;
    let theirs = peer.expect("placed", &[]).await.split(' ').nth(1).unwrap().to_owned();
    let number = PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, "3000");
    let ours = trunk.place_call(Outgoing { called: number, calling: None, channel: Some(9) }).await.unwrap().unwrap();
    let ring = peer.expect("ring", &[]).await;
    let moved_to: u8 = field(&ring, "chan").parse().unwrap();
    assert_ne!(moved_to, 9, "libpri's side kept channel 9 for its own call");
    gate.send_replace(true);

    let mut events = Vec::new();
    for _ in 0..2 {
        events.push(next_call(&mut trunk).await);
    }
    let incoming = events
        .iter()
        .find_map(|e| match e {
            CallEvent::Incoming { call, channel: 9, .. } => Some(*call),
            _ => None,
        })
        .unwrap_or_else(|| panic!("libpri's call should get channel 9: {events:?}"));
    assert!(events.contains(&CallEvent::Proceeding { call: ours, channel: moved_to }), "{events:?}");

    // Both calls are answered on their own channels.
    trunk.answer(incoming).await.unwrap();
    let ring_id = ring.split(' ').nth(1).unwrap().to_owned();
    peer.send(&format!("answer {ring_id}")).await;
    let mut answered = Vec::new();
    for _ in 0..2 {
        answered.push(next_call(&mut trunk).await);
    }
    assert!(answered.contains(&CallEvent::Connected { call: ours }), "{answered:?}");
    assert!(answered.contains(&CallEvent::Connected { call: incoming }), "{answered:?}");
    let line = peer.expect("answer", &["proceeding", "connect_ack"]).await;
    assert_eq!(line, format!("answer {theirs}"));
    assert_eq!(trunk.status().await.unwrap().free_channels, 21);
}
