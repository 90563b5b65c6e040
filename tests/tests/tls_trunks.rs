//! sba-mediation's trunks over TLS. A call goes out over a TLS trunk to Kamailio with its tls
//! module as the carrier's edge, which asks for a client certificate (mutual TLS: the branch
//! shows its `sbactl tls install`ed appliance certificate), and on to the carrier's switch
//! (sipp); the BYE follows over TLS. A call from the carrier's switch comes in over TLS the
//! other way (the edge checks the mediation's certificate) to the branch's DID. The route's
//! first trunk is hijacked: an attacker at 127.0.0.2 presents a certificate for that carrier's
//! name from its own CA; it is refused with a log line naming the trunk, the expected name and
//! the reason, receives no SIP, and the health checks take it out of the hunt, so the call
//! completes on the next trunk; its INVITE over plain UDP from that address is refused (a TLS
//! trunk is only believed over TLS), and so is its TLS connection in to the mediation: a
//! carrier connecting in must show its client certificate, from the trunk's `tls_ca` for its
//! `tls_name` (the attacker's, from its own CA, and none at all are refused at the handshake,
//! with a log line; the real carrier's edge shows its own and its call completes).
//! A TCP trunk (Kamailio's edge over TCP): our Contact says transport=tcp, so the carrier's
//! in-dialog requests (its switch's BYE) come back over TCP.
//! Against openssl s_server: a trunk whose certificate carries its `tls_name` and chains to its
//! `tls_ca` receives the health check's OPTIONS inside TLS; one presenting a certificate for
//! another name from the same CA is refused. The mediation's own TLS listener presents the
//! appliance certificate `sbactl tls show` prints.
use holdfast_tests::bins::bin;
use holdfast_tests::carrier::{Carrier, Edge};
use holdfast_tests::kamailio::KamailioTls;
use holdfast_tests::netns::KillOnDrop;
use holdfast_tests::pki::Pki;
use holdfast_tests::ports::{free_port, media_ports};
use holdfast_tests::scratch::{wait_bound_udp, Scratch};
use holdfast_tests::sipp::Sipp;
use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// openssl s_server on `addr` presenting `cert`, what it receives written to `out`.
fn tls_server(cert: &(PathBuf, PathBuf), addr: SocketAddr, out: &Path) -> KillOnDrop {
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-accept", &addr.to_string(), "-cert"])
        .arg(&cert.0)
        .arg("-key")
        .arg(&cert.1)
        // s_server ends a connection at EOF on its input: keep it open.
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(out).expect("s_server output"))
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    KillOnDrop(child)
}

/// A `[[mediation.trunks]]` block for a carrier reached over TLS.
fn tls_trunk(name: &str, addr: SocketAddr, tls_name: &str, ca: &Path) -> String {
    format!(
        "[[mediation.trunks]]\nname = \"{name}\"\nkind = \"carrier\"\naddress = \"{addr}\"\ntransport = \"tls\"\n\
         tls_name = \"{tls_name}\"\ntls_ca = \"{}\"\n\n",
        ca.display()
    )
}

/// sba-mediation on loopback: SIP on `sip_port`, TLS on `tls_port` with the certificate in
/// `dir/tls`, the branch's calls from `branch_port`, health checks every 200 ms; `more` goes
/// at the end of [mediation], `tables` after it.
struct Mediation {
    dir: PathBuf,
    addr: SocketAddr,
    _process: KillOnDrop,
}

impl Mediation {
    fn start(dir: &Path, sip_port: u16, tls_port: u16, branch_port: u16, more: &str, tables: &str) -> Mediation {
        let media = media_ports();
        let config = dir.join("sba.toml");
        std::fs::write(
            &config,
            format!(
                "[mediation]\nlisten = \"127.0.0.1:{sip_port}\"\nregistrar = \"127.0.0.1:{branch_port}\"\n\
                 tls_listen = \"127.0.0.1:{tls_port}\"\ntls_dir = \"{}\"\ndb = \"{}\"\noptions_interval_ms = 200\n\
                 media_ports = [{}, {}]\n{more}\n{tables}",
                dir.join("tls").display(),
                dir.join("sba.db").display(),
                media.start(),
                media.end(),
            ),
        )
        .expect("write config");
        let process = Command::new(bin("sba-mediation"))
            .arg("--config")
            .arg(&config)
            .env("HOLDFAST_LOG_STDERR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sba-mediation.log")).expect("log"))
            .spawn()
            .expect("start sba-mediation");
        let addr = SocketAddr::from(([127, 0, 0, 1], sip_port));
        let m = Mediation { dir: dir.to_path_buf(), addr, _process: KillOnDrop(process) };
        wait_until("sba-mediation's status file", || m.status().is_some(), || m.log());
        m
    }

    fn log(&self) -> String {
        read(&self.dir.join("sba-mediation.log"))
    }

    fn status(&self) -> Option<serde_json::Value> {
        serde_json::from_str(&read(&self.dir.join("sba.db.mediation.json"))).ok()
    }

    /// Whether the health checks hold trunk `name` up.
    fn trunk_up(&self, name: &str) -> Option<bool> {
        let status = self.status()?;
        let trunks = status["trunks"].as_array()?;
        trunks.iter().find(|t| t["name"] == name).and_then(|t| t["up"].as_bool())
    }
}

/// sipp answering one call on 127.0.0.1:`port`, echoing its media, beside the test.
fn answerer(dir: &Path, port: u16) -> KillOnDrop {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut cmd = Sipp::new("call_answer.xml", addr).arg("-p").arg(port.to_string()).arg("-mp").arg(free_port().to_string()).arg("-rtp_echo").arg("-trace_err").command(dir, 30);
    let sipp = KillOnDrop(cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("sipp (apt-get install sip-tester)"));
    wait_bound_udp(addr, WAIT);
    sipp
}

/// Waits until an `answerer` has ended its call; panics unless it went well.
fn answered(sipp: &mut KillOnDrop, what: &str, logs: impl Fn() -> String) {
    wait_until(what, || matches!(sipp.0.try_wait(), Ok(Some(_))), &logs);
    let status = sipp.0.try_wait().ok().flatten();
    assert!(status.is_some_and(|s| s.success()), "{what}: {status:?}\n{}", logs());
}

/// One call by sipp from 127.0.0.1:`port` through `target` to `number`: 1 s of talk, then the
/// caller's BYE; panics with `logs` unless it went well.
fn call(dir: &Path, target: SocketAddr, caller: &str, number: &str, port: u16, what: &str, logs: impl Fn() -> String) {
    let out = Sipp::new("call_uac.xml", target)
        .key("caller", caller)
        .key("domain", target.to_string())
        .arg("-s")
        .arg(number)
        .arg("-d")
        .arg("1000")
        // The last -p wins.
        .arg("-p")
        .arg(port.to_string())
        .arg("-mp")
        .arg(free_port().to_string())
        .arg("-trace_err")
        .run(dir, 20);
    let tail = String::from_utf8_lossy(&out.stdout).lines().rev().take(20).collect::<Vec<_>>().join("\n");
    assert!(out.status.success(), "{what} failed ({}):\n{tail}\n{}", out.status, logs());
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{}", context());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn calls_go_out_and_come_in_over_a_mutual_tls_trunk_and_a_hijacked_trunk_is_refused() {
    let scratch = Scratch::new("tls-carrier");
    let dir = &scratch.path;
    let carriers = Pki::new(dir, "carriers");
    let enterprise = Pki::new(dir, "enterprise");
    let attacker = Pki::new(dir, "attacker");
    enterprise.install_appliance("sba", "DNS:sba.branch.example,IP:127.0.0.1", &dir.join("tls"));
    let (edge_cert, edge_key) = carriers.issue("edge", "DNS:sip.carrier-a.example");

    // Carrier A: Kamailio's TLS edge, asking for a client certificate from the enterprise's
    // CA, relaying to its switch (sipp answering one call, echoing the media).
    let switch = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut switch_sipp = answerer(dir, switch.port());
    let tls = KamailioTls { cert: &edge_cert, key: &edge_key, ca: &enterprise.ca };
    let (sip_port, tls_port, branch_port) = (free_port(), free_port(), free_port());
    let edge = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ours = SocketAddr::from(([127, 0, 0, 1], tls_port));
    let carrier = Carrier::start(dir, &tls, edge, SocketAddr::from(([127, 0, 0, 1], free_port())), switch, ours);

    // Carrier B's address is taken over: the attacker at 127.0.0.2 shows a certificate for
    // carrier B's name, signed by its own CA.
    let hijacked = SocketAddr::from(([127, 0, 0, 2], free_port()));
    let attacker_out = dir.join("attacker.out");
    let mallory = attacker.issue("mallory", "DNS:sip.carrier-b.example");
    let _attacker = tls_server(&mallory, hijacked, &attacker_out);

    let tables = format!(
        "[[mediation.rules]]\nname = \"national\"\npattern = '1?([2-9]\\d{{9}})'\nreplace = '+1$1'\n\n\
         [[mediation.policies]]\nname = \"national\"\nusages = [\"local\", \"national\"]\n\n\
         [[mediation.routes]]\nname = \"national\"\npattern = '\\+1\\d{{10}}'\nusage = \"national\"\ntrunks = [\"carrier-b\", \"carrier-a\"]\n\n\
         [[mediation.inbound]]\npattern = '\\+15559873(\\d{{3}})'\nuser = '3$1'\n\n{}{}",
        tls_trunk("carrier-b", hijacked, "sip.carrier-b.example", &carriers.ca),
        tls_trunk("carrier-a", edge, "sip.carrier-a.example", &carriers.ca),
    );
    let m = Mediation::start(dir, sip_port, tls_port, branch_port, "default_policy = \"national\"\n", &tables);

    let refusal = format!("TLS to trunk carrier-b {hijacked} refused (expected name sip.carrier-b.example): invalid peer certificate");
    wait_until("the hijacked trunk's refusal", || m.log().contains(&refusal), || m.log());
    wait_until("carrier-b out of the hunt", || m.trunk_up("carrier-b") == Some(false), || format!("{:?}\n{}", m.status(), m.log()));
    assert_eq!(m.trunk_up("carrier-a"), Some(true), "carrier A's edge answers the OPTIONS over TLS:\n{}\n{}", m.log(), carrier.log_text());

    // The branch's call (sipp from the registrar's address): dialled 2125550100, +12125550100
    // at the carrier's switch after its TLS edge; 1 s of talk, the caller's BYE.
    let logs = || format!("--- sba-mediation ---\n{}\n--- carrier ---\n{}", m.log(), carrier.log_text());
    call(dir, m.addr, "3012", "2125550100", branch_port, "the call out over the TLS trunk", logs);
    answered(&mut switch_sipp, "the carrier's switch", logs);

    // The carrier saw the INVITE over TLS with the branch's certificate verified, and the
    // caller's BYE over TLS too.
    let log = carrier.log_text();
    assert!(log.contains("INVITE +12125550100 over tls from 127.0.0.1, client certificate CN=sba verified=1"), "{log}");
    assert!(log.contains("in-dialog BYE over tls from 127.0.0.1"), "{log}");
    // The attacker never saw a SIP message (no INVITE, no number, no SDP).
    assert!(!read(&attacker_out).contains("SIP/2.0"), "the hijacked address received SIP: {}", read(&attacker_out));
    let line = m.log().lines().find(|l| l.contains(&refusal)).unwrap_or_default().to_string();
    assert!(line.contains("UnknownIssuer"), "the reason is named: {line}");

    // A call in: the carrier's switch calls the branch's DID; its edge brings it to the
    // mediation's TLS listener (checking the appliance certificate by the enterprise CA), the
    // mediation to the branch (a sipp answering at the registrar's address); the switch hangs up.
    let mut branch = answerer(dir, branch_port);
    call(dir, carrier.udp_addr, "+12125550123", "+15559873001", free_port(), "the call in over the TLS trunk", logs);
    answered(&mut branch, "the branch's answer", logs);
    assert!(carrier.log_text().contains("INVITE +15559873001 from the switch to the customer over tls"), "{}", carrier.log_text());

    // The attacker, at carrier B's address, connects in over TLS as carrier B would, showing
    // its certificate for carrier B's name from its own CA, then none: both refused at the
    // handshake, logged with the trunk and the reason; no INVITE reaches the branch.
    let ours = SocketAddr::from(([127, 0, 0, 1], tls_port));
    let answer = tls_invite_from("127.0.0.2", ours, Some(&mallory), "+15559873001");
    assert!(!answer.contains("SIP/2.0"), "the attacker's INVITE over TLS was answered: {answer}");
    let refused_line = |reason: &'static str| {
        let log = m.log();
        log.lines().any(|l| l.contains("TLS from trunk carrier-b 127.0.0.2:") && l.contains("refused (expected name sip.carrier-b.example)") && l.contains(reason))
    };
    wait_until("the refusal of the attacker's client certificate", || refused_line("UnknownIssuer"), || m.log());
    let answer = tls_invite_from("127.0.0.2", ours, None, "+15559873001");
    assert!(!answer.contains("SIP/2.0"), "an INVITE over TLS without a client certificate was answered: {answer}");
    wait_until("the refusal of a connection without a client certificate", || refused_line("no certificates"), || m.log());

    // The attacker, at carrier B's address, calls the branch's DID over plain UDP as carrier B
    // would: a TLS trunk's address over UDP (a source forged at will) is no trunk.
    assert_eq!(plain_invite_from(SocketAddr::from(([127, 0, 0, 2], 0)), m.addr, "+15559873001"), 403, "{}", m.log());
    let refused = || m.status().and_then(|s| s["refused"]["not_a_peer"].as_u64());
    wait_until("the refusal counted", || refused() == Some(1), || format!("{:?}", m.status()));
}

/// An INVITE without SDP over TLS (openssl s_client, showing `cert` when given) from `ip` to
/// `to` for `number`; what came back once the connection closed (or after 10 s).
fn tls_invite_from(ip: &str, to: SocketAddr, cert: Option<&(PathBuf, PathBuf)>, number: &str) -> String {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-quiet", "-bind", &format!("{ip}:0"), "-connect", &to.to_string()]);
    if let Some((cert, key)) = cert {
        cmd.arg("-cert").arg(cert).arg("-key").arg(key);
    }
    let mut client = KillOnDrop(cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("openssl s_client"));
    let invite = format!(
        "INVITE sip:{number}@{to} SIP/2.0\r\nVia: SIP/2.0/TLS {ip}:5061;branch=z9hG4bK-tls-in-1;rport\r\n\
         From: <sip:+12125550123@{ip}>;tag=tlsin1\r\nTo: <sip:{number}@{to}>\r\nCall-ID: tls-in-1@{ip}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:caller@{ip};transport=tls>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    // The refusal closes the connection: s_client's output ends.
    let mut stdin = client.0.stdin.take().expect("stdin");
    let _ = stdin.write_all(invite.as_bytes());
    let mut stdout = client.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        let _ = tx.send(out);
    });
    let out = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    drop(stdin);
    String::from_utf8_lossy(&out).into_owned()
}

/// An INVITE without SDP over UDP from `from` to `to` for `number`; its final status.
fn plain_invite_from(from: SocketAddr, to: SocketAddr, number: &str) -> u16 {
    invite_from(from, to, "sip", number)
}

/// `plain_invite_from` with a Request-URI of `scheme` ("sip", "sips").
fn invite_from(from: SocketAddr, to: SocketAddr, scheme: &str, number: &str) -> u16 {
    let sock = UdpSocket::bind(from).expect("bind");
    sock.set_read_timeout(Some(WAIT)).expect("timeout");
    let local = sock.local_addr().expect("addr");
    let invite = format!(
        "INVITE {scheme}:{number}@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-plain-1;rport\r\n\
         From: <sip:+12125550123@{local}>;tag=plain1\r\nTo: <sip:{number}@{to}>\r\nCall-ID: plain-1@{local}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:caller@{local}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(invite.as_bytes(), to).expect("send");
    let mut buf = [0u8; 4096];
    loop {
        let (len, _) = sock.recv_from(&mut buf).expect("no final answer to the plain INVITE");
        let status = std::str::from_utf8(&buf[..len]).ok().and_then(|t| t.split(' ').nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
        if status >= 200 {
            return status;
        }
    }
}

#[test]
fn a_trunk_is_reached_over_tls_by_name_and_a_wrong_certificate_is_refused_and_logged() {
    let scratch = Scratch::new("tls-trunks");
    let dir = &scratch.path;
    let carriers = Pki::new(dir, "carriers");
    let (good, bad) = (SocketAddr::from(([127, 0, 0, 1], free_port())), SocketAddr::from(([127, 0, 0, 1], free_port())));
    let (good_out, bad_out) = (dir.join("good.out"), dir.join("bad.out"));
    let _good = tls_server(&carriers.issue("good", "DNS:sip.carrier.example"), good, &good_out);
    let _bad = tls_server(&carriers.issue("bad", "DNS:other.example"), bad, &bad_out);

    let (sip_port, tls_port) = (free_port(), free_port());
    let trunks = tls_trunk("itsp", good, "sip.carrier.example", &carriers.ca) + &tls_trunk("impostor", bad, "sip.carrier.example", &carriers.ca);
    let m = Mediation::start(dir, sip_port, tls_port, free_port(), "", &trunks);

    wait_until("the OPTIONS inside TLS at the trunk whose certificate verifies", || read(&good_out).contains("OPTIONS sip:"), || m.log());
    let expected = format!("TLS to trunk impostor {bad} refused (expected name sip.carrier.example)");
    wait_until("the refusal's log line", || m.log().contains(&expected), || m.log());
    let line = m.log().lines().find(|l| l.contains(&expected)).unwrap_or_default().to_string();
    assert!(line.contains("not valid for name") && line.contains("other.example"), "the reason is named: {line}");
    assert!(!read(&bad_out).contains("SIP/2.0"), "the impostor received SIP: {}", read(&bad_out));
    assert!(read(&good_out).contains("SIP/2.0/TLS"), "the OPTIONS says it travels over TLS: {}", read(&good_out));

    // The listener presents the appliance certificate.
    let script = format!("openssl s_client -connect 127.0.0.1:{tls_port} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256");
    let presented = Command::new("sh").args(["-c", &script]).output().expect("openssl s_client");
    let presented = String::from_utf8_lossy(&presented.stdout).trim().rsplit('=').next().unwrap_or_default().to_string();
    let shown = Command::new(bin("sbactl")).args(["tls", "show", "--dir"]).arg(dir.join("tls")).output().expect("sbactl");
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    let fingerprint = shown.lines().find_map(|l| l.strip_prefix("SHA-256:")).map(str::trim).unwrap_or_else(|| panic!("{shown}"));
    assert_eq!(presented, fingerprint, "{shown}");
}

#[test]
fn a_tcp_trunk_names_tcp_in_our_contact_so_the_carrier_s_bye_comes_back_over_tcp() {
    let scratch = Scratch::new("tcp-carrier");
    let dir = &scratch.path;
    // Carrier A: Kamailio's edge over TCP, relaying to its switch (sipp answering one call).
    let switch = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut switch_sipp = answerer(dir, switch.port());
    let (sip_port, tls_port, branch_port) = (free_port(), free_port(), free_port());
    let edge = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let ours = SocketAddr::from(([127, 0, 0, 1], sip_port));
    let carrier = Carrier::start_edge(dir, Edge::Tcp, edge, SocketAddr::from(([127, 0, 0, 1], free_port())), switch, ours);
    let tables = format!(
        "[[mediation.rules]]\nname = \"national\"\npattern = '1?([2-9]\\d{{9}})'\nreplace = '+1$1'\n\n\
         [[mediation.policies]]\nname = \"national\"\nusages = [\"local\", \"national\"]\n\n\
         [[mediation.routes]]\nname = \"national\"\npattern = '\\+1\\d{{10}}'\nusage = \"national\"\ntrunks = [\"carrier-a\"]\n\n\
         [[mediation.inbound]]\npattern = '\\+15559873(\\d{{3}})'\nuser = '3$1'\n\n\
         [[mediation.trunks]]\nname = \"carrier-a\"\nkind = \"carrier\"\naddress = \"{edge}\"\ntransport = \"tcp\"\n"
    );
    let m = Mediation::start(dir, sip_port, tls_port, branch_port, "default_policy = \"national\"\n", &tables);
    let logs = || format!("--- sba-mediation ---\n{}\n--- carrier ---\n{}", m.log(), carrier.log_text());
    wait_until("carrier-a up", || m.trunk_up("carrier-a") == Some(true), logs);

    // Out: the branch's call reaches the switch over the TCP trunk; the caller's BYE follows.
    call(dir, m.addr, "3012", "2125550100", branch_port, "the call out over the TCP trunk", logs);
    answered(&mut switch_sipp, "the carrier's switch", logs);
    let log = carrier.log_text();
    assert!(log.contains("INVITE +12125550100 over tcp from 127.0.0.1"), "{log}");
    assert!(log.contains("in-dialog BYE over tcp from 127.0.0.1"), "{log}");

    // A sips: call (TLS on every hop, RFC 5630) has no TLS trunk on its route: 416, and
    // nothing reaches the carrier.
    let invites = carrier.log_text().matches("INVITE +1").count();
    assert_eq!(invite_from(SocketAddr::from(([127, 0, 0, 1], branch_port)), m.addr, "sips", "2125550101"), 416, "{}", m.log());
    assert_eq!(carrier.log_text().matches("INVITE +1").count(), invites, "{}", carrier.log_text());

    // In: the switch calls the DID, the edge brings it over TCP, the branch answers and the
    // switch hangs up: its BYE goes to our Contact, over TCP because the Contact says so.
    let mut branch = answerer(dir, branch_port);
    call(dir, carrier.udp_addr, "+12125550123", "+15559873001", free_port(), "the call in over the TCP trunk", logs);
    answered(&mut branch, "the branch's answer", logs);
    let log = carrier.log_text();
    assert!(log.contains("INVITE +15559873001 from the switch to the customer over tcp"), "{log}");
    assert!(log.contains(&format!("sent BYE to 127.0.0.1:{sip_port} proto 2")), "the carrier's BYE went to our Contact over TCP:\n{log}");
}
