//! The INVITE client transaction (RFC 3261 §17.1.1, Figure 5).
use super::derived_request::{ack_for, check_derivable};
use super::retransmit::{polled_through_core, Backoff, Retransmit};
use super::timer::{Timer, TimerConfig};
use super::TxEvent;
use crate::message::{HeaderError, HeaderName, Request, Response};
use crate::transport::Protocol;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    Calling,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct ClientInvite {
    request: Arc<Request>,
    /// The ACK for a non-2xx final response, made when that response arrives (with its To).
    ack: Option<Arc<Request>>,
    state: ClientInviteState,
    core: Retransmit<Request>,
}

impl ClientInvite {
    /// Starts the transaction: the INVITE is queued for sending at once. Fails when the INVITE
    /// lacks what its ACK must copy (Via, From, To, Call-ID, CSeq).
    pub fn new(request: Request, transport: Protocol, config: TimerConfig, now: Instant) -> Result<Self, HeaderError> {
        check_derivable(&request)?;
        let request = Arc::new(request);
        let mut core = Retransmit::new(transport, config);
        core.start_client(&request, Timer::A, Timer::B, now);
        Ok(ClientInvite { request, ack: None, state: ClientInviteState::Calling, core })
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
                    self.core.stop(Timer::A);
                    self.core.stop(Timer::B);
                    self.core.emit(TxEvent::Response(response));
                }
                200..=299 => {
                    // The TU acknowledges a 2xx itself, end to end (§13.2.2.4).
                    self.core.emit(TxEvent::Response(response));
                    self.terminate();
                }
                _ => {
                    // The INVITE was checked for what its ACK copies when the transaction began.
                    if let Ok(mut ack) = ack_for(&self.request) {
                        if let Some(to) = response.headers.get(&HeaderName::To) {
                            ack.headers.set(HeaderName::To, to);
                        }
                        let ack = Arc::new(ack);
                        self.core.send(Arc::clone(&ack));
                        self.ack = Some(ack);
                    }
                    self.core.emit(TxEvent::Response(response));
                    let wait = self.core.config().timer_d(self.core.reliable());
                    self.state = match self.core.complete(&[Timer::A, Timer::B], Timer::D, wait, now) {
                        true => ClientInviteState::Completed,
                        false => ClientInviteState::Terminated,
                    };
                }
            },
            // A retransmitted final response means our ACK was lost.
            ClientInviteState::Completed if response.status >= 300 => {
                if let Some(ack) = &self.ack {
                    self.core.send(Arc::clone(ack));
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
            let timeout = self.core.config().transaction_timeout();
            self.core.set(Timer::B, now + timeout);
        }
    }

    pub fn on_transport_error(&mut self) {
        if self.state != ClientInviteState::Terminated {
            self.state = ClientInviteState::Terminated;
            self.core.transport_error();
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.core.pop_expired(now) {
            match timer {
                Timer::A => self.core.retransmit(Timer::A, &self.request, Backoff::Double, now),
                Timer::B => {
                    self.state = ClientInviteState::Terminated;
                    self.core.time_out(&self.request);
                }
                Timer::D => self.terminate(),
                _ => {}
            }
        }
    }

    polled_through_core!(Request);

    fn terminate(&mut self) {
        self.state = ClientInviteState::Terminated;
        self.core.terminate();
    }
}
