//! Limits on what the network can make sba-registrar hold, each attacked from 127.0.0.2 (or from
//! 127.0.0.1 on a port of the attacker's: on loopback, what a UDP packet with the phone's forged
//! address looks like to the registrar) while the phone at 127.0.0.1 (sipp, or a small UA)
//! keeps registering: the per-source guard, the digest failure throttle, TCP connections per
//! source and their idle timeout, live transactions.
use holdfast_tests::branch::status_of;
use holdfast_tests::registrar::{Registrar, DOMAIN};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::sip_client::{final_response, Ua};
use holdfast_tests::sipp::Sipp;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// sipp 3.6 answers only the first challenge it reads, and knows only MD5.
const SIPP_AUTH: &str = "digest_algorithms = [\"MD5\", \"SHA-256\"]\n";

/// The phone: sipp registers, refreshes and unregisters `user` from 127.0.0.1.
fn phone_registers(scratch: &Scratch, reg: &Registrar, user: &str, password: &str) {
    let out = Sipp::new("register.xml", reg.addr)
        .key("user", user)
        .key("domain", DOMAIN)
        .arg("-au")
        .arg(user)
        .arg("-ap")
        .arg(password)
        .run(&scratch.path, 30);
    assert!(
        out.status.success(),
        "the phone could not register: {}",
        String::from_utf8_lossy(&out.stdout).lines().rev().take(15).collect::<Vec<_>>().join("\n")
    );
}

/// `refused[key]` in `sbactl status --json`, once it is at least `at_least` (within 15 s).
fn wait_refused(reg: &Registrar, key: &str, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n = status_of(&reg.db).and_then(|s| s["refused"][key].as_u64()).unwrap_or(0);
        if n >= at_least {
            return n;
        }
        assert!(Instant::now() < deadline, "refused.{key} stayed at {n} (< {at_least}): {:?}", status_of(&reg.db));
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The registrar's status file as written after now (it is rewritten every few seconds).
fn status_written_from_now(reg: &Registrar) -> serde_json::Value {
    let now_ms = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let since = now_ms();
    let path = format!("{}.status.json", reg.db.display());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let written = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        if let Some(s) = written.filter(|s| s["written_at_ms"].as_u64().is_some_and(|w| w > since)) {
            return s;
        }
        assert!(Instant::now() < deadline, "{path} was not rewritten");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A REGISTER for `user` with no credentials, as a flood sends it.
fn flood(sock: &UdpSocket, to: SocketAddr, user: &str, count: u32) {
    let mut ua = Ua::with_socket(sock.try_clone().expect("clone"), to, user, DOMAIN);
    for _ in 0..count {
        sock.send_to(&ua.register(600, None).to_bytes().expect("serializable"), to).expect("send");
    }
}

#[test]
fn a_flooding_source_is_banned_and_a_forged_flood_bans_no_phone() {
    let scratch = Scratch::new("trust-limits-guard");
    let reg = Registrar::start(
        &scratch,
        &format!("{SIPP_AUTH}[registrar.limits]\nrequests_per_source = 50\nban_secs = 60\n"),
        &[("alice", "pw-alice")],
    );
    let attacker = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    flood(&attacker, reg.addr, "mallory", 300);
    wait_refused(&reg, "source_bans", 1);
    wait_refused(&reg, "banned_source_requests", 1);
    // The banned attacker gets nothing for its next requests...
    attacker.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let mut buf = [0u8; 65536];
    while attacker.recv_from(&mut buf).is_ok() {}
    let dropped = wait_refused(&reg, "banned_source_requests", 1);
    flood(&attacker, reg.addr, "mallory", 20);
    assert!(wait_refused(&reg, "banned_source_requests", dropped + 19) >= dropped + 19);
    // ...while the phone on another address registers.
    phone_registers(&scratch, &reg, "alice", "pw-alice");

    // A flood with the phone's own address (it holds no binding now: the scenario unregistered)
    // bans that address; the phone proves the address is its own by answering a challenge sent
    // there, and registers all the same.
    let forger = UdpSocket::bind("127.0.0.1:0").expect("bind");
    flood(&forger, reg.addr, "mallory", 300);
    wait_refused(&reg, "source_bans", 2);
    phone_registers(&scratch, &reg, "alice", "pw-alice");
}

#[test]
fn digest_failures_count_only_from_the_address_the_challenge_went_to() {
    let scratch = Scratch::new("trust-limits-throttle");
    let reg = Registrar::start(&scratch, SIPP_AUTH, &[("alice", "pw-alice")]);
    // The attacker fetches a challenge at its own address, then sends wrong passwords with it
    // from the phone's address (a blind forger cannot receive what is sent there).
    let mut attacker = Ua::with_socket(UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2"), reg.addr, "alice", DOMAIN);
    let challenge = attacker.request(600, None);
    assert_eq!(challenge.status, 401);
    let forger = UdpSocket::bind("127.0.0.1:0").expect("bind");
    forger.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    let mut forged = Ua::with_socket(forger.try_clone().expect("clone"), reg.addr, "alice", DOMAIN);
    for nc in 1..=12 {
        let wrong = attacker.answer(&challenge, "guess", nc);
        let bytes = forged.register(600, Some(&wrong)).to_bytes().expect("serializable");
        forged.send(&bytes);
        assert_eq!(final_response(&forger).status, 401, "a forged failure is challenged again at once");
    }
    phone_registers(&scratch, &reg, "alice", "pw-alice");

    // The same wrong passwords from the address that got the challenge: after 5 free failures
    // its answers are held back (and counted).
    for nc in 1..=10 {
        let wrong = attacker.answer(&challenge, "guess", nc);
        let bytes = attacker.register(600, Some(&wrong)).to_bytes().expect("serializable");
        attacker.send(&bytes);
    }
    for _ in 1..=10 {
        final_response(&attacker.sock);
    }
    let status = status_written_from_now(&reg);
    assert_eq!(status["refused"]["auth_throttled"], 4, "only the real source's failures count: {status}");
    phone_registers(&scratch, &reg, "alice", "pw-alice");
}


/// A TCP connection to `to` from `local` (std cannot bind before connecting).
fn tcp_from(local: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    use std::os::fd::AsRawFd;
    let SocketAddr::V4(to) = to else { panic!("IPv4 only") };
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(local, 0)))?;
    connect(fd.as_raw_fd(), &SockaddrIn::from(to))?;
    Ok(TcpStream::from(fd))
}

fn options_over(stream: &mut TcpStream, to: SocketAddr) -> String {
    let local = stream.local_addr().expect("local");
    let request = format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bK-opt-{}\r\nFrom: <sip:phone@{DOMAIN}>;tag=1\r\nTo: <sip:{to}>\r\nCall-ID: opt-{}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        local.port(),
        local.port()
    );
    stream.write_all(request.as_bytes()).expect("write");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).expect("an answer over TCP");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn tcp_connections_are_held_per_source_and_idle_ones_closed() {
    let scratch = Scratch::new("trust-limits-tcp");
    let reg = Registrar::start(&scratch, "[registrar.limits]\ntcp_per_source = 8\ntcp_idle_secs = 3\n", &[("alice", "pw")]);
    let mut held: Vec<TcpStream> = (0..20).filter_map(|_| tcp_from(Ipv4Addr::new(127, 0, 0, 2), reg.addr).ok()).collect();
    assert_eq!(held.len(), 20, "the kernel accepts them all; the registrar closes those over the limit");
    wait_refused(&reg, "tcp_connections_over_limit", 12);
    // The phone's connection is served.
    let mut phone = tcp_from(Ipv4Addr::LOCALHOST, reg.addr).expect("the phone connects");
    let answer = options_over(&mut phone, reg.addr);
    assert!(answer.starts_with("SIP/2.0 200"), "{answer}");
    // The attacker's connections all end: 12 at once, the 8 accepted ones when idle.
    wait_refused(&reg, "tcp_idle_closed", 8);
    for stream in &mut held {
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut buf = [0u8; 64];
        assert!(matches!(stream.read(&mut buf), Ok(0) | Err(_)), "an attacker's connection is still open");
    }
}

#[test]
fn live_transactions_are_capped_with_a_reserve_for_the_branchs_phones() {
    let scratch = Scratch::new("trust-limits-txns");
    let reg = Registrar::start(&scratch, "[registrar.limits]\nmax_transactions = 50\nrequests_per_source = 1000\n", &[("alice", "pw-alice")]);
    let mut phone = Ua::new(reg.addr, "alice", DOMAIN);
    let challenge = phone.request(600, None);
    let ok = phone.request(600, Some(&phone.answer(&challenge, "pw-alice", 1)));
    assert_eq!(ok.status, 200, "{}", ok.reason);

    // Each OPTIONS holds a transaction for 32 s (Timer J): 200 of them from a stranger, ten at
    // a time (a burst of 200 datagrams overflows a socket buffer on loopback).
    let attacker = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    attacker.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let local = attacker.local_addr().expect("local");
    let mut statuses = Vec::new();
    for batch in 0..20 {
        for n in batch * 10..batch * 10 + 10 {
            let options = format!(
                "OPTIONS sip:{} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-flood-{n}\r\nFrom: <sip:x@{DOMAIN}>;tag={n}\r\nTo: <sip:{}>\r\nCall-ID: flood-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                reg.addr, reg.addr
            );
            attacker.send_to(options.as_bytes(), reg.addr).expect("send");
        }
        statuses.extend((0..10).map(|_| final_response(&attacker).status));
    }
    let accepted = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 503).count();
    assert!(accepted <= 50 && accepted + refused == 200, "{accepted} accepted at a cap of 50: {statuses:?}");
    wait_refused(&reg, "max_transactions", refused as u64);

    // The phone's refresh still goes through.
    let challenge = phone.request(600, None);
    let ok = phone.request(600, Some(&phone.answer(&challenge, "pw-alice", 1)));
    assert_eq!(ok.status, 200, "{}", ok.reason);
}
