//! The four RFC 3261 §17 machines, driven with simulated time.
use holdfast_sip::message::{HeaderName, Method, Request, Response, Uri};
use holdfast_sip::transaction::{
    ClientInvite, ClientInviteState, ClientNonInvite, ClientNonInviteState, ServerInvite, ServerInviteState,
    ServerNonInvite, ServerNonInviteState, TimerConfig, TxEvent,
};
use holdfast_sip::transport::Protocol;
use std::time::{Duration, Instant};

fn request(method: Method, branch: &str) -> Request {
    let mut r = Request::new(method.clone(), Uri::parse("sip:bob@example.com").unwrap());
    r.headers.add(HeaderName::Via, format!("SIP/2.0/UDP 192.0.2.1:5060;branch={branch}"));
    r.headers.add(HeaderName::Route, "<sip:proxy.example.com;lr>");
    r.headers.add(HeaderName::MaxForwards, "70");
    r.headers.add(HeaderName::From, "<sip:alice@example.com>;tag=a1");
    r.headers.add(HeaderName::To, "<sip:bob@example.com>");
    r.headers.add(HeaderName::CallId, "call-1@192.0.2.1");
    r.headers.add(HeaderName::CSeq, format!("7 {method}"));
    r
}

fn response(req: &Request, status: u16) -> Response {
    let mut resp = req.response(status);
    if status > 100 {
        resp.headers.set(HeaderName::To, "<sip:bob@example.com>;tag=b2");
    }
    resp
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Fires every timer up to `until`, recording the instants at which something was transmitted.
macro_rules! run_until {
    ($m:expr, $start:expr, $until:expr) => {{
        let mut sent = Vec::new();
        for _ in 0..1000 {
            match $m.next_timeout() {
                Some(at) if at <= $until => {
                    $m.handle_timeout(at);
                    while $m.poll_transmit().is_some() {
                        sent.push(at - $start);
                    }
                }
                _ => break,
            }
        }
        sent
    }};
}

fn events<T>(poll: impl FnMut() -> Option<T>) -> Vec<T> {
    std::iter::from_fn(poll).take(100).collect()
}

#[test]
fn client_non_invite_timer_e_doubles_to_t2_then_f_gives_408() {
    let t0 = Instant::now();
    let mut tx = ClientNonInvite::new(request(Method::REGISTER, "z9hG4bKe"), Protocol::Udp, TimerConfig::default(), t0);
    assert_eq!(tx.poll_transmit().map(|r| r.method.clone()), Some(Method::REGISTER));
    let sent = run_until!(tx, t0, t0 + Duration::from_secs(40));
    let expected: Vec<Duration> =
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500].into_iter().map(ms).collect();
    assert_eq!(sent, expected);
    let ev = events(|| tx.poll_event());
    assert!(matches!(&ev[..], [TxEvent::TimedOut(r), TxEvent::Terminated] if r.status == 408));
    assert_eq!(tx.state(), ClientNonInviteState::Terminated);
    assert_eq!(tx.next_timeout(), None);
}

#[test]
fn client_non_invite_proceeding_retransmits_every_t2() {
    let t0 = Instant::now();
    let req = request(Method::OPTIONS, "z9hG4bKp");
    let mut tx = ClientNonInvite::new(req.clone(), Protocol::Udp, TimerConfig::default(), t0);
    tx.poll_transmit();
    tx.on_response(response(&req, 100), t0 + ms(100));
    assert_eq!(tx.state(), ClientNonInviteState::Proceeding);
    assert!(matches!(tx.poll_event(), Some(TxEvent::Response(r)) if r.status == 100));
    // E first fires at T1 (armed in Trying), then every T2.
    let sent = run_until!(tx, t0, t0 + ms(13_000));
    assert_eq!(sent, vec![ms(500), ms(4500), ms(8500), ms(12500)]);
}

#[test]
fn client_non_invite_final_waits_t4_absorbing_retransmissions() {
    let t0 = Instant::now();
    let req = request(Method::REGISTER, "z9hG4bKk");
    let mut tx = ClientNonInvite::new(req.clone(), Protocol::Udp, TimerConfig::default(), t0);
    tx.poll_transmit();
    tx.on_response(response(&req, 200), t0 + ms(50));
    assert_eq!(tx.state(), ClientNonInviteState::Completed);
    assert!(matches!(tx.poll_event(), Some(TxEvent::Response(r)) if r.status == 200));
    tx.on_response(response(&req, 200), t0 + ms(60));
    assert_eq!(tx.poll_event(), None, "a retransmitted final reaches the TU once");
    assert_eq!(tx.next_timeout(), Some(t0 + ms(50) + Duration::from_secs(5)), "Timer K = T4");
    assert!(run_until!(tx, t0, t0 + Duration::from_secs(10)).is_empty());
    assert_eq!(events(|| tx.poll_event()), vec![TxEvent::Terminated]);
}

#[test]
fn client_non_invite_over_tcp_never_retransmits_and_k_is_zero() {
    let t0 = Instant::now();
    let req = request(Method::REGISTER, "z9hG4bKt");
    let mut tx = ClientNonInvite::new(req.clone(), Protocol::Tcp, TimerConfig::default(), t0);
    tx.poll_transmit();
    assert_eq!(tx.next_timeout(), Some(t0 + Duration::from_secs(32)), "only Timer F");
    tx.on_response(response(&req, 401), t0 + ms(10));
    assert_eq!(tx.state(), ClientNonInviteState::Terminated);
    assert_eq!(tx.next_timeout(), None);
    let ev = events(|| tx.poll_event());
    assert!(matches!(&ev[..], [TxEvent::Response(r), TxEvent::Terminated] if r.status == 401));
}

#[test]
fn client_invite_timer_a_doubles_without_cap_until_b() {
    let t0 = Instant::now();
    let mut tx =
        ClientInvite::new(request(Method::INVITE, "z9hG4bKa"), Protocol::Udp, TimerConfig::default(), t0).unwrap();
    tx.poll_transmit();
    let sent = run_until!(tx, t0, t0 + Duration::from_secs(40));
    assert_eq!(sent, [500, 1500, 3500, 7500, 15500, 31500].into_iter().map(ms).collect::<Vec<_>>());
    let ev = events(|| tx.poll_event());
    assert!(matches!(&ev[..], [TxEvent::TimedOut(r), TxEvent::Terminated] if r.status == 408));
}

#[test]
fn client_invite_acks_a_non_2xx_itself() {
    let t0 = Instant::now();
    let invite = request(Method::INVITE, "z9hG4bKack");
    let mut tx = ClientInvite::new(invite.clone(), Protocol::Udp, TimerConfig::default(), t0).unwrap();
    tx.poll_transmit();
    tx.on_response(response(&invite, 180), t0 + ms(100));
    assert_eq!(tx.state(), ClientInviteState::Proceeding);
    assert!(run_until!(tx, t0, t0 + ms(5000)).is_empty(), "no retransmission once a 1xx came");
    tx.on_response(response(&invite, 486), t0 + ms(5000));
    assert_eq!(tx.state(), ClientInviteState::Completed);
    let ack = tx.poll_transmit().expect("ACK");
    assert_eq!(ack.method, Method::ACK);
    assert_eq!(ack.uri, invite.uri);
    assert_eq!(ack.headers.get_all(&HeaderName::Via).collect::<Vec<_>>(), vec![
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKack"
    ]);
    assert_eq!(ack.headers.get(&HeaderName::To), Some("<sip:bob@example.com>;tag=b2"));
    assert_eq!(ack.headers.get(&HeaderName::From), invite.headers.get(&HeaderName::From));
    assert_eq!(ack.headers.get(&HeaderName::CallId), invite.headers.get(&HeaderName::CallId));
    assert_eq!(ack.headers.get(&HeaderName::Route), Some("<sip:proxy.example.com;lr>"));
    assert_eq!(ack.cseq().unwrap().seq, 7);
    assert_eq!(ack.cseq().unwrap().method, Method::ACK);
    let ev = events(|| tx.poll_event());
    assert!(matches!(&ev[..], [TxEvent::Response(r1), TxEvent::Response(r2)] if r1.status == 180 && r2.status == 486));

    // A retransmitted 486 means the ACK was lost: resend it, tell the TU nothing.
    tx.on_response(response(&invite, 486), t0 + ms(6000));
    assert_eq!(tx.poll_transmit(), Some(ack));
    assert_eq!(tx.poll_event(), None);
    assert_eq!(tx.next_timeout(), Some(t0 + ms(5000) + Duration::from_secs(32)), "Timer D");
    run_until!(tx, t0, t0 + Duration::from_secs(40));
    assert_eq!(events(|| tx.poll_event()), vec![TxEvent::Terminated]);
}

#[test]
fn client_invite_passes_2xx_to_tu_and_ends() {
    let t0 = Instant::now();
    let invite = request(Method::INVITE, "z9hG4bK2xx");
    let mut tx = ClientInvite::new(invite.clone(), Protocol::Udp, TimerConfig::default(), t0).unwrap();
    tx.poll_transmit();
    tx.on_response(response(&invite, 200), t0 + ms(300));
    assert_eq!(tx.state(), ClientInviteState::Terminated);
    assert_eq!(tx.poll_transmit(), None, "the TU ACKs a 2xx, not the transaction");
    let ev = events(|| tx.poll_event());
    assert!(matches!(&ev[..], [TxEvent::Response(r), TxEvent::Terminated] if r.status == 200));
    assert_eq!(tx.next_timeout(), None);
}

#[test]
fn client_invite_over_tcp_has_no_timer_a_and_zero_d() {
    let t0 = Instant::now();
    let invite = request(Method::INVITE, "z9hG4bKtcp");
    let mut tx = ClientInvite::new(invite.clone(), Protocol::Tcp, TimerConfig::default(), t0).unwrap();
    tx.poll_transmit();
    assert_eq!(tx.next_timeout(), Some(t0 + Duration::from_secs(32)), "only Timer B");
    tx.on_response(response(&invite, 603), t0 + ms(10));
    assert_eq!(tx.poll_transmit().map(|r| r.method.clone()), Some(Method::ACK));
    assert_eq!(tx.state(), ClientInviteState::Terminated);
}

#[test]
fn client_invite_without_call_id_is_refused() {
    let mut invite = request(Method::INVITE, "z9hG4bKbad");
    invite.headers.remove_all(&HeaderName::CallId);
    assert!(ClientInvite::new(invite, Protocol::Udp, TimerConfig::default(), Instant::now()).is_err());
}

#[test]
fn configured_t1_scales_the_schedule() {
    let t0 = Instant::now();
    let config = TimerConfig::new(ms(100), ms(400), ms(1000));
    let mut tx = ClientNonInvite::new(request(Method::OPTIONS, "z9hG4bKcfg"), Protocol::Udp, config, t0);
    tx.poll_transmit();
    let sent = run_until!(tx, t0, t0 + ms(10_000));
    assert_eq!(sent[..4], [ms(100), ms(300), ms(700), ms(1100)]);
    assert!(matches!(tx.poll_event(), Some(TxEvent::TimedOut(_))));
    assert!(sent.iter().all(|&t| t < ms(6400)), "Timer F = 64*T1");
}

#[test]
fn server_invite_sends_100_after_200_ms_and_absorbs_retransmissions() {
    let t0 = Instant::now();
    let invite = request(Method::INVITE, "z9hG4bKsi");
    let mut tx = ServerInvite::new(&invite, Protocol::Udp, TimerConfig::default(), t0);
    assert_eq!(tx.poll_transmit(), None, "the TU has 200 ms to answer first");
    assert_eq!(tx.next_timeout(), Some(t0 + ms(200)));
    tx.handle_timeout(t0 + ms(200));
    let trying = tx.poll_transmit().expect("100 Trying");
    assert_eq!(trying.status, 100);
    assert_eq!(trying.headers.get(&HeaderName::Via), invite.headers.get(&HeaderName::Via));
    tx.on_request(&invite, t0 + ms(500));
    assert_eq!(tx.poll_transmit().map(|r| r.status), Some(100));
    tx.send_response(response(&invite, 180), t0 + ms(600)).unwrap();
    assert_eq!(tx.poll_transmit().map(|r| r.status), Some(180));
    tx.on_request(&invite, t0 + ms(1500));
    assert_eq!(tx.poll_transmit().map(|r| r.status), Some(180), "the latest provisional");
    assert_eq!(tx.next_timeout(), None, "no timer while proceeding");
}

#[test]
fn server_invite_answered_within_200_ms_sends_no_100() {
    let t0 = Instant::now();
    let invite = request(Method::INVITE, "z9hG4bKquick");
    let mut tx = ServerInvite::new(&invite, Protocol::Udp, TimerConfig::default(), t0);
    tx.send_response(response(&invite, 180), t0 + ms(50)).unwrap();
    assert_eq!(tx.poll_transmit().map(|r| r.status), Some(180));
    assert_eq!(tx.next_timeout(), None, "the 180 stopped the 100's timer");
    assert!(run_until!(tx, t0, t0 + Duration::from_secs(1)).is_empty(), "no 100 after the 180");
    // A retransmission still gets the latest provisional at once.
    tx.on_request(&invite, t0 + ms(500));
    assert_eq!(tx.poll_transmit().map(|r| r.status), Some(180));
    assert_eq!(tx.poll_transmit(), None);
}

#[test]
fn server_invite_non_2xx_retransmits_with_g_until_h() {
    let t0 = Instant::now();
    let invite = request(Method::INVITE, "z9hG4bKg");
    let mut tx = ServerInvite::new(&invite, Protocol::Udp, TimerConfig::default(), t0);
    tx.poll_transmit();
    tx.send_response(response(&invite, 486), t0).unwrap();
    assert_eq!(tx.state(), ServerInviteState::Completed);
    assert_eq!(tx.poll_transmit().map(|r| r.status), Some(486));
    let sent = run_until!(tx, t0, t0 + Duration::from_secs(40));
    // G: T1, 2T1, 4T1, then capped at T2; H at 64*T1 = 32 s.
    let expected: Vec<Duration> =
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500].into_iter().map(ms).collect();
    assert_eq!(sent, expected);
    assert_eq!(events(|| tx.poll_event()), vec![TxEvent::AckTimedOut, TxEvent::Terminated]);
}

#[test]
fn server_invite_ack_confirms_and_i_ends_it() {
    let t0 = Instant::now();
    let invite = request(Method::INVITE, "z9hG4bKi");
    let mut tx = ServerInvite::new(&invite, Protocol::Udp, TimerConfig::default(), t0);
    tx.poll_transmit();
    let final_response = response(&invite, 404);
    tx.send_response(final_response.clone(), t0).unwrap();
    tx.poll_transmit();
    tx.on_request(&invite, t0 + ms(200));
    assert_eq!(tx.poll_transmit().as_deref(), Some(&final_response), "retransmitted INVITE gets the final again");
    let mut ack = request(Method::ACK, "z9hG4bKi");
    ack.headers.set(HeaderName::To, "<sip:bob@example.com>;tag=b2");
    tx.on_request(&ack, t0 + ms(300));
    assert_eq!(tx.state(), ServerInviteState::Confirmed);
    tx.on_request(&ack, t0 + ms(400));
    assert_eq!(tx.next_timeout(), Some(t0 + ms(300) + Duration::from_secs(5)), "Timer I = T4");
    assert!(run_until!(tx, t0, t0 + Duration::from_secs(10)).is_empty(), "G stopped by the ACK");
    assert_eq!(events(|| tx.poll_event()), vec![TxEvent::Terminated]);
    assert!(tx.send_response(response(&invite, 500), t0 + Duration::from_secs(11)).is_err());
}

#[test]
fn server_invite_2xx_ends_the_transaction() {
    let t0 = Instant::now();
    let invite = request(Method::INVITE, "z9hG4bK200");
    let mut tx = ServerInvite::new(&invite, Protocol::Udp, TimerConfig::default(), t0);
    tx.send_response(response(&invite, 200), t0).unwrap();
    assert_eq!(tx.poll_transmit().map(|r| r.status), Some(200));
    assert_eq!(tx.state(), ServerInviteState::Terminated);
    assert_eq!(events(|| tx.poll_event()), vec![TxEvent::Terminated]);
}

#[test]
fn server_invite_over_tcp_has_no_g_and_zero_i() {
    let t0 = Instant::now();
    let invite = request(Method::INVITE, "z9hG4bKstcp");
    let mut tx = ServerInvite::new(&invite, Protocol::Tcp, TimerConfig::default(), t0);
    tx.poll_transmit();
    tx.send_response(response(&invite, 486), t0).unwrap();
    tx.poll_transmit();
    assert_eq!(tx.next_timeout(), Some(t0 + Duration::from_secs(32)), "only Timer H");
    tx.on_request(&request(Method::ACK, "z9hG4bKstcp"), t0 + ms(10));
    assert_eq!(tx.state(), ServerInviteState::Terminated);
}

#[test]
fn server_non_invite_absorbs_and_answers_retransmissions() {
    let t0 = Instant::now();
    let req = request(Method::REGISTER, "z9hG4bKsn");
    let mut tx = ServerNonInvite::new(Protocol::Udp, TimerConfig::default());
    tx.on_request();
    assert_eq!(tx.poll_transmit(), None, "nothing to resend before the TU answers");
    tx.send_response(response(&req, 100), t0).unwrap();
    assert_eq!(tx.state(), ServerNonInviteState::Proceeding);
    tx.poll_transmit();
    tx.on_request();
    assert_eq!(tx.poll_transmit().map(|r| r.status), Some(100));
    tx.send_response(response(&req, 200), t0 + ms(10)).unwrap();
    assert_eq!(tx.poll_transmit().map(|r| r.status), Some(200));
    tx.on_request();
    assert_eq!(tx.poll_transmit().map(|r| r.status), Some(200));
    assert!(tx.send_response(response(&req, 500), t0 + ms(20)).is_err(), "one final response only");
    assert_eq!(tx.next_timeout(), Some(t0 + ms(10) + Duration::from_secs(32)), "Timer J = 64*T1");
    assert!(run_until!(tx, t0, t0 + Duration::from_secs(40)).is_empty());
    assert_eq!(events(|| tx.poll_event()), vec![TxEvent::Terminated]);
}

#[test]
fn server_non_invite_over_tcp_ends_with_its_final_response() {
    let req = request(Method::REGISTER, "z9hG4bKsntcp");
    let mut tx = ServerNonInvite::new(Protocol::Tcp, TimerConfig::default());
    tx.send_response(response(&req, 200), Instant::now()).unwrap();
    assert_eq!(tx.poll_transmit().map(|r| r.status), Some(200));
    assert_eq!(tx.state(), ServerNonInviteState::Terminated);
    assert_eq!(tx.next_timeout(), None);
}

#[test]
fn transport_errors_end_transactions() {
    let t0 = Instant::now();
    let mut tx = ClientNonInvite::new(request(Method::BYE, "z9hG4bKte"), Protocol::Tcp, TimerConfig::default(), t0);
    tx.on_transport_error();
    assert_eq!(events(|| tx.poll_event()), vec![TxEvent::TransportError, TxEvent::Terminated]);
    let invite = request(Method::INVITE, "z9hG4bKte2");
    let mut tx = ServerInvite::new(&invite, Protocol::Udp, TimerConfig::default(), t0);
    tx.on_transport_error();
    assert_eq!(tx.state(), ServerInviteState::Terminated);
    assert_eq!(events(|| tx.poll_event()), vec![TxEvent::TransportError, TxEvent::Terminated]);
}

#[test]
fn zero_timer_values_cannot_make_timers_spin() {
    let t0 = Instant::now();
    let config = TimerConfig::new(Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut tx = ClientNonInvite::new(request(Method::OPTIONS, "z9hG4bKzero"), Protocol::Udp, config, t0);
    tx.poll_transmit();
    let sent = run_until!(tx, t0, t0 + Duration::from_secs(1));
    assert_eq!(sent.len(), 63, "every millisecond until Timer F at 64 ms");
    assert!(matches!(tx.poll_event(), Some(TxEvent::TimedOut(_))));
    let req = request(Method::REGISTER, "z9hG4bKzero2");
    let mut tx = ClientNonInvite::new(req.clone(), Protocol::Udp, config, t0);
    tx.on_response(response(&req, 200), t0);
    assert_eq!(tx.state(), ClientNonInviteState::Terminated, "a zero T4 is a zero Timer K");
}
