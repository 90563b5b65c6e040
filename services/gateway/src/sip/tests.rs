//! The call layer driven by hand: SIP messages as mediation would send them, PRI events as the
//! trunk reports them, and time moved explicitly.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use holdfast_sip::message::{HeaderName, Message, Method, Request, Response};
use holdfast_sip::transaction::Transmit;
use holdfast_sip::transport::{Protocol, Source};

use super::{Action, Calls, LegId, Outbound, SipConfig};
use holdfast_telephony::reason;
use crate::dahdi::Law;
use crate::pri::PriEvent;
use crate::q931::ie::{Cause, NumberingPlan, PartyNumber, Presentation, TypeOfNumber, PRESENTATION_RESTRICTED};
use crate::q931::{CallEvent, CallId};

const MEDIATION: &str = "127.0.0.1:5070";

fn calls() -> Calls {
    let rtp: HashMap<u8, SocketAddr> = (1..=23).map(|c| (c, SocketAddr::from(([127, 0, 0, 1], 40_000 + u16::from(c))))).collect();
    let mut calls = Calls::new(SipConfig {
        local: "127.0.0.1:5080".parse().unwrap(),
        mediation: MEDIATION.parse().unwrap(),
        law: Law::Mulaw,
        rtp,
    }, holdfast_sip::Ids::seeded(1));
    calls.on_pri(PriEvent::InService(true), Instant::now());
    calls
}

fn source() -> Source {
    Source { addr: MEDIATION.parse().unwrap(), transport: Protocol::Udp, conn: None }
}

fn parse(text: &str) -> Message {
    holdfast_sip::wire::parse(text.replace('\n', "\r\n").as_bytes()).unwrap()
}

const OFFER: &str = "v=0\nc=IN IP4 127.0.0.1\nm=audio 7000 RTP/AVP 8 0\n";

fn invite_from_mediation(uri: &str, body: &str) -> Message {
    parse(&format!(
        "INVITE {uri} SIP/2.0\nVia: SIP/2.0/UDP {MEDIATION};branch=z9hG4bKmed1\nFrom: <sip:+3312345@mediation>;tag=m1\n\
         To: <{uri}>\nCall-ID: med-1\nCSeq: 1 INVITE\nContact: <sip:med@{MEDIATION}>\nMax-Forwards: 70\n\
         Content-Type: application/sdp\nContent-Length: {}\n\n{body}",
        body.replace('\n', "\r\n").len()
    ))
}

/// A request in mediation's call med-1, its To carrying `to_tag` (ours, for the dialog; none
/// when empty).
fn in_dialog(method: &str, to_tag: &str, extra: &str) -> Message {
    let tag = if to_tag.is_empty() { String::new() } else { format!(";tag={to_tag}") };
    parse(&format!(
        "{method} sip:sba-gateway@127.0.0.1:5080 SIP/2.0\nVia: SIP/2.0/UDP {MEDIATION};branch=z9hG4bK{method}2\n\
         From: <sip:+3312345@mediation>;tag=m1\nTo: <sip:2000@127.0.0.1>{tag}\nCall-ID: med-1\nCSeq: 1 {method}\n\
         Max-Forwards: 70\n{extra}Content-Length: 0\n\n"
    ))
}

fn outbound(calls: &mut Calls) -> Vec<Outbound> {
    std::iter::from_fn(|| calls.poll_outbound()).collect()
}

fn actions(calls: &mut Calls) -> Vec<Action> {
    std::iter::from_fn(|| calls.poll_action()).collect()
}

fn responses(out: &[Outbound]) -> Vec<&Response> {
    out.iter()
        .filter_map(|o| match o {
            Outbound::Transaction(Transmit::Response { response, .. }) => Some(response.as_ref()),
            Outbound::Response(response) => Some(response),
            _ => None,
        })
        .collect()
}

fn requests(out: &[Outbound]) -> Vec<&Request> {
    out.iter()
        .filter_map(|o| match o {
            Outbound::Transaction(Transmit::Request { request, .. }) => Some(request.as_ref()),
            Outbound::Request { request, .. } => Some(request),
            _ => None,
        })
        .collect()
}

fn statuses(out: &[Outbound]) -> Vec<u16> {
    responses(out).iter().map(|r| r.status).collect()
}

/// An INVITE from mediation accepted and placed on the span as `call`.
fn placed(calls: &mut Calls, now: Instant) -> (LegId, CallId) {
    calls.on_message(invite_from_mediation("sip:2000@127.0.0.1:5080", OFFER), source(), now);
    let leg = match actions(calls).as_slice() {
        [Action::Place { leg, request }] => {
            assert_eq!(request.called, PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, "2000"));
            let calling = request.calling.as_ref().unwrap();
            assert_eq!((calling.ton, calling.digits.as_str()), (TypeOfNumber::International, "3312345"));
            *leg
        }
        other => panic!("{other:?}"),
    };
    assert!(outbound(calls).is_empty(), "no 100 Trying while the PRI may answer within 200 ms");
    let call = CallId(7);
    calls.on_placed(leg, Ok(call), now);
    calls.on_pri(PriEvent::Call(CallEvent::Proceeding { call, channel: 3 }), now);
    (leg, call)
}

#[test]
fn a_mediation_call_answered_on_the_span_gets_200_with_the_answer_until_acked() {
    let mut calls = calls();
    let now = Instant::now();
    let (_, call) = placed(&mut calls, now);
    calls.on_pri(PriEvent::Call(CallEvent::Alerting { call }), now);
    calls.on_pri(PriEvent::Call(CallEvent::Connected { call }), now);
    let out = outbound(&mut calls);
    let r = responses(&out);
    assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), [180, 200]);
    assert_eq!(r[0].to_header().unwrap().tag(), r[1].to_header().unwrap().tag(), "one To tag for the dialog");
    let tag = r[1].to_header().unwrap().tag().unwrap().to_string();
    let body = String::from_utf8(r[1].body.clone()).unwrap();
    assert!(body.contains("m=audio 40003 RTP/AVP 0\r\n"), "B-channel 3's port, µ-law as the span: {body}");
    assert_eq!(
        actions(&mut calls),
        [Action::MediaStart { channel: 3, remote: "127.0.0.1:7000".parse().unwrap(), payload_type: 0 }]
    );
    // No ACK yet: the 200 goes again after T1, then 2*T1.
    let t1 = calls.next_timeout().unwrap();
    assert_eq!(t1 - now, Duration::from_millis(500));
    calls.handle_timeout(t1);
    assert_eq!(statuses(&outbound(&mut calls)), [200]);
    assert_eq!(calls.next_timeout().unwrap() - t1, Duration::from_secs(1));
    // An ACK with the Call-ID but not the dialog's tag is not ours.
    calls.on_message(in_dialog("ACK", "guess", ""), source(), t1);
    assert!(calls.next_timeout().is_some(), "an ACK of another dialog stopped the retransmissions");
    calls.on_message(in_dialog("ACK", &tag, ""), source(), t1);
    assert_eq!(calls.next_timeout(), None, "the ACK stops the retransmissions");
    // Hang-ups that are not mediation's: a stranger at 127.0.0.2 with the whole dialog id, and
    // mediation's address with the Call-ID but a guessed tag. Neither ends the call.
    let stranger = Source { addr: "127.0.0.2:5070".parse().unwrap(), ..source() };
    calls.on_message(in_dialog("BYE", &tag, ""), stranger, t1);
    assert_eq!(statuses(&outbound(&mut calls)), [403]);
    assert_eq!(calls.strangers(), 1);
    calls.on_message(in_dialog("BYE", "guess", ""), source(), t1);
    assert_eq!(statuses(&outbound(&mut calls)), [481]);
    assert!(actions(&mut calls).is_empty() && calls.active_calls() == 1, "the call ended");
    // Mediation hangs up with a cause: DISCONNECT with it, media stops.
    let mut bye = in_dialog("BYE", &tag, "Reason: Q.850;cause=17\n");
    bye.headers_mut().set(HeaderName::Via, format!("SIP/2.0/UDP {MEDIATION};branch=z9hG4bKbye3"));
    calls.on_message(bye, source(), t1);
    assert_eq!(statuses(&outbound(&mut calls)), [200]);
    assert_eq!(actions(&mut calls), [Action::Hangup { call, cause: 17 }, Action::MediaStop { channel: 3 }]);
    assert_eq!(calls.active_calls(), 0);
}

#[test]
fn without_an_ack_the_call_ends_after_64_t1() {
    let mut calls = calls();
    let mut now = Instant::now();
    let (_, call) = placed(&mut calls, now);
    calls.on_pri(PriEvent::Call(CallEvent::Connected { call }), now);
    outbound(&mut calls);
    actions(&mut calls);
    for _ in 0..100 {
        let Some(at) = calls.next_timeout() else { break };
        now = at;
        calls.handle_timeout(now);
        if calls.active_calls() == 0 {
            break;
        }
    }
    let out = outbound(&mut calls);
    let bye = requests(&out).into_iter().find(|r| r.method == Method::BYE).expect("a BYE");
    assert_eq!(reason::q850_cause(&bye.headers), Some(102));
    assert_eq!(actions(&mut calls), [Action::Hangup { call, cause: 102 }, Action::MediaStop { channel: 3 }]);
}

#[test]
fn a_span_refusal_or_busy_far_end_answers_with_the_mapped_status_and_reason() {
    let mut calls = calls();
    let now = Instant::now();
    let (_, call) = placed(&mut calls, now);
    let busy = Cause { location: 2, value: 17, diagnostic: Vec::new() };
    calls.on_pri(PriEvent::Call(CallEvent::Cleared { call, cause: busy }), now);
    let out = outbound(&mut calls);
    assert_eq!(statuses(&out), [486]);
    assert_eq!(reason::q850_cause(&responses(&out)[0].headers), Some(17));
    assert!(actions(&mut calls).is_empty(), "the span already cleared the call");

    let mut second = invite_from_mediation("sip:2000@127.0.0.1:5080", OFFER);
    second.headers_mut().set(HeaderName::CallId, "med-2");
    second.headers_mut().set(HeaderName::Via, format!("SIP/2.0/UDP {MEDIATION};branch=z9hG4bKmed2"));
    calls.on_message(second, source(), now);
    let [Action::Place { leg, .. }] = actions(&mut calls)[..] else { panic!() };
    outbound(&mut calls);
    calls.on_placed(leg, Err(34), now);
    let out = outbound(&mut calls);
    assert_eq!(statuses(&out), [503]);
    assert_eq!(reason::q850_cause(&responses(&out)[0].headers), Some(34));
}

#[test]
fn cancel_from_mediation_hangs_up_even_before_the_setup_is_placed() {
    let mut calls = calls();
    let now = Instant::now();
    let (_, call) = placed(&mut calls, now);
    let cancel = parse(&format!(
        "CANCEL sip:2000@127.0.0.1:5080 SIP/2.0\nVia: SIP/2.0/UDP {MEDIATION};branch=z9hG4bKmed1\n\
         From: <sip:+3312345@mediation>;tag=m1\nTo: <sip:2000@127.0.0.1:5080>\nCall-ID: med-1\nCSeq: 1 CANCEL\n\
         Max-Forwards: 70\nContent-Length: 0\n\n"
    ));
    calls.on_message(cancel.clone(), source(), now);
    assert_eq!(statuses(&outbound(&mut calls)), [200, 487]);
    assert_eq!(actions(&mut calls), [Action::Hangup { call, cause: 16 }]);

    // The same before the trunk has said which call the SETUP is.
    let mut calls = self::calls();
    let invite = invite_from_mediation("sip:2000@127.0.0.1:5080", OFFER);
    calls.on_message(invite, source(), now);
    let [Action::Place { leg, .. }] = actions(&mut calls)[..] else { panic!() };
    calls.on_message(cancel, source(), now);
    assert_eq!(statuses(&outbound(&mut calls)), [200, 487]);
    calls.on_placed(leg, Ok(CallId(9)), now);
    assert_eq!(actions(&mut calls), [Action::Hangup { call: CallId(9), cause: 16 }]);
    assert!(outbound(&mut calls).is_empty(), "no second final response");
}

#[test]
fn invites_the_gateway_cannot_serve_are_refused() {
    let mut calls = calls();
    let now = Instant::now();
    let cases = [
        (invite_from_mediation("sip:2000@127.0.0.1", ""), 488),
        (invite_from_mediation("sip:2000@127.0.0.1", "v=0\nc=IN IP4 1.2.3.4\nm=audio 9 RTP/AVP 18\n"), 488),
        (invite_from_mediation("sip:alice@127.0.0.1", OFFER), 484),
    ];
    for (i, (mut msg, status)) in cases.into_iter().enumerate() {
        // Distinct transactions and calls.
        msg.headers_mut().set(HeaderName::CallId, format!("bad-{i}"));
        msg.headers_mut().set(HeaderName::Via, format!("SIP/2.0/UDP {MEDIATION};branch=z9hG4bKbad{i}"));
        calls.on_message(msg, source(), now);
        assert_eq!(statuses(&outbound(&mut calls)), [status]);
    }
    assert!(actions(&mut calls).is_empty());
    calls.on_message(in_dialog("OPTIONS", "", ""), source(), now);
    assert_eq!(statuses(&outbound(&mut calls)), [200]);
    calls.on_pri(PriEvent::InService(false), now);
    let mut options = in_dialog("OPTIONS", "", "");
    options.headers_mut().set(HeaderName::Via, format!("SIP/2.0/UDP {MEDIATION};branch=z9hG4bKopt3"));
    calls.on_message(options, source(), now);
    assert_eq!(statuses(&outbound(&mut calls)), [503]);
    let mut invite = invite_from_mediation("sip:2000@127.0.0.1", OFFER);
    invite.headers_mut().set(HeaderName::Via, format!("SIP/2.0/UDP {MEDIATION};branch=z9hG4bKinv3"));
    calls.on_message(invite, source(), now);
    assert_eq!(statuses(&outbound(&mut calls)), [503]);
}

/// A PSTN call offered to mediation; returns the INVITE.
fn offered(calls: &mut Calls, call: CallId, now: Instant) -> Request {
    let number = |d: &str| PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, d);
    let incoming = CallEvent::Incoming { call, channel: 23, called: Some(number("2000")), calling: Some(number("555")) };
    calls.on_pri(PriEvent::Call(incoming), now);
    let out = outbound(calls);
    let [Outbound::Transaction(Transmit::Request { request, dest, .. })] = &out[..] else { panic!("{out:?}") };
    assert_eq!(dest.to_string(), MEDIATION);
    assert_eq!(request.uri.to_string(), "sip:2000@127.0.0.1:5070");
    assert_eq!(request.from_header().unwrap().uri.to_string(), "sip:555@127.0.0.1:5080");
    assert!(String::from_utf8_lossy(&request.body).contains("m=audio 40023 RTP/AVP 0 8"));
    Request::clone(request)
}

fn answer(invite: &Request, status: u16, body: &str) -> Message {
    let mut r = invite.response(status);
    r.headers.add(HeaderName::Contact, "<sip:med@127.0.0.1:5071>");
    r.body = body.replace('\n', "\r\n").into_bytes();
    Message::Response(r)
}

#[test]
fn a_pstn_call_answered_by_mediation_is_connected_and_acked() {
    let mut calls = calls();
    let now = Instant::now();
    let call = CallId(3);
    let invite = offered(&mut calls, call, now);
    calls.on_message(answer(&invite, 180, ""), source(), now);
    assert_eq!(actions(&mut calls), [Action::Alert(call)]);
    calls.on_message(answer(&invite, 200, "v=0\nc=IN IP4 127.0.0.9\nm=audio 8000 RTP/AVP 8\n"), source(), now);
    assert_eq!(
        actions(&mut calls),
        [Action::Answer(call), Action::MediaStart { channel: 23, remote: "127.0.0.9:8000".parse().unwrap(), payload_type: 8 }]
    );
    let out = outbound(&mut calls);
    let ack = requests(&out)[0];
    assert_eq!((ack.method.clone(), ack.uri.to_string()), (Method::ACK, "sip:med@127.0.0.1:5071".to_owned()));
    // The 2xx again (our ACK was lost): the same ACK again.
    let first_ack = ack.clone();
    calls.on_message(answer(&invite, 200, ""), source(), now);
    assert_eq!(requests(&outbound(&mut calls)), [&first_ack]);
    // The PSTN hangs up: BYE with its cause.
    let cleared = CallEvent::Cleared { call, cause: Cause::new(16) };
    calls.on_pri(PriEvent::Call(cleared), now);
    let out = outbound(&mut calls);
    let bye = requests(&out)[0];
    assert_eq!((bye.method.clone(), reason::q850_cause(&bye.headers)), (Method::BYE, Some(16)));
    assert_eq!(actions(&mut calls), [Action::MediaStop { channel: 23 }]);
}

#[test]
fn a_refusal_from_mediation_clears_with_its_reason_or_the_mapped_cause() {
    let mut calls = calls();
    let now = Instant::now();
    let invite = offered(&mut calls, CallId(1), now);
    calls.on_message(answer(&invite, 486, ""), source(), now);
    assert_eq!(actions(&mut calls), [Action::Hangup { call: CallId(1), cause: 17 }]);
    let out = outbound(&mut calls);
    assert_eq!(requests(&out).iter().map(|r| r.method.clone()).collect::<Vec<_>>(), [Method::ACK]);
    let invite = offered(&mut calls, CallId(2), now);
    let Message::Response(mut r) = answer(&invite, 404, "") else { unreachable!() };
    r.headers.add(HeaderName::Reason, "Q.850;cause=3");
    calls.on_message(Message::Response(r), source(), now);
    assert_eq!(actions(&mut calls), [Action::Hangup { call: CallId(2), cause: 3 }]);
}

#[test]
fn a_pstn_call_abandoned_while_ringing_is_cancelled_and_a_crossing_200_gets_a_bye() {
    let mut calls = calls();
    let now = Instant::now();
    let call = CallId(4);
    let invite = offered(&mut calls, call, now);
    calls.on_message(answer(&invite, 180, ""), source(), now);
    actions(&mut calls);
    calls.on_pri(PriEvent::Call(CallEvent::Cleared { call, cause: Cause::new(16) }), now);
    let out = outbound(&mut calls);
    assert_eq!(requests(&out).iter().map(|r| r.method.clone()).collect::<Vec<_>>(), [Method::CANCEL]);
    calls.on_message(answer(&invite, 200, "v=0\nc=IN IP4 127.0.0.9\nm=audio 8000 RTP/AVP 0\n"), source(), now);
    let out = outbound(&mut calls);
    let methods: Vec<Method> = requests(&out).iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, [Method::ACK, Method::BYE]);
    assert!(actions(&mut calls).is_empty(), "the span call is gone: no CONNECT, no media");
    assert_eq!(calls.active_calls(), 0);
}

#[test]
fn an_invite_from_anyone_but_mediation_is_refused_and_counted() {
    let mut calls = calls();
    let now = Instant::now();
    let stranger = Source { addr: "127.0.0.2:5070".parse().unwrap(), ..source() };
    calls.on_message(invite_from_mediation("sip:2000@127.0.0.1:5080", OFFER), stranger, now);
    assert_eq!(statuses(&outbound(&mut calls)), [403]);
    assert!(actions(&mut calls).is_empty(), "a stranger placed a PSTN call");
    assert_eq!(calls.strangers(), 1);
    // Mediation still places its call.
    placed(&mut calls, now);
}

#[test]
fn a_withheld_number_crosses_as_privacy_id_in_both_directions() {
    let mut calls = calls();
    let now = Instant::now();
    let mut calling = PartyNumber::new(TypeOfNumber::International, NumberingPlan::Isdn, "3312345");
    calling.presentation = Some(Presentation { presentation: PRESENTATION_RESTRICTED, screening: 3 });
    let called = PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, "2000");
    let incoming = CallEvent::Incoming { call: CallId(5), channel: 2, called: Some(called), calling: Some(calling) };
    calls.on_pri(PriEvent::Call(incoming), now);
    let out = outbound(&mut calls);
    let invite = requests(&out)[0];
    assert_eq!(invite.headers.get(&HeaderName::From).unwrap().split(';').next(), Some("\"Anonymous\" <sip:anonymous@anonymous.invalid>"));
    assert_eq!(invite.headers.get(&HeaderName::parse("Privacy")), Some("id"));
    assert_eq!(invite.headers.get(&HeaderName::parse("P-Asserted-Identity")), Some("<sip:+3312345@127.0.0.1:5080>"));

    // Mediation's INVITE asking for privacy: the SETUP's calling number is presentation restricted.
    let Message::Request(mut request) = invite_from_mediation("sip:2000@127.0.0.1:5080", OFFER) else { unreachable!() };
    request.headers.add(HeaderName::parse("Privacy"), "id;critical");
    calls.on_message(Message::Request(request), source(), now);
    let [Action::Place { request, .. }] = &actions(&mut calls)[..] else { panic!() };
    let calling = request.calling.as_ref().unwrap();
    assert_eq!(calling.digits, "3312345");
    assert_eq!(calling.presentation.map(|p| p.presentation), Some(PRESENTATION_RESTRICTED));
}

#[test]
fn pstn_digits_that_are_not_digits_never_reach_a_header() {
    let mut calls = calls();
    let now = Instant::now();
    let number = |d: &str| PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, d);
    // A calling number with CR/LF (any IA5 byte can arrive in the IE): the call goes on, anonymous.
    let incoming = CallEvent::Incoming { call: CallId(1), channel: 1, called: Some(number("2000")), calling: Some(number("555\r\nX-Evil: 1")) };
    calls.on_pri(PriEvent::Call(incoming), now);
    let out = outbound(&mut calls);
    let invite = requests(&out)[0];
    assert!(invite.headers.get(&HeaderName::From).unwrap().starts_with("\"Anonymous\""));
    assert_eq!(invite.headers.get(&HeaderName::parse("P-Asserted-Identity")), None);
    assert!(invite.to_bytes().is_ok());
    // A called number that is not digits: refused on the span, nothing sent to mediation.
    let incoming = CallEvent::Incoming { call: CallId(2), channel: 2, called: Some(number("20<sip:x>")), calling: None };
    calls.on_pri(PriEvent::Call(incoming), now);
    assert!(outbound(&mut calls).is_empty());
    assert_eq!(actions(&mut calls), [Action::Hangup { call: CallId(2), cause: 28 }]);
}
