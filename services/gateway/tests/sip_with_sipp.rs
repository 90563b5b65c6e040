//! sba-gateway's SIP side end to end: the gateway (user side) on a simulated T1 span whose far
//! end (network side, the PSTN) this test drives, and sipp on loopback standing in for
//! sba-mediation (scenarios in tests/gateway/sipp/). Audio goes through sipp's RTP echo and back
//! to the far end, where the bytes are compared.

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use holdfast_media::g711::{ALAW_TO_ULAW, ULAW_TO_ALAW};
use holdfast_telephony::cause;
use holdfast_sip::message::{HeaderName, Message, Method, Request, Uri};
use sba_gateway::alarms::Alarms;
use sba_gateway::dahdi::Law;
use sba_gateway::edge::{Edge, EdgeConfig};
use sba_gateway::pri::{Pri, PriEvent};
use sba_gateway::q921::Side;
use sba_gateway::q931::ie::{Layer1, NumberingPlan, PartyNumber, TypeOfNumber};
use sba_gateway::q931::{CallEvent, CallId, Layout, Outgoing};
use sba_gateway::span::{SimulatedLine, SimulatedSpan};
use sba_gateway::trunk::{self, TrunkHandle};
use tokio::net::UdpSocket;
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// Real time: sipp runs beside the test.
const WAIT: Duration = Duration::from_secs(20);

struct Rig {
    /// The PSTN: the network side of the simulated span.
    far: TrunkHandle,
    line: SimulatedLine,
    gateway: SocketAddr,
    /// Where the gateway sends PSTN calls: the sipp UAS binds here.
    mediation: SocketAddr,
    dir: PathBuf,
}

fn free_port() -> u16 {
    StdUdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A port p with p..=p+3 free: sipp's RTP echo binds the media port and the one two above it.
fn free_media_port() -> u16 {
    for _ in 0..100 {
        let p = free_port();
        if p < 65_000 && (1..4).all(|d| StdUdpSocket::bind(("127.0.0.1", p + d)).is_ok()) {
            return p;
        }
    }
    panic!("no free media ports");
}

async fn rig(name: &str) -> Rig {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("sip_with_sipp-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b, line) = SimulatedSpan::pair(Layout::T1);
    let (ours, _) = trunk::spawn(a, Pri::new(Side::User, Layout::T1, Layer1::Mulaw));
    let (mut far, _) = trunk::spawn(b, Pri::new(Side::Network, Layout::T1, Layer1::Mulaw));
    assert_eq!(next(&mut far).await, PriEvent::InService(true));
    let mediation = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let edge = Edge::bind(EdgeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        mediation,
        layout: Layout::T1,
        law: Law::Mulaw,
    })
    .await
    .unwrap();
    let gateway = edge.sip_addr();
    tokio::spawn(edge.run(ours, std::future::pending()));
    let rig = Rig { far, line, gateway, mediation, dir };
    assert_eq!(rig.options().await, 200, "the gateway comes into service");
    rig
}

async fn next(trunk: &mut TrunkHandle) -> PriEvent {
    timeout(WAIT, trunk.recv()).await.expect("a trunk event in time").expect("trunk running")
}

/// The next call event, skipping the trunk's service changes.
async fn call_event(trunk: &mut TrunkHandle) -> CallEvent {
    for _ in 0..100 {
        if let PriEvent::Call(e) = next(trunk).await {
            return e;
        }
    }
    panic!("no call event among 100 others");
}

fn to(digits: &str) -> Outgoing {
    let number = |d: &str| PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, d);
    Outgoing { called: number(digits), calling: Some(number("5551000")), channel: None }
}

impl Rig {
    /// The status the gateway answers an OPTIONS with.
    async fn options(&self) -> u16 {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        let mut request = Request::new(Method::OPTIONS, Uri::parse(&format!("sip:{}", self.gateway)).unwrap());
        let branch = holdfast_sip::Ids::from_os().branch();
        request.headers.add(HeaderName::Via, format!("SIP/2.0/UDP {local};branch={branch}"));
        request.headers.add(HeaderName::From, format!("<sip:probe@{local}>;tag=1"));
        request.headers.add(HeaderName::To, format!("<sip:{}>", self.gateway));
        request.headers.add(HeaderName::CallId, format!("{branch}@probe"));
        request.headers.add(HeaderName::CSeq, "1 OPTIONS");
        request.headers.add(HeaderName::MaxForwards, "70");
        socket.send_to(&request.to_bytes().unwrap(), self.gateway).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let (n, _) = timeout(WAIT, socket.recv_from(&mut buf)).await.expect("an OPTIONS answer").unwrap();
        match holdfast_sip::wire::parse(&buf[..n]) {
            Ok(Message::Response(r)) => r.status,
            other => panic!("not a response: {other:?}"),
        }
    }

    /// Waits for the trunk to report `status` to OPTIONS.
    async fn options_until(&self, status: u16) {
        for _ in 0..200 {
            if self.options().await == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("OPTIONS never answered {status}");
    }

    fn scenario(&self, name: &str, cause: Option<u8>) -> PathBuf {
        let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/gateway/sipp").join(name);
        let text = std::fs::read_to_string(&src).unwrap();
        let text = match cause {
            Some(c) => text.replace("@CAUSE@", &c.to_string()),
            None => text,
        };
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn sipp(&self, scenario: PathBuf, port: u16, calls: u32) -> Command {
        let mut cmd = Command::new("sipp");
        cmd.current_dir(&self.dir)
            .arg("-sf")
            .arg(scenario)
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-mp", &free_media_port().to_string()])
            .args(["-rtp_echo", "-m", &calls.to_string(), "-nostdin", "-timeout", "30s", "-timeout_error"])
            .args(["-trace_err", "-trace_msg"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// sipp as mediation, answering (UAS) on the address the gateway sends PSTN calls to.
    async fn mediation_uas(&self, scenario: &str, calls: u32) -> Child {
        let child = self.sipp(self.scenario(scenario, None), self.mediation.port(), calls).spawn().expect("sipp");
        // Listening once its port is taken: the gateway's INVITE must not meet a closed port.
        for _ in 0..200 {
            if StdUdpSocket::bind(self.mediation).is_err() {
                return child;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("sipp never bound {}", self.mediation);
    }

    /// sipp as mediation, calling `number` through the gateway (UAC).
    fn mediation_uac(&self, scenario: &str, number: &str, cause: Option<u8>) -> Child {
        let mut cmd = self.sipp(self.scenario(scenario, cause), free_port(), 1);
        cmd.arg(self.gateway.to_string()).args(["-s", number]);
        cmd.spawn().expect("sipp")
    }
}

async fn succeeds(child: Child, what: &str) {
    let out = timeout(Duration::from_secs(40), child.wait_with_output()).await.expect("sipp finished").unwrap();
    assert!(out.status.success(), "sipp ({what}) failed: {:?}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
}

/// Sends `blocks` 20 ms blocks on `channel` from the far end, and collects what comes back from
/// sipp's echo: each block must return exactly as `expect` makes it.
async fn audio_round_trip(far: &mut TrunkHandle, channel: u8, expect: impl Fn(u8) -> u8) {
    let blocks: Vec<Vec<u8>> = (0..10u8).map(|b| (0..160u16).map(|i| (i as u8).wrapping_mul(7) ^ b).collect()).collect();
    let (sink, mut heard) = tokio::sync::mpsc::unbounded_channel();
    far.connect_audio(channel, Some(Box::new(sink))).await.unwrap();
    let mut back = Vec::new();
    for block in &blocks {
        far.send_audio(channel, block.clone()).await.unwrap();
        // Paced like a B-channel: 20 ms a block.
        let until = tokio::time::Instant::now() + Duration::from_millis(20);
        while let Ok(Some(samples)) = tokio::time::timeout_at(until, heard.recv()).await {
            back.push(samples);
        }
    }
    while back.len() < blocks.len() {
        match timeout(WAIT, heard.recv()).await {
            Ok(Some(samples)) => back.push(samples),
            _ => break,
        }
    }
    far.connect_audio(channel, None).await.unwrap();
    let expected: Vec<Vec<u8>> = blocks.iter().map(|b| b.iter().map(|s| expect(*s)).collect()).collect();
    assert_eq!(back, expected, "the echoed audio differs");
}

/// PSTN → branch: SETUP from the far end, INVITE to mediation with the called number,
/// answered; audio both ways; the PSTN hangs up and the BYE carries cause 16.
#[tokio::test]
async fn pstn_call_reaches_mediation_with_audio_and_the_pstn_hangs_up() {
    let mut rig = rig("pstn-hangs-up").await;
    let sipp = rig.mediation_uas("mediation_answers.xml", 1).await;
    let call = rig.far.place_call(to("2000")).await.unwrap().expect("SETUP sent");
    let channel = match call_event(&mut rig.far).await {
        CallEvent::Proceeding { call: c, channel } if c == call => channel,
        other => panic!("{other:?}"),
    };
    assert_eq!(call_event(&mut rig.far).await, CallEvent::Alerting { call }, "180 from mediation");
    assert_eq!(call_event(&mut rig.far).await, CallEvent::Connected { call }, "200 from mediation");
    // The span is µ-law and mediation answered PCMU: bytes come back unchanged.
    audio_round_trip(&mut rig.far, channel, |s| s).await;
    rig.far.hangup(call, cause::NORMAL_CLEARING).await.unwrap();
    succeeds(sipp, "mediation answering").await;
}

/// PSTN → branch, mediation hangs up: its Reason cause reaches the PSTN.
#[tokio::test]
async fn pstn_call_cleared_by_mediation_carries_its_q850_cause() {
    let mut rig = rig("mediation-hangs-up").await;
    let sipp = rig.mediation_uas("mediation_answers_and_hangs_up.xml", 1).await;
    let call = rig.far.place_call(to("2000")).await.unwrap().expect("SETUP sent");
    assert!(matches!(call_event(&mut rig.far).await, CallEvent::Proceeding { .. }));
    assert_eq!(call_event(&mut rig.far).await, CallEvent::Alerting { call });
    assert_eq!(call_event(&mut rig.far).await, CallEvent::Connected { call });
    match call_event(&mut rig.far).await {
        CallEvent::Cleared { call: c, cause: k } => assert_eq!((c, k.value), (call, 31)),
        other => panic!("{other:?}"),
    }
    succeeds(sipp, "mediation hanging up").await;
    assert_eq!(rig.far.status().await.unwrap().free_channels, 23);
}

/// Answers the next incoming call at the far end; its id and B-channel.
async fn far_answers(far: &mut TrunkHandle, number: &str) -> (CallId, u8) {
    match call_event(far).await {
        CallEvent::Incoming { call, channel, called, calling } => {
            assert_eq!(called.map(|c| c.digits).as_deref(), Some(number));
            assert_eq!(calling.map(|c| c.digits).as_deref(), Some("5551000"));
            far.answer(call).await.unwrap();
            assert_eq!(call_event(far).await, CallEvent::Connected { call });
            (call, channel)
        }
        other => panic!("{other:?}"),
    }
}

/// Branch → PSTN: sipp's INVITE becomes a SETUP with the number; the far end answers; audio
/// both ways through A-law on the SIP side; the PSTN hangs up.
#[tokio::test]
async fn mediation_call_reaches_the_pstn_with_law_conversion_and_the_pstn_hangs_up() {
    let mut rig = rig("branch-pstn-hangs-up").await;
    let sipp = rig.mediation_uac("mediation_calls.xml", "0612345678", None);
    let (call, channel) = far_answers(&mut rig.far, "0612345678").await;
    // µ-law on the span, PCMA negotiated: µ → A on the way out, A → µ on the way back.
    audio_round_trip(&mut rig.far, channel, |s| ALAW_TO_ULAW[usize::from(ULAW_TO_ALAW[usize::from(s)])]).await;
    rig.far.hangup(call, cause::NORMAL_CLEARING).await.unwrap();
    succeeds(sipp, "mediation calling").await;
}

/// Branch → PSTN, mediation hangs up with cause 31 in its BYE.
#[tokio::test]
async fn mediation_call_cleared_by_mediation_carries_its_q850_cause() {
    let mut rig = rig("branch-mediation-hangs-up").await;
    let sipp = rig.mediation_uac("mediation_calls_and_hangs_up.xml", "112", None);
    let (call, _) = far_answers(&mut rig.far, "112").await;
    match call_event(&mut rig.far).await {
        CallEvent::Cleared { call: c, cause: k } => assert_eq!((c, k.value), (call, 31)),
        other => panic!("{other:?}"),
    }
    succeeds(sipp, "mediation calling and hanging up").await;
}

/// 23 PSTN calls answered by mediation fill the T1; an INVITE from mediation then gets 503 with
/// Q.850 cause 34; the calls end and every channel is free again.
#[tokio::test]
async fn a_full_span_refuses_invites_with_503_cause_34() {
    let mut rig = rig("full-span").await;
    let uas = rig.mediation_uas("mediation_answers.xml", 23).await;
    let mut calls = Vec::new();
    for _ in 0..23 {
        calls.push(rig.far.place_call(to("2000")).await.unwrap().expect("SETUP sent"));
    }
    let mut connected = 0;
    for _ in 0..10_000 {
        if connected == 23 {
            break;
        }
        match call_event(&mut rig.far).await {
            CallEvent::Connected { call } if calls.contains(&call) => connected += 1,
            CallEvent::Proceeding { .. } | CallEvent::Alerting { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(rig.far.status().await.unwrap().free_channels, 0);
    succeeds(rig.mediation_uac("mediation_refused.xml", "0612345678", Some(cause::NO_CIRCUIT_AVAILABLE)), "refused")
        .await;
    for call in calls {
        rig.far.hangup(call, cause::NORMAL_CLEARING).await.unwrap();
    }
    succeeds(uas, "23 calls answered").await;
    assert_eq!(rig.far.status().await.unwrap().free_channels, 23);
}

/// A red alarm on the span: OPTIONS and INVITEs get 503 (cause 38); the line comes back and
/// so does the trunk.
#[tokio::test]
async fn span_alarm_makes_the_trunk_unavailable_to_mediation() {
    let rig = rig("alarm").await;
    rig.line.set_alarms(Alarms::RED);
    rig.options_until(503).await;
    succeeds(rig.mediation_uac("mediation_refused.xml", "0612345678", Some(cause::NETWORK_OUT_OF_ORDER)), "refused")
        .await;
    rig.line.set_alarms(Alarms::NONE);
    rig.options_until(200).await;
}

/// A stranger (127.0.0.2, not mediation's address) sends the gateway an INVITE for a PSTN
/// number: 403, and nothing reaches the span; the call mediation places next is the first the
/// PSTN sees, and it goes through.
#[tokio::test]
async fn an_invite_from_anyone_but_mediation_is_refused() {
    let mut rig = rig("stranger").await;
    let socket = UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let mut invite = Request::new(Method::INVITE, Uri::parse(&format!("sip:0666666@{}", rig.gateway)).unwrap());
    invite.headers.add(HeaderName::Via, format!("SIP/2.0/UDP {local};branch=z9hG4bK-stranger"));
    invite.headers.add(HeaderName::From, format!("<sip:5551000@{local}>;tag=s"));
    invite.headers.add(HeaderName::To, format!("<sip:0666666@{}>", rig.gateway));
    invite.headers.add(HeaderName::CallId, "stranger@127.0.0.2");
    invite.headers.add(HeaderName::CSeq, "1 INVITE");
    invite.headers.add(HeaderName::Contact, format!("<sip:x@{local}>"));
    invite.headers.add(HeaderName::MaxForwards, "70");
    invite.headers.add(HeaderName::ContentType, "application/sdp");
    invite.body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n".to_vec();
    socket.send_to(&invite.to_bytes().unwrap(), rig.gateway).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = timeout(WAIT, socket.recv_from(&mut buf)).await.expect("an answer to the stranger").unwrap();
    match holdfast_sip::wire::parse(&buf[..n]) {
        Ok(Message::Response(r)) => assert_eq!(r.status, 403),
        other => panic!("not a response: {other:?}"),
    }
    let sipp = rig.mediation_uac("mediation_calls.xml", "0612345678", None);
    let (call, _) = far_answers(&mut rig.far, "0612345678").await;
    rig.far.hangup(call, cause::NORMAL_CLEARING).await.unwrap();
    succeeds(sipp, "mediation calling after the stranger").await;
}
