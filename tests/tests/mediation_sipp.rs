//! sba-mediation against sipp on loopback: sipp plays the branch (from the registrar's address)
//! and the carriers behind two trunks.
use holdfast_tests::bins::bin;
use holdfast_tests::netns::{Island, Netns, ISLAND};
use holdfast_tests::ports::{free_port, media_ports};
use holdfast_tests::registrar::{Registrar, DOMAIN};
use holdfast_tests::scratch::{wait_bound_udp, Scratch};
use holdfast_tests::sipp::Sipp;
use holdfast_sip::message::{HeaderName, Message, Method, Request, Response, Uri};
use holdfast_sip::wire;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Mediation {
    child: Child,
    /// The namespace it runs in; None: this machine's.
    ns: Option<Netns>,
    addr: SocketAddr,
    db: std::path::PathBuf,
    /// Where the branch's calls must come from.
    branch_port: u16,
    carrier_a: SocketAddr,
    carrier_b: SocketAddr,
}

impl Mediation {
    fn start(scratch: &Scratch) -> Mediation {
        Mediation::configured(scratch, 600_000, "", None, "")
    }

    /// With OPTIONS health checks every `options_ms`.
    fn with_probes(scratch: &Scratch, options_ms: u64) -> Mediation {
        Mediation::configured(scratch, options_ms, "", None, "")
    }

    /// `carrier_a` is added to carrier-a's trunk table and `keys` to `[mediation]`; `ports` are
    /// this mediation's port and the registrar's, when the test chose them.
    fn configured(scratch: &Scratch, options_ms: u64, carrier_a: &str, ports: Option<(u16, u16)>, keys: &str) -> Mediation {
        Mediation::configured_in(None, scratch, options_ms, carrier_a, ports, keys)
    }

    /// As `configured`, run in the namespace `ns`.
    fn configured_in(ns: Option<&Netns>, scratch: &Scratch, options_ms: u64, carrier_a: &str, ports: Option<(u16, u16)>, keys: &str) -> Mediation {
        let (port, branch_port) = ports.unwrap_or_else(|| (free_port(), free_port()));
        let (pa, pb) = (free_port(), free_port());
        let (media, media_end) = media_ports().into_inner();
        let db = scratch.file("sba.db");
        let config = format!(
            r#"
[mediation]
listen = "127.0.0.1:{port}"
registrar = "127.0.0.1:{branch_port}"
db = "{db}"
media_ports = [{media}, {media_end}]
options_interval_ms = {options_ms}
default_policy = "national"
{keys}

[[mediation.rules]]
name = "international"
pattern = '011(\d{{7,15}})'
replace = '+$1'

[[mediation.rules]]
name = "national"
pattern = '1?([2-9]\d{{9}})'
replace = '+1$1'

[[mediation.policies]]
name = "national"
usages = ["local", "national"]

# Transfer targets of the tests, on carrier-b alone (the transferee is on carrier-a).
[[mediation.routes]]
name = "transfer"
pattern = '\+1212555019\d'
usage = "national"
trunks = ["carrier-b"]

[[mediation.routes]]
name = "national"
pattern = '\+1\d{{10}}'
usage = "national"
trunks = ["carrier-a", "carrier-b"]

[[mediation.routes]]
name = "international"
pattern = '\+[2-9]\d{{6,14}}'
usage = "international"
trunks = ["carrier-a", "carrier-b"]

[[mediation.trunks]]
name = "carrier-a"
kind = "carrier"
address = "127.0.0.1:{pa}"
{carrier_a}

[[mediation.trunks]]
name = "carrier-b"
kind = "carrier"
address = "127.0.0.1:{pb}"
# sipp would take an OPTIONS for a new call.
options = false
called = [{{ pattern = '\+1(\d{{10}})', replace = '1$1' }}]

[[mediation.inbound]]
pattern = '\+1555987(3\d{{3}})'
user = '$1'
"#,
            db = db.display(),
        );
        let path = scratch.file("sba.toml");
        std::fs::write(&path, config).expect("write config");
        let log = std::fs::File::create(scratch.file("mediation.log")).expect("log");
        let mut command = match ns {
            Some(ns) => ns.command(&bin("sba-mediation").to_string_lossy()),
            None => Command::new(bin("sba-mediation")),
        };
        let child = command
            .arg("--config")
            .arg(&path)
            .env("HOLDFAST_LOG_STDERR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sba-mediation");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        wait_for_udp(ns, addr);
        Mediation {
            child,
            ns: ns.map(|n| Netns { name: n.name.clone() }),
            addr,
            db,
            branch_port,
            carrier_a: format!("127.0.0.1:{pa}").parse().unwrap(),
            carrier_b: format!("127.0.0.1:{pb}").parse().unwrap(),
        }
    }

    /// Waits (at most 10 s) until sba-mediation's status snapshot (`<db>.mediation.json`,
    /// rewritten every second) satisfies `ready`.
    fn wait_status(&self, what: &str, ready: impl Fn(&serde_json::Value) -> bool) {
        let mut name = self.db.file_name().expect("db file name").to_os_string();
        name.push(".mediation.json");
        let path = self.db.with_file_name(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice(&b).ok());
            if status.as_ref().is_some_and(&ready) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: {status:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `sbactl cdr --csv` rows as field vectors (header skipped).
    fn cdrs(&self) -> Vec<Vec<String>> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = Command::new(bin("sbactl"))
                .arg("--db")
                .arg(&self.db)
                .args(["cdr", "--csv"])
                .output()
                .expect("run sbactl");
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let rows: Vec<Vec<String>> =
                text.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect();
            if !rows.is_empty() || Instant::now() > deadline {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Mediation {
    /// SIGTERM, then its exit (at most 10 s).
    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "sba-mediation did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Mediation {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A UDP socket bound to `addr` in `ns`, or on this machine.
fn udp_socket(ns: Option<&Netns>, addr: &str) -> UdpSocket {
    let addr: SocketAddr = addr.parse().unwrap();
    match ns {
        Some(ns) => ns.udp_socket(addr),
        None => UdpSocket::bind(addr),
    }
    .unwrap_or_else(|e| panic!("binding {addr}: {e}"))
}

/// Waits until something answers OPTIONS on `addr` (at most 10 s).
fn wait_for_udp(ns: Option<&Netns>, addr: SocketAddr) {
    let sock = udp_socket(ns, "127.0.0.1:0");
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let local = sock.local_addr().unwrap();
    for i in 0..50 {
        let msg = format!(
            "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-wait{i}\r\nFrom: <sip:t@{local}>;tag=w\r\n\
             To: <sip:{addr}>\r\nCall-ID: wait{i}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        let _ = sock.send_to(msg.as_bytes(), addr);
        let mut buf = [0u8; 2048];
        if sock.recv_from(&mut buf).is_ok() {
            return;
        }
    }
    panic!("sba-mediation does not answer on {addr}");
}

/// A sipp carrier answering with `scenario` on `addr` (one call, 20 s at most), echoing the RTP
/// it receives; stopped when dropped.
fn carrier(scratch: &Scratch, scenario: &str, addr: SocketAddr) -> Peer {
    let child = Command::new("sipp")
        .current_dir(&scratch.path)
        .args(["-sf"])
        .arg(holdfast_tests::bins::scenario(scenario))
        .args(["-i", "127.0.0.1", "-p", &addr.port().to_string(), "-t", "u1", "-nostdin", "-m", "1"])
        // A media port of its own (sipp's default 6000 is shared by every sipp), echoing RTP.
        .args(["-mp", &free_port().to_string(), "-rtp_echo"])
        .args(["-timeout", "20s", "-timeout_error", "-trace_msg"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run sipp (apt-get install sip-tester)");
    wait_bound_udp(addr, Duration::from_secs(10));
    Peer(child)
}

/// What a sipp started with `scenario` (its name starting so; "" for the only one) logged with
/// -trace_msg in `scratch`.
fn messages_log(scratch: &Scratch, scenario: &str) -> String {
    std::fs::read_dir(&scratch.path)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with(scenario) && name.ends_with("_messages.log"))
        .map(|name| std::fs::read_to_string(scratch.file(&name)).unwrap())
        .unwrap_or_else(|| panic!("no -trace_msg log of {scenario:?} in {}", scratch.path.display()))
}

/// The first INVITE a sipp logged (-trace_msg), its head only.
fn first_invite(log: &str) -> &str {
    let invite = &log[log.find("INVITE sip:").unwrap_or_else(|| panic!("no INVITE in\n{log}"))..];
    &invite[..invite.find("\r\n\r\n").or_else(|| invite.find("\n\n")).unwrap_or(invite.len())]
}

/// A process this test started, killed and reaped when dropped.
struct Peer(Child);

impl Peer {
    /// Waits (at most `secs`) for sipp to finish its call; true when it succeeded.
    fn finished_ok(&mut self, secs: u64) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The branch's call: sipp from the registrar's port, 1 s of talk, then BYE.
fn branch_call(scratch: &Scratch, m: &Mediation, scenario: &str, caller: &str, number: &str) -> std::process::Output {
    Sipp::new(scenario, m.addr)
        .key("caller", caller)
        .key("domain", m.addr.to_string())
        .arg("-s")
        .arg(number)
        .arg("-d")
        .arg("1000")
        // The last -p wins: the call must come from the address configured as the registrar's.
        .arg("-p")
        .arg(m.branch_port.to_string())
        .arg("-trace_err")
        .arg("-mp")
        .arg(free_port().to_string())
        .run(&scratch.path, 20)
}

fn assert_ok(out: &std::process::Output, what: &str, scratch: &Scratch) {
    let log = std::fs::read_to_string(scratch.file("mediation.log")).unwrap_or_default();
    let errors: String = std::fs::read_dir(&scratch.path)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        out.status.success(),
        "{what}: sipp failed ({})\n{}\n{errors}\n--- sba-mediation log ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).lines().rev().take(20).collect::<Vec<_>>().join("\n"),
        log.lines().rev().take(60).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn first_carrier_503_the_call_completes_on_the_second_and_is_recorded() {
    let scratch = Scratch::new("mediation-failover");
    let m = Mediation::start(&scratch);
    let _a = carrier(&scratch, "mediation_503.xml", m.carrier_a);
    let _b = carrier(&scratch, "call_answer.xml", m.carrier_b);
    let out = branch_call(&scratch, &m, "call_uac.xml", "3012", "2125550100");
    assert_ok(&out, "call through the mediation", &scratch);
    let rows = m.cdrs();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    // call_id,direction,setup,answer,end,caller,callee_dialled,callee,callee_sent,caller_sent,
    // route,trunk,failovers,status,q850,end_cause
    assert_eq!(r[1], "outbound");
    assert!(!r[3].is_empty(), "answered: {r:?}");
    assert!(r[2] <= r[3] && r[3] < r[4], "setup <= answer < end: {r:?}");
    assert_eq!((r[5].as_str(), r[6].as_str(), r[7].as_str()), ("3012", "2125550100", "+12125550100"));
    assert_eq!(r[8], "12125550100", "carrier-b's translation");
    assert_eq!((r[10].as_str(), r[11].as_str(), r[12].as_str()), ("national", "carrier-b", "1"));
    assert_eq!((r[13].as_str(), r[15].as_str()), ("200", "BYE from caller"));
}

#[test]
fn a_pstn_callee_who_does_not_answer_is_rung_once() {
    let scratch = Scratch::new("mediation-no-answer");
    let m = Mediation::start(&scratch);
    let mut a = carrier(&scratch, "mediation_no_user_responding.xml", m.carrier_a);
    let mut b = carrier(&scratch, "call_answer.xml", m.carrier_b);
    let out = branch_call(&scratch, &m, "mediation_408.xml", "3012", "2125550100");
    assert_ok(&out, "408 for a callee who does not answer", &scratch);
    assert!(a.finished_ok(5), "carrier-a rang the callee");
    assert!(!b.finished_ok(1), "carrier-b must not ring the callee again");
    let rows = m.cdrs();
    assert_eq!(rows.len(), 1, "{rows:?}");
    // trunk, failovers, status, q850
    let r = &rows[0];
    assert_eq!((r[11].as_str(), r[12].as_str(), r[13].as_str(), r[14].as_str()), ("carrier-a", "0", "408", "18"), "{r:?}");
}

#[test]
fn international_without_the_usage_is_refused_403() {
    let scratch = Scratch::new("mediation-403");
    let m = Mediation::start(&scratch);
    let out = branch_call(&scratch, &m, "mediation_403.xml", "3012", "011442079460000");
    assert_ok(&out, "403 for an international number", &scratch);
    let rows = m.cdrs();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0][7].as_str(), rows[0][13].as_str(), rows[0][14].as_str()), ("+442079460000", "403", "21"));
    assert_eq!(rows[0][11], "", "no trunk was tried");
    // The refused call's record says who called and the route that refused it...
    assert_eq!((rows[0][5].as_str(), rows[0][10].as_str()), ("3012", "international"), "{:?}", rows[0]);
    // ...and its text has no blank fields.
    let out = Command::new(bin("sbactl")).arg("--db").arg(&m.db).arg("cdr").output().expect("run sbactl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("outbound 3012 -> 011442079460000 = +442079460000 (not sent)  route international trunk none failovers 0"),
        "{text}"
    );
}

/// A stranger (127.0.0.2: neither the registrar nor a trunk) sends an INVITE for a PSTN number:
/// 403, no call record, counted in the status file; the branch's own call after it is the only
/// one recorded.
#[test]
fn an_invite_from_a_stranger_is_refused_without_a_record() {
    let scratch = Scratch::new("mediation-stranger");
    let m = Mediation::start(&scratch);
    let stranger = UdpSocket::bind("127.0.0.2:0").expect("127.0.0.2 is loopback");
    stranger.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let local = stranger.local_addr().unwrap();
    let invite = format!(
        "INVITE sip:2125550100@{addr};user=phone SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-stranger\r\n\
         From: <sip:3012@branch.test>;tag=s\r\nTo: <sip:2125550100@branch.test>\r\nCall-ID: stranger@test\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:3012@{local}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        addr = m.addr
    );
    stranger.send_to(invite.as_bytes(), m.addr).unwrap();
    let mut buf = vec![0u8; 65536];
    let status = loop {
        let (n, _) = stranger.recv_from(&mut buf).expect("an answer to the stranger");
        if let Ok(Message::Response(r)) = wire::parse(&buf[..n]) {
            if r.status >= 200 {
                break r.status;
            }
        }
    };
    assert_eq!(status, 403);
    m.wait_status("the stranger counted", |s| s["refused"]["not_a_peer"] == 1);
    let out = branch_call(&scratch, &m, "mediation_403.xml", "3012", "011442079460000");
    assert_ok(&out, "the branch's call after the stranger's", &scratch);
    let rows = m.cdrs();
    assert_eq!(rows.len(), 1, "only the branch's call is recorded: {rows:?}");
    assert_ne!(rows[0][0], "stranger@test");
}

/// max_calls = 1: while the branch's call to carrier-a is up, a second call from the branch gets
/// 503 with Retry-After, counted in the status file and without a record; the first call goes on.
#[test]
fn a_call_beyond_max_calls_gets_503_with_retry_after_and_no_record() {
    let scratch = Scratch::new("mediation-max-calls");
    let m = Mediation::configured(&scratch, 600_000, "", None, "max_calls = 1");
    let _a = carrier(&scratch, "call_answer.xml", m.carrier_a);
    let branch = Branch::new(&m);
    let uri = branch.call_to_pstn("first");
    let ok = branch.response(200);
    assert_eq!(ok.status, 200, "{ok:?}");
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let contact = ok.headers.get(&HeaderName::Contact).unwrap().trim_matches(['<', '>']).to_string();
    branch.send(&branch.request(Method::ACK, &contact, 1, &to, "ack"));

    let mut second = branch.request(Method::INVITE, &uri, 1, "<sip:2125550100@branch.test>", "second");
    second.headers.set(HeaderName::CallId, "second-call@test");
    branch.send(&second);
    let refused = branch.response(200);
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.headers.get(&HeaderName::parse("Retry-After")), Some("10"));
    let mut ack = branch.request(Method::ACK, &uri, 1, refused.headers.get(&HeaderName::To).unwrap(), "second");
    ack.headers.set(HeaderName::CallId, "second-call@test");
    branch.send(&ack);
    m.wait_status("the refusal counted", |s| s["refused"]["max_calls"] == 1 && s["calls"].as_array().is_some_and(|c| c.len() == 1));

    branch.send(&branch.request(Method::BYE, &contact, 2, &to, "bye"));
    let bye_ok = loop {
        let r = branch.response(200);
        if r.cseq().is_ok_and(|c| c.method == Method::BYE) {
            break r;
        }
    };
    assert_eq!(bye_ok.status, 200);
    let rows = m.cdrs();
    assert_eq!(rows.len(), 1, "only the first call is recorded: {rows:?}");
    assert_eq!(rows[0][0], "audio-call@test");
}

/// `media_ip = "auto"`: in a namespace whose default route
/// leaves from 192.0.2.1 (its only address besides loopback), the offer to a trunk names that
/// address, not 127.0.0.1.
#[test]
fn auto_media_ip_is_the_default_route_s_address() {
    let log = offer_with_auto_media_ip(&Island::new(), "mediation-media-ip");
    assert!(log.contains(&format!("media_ip \"auto\": {ISLAND} (the default route's")), "{log}");
}

/// `media_ip = "auto"` on a box with no default route (the appliance's shipped setting on a LAN
/// without a router, as in the image tests' VM): the LAN interface's address, not a start failure.
#[test]
fn auto_media_ip_without_a_default_route_is_the_lan_interface_s_address() {
    let island = Island::new();
    island.ns.ip(&["route", "del", "default"]);
    let log = offer_with_auto_media_ip(&island, "mediation-media-ip-lan");
    assert!(log.contains(&format!("media_ip \"auto\": {ISLAND} (no default route: net's address)")), "{log}");
}

/// Mediation in `island` with `media_ip = "auto"`: its offer to a trunk names the island's
/// address; returns mediation's log.
fn offer_with_auto_media_ip(island: &Island, name: &str) -> String {
    let scratch = Scratch::new(name);
    let m = Mediation::configured_in(Some(&island.ns), &scratch, 600_000, "", None, "media_ip = \"auto\"");
    let carrier = udp_socket(Some(&island.ns), &m.carrier_a.to_string());
    carrier.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let branch = Branch::new(&m);
    branch.call_to_pstn("auto");
    let mut buf = vec![0u8; 65536];
    let offer = loop {
        let (n, _) = carrier.recv_from(&mut buf).expect("the INVITE at the carrier");
        match wire::parse(&buf[..n]) {
            Ok(Message::Request(r)) if r.method == Method::INVITE => break String::from_utf8_lossy(&r.body).to_string(),
            _ => continue,
        }
    };
    assert!(offer.contains(&format!("c=IN IP4 {ISLAND}\r\n")), "the relay's address is not the island's: {offer}");
    std::fs::read_to_string(scratch.file("mediation.log")).unwrap()
}

/// The branch side played by the test itself, so that it can send RTP and compare what comes
/// back: an INVITE from the registrar's address, the answer's SDP, RTP through the relay to the
/// carrier (sipp echoing it), BYE.
struct Branch {
    sip: UdpSocket,
    rtp: UdpSocket,
    mediation: SocketAddr,
}

impl Branch {
    fn new(m: &Mediation) -> Branch {
        let sip = udp_socket(m.ns.as_ref(), &format!("127.0.0.1:{}", m.branch_port));
        sip.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let rtp = udp_socket(m.ns.as_ref(), "127.0.0.1:0");
        rtp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        Branch { sip, rtp, mediation: m.addr }
    }

    fn request(&self, method: Method, uri: &str, seq: u32, to: &str, branch: &str) -> Request {
        let local = self.sip.local_addr().unwrap();
        let mut r = Request::new(method.clone(), Uri::parse(uri).unwrap());
        r.headers.add(HeaderName::Via, format!("SIP/2.0/UDP {local};branch=z9hG4bK-{branch}"));
        r.headers.add(HeaderName::From, "<sip:3012@branch.test>;tag=branch");
        r.headers.add(HeaderName::To, to.to_string());
        r.headers.add(HeaderName::CallId, "audio-call@test");
        r.headers.add(HeaderName::CSeq, format!("{seq} {method}"));
        r.headers.add(HeaderName::Contact, format!("<sip:3012@{local}>"));
        r.headers.add(HeaderName::MaxForwards, "70");
        r
    }

    /// Sends an INVITE for a PSTN number with an offer of the branch's RTP socket (PCMU);
    /// returns its Request-URI.
    fn call_to_pstn(&self, tag: &str) -> String {
        let uri = format!("sip:2125550100@{};user=phone", self.mediation);
        let mut invite = self.request(Method::INVITE, &uri, 1, "<sip:2125550100@branch.test>", tag);
        invite.headers.add(HeaderName::ContentType, "application/sdp");
        invite.body = pcmu_offer(self.rtp.local_addr().unwrap().port());
        self.send(&invite);
        uri
    }

    fn send(&self, r: &Request) {
        self.sip.send_to(&Message::Request(r.clone()).to_bytes().unwrap(), self.mediation).unwrap();
    }

    /// The next response whose status is at least `min`.
    fn response(&self, min: u16) -> Response {
        let mut buf = vec![0u8; 65536];
        for _ in 0..20 {
            let (n, _) = self.sip.recv_from(&mut buf).expect("an answer from sba-mediation");
            if let Ok(Message::Response(r)) = wire::parse(&buf[..n]) {
                if r.status >= min {
                    return r;
                }
            }
        }
        panic!("no response >= {min}");
    }
}

/// An offer of PCMU alone on 127.0.0.1:`port`.
fn pcmu_offer(port: u16) -> Vec<u8> {
    format!("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n").into_bytes()
}

/// The audio port in an SDP body.
fn sdp_audio(body: &[u8]) -> SocketAddr {
    let text = String::from_utf8_lossy(body);
    let ip = text.lines().find_map(|l| l.strip_prefix("c=IN IP4 ")).expect("c=").trim();
    let port = text.lines().find_map(|l| l.strip_prefix("m=audio ")).and_then(|l| l.split(' ').next()).expect("m=");
    format!("{ip}:{port}").parse().unwrap()
}

fn rtp_packet(seq: u16, pt: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt, (seq >> 8) as u8, seq as u8, 0, 0, 0, (seq as u8).wrapping_mul(160), 0x12, 0x34, 0x56, 0x78];
    p.extend_from_slice(payload);
    p
}

/// A call from the test's branch offering `pt` alone to a sipp carrier that answers µ-law
/// first and echoes RTP; returns each packet sent with what came back. With `late`, the INVITE
/// has no SDP: the carrier's 200 is the offer, the branch answers `pt` in its ACK.
fn echo_call(name: &str, pt: u8, late: bool) -> Vec<(Vec<u8>, Vec<u8>, u8)> {
    let scratch = Scratch::new(name);
    let m = Mediation::start(&scratch);
    let _b = carrier(&scratch, "call_answer.xml", m.carrier_a);
    let branch = Branch::new(&m);
    let rtp_local = branch.rtp.local_addr().unwrap();
    let uri = format!("sip:2125550100@{};user=phone", m.addr);
    let mut invite = branch.request(Method::INVITE, &uri, 1, "<sip:2125550100@branch.test>", "inv");
    let law = if pt == 0 { "PCMU" } else { "PCMA" };
    let our_sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP {pt}\r\na=rtpmap:{pt} {law}/8000\r\n",
        rtp_local.port()
    );
    if !late {
        invite.headers.add(HeaderName::ContentType, "application/sdp");
        invite.body = our_sdp.clone().into_bytes();
    }
    branch.send(&invite);
    let ok = branch.response(200);
    assert_eq!(ok.status, 200, "{ok:?}");
    let answer = String::from_utf8_lossy(&ok.body).to_string();
    if !late {
        assert!(answer.contains(&format!("RTP/AVP {pt}\r\n")), "the answer names the law offered: {answer}");
    }
    let relay = sdp_audio(&ok.body);
    assert_ne!(relay.port(), rtp_local.port());
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let contact = ok.headers.get(&HeaderName::Contact).unwrap().trim_matches(['<', '>']).to_string();
    let mut ack = branch.request(Method::ACK, &contact, 1, &to, "ack");
    if late {
        ack.headers.add(HeaderName::ContentType, "application/sdp");
        ack.body = our_sdp.into_bytes();
    }
    branch.send(&ack);

    // The relay takes our leg's media once sba-mediation has read our answer (a late offer's is
    // in the ACK; strict source drops what comes before): wait for a first echo (bounded), then
    // let the stray echoes of that wait pass.
    let mut buf = [0u8; 2048];
    branch.rtp.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let opened = (0..50u16).any(|i| {
        branch.rtp.send_to(&rtp_packet(1000 + i, pt, &[0x55; 160]), relay).unwrap();
        branch.rtp.recv_from(&mut buf).is_ok()
    });
    assert!(opened, "no RTP came back through the relay within 10 s");
    while branch.rtp.recv_from(&mut buf).is_ok() {}
    branch.rtp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();

    // 50 packets of 160 bytes covering all 256 codes: each comes back (sipp echoes at the
    // carrier) having crossed the relay twice.
    let mut echoes = Vec::new();
    for seq in 0..50u16 {
        let payload: Vec<u8> = (0..160u16).map(|i| (i.wrapping_mul(7).wrapping_add(seq * 13) % 256) as u8).collect();
        branch.rtp.send_to(&rtp_packet(seq, pt, &payload), relay).unwrap();
        let (n, from) = branch.rtp.recv_from(&mut buf).expect("echoed RTP back through the relay");
        assert_eq!(from, relay, "media comes from the relay, not the carrier");
        echoes.push((payload, buf[12..n].to_vec(), buf[1] & 0x7f));
        std::thread::sleep(Duration::from_millis(5));
    }

    branch.send(&branch.request(Method::BYE, &contact, 2, &to, "bye"));
    assert_eq!(branch.response(200).status, 200);
    let rows = m.cdrs();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0][11].as_str(), rows[0][12].as_str(), rows[0][15].as_str()), ("carrier-a", "0", "BYE from caller"));
    if late {
        // The answer reached the carrier in our ACK, pointed at the relay, not at the branch.
        let log = messages_log(&scratch, "");
        let ack = log.split("ACK sip:").nth(1).expect("the carrier got an ACK");
        let ack = &ack[..ack.find("-----").unwrap_or(ack.len())];
        let port = ack.lines().find_map(|l| l.trim().strip_prefix("m=audio ")).expect("SDP in the ACK");
        assert!(!port.starts_with(&format!("{} ", rtp_local.port())), "{ack}");
        assert!(ack.contains("c=IN IP4 127.0.0.1"), "{ack}");
    }
    echoes
}

#[test]
fn audio_bytes_cross_the_relay_unchanged_both_ways() {
    let echoes = echo_call("mediation-audio", 0, false);
    assert_eq!(echoes.len(), 50);
    for (i, (sent, back, pt)) in echoes.iter().enumerate() {
        assert_eq!(back, sent, "packet {i}");
        assert_eq!(*pt, 0);
    }
}

#[test]
fn a_late_offer_goes_through_the_relay_with_the_answer_in_the_ack() {
    let echoes = echo_call("mediation-late-offer", 0, true);
    assert_eq!(echoes.len(), 50);
    for (i, (sent, back, pt)) in echoes.iter().enumerate() {
        assert_eq!(back, sent, "packet {i}");
        assert_eq!(*pt, 0);
    }
}

#[test]
fn a_law_caller_and_mu_law_carrier_are_transcoded_per_the_g711_tables() {
    use holdfast_media::g711::{alaw_to_ulaw_into, ulaw_to_alaw_into};
    let echoes = echo_call("mediation-transcode", 8, false);
    let mut changed = 0;
    for (i, (sent, back, pt)) in echoes.iter().enumerate() {
        // A-law -> µ-law towards the carrier, echoed, µ-law -> A-law back.
        let mut ulaw = vec![0u8; sent.len()];
        alaw_to_ulaw_into(sent, &mut ulaw);
        let mut expected = vec![0u8; sent.len()];
        ulaw_to_alaw_into(&ulaw, &mut expected);
        assert_eq!(back, &expected, "packet {i}");
        assert_eq!(*pt, 8, "the caller gets A-law back");
        changed += sent.iter().zip(back).filter(|(a, b)| a != b).count();
    }
    // The round trip through µ-law is lossy for some codes: proof that the bytes were transcoded.
    assert!(changed > 0);
}

#[test]
fn a_dead_trunk_is_skipped_at_once() {
    let scratch = Scratch::new("mediation-dead");
    // Nobody at carrier-a: two unanswered probes 200 ms apart and it is dead.
    let m = Mediation::with_probes(&scratch, 200);
    let _b = carrier(&scratch, "call_answer.xml", m.carrier_b);
    m.wait_status("carrier-a never found dead", |s| {
        s["trunks"].as_array().is_some_and(|t| t.iter().any(|t| t["name"] == "carrier-a" && t["up"] == false))
    });
    let started = Instant::now();
    let out = branch_call(&scratch, &m, "call_uac.xml", "3012", "2125550100");
    assert_ok(&out, "call with carrier-a dead", &scratch);
    // 1 s of talk; a try at carrier-a would have cost a 32 s INVITE timeout.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let rows = m.cdrs();
    assert_eq!(rows.len(), 1, "{rows:?}");
    // Skipped, carrier-a was not tried: carrier-b is the one trunk tried, no failover.
    assert_eq!((rows[0][11].as_str(), rows[0][12].as_str(), rows[0][13].as_str()), ("carrier-b", "0", "200"));
    let log = std::fs::read_to_string(scratch.file("mediation.log")).unwrap_or_default();
    assert!(log.contains("trunk carrier-a is dead"), "{log}");
}

#[test]
fn an_inbound_did_call_goes_to_the_branch_user() {
    let scratch = Scratch::new("mediation-did");
    let m = Mediation::start(&scratch);
    // The registrar's place is taken by a sipp that answers as the branch phone would.
    let _phone = carrier(&scratch, "call_answer.xml", format!("127.0.0.1:{}", m.branch_port).parse().unwrap());
    let out = Sipp::new("call_uac.xml", m.addr)
        .key("caller", "+12125550100")
        .key("domain", m.addr.to_string())
        .arg("-s")
        .arg("+15559873012")
        .arg("-d")
        .arg("500")
        // From carrier-a's address: only a trunk's addresses may call in.
        .arg("-p")
        .arg(m.carrier_a.port().to_string())
        .arg("-mp")
        .arg(free_port().to_string())
        .arg("-trace_err")
        .run(&scratch.path, 20);
    assert_ok(&out, "DID call from carrier-a", &scratch);
    let rows = m.cdrs();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!((r[1].as_str(), r[5].as_str(), r[7].as_str(), r[8].as_str()), ("inbound", "+12125550100", "+15559873012", "3012"));
    assert_eq!((r[10].as_str(), r[11].as_str(), r[13].as_str()), ("did", "registrar", "200"));
}

#[test]
fn a_sip_trunk_registers_with_digest() {
    let scratch = Scratch::new("mediation-register");
    let m = Mediation::configured(
        &scratch,
        600_000,
        "registration = { user = \"branch7\", password = \"s3cret\", domain = \"carrier.test\" }",
        None,
        "",
    );
    let out = Command::new("sipp")
        .current_dir(&scratch.path)
        .args(["-sf"])
        .arg(holdfast_tests::bins::scenario("mediation_registrar.xml"))
        .args(["-i", "127.0.0.1", "-p", &m.carrier_a.port().to_string(), "-t", "u1", "-nostdin", "-m", "1"])
        .args(["-mp", &free_port().to_string(), "-trace_err"])
        .args(["-timeout", "15s", "-timeout_error"])
        .output()
        .expect("run sipp");
    assert_ok(&out, "registration of carrier-a", &scratch);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(scratch.file("mediation.log")).unwrap_or_default();
        if log.contains("trunk carrier-a registered for 300s") {
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_branch_phone_calls_the_pstn_through_registrar_and_mediation() {
    let scratch = Scratch::new("mediation-e2e");
    let mediation_port = free_port();
    let reg = Registrar::start(&scratch, &format!("auth = false\n[survival]\nmediation = \"127.0.0.1:{mediation_port}\""), &[]);
    let m = Mediation::configured(&scratch, 600_000, "", Some((mediation_port, reg.addr.port())), "");
    let _a = carrier(&scratch, "mediation_503.xml", m.carrier_a);
    let _b = carrier(&scratch, "call_answer.xml", m.carrier_b);
    let out = Sipp::new("call_uac.xml", reg.addr)
        .key("caller", "3012")
        .key("domain", DOMAIN)
        .arg("-s")
        .arg("2125550100")
        .arg("-d")
        .arg("1000")
        .arg("-mp")
        .arg(free_port().to_string())
        .arg("-trace_err")
        .run(&scratch.path, 20);
    assert_ok(&out, "phone -> registrar -> mediation -> carrier-b", &scratch);
    let rows = m.cdrs();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!((r[1].as_str(), r[5].as_str(), r[7].as_str()), ("outbound", "3012", "+12125550100"));
    assert_eq!((r[11].as_str(), r[12].as_str(), r[13].as_str(), r[15].as_str()), ("carrier-b", "1", "200", "BYE from caller"));
}

/// A user whose name is not a number shows its DID from sba-registrar's `[[directory]]` on the
/// PSTN (asserted by the registrar, RFC 3325); one without a number goes out anonymous.
#[test]
fn a_named_user_calls_the_pstn_with_its_directory_number_or_none() {
    let scratch = Scratch::new("mediation-named");
    let mediation_port = free_port();
    let config = format!(
        "auth = false\n[survival]\nmediation = \"127.0.0.1:{mediation_port}\"\n\
         [[directory]]\nsite = \"branch\"\nuser = \"alice\"\ne164 = \"+15559870500\"\n"
    );
    let reg = Registrar::start(&scratch, &config, &[]);
    let m = Mediation::configured(&scratch, 600_000, "", Some((mediation_port, reg.addr.port())), "");
    for caller in ["alice", "bob"] {
        // A carrier sipp takes one call.
        let _a = carrier(&scratch, "mediation_503.xml", m.carrier_a);
        let _b = carrier(&scratch, "call_answer.xml", m.carrier_b);
        let out = Sipp::new("call_uac.xml", reg.addr)
            .key("caller", caller)
            .key("domain", DOMAIN)
            .arg("-s")
            .arg("2125550100")
            .arg("-d")
            .arg("500")
            .arg("-mp")
            .arg(free_port().to_string())
            .arg("-trace_err")
            .run(&scratch.path, 20);
        assert_ok(&out, &format!("{caller} -> registrar -> mediation -> carrier-b"), &scratch);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut rows = m.cdrs();
    while rows.len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        rows = m.cdrs();
    }
    // caller(5), caller_sent(9)
    let sent: Vec<(&str, &str)> = rows.iter().map(|r| (r[5].as_str(), r[9].as_str())).collect();
    assert_eq!(sent, [("+15559870500", "+15559870500"), ("bob", "anonymous")], "{rows:?}");
}

#[test]
fn a_branch_phone_transfers_its_pstn_call_to_another_number() {
    let scratch = Scratch::new("mediation-refer");
    let m = Mediation::start(&scratch);
    let mut transferee = carrier(&scratch, "mediation_refer_transferee.xml", m.carrier_a);
    let mut target = carrier(&scratch, "mediation_refer_target.xml", m.carrier_b);
    let out = Sipp::new("mediation_refer_phone.xml", m.addr)
        .key("caller", "3012")
        .key("domain", m.addr.to_string())
        .key("target", "2125550199")
        .arg("-s")
        .arg("2125550100")
        .arg("-p")
        .arg(m.branch_port.to_string())
        .arg("-trace_err")
        .arg("-mp")
        .arg(free_port().to_string())
        .run(&scratch.path, 20);
    assert_ok(&out, "the referring phone", &scratch);
    let log = || std::fs::read_to_string(scratch.file("mediation.log")).unwrap_or_default();
    assert!(target.finished_ok(15), "the target answered and hung up\n{}", log());
    assert!(transferee.finished_ok(15), "the transferee was re-INVITEd, then hung up by the target\n{}", log());
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut rows = m.cdrs();
    while rows.len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        rows = m.cdrs();
    }
    assert_eq!(rows.len(), 2, "{rows:?}");
    // ...,end_cause(15),referred_by(16),transfer_of(17)
    let (first, moved) = (&rows[0], &rows[1]);
    assert_eq!((first[7].as_str(), first[11].as_str()), ("+12125550100", "carrier-a"));
    assert_eq!(first[15], "transferred to 2125550199 by 3012");
    assert_eq!((moved[6].as_str(), moved[7].as_str(), moved[11].as_str()), ("2125550199", "+12125550199", "carrier-b"));
    assert_eq!((moved[13].as_str(), moved[15].as_str()), ("200", "BYE from callee"));
    assert_eq!((moved[16].as_str(), moved[17].as_str()), ("3012", first[0].as_str()));
}

#[test]
fn session_intervals_too_small_are_refused_422_and_a_carrier_s_422_is_retried() {
    let scratch = Scratch::new("mediation-422");
    let m = Mediation::start(&scratch);
    let mut carrier_a = carrier(&scratch, "mediation_422_carrier.xml", m.carrier_a);
    let out = branch_call(&scratch, &m, "mediation_422_phone.xml", "3012", "2125550100");
    assert_ok(&out, "422 to the branch's 60 s session, then the call", &scratch);
    assert!(carrier_a.finished_ok(10), "carrier-a got an INVITE asking for its Min-SE");
    let rows = m.cdrs();
    assert_eq!(rows.len(), 1, "one call: a 422 is none: {rows:?}");
    assert_eq!((rows[0][11].as_str(), rows[0][12].as_str(), rows[0][13].as_str()), ("carrier-a", "0", "200"));
}

#[test]
fn sigterm_ends_the_calls_in_progress_and_stores_their_records() {
    let scratch = Scratch::new("mediation-sigterm");
    let mut m = Mediation::start(&scratch);
    let _a = carrier(&scratch, "call_answer.xml", m.carrier_a);
    // A call with 10 s of talk, stopped once it is answered.
    let mut phone = Peer(
        Sipp::new("call_uac.xml", m.addr)
            .key("caller", "3012")
            .key("domain", m.addr.to_string())
            .arg("-s")
            .arg("2125550100")
            .arg("-d")
            .arg("10000")
            .arg("-p")
            .arg(m.branch_port.to_string())
            .arg("-mp")
            .arg(free_port().to_string())
            .command(&scratch.path, 20)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run sipp"),
    );
    m.wait_status("the call never answered", |s| s["calls"].as_array().is_some_and(|c| c.iter().any(|c| c["answered"] == true)));
    let status = m.terminate();
    assert!(status.success(), "{status}");
    let rows = m.cdrs();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(!rows[0][3].is_empty(), "answered: {:?}", rows[0]);
    assert_eq!((rows[0][13].as_str(), rows[0][14].as_str(), rows[0][15].as_str()), ("200", "41", "mediation stopped"));
    let log = std::fs::read_to_string(scratch.file("mediation.log")).unwrap_or_default();
    assert!(log.contains("call records: 1 stored"), "{log}");
    // The phone got our BYE in its pause: its scenario fails, as it should.
    assert!(!phone.finished_ok(5));
}

#[test]
fn a_withheld_branch_caller_reaches_the_carrier_anonymous_with_its_asserted_number() {
    let scratch = Scratch::new("mediation-privacy-out");
    let mediation_port = free_port();
    let config = format!(
        "auth = false\n[survival]\nmediation = \"127.0.0.1:{mediation_port}\"\n\
         [[directory]]\nsite = \"branch\"\nuser = \"alice\"\ne164 = \"+15559870500\"\n"
    );
    let reg = Registrar::start(&scratch, &config, &[]);
    let m = Mediation::configured(&scratch, 600_000, "", Some((mediation_port, reg.addr.port())), "");
    let mut carrier_a = carrier(&scratch, "privacy_uas.xml", m.carrier_a);
    // alice asks for privacy and asserts a number of her own choosing (sba-registrar replaces it).
    let out = Sipp::new("privacy_uac.xml", reg.addr)
        .key("from", &format!("<sip:alice@{DOMAIN}>"))
        .key("asserted", &format!("<sip:+15550000000@{DOMAIN}>"))
        .key("domain", DOMAIN)
        .arg("-s")
        .arg("2125550100")
        .arg("-mp")
        .arg(free_port().to_string())
        .arg("-trace_err")
        .run(&scratch.path, 20);
    assert_ok(&out, "alice (withheld) -> registrar -> mediation -> carrier-a (busy)", &scratch);
    assert!(carrier_a.finished_ok(10), "carrier-a took no call");
    let log = messages_log(&scratch, "privacy_uas");
    let invite = first_invite(&log);
    let header = |name: &str| invite.lines().find_map(|l| l.trim().strip_prefix(name)).map(str::trim).unwrap_or_default();
    assert!(header("From:").contains("<sip:anonymous@anonymous.invalid>"), "{invite}");
    assert_eq!(header("Privacy:"), "id", "{invite}");
    assert!(header("P-Asserted-Identity:").starts_with("<sip:+15559870500@"), "{invite}");
    assert!(!invite.contains("15550000000"), "the phone's own assertion crossed:\n{invite}");
    let rows = m.cdrs();
    // caller(5), caller_sent(9)
    assert_eq!((rows[0][5].as_str(), rows[0][9].as_str()), ("+15559870500", "anonymous"), "{rows:?}");
}

#[test]
fn a_withheld_pstn_caller_reaches_the_phone_anonymous_without_its_number() {
    let scratch = Scratch::new("mediation-privacy-in");
    let m = Mediation::start(&scratch);
    // carrier-a withholds the caller as sba-gateway does for a restricted presentation.
    let invite = did_call_to_the_phone(&scratch, &m, "\"Anonymous\" <sip:anonymous@anonymous.invalid>", "<sip:+12125550123@127.0.0.1>");
    assert!(invite.contains("<sip:anonymous@anonymous.invalid>") && invite.contains("Privacy: id"), "{invite}");
    assert!(!invite.contains("2125550123"), "the withheld number reached the phone:\n{invite}");
    let rows = m.cdrs();
    assert_eq!((rows[0][5].as_str(), rows[0][9].as_str()), ("+12125550123", "anonymous"), "{rows:?}");
}

/// A DID call from carrier-a (sipp) with `from` and P-Asserted-Identity `asserted`, taken by a
/// sipp in the registrar's place that answers busy; the INVITE that reached it.
fn did_call_to_the_phone(scratch: &Scratch, m: &Mediation, from: &str, asserted: &str) -> String {
    let mut phone = carrier(scratch, "privacy_uas.xml", format!("127.0.0.1:{}", m.branch_port).parse().unwrap());
    let out = Sipp::new("privacy_uac.xml", m.addr)
        .key("from", from)
        .key("asserted", asserted)
        .key("domain", &m.addr.to_string())
        .arg("-s")
        .arg("+15559873012")
        .arg("-p")
        .arg(m.carrier_a.port().to_string())
        .arg("-mp")
        .arg(free_port().to_string())
        .arg("-trace_err")
        .run(&scratch.path, 20);
    assert_ok(&out, &format!("DID call from carrier-a from {from} (busy)"), scratch);
    assert!(phone.finished_ok(10), "the phone took no call");
    first_invite(&messages_log(scratch, "privacy_uas")).to_string()
}

/// A PSTN caller whose number carries `%0D%0A` and a header of its own (a carrier passing on
/// what it was given): what mediation writes towards the phone holds no such header; the number
/// is re-escaped, never written raw.
#[test]
fn cr_lf_in_a_caller_s_user_part_never_reaches_the_phone_s_wire() {
    let scratch = Scratch::new("mediation-injection");
    let m = Mediation::start(&scratch);
    let forged = "<sip:+12125550123%0D%0AX-Injected:%20yes@127.0.0.1>";
    let invite = did_call_to_the_phone(&scratch, &m, forged, forged);
    assert!(!invite.lines().any(|l| l.trim_start().to_ascii_lowercase().starts_with("x-injected")), "a header was injected:\n{invite}");
}

/// A second trunk, an IP-PBX on 127.0.0.2: a configured peer that is no party to the calls
/// between the branch and the carriers.
const PBX_TRUNK: &str = "[[mediation.trunks]]\nname = \"pbx\"\nkind = \"pbx\"\naddress = \"127.0.0.2:5060\"\noptions = false\n";

/// The next request with `method` on `sock` (anything else skipped; 10 s at most per message).
fn next_request(sock: &UdpSocket, method: &Method) -> Request {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = sock.recv_from(&mut buf).unwrap_or_else(|e| panic!("no {method} came: {e}"));
        if let Ok(Message::Request(r)) = wire::parse(&buf[..n]) {
            if &r.method == method {
                return r;
            }
        }
    }
}

/// The requests that arrive on `sock` before the next final response, and that response.
fn requests_until_final(sock: &UdpSocket) -> (Vec<Request>, Response) {
    let mut buf = vec![0u8; 65536];
    let mut requests = Vec::new();
    loop {
        let (n, _) = sock.recv_from(&mut buf).expect("a final response");
        match wire::parse(&buf[..n]) {
            Ok(Message::Response(r)) if r.status >= 200 => return (requests, r),
            Ok(Message::Request(r)) => requests.push(r),
            _ => {}
        }
    }
}

/// A request in a dialog sent from `via` (where its answer goes): From and To as the sender
/// of that side writes them.
fn in_dialog_request(method: Method, via: SocketAddr, from: &str, to: &str, call_id: &str, seq: u32, branch: &str) -> Request {
    let mut r = Request::new(method.clone(), Uri::parse("sip:mediation@127.0.0.1").unwrap());
    r.headers.add(HeaderName::Via, format!("SIP/2.0/UDP {via};branch=z9hG4bK-{branch}"));
    r.headers.add(HeaderName::From, from.to_string());
    r.headers.add(HeaderName::To, to.to_string());
    r.headers.add(HeaderName::CallId, call_id.to_string());
    r.headers.add(HeaderName::CSeq, format!("{seq} {method}"));
    r.headers.add(HeaderName::MaxForwards, "70");
    r
}

/// Whether RTP crosses the relay both ways between `a` (which sends to `relay_a`) and `b` (to
/// `relay_b`): a packet each way within 10 s.
fn audio_crosses(a: &UdpSocket, relay_a: SocketAddr, b: &UdpSocket, relay_b: SocketAddr) -> bool {
    let mut buf = [0u8; 2048];
    let mut one_way = |from: &UdpSocket, to: SocketAddr, at: &UdpSocket| {
        at.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        (0..50u16).any(|seq| {
            from.send_to(&rtp_packet(seq, 0, &[0x55; 160]), to).unwrap();
            at.recv_from(&mut buf).is_ok()
        })
    };
    one_way(a, relay_a, b) && one_way(b, relay_b, a)
}

/// Call-ID and tags are no secret from whoever saw a call. A stranger on 127.0.0.3 that saw the
/// INVITE to carrier-a answers it 486 first: dropped (counted), carrier-a's 200 answers the call.
/// During the call (the test plays both ends), the IP-PBX trunk on 127.0.0.2 forges a BYE
/// for the phone's leg and a re-INVITE for the carrier's leg (its offer naming the forger's RTP
/// port), and carrier-a itself a BYE for the phone's leg, all with the right Call-IDs and tags:
/// each is refused 403 and counted, neither end hears of it, and the call's audio and its real
/// BYE go on.
#[test]
fn in_dialog_requests_forged_by_another_peer_are_refused_and_the_call_goes_on() {
    let scratch = Scratch::new("mediation-forged-dialog");
    let m = Mediation::configured(&scratch, 600_000, "", None, PBX_TRUNK);
    let carrier = udp_socket(None, &m.carrier_a.to_string());
    carrier.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let carrier_rtp = udp_socket(None, "127.0.0.1:0");
    let branch = Branch::new(&m);
    branch.call_to_pstn("inv");
    let b_invite = next_request(&carrier, &Method::INVITE);
    let stranger = udp_socket(None, "127.0.0.3:0");
    stranger.send_to(&Message::Response(b_invite.response(486)).to_bytes().unwrap(), m.addr).unwrap();
    m.wait_status("the stranger's answer counted", |s| s["refused"]["not_a_peer"] == 1);
    let mut b_ok = b_invite.response(200);
    b_ok.headers.add(HeaderName::Contact, format!("<sip:carrier@{}>", m.carrier_a));
    b_ok.headers.add(HeaderName::ContentType, "application/sdp");
    b_ok.body = pcmu_offer(carrier_rtp.local_addr().unwrap().port());
    carrier.send_to(&Message::Response(b_ok.clone()).to_bytes().unwrap(), m.addr).unwrap();
    next_request(&carrier, &Method::ACK);
    let ok = branch.response(200);
    assert_eq!(ok.status, 200, "{ok:?}");
    let a_to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let contact = ok.headers.get(&HeaderName::Contact).unwrap().trim_matches(['<', '>']).to_string();
    branch.send(&branch.request(Method::ACK, &contact, 1, &a_to, "ack"));
    let (relay_a, relay_b) = (sdp_audio(&ok.body), sdp_audio(&b_invite.body));
    assert!(audio_crosses(&branch.rtp, relay_a, &carrier_rtp, relay_b), "no audio before the forgeries");

    // The carrier's leg as carrier-a writes it, the phone's as the branch does.
    let (b_from, b_to) = (b_ok.headers.get(&HeaderName::To).unwrap(), b_invite.headers.get(&HeaderName::From).unwrap());
    let b_call = b_invite.call_id().unwrap();
    let a_from = "<sip:3012@branch.test>;tag=branch";
    let pbx = udp_socket(None, "127.0.0.2:0");
    pbx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let pbx_rtp = udp_socket(None, "127.0.0.2:0");
    let pbx_addr = pbx.local_addr().unwrap();
    let mut hijack = in_dialog_request(Method::INVITE, pbx_addr, b_from, b_to, b_call, 2, "hijack");
    hijack.headers.add(HeaderName::Contact, format!("<sip:carrier@{pbx_addr}>"));
    hijack.headers.add(HeaderName::ContentType, "application/sdp");
    hijack.body = pcmu_offer(pbx_rtp.local_addr().unwrap().port());
    let forgeries = [
        (&pbx, in_dialog_request(Method::BYE, pbx_addr, a_from, &a_to, "audio-call@test", 2, "pbx-bye")),
        (&pbx, hijack),
        (&carrier, in_dialog_request(Method::BYE, m.carrier_a, a_from, &a_to, "audio-call@test", 3, "carrier-bye")),
    ];
    for (forger, request) in forgeries {
        forger.send_to(&Message::Request(request.clone()).to_bytes().unwrap(), m.addr).unwrap();
        let (_, answer) = requests_until_final(forger);
        assert_eq!((answer.status, answer.reason.as_str()), (403, "Forbidden (not this dialog's peer)"), "{request:?}");
    }
    m.wait_status("the forgeries counted, the call up", |s| {
        s["refused"]["not_the_dialog_peer"] == 3 && s["refused"]["not_a_peer"] == 1 && s["calls"].as_array().is_some_and(|c| c.len() == 1)
    });
    assert!(audio_crosses(&branch.rtp, relay_a, &carrier_rtp, relay_b), "the call's audio stopped after the forgeries");
    pbx_rtp.set_nonblocking(true).unwrap();
    assert!(pbx_rtp.recv_from(&mut [0u8; 2048]).is_err(), "the forged offer drew the call's audio");

    // carrier-a's own BYE: the first request the phone's side hears of since the call began.
    let bye = in_dialog_request(Method::BYE, m.carrier_a, b_from, b_to, b_call, 2, "real-bye");
    carrier.send_to(&Message::Request(bye).to_bytes().unwrap(), m.addr).unwrap();
    let (heard, answer) = requests_until_final(&carrier);
    assert!(heard.is_empty(), "a forgery reached carrier-a: {heard:?}");
    assert_eq!(answer.status, 200);
    let mut buf = vec![0u8; 65536];
    let first = loop {
        let (n, _) = branch.sip.recv_from(&mut buf).expect("the BYE at the phone's side");
        if let Ok(Message::Request(r)) = wire::parse(&buf[..n]) {
            break r;
        }
    };
    assert_eq!(first.method, Method::BYE, "a forgery reached the phone's side: {first:?}");
    branch.sip.send_to(&Message::Response(first.response(200)).to_bytes().unwrap(), m.addr).unwrap();
    let rows = m.cdrs();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0][11].as_str(), rows[0][15].as_str()), ("carrier-a", "BYE from callee"));
}
