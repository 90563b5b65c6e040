use super::*;
use crate::q931::ie::{Cause, NumberingPlan, PartyNumber, TypeOfNumber};

fn actions(x: &mut Exchange) -> Vec<Action> {
    std::iter::from_fn(|| x.poll_action()).collect()
}

fn incoming(call: u32, channel: u8) -> PriEvent {
    let number = |d: &str| Some(PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, d));
    PriEvent::Call(CallEvent::Incoming { call: CallId(call), channel, called: number("2125550100"), calling: number("3001") })
}

fn cleared(call: u32, cause: u8) -> PriEvent {
    PriEvent::Call(CallEvent::Cleared { call: CallId(call), cause: Cause::new(cause) })
}

fn is_tone(samples: &[u8]) -> bool {
    let linear: Vec<i16> = samples.iter().map(|&s| holdfast_media::g711::ulaw_to_linear(s)).collect();
    linear.len() == BLOCK_SAMPLES
        && linear.iter().map(|s| s.unsigned_abs()).max().is_some_and(|peak| peak > 7000)
        && linear.chunks(TONE_PERIOD).all(|p| p == &linear[..TONE_PERIOD])
}

#[test]
fn a_call_from_the_branch_rings_is_answered_plays_the_tone_then_echoes() {
    let t0 = Instant::now();
    let mut x = Exchange::new(Law::Mulaw);
    x.on_event(&incoming(7, 3), t0);
    assert_eq!(actions(&mut x), [Action::Alert(CallId(7))]);
    assert_eq!(x.next_timeout(), Some(t0 + RING));
    x.heard(3, &[0x55; 160]);
    assert!(actions(&mut x).is_empty(), "nothing is echoed before the answer");

    let answered = t0 + RING;
    x.handle_timeout(answered);
    let got = actions(&mut x);
    assert_eq!(got[..2], [Action::Answer(CallId(7)), Action::Listen { channel: 3, on: true }]);
    assert!(matches!(&got[2], Action::Audio { channel: 3, samples } if is_tone(samples)), "{got:?}");
    // The stack reports the answered call connected too: nothing starts again.
    x.on_event(&PriEvent::Call(CallEvent::Connected { call: CallId(7) }), answered);
    assert!(actions(&mut x).is_empty());
    x.heard(3, &[0x55; 160]);
    assert!(actions(&mut x).is_empty(), "the tone plays over what is heard");

    // One block every 20 ms for TONE, then the echo.
    let mut now = answered;
    let mut blocks = 1;
    while let Some(next) = x.next_timeout() {
        assert_eq!(next - now, BLOCK);
        now = next;
        x.handle_timeout(now);
        blocks += actions(&mut x).iter().filter(|a| matches!(a, Action::Audio { samples, .. } if is_tone(samples))).count();
    }
    assert_eq!(blocks as u128, TONE.as_millis() / BLOCK.as_millis());
    x.heard(3, &[0x55; 160]);
    x.heard(4, &[0x66; 160]);
    assert_eq!(actions(&mut x), [Action::Audio { channel: 3, samples: vec![0x55; 160] }], "only the call's channel is echoed");

    x.on_event(&cleared(7, cause::NORMAL_CLEARING), now);
    assert_eq!(actions(&mut x), [Action::Listen { channel: 3, on: false }]);
    x.heard(3, &[0x55; 160]);
    assert!(actions(&mut x).is_empty());
    assert_eq!(x.next_timeout(), None);
}

#[test]
fn a_caller_that_gives_up_while_ringing_leaves_nothing_behind() {
    let t0 = Instant::now();
    let mut x = Exchange::new(Law::Alaw);
    x.on_event(&incoming(1, 1), t0);
    x.on_event(&cleared(1, cause::NORMAL_CLEARING), t0);
    assert_eq!(actions(&mut x), [Action::Alert(CallId(1))]);
    assert_eq!(x.next_timeout(), None);
}

#[test]
fn a_placed_call_plays_once_answered_and_hangs_up_after_its_time() {
    let t0 = Instant::now();
    let mut x = Exchange::new(Law::Mulaw);
    x.placed(CallId(2), Some(Duration::from_secs(5)));
    x.on_event(&PriEvent::Call(CallEvent::Proceeding { call: CallId(2), channel: 9 }), t0);
    x.on_event(&PriEvent::Call(CallEvent::Alerting { call: CallId(2) }), t0);
    assert!(actions(&mut x).is_empty());
    assert_eq!(x.next_timeout(), None, "a ringing branch phone is waited for");

    let answered = t0 + Duration::from_secs(3);
    x.on_event(&PriEvent::Call(CallEvent::Connected { call: CallId(2) }), answered);
    let got = actions(&mut x);
    assert_eq!(got[0], Action::Listen { channel: 9, on: true });
    assert!(matches!(&got[1..], [Action::Audio { channel: 9, samples }] if is_tone(samples)), "{got:?}");
    x.handle_timeout(answered + Duration::from_secs(5));
    // The stack reports nothing more of a call we clear: it is forgotten at once.
    assert_eq!(
        actions(&mut x),
        [Action::Hangup { call: CallId(2), cause: cause::NORMAL_CLEARING }, Action::Listen { channel: 9, on: false }]
    );
    assert_eq!(x.next_timeout(), None);
}
