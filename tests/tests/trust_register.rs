//! While the WAN is down a REGISTER needs evidence. A forger that sends from the phone's own IP
//! and port (on loopback: the phone's very socket, which is what a perfect UDP spoof looks like
//! to the registrar) or from the phone's IP on another port, and asks to move alice's contact,
//! to put a Path of its own in front of her, to remove her binding or all of them (`Contact: *`),
//! is refused, and her binding stays as it was; her own unchanged refresh is served. For bob,
//! whose HA1 is on the box, such a change is challenged and succeeds only with his password.
//! A password proves one user only: bob's answers no challenge for alice's AOR. Over TCP the
//! connection the central site authenticated a registration on vouches for that binding as it
//! stands (a refresh), never for a change, and no other connection is it.
use holdfast_tests::branch::status_of;
use holdfast_tests::registrar::{Registrar, DOMAIN};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::sip_client::{final_response, register_authorization, Ua};
use holdfast_tests::stub_central::StubCentral;
use holdfast_sip::message::{HeaderName, Message, Method, Request, Response, Uri};
use holdfast_sip::wire::{StreamDecoder, StreamItem};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

fn wait_mode(reg: &Registrar, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_of(&reg.db).and_then(|s| s["mode"].as_str().map(str::to_string)).as_deref() != Some(want) {
        assert!(Instant::now() < deadline, "not in {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ua`'s next REGISTER with its Contact and headers rewritten by `edit` (as text).
fn forged(ua: &mut Ua, edit: impl Fn(String) -> String) -> Vec<u8> {
    let text = String::from_utf8(ua.register(600, None).to_bytes().expect("a writable REGISTER")).expect("utf-8");
    edit(text).into_bytes()
}


#[test]
fn survival_registers_that_change_bindings_need_evidence() {
    let scratch = Scratch::new("trust-register");
    let central = StubCentral::start();
    let reg = Registrar::start(
        &scratch,
        &format!("\n[central]\nproxies = [\"{}\"]\nbranch_expires = 60\n", central.addr),
        &[("bob", "pw-bob")],
    );
    wait_mode(&reg, "pass-through");
    let mut alice = Ua::new(reg.addr, "alice", DOMAIN);
    let mut bob = Ua::new(reg.addr, "bob", DOMAIN);
    for ua in [&mut alice, &mut bob] {
        let ok = ua.request(600, None);
        assert_eq!(ok.status, 200, "{}", ok.reason);
    }
    let before = reg.registrations();
    assert_eq!(before.len(), 2);
    central.cut();
    wait_mode(&reg, "survival");

    let phone = alice.local();
    let contact = format!("Contact: <sip:alice@{phone}>");
    let elsewhere = UdpSocket::bind("127.0.0.1:0").expect("bind");
    elsewhere.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let attacks: Vec<(&str, Box<dyn Fn(String) -> String>)> = vec![
        ("moved contact", Box::new(|t: String| t.replace(&contact, "Contact: <sip:alice@127.0.0.2:5099>"))),
        ("added Path", Box::new(|t: String| t.replace(&contact, &format!("Path: <sip:127.0.0.2:5099;lr>\r\n{contact}")))),
        ("Contact: *", Box::new(|t: String| t.replace(&contact, "Contact: *").replace("Expires: 600", "Expires: 0"))),
        ("removal", Box::new(|t: String| t.replace("Expires: 600", "Expires: 0"))),
    ];
    for (what, edit) in &attacks {
        // From the phone's own socket (a perfect spoof), then from its IP on another port.
        let bytes = forged(&mut alice, edit);
        alice.send(&bytes);
        let r = alice.recv();
        assert_eq!(r.status, 403, "{what} as the phone itself: {} {}", r.status, r.reason);
        let bytes = forged(&mut alice, edit);
        elsewhere.send_to(&bytes, reg.addr).expect("send");
        let r = final_response(&elsewhere);
        assert_eq!(r.status, 403, "{what} from the phone's IP: {} {}", r.status, r.reason);
    }
    let alice_now: Vec<_> = reg.registrations().into_iter().filter(|b| b["aor"] == format!("sip:alice@{DOMAIN}")).collect();
    let alice_before: Vec<_> = before.iter().filter(|b| b["aor"] == format!("sip:alice@{DOMAIN}")).collect();
    assert_eq!(alice_now.len(), 1);
    for key in ["contact", "path", "source", "transport"] {
        assert_eq!(alice_now[0][key], alice_before[0][key], "{key} changed");
    }

    // Her own refresh, unchanged, is served from the cache.
    let ok = alice.request(600, None);
    assert_eq!(ok.status, 200, "{}", ok.reason);

    // bob's HA1 is here: a move is challenged, a forger gets no further, bob with his password does.
    let bob_phone = bob.local();
    let moved = |t: String| t.replace(&format!("<sip:bob@{bob_phone}>"), "<sip:bob@127.0.0.1:5098>");
    let bytes = forged(&mut bob, moved);
    bob.send(&bytes);
    let challenge = bob.recv();
    assert_eq!(challenge.status, 401, "{}", challenge.reason);
    let wrong = bob.answer(&challenge, "guess", 1);
    let bytes = forged(&mut bob, |t| moved(t).replace("Expires: 600", &format!("Expires: 600\r\nAuthorization: {wrong}")));
    bob.send(&bytes);
    assert_ne!(bob.recv().status, 200);
    let right = bob.answer(&challenge, "pw-bob", 2);
    let bytes = forged(&mut bob, |t| moved(t).replace("Expires: 600", &format!("Expires: 600\r\nAuthorization: {right}")));
    bob.send(&bytes);
    let ok = bob.recv();
    assert_eq!(ok.status, 200, "{}", ok.reason);
    assert!(ok.headers.get_all(&HeaderName::Contact).any(|c| c.contains("127.0.0.1:5098")));

    let deadline = Instant::now() + Duration::from_secs(8);
    while status_of(&reg.db).and_then(|s| s["refused"]["survival_register_without_evidence"].as_u64()) < Some(2 * attacks.len() as u64) {
        assert!(Instant::now() < deadline, "refusals not counted: {:?}", status_of(&reg.db));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn in_survival_a_password_changes_only_its_own_aor() {
    let scratch = Scratch::new("trust-register-scope");
    let central = StubCentral::start();
    let reg = Registrar::start(
        &scratch,
        &format!("\n[central]\nproxies = [\"{}\"]\nbranch_expires = 60\n", central.addr),
        &[("alice", "pw-alice"), ("bob", "pw-bob")],
    );
    wait_mode(&reg, "pass-through");
    let mut alice = Ua::new(reg.addr, "alice", DOMAIN);
    let ok = alice.request(600, None);
    assert_eq!(ok.status, 200, "{}", ok.reason);
    central.cut();
    wait_mode(&reg, "survival");
    let aor = format!("sip:alice@{DOMAIN}");
    let alice_bindings = || reg.registrations().into_iter().filter(|b| b["aor"] == aor).collect::<Vec<_>>();
    let before = alice_bindings();
    assert_eq!(before.len(), 1);

    // 127.0.0.2 knows bob's password and tries to move alice's binding, then to remove them all.
    let sock = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    let mut attacker = Ua::with_socket(sock, reg.addr, "alice", DOMAIN);
    for (what, expires, contact) in [("a contact of its own", 600, None), ("Contact: *", 0, Some("*"))] {
        let challenge = attacker.request(expires, None);
        assert_eq!(challenge.status, 401, "{what}: {} {}", challenge.status, challenge.reason);
        let as_bob = register_authorization(&challenge, DOMAIN, "bob", "pw-bob", 1);
        let mut forged = attacker.register(expires, Some(&as_bob));
        if let Some(contact) = contact {
            forged.headers.set(HeaderName::Contact, contact);
        }
        attacker.send(&forged.to_bytes().expect("a writable REGISTER"));
        let r = attacker.recv();
        assert_eq!(r.status, 403, "{what} for alice, authenticated as bob: {} {}", r.status, r.reason);
    }
    let after = alice_bindings();
    assert_eq!(after.len(), 1, "{after:?}");
    for key in ["contact", "source", "transport"] {
        assert_eq!(after[0][key], before[0][key], "{key} changed");
    }

    // alice herself, with her password, still moves her own binding.
    let moved = |ua: &mut Ua, authorization: Option<&str>| {
        let mut r = ua.register(600, authorization);
        r.headers.set(HeaderName::Contact, "<sip:alice@127.0.0.1:5097>");
        ua.send(&r.to_bytes().expect("a writable REGISTER"));
        ua.recv()
    };
    let challenge = moved(&mut alice, None);
    assert_eq!(challenge.status, 401, "{}", challenge.reason);
    let mine = alice.answer(&challenge, "pw-alice", 1);
    let ok = moved(&mut alice, Some(&mine));
    assert_eq!(ok.status, 200, "{}", ok.reason);
    assert!(ok.headers.get_all(&HeaderName::Contact).any(|c| c.contains("127.0.0.1:5097")));
}

/// A phone's own TCP connection: REGISTERs for `user` on it, read back through holdfast-sip's
/// stream framing.
struct TcpPhone {
    stream: TcpStream,
    decoder: StreamDecoder,
    user: &'static str,
    cseq: u32,
}

impl TcpPhone {
    /// A connection to `to` from `local` (std cannot bind before connecting).
    fn connect(local: Ipv4Addr, to: SocketAddr, user: &'static str) -> TcpPhone {
        use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
        use std::os::fd::AsRawFd;
        let SocketAddr::V4(to) = to else { panic!("IPv4 only") };
        let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).expect("socket");
        bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(local, 0))).expect("bind");
        connect(fd.as_raw_fd(), &SockaddrIn::from(to)).expect("connect");
        let stream = TcpStream::from(fd);
        stream.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
        TcpPhone { stream, decoder: StreamDecoder::new(), user, cseq: 0 }
    }

    /// A REGISTER binding `contact` (a Contact value, or `*`) for `expires`; its final response.
    fn register(&mut self, contact: &str, expires: u32) -> Response {
        self.cseq += 1;
        let local = self.stream.local_addr().expect("local");
        let mut r = Request::new(Method::REGISTER, Uri::parse(&format!("sip:{DOMAIN}")).expect("uri"));
        let h = &mut r.headers;
        h.add(HeaderName::Via, format!("SIP/2.0/TCP {local};branch=z9hG4bK-tcp-{}-{}", local.port(), self.cseq));
        h.add(HeaderName::From, format!("<sip:{}@{DOMAIN}>;tag=tcp{}", self.user, local.port()));
        h.add(HeaderName::To, format!("<sip:{}@{DOMAIN}>", self.user));
        // One Call-ID for the phone, whichever connection it is on.
        h.add(HeaderName::CallId, format!("{}-tcp@test", self.user));
        h.add(HeaderName::CSeq, format!("{} REGISTER", self.cseq));
        h.add(HeaderName::Contact, contact.to_string());
        h.add(HeaderName::MaxForwards, "70");
        h.add(HeaderName::Expires, expires.to_string());
        self.stream.write_all(&r.to_bytes().expect("a writable REGISTER")).expect("write");
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            for item in self.decoder.by_ref() {
                if let Ok(StreamItem::Message(Message::Response(r))) = item {
                    if r.status >= 200 {
                        return r;
                    }
                }
            }
            let n = self.stream.read(&mut buf).expect("an answer over TCP");
            assert!(n > 0, "the registrar closed the connection");
            self.decoder.push(&buf[..n]);
        }
    }
}

#[test]
fn a_tcp_flow_refreshes_its_binding_but_changes_nothing_while_the_wan_is_down() {
    let scratch = Scratch::new("trust-register-tcp-flow");
    let central = StubCentral::start();
    // alice's password is not on the box: only the central site could check it.
    let reg = Registrar::start(&scratch, &format!("\n[central]\nproxies = [\"{}\"]\nbranch_expires = 60\n", central.addr), &[]);
    wait_mode(&reg, "pass-through");
    let mut alice = TcpPhone::connect(Ipv4Addr::LOCALHOST, reg.addr, "alice");
    let contact = "<sip:alice@127.0.0.1:5066;transport=tcp>";
    let ok = alice.register(contact, 600);
    assert_eq!(ok.status, 200, "alice over TCP through the branch: {}", ok.reason);
    let aor = format!("sip:alice@{DOMAIN}");
    let bindings = || reg.registrations().into_iter().filter(|b| b["aor"] == aor).collect::<Vec<_>>();
    let before = bindings();
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["transport"], "tcp", "{before:?}");
    central.cut();
    wait_mode(&reg, "survival");

    // On her own connection, the one the central site authenticated: a refresh is served...
    let refreshed = alice.register(contact, 600);
    assert_eq!(refreshed.status, 200, "alice's refresh on her flow: {}", refreshed.reason);
    // ...a change is not: moved, another contact added, removed, all removed.
    for (what, contact, expires) in [
        ("moved", "<sip:alice@127.0.0.1:5067;transport=tcp>", 600),
        ("another contact", "<sip:alice@127.0.0.2:5099;transport=tcp>", 600),
        ("removed", contact, 0),
        ("Contact: *", "*", 0),
    ] {
        let r = alice.register(contact, expires);
        assert_eq!(r.status, 403, "{what} on alice's flow: {} {}", r.status, r.reason);
    }
    // 127.0.0.2 on a TCP connection of its own: neither her refresh nor a move.
    let mut mallory = TcpPhone::connect(Ipv4Addr::new(127, 0, 0, 2), reg.addr, "alice");
    for (what, contact) in [("alice's refresh", contact), ("a move", "<sip:alice@127.0.0.2:5099;transport=tcp>")] {
        let r = mallory.register(contact, 600);
        assert_eq!(r.status, 403, "{what} from another connection: {} {}", r.status, r.reason);
    }
    let after = bindings();
    assert_eq!(after.len(), 1, "{after:?}");
    for key in ["contact", "source", "transport", "path"] {
        assert_eq!(after[0][key], before[0][key], "{key} changed");
    }
    // And she goes on refreshing on her flow.
    let again = alice.register(contact, 600);
    assert_eq!(again.status, 200, "alice's refresh after the attack: {}", again.reason);
}
