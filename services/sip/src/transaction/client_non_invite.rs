//! The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).
use super::retransmit::{polled_through_core, Backoff, Retransmit};
use super::timer::{Timer, TimerConfig};
use super::TxEvent;
use crate::message::{Request, Response};
use crate::transport::Protocol;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

#[derive(Debug)]
pub struct ClientNonInvite {
    request: Arc<Request>,
    state: ClientNonInviteState,
    core: Retransmit<Request>,
}

impl ClientNonInvite {
    /// Starts the transaction: the request is queued for sending at once.
    pub fn new(request: Request, transport: Protocol, config: TimerConfig, now: Instant) -> Self {
        let request = Arc::new(request);
        let mut core = Retransmit::new(transport, config);
        core.start_client(&request, Timer::E, Timer::F, now);
        ClientNonInvite { request, state: ClientNonInviteState::Trying, core }
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
                let provisional = response.status < 200;
                self.core.emit(TxEvent::Response(response));
                if provisional {
                    self.state = ClientNonInviteState::Proceeding;
                    return;
                }
                let wait = self.core.config().wait_t4(self.core.reliable());
                self.state = match self.core.complete(&[Timer::E, Timer::F], Timer::K, wait, now) {
                    true => ClientNonInviteState::Completed,
                    false => ClientNonInviteState::Terminated,
                };
            }
            // Retransmitted finals are absorbed.
            ClientNonInviteState::Completed | ClientNonInviteState::Terminated => {}
        }
    }

    pub fn on_transport_error(&mut self) {
        if self.state != ClientNonInviteState::Terminated {
            self.state = ClientNonInviteState::Terminated;
            self.core.transport_error();
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.core.pop_expired(now) {
            match timer {
                Timer::E => {
                    // Trying doubles up to T2; Proceeding retransmits every T2.
                    let backoff = match self.state {
                        ClientNonInviteState::Trying => Backoff::DoubleToT2,
                        _ => Backoff::T2,
                    };
                    self.core.retransmit(Timer::E, &self.request, backoff, now);
                }
                Timer::F => {
                    self.state = ClientNonInviteState::Terminated;
                    self.core.time_out(&self.request);
                }
                Timer::K => {
                    self.state = ClientNonInviteState::Terminated;
                    self.core.terminate();
                }
                _ => {}
            }
        }
    }

    polled_through_core!(Request);
}
