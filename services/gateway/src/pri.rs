//! One PRI D-channel: Q.921 link and Q.931 call control joined, still sans-IO. D-channel frames,
//! span alarms, application requests and time go in; frames to send and events come out.

use std::collections::VecDeque;
use std::time::Instant;

use log::{debug, info, warn};

use crate::alarms::Alarms;
use crate::q921::{self, Link, LinkEvent, Side};
use crate::q931::{dialplan::DialPlan, ie::Layer1, CallError, CallEvent, CallId, Layout, Message, Outgoing, Stack};
use holdfast_telephony::cause;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriEvent {
    /// The trunk can carry calls (D-channel up, span free of alarms) or no longer can.
    InService(bool),
    Call(CallEvent),
}

pub struct Pri {
    link: Link,
    stack: Stack,
    alarms: Alarms,
    reported_in_service: bool,
    events: VecDeque<PriEvent>,
}

impl Pri {
    pub fn new(side: Side, layout: Layout, law: Layer1) -> Pri {
        Pri {
            link: Link::new(side, q921::Config::default()),
            stack: Stack::new(side, layout, law),
            alarms: Alarms::NONE,
            reported_in_service: false,
            events: VecDeque::new(),
        }
    }

    /// The plan deciding when an overlap-dialled called number is complete.
    pub fn set_dial_plan(&mut self, plan: DialPlan) {
        self.stack.set_dial_plan(plan);
    }

    pub fn side(&self) -> Side {
        self.link.side()
    }

    /// Brings the D-channel up (both ends of a PRI send SABME).
    pub fn start(&mut self, now: Instant) {
        if self.alarms.in_service() {
            self.link.establish(now);
        }
    }

    pub fn in_service(&self) -> bool {
        self.alarms.in_service() && self.link.is_established()
    }

    pub fn free_channels(&self) -> usize {
        self.stack.free_channels()
    }

    pub fn channel(&self, call: CallId) -> Option<u8> {
        self.stack.channel(call)
    }

    pub fn handle_alarms(&mut self, alarms: Alarms, now: Instant) {
        let was = self.alarms.in_service();
        self.alarms = alarms;
        match (was, alarms.in_service()) {
            (true, false) => {
                warn!("pri: span alarm {alarms}: out of service");
                self.link.physical_down();
            }
            (false, true) => {
                info!("pri: span alarm cleared ({alarms}), bringing the D-channel up");
                self.link.establish(now);
            }
            _ => {}
        }
        self.process(now);
    }

    pub fn handle_dframe(&mut self, frame: &[u8], now: Instant) {
        self.link.handle_frame(frame, now);
        self.process(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.link.handle_timeout(now);
        self.stack.handle_timeout(now);
        self.process(now);
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        match (self.link.next_timeout(), self.stack.next_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A call out of the span; refused with a Q.850 cause when out of service or full.
    pub fn place_call(&mut self, req: Outgoing, now: Instant) -> Result<CallId, u8> {
        if !self.in_service() {
            return Err(cause::NETWORK_OUT_OF_ORDER);
        }
        let result = self.stack.place_call(req, now);
        self.process(now);
        result
    }

    pub fn alert(&mut self, call: CallId, now: Instant) -> Result<(), CallError> {
        let result = self.stack.alert(call);
        self.process(now);
        result
    }

    pub fn answer(&mut self, call: CallId, now: Instant) -> Result<(), CallError> {
        let result = self.stack.answer(call, now);
        self.process(now);
        result
    }

    pub fn hangup(&mut self, call: CallId, cause: u8, now: Instant) -> Result<(), CallError> {
        let result = self.stack.hangup(call, cause, now);
        self.process(now);
        result
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.link.poll_transmit()
    }

    pub fn poll_event(&mut self) -> Option<PriEvent> {
        self.events.pop_front()
    }

    /// Moves layer-2 indications into layer 3 and layer-3 messages into layer 2 until both rest.
    fn process(&mut self, now: Instant) {
        // Each pass consumes queued items; the bound only guards against a logic loop.
        for _ in 0..10_000 {
            let mut busy = false;
            while let Some(event) = self.link.poll_event() {
                busy = true;
                match event {
                    LinkEvent::Established => self.stack.link_restored(),
                    LinkEvent::Released => {
                        self.stack.link_failed(now);
                        if self.alarms.in_service() {
                            // A PRI keeps its D-channel up: try again, paced by T200.
                            self.link.establish(now);
                        }
                    }
                    LinkEvent::Data(bytes) => match Message::decode(&bytes) {
                        Ok(msg) => self.stack.handle_message(msg, now),
                        Err(e) => debug!("pri: undecodable layer-3 message: {e}"),
                    },
                }
            }
            while let Some(msg) = self.stack.poll_message() {
                busy = true;
                if let Err(e) = self.link.send(msg.encode(), now) {
                    warn!("pri: {:?} not sent: {e}", msg.kind);
                }
            }
            while let Some(event) = self.stack.poll_event() {
                busy = true;
                self.events.push_back(PriEvent::Call(event));
            }
            let in_service = self.in_service();
            if in_service != self.reported_in_service {
                self.reported_in_service = in_service;
                info!("pri: trunk {}", if in_service { "in service" } else { "out of service" });
                self.events.push_back(PriEvent::InService(in_service));
            }
            if !busy {
                return;
            }
        }
        warn!("pri: layer 2/3 exchange did not settle");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::q931::ie::{Cause, NumberingPlan, PartyNumber, TypeOfNumber};

    fn wire(a: &mut Pri, b: &mut Pri, now: Instant) {
        for _ in 0..1000 {
            let mut idle = true;
            while let Some(f) = a.poll_transmit() {
                b.handle_dframe(&f, now);
                idle = false;
            }
            while let Some(f) = b.poll_transmit() {
                a.handle_dframe(&f, now);
                idle = false;
            }
            if idle {
                return;
            }
        }
        panic!("never settled");
    }

    fn events(p: &mut Pri) -> Vec<PriEvent> {
        std::iter::from_fn(|| p.poll_event()).collect()
    }

    fn up(now: Instant) -> (Pri, Pri) {
        let mut user = Pri::new(Side::User, Layout::E1, Layer1::Alaw);
        let mut net = Pri::new(Side::Network, Layout::E1, Layer1::Alaw);
        user.start(now);
        net.start(now);
        wire(&mut user, &mut net, now);
        assert_eq!(events(&mut user), [PriEvent::InService(true)]);
        assert_eq!(events(&mut net), [PriEvent::InService(true)]);
        (user, net)
    }

    fn call() -> Outgoing {
        Outgoing {
            called: PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, "1"),
            calling: None,
            channel: None,
        }
    }

    #[test]
    fn red_alarm_clears_calls_and_recovery_brings_the_link_back() {
        let now = Instant::now();
        let (mut user, mut net) = up(now);
        let id = user.place_call(call(), now).unwrap();
        wire(&mut user, &mut net, now);
        events(&mut net);
        user.handle_alarms(Alarms::RED, now);
        let got = events(&mut user);
        assert!(got.contains(&PriEvent::InService(false)), "{got:?}");
        assert!(got.iter().any(|e| matches!(e, PriEvent::Call(CallEvent::Cleared { call, cause: c })
            if *call == id && c.value == cause::NETWORK_OUT_OF_ORDER)));
        assert_eq!(user.place_call(call(), now), Err(cause::NETWORK_OUT_OF_ORDER));
        assert_eq!(user.next_timeout(), None, "nothing runs on a dead line");
        user.handle_alarms(Alarms::NONE, now);
        wire(&mut user, &mut net, now);
        assert!(events(&mut user).contains(&PriEvent::InService(true)));
    }

    fn connected(user: &mut Pri, net: &mut Pri, now: Instant) -> (CallId, CallId) {
        let ours = user.place_call(call(), now).unwrap();
        wire(user, net, now);
        let theirs = match events(net).as_slice() {
            [PriEvent::Call(CallEvent::Incoming { call, .. })] => *call,
            other => panic!("{other:?}"),
        };
        net.answer(theirs, now).unwrap();
        wire(user, net, now);
        assert!(events(user).contains(&PriEvent::Call(CallEvent::Connected { call: ours })));
        events(net);
        (ours, theirs)
    }

    #[test]
    fn an_active_call_outlives_a_short_alarm_through_t309() {
        let now = Instant::now();
        let (mut user, mut net) = up(now);
        let (ours, theirs) = connected(&mut user, &mut net, now);
        user.handle_alarms(Alarms::RED, now);
        assert_eq!(events(&mut user), [PriEvent::InService(false)], "the call is kept");
        let back = now + std::time::Duration::from_secs(5);
        user.handle_timeout(back);
        user.handle_alarms(Alarms::NONE, back);
        wire(&mut user, &mut net, back);
        assert_eq!(events(&mut user), [PriEvent::InService(true)]);
        // The far end heard our STATUS (active, as it is) and keeps the call too.
        assert!(events(&mut net).iter().all(|e| !matches!(e, PriEvent::Call(_))));
        user.handle_timeout(back + std::time::Duration::from_secs(60));
        assert!(events(&mut user).is_empty());
        user.hangup(ours, cause::NORMAL_CLEARING, back).unwrap();
        wire(&mut user, &mut net, back);
        assert!(events(&mut net).iter().any(|e| matches!(e, PriEvent::Call(CallEvent::Cleared { call, cause: c })
            if *call == theirs && c.value == cause::NORMAL_CLEARING)));
    }

    #[test]
    fn a_long_alarm_clears_the_active_call_when_t309_runs_out() {
        let now = Instant::now();
        let (mut user, mut net) = up(now);
        let (ours, _) = connected(&mut user, &mut net, now);
        user.handle_alarms(Alarms::RED, now);
        events(&mut user);
        assert_eq!(user.next_timeout(), Some(now + std::time::Duration::from_secs(6)), "only T309 runs");
        user.handle_timeout(now + std::time::Duration::from_secs(6));
        assert_eq!(
            events(&mut user),
            [PriEvent::Call(CallEvent::Cleared { call: ours, cause: Cause::new(cause::DESTINATION_OUT_OF_ORDER) })]
        );
        assert_eq!(user.free_channels(), 30);
    }

    #[test]
    fn a_silent_peer_takes_the_trunk_out_of_service_and_it_keeps_trying() {
        let mut now = Instant::now();
        let (mut user, _net) = up(now);
        let mut out_at = None;
        for _ in 0..100 {
            let Some(at) = user.next_timeout() else { break };
            now = at;
            user.handle_timeout(now);
            while user.poll_transmit().is_some() {}
            if events(&mut user).contains(&PriEvent::InService(false)) {
                out_at = Some(now);
                break;
            }
        }
        assert!(out_at.is_some(), "T203 + N200 x T200 must end in out of service");
        assert!(user.next_timeout().is_some(), "re-establishment is attempted");
    }

    #[test]
    fn random_d_channel_frames_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x0921_0931);
        let now = Instant::now();
        let (mut user, mut net) = up(now);
        let mut ns = 0u8;
        for _ in 0..20_000 {
            // Well-formed I-frames in sequence, carrying random layer-3 bytes.
            let len = rng.random_range(0..30);
            let mut l3: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if len > 4 && rng.random_bool(0.8) {
                l3[0] = 0x08;
                l3[1] = 0x02;
            }
            let mut frame = vec![0x02, 0x01, ns << 1, 0];
            frame.extend_from_slice(&l3);
            ns = (ns + 1) % 128;
            user.handle_dframe(&frame, now);
            while user.poll_transmit().is_some() {}
            while net.poll_transmit().is_some() {}
            events(&mut user);
        }
    }
}
