//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).
use super::retransmit::{polled_through_core, Retransmit};
use super::timer::{Timer, TimerConfig};
use super::{TxError, TxEvent};
use crate::message::Response;
use crate::transport::Protocol;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

impl ServerNonInviteState {
    fn name(self) -> &'static str {
        match self {
            ServerNonInviteState::Trying => "Trying",
            ServerNonInviteState::Proceeding => "Proceeding",
            ServerNonInviteState::Completed => "Completed",
            ServerNonInviteState::Terminated => "Terminated",
        }
    }
}

/// Kept lean: the registrar holds one per REGISTER for 64*T1 on UDP. The request itself stays
/// with the TU; only the last response is kept, for retransmitted requests, shared with the
/// transmit queue rather than copied.
#[derive(Debug)]
pub struct ServerNonInvite {
    state: ServerNonInviteState,
    last_response: Option<Arc<Response>>,
    core: Retransmit<Response>,
}

impl ServerNonInvite {
    pub fn new(transport: Protocol, config: TimerConfig) -> Self {
        ServerNonInvite {
            state: ServerNonInviteState::Trying,
            last_response: None,
            core: Retransmit::new(transport, config),
        }
    }

    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    /// A retransmission of the request: answered with the last response, if any (in Trying the
    /// TU has not answered yet and the retransmission is dropped).
    pub fn on_request(&mut self) {
        if let (ServerNonInviteState::Proceeding | ServerNonInviteState::Completed, Some(response)) =
            (self.state, &self.last_response)
        {
            self.core.send(Arc::clone(response));
        }
    }

    pub fn send_response(&mut self, response: Response, now: Instant) -> Result<(), TxError> {
        if !matches!(self.state, ServerNonInviteState::Trying | ServerNonInviteState::Proceeding) {
            return Err(TxError::ResponseInState(self.state.name()));
        }
        match response.status {
            100..=199 => self.state = ServerNonInviteState::Proceeding,
            200..=699 => {
                let response = Arc::new(response);
                self.core.send(Arc::clone(&response));
                let wait = self.core.config().timer_j(self.core.reliable());
                if self.core.complete(&[], Timer::J, wait, now) {
                    self.state = ServerNonInviteState::Completed;
                    self.last_response = Some(response);
                } else {
                    self.ended();
                }
                return Ok(());
            }
            status => return Err(TxError::BadStatus(status)),
        }
        let response = Arc::new(response);
        self.core.send(Arc::clone(&response));
        self.last_response = Some(response);
        Ok(())
    }

    pub fn on_transport_error(&mut self) {
        if self.state != ServerNonInviteState::Terminated {
            self.ended();
            self.core.transport_error();
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.core.pop_expired(now) {
            if timer == Timer::J {
                self.ended();
                self.core.terminate();
            }
        }
    }

    polled_through_core!(Response);

    fn ended(&mut self) {
        self.state = ServerNonInviteState::Terminated;
        self.last_response = None;
    }
}
