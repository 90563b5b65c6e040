//! The INVITE client transaction (RFC 3261 §17.1.1, Figure 5).
use super::derived_request::{ack_for, check_derivable};
use super::timer::{Timer, TimerConfig, TimerTable};
use super::TxEvent;
use crate::message::{HeaderError, HeaderName, Request, Response};
use crate::transport::Protocol;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    Calling,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct ClientInvite {
    /// Shared with the transmit queue: a retransmission copies no message.
    request: Arc<Request>,
    /// The ACK for a non-2xx final response, made when that response arrives (with its To).
    ack: Option<Arc<Request>>,
    state: ClientInviteState,
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable,
    /// The interval Timer A was last armed with.
    retransmit_interval: Duration,
    transmits: VecDeque<Arc<Request>>,
    events: VecDeque<TxEvent>,
}

impl ClientInvite {
    /// Starts the transaction: the INVITE is queued for sending at once. Fails when the INVITE
    /// lacks what its ACK must copy (Via, From, To, Call-ID, CSeq).
    pub fn new(request: Request, transport: Protocol, config: TimerConfig, now: Instant) -> Result<Self, HeaderError> {
        check_derivable(&request)?;
        let reliable = transport.is_reliable();
        let mut timers = TimerTable::default();
        timers.set(Timer::B, now + config.transaction_timeout());
        if !reliable {
            timers.set(Timer::A, now + config.t1());
        }
        let request = Arc::new(request);
        let mut transmits = VecDeque::with_capacity(1);
        transmits.push_back(Arc::clone(&request));
        Ok(ClientInvite {
            request,
            ack: None,
            state: ClientInviteState::Calling,
            reliable,
            config,
            timers,
            retransmit_interval: config.t1(),
            transmits,
            events: VecDeque::new(),
        })
    }

    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    /// A response matched to this transaction (RFC 3261 §17.1.3).
    pub fn on_response(&mut self, response: Response, now: Instant) {
        match self.state {
            ClientInviteState::Calling | ClientInviteState::Proceeding => match response.status {
                ..=199 => {
                    // Provisional: retransmissions stop, and Timer B only guards Calling.
                    self.state = ClientInviteState::Proceeding;
                    self.timers.stop(Timer::A);
                    self.timers.stop(Timer::B);
                    self.events.push_back(TxEvent::Response(response));
                }
                200..=299 => {
                    // The TU acknowledges a 2xx itself, end to end (§13.2.2.4).
                    self.events.push_back(TxEvent::Response(response));
                    self.terminate();
                }
                _ => {
                    // The INVITE was checked for what its ACK copies when the transaction began.
                    if let Ok(mut ack) = ack_for(&self.request) {
                        if let Some(to) = response.headers.get(&HeaderName::To) {
                            ack.headers.set(HeaderName::To, to);
                        }
                        let ack = Arc::new(ack);
                        self.transmits.push_back(Arc::clone(&ack));
                        self.ack = Some(ack);
                    }
                    self.events.push_back(TxEvent::Response(response));
                    self.timers.stop(Timer::A);
                    self.timers.stop(Timer::B);
                    let wait = self.config.timer_d(self.reliable);
                    if wait.is_zero() {
                        self.terminate();
                    } else {
                        self.state = ClientInviteState::Completed;
                        self.timers.set(Timer::D, now + wait);
                    }
                }
            },
            // A retransmitted final response means our ACK was lost.
            ClientInviteState::Completed if response.status >= 300 => {
                if let Some(ack) = &self.ack {
                    self.transmits.push_back(Arc::clone(ack));
                }
            }
            ClientInviteState::Completed | ClientInviteState::Terminated => {}
        }
    }

    /// The TU sent a CANCEL for this INVITE. Without a final response 64*T1 later the
    /// transaction gives up (§9.1), so a peer that never answers cannot keep it forever. (In
    /// Calling, Timer B is still running anyway.)
    pub fn on_cancel_sent(&mut self, now: Instant) {
        if self.state == ClientInviteState::Proceeding {
            self.timers.set(Timer::B, now + self.config.transaction_timeout());
        }
    }

    pub fn on_transport_error(&mut self) {
        if self.state != ClientInviteState::Terminated {
            self.events.push_back(TxEvent::TransportError);
            self.terminate();
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::A => {
                    self.transmits.push_back(Arc::clone(&self.request));
                    self.retransmit_interval *= 2;
                    self.timers.set(Timer::A, now + self.retransmit_interval);
                }
                Timer::B => {
                    self.events.push_back(TxEvent::TimedOut(self.request.response(408)));
                    self.terminate();
                }
                Timer::D => self.terminate(),
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
        self.state = ClientInviteState::Terminated;
        self.timers.stop_all();
        self.events.push_back(TxEvent::Terminated);
    }
}
