//! The branch proxy relays nothing it cannot vouch for. An unregistered host on the LAN
//! (127.0.0.2) tries to reach the PSTN side (the address of `[survival].mediation`, where a
//! carrier trusting the appliance's IP would carry the call) with a To tag and an IP
//! Request-URI, with a preloaded Route, with a Route naming the proxy (bare or with a forged
//! tag), without a To tag, posing as a registered user, and with ACKs: every one is refused and
//! nothing of it reaches the PSTN side. Meanwhile the registered phone places a call, and its
//! ACK and BYE (which prove their dialog with the proxy's Record-Route) get through.
use holdfast_sip::message::{HeaderName, Message, Method, NameAddr, Response};
use holdfast_sip::wire;
use holdfast_tests::registrar::{Registrar, DOMAIN};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::sip_client::Ua;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The PSTN side: answers every INVITE 200 (Record-Route copied, its own Contact) and every BYE
/// 200, and notes each request's method and Call-ID.
struct PstnSide {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl PstnSide {
    fn start() -> PstnSide {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = sock.local_addr().expect("addr");
        let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let log = seen.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf) else { return };
                let Ok(Message::Request(req)) = wire::parse(&buf[..n]) else { continue };
                log.lock().unwrap().push((req.method.to_string(), req.call_id().unwrap_or_default().to_string()));
                let mut ok = match req.method {
                    Method::INVITE | Method::BYE => req.response(200),
                    _ => continue,
                };
                if req.method == Method::INVITE {
                    for rr in req.headers.get_all(&HeaderName::RecordRoute) {
                        ok.headers.add(HeaderName::RecordRoute, rr);
                    }
                    ok.headers.add(HeaderName::Contact, format!("<sip:pstn@{addr}>"));
                }
                let _ = sock.send_to(&ok.to_bytes().expect("a writable answer"), from);
            }
        });
        PstnSide { addr, seen }
    }

    fn calls(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(|(_, c)| c.clone()).collect()
    }

    fn methods_of(&self, call_id: &str) -> Vec<String> {
        self.seen.lock().unwrap().iter().filter(|(_, c)| c == call_id).map(|(m, _)| m.clone()).collect()
    }
}

fn request(
    method: &str,
    uri: &str,
    local: SocketAddr,
    call_id: &str,
    from: &str,
    to: &str,
    routes: &[&str],
    cseq: u32,
) -> Vec<u8> {
    let mut text = format!(
        "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{call_id}-{cseq}-{method};rport\r\n\
         Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
         Contact: <sip:x@{local}>\r\n"
    );
    for r in routes {
        text.push_str(&format!("Route: {r}\r\n"));
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    text.into_bytes()
}

fn recv_final(sock: &UdpSocket) -> Option<Response> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        let Ok((n, _)) = sock.recv_from(&mut buf) else { continue };
        if let Ok(Message::Response(r)) = wire::parse(&buf[..n]) {
            if r.status >= 200 {
                return Some(r);
            }
        }
    }
    None
}

#[test]
fn to_tag_route_and_ip_request_uri_relays_are_refused() {
    let scratch = Scratch::new("trust-relay");
    let pstn = PstnSide::start();
    let reg = Registrar::start(&scratch, &format!("\n[survival]\nmediation = \"{}\"\n", pstn.addr), &[("alice", "pw-alice")]);

    // The real phone registers with its password.
    let mut phone = Ua::new(reg.addr, "alice", DOMAIN);
    let challenge = phone.request(600, None);
    let ok = phone.request(600, Some(&phone.answer(&challenge, "pw-alice", 1)));
    assert_eq!(ok.status, 200, "{}", ok.reason);

    let attacker = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    attacker.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let me = attacker.local_addr().expect("addr");
    let pstn_uri = format!("sip:19005550199@{}", pstn.addr);
    let us = format!("<sip:{};lr>", reg.addr);
    let forged_tag = format!("<sip:{};lr;hfd={}>", reg.addr, "ab".repeat(16));
    let to_pstn = format!("<sip:{};lr>", pstn.addr);
    let alice = format!("<sip:alice@{DOMAIN}>;tag=x1");
    let mallory = format!("<sip:mallory@{DOMAIN}>;tag=m1");
    let tagged = "<sip:19005550199@branch.test>;tag=t1";
    let untagged = "<sip:19005550199@branch.test>";
    let attacks: Vec<(&str, &str, &str, &str, &str, Vec<&str>)> = vec![
        ("to-tag-ip-ruri", "INVITE", pstn_uri.as_str(), mallory.as_str(), tagged, vec![]),
        ("to-tag-route", "INVITE", "sip:19005550199@branch.test", mallory.as_str(), tagged, vec![to_pstn.as_str()]),
        ("to-tag-our-route", "INVITE", pstn_uri.as_str(), mallory.as_str(), tagged, vec![us.as_str()]),
        ("to-tag-forged", "INVITE", pstn_uri.as_str(), mallory.as_str(), tagged, vec![forged_tag.as_str()]),
        ("our-route-then-pstn", "INVITE", "sip:19005550199@branch.test", mallory.as_str(), tagged, vec![us.as_str(), to_pstn.as_str()]),
        ("ip-ruri", "INVITE", pstn_uri.as_str(), mallory.as_str(), untagged, vec![]),
        ("preloaded-route", "INVITE", "sip:19005550199@branch.test", mallory.as_str(), untagged, vec![to_pstn.as_str()]),
        ("posing-as-alice", "INVITE", "sip:19005550199@branch.test", alice.as_str(), untagged, vec![]),
        ("posing-in-dialog", "INVITE", pstn_uri.as_str(), alice.as_str(), tagged, vec![]),
        ("to-tag-message", "MESSAGE", pstn_uri.as_str(), mallory.as_str(), tagged, vec![]),
    ];
    for (name, method, uri, from, to, routes) in &attacks {
        let call_id = format!("attack-{name}");
        attacker.send_to(&request(method, uri, me, &call_id, from, to, routes, 1), reg.addr).expect("send");
        let answer = recv_final(&attacker).unwrap_or_else(|| panic!("{name}: no answer"));
        assert!(matches!(answer.status, 403 | 404), "{name}: answered {} {}", answer.status, answer.reason);
    }
    // ACKs have no answer: sent with a To tag towards the PSTN side, every way.
    for (i, routes) in [vec![], vec![to_pstn.as_str()], vec![us.as_str()], vec![forged_tag.as_str()]].iter().enumerate() {
        let call_id = format!("attack-ack-{i}");
        attacker.send_to(&request("ACK", &pstn_uri, me, &call_id, &mallory, tagged, routes, 1), reg.addr).expect("send");
    }

    // The phone's call reaches the PSTN side; its ACK and BYE prove their dialog and follow.
    let call = "alice-call-1";
    let invite = request("INVITE", "sip:2125550100@branch.test", phone.local(), call, &alice, untagged, &[], 1);
    phone.sock.send_to(&invite, reg.addr).expect("send");
    let answered = recv_final(&phone.sock).expect("the call is answered");
    assert_eq!(answered.status, 200, "{}", answered.reason);
    let rr: Vec<&str> = answered.headers.get_all(&HeaderName::RecordRoute).collect();
    assert!(!rr.is_empty() && rr.iter().all(|r| r.contains("hfd=")), "{rr:?}");
    let target = NameAddr::parse(answered.headers.get(&HeaderName::Contact).expect("Contact")).expect("contact").uri.to_string();
    let to = answered.headers.get(&HeaderName::To).expect("To").to_string();
    let route: Vec<&str> = rr.iter().rev().copied().collect();
    phone.sock.send_to(&request("ACK", &target, phone.local(), call, &alice, &to, &route, 1), reg.addr).expect("ACK");
    phone.sock.send_to(&request("BYE", &target, phone.local(), call, &alice, &to, &route, 2), reg.addr).expect("BYE");
    let bye_ok = recv_final(&phone.sock).expect("the BYE is answered");
    assert_eq!(bye_ok.status, 200);

    // The attacker's ACKs had their chance to arrive before the phone's BYE did.
    let deadline = Instant::now() + Duration::from_secs(5);
    while pstn.methods_of(call) != ["INVITE", "ACK", "BYE"] {
        assert!(Instant::now() < deadline, "the phone's call at the PSTN side: {:?}", pstn.methods_of(call));
        std::thread::sleep(Duration::from_millis(20));
    }
    let leaked: Vec<String> = pstn.calls().into_iter().filter(|c| c.starts_with("attack")).collect();
    assert!(leaked.is_empty(), "reached the PSTN side: {leaked:?}");
    // Counted (the status file is rewritten every 5 s).
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let status = holdfast_tests::branch::status_of(&reg.db).expect("status");
        let refused = &status["refused"];
        if refused["caller_not_registered"].as_u64() >= Some(attacks.len() as u64) && refused["unproven_ack"].as_u64() >= Some(4) {
            break;
        }
        assert!(Instant::now() < deadline, "refusals not counted: {status}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
