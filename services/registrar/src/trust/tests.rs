use super::*;
use holdfast_sip::message::{Method, Uri};
use holdfast_sip::transport::{ConnId, Protocol, Source};
use holdfast_store::Origin;

const AOR: &str = "sip:alice@branch.test";
const PHONE: &str = "10.0.0.10:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn binding(contact: &str, source: &str, transport: &str) -> Binding {
    Binding {
        aor: AOR.into(),
        contact: contact.into(),
        instance: None,
        reg_id: None,
        call_id: "c1".into(),
        cseq: 1,
        q: None,
        expires_at: i64::MAX,
        path: vec![],
        source: source.into(),
        transport: transport.into(),
        user_agent: None,
        updated_at: 0,
        origin: Origin::Central,
    }
}

fn request(method: Method, from: &str, to: &str) -> Request {
    let mut r = Request::new(method.clone(), Uri::parse("sip:2125550100@branch.test").unwrap());
    r.headers.add(HeaderName::Via, "SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK1");
    r.headers.add(HeaderName::From, from);
    r.headers.add(HeaderName::To, to);
    r.headers.add(HeaderName::CallId, "call-1");
    r.headers.add(HeaderName::CSeq, format!("1 {method}"));
    r
}

fn trust(auth: bool) -> Trust {
    Trust::new(auth, vec!["10.0.2.2".parse().unwrap(), "10.0.3.2".parse().unwrap()], RouteStamp::new(&[5; 32]))
}

#[test]
fn new_calls_come_from_peers_or_devices_registered_from_that_ip() {
    let t = trust(true);
    let invite = request(Method::INVITE, "<sip:alice@branch.test>;tag=a", "<sip:2125550100@branch.test>");
    let bound = [binding("sip:alice@10.0.0.10", PHONE, "udp")];
    let live = |aor: &str| -> Vec<&Binding> { if aor == AOR { bound.iter().collect() } else { vec![] } };
    assert_eq!(t.may_call(&invite, addr(PHONE), false, live), Ok(()));
    assert_eq!(t.may_call(&invite, addr("10.0.0.10:7777"), false, live), Ok(()), "any port of the phone's IP");
    assert!(t.may_call(&invite, addr("10.0.0.66:5060"), false, live).is_err(), "posing as alice from elsewhere");
    let bob = request(Method::INVITE, "<sip:bob@branch.test>;tag=b", "<sip:2125550100@branch.test>");
    assert!(t.may_call(&bob, addr(PHONE), false, live).is_err(), "alice's phone posing as bob");
    assert_eq!(t.may_call(&bob, addr("10.0.2.2:5060"), false, live), Ok(()), "the central proxy");
    assert_eq!(t.may_call(&bob, addr("10.0.3.2:9999"), false, live), Ok(()), "sba-mediation");
    assert_eq!(t.may_call(&bob, addr("10.0.0.1:5060"), true, live), Ok(()), "ourselves");
    let mut no_from = bob.clone();
    no_from.headers.remove_all(&HeaderName::From);
    assert!(t.may_call(&no_from, addr(PHONE), false, live).is_err());
    assert_eq!(trust(false).may_call(&bob, addr("10.0.0.66:5060"), false, live), Ok(()), "auth off: a lab");
}

#[test]
fn in_dialog_requests_prove_themselves_with_our_record_route() {
    let t = trust(true);
    let us = addr("10.0.0.1:5060");
    let is_ours = |a: SocketAddr| a == us;
    let rr = t.stamp.record_route(&format!("sip:{us}"), "call-1", "a", None);
    // The caller's BYE (its tag in From), the callee's (the caller's tag in To).
    let mut bye = request(Method::BYE, "<sip:alice@branch.test>;tag=a", "<sip:2125550100@branch.test>;tag=b");
    bye.headers.add(HeaderName::Route, rr.clone());
    assert!(t.proves_dialog(&bye, is_ours));
    let mut back = request(Method::BYE, "<sip:2125550100@branch.test>;tag=b", "<sip:alice@branch.test>;tag=a");
    back.headers.add(HeaderName::Route, rr.clone());
    assert!(t.proves_dialog(&back, is_ours));

    // Another dialog's Route, a Route naming us without a tag or with a bad one, another host's
    // Route with our tag, no To tag, another key: no proof.
    let mut other_call = bye.clone();
    other_call.headers.set(HeaderName::CallId, "call-2");
    assert!(!t.proves_dialog(&other_call, is_ours));
    let mut bare = bye.clone();
    bare.headers.set(HeaderName::Route, "<sip:10.0.0.1:5060;lr>");
    assert!(!t.proves_dialog(&bare, is_ours));
    let mut tampered = bye.clone();
    tampered.headers.set(HeaderName::Route, rr.replace("hfd=", "hfd=0"));
    assert!(!t.proves_dialog(&tampered, is_ours));
    let mut elsewhere = bye.clone();
    elsewhere.headers.set(HeaderName::Route, rr.replace("10.0.0.1", "10.0.3.2"));
    assert!(!t.proves_dialog(&elsewhere, is_ours));
    let mut initial = request(Method::INVITE, "<sip:alice@branch.test>;tag=a", "<sip:2125550100@branch.test>");
    initial.headers.add(HeaderName::Route, rr.clone());
    assert!(!t.proves_dialog(&initial, is_ours));
    let other_key = Trust::new(true, vec![], RouteStamp::new(&[6; 32]));
    assert!(!other_key.proves_dialog(&bye, is_ours));
    let mut no_route = bye.clone();
    no_route.headers.remove_all(&HeaderName::Route);
    assert!(!t.proves_dialog(&no_route, is_ours));
}

#[test]
fn a_flow_token_in_our_record_route_is_proven_with_its_dialog_and_cannot_be_moved() {
    let t = trust(true);
    let us = addr("10.0.0.1:5061");
    let is_ours = |a: SocketAddr| a == us;
    let phone = addr("[2001:db8::5]:40312");
    let rr = t.stamp.record_route(&format!("sip:{us};transport=tls"), "call-1", "a", Some(phone));
    assert!(rr.starts_with("<sip:f") && rr.contains("@10.0.0.1:5061;transport=tls;lr;ob;hfd="), "{rr}");
    let mut bye = request(Method::BYE, "<sip:2125550100@branch.test>;tag=b", "<sip:alice@branch.test>;tag=a");
    bye.headers.add(HeaderName::Route, rr.clone());
    assert!(t.proves_dialog(&bye, is_ours));
    let route = holdfast_sip::message::NameAddr::parse(&rr).unwrap().uri;
    assert_eq!(super::flow_of(&route), Some(phone));
    // Another phone's connection in the same dialog's entry: the tag no longer holds.
    let other = t.stamp.record_route(&format!("sip:{us};transport=tls"), "call-9", "z", Some(addr("10.0.1.9:40000")));
    let (token, _) = other.trim_start_matches("<sip:").split_once('@').unwrap();
    let (mine, _) = rr.trim_start_matches("<sip:").split_once('@').unwrap();
    let mut moved = bye.clone();
    moved.headers.set(HeaderName::Route, rr.replace(mine, token));
    assert!(!t.proves_dialog(&moved, is_ours));
    // Nor without it: the tag was made over the token.
    let mut dropped = bye.clone();
    dropped.headers.set(HeaderName::Route, rr.replace(&format!("{mine}@"), ""));
    assert!(!t.proves_dialog(&dropped, is_ours));
}

fn register(contacts: &[&str], expires: Option<&str>, path: &[&str]) -> Request {
    let mut r = request(Method::REGISTER, "<sip:alice@branch.test>;tag=r", "<sip:alice@branch.test>");
    for c in contacts {
        r.headers.add(HeaderName::Contact, *c);
    }
    for p in path {
        r.headers.add(HeaderName::Path, *p);
    }
    if let Some(e) = expires {
        r.headers.add(HeaderName::Expires, e);
    }
    r
}

fn udp(a: &str) -> Source {
    Source { addr: addr(a), transport: Protocol::Udp, conn: None }
}

#[test]
fn survival_registers_refresh_unchanged_or_prove_themselves() {
    use SurvivalRegister::*;
    let mut with_path = binding("sip:alice@10.0.0.10", PHONE, "udp");
    with_path.path = vec!["<sip:10.0.0.2;lr>".into()];
    let mut outbound = binding("sip:alice@10.0.0.11;transport=tcp", "10.0.0.11:40000", "tcp");
    outbound.instance = Some("urn:uuid:1".into());
    outbound.reg_id = Some(1);
    let live = [&with_path, &outbound];
    let decide = |r: &Request, s: &Source, ha1: bool| survival_register(r, s, &live, ha1);

    let same = register(&["<sip:alice@10.0.0.10>"], Some("120"), &["<sip:10.0.0.2;lr>"]);
    assert_eq!(decide(&same, &udp(PHONE), false), Refresh);
    let tcp = Source { addr: addr("10.0.0.11:40000"), transport: Protocol::Tcp, conn: Some(ConnId::from_raw(7)) };
    let same_flow = register(&["<sip:alice@10.0.0.11;transport=tcp>;+sip.instance=\"<urn:uuid:1>\";reg-id=1"], None, &[]);
    assert_eq!(decide(&same_flow, &tcp, false), Refresh);

    // Changes, each from the phone's very address: refused without credentials, challenged with.
    let changes = [
        ("another contact", register(&["<sip:alice@10.0.0.66>"], None, &["<sip:10.0.0.2;lr>"]), udp(PHONE)),
        ("another Path", register(&["<sip:alice@10.0.0.10>"], None, &["<sip:10.0.0.66;lr>"]), udp(PHONE)),
        ("Path dropped", register(&["<sip:alice@10.0.0.10>"], None, &[]), udp(PHONE)),
        ("Contact: *", register(&["*"], Some("0"), &[]), udp(PHONE)),
        ("removal", register(&["<sip:alice@10.0.0.10>"], Some("0"), &["<sip:10.0.0.2;lr>"]), udp(PHONE)),
        ("removal param", register(&["<sip:alice@10.0.0.10>;expires=0"], None, &["<sip:10.0.0.2;lr>"]), udp(PHONE)),
        ("another port", register(&["<sip:alice@10.0.0.10>"], None, &["<sip:10.0.0.2;lr>"]), udp("10.0.0.10:5062")),
        ("another IP", register(&["<sip:alice@10.0.0.10>"], None, &["<sip:10.0.0.2;lr>"]), udp("10.0.0.66:5060")),
        ("UDP for a TCP flow", same_flow.clone(), udp("10.0.0.11:40000")),
        ("an instance added", register(&["<sip:alice@10.0.0.10>;+sip.instance=\"<urn:uuid:9>\""], None, &["<sip:10.0.0.2;lr>"]), udp(PHONE)),
        ("a query", register(&[], None, &[]), udp(PHONE)),
    ];
    for (what, req, source) in &changes {
        assert!(matches!(decide(req, source, false), Refuse(_)), "{what} without credentials");
        assert_eq!(decide(req, source, true), Challenge, "{what} with the HA1 on the box");
    }
    let unknown = survival_register(&same, &udp(PHONE), &[], false);
    assert_eq!(unknown, Refuse("Forbidden (unknown device during WAN outage)"));
}

/// The connection a TCP or TLS binding was registered on (the one the central site
/// authenticated) vouches for that binding as it stands, nothing more (RFC 5626 flow): a change
/// on it is challenged when the HA1 is on the box and refused without one.
#[test]
fn a_flow_refreshes_its_binding_and_changes_nothing() {
    use SurvivalRegister::*;
    let mut bound = binding("sip:alice@10.0.0.11;transport=tls", "10.0.0.11:40000", "tls");
    bound.instance = Some("urn:uuid:1".into());
    bound.reg_id = Some(1);
    let live = [&bound];
    let flow = Source { addr: addr("10.0.0.11:40000"), transport: Protocol::Tls, conn: Some(ConnId::from_raw(7)) };
    let contact = "<sip:alice@10.0.0.11;transport=tls>;+sip.instance=\"<urn:uuid:1>\";reg-id=1";
    assert_eq!(survival_register(&register(&[contact], Some("600"), &[]), &flow, &live, false), Refresh);
    let changes = [
        ("moved", register(&["<sip:alice@10.0.0.11:5063;transport=tls>"], None, &[])),
        ("a contact added", register(&[contact, "<sip:alice@10.0.0.11:5099;transport=tls>"], None, &[])),
        ("Contact: *", register(&["*"], Some("0"), &[])),
        ("unregistered", register(&[contact], Some("0"), &[])),
        ("a Path added", register(&[contact], None, &["<sip:10.0.0.66;lr>"])),
        ("a query", register(&[], None, &[])),
    ];
    for (what, req) in &changes {
        assert!(matches!(survival_register(req, &flow, &live, false), Refuse(_)), "{what} on the flow without an HA1");
        assert_eq!(survival_register(req, &flow, &live, true), Challenge, "{what} on the flow with the HA1 on the box");
    }
    // The same refresh on another connection, from another address: not the flow.
    let other = Source { addr: addr("10.0.0.66:40001"), transport: Protocol::Tls, conn: Some(ConnId::from_raw(8)) };
    assert!(matches!(survival_register(&register(&[contact], None, &[]), &other, &live, false), Refuse(_)));
}
