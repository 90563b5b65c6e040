//! The INVITE server transaction (RFC 3261 §17.2.1, Figure 7).
use super::retransmit::{polled_through_core, Backoff, Retransmit};
use super::timer::{Timer, TimerConfig};
use super::{TxError, TxEvent};
use crate::message::{HeaderName, Method, Request, Response};
use crate::transport::Protocol;
use std::sync::Arc;
use std::time::Instant;

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
    /// What a retransmitted INVITE gets: the 100 (Trying), the latest provisional, then the final
    /// response.
    last_response: Arc<Response>,
    core: Retransmit<Response>,
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
        let mut core = Retransmit::new(transport, config);
        core.set(Timer::Trying, now + config.trying_after());
        ServerInvite { state: ServerInviteState::Proceeding, last_response: Arc::new(trying), core }
    }

    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// A request matched to this transaction (§17.2.3): a retransmitted INVITE or the ACK for a
    /// non-2xx final response.
    pub fn on_request(&mut self, request: &Request, now: Instant) {
        if request.method == Method::ACK {
            if self.state == ServerInviteState::Completed {
                let wait = self.core.config().wait_t4(self.core.reliable());
                self.state = match self.core.complete(&[Timer::G, Timer::H], Timer::I, wait, now) {
                    true => ServerInviteState::Confirmed,
                    false => ServerInviteState::Terminated,
                };
            }
            return;
        }
        if matches!(self.state, ServerInviteState::Proceeding | ServerInviteState::Completed) {
            self.core.stop(Timer::Trying);
            self.core.send(Arc::clone(&self.last_response));
        }
    }

    /// The TU's response. A 2xx ends the transaction (the TU retransmits it until the ACK comes,
    /// §13.3.1.4); 300-699 waits for the ACK.
    pub fn send_response(&mut self, response: Response, now: Instant) -> Result<(), TxError> {
        if self.state != ServerInviteState::Proceeding {
            return Err(TxError::ResponseInState(self.state.name()));
        }
        self.core.stop(Timer::Trying);
        match response.status {
            100..=199 => {
                self.last_response = Arc::new(response);
                self.core.send(Arc::clone(&self.last_response));
            }
            200..=299 => {
                self.core.send(Arc::new(response));
                self.terminate();
            }
            300..=699 => {
                self.last_response = Arc::new(response);
                self.core.send(Arc::clone(&self.last_response));
                self.state = ServerInviteState::Completed;
                self.core.arm(Timer::G, now);
                let timeout = self.core.config().transaction_timeout();
                self.core.set(Timer::H, now + timeout);
            }
            status => return Err(TxError::BadStatus(status)),
        }
        Ok(())
    }

    pub fn on_transport_error(&mut self) {
        if self.state != ServerInviteState::Terminated {
            self.state = ServerInviteState::Terminated;
            self.core.transport_error();
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.core.pop_expired(now) {
            match timer {
                Timer::G => self.core.retransmit(Timer::G, &self.last_response, Backoff::DoubleToT2, now),
                Timer::H => {
                    self.core.emit(TxEvent::AckTimedOut);
                    self.terminate();
                }
                Timer::I => self.terminate(),
                Timer::Trying => self.core.send(Arc::clone(&self.last_response)),
                _ => {}
            }
        }
    }

    polled_through_core!(Response);

    fn terminate(&mut self) {
        self.state = ServerInviteState::Terminated;
        self.core.terminate();
    }
}
