//! Per-call data: identity, Q.931 state, B-channel and the one running timer.

use std::fmt;
use std::time::Instant;

use super::ie::{Cause, PartyNumber};
use super::message::{CallRef, Message};
use super::timer::CallTimer;
use crate::q921::Side;

/// Our handle on a call, stable while the call reference may change (a glare retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u32);

impl CallId {
    /// Holds a B-channel out of service while it is being restarted (no call has this id).
    pub const MAINTENANCE: CallId = CallId(0);
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call#{}", self.0)
    }
}

/// Q.931 call states, named from this end's point of view: "outgoing" is a call we sent SETUP for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    Null,
    OutgoingInitiated,
    OutgoingProceeding,
    OutgoingDelivered,
    IncomingProceeding,
    /// SETUP ACKNOWLEDGE sent: collecting the called number from INFORMATION messages.
    OverlapReceiving,
    IncomingReceived,
    ConnectRequest,
    Active,
    /// We sent DISCONNECT.
    DisconnectRequest,
    /// We sent RELEASE.
    ReleaseRequest,
}

impl CallState {
    /// The call state value for the call state IE, numbered as the SDL of `side` numbers it.
    pub fn value(self, side: Side) -> u8 {
        match (side, self) {
            (_, CallState::Null) => 0,
            (Side::User, CallState::OutgoingInitiated) => 1,
            (Side::User, CallState::OutgoingProceeding) => 3,
            (Side::User, CallState::OutgoingDelivered) => 4,
            (Side::User, CallState::IncomingReceived) => 7,
            (Side::User, CallState::ConnectRequest) => 8,
            (Side::User, CallState::IncomingProceeding) => 9,
            (Side::User, CallState::OverlapReceiving) => 25,
            (Side::Network, CallState::OverlapReceiving) => 2,
            (Side::User, CallState::DisconnectRequest) => 11,
            (Side::Network, CallState::OutgoingInitiated) => 6,
            (Side::Network, CallState::OutgoingProceeding) => 9,
            (Side::Network, CallState::OutgoingDelivered) => 7,
            (Side::Network, CallState::IncomingProceeding) => 3,
            (Side::Network, CallState::IncomingReceived) => 4,
            (Side::Network, CallState::ConnectRequest) => 8,
            (Side::Network, CallState::DisconnectRequest) => 12,
            (_, CallState::Active) => 10,
            (_, CallState::ReleaseRequest) => 19,
        }
    }
}

#[derive(Debug)]
pub struct Call {
    pub id: CallId,
    pub cr: u16,
    /// We allocated the call reference (we sent the SETUP).
    pub originated_locally: bool,
    pub state: CallState,
    pub channel: Option<u8>,
    pub timer: Option<(CallTimer, Instant)>,
    /// Expiries of the running timer so far (T303 and T308 are retried once).
    pub expiries: u8,
    /// Cause to put in a RELEASE after T305.
    pub cause: Option<Cause>,
    /// The numbers of an incoming call, kept while its called number is being collected.
    pub called: Option<PartyNumber>,
    pub calling: Option<PartyNumber>,
    /// Our SETUP, kept for T303 retransmission and a retry on another channel.
    pub setup: Option<Message>,
    pub retries: u8,
    /// The application has been told the call ended (or ended it itself).
    pub finished: bool,
}

impl Call {
    pub fn call_ref(&self) -> CallRef {
        CallRef { value: self.cr, to_originator: !self.originated_locally }
    }

    pub fn start(&mut self, timer: CallTimer, now: Instant) {
        self.timer = Some((timer, now + timer.duration()));
        self.expiries = 0;
    }

    pub fn restart(&mut self, timer: CallTimer, now: Instant) {
        self.timer = Some((timer, now + timer.duration()));
    }

    pub fn stop_timer(&mut self) {
        self.timer = None;
    }
}
