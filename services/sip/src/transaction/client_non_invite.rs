//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).
use super::timer::{Timer, TimerConfig, TimerTable};
use super::TxEvent;
use crate::message::{Request, Response};
use crate::transport::Protocol;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct ClientNonInvite {
    /// Shared with the transmit queue: a retransmission copies no message.
    request: Arc<Request>,
    state: ClientNonInviteState,
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable,
    /// The interval Timer E was last armed with.
    retransmit_interval: Duration,
    transmits: VecDeque<Arc<Request>>,
    events: VecDeque<TxEvent>,
}

impl ClientNonInvite {
    /// Starts the transaction: the request is queued for sending at once.
    pub fn new(request: Request, transport: Protocol, config: TimerConfig, now: Instant) -> Self {
        let reliable = transport.is_reliable();
        let mut timers = TimerTable::default();
        timers.set(Timer::F, now + config.transaction_timeout());
        if !reliable {
            timers.set(Timer::E, now + config.t1());
        }
        let request = Arc::new(request);
        let mut transmits = VecDeque::with_capacity(1);
        transmits.push_back(Arc::clone(&request));
        ClientNonInvite {
            request,
            state: ClientNonInviteState::Trying,
            reliable,
            config,
            timers,
            retransmit_interval: config.t1(),
            transmits,
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    /// A response matched to this transaction (RFC 3261 §17.1.3).
    pub fn on_response(&mut self, response: Response, now: Instant) {
        match self.state {
            ClientNonInviteState::Trying | ClientNonInviteState::Proceeding => {
                if response.status < 200 {
                    self.state = ClientNonInviteState::Proceeding;
                    self.events.push_back(TxEvent::Response(response));
                    return;
                }
                self.events.push_back(TxEvent::Response(response));
                self.timers.stop(Timer::E);
                self.timers.stop(Timer::F);
                let wait = self.config.wait_t4(self.reliable);
                if wait.is_zero() {
                    self.terminate();
                } else {
                    self.state = ClientNonInviteState::Completed;
                    self.timers.set(Timer::K, now + wait);
                }
            }
            // Retransmitted finals are absorbed.
            ClientNonInviteState::Completed | ClientNonInviteState::Terminated => {}
        }
    }

    pub fn on_transport_error(&mut self) {
        if self.state != ClientNonInviteState::Terminated {
            self.events.push_back(TxEvent::TransportError);
            self.terminate();
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::E => {
                    self.transmits.push_back(Arc::clone(&self.request));
                    // Trying doubles up to T2; Proceeding retransmits every T2.
                    self.retransmit_interval = match self.state {
                        ClientNonInviteState::Trying => (self.retransmit_interval * 2).min(self.config.t2()),
                        _ => self.config.t2(),
                    };
                    self.timers.set(Timer::E, now + self.retransmit_interval);
                }
                Timer::F => {
                    self.events.push_back(TxEvent::TimedOut(self.request.response(408)));
                    self.terminate();
                }
                Timer::K => self.terminate(),
                _ => {}
            }
        }
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    pub fn poll_transmit(&mut self) -> Option<Arc<Request>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    fn terminate(&mut self) {
        self.state = ClientNonInviteState::Terminated;
        self.timers.stop_all();
        self.events.push_back(TxEvent::Terminated);
    }
}
