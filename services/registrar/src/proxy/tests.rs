use super::*;
use holdfast_sip::message::{sample, Uri};
use holdfast_sip::transaction::{TimerConfig, Transmit};
use holdfast_sip::transport::Protocol;

const VIA: &str = "10.0.0.1:5060";

fn us() -> std::net::SocketAddr {
    VIA.parse().unwrap()
}

/// Where the test's requests come in: UDP on `us()`.
fn inbound() -> Side {
    Side { addr: us(), transport: Protocol::Udp, flow: None }
}

fn stamp() -> RouteStamp {
    RouteStamp::new(&[1; 32])
}

fn proxy() -> Proxy {
    Proxy::new(ProxyConfig { no_answer: Duration::from_secs(20), stamp: stamp() })
}

/// Our Record-Route on `addr` for the dialog of `invite()`.
fn rr(addr: &str) -> String {
    stamp().record_route(&format!("sip:{addr}"), "call-1", "a1", None)
}

fn invite() -> Request {
    sample::request(
        "INVITE sip:bob@branch.test
         Via: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK-caller-1
         Max-Forwards: 70
         From: <sip:alice@branch.test>;tag=a1
         To: <sip:bob@branch.test>
         Call-ID: call-1
         CSeq: 1 INVITE
         Contact: <sip:alice@10.0.0.7>",
    )
}

fn target(host: &str) -> Target {
    Target {
        uri: Uri::parse(&format!("sip:bob@{host}:5060")).unwrap(),
        dest: format!("{host}:5060").parse().unwrap(),
        transport: Protocol::Udp,
        route: Vec::new(),
        local: us(),
        asserted: None,
        flow: None,
    }
}

struct Bench {
    txns: Transactions,
    proxy: Proxy,
    server: TxId,
    now: Instant,
}

impl Bench {
    fn start(targets: Vec<Target>, fallback: Option<Target>) -> Bench {
        let now = Instant::now();
        let mut txns = Transactions::new(TimerConfig::default());
        let Ok(holdfast_sip::transaction::Inbound::Request { id, request }) = txns.on_request(invite(), Protocol::Udp, now)
        else {
            panic!("expected a new server transaction")
        };
        let mut proxy = proxy();
        proxy.forward(&mut txns, id, request, inbound(), targets, fallback, now);
        Bench { txns, proxy, server: id, now }
    }

    /// Hands every transaction event to the proxy, returns what went on the wire (less the ACKs
    /// the client transactions send for non-2xx responses by themselves).
    fn pump(&mut self) -> (Vec<Request>, Vec<Response>) {
        while let Some(ev) = self.txns.poll_event() {
            self.proxy.on_event(&mut self.txns, &ev, self.now);
        }
        let (mut reqs, mut resps) = (Vec::new(), Vec::new());
        while let Some(t) = self.txns.poll_transmit() {
            match t {
                Transmit::Request { request, .. } if request.method != Method::ACK => reqs.push(std::sync::Arc::unwrap_or_clone(request)),
                Transmit::Request { .. } => {}
                Transmit::Response { response, .. } => resps.push(std::sync::Arc::unwrap_or_clone(response)),
            }
        }
        (reqs, resps)
    }

    fn answer(&mut self, branch_req: &Request, status: u16) {
        let r = branch_req.response(status);
        assert!(self.txns.on_response(r, self.now).is_none(), "the response matched no branch");
    }
}

fn statuses(rs: &[Response]) -> Vec<u16> {
    rs.iter().map(|r| r.status).collect()
}

#[test]
fn forks_to_every_contact_with_our_via_and_record_route() {
    let mut b = Bench::start(vec![target("10.0.0.21"), target("10.0.0.22")], None);
    let (reqs, resps) = b.pump();
    assert!(resps.is_empty(), "no 100 Trying while a branch may answer within 200 ms");
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        let via = r.top_via().unwrap();
        assert_eq!(sent_by(&via), VIA.parse().ok());
        assert_eq!(r.headers.get(&HeaderName::RecordRoute), Some(rr("10.0.0.1:5060").as_str()));
        assert_eq!(r.headers.get(&HeaderName::MaxForwards), Some("69"));
        assert_eq!(r.headers.count(&HeaderName::Via), 2);
    }
    assert_ne!(reqs[0].top_via().unwrap().branch(), reqs[1].top_via().unwrap().branch());
}

#[test]
fn first_2xx_is_relayed_and_the_other_branch_cancelled() {
    let mut b = Bench::start(vec![target("10.0.0.21"), target("10.0.0.22")], None);
    let (reqs, _) = b.pump();
    b.answer(&reqs[0], 180);
    let (_, resps) = b.pump();
    assert_eq!(statuses(&resps), [180]);
    assert_eq!(resps[0].headers.count(&HeaderName::Via), 1, "our Via is removed");
    b.answer(&reqs[1], 200);
    let (out, resps) = b.pump();
    assert_eq!(statuses(&resps), [200]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].method, Method::CANCEL);
    assert_eq!(out[0].top_via().unwrap().branch(), reqs[0].top_via().unwrap().branch());
}

#[test]
fn every_branch_failing_gives_the_best_response() {
    let mut b = Bench::start(vec![target("10.0.0.21"), target("10.0.0.22")], None);
    let (reqs, _) = b.pump();
    b.answer(&reqs[0], 503);
    let (_, resps) = b.pump();
    assert!(statuses(&resps).is_empty(), "nothing final while a branch is pending");
    b.answer(&reqs[1], 486);
    let (_, resps) = b.pump();
    assert_eq!(statuses(&resps), [486]);
}

#[test]
fn nobody_answering_in_time_goes_to_the_fallback() {
    let mut b = Bench::start(vec![target("10.0.0.21")], Some(target("10.0.0.99")));
    let (reqs, _) = b.pump();
    b.answer(&reqs[0], 180);
    b.pump();
    b.now += Duration::from_secs(21);
    let due = b.proxy.next_timeout().unwrap();
    assert!(due <= b.now);
    b.proxy.handle_timeout(&mut b.txns, b.now);
    let (out, _) = b.pump();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].method, Method::CANCEL);
    b.answer(&reqs[0], 487);
    let (out, resps) = b.pump();
    assert!(statuses(&resps).is_empty(), "the 487 of our own CANCEL is not relayed");
    assert_eq!(out.len(), 1, "the voicemail branch starts");
    assert_eq!(out[0].method, Method::INVITE);
    assert_eq!(out[0].uri.to_string(), "sip:bob@10.0.0.99:5060");
    b.answer(&out[0], 200);
    let (_, resps) = b.pump();
    assert_eq!(statuses(&resps), [200]);
}

#[test]
fn unanswered_without_fallback_is_480_and_a_caller_cancel_is_487() {
    let mut b = Bench::start(vec![target("10.0.0.21")], None);
    let (reqs, _) = b.pump();
    b.answer(&reqs[0], 180);
    b.pump();
    b.now += Duration::from_secs(21);
    b.proxy.handle_timeout(&mut b.txns, b.now);
    b.pump();
    b.answer(&reqs[0], 487);
    let (_, resps) = b.pump();
    assert_eq!(statuses(&resps), [480]);

    let mut b = Bench::start(vec![target("10.0.0.21")], Some(target("10.0.0.99")));
    let (reqs, _) = b.pump();
    b.answer(&reqs[0], 180);
    b.pump();
    assert!(b.proxy.on_cancel(&mut b.txns, b.server, b.now));
    let (out, _) = b.pump();
    assert_eq!(out.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(), ["CANCEL"]);
    b.answer(&reqs[0], 487);
    let (out, resps) = b.pump();
    assert!(out.is_empty(), "a cancelled call does not go to voicemail");
    assert_eq!(statuses(&resps), [487]);
}

#[test]
fn a_cancel_before_any_provisional_waits_for_one() {
    let mut b = Bench::start(vec![target("10.0.0.21")], None);
    let (reqs, _) = b.pump();
    b.proxy.on_cancel(&mut b.txns, b.server, b.now);
    let (out, _) = b.pump();
    assert!(out.iter().all(|r| r.method != Method::CANCEL), "no CANCEL before a provisional (§9.1)");
    b.answer(&reqs[0], 100);
    let (out, _) = b.pump();
    assert_eq!(out.iter().filter(|r| r.method == Method::CANCEL).count(), 1);
}

#[test]
fn no_target_is_480_and_a_looping_request_is_spotted() {
    let mut b = Bench::start(Vec::new(), None);
    let (_, resps) = b.pump();
    assert_eq!(statuses(&resps), [480]);

    let mut b = Bench::start(vec![target("10.0.0.21")], None);
    let (reqs, _) = b.pump();
    let mut back = reqs[0].clone();
    back.uri = invite().uri;
    let ours = [VIA.parse().unwrap()];
    assert!(is_loop(&back, &ours), "our own request coming back unchanged is a loop");
    assert!(!is_loop(&invite(), &ours));
}

#[test]
fn two_record_routes_when_the_target_is_on_another_of_our_networks() {
    let now = Instant::now();
    let mut txns = Transactions::new(TimerConfig::default());
    let Ok(holdfast_sip::transaction::Inbound::Request { id, request }) = txns.on_request(invite(), Protocol::Udp, now) else {
        panic!("expected a new server transaction")
    };
    let mut p = proxy();
    let wan: std::net::SocketAddr = "192.0.2.1:5060".parse().unwrap();
    let central = Target { local: wan, ..target("192.0.2.9") };
    p.forward(&mut txns, id, request, inbound(), vec![central], None, now);
    let sent = std::iter::from_fn(|| txns.poll_transmit())
        .find_map(|t| match t {
            Transmit::Request { request, .. } => Some(request),
            _ => None,
        })
        .unwrap();
    assert_eq!(sent.headers.get_all(&HeaderName::RecordRoute).collect::<Vec<_>>(), [rr("192.0.2.1:5060"), rr("10.0.0.1:5060")]);
    assert_eq!(sent.top_via().unwrap().host.to_string(), "192.0.2.1");
}

#[test]
fn requests_stranded_on_a_dead_next_hop_are_rerouted() {
    let mut b = Bench::start(vec![target("192.0.2.9")], None);
    let (reqs, _) = b.pump();
    assert_eq!(reqs.len(), 1);
    let dead: std::net::SocketAddr = "192.0.2.9:5060".parse().unwrap();
    let stranded = b.proxy.stranded(&[dead]);
    assert_eq!(stranded.len(), 1);
    assert_eq!(stranded[0].0, b.server);
    b.proxy.reroute(&mut b.txns, b.server, vec![target("10.0.0.50")], None, b.now);
    let (out, _) = b.pump();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].uri.to_string(), "sip:bob@10.0.0.50:5060");
    assert!(b.proxy.stranded(&[dead]).is_empty());
    // A late answer from the abandoned branch changes nothing.
    b.answer(&reqs[0], 486);
    let (_, resps) = b.pump();
    assert!(resps.is_empty(), "{:?}", statuses(&resps));
    b.answer(&out[0], 200);
    let (_, resps) = b.pump();
    assert_eq!(statuses(&resps), [200]);
}

#[test]
fn a_contact_that_never_answers_does_not_hold_up_the_fallback() {
    let mut b = Bench::start(vec![target("10.0.0.21")], Some(target("10.0.0.99")));
    b.pump();
    b.now += Duration::from_secs(21);
    b.proxy.handle_timeout(&mut b.txns, b.now);
    let (out, _) = b.pump();
    assert_eq!(out.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(), ["INVITE"], "straight to voicemail, no CANCEL");
    assert_eq!(out[0].uri.to_string(), "sip:bob@10.0.0.99:5060");
}

#[test]
fn only_our_asserted_identity_goes_on_and_only_towards_the_pstn() {
    let now = Instant::now();
    let mut txns = Transactions::new(TimerConfig::default());
    let mut forged = invite();
    forged.headers.add(HeaderName::PAssertedIdentity, "<sip:+15550000000@branch.test;user=phone>");
    let Ok(holdfast_sip::transaction::Inbound::Request { id, request }) = txns.on_request(forged, Protocol::Udp, now) else {
        panic!("expected a new server transaction")
    };
    let pstn = Target {
        uri: Uri::parse("sip:+12125550100@127.0.0.1:5070;user=phone").unwrap(),
        asserted: Some("+15559873001".into()),
        ..target("127.0.0.1")
    };
    let mut p = proxy();
    p.forward(&mut txns, id, request, inbound(), vec![pstn, target("10.0.0.21")], None, now);
    let sent: Vec<_> = std::iter::from_fn(|| txns.poll_transmit())
        .filter_map(|t| match t {
            Transmit::Request { request, .. } => Some(request),
            _ => None,
        })
        .collect();
    let identities = |r: &Request| r.headers.get_all(&HeaderName::PAssertedIdentity).map(str::to_string).collect::<Vec<_>>();
    let to_pstn = sent.iter().find(|r| r.uri.to_string().starts_with("sip:+1212")).unwrap();
    assert_eq!(identities(to_pstn), ["<sip:+15559873001@127.0.0.1;user=phone>"]);
    let to_phone = sent.iter().find(|r| r.uri.to_string().contains("10.0.0.21")).unwrap();
    assert!(identities(to_phone).is_empty(), "the phone's own assertion was passed on");
}

#[test]
fn a_phone_over_tls_gets_a_record_route_of_each_transport() {
    let tls_side = Side { addr: "10.0.0.1:5061".parse().unwrap(), transport: Protocol::Tls, flow: None };
    // The callee over UDP on the same address: the transports differ, so both sides are named
    // (RFC 5658), the phone's with transport=tls so that its in-dialog requests stay on TLS.
    let sent = forwarded_from_tls(tls_side, target("10.0.0.21"));
    let tls_rr = stamp().record_route("sip:10.0.0.1:5061;transport=tls", "call-1", "a1", None);
    assert_eq!(sent.headers.get_all(&HeaderName::RecordRoute).collect::<Vec<_>>(), [rr("10.0.0.1:5060"), tls_rr]);
    assert!(sent.headers.get(&HeaderName::Via).unwrap().starts_with("SIP/2.0/UDP 10.0.0.1:5060;"));
    // A Path or Route entry for a TLS side names the transport too.
    assert_eq!(route_value(tls_side), "<sip:10.0.0.1:5061;transport=tls;lr>");
    assert_eq!(route_value(inbound()), "<sip:10.0.0.1:5060;lr>");
}

#[test]
fn a_phone_on_its_own_connection_is_named_by_a_flow_token_on_its_side_even_on_one_address() {
    let caller: SocketAddr = "10.0.0.7:50112".parse().unwrap();
    let callee: SocketAddr = "10.0.0.21:40999".parse().unwrap();
    let us: SocketAddr = "10.0.0.1:5061".parse().unwrap();
    let inbound = Side { addr: us, transport: Protocol::Tls, flow: Some(caller) };
    // Both phones on TLS connections to the same address of ours: one entry for each flow.
    let to = Target { dest: callee, transport: Protocol::Tls, local: us, flow: Some(callee), ..target("10.0.0.21") };
    let sent = forwarded_from_tls(inbound, to);
    let uri = "sip:10.0.0.1:5061;transport=tls";
    let expected = [stamp().record_route(uri, "call-1", "a1", Some(callee)), stamp().record_route(uri, "call-1", "a1", Some(caller))];
    assert_eq!(sent.headers.get_all(&HeaderName::RecordRoute).collect::<Vec<_>>(), expected);
    assert!(expected.iter().all(|rr| rr.contains(";ob;")), "{expected:?}");
}

#[test]
fn a_sips_request_is_record_routed_with_sips_on_its_tls_sides_and_the_entries_still_prove_the_dialog() {
    let us: SocketAddr = "10.0.0.1:5061".parse().unwrap();
    let (caller, callee): (SocketAddr, SocketAddr) = ("10.0.0.7:50112".parse().unwrap(), "10.0.0.21:40999".parse().unwrap());
    let inbound = Side { addr: us, transport: Protocol::Tls, flow: Some(caller) };
    let to = Target { dest: callee, transport: Protocol::Tls, local: us, flow: Some(callee), ..target("10.0.0.21") };
    let sent = forwarded_from_tls_to("sips:bob@branch.test", inbound, to);
    let entries: Vec<&str> = sent.headers.get_all(&HeaderName::RecordRoute).collect();
    assert_eq!(entries.len(), 2, "{entries:?}");
    for entry in &entries {
        assert!(entry.starts_with("<sips:f"), "{entry}");
        let uri = holdfast_sip::message::NameAddr::parse(entry).unwrap().uri;
        assert!(stamp().proves(&uri, &sent), "{entry} no longer proves its dialog");
    }
    // Its UDP side (a callee over UDP) stays sip:, the TLS side is sips:.
    let tls_side = Side { addr: us, transport: Protocol::Tls, flow: None };
    let sent = forwarded_from_tls_to("sips:bob@branch.test", tls_side, target("10.0.0.21"));
    let tls_rr = stamp().record_route("sip:10.0.0.1:5061;transport=tls", "call-1", "a1", None).replacen("<sip:", "<sips:", 1);
    assert_eq!(sent.headers.get_all(&HeaderName::RecordRoute).collect::<Vec<_>>(), [rr("10.0.0.1:5060"), tls_rr]);
}

/// What the proxy sends to `to` for an INVITE that came in over TLS on `inbound`.
fn forwarded_from_tls(inbound: Side, to: Target) -> Request {
    forwarded_from_tls_to("sip:bob@branch.test", inbound, to)
}

/// `forwarded_from_tls` for an INVITE to `uri`.
fn forwarded_from_tls_to(uri: &str, inbound: Side, to: Target) -> Request {
    let now = Instant::now();
    let mut txns = Transactions::new(TimerConfig::default());
    let mut over_tls = invite();
    over_tls.uri = Uri::parse(uri).unwrap();
    over_tls.headers.set(HeaderName::Via, "SIP/2.0/TLS 10.0.0.7:50112;branch=z9hG4bK-caller-1");
    let Ok(holdfast_sip::transaction::Inbound::Request { id, request }) = txns.on_request(over_tls, Protocol::Tls, now) else {
        panic!("expected a new server transaction")
    };
    let mut p = proxy();
    p.forward(&mut txns, id, request, inbound, vec![to], None, now);
    std::iter::from_fn(|| txns.poll_transmit())
        .find_map(|t| match t {
            Transmit::Request { request, .. } => Some(std::sync::Arc::unwrap_or_clone(request)),
            _ => None,
        })
        .unwrap()
}
