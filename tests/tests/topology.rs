//! The survivability test topology itself: namespaces and links, Kamailio as the central site
//! (OPTIONS, digest REGISTER into its location table, calls routed through a stored Path), and
//! the WAN cut and restored by nftables. Needs root, iproute2, nftables, kamailio, sipp.
use holdfast_sip::auth::DigestClient;
use holdfast_sip::message::{HeaderName, Message, Method, Request, Response, Uri};
use holdfast_sip::wire;
use holdfast_tests::kamailio::{options_status, Kamailio};
use holdfast_tests::netns::{Netns, Topology, CENTRAL, PHONES, PSTN, SBA_LAN, SBA_PSTN, SBA_WAN};
use holdfast_tests::phones::{call, Answerer, Baresip, NsSipp, PhoneConfig};
use holdfast_tests::scratch::Scratch;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const DOMAIN: &str = "central.example";

fn sock(ns: &Netns, ip: Ipv4Addr, port: u16) -> UdpSocket {
    let s = ns.udp_socket(SocketAddr::from((ip, port))).unwrap_or_else(|e| panic!("bind {ip}:{port} in {}: {e}", ns.name));
    s.set_read_timeout(Some(Duration::from_millis(500))).expect("read timeout");
    s
}

/// Whether a datagram from `a` reaches `b` within 500 ms.
fn crosses(a: &UdpSocket, b: &UdpSocket) -> bool {
    let to = b.local_addr().expect("addr");
    a.send_to(b"holdfast", to).expect("send");
    let mut buf = [0u8; 64];
    matches!(b.recv_from(&mut buf), Ok((8, from)) if from == a.local_addr().expect("addr") && &buf[..8] == b"holdfast")
}

/// OPTIONS from `sock` until `want` (Some status or None for silence) is seen, within `within`.
fn options_until(sock: &UdpSocket, to: SocketAddr, want: Option<u16>, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if options_status(sock, to, Duration::from_millis(300)) == want {
            return true;
        }
    }
    false
}

fn recv_message(sock: &UdpSocket) -> Message {
    let mut buf = vec![0u8; 65536];
    let (n, _) = sock.recv_from(&mut buf).expect("no SIP message arrived");
    wire::parse(&buf[..n]).unwrap_or_else(|e| panic!("unparseable: {e:?}: {}", String::from_utf8_lossy(&buf[..n])))
}

fn recv_final(sock: &UdpSocket) -> Response {
    for _ in 0..10 {
        if let Message::Response(r) = recv_message(sock) {
            if r.status >= 200 {
                return r;
            }
        }
    }
    panic!("no final response")
}

/// A REGISTER the SBA would relay: the phone's contact, and a Path naming the SBA's WAN side.
fn register(sock: &UdpSocket, user: &str, contact: &str, path: &str, cseq: u32, auth: Option<&str>) -> Request {
    let local = sock.local_addr().expect("addr");
    let mut r = Request::new(Method::REGISTER, Uri::parse(&format!("sip:{DOMAIN}")).expect("uri"));
    let h = &mut r.headers;
    h.add(HeaderName::Via, format!("SIP/2.0/UDP {local};branch=z9hG4bK-topo-reg-{cseq};rport"));
    h.add(HeaderName::From, format!("<sip:{user}@{DOMAIN}>;tag=reg{cseq}"));
    h.add(HeaderName::To, format!("<sip:{user}@{DOMAIN}>"));
    h.add(HeaderName::CallId, format!("topo-reg-{user}@{}", local.ip()));
    h.add(HeaderName::CSeq, format!("{cseq} REGISTER"));
    h.add(HeaderName::Contact, format!("<{contact}>"));
    h.add(HeaderName::Path, format!("<{path}>"));
    h.add(HeaderName::MaxForwards, "70");
    h.add(HeaderName::Expires, "600");
    if let Some(a) = auth {
        h.add(HeaderName::Authorization, a);
    }
    r
}

#[test]
fn topology_links_kamailio_and_wan_cut() {
    let scratch = Scratch::new("topology");
    let topo = Topology::new();

    // Each link carries datagrams both ways; the phones have no route beyond the SBA.
    let phone = sock(&topo.phones, PHONES, 5060);
    let phone2 = sock(&topo.phones, Topology::phone_ip(3), 5060);
    let sba_lan = sock(&topo.sba, SBA_LAN, 5060);
    let sba_wan = sock(&topo.sba, SBA_WAN, 5999);
    let central_raw = sock(&topo.central, CENTRAL, 5999);
    let sba_pstn = sock(&topo.sba, SBA_PSTN, 5060);
    let pstn = sock(&topo.pstn, PSTN, 5060);
    for (a, b) in [(&phone, &sba_lan), (&phone2, &sba_lan), (&sba_wan, &central_raw), (&sba_pstn, &pstn)] {
        assert!(crosses(a, b), "{:?} -> {:?}", a.local_addr(), b.local_addr());
        assert!(crosses(b, a), "{:?} -> {:?}", b.local_addr(), a.local_addr());
    }
    let err = phone.send_to(b"x", SocketAddr::from((CENTRAL, 5999))).expect_err("phones must not reach central");
    assert_eq!(err.raw_os_error(), Some(101), "ENETUNREACH expected, got {err}");

    let kam = Kamailio::start(&topo, &scratch.path, DOMAIN, &[("alice", "alice-secret"), ("bob", "bob-secret")]);
    let sba_sip = sock(&topo.sba, SBA_WAN, 5060);
    assert_eq!(options_status(&sba_sip, kam.addr, Duration::from_secs(2)), Some(200));

    // sipp registers alice with digest auth from the SBA's namespace.
    let out = NsSipp::new(&topo.sba, "call_register.xml", SocketAddr::from((SBA_WAN, 5071)), kam.addr)
        .key("user", "alice")
        .key("domain", DOMAIN)
        .key("expires", "600")
        .credentials("alice", "alice-secret")
        .run(&scratch.path, 15);
    assert!(out.status.success(), "sipp register: {}\n{}", String::from_utf8_lossy(&out.stderr), kam.log_text());
    assert_eq!(kam.location(), [("alice".to_string(), format!("sip:alice@{SBA_WAN}:5071"))]);

    // bob registers through a Path naming the SBA; a call to bob then goes to the SBA's WAN
    // address, still addressed to bob's branch contact.
    let contact = format!("sip:bob@{}:5062", Topology::phone_ip(1));
    let path = format!("sip:{SBA_WAN}:5072;lr");
    let via_sba = sock(&topo.sba, SBA_WAN, 5072);
    sba_sip.send_to(&register(&sba_sip, "bob", &contact, &path, 1, None).to_bytes().unwrap(), kam.addr).expect("send");
    let challenge = recv_final(&sba_sip);
    assert_eq!(challenge.status, 401);
    let values: Vec<&str> = challenge.headers.get_all(&HeaderName::WwwAuthenticate).collect();
    let chosen = DigestClient::preferred_challenge(&values).expect("digest challenge");
    let auth = DigestClient::authorize(chosen, "REGISTER", &format!("sip:{DOMAIN}"), "bob", "bob-secret", "c0ffee", 1)
        .expect("answerable challenge");
    sba_sip.send_to(&register(&sba_sip, "bob", &contact, &path, 2, Some(&auth)).to_bytes().unwrap(), kam.addr).expect("send");
    assert_eq!(recv_final(&sba_sip).status, 200);
    let location = kam.location();
    assert!(location.contains(&("bob".to_string(), contact.clone())), "{location:?}");
    assert!(kam.paths().contains(&("bob".to_string(), format!("<{path}>"))), "{:?}", kam.paths());

    let invite = format!(
        "INVITE sip:bob@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {PSTN}:5060;branch=z9hG4bK-topo-inv;rport\r\n\
         From: <sip:carol@{DOMAIN}>;tag=inv1\r\nTo: <sip:bob@{DOMAIN}>\r\nCall-ID: topo-inv@{PSTN}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:carol@{SBA_WAN}:5999>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    central_raw.send_to(invite.as_bytes(), kam.addr).expect("send INVITE");
    let Message::Request(forwarded) = recv_message(&via_sba) else { panic!("expected the INVITE at the SBA") };
    assert_eq!(forwarded.method, Method::INVITE);
    assert_eq!(forwarded.uri.to_string(), contact);
    assert!(forwarded.headers.get(&HeaderName::RecordRoute).is_some(), "central record-routes calls");

    // The WAN cut: silence both ways, and no error to the sender; then back.
    topo.cut_wan();
    assert!(topo.wan_is_cut());
    assert!(!crosses(&sba_wan, &central_raw), "sba -> central crossed a cut WAN");
    assert!(!crosses(&central_raw, &sba_wan), "central -> sba crossed a cut WAN");
    assert_eq!(options_status(&sba_sip, kam.addr, Duration::from_secs(1)), None);
    assert!(crosses(&phone, &sba_lan) && crosses(&sba_pstn, &pstn), "only the WAN is cut");
    topo.restore_wan();
    assert!(!topo.wan_is_cut());
    topo.restore_wan();
    assert!(options_until(&sba_sip, kam.addr, Some(200), Duration::from_secs(3)), "OPTIONS unanswered after restore");
    assert!(crosses(&central_raw, &sba_wan));
}

#[test]
fn topologies_are_independent_and_removed_on_drop() {
    let names: Vec<String>;
    {
        let a = Topology::new();
        let b = Topology::new();
        names = [&a.phones, &a.sba, &a.central, &a.pstn, &b.sba].iter().map(|n| n.name.clone()).collect();
        assert_ne!(a.sba.name, b.sba.name);
        // The same addresses in both, yet cutting one WAN leaves the other alone.
        a.cut_wan();
        let (b_sba, b_central) = (sock(&b.sba, SBA_WAN, 6000), sock(&b.central, CENTRAL, 6000));
        assert!(crosses(&b_sba, &b_central));
        let (a_sba, a_central) = (sock(&a.sba, SBA_WAN, 6000), sock(&a.central, CENTRAL, 6000));
        assert!(!crosses(&a_sba, &a_central));
    }
    let listed = String::from_utf8(std::process::Command::new("ip").args(["netns", "list"]).output().expect("ip").stdout)
        .expect("utf8");
    for n in names {
        assert!(!listed.lines().any(|l| l.split_whitespace().next() == Some(n.as_str())), "{n} left behind");
    }
}

/// The call scenarios for the survivability tests, proven against Kamailio alone: phones keep
/// themselves registered (riding out a WAN cut) and answer calls, a call holds and hangs up, the
/// carrier answers.
#[test]
fn sipp_phones_register_answer_and_survive_a_cut() {
    let scratch = Scratch::new("topology-phones");
    let topo = Topology::new();
    let kam = Kamailio::start(&topo, &scratch.path, DOMAIN, &[("alice", "alice-secret"), ("bob", "bob-secret")]);
    let phone = |user: &'static str, password: &'static str, port: u16| PhoneConfig {
        user,
        password,
        domain: DOMAIN,
        addr: SocketAddr::from((SBA_WAN, port)),
        registrar: kam.addr,
        expires: 60,
        refresh: Duration::from_millis(700),
    };
    let alice = Answerer::phone(&topo.sba, &scratch.path, &phone("alice", "alice-secret", 5081), 60);
    let bob = Answerer::phone(&topo.sba, &scratch.path, &phone("bob", "bob-secret", 5082), 60);
    let carrier = Answerer::carrier(&topo.pstn, &scratch.path, SocketAddr::from((PSTN, 5060)), 60);
    for p in [&alice, &bob] {
        assert!(p.wait_registrations(0, Duration::from_secs(5)), "not registered:\n{}\n{}", p.log(), kam.log_text());
    }
    let mut location = kam.location();
    location.sort();
    assert_eq!(
        location,
        [("alice".to_string(), format!("sip:alice@{SBA_WAN}:5081")), ("bob".to_string(), format!("sip:bob@{SBA_WAN}:5082"))]
    );
    // Refreshes keep succeeding (CSeq grows, the nonce is answered again).
    let before = alice.registrations();
    assert!(alice.wait_registrations(before + 1, Duration::from_secs(3)), "no refresh:\n{}", alice.log());

    // bob calls alice through Kamailio, holds a second, hangs up; then the carrier is called.
    let from_bob = SocketAddr::from((SBA_WAN, 5090));
    let out = call(&topo.sba, from_bob, kam.addr, "bob", "alice", DOMAIN, Duration::from_secs(1)).run(&scratch.path, 15);
    assert!(out.status.success(), "call bob -> alice: {}\n{}", String::from_utf8_lossy(&out.stdout), alice.log());
    assert_eq!((alice.answered(), alice.hung_up(), bob.answered()), (1, 1, 0));
    let out = call(&topo.sba, SocketAddr::from((SBA_PSTN, 5091)), carrier.addr, "bob", "+15551234567", DOMAIN, Duration::from_millis(300))
        .run(&scratch.path, 15);
    assert!(out.status.success(), "call to the carrier: {}\n{}", String::from_utf8_lossy(&out.stdout), carrier.log());
    assert_eq!((carrier.answered(), carrier.hung_up()), (1, 1));

    // Registrations fail while the WAN is cut, yet the phone lives on and registers again after.
    topo.cut_wan();
    std::thread::sleep(Duration::from_millis(1500));
    let during = alice.registrations();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(alice.registrations(), during, "registered across a cut WAN");
    topo.restore_wan();
    assert!(alice.wait_registrations(during, Duration::from_secs(15)), "no registration after restore:\n{}", alice.log());
    let out = call(&topo.sba, from_bob, kam.addr, "bob", "alice", DOMAIN, Duration::from_millis(300)).run(&scratch.path, 15);
    assert!(out.status.success(), "call after restore: {}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(alice.answered(), 2);
}

/// The baresip phone helper against Kamailio: registers, answers a sipp call by itself, dials a
/// sipp phone and hangs up.
#[test]
fn baresip_phone_registers_answers_and_dials() {
    let scratch = Scratch::new("topology-baresip");
    let topo = Topology::new();
    let kam = Kamailio::start(&topo, &scratch.path, DOMAIN, &[("alice", "alice-secret"), ("carol", "carol-secret")]);
    let config = |user, password, port| PhoneConfig {
        user,
        password,
        domain: DOMAIN,
        addr: SocketAddr::from((SBA_WAN, port)),
        registrar: kam.addr,
        expires: 60,
        refresh: Duration::from_secs(60),
    };
    let mut carol = Baresip::start(&topo.sba, &scratch.path, &config("carol", "carol-secret", 5083), 60);
    let alice = Answerer::phone(&topo.sba, &scratch.path, &config("alice", "alice-secret", 5081), 60);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && kam.location().len() < 2 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let users: Vec<String> = kam.location().into_iter().map(|(aor, _)| aor).collect();
    assert!(users.contains(&"carol".to_string()) && users.contains(&"alice".to_string()), "{users:?}\n{}", carol.console());

    let out = call(&topo.sba, SocketAddr::from((SBA_WAN, 5090)), kam.addr, "bob", "carol", DOMAIN, Duration::from_secs(1))
        .run(&scratch.path, 15);
    assert!(out.status.success(), "call to baresip: {}\n{}", String::from_utf8_lossy(&out.stdout), carol.console());

    carol.command(&format!("/dial sip:alice@{DOMAIN}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && alice.answered() == 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(alice.answered(), 1, "{}\n{}", carol.console(), alice.log());
    assert!(carol.wait_for("Call established", 1, Duration::from_secs(5)), "{}", carol.console());
    carol.command("/hangup");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && alice.hung_up() == 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(alice.hung_up(), 1, "{}\n{}", carol.console(), alice.log());
}
