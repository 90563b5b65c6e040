//! One PRI D-channel: Q.921 link and Q.931 call control joined, still sans-IO. D-channel frames,
//! span alarms, application requests and time go in; frames to send and events come out.

use std::collections::VecDeque;
use std::time::Instant;

use log::{debug, info, warn};

use crate::alarms::Alarms;
use crate::q921::{self, Link, LinkEvent, Side};
use crate::q931::{cause, ie::Layer1, CallError, CallEvent, CallId, Layout, Message, Outgoing, Stack};

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
                    LinkEvent::Established => {}
                    LinkEvent::Released => {
                        self.stack.link_down(cause::NETWORK_OUT_OF_ORDER);
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
