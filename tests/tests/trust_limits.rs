//! Limits on what the network can make sba-registrar hold, each attacked from 127.0.0.2 (or from
//! 127.0.0.1 on a port of the attacker's: on loopback, what a UDP packet with the phone's forged
//! address looks like to the registrar) while the phone at 127.0.0.1 (sipp, or a small UA)
//! keeps registering: the per-source guard (also against floods forged with a registered phone's
//! IP or its exact address, sent through SO_REUSEPORT), the digest failure throttle, TCP
//! connections per source and their idle timeout, live transactions.
use holdfast_tests::branch::status_of;
use holdfast_tests::registrar::{Registrar, DOMAIN};
use holdfast_tests::scratch::Scratch;
use holdfast_sip::auth::DigestClient;
use holdfast_sip::message::{HeaderName, Message, Method};
use holdfast_sip::wire;
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
        .credentials(user, password)
        .run(&scratch.path, 30);
    assert!(
        out.status.success(),
        "the phone could not register: {}",
        String::from_utf8_lossy(&out.stdout).lines().rev().take(15).collect::<Vec<_>>().join("\n")
    );
}

/// `ua` registers for 600 s with its password: the challenge, then its answer, 200.
fn registers(ua: &mut Ua, password: &str) {
    let challenge = ua.request(600, None);
    let ok = ua.request(600, Some(&ua.answer(&challenge, password, 1)));
    assert_eq!(ok.status, 200, "{} could not register: {}", ua.user, ok.reason);
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


/// A device at 127.0.0.2 that holds alice's password tries to make her address of record hold
/// 1,000 contacts (100 REGISTERs of 10): the registrar keeps `max_contacts` (10) and refuses the
/// rest 403, counted, while bob's phone at 127.0.0.1 registers all the same.
#[test]
fn one_thousand_contacts_for_one_aor_stop_at_the_cap() {
    let scratch = Scratch::new("trust-limits-contacts");
    let reg = Registrar::start(&scratch, SIPP_AUTH, &[("alice", "pw-alice"), ("bob", "pw-bob")]);
    let mut device = Ua::with_socket(UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2"), reg.addr, "alice", DOMAIN);
    let challenge = device.request(600, None);
    assert_eq!(challenge.status, 401);
    let mut statuses = Vec::new();
    for batch in 0..100u32 {
        let answer = device.answer(&challenge, "pw-alice", batch + 1);
        let mut req = device.register(600, Some(&answer));
        req.headers.remove_all(&holdfast_sip::message::HeaderName::Contact);
        for n in 0..10 {
            req.headers.add(holdfast_sip::message::HeaderName::Contact, format!("<sip:alice-{batch}-{n}@192.0.2.{}:5060>", n + 1));
        }
        device.send(&req.to_bytes().expect("a writable request"));
        statuses.push(device.recv().status);
    }
    assert_eq!(statuses[0], 200, "the first ten contacts fit");
    assert!(statuses[1..].iter().all(|s| *s == 403), "beyond the cap: {statuses:?}");
    wait_refused(&reg, "max_contacts", 99);
    let held = reg.registrations().iter().filter(|b| b["aor"] == format!("sip:alice@{DOMAIN}")).count();
    assert_eq!(held, 10, "alice's address of record holds {held} contacts");

    let mut bob = Ua::new(reg.addr, "bob", DOMAIN);
    registers(&mut bob, "pw-bob");
}

/// A UDP socket on `addr` that another such socket may share (SO_REUSEPORT): on loopback, the
/// way a test sends from a phone's exact address and port, as a forger on its LAN would.
fn shared_port_socket(addr: SocketAddr) -> UdpSocket {
    use nix::sys::socket::{bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
    use std::os::fd::AsRawFd;
    let SocketAddr::V4(v4) = addr else { panic!("IPv4 only: {addr}") };
    let fd = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::SOCK_CLOEXEC, None).expect("socket");
    setsockopt(&fd, sockopt::ReusePort, &true).expect("SO_REUSEPORT");
    bind(fd.as_raw_fd(), &SockaddrIn::from(v4)).expect("bind");
    let sock = UdpSocket::from(fd);
    sock.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    sock
}

/// An INVITE from `from` to `to` through the registrar, as sent from `local`.
fn invite(from: &str, to: &str, local: SocketAddr, call_id: &str) -> String {
    invite_with(from, to, local, call_id, 1, None)
}

/// `invite` with CSeq `cseq` (a branch of its own) and a Proxy-Authorization.
fn invite_with(from: &str, to: &str, local: SocketAddr, call_id: &str, cseq: u32, credentials: Option<&str>) -> String {
    let credentials = credentials.map(|c| format!("Proxy-Authorization: {c}\r\n")).unwrap_or_default();
    format!(
        "INVITE sip:{to}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{call_id}-{cseq};rport\r\nFrom: <sip:{from}@{DOMAIN}>;tag=t-{call_id}\r\nTo: <sip:{to}@{DOMAIN}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} INVITE\r\n{credentials}Contact: <sip:{from}@{local}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

/// `count` INVITEs from alice to bob sent from `sock`, 25 at a time (a burst of hundreds of
/// datagrams overflows the registrar's socket buffer on loopback, and the guard would see fewer).
fn invite_flood(sock: &UdpSocket, to: SocketAddr, prefix: &str, count: u32) {
    let local = sock.local_addr().expect("local");
    for n in 0..count {
        sock.send_to(invite("alice", "bob", local, &format!("{prefix}-{n}")).as_bytes(), to).expect("send");
        if n % 25 == 24 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Alice's call to bob from her registered address, INVITE resent every 500 ms as a phone does
/// (Timer A) for up to 10 s, until bob has it; the Call-IDs of the INVITEs bob got before it.
fn alice_calls_bob(alice: &UdpSocket, bob: &UdpSocket, to: SocketAddr, call_id: &str) -> std::collections::HashSet<String> {
    let bytes = invite("alice", "bob", alice.local_addr().expect("local"), call_id);
    bob.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = std::collections::HashSet::new();
    let mut buf = vec![0u8; 65536];
    loop {
        alice.send_to(bytes.as_bytes(), to).expect("send");
        let resend_at = Instant::now() + Duration::from_millis(500);
        while Instant::now() < resend_at {
            let Ok((n, _)) = bob.recv_from(&mut buf) else { break };
            if let Ok(Message::Request(r)) = wire::parse(&buf[..n]) {
                if r.method == Method::INVITE {
                    let id = r.call_id().expect("Call-ID").to_string();
                    if id == call_id {
                        return seen;
                    }
                    seen.insert(id);
                }
            }
        }
        assert!(Instant::now() < deadline, "alice's call never reached bob ({} other INVITEs did)", seen.len());
    }
}

/// A flood forged with a registered phone's IP (another port) is counted against that IP and
/// banned; one forged with its exact address and port is held to that address's own budget and
/// shed only while it lasts. Either way the registrar relays a bounded share of it, and the phone
/// keeps registering and calling from its own address.
#[test]
fn a_flood_forged_with_a_registered_phone_s_address_is_bounded_while_the_phone_registers_and_calls() {
    let scratch = Scratch::new("trust-limits-forged-phone");
    let reg = Registrar::start(
        &scratch,
        &format!("{SIPP_AUTH}[registrar.limits]\nrequests_per_source = 50\nban_secs = 60\n"),
        &[("alice", "pw-alice"), ("bob", "pw-bob")],
    );
    let mut alice = Ua::with_socket(shared_port_socket("127.0.0.1:0".parse().expect("addr")), reg.addr, "alice", DOMAIN);
    let mut bob = Ua::new(reg.addr, "bob", DOMAIN);
    registers(&mut alice, "pw-alice");
    registers(&mut bob, "pw-bob");

    // From the phone's IP, another port: 400 INVITEs posing as alice. They count against
    // 127.0.0.1, which is banned after 50 (two windows at most: 100).
    let forger = UdpSocket::bind("127.0.0.1:0").expect("bind");
    invite_flood(&forger, reg.addr, "forged-ip", 400);
    wait_refused(&reg, "source_bans", 1);
    let relayed = alice_calls_bob(&alice.sock, &bob.sock, reg.addr, "alice-call-1");
    let forged = relayed.iter().filter(|id| id.starts_with("forged-ip-")).count();
    assert!(forged <= 100, "{forged} of 400 forged INVITEs relayed to bob");
    wait_refused(&reg, "banned_source_requests", 1);

    // From alice's exact address and port: 400 more. Her address has its own budget (50 a
    // binding and 50 more a window) and sheds beyond it until the window ends, no longer.
    let exact = shared_port_socket(alice.local());
    invite_flood(&exact, reg.addr, "forged-exact", 400);
    drop(exact);
    wait_refused(&reg, "source_bans", 2);
    // The phone refreshes: its REGISTER is challenged at its address, its answer proves it.
    let challenge = final_for_request(&mut alice, None);
    assert_eq!(challenge.status, 401, "{}", challenge.reason);
    let answer = alice.answer(&challenge, "pw-alice", 1);
    let ok = final_for_request(&mut alice, Some(&answer));
    assert_eq!(ok.status, 200, "alice could not refresh: {}", ok.reason);
    let relayed = alice_calls_bob(&alice.sock, &bob.sock, reg.addr, "alice-call-2");
    let forged = relayed.iter().filter(|id| id.starts_with("forged-exact-")).count();
    assert!(forged <= 200, "{forged} of 400 INVITEs forged with alice's address relayed to bob");
}

/// Sends `ua`'s next REGISTER (with `authorization`), resent every 500 ms as a phone does (Timer
/// E) for up to 15 s, and returns its final response, skipping answers to anything else sent from
/// its address: the challenges to a flood forged with that address fill the phone's socket, and
/// an answer that arrives while it is full is lost, as it would be at a real phone.
fn final_for_request(ua: &mut Ua, authorization: Option<&str>) -> holdfast_sip::message::Response {
    let req = ua.register(600, authorization);
    let bytes = req.to_bytes().expect("a writable request");
    let cseq = req.cseq().expect("CSeq").seq;
    ua.sock.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut resend = Instant::now();
    while Instant::now() < deadline {
        if Instant::now() >= resend {
            ua.send(&bytes);
            resend = Instant::now() + Duration::from_millis(500);
        }
        let Ok((n, _)) = ua.sock.recv_from(&mut buf) else { continue };
        if let Ok(Message::Response(r)) = wire::parse(&buf[..n]) {
            let ours = r.call_id().is_ok_and(|c| c == ua.call_id) && r.cseq().is_ok_and(|c| c.seq == cseq);
            if ours && r.status >= 200 {
                ua.sock.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
                return r;
            }
        }
    }
    panic!("no final response to {}'s REGISTER in 15 s", ua.user);
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
    registers(&mut phone, "pw-alice");

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
    registers(&mut phone, "pw-alice");
}

/// A flood forged with alice's exact address and port goes on while she calls and registers.
/// Over its budget her address must prove itself: each new request from it is challenged (407,
/// 401) there, bound to the address. The forger never sees a challenge (they reach alice), alice
/// answers hers, and her call reaches bob during the flood (her answer taken off on the way); the
/// forged INVITEs bob gets stay within the address's budget.
#[test]
fn a_phone_calls_and_registers_during_a_flood_forged_with_its_exact_address() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let scratch = Scratch::new("trust-limits-forged-during");
    let reg = Registrar::start(
        &scratch,
        &format!("{SIPP_AUTH}[registrar.limits]\nrequests_per_source = 50\nban_secs = 60\n"),
        &[("alice", "pw-alice"), ("bob", "pw-bob")],
    );
    // alice's socket is connected to the registrar: the kernel hands her its answers rather than
    // to the forger's socket on the same address, as the network would hand them to the phone.
    let alice_sock = shared_port_socket("127.0.0.1:0".parse().expect("addr"));
    alice_sock.connect(reg.addr).expect("connect");
    let mut alice = Ua::with_socket(alice_sock, reg.addr, "alice", DOMAIN);
    let mut bob = Ua::new(reg.addr, "bob", DOMAIN);
    registers(&mut alice, "pw-alice");
    registers(&mut bob, "pw-bob");

    // About 400 INVITEs a second posing as alice from her address: eight times its budget (50 a
    // binding and 50 more in 2 s), for as long as the test takes (30 s at most).
    let forger = shared_port_socket(alice.local());
    forger.set_read_timeout(Some(Duration::from_millis(1))).expect("timeout");
    let stop = Arc::new(AtomicBool::new(false));
    let flooding = {
        let (stop, to, local) = (Arc::clone(&stop), reg.addr, alice.local());
        std::thread::spawn(move || {
            let (started, mut sent, mut heard) = (Instant::now(), 0u32, 0u32);
            let mut buf = vec![0u8; 65536];
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(30) {
                forger.send_to(invite("alice", "bob", local, &format!("forged-{sent}")).as_bytes(), to).expect("send");
                sent += 1;
                if sent % 4 == 0 {
                    std::thread::sleep(Duration::from_millis(10));
                }
                heard += u32::from(forger.recv_from(&mut buf).is_ok());
            }
            (sent, heard, started.elapsed())
        })
    };
    wait_refused(&reg, "source_bans", 1);
    wait_refused(&reg, "banned_source_challenges", 1);

    // alice calls while her address sheds (beyond its budget: most of each window); a call
    // placed in the budget's part of a window goes through unasked, so she calls again.
    alice.sock.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
    bob.sock.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(15);
    let local = alice.local();
    let mut forged_challenges = 0;
    let (call_id, challenge) = 'calls: {
        for attempt in 0..20 {
            let call_id = format!("alice-during-{attempt}");
            alice.send(invite_with("alice", "bob", local, &call_id, 1, None).as_bytes());
            while let Some(r) = next_response(&alice.sock) {
                if r.call_id().is_ok_and(|c| c == call_id) {
                    if r.status == 407 {
                        break 'calls (call_id, r);
                    }
                    break;
                }
                forged_challenges += u32::from(r.status == 407);
                assert!(Instant::now() < deadline, "no answer to alice's INVITE {call_id}");
            }
            assert!(Instant::now() < deadline, "alice's INVITEs were never challenged at her address");
        }
        panic!("20 of alice's INVITEs, none challenged at her address");
    };
    assert!(forged_challenges > 0, "no forged INVITE's challenge reached alice's address");
    let offered: Vec<&str> = challenge.headers.get_all(&HeaderName::ProxyAuthenticate).collect();
    let chosen = DigestClient::preferred_challenge(&offered).expect("a digest challenge");
    let credentials = DigestClient::authorize(chosen, "INVITE", &format!("sip:bob@{DOMAIN}"), "alice", "pw-alice", "cn", 1)
        .expect("an answerable challenge");
    let proven = invite_with("alice", "bob", local, &call_id, 2, Some(&credentials));
    let mut forged_at_bob = std::collections::HashSet::new();
    let at_bob = 'call: loop {
        alice.send(proven.as_bytes());
        let resend_at = Instant::now() + Duration::from_millis(500);
        while Instant::now() < resend_at {
            let Some(r) = next_request(&bob.sock) else { continue };
            let id = r.call_id().expect("Call-ID").to_string();
            if id == call_id {
                break 'call r;
            }
            forged_at_bob.insert(id);
        }
        assert!(Instant::now() < deadline, "alice's proven INVITE never reached bob");
    };
    assert_eq!(at_bob.headers.count(&HeaderName::ProxyAuthorization), 0, "alice's answer to our challenge went on to bob");

    // Her refresh, during the flood as well: challenged at her address, answered, stored.
    alice.sock.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    let challenge = final_for_request(&mut alice, None);
    assert_eq!(challenge.status, 401, "{}", challenge.reason);
    let answer = alice.answer(&challenge, "pw-alice", 1);
    let ok = final_for_request(&mut alice, Some(&answer));
    assert_eq!(ok.status, 200, "alice could not refresh during the flood: {}", ok.reason);

    stop.store(true, Ordering::Relaxed);
    let (sent, heard, lasted) = flooding.join().expect("the flood");
    assert_eq!(heard, 0, "the forger heard the registrar's answers");
    while let Some(r) = next_request(&bob.sock) {
        forged_at_bob.insert(r.call_id().expect("Call-ID").to_string());
    }
    let windows = lasted.as_secs() / 2 + 2;
    let relayed = forged_at_bob.iter().filter(|id| id.starts_with("forged-")).count() as u64;
    assert!(relayed <= 100 * windows, "{relayed} of {sent} forged INVITEs reached bob in {lasted:?}");
    eprintln!("{sent} forged INVITEs in {lasted:?}: {relayed} reached bob; alice called and registered");
}

/// The next response on `sock` (anything else skipped); None once its read timeout passes.
fn next_response(sock: &UdpSocket) -> Option<holdfast_sip::message::Response> {
    loop {
        if let Message::Response(r) = next_message(sock)? {
            return Some(r);
        }
    }
}

/// The next INVITE on `sock` (anything else skipped); None once its read timeout passes.
fn next_request(sock: &UdpSocket) -> Option<holdfast_sip::message::Request> {
    loop {
        match next_message(sock)? {
            Message::Request(r) if r.method == Method::INVITE => return Some(r),
            _ => {}
        }
    }
}

/// The next SIP message on `sock` (unparsable datagrams skipped); None once its read timeout passes.
fn next_message(sock: &UdpSocket) -> Option<Message> {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        if let Ok(m) = wire::parse(&buf[..n]) {
            return Some(m);
        }
    }
}
