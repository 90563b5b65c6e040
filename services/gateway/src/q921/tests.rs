use std::time::{Duration, Instant};

use super::*;

fn pair() -> (Link, Link) {
    (Link::new(Side::User, Config::default()), Link::new(Side::Network, Config::default()))
}

/// Moves frames both ways until neither side has anything to send; returns how many moved.
fn exchange(a: &mut Link, b: &mut Link, now: Instant) -> usize {
    let mut moved = 0;
    for _ in 0..1000 {
        let mut idle = true;
        while let Some(f) = a.poll_transmit() {
            b.handle_frame(&f, now);
            moved += 1;
            idle = false;
        }
        while let Some(f) = b.poll_transmit() {
            a.handle_frame(&f, now);
            moved += 1;
            idle = false;
        }
        if idle {
            return moved;
        }
    }
    panic!("links never went quiet");
}

fn events(link: &mut Link) -> Vec<LinkEvent> {
    std::iter::from_fn(|| link.poll_event()).collect()
}

fn drain(link: &mut Link) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| link.poll_transmit()).collect()
}

fn established_pair(now: Instant) -> (Link, Link) {
    let (mut user, mut net) = pair();
    user.establish(now);
    exchange(&mut user, &mut net, now);
    assert_eq!(events(&mut user), [LinkEvent::Established]);
    assert_eq!(events(&mut net), [LinkEvent::Established]);
    (user, net)
}

#[test]
fn sabme_ua_establishes_both_ends() {
    let now = Instant::now();
    let (user, net) = established_pair(now);
    assert_eq!(user.state(), State::Established);
    assert_eq!(net.state(), State::Established);
    assert_eq!(user.next_timeout(), Some(now + Duration::from_secs(10)), "T203 runs");
}

#[test]
fn simultaneous_sabme_from_both_ends_settles() {
    let now = Instant::now();
    let (mut user, mut net) = pair();
    user.establish(now);
    net.establish(now);
    exchange(&mut user, &mut net, now);
    assert_eq!(user.state(), State::Established);
    assert_eq!(net.state(), State::Established);
    assert_eq!(events(&mut user), [LinkEvent::Established]);
    assert_eq!(events(&mut net), [LinkEvent::Established]);
}

#[test]
fn data_flows_both_ways_in_order_and_is_acknowledged() {
    let now = Instant::now();
    let (mut user, mut net) = established_pair(now);
    for i in 0..20u8 {
        user.send(vec![i], now).unwrap();
        net.send(vec![100 + i], now).unwrap();
    }
    exchange(&mut user, &mut net, now);
    let got: Vec<_> = events(&mut net);
    assert_eq!(got, (0..20u8).map(|i| LinkEvent::Data(vec![i])).collect::<Vec<_>>());
    let got: Vec<_> = events(&mut user);
    assert_eq!(got, (0..20u8).map(|i| LinkEvent::Data(vec![100 + i])).collect::<Vec<_>>());
    // Everything acknowledged: only T203 left.
    assert_eq!(user.next_timeout(), Some(now + Duration::from_secs(10)));
}

#[test]
fn window_limits_outstanding_frames_to_k() {
    let now = Instant::now();
    let (mut user, _net) = established_pair(now);
    for i in 0..10u8 {
        user.send(vec![i], now).unwrap();
    }
    assert_eq!(drain(&mut user).len(), 7);
}

#[test]
fn lost_i_frame_is_recovered_by_reject() {
    let now = Instant::now();
    let (mut user, mut net) = established_pair(now);
    user.send(vec![1], now).unwrap();
    user.send(vec![2], now).unwrap();
    let frames = drain(&mut user);
    assert_eq!(frames.len(), 2);
    // The first is lost on the line; the second arrives out of sequence.
    net.handle_frame(&frames[1], now);
    let reply = drain(&mut net);
    let rej = Frame::decode(&reply[0], Side::User).unwrap();
    assert_eq!(rej.control, Control::S { kind: Supervisory::Rej, nr: 0 });
    user.handle_frame(&reply[0], now);
    exchange(&mut user, &mut net, now);
    assert_eq!(events(&mut net), [LinkEvent::Data(vec![1]), LinkEvent::Data(vec![2])]);
}

#[test]
fn lost_acknowledgement_is_recovered_by_t200_enquiry() {
    let now = Instant::now();
    let (mut user, mut net) = established_pair(now);
    user.send(vec![7], now).unwrap();
    for f in drain(&mut user) {
        net.handle_frame(&f, now);
    }
    drain(&mut net); // the RR is lost
    let t200 = now + Duration::from_secs(1);
    assert_eq!(user.next_timeout(), Some(t200));
    user.handle_timeout(t200);
    assert_eq!(user.state(), State::TimerRecovery);
    exchange(&mut user, &mut net, t200);
    assert_eq!(user.state(), State::Established);
    assert_eq!(events(&mut net), [LinkEvent::Data(vec![7])], "delivered once");
}

#[test]
fn unanswered_sabme_gives_up_after_n200_retries() {
    let mut now = Instant::now();
    let (mut user, _) = pair();
    user.establish(now);
    let mut sent = drain(&mut user).len();
    for _ in 0..10 {
        let Some(at) = user.next_timeout() else { break };
        now = at;
        user.handle_timeout(now);
        sent += drain(&mut user).len();
    }
    assert_eq!(sent, 4, "first SABME and N200 = 3 retransmissions");
    assert_eq!(user.state(), State::TeiAssigned);
    assert_eq!(events(&mut user), [LinkEvent::Released]);
}

#[test]
fn silent_peer_is_detected_by_t203_then_n200_enquiries() {
    let mut now = Instant::now();
    let (mut user, _net) = established_pair(now);
    for _ in 0..20 {
        let Some(at) = user.next_timeout() else { break };
        now = at;
        user.handle_timeout(now);
        drain(&mut user);
        if user.state() == State::TeiAssigned {
            break;
        }
    }
    assert_eq!(user.state(), State::TeiAssigned);
    assert_eq!(events(&mut user), [LinkEvent::Released]);
}

#[test]
fn t203_keepalive_keeps_an_idle_link_up() {
    let now = Instant::now();
    let (mut user, mut net) = established_pair(now);
    let t203 = now + Duration::from_secs(10);
    user.handle_timeout(t203);
    net.handle_timeout(t203);
    exchange(&mut user, &mut net, t203);
    assert_eq!(user.state(), State::Established);
    assert_eq!(net.state(), State::Established);
    assert!(events(&mut user).is_empty());
}

#[test]
fn disc_releases_both_ends() {
    let now = Instant::now();
    let (mut user, mut net) = established_pair(now);
    net.release(now);
    exchange(&mut user, &mut net, now);
    assert_eq!(events(&mut user), [LinkEvent::Released]);
    assert_eq!(events(&mut net), [LinkEvent::Released]);
    assert_eq!(user.send(vec![1], now), Err(LinkError::NotEstablished(State::TeiAssigned)));
}

#[test]
fn physical_down_releases_and_stops_timers() {
    let now = Instant::now();
    let (mut user, _net) = established_pair(now);
    user.physical_down();
    assert_eq!(events(&mut user), [LinkEvent::Released]);
    assert_eq!(user.next_timeout(), None);
}

#[test]
fn random_frames_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(921);
    let now = Instant::now();
    let (mut user, mut net) = established_pair(now);
    for _ in 0..20_000 {
        let len = rng.random_range(0..12);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if len >= 2 && rng.random_bool(0.7) {
            bytes[0] &= 0x02; // SAPI 0, valid EA
            bytes[1] = 0x01; // TEI 0
        }
        user.handle_frame(&bytes, now);
        net.handle_frame(&bytes, now);
        drain(&mut user);
        drain(&mut net);
    }
}
