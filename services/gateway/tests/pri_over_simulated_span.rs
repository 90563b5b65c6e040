//! Two PRI stacks, user side and network side, over the simulated span: call setup both ways,
//! clearing from each side, glare, a full span, and an alarm taking the span out of service.

use std::time::Duration;

use holdfast_telephony::cause;
use sba_gateway::alarms::Alarms;
use sba_gateway::pri::{Pri, PriEvent};
use sba_gateway::q921::Side;
use sba_gateway::q931::ie::{Layer1, NumberingPlan, PartyNumber, TypeOfNumber};
use sba_gateway::q931::{CallEvent, CallId, Layout, Outgoing};
use sba_gateway::span::{SimulatedLine, SimulatedSpan};
use sba_gateway::trunk::{self, TrunkHandle};
use tokio::time::timeout;

/// Virtual time (the runtime is paused): generous, costs nothing.
const WAIT: Duration = Duration::from_secs(60);

async fn trunks(layout: Layout) -> (TrunkHandle, TrunkHandle, SimulatedLine) {
    let (a, b, line) = SimulatedSpan::pair(layout);
    let (mut user, _) = trunk::spawn(a, Pri::new(Side::User, layout, Layer1::Mulaw));
    let (mut net, _) = trunk::spawn(b, Pri::new(Side::Network, layout, Layer1::Mulaw));
    assert_eq!(next(&mut user).await, PriEvent::InService(true));
    assert_eq!(next(&mut net).await, PriEvent::InService(true));
    (user, net, line)
}

async fn next(trunk: &mut TrunkHandle) -> PriEvent {
    timeout(WAIT, trunk.recv()).await.expect("an event in time").expect("trunk running")
}

async fn call_event(trunk: &mut TrunkHandle) -> CallEvent {
    match next(trunk).await {
        PriEvent::Call(e) => e,
        other => panic!("unexpected {other:?}"),
    }
}

fn number(digits: &str) -> PartyNumber {
    PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, digits)
}

fn to(digits: &str) -> Outgoing {
    Outgoing { called: number(digits), calling: Some(number("5551000")), channel: None }
}

async fn place(trunk: &TrunkHandle, req: Outgoing) -> CallId {
    trunk.place_call(req).await.unwrap().expect("call placed")
}

/// Sets up a call from `from` to `to_side`, answered; returns (caller's id, callee's id, channel).
async fn connected_call(from: &mut TrunkHandle, to_side: &mut TrunkHandle, digits: &str) -> (CallId, CallId, u8) {
    let out = place(from, to(digits)).await;
    let (incoming, channel) = match call_event(to_side).await {
        CallEvent::Incoming { call, channel, called, .. } => {
            assert_eq!(called.map(|c| c.digits).as_deref(), Some(digits));
            (call, channel)
        }
        other => panic!("expected Incoming, got {other:?}"),
    };
    assert_eq!(call_event(from).await, CallEvent::Proceeding { call: out, channel });
    to_side.answer(incoming).await.unwrap();
    assert_eq!(call_event(from).await, CallEvent::Connected { call: out });
    // The user side reports Connected on CONNECT ACK, the network side at once.
    assert_eq!(call_event(to_side).await, CallEvent::Connected { call: incoming });
    (out, incoming, channel)
}

async fn settle(trunk: &TrunkHandle, free: usize) {
    for _ in 0..100 {
        if trunk.status().await.unwrap().free_channels == free {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("expected {free} free channels, have {:?}", trunk.status().await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn pstn_to_branch_call_with_audio_cleared_by_the_user_side() {
    let (mut user, mut net, _line) = trunks(Layout::T1).await;
    let out = place(&net, to("2000")).await;
    let (call, channel) = match call_event(&mut user).await {
        CallEvent::Incoming { call, channel, called, calling } => {
            assert_eq!(called, Some(number("2000")));
            assert_eq!(calling.map(|c| c.digits).as_deref(), Some("5551000"));
            (call, channel)
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(channel, 23, "the network side hunts from the top");
    assert_eq!(call_event(&mut net).await, CallEvent::Proceeding { call: out, channel: 23 });
    user.alert(call).await.unwrap();
    assert_eq!(call_event(&mut net).await, CallEvent::Alerting { call: out });
    user.answer(call).await.unwrap();
    assert_eq!(call_event(&mut net).await, CallEvent::Connected { call: out });
    assert_eq!(call_event(&mut user).await, CallEvent::Connected { call });

    // 20 ms blocks both ways on the B-channel, each to the sink connected to it.
    let (to_net, mut net_heard) = tokio::sync::mpsc::unbounded_channel();
    let (to_user, mut user_heard) = tokio::sync::mpsc::unbounded_channel();
    net.connect_audio(23, Some(Box::new(to_net))).await.unwrap();
    user.connect_audio(23, Some(Box::new(to_user))).await.unwrap();
    let block: Vec<u8> = (0..160u16).map(|i| (i % 251) as u8).collect();
    user.send_audio(23, block.clone()).await.unwrap();
    assert_eq!(timeout(WAIT, net_heard.recv()).await.unwrap(), Some(block));
    net.send_audio(23, vec![0xD5; 160]).await.unwrap();
    assert_eq!(timeout(WAIT, user_heard.recv()).await.unwrap(), Some(vec![0xD5; 160]));

    user.hangup(call, cause::NORMAL_CLEARING).await.unwrap();
    match call_event(&mut net).await {
        CallEvent::Cleared { call: c, cause: k } => {
            assert_eq!(c, out);
            assert_eq!(k.value, cause::NORMAL_CLEARING);
        }
        other => panic!("{other:?}"),
    }
    settle(&user, 23).await;
    settle(&net, 23).await;
}

#[tokio::test(start_paused = true)]
async fn branch_to_pstn_call_cleared_by_the_network_side() {
    let (mut user, mut net, _line) = trunks(Layout::T1).await;
    let (out, incoming, channel) = connected_call(&mut user, &mut net, "0612345678").await;
    assert_eq!(channel, 1, "the user side hunts from the bottom");
    net.hangup(incoming, cause::NORMAL_CLEARING).await.unwrap();
    match call_event(&mut user).await {
        CallEvent::Cleared { call, cause: k } => {
            assert_eq!(call, out);
            assert_eq!(k.value, cause::NORMAL_CLEARING);
        }
        other => panic!("{other:?}"),
    }
    settle(&user, 23).await;
    settle(&net, 23).await;
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_call_refused_busy_reaches_the_caller_with_its_cause() {
    let (mut user, mut net, _line) = trunks(Layout::T1).await;
    let out = place(&net, to("2001")).await;
    let CallEvent::Incoming { call, .. } = call_event(&mut user).await else { panic!("no Incoming") };
    assert!(matches!(call_event(&mut net).await, CallEvent::Proceeding { .. }));
    user.hangup(call, cause::USER_BUSY).await.unwrap();
    match call_event(&mut net).await {
        CallEvent::Cleared { call, cause: k } => {
            assert_eq!(call, out);
            assert_eq!(k.value, cause::USER_BUSY);
            assert_eq!(holdfast_telephony::cause::sip_status_at(k.value, k.location), 486);
        }
        other => panic!("{other:?}"),
    }
    settle(&net, 23).await;
}

#[tokio::test(start_paused = true)]
async fn glare_on_one_channel_the_network_keeps_it_and_the_user_call_moves() {
    let (mut user, mut net, _line) = trunks(Layout::T1).await;
    let on5 = |d: &str| Outgoing { channel: Some(5), ..to(d) };
    // Both SETUPs are sent before either end sees the other's.
    let (u, n) = tokio::join!(user.place_call(on5("3000")), net.place_call(on5("4000")));
    let (u, n) = (u.unwrap().unwrap(), n.unwrap().unwrap());

    let mut user_events = Vec::new();
    let mut net_events = Vec::new();
    for _ in 0..2 {
        user_events.push(call_event(&mut user).await);
        net_events.push(call_event(&mut net).await);
    }
    let user_incoming = user_events
        .iter()
        .find_map(|e| match e {
            CallEvent::Incoming { call, channel, .. } => Some((*call, *channel)),
            _ => None,
        })
        .expect("the network's call reached the user");
    assert_eq!(user_incoming.1, 5, "the network side's choice wins");
    let moved_to = user_events
        .iter()
        .find_map(|e| match e {
            CallEvent::Proceeding { call, channel } if *call == u => Some(*channel),
            _ => None,
        })
        .expect("the user's call proceeds");
    assert_ne!(moved_to, 5);
    assert!(net_events.contains(&CallEvent::Proceeding { call: n, channel: 5 }));
    let net_incoming = net_events
        .iter()
        .find_map(|e| match e {
            CallEvent::Incoming { call, channel, .. } => Some((*call, *channel)),
            _ => None,
        })
        .expect("the user's call reached the network");
    assert_eq!(net_incoming.1, moved_to);

    // Both calls complete on their own channels.
    user.answer(user_incoming.0).await.unwrap();
    net.answer(net_incoming.0).await.unwrap();
    let mut connected = Vec::new();
    for _ in 0..2 {
        connected.push(call_event(&mut user).await);
        connected.push(call_event(&mut net).await);
    }
    assert!(connected.contains(&CallEvent::Connected { call: u }));
    assert!(connected.contains(&CallEvent::Connected { call: n }));
    settle(&user, 21).await;
    settle(&net, 21).await;
}

#[tokio::test(start_paused = true)]
async fn all_23_channels_busy_then_further_calls_get_cause_34() {
    let (mut user, mut net, _line) = trunks(Layout::T1).await;
    for i in 0..22 {
        let (_, _, channel) = connected_call(&mut net, &mut user, &format!("20{i:02}")).await;
        assert_eq!(channel, 23 - i as u8);
    }
    settle(&net, 1).await;
    // The last channel is wanted by both ends at once: the network's call gets it, the user's
    // SETUP finds nothing left and is refused on the line with cause 34.
    let (u, n) = tokio::join!(user.place_call(to("3999")), net.place_call(to("2999")));
    let (u, n) = (u.unwrap().unwrap(), n.unwrap().unwrap());
    let mut user_events = vec![call_event(&mut user).await, call_event(&mut user).await];
    user_events.sort_by_key(|e| matches!(e, CallEvent::Cleared { .. }));
    let CallEvent::Incoming { call: last, channel: 1, .. } = user_events[0] else {
        panic!("expected the network's call on channel 1: {user_events:?}")
    };
    match &user_events[1] {
        CallEvent::Cleared { call, cause: k } => {
            assert_eq!(*call, u);
            assert_eq!(k.value, cause::NO_CIRCUIT_AVAILABLE);
            assert_eq!(holdfast_telephony::cause::sip_status_at(k.value, k.location), 503);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(call_event(&mut net).await, CallEvent::Proceeding { call: n, channel: 1 });
    user.answer(last).await.unwrap();
    assert_eq!(call_event(&mut net).await, CallEvent::Connected { call: n });
    assert_eq!(call_event(&mut user).await, CallEvent::Connected { call: last });

    // 23 of 23 in use: one more call either way is refused at once.
    settle(&user, 0).await;
    settle(&net, 0).await;
    assert_eq!(net.place_call(to("2998")).await.unwrap(), Err(cause::NO_CIRCUIT_AVAILABLE));
    assert_eq!(user.place_call(to("3998")).await.unwrap(), Err(cause::NO_CIRCUIT_AVAILABLE));
}

#[tokio::test(start_paused = true)]
async fn red_alarm_clears_calls_and_takes_the_trunk_out_of_service() {
    let (mut user, mut net, line) = trunks(Layout::T1).await;
    let (out, incoming, _) = connected_call(&mut user, &mut net, "112").await;
    line.set_alarms(Alarms::RED);
    // The active call is kept for T309 (6 s), in case the link returns, then cleared.
    for (trunk, call) in [(&mut user, out), (&mut net, incoming)] {
        let mut seen = Vec::new();
        for _ in 0..2 {
            seen.push(next(trunk).await);
        }
        assert!(seen.contains(&PriEvent::InService(false)), "{seen:?}");
        assert!(
            seen.iter().any(|e| matches!(e, PriEvent::Call(CallEvent::Cleared { call: c, cause: k })
                if *c == call && k.value == cause::DESTINATION_OUT_OF_ORDER)),
            "{seen:?}"
        );
        let status = trunk.status().await.unwrap();
        assert!(!status.in_service);
        assert_eq!(status.free_channels, 23);
        assert_eq!(trunk.place_call(to("999")).await.unwrap(), Err(cause::NETWORK_OUT_OF_ORDER));
    }
    // The line comes back: the D-channel is re-established and calls work again.
    line.set_alarms(Alarms::NONE);
    assert_eq!(next(&mut user).await, PriEvent::InService(true));
    assert_eq!(next(&mut net).await, PriEvent::InService(true));
    connected_call(&mut net, &mut user, "2000").await;
}

#[tokio::test(start_paused = true)]
async fn e1_numbering_skips_timeslot_16() {
    let (mut user, mut net, _line) = trunks(Layout::E1).await;
    let (_, _, from_net) = connected_call(&mut net, &mut user, "1").await;
    assert_eq!(from_net, 31);
    let mut channels = Vec::new();
    for i in 0..16 {
        let (_, _, c) = connected_call(&mut user, &mut net, &format!("{i}")).await;
        channels.push(c);
    }
    assert_eq!(channels, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17]);
    settle(&user, 30 - 17).await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_link_stays_up_across_t203_keepalives() {
    let (mut user, net, _line) = trunks(Layout::T1).await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(user.status().await.unwrap().in_service);
    assert!(net.status().await.unwrap().in_service);
    assert!(timeout(Duration::from_millis(1), user.recv()).await.is_err(), "no event while idle");
}

/// The goal for the loopback PRI: a full span seized in under a second. Real time here.
#[tokio::test]
async fn a_full_e1_span_is_seized_and_released_in_under_a_second() {
    let (mut user, mut net, _line) = trunks(Layout::E1).await;
    let start = std::time::Instant::now();
    let mut calls = Vec::new();
    for i in 0..30 {
        calls.push(connected_call(&mut net, &mut user, &format!("{i}")).await);
    }
    let seized = start.elapsed();
    assert_eq!(net.place_call(to("31")).await.unwrap(), Err(cause::NO_CIRCUIT_AVAILABLE));
    for (out, _, _) in &calls {
        net.hangup(*out, cause::NORMAL_CLEARING).await.unwrap();
    }
    for _ in &calls {
        assert!(matches!(call_event(&mut user).await, CallEvent::Cleared { .. }));
    }
    settle(&user, 30).await;
    let total = start.elapsed();
    eprintln!("30 E1 calls seized in {seized:?}, all set up and torn down in {total:?}");
    assert!(seized < Duration::from_secs(1), "seizing took {seized:?}");
}
