//! The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).
use super::timer::{Timer, TimerConfig, TimerTable};
use super::{TxError, TxEvent};
use crate::message::Response;
use crate::transport::Protocol;
use std::collections::VecDeque;
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
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable,
    last_response: Option<Arc<Response>>,
    transmits: VecDeque<Arc<Response>>,
    events: VecDeque<TxEvent>,
}

impl ServerNonInvite {
    pub fn new(transport: Protocol, config: TimerConfig) -> Self {
        ServerNonInvite {
            state: ServerNonInviteState::Trying,
            reliable: transport.is_reliable(),
            config,
            timers: TimerTable::default(),
            last_response: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
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
            self.transmits.push_back(Arc::clone(response));
        }
    }

    pub fn send_response(&mut self, response: Response, now: Instant) -> Result<(), TxError> {
        if !matches!(self.state, ServerNonInviteState::Trying | ServerNonInviteState::Proceeding) {
            return Err(TxError::ResponseInState(self.state.name()));
        }
        match response.status {
            100..=199 => self.state = ServerNonInviteState::Proceeding,
            200..=699 => {
                let wait = self.config.timer_j(self.reliable);
                if wait.is_zero() {
                    self.transmits.push_back(Arc::new(response));
                    self.terminate();
                    return Ok(());
                }
                self.state = ServerNonInviteState::Completed;
                self.timers.set(Timer::J, now + wait);
            }
            status => return Err(TxError::BadStatus(status)),
        }
        let response = Arc::new(response);
        self.transmits.push_back(Arc::clone(&response));
        self.last_response = Some(response);
        Ok(())
    }

    pub fn on_transport_error(&mut self) {
        if self.state != ServerNonInviteState::Terminated {
            self.events.push_back(TxEvent::TransportError);
            self.terminate();
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.pop_expired(now) {
            if timer == Timer::J {
                self.terminate();
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
        self.state = ServerNonInviteState::Terminated;
        self.timers.stop_all();
        self.last_response = None;
        self.events.push_back(TxEvent::Terminated);
    }
}
