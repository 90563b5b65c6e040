//! Call control driven message by message, one stack against hand-built messages.

use std::time::{Duration, Instant};

use super::ie::{BearerCapability, Cause, ChannelId, ChannelSelection, Ie, Layer1, NumberingPlan, PartyNumber, RestartClass, TypeOfNumber};
use super::*;
use crate::q921::Side;

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
    // No answer to our RELEASE: sent again once, then the call is dropped.
    let t1 = now + Duration::from_secs(4);
    user.handle_timeout(t1);
    assert_eq!(sent(&mut user)[0].kind, MessageType::Release);
    user.handle_timeout(t1 + Duration::from_secs(4));
    assert_eq!(user.call_state(call), None);
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
    for side in [Side::User, Side::Network] {
        let mut s = stack(side);
        for i in 0..20_000 {
            let len = rng.random_range(0..24);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if len > 5 {
                bytes[0] = 0x08;
                bytes[1] = 0x02;
                bytes[2] &= 0x80; // small call references so calls get reused
                bytes[3] &= 0x07;
                let kinds = [0x01, 0x02, 0x05, 0x07, 0x0F, 0x45, 0x46, 0x4D, 0x5A, 0x75, 0x7D];
                bytes[4] = kinds[rng.random_range(0..kinds.len())];
            }
            if let Ok(msg) = Message::decode(&bytes) {
                s.handle_message(msg, now);
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
