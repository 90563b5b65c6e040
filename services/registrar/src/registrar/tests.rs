use super::*;
use holdfast_store::Origin;
use holdfast_sip::message::{Method, Uri};

const NOW: u64 = 1_000_000;

fn registrar() -> Registrar {
    Registrar::new(Limits { min_expires: 60, max_expires: 3600, default_expires: 1800, max_contacts: 3 }, Vec::new())
}

fn register(call_id: &str, cseq: u32, contacts: &[&str], expires: Option<&str>) -> Request {
    let mut r = Request::new(Method::REGISTER, Uri::parse("sip:branch.local").unwrap());
    r.headers.add(HeaderName::Via, "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1");
    r.headers.add(HeaderName::From, "<sip:alice@branch.local>;tag=a");
    r.headers.add(HeaderName::To, "<sip:alice@branch.local>");
    r.headers.add(HeaderName::CallId, call_id);
    r.headers.add(HeaderName::CSeq, format!("{cseq} REGISTER"));
    for c in contacts {
        r.headers.add(HeaderName::Contact, *c);
    }
    if let Some(e) = expires {
        r.headers.add(HeaderName::Expires, e);
    }
    r
}

fn src() -> Source {
    Source { addr: "192.0.2.10:5060".parse().unwrap(), transport: holdfast_sip::transport::Protocol::Udp, conn: None }
}

const AOR: &str = "sip:alice@branch.local";

fn commit(reg: &mut Registrar, req: &Request) -> (Vec<Change>, Response) {
    match reg.register(req, AOR, src(), NOW, Origin::Local) {
        Decision::Commit { changes, response, .. } => (changes, response),
        Decision::Reply(r) => panic!("expected a commit, got {} {}", r.status, r.reason),
    }
}

fn reply(reg: &mut Registrar, req: &Request) -> Response {
    match reg.register(req, AOR, src(), NOW, Origin::Local) {
        Decision::Reply(r) => r,
        Decision::Commit { response, .. } => panic!("expected a reply, got commit {}", response.status),
    }
}

#[test]
fn two_contacts_listed_with_remaining_expiry() {
    let mut reg = registrar();
    let req = register("c1", 1, &["<sip:alice@192.0.2.10>;q=0.5", "<sip:alice@192.0.2.11>;expires=120"], Some("600"));
    let (changes, resp) = commit(&mut reg, &req);
    assert_eq!(resp.status, 200);
    assert_eq!(changes.len(), 2);
    let contacts: Vec<&str> = resp.headers.get_all(&HeaderName::Contact).collect();
    assert_eq!(contacts.len(), 2);
    assert!(contacts.contains(&"<sip:alice@192.0.2.10>;expires=600;q=0.5"), "{contacts:?}");
    assert!(contacts.contains(&"<sip:alice@192.0.2.11>;expires=120"), "{contacts:?}");
    // Highest q first in lookups.
    assert_eq!(reg.lookup(AOR, NOW)[0].contact, "sip:alice@192.0.2.11");
}

#[test]
fn too_brief_gets_423_with_min_expires() {
    let mut reg = registrar();
    let r = reply(&mut reg, &register("c1", 1, &["<sip:alice@192.0.2.10>"], Some("30")));
    assert_eq!(r.status, 423);
    assert_eq!(r.headers.get(&HeaderName::MinExpires), Some("60"));
    assert_eq!(reg.binding_count(), 0);
}

#[test]
fn long_expiry_is_capped() {
    let mut reg = registrar();
    let (_, r) = commit(&mut reg, &register("c1", 1, &["<sip:alice@192.0.2.10>"], Some("99999")));
    assert_eq!(r.headers.get(&HeaderName::Contact), Some("<sip:alice@192.0.2.10>;expires=3600"));
}

#[test]
fn refresh_then_out_of_order_refused() {
    let mut reg = registrar();
    commit(&mut reg, &register("c1", 5, &["<sip:alice@192.0.2.10>"], Some("600")));
    let (changes, _) = commit(&mut reg, &register("c1", 6, &["<sip:alice@192.0.2.10>"], Some("900")));
    assert_eq!(changes.len(), 1, "a refresh is one upsert: {changes:?}");
    assert_eq!(reg.lookup(AOR, NOW)[0].expires_at as u64, NOW + 900);
    let r = reply(&mut reg, &register("c1", 6, &["<sip:alice@192.0.2.10>"], Some("60")));
    assert_eq!(r.status, 400);
    assert!(r.reason.contains("out of order"));
    assert_eq!(reg.lookup(AOR, NOW)[0].expires_at as u64, NOW + 900, "stale request changed nothing");
    // A new Call-ID (phone rebooted) may use any CSeq.
    commit(&mut reg, &register("c2", 1, &["<sip:alice@192.0.2.10>"], Some("120")));
    assert_eq!(reg.lookup(AOR, NOW)[0].expires_at as u64, NOW + 120);
}

#[test]
fn unregister_one_and_wildcard() {
    let mut reg = registrar();
    commit(&mut reg, &register("c1", 1, &["<sip:alice@192.0.2.10>", "<sip:alice@192.0.2.11>"], None));
    let (_, r) = commit(&mut reg, &register("c1", 2, &["<sip:alice@192.0.2.10>;expires=0"], None));
    assert_eq!(r.headers.count(&HeaderName::Contact), 1);
    let bad = reply(&mut reg, &register("c1", 3, &["*"], Some("10")));
    assert_eq!(bad.status, 400);
    let (changes, r) = commit(&mut reg, &register("c1", 4, &["*"], Some("0")));
    assert_eq!(changes, vec![Change::Remove { aor: AOR.into(), contact: "sip:alice@192.0.2.11".into() }]);
    assert_eq!(r.headers.count(&HeaderName::Contact), 0);
    assert_eq!(reg.binding_count(), 0);
}

#[test]
fn query_changes_nothing() {
    let mut reg = registrar();
    commit(&mut reg, &register("c1", 1, &["<sip:alice@192.0.2.10>"], None));
    let r = reply(&mut reg, &register("c9", 1, &[], None));
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get(&HeaderName::Contact), Some("<sip:alice@192.0.2.10>;expires=1800"));
}

#[test]
fn instance_and_reg_id_replace_the_flow() {
    let mut reg = registrar();
    let inst = "<sip:alice@192.0.2.10;transport=tcp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1";
    commit(&mut reg, &register("c1", 1, &[inst], None));
    let moved = "<sip:alice@198.51.100.7:5072>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1";
    let (_, r) = commit(&mut reg, &register("c1", 2, &[moved], None));
    assert_eq!(reg.binding_count(), 1);
    let b = &reg.lookup(AOR, NOW)[0];
    assert_eq!(b.instance.as_deref(), Some("urn:uuid:00000000-0000-1000-8000-000A95A0E128"));
    assert_eq!(b.reg_id, Some(1));
    assert!(r.headers.get(&HeaderName::Contact).unwrap().contains("+sip.instance"));
}

#[test]
fn path_is_kept_and_echoed() {
    let mut reg = registrar();
    let mut req = register("c1", 1, &["<sip:alice@192.0.2.10>"], None);
    req.headers.add(HeaderName::Path, "<sip:edge.example;lr>");
    let (_, r) = commit(&mut reg, &req);
    assert_eq!(r.headers.get(&HeaderName::Path), Some("<sip:edge.example;lr>"));
    assert_eq!(reg.lookup(AOR, NOW)[0].path, vec!["<sip:edge.example;lr>".to_string()]);
}

#[test]
fn unsupported_require_gets_420() {
    let mut reg = registrar();
    let mut req = register("c1", 1, &["<sip:alice@192.0.2.10>"], None);
    req.headers.add(HeaderName::Require, "foo");
    let r = reply(&mut reg, &req);
    assert_eq!(r.status, 420);
    assert_eq!(r.headers.get(&HeaderName::Unsupported), Some("foo"));
}

#[test]
fn expiry_and_undo() {
    let mut reg = registrar();
    commit(&mut reg, &register("c1", 1, &["<sip:alice@192.0.2.10>;expires=60"], None));
    let Decision::Commit { undo, .. } = reg.register(&register("c1", 2, &["<sip:alice@192.0.2.11>"], None), AOR, src(), NOW, Origin::Local)
    else {
        panic!("expected a commit")
    };
    assert_eq!(reg.binding_count(), 2);
    reg.undo(undo);
    assert_eq!(reg.binding_count(), 1);
    assert_eq!(reg.expire(NOW + 59), vec![]);
    assert_eq!(reg.expire(NOW + 60).len(), 1);
    assert_eq!(reg.binding_count(), 0);
}

#[test]
fn bad_q_is_refused() {
    let mut reg = registrar();
    assert_eq!(reply(&mut reg, &register("c1", 1, &["<sip:alice@192.0.2.10>;q=1.5"], None)).status, 400);
}

#[test]
fn central_grants_bypass_local_limits() {
    let mut reg = registrar();
    let req = register("c1", 1, &["<sip:alice@192.0.2.10>;expires=30"], None);
    let Decision::Commit { .. } = reg.register(&req, AOR, src(), NOW, Origin::Central) else { panic!("central grant refused") };
    assert_eq!(reg.lookup(AOR, NOW)[0].origin, Origin::Central);
}

#[test]
fn refreshes_with_plenty_of_central_grant_left_are_answered_at_the_branch() {
    let mut reg = registrar();
    let granted = register("c1", 2, &["<sip:alice@192.0.2.10>;expires=3600"], None);
    let Decision::Commit { .. } = reg.register(&granted, AOR, src(), NOW, Origin::Central) else { panic!("grant refused") };
    let refresh = register("c1", 3, &["<sip:alice@192.0.2.10>"], Some("3600"));
    let Some(Decision::Commit { changes, response, .. }) = reg.refresh_locally(&refresh, AOR, &src(), NOW + 100, 240) else {
        panic!("a refresh with 3500 s of grant left is answered locally")
    };
    assert_eq!(response.status, 200);
    let [Change::Upsert(b)] = changes.as_slice() else { panic!("{changes:?}") };
    assert_eq!((b.cseq, b.expires_at as u64), (3, NOW + 3600), "the central expiry stands");
    // Not for: the same CSeq again, another IP, a removal, too little grant left, a new contact.
    assert!(reg.refresh_locally(&refresh, AOR, &src(), NOW + 101, 240).is_none());
    let next = register("c1", 4, &["<sip:alice@192.0.2.10>"], Some("3600"));
    let elsewhere = Source { addr: "192.0.2.99:5060".parse().unwrap(), ..src() };
    assert!(reg.refresh_locally(&next, AOR, &elsewhere, NOW + 102, 240).is_none());
    assert!(reg.refresh_locally(&register("c1", 4, &["<sip:alice@192.0.2.10>"], Some("0")), AOR, &src(), NOW + 102, 240).is_none());
    assert!(reg.refresh_locally(&next, AOR, &src(), NOW + 3400, 240).is_none());
    assert!(reg.refresh_locally(&register("c1", 4, &["<sip:alice@192.0.2.77>"], None), AOR, &src(), NOW + 102, 240).is_none());
    // A binding the branch made itself is never refreshed this way.
    let mut local = registrar();
    commit(&mut local, &register("c1", 1, &["<sip:alice@192.0.2.10>"], None));
    assert!(local.refresh_locally(&register("c1", 2, &["<sip:alice@192.0.2.10>"], None), AOR, &src(), NOW, 0).is_none());
}

#[test]
fn an_aor_holds_at_most_max_contacts() {
    let mut reg = registrar();
    for (i, n) in [1, 2, 3].iter().enumerate() {
        let req = register("c1", i as u32 + 1, &[&format!("<sip:alice@192.0.2.{n}>")], None);
        assert!(matches!(reg.register(&req, AOR, src(), NOW, Origin::Local), Decision::Commit { .. }));
    }
    let fourth = register("c1", 4, &["<sip:alice@192.0.2.4>"], None);
    assert_eq!(reply(&mut reg, &fourth).status, 403);
    assert_eq!(reg.capped(), 1);
    assert_eq!(reg.lookup(AOR, NOW).len(), 3);
    // Refreshing one of the three, or replacing one, stays within the cap.
    let refresh = register("c1", 5, &["<sip:alice@192.0.2.1>"], None);
    assert!(matches!(reg.register(&refresh, AOR, src(), NOW, Origin::Local), Decision::Commit { .. }));
    let swap = register("c1", 6, &["<sip:alice@192.0.2.1>;expires=0", "<sip:alice@192.0.2.4>"], None);
    assert!(matches!(reg.register(&swap, AOR, src(), NOW, Origin::Local), Decision::Commit { .. }));
    // Many contacts in one REGISTER are refused as a whole.
    let many: Vec<String> = (10..20).map(|n| format!("<sip:alice@192.0.2.{n}>")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(reply(&mut reg, &register("c1", 7, &many, None)).status, 403);
    assert_eq!(reg.lookup(AOR, NOW).len(), 3);
}
