//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7).
use super::timer::{Timer, TimerConfig, TimerTable};
use super::{TxError, TxEvent};
use crate::message::{HeaderName, Method, Request, Response};
use crate::transport::Protocol;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    Proceeding,
    Completed,
    Confirmed,
    Terminated,
}

impl ServerInviteState {
    fn name(self) -> &'static str {
        match self {
            ServerInviteState::Proceeding => "Proceeding",
            ServerInviteState::Completed => "Completed",
            ServerInviteState::Confirmed => "Confirmed",
            ServerInviteState::Terminated => "Terminated",
        }
    }
}

#[derive(Debug)]
pub struct ServerInvite {
    state: ServerInviteState,
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable,
    /// What a retransmitted INVITE gets: the 100 (Trying), the latest provisional, then the final
    /// response.
    last_response: Arc<Response>,
    /// The interval Timer G was last armed with.
    retransmit_interval: Duration,
    transmits: VecDeque<Arc<Response>>,
    events: VecDeque<TxEvent>,
}

impl ServerInvite {
    /// Starts the transaction for `invite`. Its 100 (Trying), which stops the client's
    /// retransmissions, goes out only if the TU has not answered within 200 ms, or at once to a
    /// retransmitted INVITE (§17.2.1).
    pub fn new(invite: &Request, transport: Protocol, config: TimerConfig, now: Instant) -> Self {
        let mut trying = invite.response(100);
        // §8.2.6.1: a 100 echoes the Timestamp.
        if let Some(ts) = invite.headers.get(&HeaderName::Timestamp) {
            trying.headers.add(HeaderName::Timestamp, ts);
        }
        let mut timers = TimerTable::default();
        timers.set(Timer::Trying, now + config.trying_after());
        ServerInvite {
            state: ServerInviteState::Proceeding,
            reliable: transport.is_reliable(),
            config,
            timers,
            last_response: Arc::new(trying),
            retransmit_interval: config.t1(),
            transmits: VecDeque::with_capacity(2),
            events: VecDeque::new(),
        }
    }

    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// A request matched to this transaction (§17.2.3): a retransmitted INVITE or the ACK for a
    /// non-2xx final response.
    pub fn on_request(&mut self, request: &Request, now: Instant) {
        if request.method == Method::ACK {
            if self.state == ServerInviteState::Completed {
                self.timers.stop(Timer::G);
                self.timers.stop(Timer::H);
                let wait = self.config.wait_t4(self.reliable);
                if wait.is_zero() {
                    self.terminate();
                } else {
                    self.state = ServerInviteState::Confirmed;
                    self.timers.set(Timer::I, now + wait);
                }
            }
            return;
        }
        if matches!(self.state, ServerInviteState::Proceeding | ServerInviteState::Completed) {
            self.timers.stop(Timer::Trying);
            self.transmits.push_back(Arc::clone(&self.last_response));
        }
    }

    /// The TU's response. A 2xx ends the transaction (the TU retransmits it until the ACK comes,
    /// §13.3.1.4); 300-699 waits for the ACK.
    pub fn send_response(&mut self, response: Response, now: Instant) -> Result<(), TxError> {
        if self.state != ServerInviteState::Proceeding {
            return Err(TxError::ResponseInState(self.state.name()));
        }
        self.timers.stop(Timer::Trying);
        match response.status {
            100..=199 => {
                self.last_response = Arc::new(response);
                self.transmits.push_back(Arc::clone(&self.last_response));
            }
            200..=299 => {
                self.transmits.push_back(Arc::new(response));
                self.terminate();
            }
            300..=699 => {
                self.last_response = Arc::new(response);
                self.transmits.push_back(Arc::clone(&self.last_response));
                self.state = ServerInviteState::Completed;
                if !self.reliable {
                    self.timers.set(Timer::G, now + self.retransmit_interval);
                }
                self.timers.set(Timer::H, now + self.config.transaction_timeout());
            }
            status => return Err(TxError::BadStatus(status)),
        }
        Ok(())
    }

    pub fn on_transport_error(&mut self) {
        if self.state != ServerInviteState::Terminated {
            self.events.push_back(TxEvent::TransportError);
            self.terminate();
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::G => {
                    self.transmits.push_back(Arc::clone(&self.last_response));
                    self.retransmit_interval = (self.retransmit_interval * 2).min(self.config.t2());
                    self.timers.set(Timer::G, now + self.retransmit_interval);
                }
                Timer::H => {
                    self.events.push_back(TxEvent::AckTimedOut);
                    self.terminate();
                }
                Timer::I => self.terminate(),
                Timer::Trying => self.transmits.push_back(Arc::clone(&self.last_response)),
                _ => {}
            }
        }
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    pub fn poll_transmit(&mut self) -> Option<Arc<Response>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }

    fn terminate(&mut self) {
        self.state = ServerInviteState::Terminated;
        self.timers.stop_all();
        self.events.push_back(TxEvent::Terminated);
    }
}
