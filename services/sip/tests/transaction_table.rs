//! The transaction layer's matching (RFC 3261 §17.1.3, §17.2.3) and timer aggregation.
use holdfast_sip::message::{HeaderName, Method, Request, Response, Uri};
use holdfast_sip::transaction::{
    Event, Inbound, TimerConfig, Transactions, Transmit, TxError, TxEvent, TxId,
};
use holdfast_sip::Ids;
use holdfast_sip::transport::Protocol;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn request(method: Method, via: &str, cseq: u32) -> Request {
    let mut r = Request::new(method.clone(), Uri::parse("sip:bob@example.com").unwrap());
    r.headers.add(HeaderName::Via, via);
    r.headers.add(HeaderName::MaxForwards, "70");
    r.headers.add(HeaderName::From, "<sip:alice@example.com>;tag=a1");
    r.headers.add(HeaderName::To, "<sip:bob@example.com>");
    r.headers.add(HeaderName::CallId, "call-1@192.0.2.1");
    r.headers.add(HeaderName::CSeq, format!("{cseq} {method}"));
    r
}

fn via(branch: &str) -> String {
    format!("SIP/2.0/UDP 192.0.2.1:5060;branch={branch}")
}

fn tagged(resp: Response) -> Response {
    let mut resp = resp;
    resp.headers.set(HeaderName::To, "<sip:bob@example.com>;tag=srv");
    resp
}

fn new_id(inbound: Inbound) -> TxId {
    match inbound {
        Inbound::Request { id, .. } => id,
        other => panic!("expected a new transaction, got {other:?}"),
    }
}

fn transmits(txs: &mut Transactions) -> Vec<Transmit> {
    std::iter::from_fn(|| txs.poll_transmit()).take(1000).collect()
}

fn events(txs: &mut Transactions) -> Vec<Event> {
    std::iter::from_fn(|| txs.poll_event()).take(1000).collect()
}

fn statuses(out: &[Transmit]) -> Vec<u16> {
    out.iter()
        .map(|t| match t {
            Transmit::Response { response, .. } => response.status,
            Transmit::Request { .. } => 0,
        })
        .collect()
}

/// Drives the table's timers up to `until`, bounded.
fn run_until(txs: &mut Transactions, until: Instant) {
    for _ in 0..100_000 {
        match txs.next_timeout() {
            Some(at) if at <= until => txs.handle_timeout(at),
            _ => return,
        }
    }
}

const DEST: &str = "192.0.2.9:5060";

#[test]
fn register_server_transaction_absorbs_and_expires() {
    let t0 = Instant::now();
    let mut txs = Transactions::new(TimerConfig::default());
    let register = request(Method::REGISTER, &via("z9hG4bKreg1"), 1);
    let id = new_id(txs.on_request(register.clone(), Protocol::Udp, t0).unwrap());
    assert_eq!(txs.on_request(register.clone(), Protocol::Udp, t0).unwrap(), Inbound::Absorbed);
    assert!(transmits(&mut txs).is_empty(), "nothing to resend before the TU answers");

    txs.send_response(id, tagged(register.response(200)), t0).unwrap();
    assert_eq!(statuses(&transmits(&mut txs)), vec![200]);
    assert_eq!(txs.on_request(register.clone(), Protocol::Udp, t0 + Duration::from_secs(1)).unwrap(), Inbound::Absorbed);
    assert_eq!(statuses(&transmits(&mut txs)), vec![200], "a retransmission gets the same answer");

    assert_eq!(txs.next_timeout(), Some(t0 + Duration::from_secs(32)));
    run_until(&mut txs, t0 + Duration::from_secs(33));
    assert_eq!(events(&mut txs), vec![Event { id, event: TxEvent::Terminated }]);
    assert!(txs.is_empty());
    assert_eq!(txs.next_timeout(), None);
    // Once forgotten, the same request is new again.
    assert!(matches!(txs.on_request(register, Protocol::Udp, t0 + Duration::from_secs(34)).unwrap(), Inbound::Request { .. }));
}

#[test]
fn same_branch_from_another_sent_by_is_another_transaction() {
    let t0 = Instant::now();
    let mut txs = Transactions::new(TimerConfig::default());
    let a = request(Method::REGISTER, "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKsame", 1);
    let b = request(Method::REGISTER, "SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bKsame", 1);
    let options = request(Method::OPTIONS, "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKsame", 1);
    let ida = new_id(txs.on_request(a, Protocol::Udp, t0).unwrap());
    let idb = new_id(txs.on_request(b, Protocol::Udp, t0).unwrap());
    let idc = new_id(txs.on_request(options, Protocol::Udp, t0).unwrap());
    assert!(ida != idb && idb != idc && ida != idc);
    assert_eq!(txs.len(), 3);
}

#[test]
fn ack_for_non_2xx_is_absorbed_and_ack_for_2xx_goes_to_the_tu() {
    let t0 = Instant::now();
    let mut txs = Transactions::new(TimerConfig::default());
    let invite = request(Method::INVITE, &via("z9hG4bKinv"), 1);
    let id = new_id(txs.on_request(invite.clone(), Protocol::Udp, t0).unwrap());
    assert!(transmits(&mut txs).is_empty(), "no 100 Trying while the TU may answer within 200 ms");
    txs.send_response(id, tagged(invite.response(486)), t0).unwrap();
    assert_eq!(statuses(&transmits(&mut txs)), vec![486]);

    let mut ack = request(Method::ACK, &via("z9hG4bKinv"), 1);
    ack.headers.set(HeaderName::To, "<sip:bob@example.com>;tag=srv");
    assert_eq!(txs.on_request(ack.clone(), Protocol::Udp, t0 + Duration::from_millis(100)).unwrap(), Inbound::Absorbed);
    run_until(&mut txs, t0 + Duration::from_secs(6));
    assert!(transmits(&mut txs).is_empty(), "the ACK stopped Timer G");
    assert_eq!(events(&mut txs), vec![Event { id, event: TxEvent::Terminated }], "Timer I ended it");

    // A 2xx ends the server transaction; its ACK (a new branch) belongs to the dialog.
    let invite2 = request(Method::INVITE, &via("z9hG4bKinv2"), 2);
    let id2 = new_id(txs.on_request(invite2.clone(), Protocol::Udp, t0).unwrap());
    txs.send_response(id2, tagged(invite2.response(200)), t0).unwrap();
    assert_eq!(statuses(&transmits(&mut txs)), vec![200], "answered at once: no 100");
    let ack2 = request(Method::ACK, &via("z9hG4bKack2"), 2);
    assert_eq!(txs.on_request(ack2.clone(), Protocol::Udp, t0).unwrap(), Inbound::Ack(ack2));
    assert!(txs.is_empty());
}

#[test]
fn cancel_is_matched_to_its_invite() {
    let t0 = Instant::now();
    let mut txs = Transactions::new(TimerConfig::default());
    let invite = request(Method::INVITE, &via("z9hG4bKc1"), 1);
    let invite_id = new_id(txs.on_request(invite, Protocol::Udp, t0).unwrap());
    let cancel = request(Method::CANCEL, &via("z9hG4bKc1"), 1);
    match txs.on_request(cancel.clone(), Protocol::Udp, t0).unwrap() {
        Inbound::Cancel { id, request, invite } => {
            assert_ne!(id, invite_id, "the CANCEL has its own transaction");
            assert_eq!(invite, Some(invite_id));
            assert_eq!(request, cancel);
        }
        other => panic!("expected a CANCEL, got {other:?}"),
    }
    assert_eq!(txs.on_request(cancel, Protocol::Udp, t0).unwrap(), Inbound::Absorbed);
    let stray = request(Method::CANCEL, &via("z9hG4bKnone"), 1);
    assert!(matches!(txs.on_request(stray, Protocol::Udp, t0).unwrap(), Inbound::Cancel { invite: None, .. }));
}

#[test]
fn rfc2543_requests_match_without_the_magic_cookie() {
    let t0 = Instant::now();
    let mut txs = Transactions::new(TimerConfig::default());
    let invite = request(Method::INVITE, "SIP/2.0/UDP 192.0.2.7:5060", 1);
    let id = new_id(txs.on_request(invite.clone(), Protocol::Udp, t0).unwrap());
    assert_eq!(txs.on_request(invite.clone(), Protocol::Udp, t0).unwrap(), Inbound::Absorbed);
    txs.send_response(id, tagged(invite.response(404)), t0).unwrap();
    let mut ack = request(Method::ACK, "SIP/2.0/UDP 192.0.2.7:5060", 1);
    ack.headers.set(HeaderName::To, "<sip:bob@example.com>;tag=srv");
    assert_eq!(txs.on_request(ack, Protocol::Udp, t0).unwrap(), Inbound::Absorbed);
    let cancel = request(Method::CANCEL, "SIP/2.0/UDP 192.0.2.7:5060", 1);
    assert!(matches!(txs.on_request(cancel, Protocol::Udp, t0).unwrap(), Inbound::Cancel { invite: Some(i), .. } if i == id));
    let other_call = request(Method::INVITE, "SIP/2.0/UDP 192.0.2.7:5060", 2);
    assert!(matches!(txs.on_request(other_call, Protocol::Udp, t0).unwrap(), Inbound::Request { .. }));
}

#[test]
fn client_transactions_get_their_responses_and_cancel_shares_the_branch() {
    let t0 = Instant::now();
    let dest: SocketAddr = DEST.parse().unwrap();
    let mut txs = Transactions::new(TimerConfig::default());
    let branch = Ids::seeded(1).branch();
    assert!(branch.starts_with("z9hG4bK"));
    let invite = request(Method::INVITE, &via(&branch), 1);
    let id = txs.send_request(invite.clone(), dest, Protocol::Udp, t0).unwrap();
    match &transmits(&mut txs)[..] {
        [Transmit::Request { id: i, request, dest: d, transport }] => {
            assert_eq!((*i, request.as_ref(), *d, *transport), (id, &invite, dest, Protocol::Udp));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(txs.on_response(invite.response(180), t0), None);
    assert!(matches!(&events(&mut txs)[..], [Event { id: i, event: TxEvent::Response(r) }] if *i == id && r.status == 180));

    let cancel_id = txs.cancel(id, t0).unwrap();
    let cancel = match &transmits(&mut txs)[..] {
        [Transmit::Request { request, dest: d, .. }] if *d == dest => request.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(cancel.method, Method::CANCEL);
    assert_eq!(cancel.top_via().unwrap().branch(), Some(branch.as_str()));
    assert_eq!(cancel.cseq().unwrap().seq, 1);

    // The 200 for the CANCEL and the 487 for the INVITE each find their own transaction.
    assert_eq!(txs.on_response(cancel.response(200), t0), None);
    assert_eq!(txs.on_response(tagged(invite.response(487)), t0), None);
    let ev = events(&mut txs);
    assert!(ev.iter().any(|e| e.id == cancel_id && matches!(&e.event, TxEvent::Response(r) if r.status == 200)));
    assert!(ev.iter().any(|e| e.id == id && matches!(&e.event, TxEvent::Response(r) if r.status == 487)));
    let acks: Vec<_> = transmits(&mut txs);
    assert!(matches!(&acks[..], [Transmit::Request { request, .. }] if request.method == Method::ACK));

    let stray = request(Method::OPTIONS, &via("z9hG4bKunknown"), 1).response(200);
    assert_eq!(txs.on_response(stray.clone(), t0), Some(stray), "an unmatched response goes back to the caller");
}

#[test]
fn a_cancelled_invite_without_final_response_ends_after_64_t1() {
    let t0 = Instant::now();
    let mut txs = Transactions::new(TimerConfig::default());
    let invite = request(Method::INVITE, &via(&Ids::seeded(2).branch()), 1);
    let id = txs.send_request(invite.clone(), DEST.parse().unwrap(), Protocol::Udp, t0).unwrap();
    txs.on_response(invite.response(180), t0);
    let cancel_at = t0 + Duration::from_secs(60);
    let cancel_id = txs.cancel(id, cancel_at).unwrap();
    assert!(txs.cancel(cancel_id, cancel_at).is_err(), "only an INVITE can be cancelled");
    run_until(&mut txs, cancel_at + Duration::from_secs(31));
    assert_eq!(txs.len(), 2, "both wait for their answers: {:?}", events(&mut txs));
    run_until(&mut txs, cancel_at + Duration::from_secs(33));
    let ended: Vec<TxId> = events(&mut txs)
        .into_iter()
        .filter(|e| matches!(e.event, TxEvent::TimedOut(_)))
        .map(|e| e.id)
        .collect();
    assert_eq!(ended.len(), 2);
    assert!(ended.contains(&id) && ended.contains(&cancel_id));
    assert!(txs.is_empty());
}

#[test]
fn client_timeout_reaches_the_tu_as_408() {
    let t0 = Instant::now();
    let mut txs = Transactions::new(TimerConfig::default());
    let options = request(Method::OPTIONS, &via(&Ids::seeded(2).branch()), 1);
    let id = txs.send_request(options, DEST.parse().unwrap(), Protocol::Udp, t0).unwrap();
    run_until(&mut txs, t0 + Duration::from_secs(40));
    assert_eq!(transmits(&mut txs).len(), 11, "one send and ten Timer E retransmissions");
    let ev = events(&mut txs);
    assert!(matches!(&ev[..], [Event { id: a, event: TxEvent::TimedOut(r) }, Event { id: b, event: TxEvent::Terminated }]
        if *a == id && *b == id && r.status == 408));
    assert!(txs.is_empty());
}

#[test]
fn requests_that_cannot_start_a_client_transaction_are_refused() {
    let t0 = Instant::now();
    let dest: SocketAddr = DEST.parse().unwrap();
    let mut txs = Transactions::new(TimerConfig::default());
    let legacy = request(Method::OPTIONS, "SIP/2.0/UDP 192.0.2.1;branch=1234", 1);
    assert!(matches!(txs.send_request(legacy, dest, Protocol::Udp, t0), Err(TxError::NoMagicCookie(_))));
    let ack = request(Method::ACK, &via(&Ids::seeded(2).branch()), 1);
    assert_eq!(txs.send_request(ack, dest, Protocol::Udp, t0), Err(TxError::AckStartsNoTransaction));
    let options = request(Method::OPTIONS, &via("z9hG4bKdup"), 1);
    txs.send_request(options.clone(), dest, Protocol::Udp, t0).unwrap();
    assert_eq!(txs.send_request(options, dest, Protocol::Udp, t0), Err(TxError::Duplicate));
    let mut no_via = request(Method::OPTIONS, "x", 1);
    no_via.headers.remove_all(&HeaderName::Via);
    assert!(matches!(txs.on_request(no_via, Protocol::Udp, t0), Err(TxError::Header(_))));
}

#[test]
fn tcp_server_transactions_end_with_their_final_response() {
    let t0 = Instant::now();
    let mut txs = Transactions::new(TimerConfig::default());
    let register = request(Method::REGISTER, "SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bKtcp", 1);
    let id = new_id(txs.on_request(register.clone(), Protocol::Tcp, t0).unwrap());
    txs.send_response(id, register.response(200), t0).unwrap();
    assert_eq!(statuses(&transmits(&mut txs)), vec![200]);
    assert!(txs.is_empty());
    assert_eq!(txs.next_timeout(), None);
    assert_eq!(txs.send_response(id, register.response(200), t0), Err(TxError::Unknown(id)));
}

#[test]
fn ten_thousand_registers_pass_through_and_expire() {
    let t0 = Instant::now();
    let mut txs = Transactions::new(TimerConfig::default());
    for n in 0..10_000u32 {
        let at = t0 + Duration::from_micros(u64::from(n) * 20);
        let register = request(Method::REGISTER, &via(&format!("z9hG4bK{n}")), n + 1);
        let id = new_id(txs.on_request(register.clone(), Protocol::Udp, at).unwrap());
        txs.send_response(id, register.response(200), at).unwrap();
        assert!(txs.poll_transmit().is_some());
    }
    assert_eq!(txs.len(), 10_000);
    assert_eq!(txs.next_timeout(), Some(t0 + Duration::from_secs(32)));
    txs.handle_timeout(t0 + Duration::from_secs(32) + Duration::from_millis(200));
    assert!(txs.is_empty());
    assert_eq!(std::iter::from_fn(|| txs.poll_event()).take(20_000).count(), 10_000);
}
