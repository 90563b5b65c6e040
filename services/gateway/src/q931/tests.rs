//! Call control driven message by message, one stack against hand-built messages.

use std::time::{Duration, Instant};

use super::ie::{BearerCapability, Cause, ChannelId, ChannelSelection, Ie, Layer1, NumberingPlan, PartyNumber, RestartClass, TypeOfNumber};
use super::*;
use crate::q921::Side;
use holdfast_telephony::cause;

fn stack(side: Side) -> Stack {
    Stack::new(side, Layout::T1, Layer1::Mulaw)
}

fn outgoing(channel: Option<u8>) -> Outgoing {
    Outgoing {
        called: PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, "100"),
        calling: None,
        channel,
    }
}

fn sent(stack: &mut Stack) -> Vec<Message> {
    std::iter::from_fn(|| stack.poll_message()).collect()
}

fn events(stack: &mut Stack) -> Vec<CallEvent> {
    std::iter::from_fn(|| stack.poll_event()).collect()
}

fn setup_from_far_end(cr: u16, channel: Option<ChannelId>) -> Message {
    let mut m = Message::new(CallRef { value: cr, to_originator: false }, MessageType::Setup)
        .with(Ie::BearerCapability(BearerCapability::speech(Layer1::Mulaw)));
    if let Some(c) = channel {
        m = m.with(Ie::ChannelId(c));
    }
    m
}

fn cause_of(m: &Message) -> Option<u8> {
    m.cause().map(|c| c.value)
}

#[test]
fn setup_from_the_user_side_asks_for_a_preferred_channel_network_side_exclusive() {
    let now = Instant::now();
    let mut user = stack(Side::User);
    user.place_call(outgoing(None), now).unwrap();
    let setup = sent(&mut user).remove(0);
    assert_eq!(setup.kind, MessageType::Setup);
    assert!(!setup.call_ref.to_originator);
    assert_eq!(setup.channel_id(), Some(ChannelId { exclusive: false, selection: ChannelSelection::Channel(1) }));
    let mut net = stack(Side::Network);
    net.place_call(outgoing(None), now).unwrap();
    let setup = sent(&mut net).remove(0);
    assert_eq!(setup.channel_id(), Some(ChannelId { exclusive: true, selection: ChannelSelection::Channel(23) }));
}

#[test]
fn t303_retransmits_setup_once_then_gives_up() {
    let now = Instant::now();
    let mut user = stack(Side::User);
    let call = user.place_call(outgoing(None), now).unwrap();
    sent(&mut user);
    let t1 = now + Duration::from_secs(4);
    assert_eq!(user.next_timeout(), Some(t1));
    user.handle_timeout(t1);
    assert_eq!(sent(&mut user).iter().map(|m| m.kind).collect::<Vec<_>>(), [MessageType::Setup]);
    let t2 = t1 + Duration::from_secs(4);
    user.handle_timeout(t2);
    let out = sent(&mut user);
    assert_eq!(out[0].kind, MessageType::ReleaseComplete);
    assert_eq!(cause_of(&out[0]), Some(cause::RECOVERY_ON_TIMER_EXPIRY));
    assert!(matches!(&events(&mut user)[..], [CallEvent::Cleared { call: c, .. }] if *c == call));
    assert_eq!(user.free_channels(), 23);
    assert_eq!(user.next_timeout(), None);
}

#[test]
fn setup_without_bearer_capability_is_refused_with_cause_96() {
    let mut user = stack(Side::User);
    let setup = Message::new(CallRef { value: 9, to_originator: false }, MessageType::Setup);
    user.handle_message(setup, Instant::now());
    let out = sent(&mut user);
    assert_eq!(out[0].kind, MessageType::ReleaseComplete);
    assert_eq!(out[0].call_ref, CallRef { value: 9, to_originator: true });
    assert_eq!(cause_of(&out[0]), Some(cause::MANDATORY_IE_MISSING));
}

#[test]
fn busy_or_missing_exclusive_channel_is_refused_on_the_line() {
    let now = Instant::now();
    let mut net = stack(Side::Network);
    let excl = |n| Some(ChannelId { exclusive: true, selection: ChannelSelection::Channel(n) });
    net.handle_message(setup_from_far_end(1, excl(3)), now);
    assert_eq!(sent(&mut net)[0].kind, MessageType::CallProceeding);
    net.handle_message(setup_from_far_end(2, excl(3)), now);
    assert_eq!(cause_of(&sent(&mut net)[0]), Some(cause::CHANNEL_NOT_AVAILABLE));
    net.handle_message(setup_from_far_end(3, excl(24)), now);
    assert_eq!(cause_of(&sent(&mut net)[0]), Some(cause::CHANNEL_DOES_NOT_EXIST));
    // Preferred: another channel is offered in CALL PROCEEDING.
    let pref = Some(ChannelId { exclusive: false, selection: ChannelSelection::Channel(3) });
    net.handle_message(setup_from_far_end(4, pref), now);
    let cp = sent(&mut net).remove(0);
    assert_eq!(cp.channel_id(), Some(ChannelId { exclusive: true, selection: ChannelSelection::Channel(23) }));
}

#[test]
fn a_full_span_refuses_setup_with_cause_34() {
    let now = Instant::now();
    let mut net = stack(Side::Network);
    for cr in 1..=23 {
        net.handle_message(setup_from_far_end(cr, None), now);
        assert_eq!(sent(&mut net)[0].kind, MessageType::CallProceeding);
    }
    net.handle_message(setup_from_far_end(24, None), now);
    let out = sent(&mut net);
    assert_eq!(out[0].kind, MessageType::ReleaseComplete);
    assert_eq!(cause_of(&out[0]), Some(cause::NO_CIRCUIT_AVAILABLE));
    assert_eq!(net.place_call(outgoing(None), now), Err(cause::NO_CIRCUIT_AVAILABLE));
}

#[test]
fn user_side_retries_on_another_channel_when_refused_with_cause_44() {
    let now = Instant::now();
    let mut user = stack(Side::User);
    let call = user.place_call(outgoing(Some(7)), now).unwrap();
    let first = sent(&mut user).remove(0);
    let refusal = Message::new(CallRef { value: first.call_ref.value, to_originator: true }, MessageType::ReleaseComplete)
        .with(Ie::Cause(Cause::new(cause::CHANNEL_NOT_AVAILABLE)));
    user.handle_message(refusal, now);
    let retry = sent(&mut user).remove(0);
    assert_eq!(retry.kind, MessageType::Setup);
    assert_ne!(retry.call_ref.value, first.call_ref.value, "a fresh call reference");
    assert_eq!(retry.channel_id().map(|c| c.selection), Some(ChannelSelection::Channel(1)));
    assert!(events(&mut user).is_empty(), "the application sees one call");
    assert_eq!(user.channel(call), Some(1));
    // Refused again: now the call is cleared.
    let refusal = Message::new(CallRef { value: retry.call_ref.value, to_originator: true }, MessageType::ReleaseComplete)
        .with(Ie::Cause(Cause::new(cause::CHANNEL_NOT_AVAILABLE)));
    user.handle_message(refusal, now);
    assert!(matches!(&events(&mut user)[..], [CallEvent::Cleared { call: c, cause: k }] if *c == call && k.value == 44));
    assert_eq!(user.free_channels(), 23);
}

#[test]
fn messages_for_unknown_call_references() {
    let now = Instant::now();
    let mut user = stack(Side::User);
    let cr = CallRef { value: 77, to_originator: false };
    user.handle_message(Message::new(cr, MessageType::Release), now);
    user.handle_message(Message::new(cr, MessageType::ReleaseComplete), now);
    user.handle_message(Message::new(cr, MessageType::StatusEnquiry), now);
    user.handle_message(Message::new(cr, MessageType::Connect), now);
    let out = sent(&mut user);
    assert_eq!(out.len(), 3, "RELEASE COMPLETE is not answered: {out:?}");
    assert_eq!((out[0].kind, cause_of(&out[0])), (MessageType::ReleaseComplete, Some(cause::INVALID_CALL_REFERENCE)));
    assert_eq!((out[1].kind, out[1].call_state()), (MessageType::Status, Some(0)));
    assert_eq!((out[2].kind, cause_of(&out[2])), (MessageType::ReleaseComplete, Some(cause::INVALID_CALL_REFERENCE)));
    assert!(out.iter().all(|m| m.call_ref == CallRef { value: 77, to_originator: true }));
}

#[test]
fn status_enquiry_and_unexpected_messages_get_status() {
    let now = Instant::now();
    let mut user = stack(Side::User);
    user.handle_message(setup_from_far_end(5, None), now);
    sent(&mut user);
    let cr = CallRef { value: 5, to_originator: false };
    user.handle_message(Message::new(cr, MessageType::StatusEnquiry), now);
    user.handle_message(Message::new(cr, MessageType::CallProceeding), now);
    user.handle_message(Message::new(cr, MessageType::Unknown(0x62)), now);
    let out = sent(&mut user);
    let got: Vec<_> = out.iter().map(|m| (m.kind, cause_of(m), m.call_state())).collect();
    assert_eq!(
        got,
        [
            (MessageType::Status, Some(cause::RESPONSE_TO_STATUS_ENQUIRY), Some(9)),
            (MessageType::Status, Some(cause::WRONG_MESSAGE_FOR_STATE), Some(9)),
            (MessageType::Status, Some(cause::MESSAGE_TYPE_NONEXISTENT), Some(9)),
        ]
    );
    // The far end says it has no such call: cleared here too.
    user.handle_message(Message::new(cr, MessageType::Status).with(Ie::CallState(0)), now);
    assert!(events(&mut user).iter().any(|e| matches!(e, CallEvent::Cleared { .. })));
    assert_eq!(user.free_channels(), 23);
}

#[test]
fn release_collision_and_t308() {
    let now = Instant::now();
    let mut user = stack(Side::User);
    user.handle_message(setup_from_far_end(5, None), now);
    let call = match events(&mut user).remove(0) {
        CallEvent::Incoming { call, .. } => call,
        other => panic!("{other:?}"),
    };
    let cr = CallRef { value: 5, to_originator: false };
    user.answer(call, now).unwrap();
    user.handle_message(Message::new(cr, MessageType::ConnectAck), now);
    user.handle_message(Message::new(cr, MessageType::Disconnect).with(Ie::Cause(Cause::new(16))), now);
    sent(&mut user);
    assert_eq!(user.call_state(call), Some(CallState::ReleaseRequest));
    // No answer to our RELEASE: sent again once, then the call is dropped and its channel
    // restarted, out of service until RESTART ACKNOWLEDGE.
    let t1 = now + Duration::from_secs(4);
    user.handle_timeout(t1);
    assert_eq!(sent(&mut user)[0].kind, MessageType::Release);
    let t2 = t1 + Duration::from_secs(4);
    user.handle_timeout(t2);
    assert_eq!(user.call_state(call), None);
    let restart = sent(&mut user).remove(0);
    assert_eq!((restart.kind, restart.call_ref), (MessageType::Restart, CallRef::GLOBAL));
    assert_eq!(restart.channel_id().map(|c| c.selection), Some(ChannelSelection::Channel(1)));
    assert_eq!(user.free_channels(), 22);
    assert_eq!(user.next_timeout(), Some(t2 + T316));
    let ack = Message::new(CallRef { value: 0, to_originator: true }, MessageType::RestartAck)
        .with(Ie::ChannelId(ChannelId { exclusive: true, selection: ChannelSelection::Channel(1) }))
        .with(Ie::RestartIndicator(RestartClass::Indicated));
    user.handle_message(ack, t2);
    assert_eq!(user.free_channels(), 23);
    assert_eq!(user.next_timeout(), None);
}

/// A call whose RELEASE goes unanswered twice: its B-channel is restarted.
fn stuck_channel(user: &mut Stack, now: Instant) -> Instant {
    user.handle_message(setup_from_far_end(5, None), now);
    let cr = CallRef { value: 5, to_originator: false };
    user.handle_message(Message::new(cr, MessageType::Disconnect).with(Ie::Cause(Cause::new(16))), now);
    let t = now + Duration::from_secs(8);
    user.handle_timeout(now + Duration::from_secs(4));
    user.handle_timeout(t);
    let kinds: Vec<_> = sent(user).iter().map(|m| m.kind).collect();
    assert_eq!(kinds.last(), Some(&MessageType::Restart), "{kinds:?}");
    events(user);
    t
}

#[test]
fn t316_sends_restart_again_then_leaves_the_channel_out_of_service() {
    let now = Instant::now();
    let mut user = stack(Side::User);
    let t = stuck_channel(&mut user, now);
    user.handle_timeout(t + T316 - Duration::from_millis(1));
    assert!(sent(&mut user).is_empty(), "T316 has not run out yet");
    user.handle_timeout(t + T316);
    let again = sent(&mut user);
    assert_eq!(again.iter().map(|m| m.kind).collect::<Vec<_>>(), [MessageType::Restart]);
    assert_eq!(again[0].channel_id().map(|c| c.selection), Some(ChannelSelection::Channel(1)));
    assert_eq!(RESTART_ATTEMPTS, 2);
    user.handle_timeout(t + T316 * 2);
    assert!(sent(&mut user).is_empty(), "no third RESTART");
    assert_eq!(user.next_timeout(), None);
    assert_eq!(user.free_channels(), 22, "no calls on an unacknowledged channel");
    // Calls hunt past it.
    user.handle_message(setup_from_far_end(6, None), t + T316 * 2);
    let call = match events(&mut user).remove(0) {
        CallEvent::Incoming { call, .. } => call,
        other => panic!("{other:?}"),
    };
    assert_eq!(user.channel(call), Some(2));
    sent(&mut user);
    // The far end's own RESTART of the channel returns it to service.
    let restart = Message::new(CallRef::GLOBAL, MessageType::Restart)
        .with(Ie::ChannelId(ChannelId { exclusive: true, selection: ChannelSelection::Channel(1) }))
        .with(Ie::RestartIndicator(RestartClass::Indicated));
    user.handle_message(restart, t + T316 * 3);
    assert_eq!(sent(&mut user)[0].kind, MessageType::RestartAck);
    assert_eq!(user.free_channels(), 22, "one call still holds channel 2");
    assert_eq!(user.channel(call), Some(2));
}

fn active_call(user: &mut Stack, cr: u16, now: Instant) -> CallId {
    user.handle_message(setup_from_far_end(cr, None), now);
    let call = match events(user).remove(0) {
        CallEvent::Incoming { call, .. } => call,
        other => panic!("{other:?}"),
    };
    user.answer(call, now).unwrap();
    user.handle_message(Message::new(CallRef { value: cr, to_originator: false }, MessageType::ConnectAck), now);
    sent(user);
    events(user);
    call
}

#[test]
fn t309_keeps_active_calls_over_a_link_failure_and_clears_them_when_it_runs_out() {
    let now = Instant::now();
    let mut user = stack(Side::User);
    let active = active_call(&mut user, 1, now);
    user.handle_message(setup_from_far_end(2, None), now);
    let ringing = match events(&mut user).remove(0) {
        CallEvent::Incoming { call, .. } => call,
        other => panic!("{other:?}"),
    };
    sent(&mut user);
    user.link_failed(now);
    let got = events(&mut user);
    assert!(matches!(&got[..], [CallEvent::Cleared { call, cause: c }] if *call == ringing && c.value == cause::NETWORK_OUT_OF_ORDER), "{got:?}");
    assert_eq!(user.call_state(active), Some(CallState::Active));
    let t309 = now + Duration::from_secs(6);
    assert_eq!(user.next_timeout(), Some(t309));
    // A second failure report does not restart T309.
    user.link_failed(now + Duration::from_secs(3));
    assert_eq!(user.next_timeout(), Some(t309));
    user.handle_timeout(t309 - Duration::from_millis(1));
    assert_eq!(user.call_state(active), Some(CallState::Active));
    user.handle_timeout(t309);
    let got = events(&mut user);
    assert!(matches!(&got[..], [CallEvent::Cleared { call, cause: c }] if *call == active && c.value == cause::DESTINATION_OUT_OF_ORDER), "{got:?}");
    assert!(sent(&mut user).is_empty(), "nothing can be sent without a link");
    assert_eq!(user.free_channels(), 23);
}

#[test]
fn t309_stops_when_the_link_returns_and_the_far_end_hears_the_state() {
    let now = Instant::now();
    let mut user = stack(Side::User);
    let active = active_call(&mut user, 1, now);
    user.link_failed(now);
    user.link_restored();
    let status = sent(&mut user).remove(0);
    assert_eq!((status.kind, cause_of(&status), status.call_state()), (MessageType::Status, Some(cause::NORMAL_UNSPECIFIED), Some(10)));
    assert_eq!(user.next_timeout(), None);
    user.handle_timeout(now + Duration::from_secs(60));
    assert_eq!(user.call_state(active), Some(CallState::Active));
    assert!(events(&mut user).is_empty());
    // Hung up while the link is down: cleared here without a word on the line.
    user.link_failed(now + Duration::from_secs(61));
    user.hangup(active, cause::NORMAL_CLEARING, now + Duration::from_secs(62)).unwrap();
    assert!(sent(&mut user).is_empty());
    assert_eq!((user.call_state(active), user.free_channels(), user.next_timeout()), (None, 23, None));
}

fn overlap_stack(side: Side) -> Stack {
    let mut s = stack(side);
    s.set_dial_plan(dialplan::DialPlan::parse(&["2XXX", "0Z."]).unwrap());
    s
}

fn setup_with_digits(cr: u16, digits: &str, complete: bool) -> Message {
    let mut m = setup_from_far_end(cr, None)
        .with(Ie::CalledParty(PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, digits)));
    if complete {
        m = m.with(Ie::SendingComplete);
    }
    m
}

fn information(cr: u16, digits: &str, complete: bool) -> Message {
    let mut m = Message::new(CallRef { value: cr, to_originator: false }, MessageType::Information)
        .with(Ie::CalledParty(PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, digits)));
    if complete {
        m = m.with(Ie::SendingComplete);
    }
    m
}

fn incoming_number(events: &[CallEvent]) -> Option<String> {
    match events {
        [CallEvent::Incoming { called, .. }] => called.as_ref().map(|c| c.digits.clone()),
        _ => None,
    }
}

#[test]
fn overlap_receiving_collects_digits_until_the_dial_plan_completes_the_number() {
    let now = Instant::now();
    for side in [Side::User, Side::Network] {
        let mut s = overlap_stack(side);
        s.handle_message(setup_with_digits(1, "2", false), now);
        let ack = sent(&mut s).remove(0);
        assert_eq!(ack.kind, MessageType::SetupAck);
        let channel = match ack.channel_id().map(|c| c.selection) {
            Some(ChannelSelection::Channel(n)) => n,
            other => panic!("{other:?}"),
        };
        assert!(events(&mut s).is_empty(), "not complete yet");
        assert_eq!(s.call_state(CallId(1)).map(|st| st.value(side)), Some(if side == Side::User { 25 } else { 2 }));
        s.handle_message(information(1, "0", false), now + Duration::from_secs(1));
        s.handle_message(information(1, "0", false), now + Duration::from_secs(2));
        assert!(sent(&mut s).is_empty() && events(&mut s).is_empty());
        assert_eq!(s.next_timeout(), Some(now + Duration::from_secs(2) + CallTimer::T302.duration()), "T302 restarts per digit");
        s.handle_message(information(1, "1", false), now + Duration::from_secs(3));
        let cp = sent(&mut s).remove(0);
        assert_eq!((cp.kind, cp.channel_id()), (MessageType::CallProceeding, None));
        let got = events(&mut s);
        assert_eq!(incoming_number(&got).as_deref(), Some("2001"));
        assert!(matches!(&got[..], [CallEvent::Incoming { channel: c, .. }] if *c == channel));
        assert_eq!(s.call_state(CallId(1)), Some(CallState::IncomingProceeding));
        assert_eq!(s.next_timeout(), None);
    }
}

#[test]
fn sending_complete_ends_collection_and_a_complete_setup_needs_none() {
    let now = Instant::now();
    let mut user = overlap_stack(Side::User);
    user.handle_message(setup_with_digits(1, "06", false), now);
    assert_eq!(sent(&mut user)[0].kind, MessageType::SetupAck);
    user.handle_message(information(1, "123", false), now);
    assert!(events(&mut user).is_empty(), "an open number waits");
    user.handle_message(information(1, "4", true), now);
    assert_eq!(sent(&mut user)[0].kind, MessageType::CallProceeding);
    assert_eq!(incoming_number(&events(&mut user)).as_deref(), Some("061234"));
    // En bloc: complete by the plan, or with sending complete whatever the plan says.
    user.handle_message(setup_with_digits(2, "2468", false), now);
    assert_eq!(sent(&mut user)[0].kind, MessageType::CallProceeding);
    assert_eq!(incoming_number(&events(&mut user)).as_deref(), Some("2468"));
    user.handle_message(setup_with_digits(3, "06", true), now);
    assert_eq!(sent(&mut user)[0].kind, MessageType::CallProceeding);
    assert_eq!(incoming_number(&events(&mut user)).as_deref(), Some("06"));
    // Without a dial plan every SETUP is complete.
    let mut plain = stack(Side::User);
    plain.handle_message(setup_with_digits(1, "2", false), now);
    assert_eq!(sent(&mut plain)[0].kind, MessageType::CallProceeding);
}

#[test]
fn t302_sends_an_open_number_as_it_is_and_clears_an_incomplete_one() {
    let now = Instant::now();
    let mut net = overlap_stack(Side::Network);
    net.handle_message(setup_with_digits(1, "0612", false), now);
    net.handle_message(setup_with_digits(2, "20", false), now);
    sent(&mut net);
    let t302 = now + CallTimer::T302.duration();
    assert_eq!(net.next_timeout(), Some(t302));
    net.handle_timeout(t302);
    let out = sent(&mut net);
    let got: Vec<_> = out.iter().map(|m| (m.kind, m.call_ref.value, cause_of(m))).collect();
    assert_eq!(
        got,
        [(MessageType::CallProceeding, 1, None), (MessageType::Disconnect, 2, Some(cause::INVALID_NUMBER_FORMAT))]
    );
    assert_eq!(incoming_number(&events(&mut net)).as_deref(), Some("0612"));
    assert_eq!(net.call_state(CallId(1)), Some(CallState::IncomingProceeding));
}

#[test]
fn numbers_outside_the_dial_plan_are_refused_with_cause_1() {
    let now = Instant::now();
    let mut user = overlap_stack(Side::User);
    user.handle_message(setup_with_digits(1, "9", false), now);
    let out = sent(&mut user);
    assert_eq!((out[0].kind, cause_of(&out[0])), (MessageType::ReleaseComplete, Some(cause::UNALLOCATED_NUMBER)));
    user.handle_message(setup_with_digits(2, "2", false), now);
    sent(&mut user);
    user.handle_message(information(2, "0001", false), now);
    let out = sent(&mut user);
    assert_eq!((out[0].kind, cause_of(&out[0])), (MessageType::Disconnect, Some(cause::UNALLOCATED_NUMBER)));
    // The far end clears: the application never heard of the call.
    let cr = CallRef { value: 2, to_originator: false };
    user.handle_message(Message::new(cr, MessageType::Release), now);
    assert!(events(&mut user).is_empty());
    assert_eq!(user.free_channels(), 23);
}

#[test]
fn unanswered_disconnect_escalates_to_release_after_t305() {
    let now = Instant::now();
    let mut net = stack(Side::Network);
    let call = net.place_call(outgoing(None), now).unwrap();
    sent(&mut net);
    net.hangup(call, cause::NORMAL_CLEARING, now).unwrap();
    assert_eq!(sent(&mut net)[0].kind, MessageType::Disconnect);
    net.handle_timeout(now + Duration::from_secs(30));
    let rel = sent(&mut net).remove(0);
    assert_eq!((rel.kind, cause_of(&rel)), (MessageType::Release, Some(cause::NORMAL_CLEARING)));
    assert!(events(&mut net).is_empty(), "the application cleared it itself");
}

#[test]
fn restart_clears_calls_and_is_acknowledged() {
    let now = Instant::now();
    let mut user = stack(Side::User);
    for cr in 1..=3 {
        user.handle_message(setup_from_far_end(cr, None), now);
    }
    sent(&mut user);
    events(&mut user);
    let one = Message::new(CallRef::GLOBAL, MessageType::Restart)
        .with(Ie::ChannelId(ChannelId { exclusive: true, selection: ChannelSelection::Channel(2) }))
        .with(Ie::RestartIndicator(RestartClass::Indicated));
    user.handle_message(one, now);
    let ack = sent(&mut user).remove(0);
    assert_eq!(ack.kind, MessageType::RestartAck);
    assert_eq!(ack.channel_id().map(|c| c.selection), Some(ChannelSelection::Channel(2)));
    assert_eq!(events(&mut user).len(), 1);
    assert_eq!(user.free_channels(), 21);
    let all = Message::new(CallRef::GLOBAL, MessageType::Restart).with(Ie::RestartIndicator(RestartClass::AllInterfaces));
    user.handle_message(all, now);
    assert_eq!(sent(&mut user)[0].kind, MessageType::RestartAck);
    assert_eq!(events(&mut user).len(), 2);
    assert_eq!(user.free_channels(), 23);
}

#[test]
fn random_messages_never_panic_the_stack() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x931);
    let mut now = Instant::now();
    for (side, overlap) in [(Side::User, false), (Side::Network, false), (Side::User, true), (Side::Network, true)] {
        let mut s = if overlap { overlap_stack(side) } else { stack(side) };
        for i in 0..20_000 {
            let len = rng.random_range(0..24);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if len > 5 {
                bytes[0] = 0x08;
                bytes[1] = 0x02;
                bytes[2] &= 0x80; // small call references so calls get reused
                bytes[3] &= 0x07;
                let kinds = [0x01, 0x02, 0x05, 0x07, 0x0D, 0x0F, 0x45, 0x46, 0x4D, 0x4E, 0x5A, 0x75, 0x7B, 0x7D];
                bytes[4] = kinds[rng.random_range(0..kinds.len())];
            }
            if let Ok(msg) = Message::decode(&bytes) {
                s.handle_message(msg, now);
            }
            if i % 500 == 0 {
                s.link_failed(now);
            } else if i % 500 == 250 {
                s.link_restored();
            }
            if i % 50 == 0 {
                let _ = s.place_call(outgoing(None), now);
                now += Duration::from_secs(2);
                s.handle_timeout(now);
            }
            sent(&mut s);
            events(&mut s);
        }
    }
}
