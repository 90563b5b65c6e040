//! sips: URIs through the branch proxy (RFC 3261 §26.2, RFC 5630), on the embedded default
//! (image/run-local: TLS on 127.0.0.1:5061 with its generated certificate). bob is a SIP user
//! agent over one TLS connection in the test's hands (openssl s_client), registered with digest
//! at a sips: Contact; linphonec registers over TLS (baresip 1.0 dials sip: whatever it is
//! given), a baresip over UDP.
//!
//! - A sips: call to the UDP phone has no TLS hop to it: 480 with warn-code 380 (SIPS Not
//!   Allowed), and the phone never rings (no last-hop exception, RFC 5630 §3.1.3).
//! - linphonec calls sips:bob: the INVITE reaches bob on its own connection, at its sips:
//!   Contact, over TLS, with every Record-Route entry of ours sips: (§16.6 item 4). bob answers;
//!   the ACK follows; bob hangs up with a BYE along that sips: route set, which our proxy proves
//!   and sends to linphonec over linphonec's TLS flow: the call ends at linphonec.
use holdfast_sip::message::{HeaderName, Method, NameAddr, Request, Response};
use holdfast_tests::local::{LocalAppliance, DOMAIN, REGISTRAR};
use holdfast_tests::phones::{Baresip, Event, Linphonec, Phone, PhoneConfig};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::sip_client::register_authorization;
use holdfast_tests::tls_client::TlsUa;
use holdfast_tests::wait::wait_until;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
const TLS: &str = "127.0.0.1:5061";
const BOB_CONTACT: &str = "sips:bob@127.0.0.1:5099";

fn config<'a>(user: &'a str, password: &'a str, port: u16, registrar: &str) -> PhoneConfig<'a> {
    PhoneConfig::new(user, password, DOMAIN, format!("127.0.0.1:{port}").parse().unwrap(), registrar.parse().unwrap())
}

/// An audio answer to any offer: PCMU to a port nobody listens on (the test looks at SIP only).
const SDP: &str = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5098 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

fn record_routes(r: &Request) -> Vec<String> {
    r.headers.get_all(&HeaderName::RecordRoute).map(str::to_string).collect()
}

#[test]
fn sips_calls_keep_to_tls_hops_and_their_dialog_routes_are_sips() {
    let scratch = Scratch::new("tls-sips");
    let app = LocalAppliance::start(&scratch.path);
    app.add_users(&[("3001", "pw-3001"), ("3002", "pw-3002"), ("bob", "pw-bob")]);
    let generated = scratch.path.join("var/tls/cert.pem");
    let mut caller = Linphonec::start_tls(app.ns(), &scratch.path, &config("3001", "pw-3001", 5068, TLS), &generated);
    let udp_phone = Baresip::start(app.ns(), &scratch.path, &config("3002", "pw-3002", 5064, REGISTRAR), 120);
    let mut bob = TlsUa::connect(app.ns(), TLS.parse().unwrap(), &generated, "bob", DOMAIN);
    let challenge = bob.register(BOB_CONTACT, 600, None);
    assert_eq!(challenge.status, 401, "{} {}", challenge.status, challenge.reason);
    let ok = bob.register(BOB_CONTACT, 600, Some(&register_authorization(&challenge, DOMAIN, "bob", "pw-bob", 1)));
    assert_eq!(ok.status, 200, "bob's REGISTER over TLS: {} {}\n{}", ok.status, ok.reason, app.log("sba-registrar"));
    wait_until("linphonec and baresip registered", WAIT, || app.binding("3001").is_some() && app.binding("3002").is_some());
    assert_eq!(app.binding("bob").unwrap()["contact"], BOB_CONTACT);

    // 1. sips: to a phone reached over UDP only: no TLS hop, 480 with warn-code 380.
    let mut invite = bob.request(Method::INVITE, &format!("sips:3002@{DOMAIN}"));
    invite.headers.set(HeaderName::CallId, "sips-to-udp@test");
    invite.headers.set(HeaderName::To, format!("<sips:3002@{DOMAIN}>"));
    invite.headers.add(HeaderName::Contact, format!("<{BOB_CONTACT}>"));
    invite.headers.add(HeaderName::ContentType, "application/sdp");
    invite.body = SDP.as_bytes().to_vec();
    let refused = bob.send(&invite);
    assert_eq!(refused.status, 480, "{} {}\n{}", refused.status, refused.reason, app.log("sba-registrar"));
    let warning = refused.headers.get(&HeaderName::Warning).unwrap_or_default().to_string();
    assert!(warning.starts_with("380 ") && warning.contains("SIPS Not Allowed"), "Warning: {warning}");
    let mut ack = bob.request(Method::ACK, &format!("sips:3002@{DOMAIN}"));
    for name in [HeaderName::Via, HeaderName::CallId, HeaderName::To] {
        ack.headers.set(name.clone(), refused.headers.get(&name).unwrap().to_string());
    }
    ack.headers.set(HeaderName::CSeq, invite.headers.get(&HeaderName::CSeq).unwrap().replace("INVITE", "ACK"));
    bob.write_request(&ack);
    assert_eq!(udp_phone.count(Event::Incoming), 0, "the UDP phone rang for a sips: call:\n{}", udp_phone.console());

    // 2. linphonec calls sips:bob: to bob's own connection, at its sips: Contact, record-routed sips:.
    caller.dial(&format!("sips:bob@{DOMAIN}"));
    let invite = bob.next_request(WAIT).unwrap_or_else(|| panic!("no INVITE reached bob:\n{}\n{}", caller.terminal().text(), app.log("sba-registrar")));
    assert_eq!(invite.method, Method::INVITE);
    assert_eq!(invite.uri.to_string(), BOB_CONTACT);
    assert!(invite.headers.get(&HeaderName::Via).unwrap().starts_with("SIP/2.0/TLS "), "{invite:?}");
    let routes = record_routes(&invite);
    assert!(!routes.is_empty() && routes.iter().all(|r| r.starts_with("<sips:")), "our Record-Route for a sips: call: {routes:?}");
    let mut ok = invite.response(200);
    for rr in &routes {
        ok.headers.add(HeaderName::RecordRoute, rr.clone());
    }
    ok.headers.add(HeaderName::Contact, format!("<{BOB_CONTACT}>"));
    ok.headers.add(HeaderName::ContentType, "application/sdp");
    ok.body = SDP.as_bytes().to_vec();
    bob.respond(&ok);
    assert!(caller.wait(Event::Connected, 0, WAIT), "linphonec's sips: call did not connect:\n{}", caller.terminal().text());
    let ack = bob.next_request(WAIT).unwrap_or_else(|| panic!("no ACK reached bob:\n{}", app.log("sba-registrar")));
    assert_eq!(ack.method, Method::ACK, "{ack:?}");

    // 3. bob hangs up along the dialog's route set (the Record-Route as received): the proxy
    // proves the sips: entries and sends the BYE over linphonec's flow.
    let their_contact = NameAddr::parse(invite.headers.get(&HeaderName::Contact).expect("caller's Contact")).expect("Contact").uri;
    let mut bye = bob.request(Method::BYE, &their_contact.to_string());
    bye.headers.set(HeaderName::CallId, invite.call_id().unwrap().to_string());
    bye.headers.set(HeaderName::From, ok.headers.get(&HeaderName::To).unwrap().to_string());
    bye.headers.set(HeaderName::To, invite.headers.get(&HeaderName::From).unwrap().to_string());
    for rr in &routes {
        bye.headers.add(HeaderName::Route, rr.clone());
    }
    let answered: Response = bob.send(&bye);
    assert_eq!(answered.status, 200, "bob's BYE: {} {}\n{}", answered.status, answered.reason, app.log("sba-registrar"));
    assert!(caller.wait(Event::Ended, 0, WAIT), "the BYE did not end linphonec's call:\n{}", caller.terminal().text());
}
