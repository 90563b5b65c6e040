//! Q.931 basic call control for one PRI (§5), user or network side, as a sans-IO state machine:
//! decoded messages, application requests and time go in; messages to send and call events come out.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use log::{debug, info, warn};

use super::call::{Call, CallId, CallState};
use super::channels::{ChannelPool, Hunt, Layout};
use super::dialplan::{Completeness, DialPlan};
use super::ie::{BearerCapability, Cause, ChannelId, ChannelSelection, Ie, Layer1, PartyNumber, RestartClass};
use super::message::{CallRef, Message, MessageType};
use super::timer::{CallTimer, RESTART_ATTEMPTS, T316};
use crate::q921::Side;
use holdfast_telephony::cause;

/// A call to place on the span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub called: PartyNumber,
    pub calling: Option<PartyNumber>,
    /// A B-channel to ask for; the first free one otherwise.
    pub channel: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A SETUP arrived and was accepted on `channel` (CALL PROCEEDING already sent).
    Incoming { call: CallId, channel: u8, called: Option<PartyNumber>, calling: Option<PartyNumber> },
    Proceeding { call: CallId, channel: u8 },
    Alerting { call: CallId },
    Connected { call: CallId },
    /// The far end or the line ended the call; nothing more will be reported for it.
    Cleared { call: CallId, cause: Cause },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("no such call {0}")]
    UnknownCall(CallId),
    #[error("{call} is in state {state:?}")]
    WrongState { call: CallId, state: CallState },
}

pub struct Stack {
    side: Side,
    law: Layer1,
    pool: ChannelPool,
    calls: BTreeMap<CallId, Call>,
    /// (call reference value, allocated by us) -> call.
    by_cr: HashMap<(u16, bool), CallId>,
    next_id: u32,
    next_cr: u16,
    out: VecDeque<Message>,
    events: VecDeque<CallEvent>,
    /// Decides when an overlap-dialled number is complete; empty: every SETUP is.
    dial_plan: DialPlan,
    /// B-channels we sent RESTART for: T316's expiry and the RESTARTs sent so far.
    restarts: BTreeMap<u8, (Instant, u8)>,
}

impl Stack {
    pub fn new(side: Side, layout: Layout, law: Layer1) -> Stack {
        Stack {
            side,
            law,
            pool: ChannelPool::new(layout),
            calls: BTreeMap::new(),
            by_cr: HashMap::new(),
            next_id: 1,
            next_cr: 1,
            out: VecDeque::new(),
            events: VecDeque::new(),
            dial_plan: DialPlan::default(),
            restarts: BTreeMap::new(),
        }
    }

    /// Incoming SETUPs without sending complete are collected (overlap receiving) until the
    /// number is complete by this plan.
    pub fn set_dial_plan(&mut self, plan: DialPlan) {
        self.dial_plan = plan;
    }

    pub fn side(&self) -> Side {
        self.side
    }

    pub fn free_channels(&self) -> usize {
        self.pool.free_count()
    }

    pub fn call_state(&self, call: CallId) -> Option<CallState> {
        self.calls.get(&call).map(|c| c.state)
    }

    pub fn channel(&self, call: CallId) -> Option<u8> {
        self.calls.get(&call).and_then(|c| c.channel)
    }

    pub fn poll_message(&mut self) -> Option<Message> {
        self.out.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        let calls = self.calls.values().filter_map(|c| c.timer.map(|(_, at)| at));
        calls.chain(self.restarts.values().map(|(at, _)| *at)).min()
    }

    fn hunt(&self) -> Hunt {
        match self.side {
            Side::User => Hunt::Ascending,
            Side::Network => Hunt::Descending,
        }
    }

    fn new_call(&mut self, cr: u16, originated_locally: bool, state: CallState) -> CallId {
        let id = CallId(self.next_id);
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        self.by_cr.insert((cr, originated_locally), id);
        self.calls.insert(
            id,
            Call {
                id,
                cr,
                originated_locally,
                state,
                channel: None,
                timer: None,
                expiries: 0,
                cause: None,
                called: None,
                calling: None,
                setup: None,
                retries: 0,
                finished: false,
            },
        );
        id
    }

    fn allocate_cr(&mut self) -> u16 {
        for _ in 0..0x7FFF {
            let cr = self.next_cr;
            self.next_cr = if cr >= 0x7FFF { 1 } else { cr + 1 };
            if !self.by_cr.contains_key(&(cr, true)) {
                return cr;
            }
        }
        // 32767 calls on a 30-channel span cannot happen; reuse rather than fail.
        self.next_cr
    }

    /// Sends SETUP for a new call. Refused at once with a Q.850 cause when no B-channel is free.
    pub fn place_call(&mut self, req: Outgoing, now: Instant) -> Result<CallId, u8> {
        let cr = self.allocate_cr();
        let id = self.new_call(cr, true, CallState::OutgoingInitiated);
        let channel = match req.channel {
            Some(n) if self.pool.reserve(n, id).is_ok() => Some(n),
            Some(_) if self.side == Side::Network => None,
            _ => self.pool.reserve_any(id, self.hunt()),
        };
        let Some(channel) = channel else {
            self.forget(id);
            info!("q931: no B-channel free for an outgoing call");
            return Err(cause::NO_CIRCUIT_AVAILABLE);
        };
        let mut setup = Message::new(CallRef { value: cr, to_originator: false }, MessageType::Setup)
            .with(Ie::BearerCapability(BearerCapability::speech(self.law)))
            // The network side's choice is binding; the user side's is a preference (§5.1.2).
            .with(Ie::ChannelId(ChannelId {
                exclusive: self.side == Side::Network,
                selection: ChannelSelection::Channel(channel),
            }))
            .with(Ie::CalledParty(req.called))
            .with(Ie::SendingComplete);
        if let Some(calling) = req.calling {
            setup = setup.with(Ie::CallingParty(calling));
        }
        if let Some(call) = self.calls.get_mut(&id) {
            call.channel = Some(channel);
            call.start(CallTimer::T303, now);
            call.setup = Some(setup.clone());
        }
        info!("q931: {id} SETUP on B-channel {channel} (cr {cr})");
        self.out.push_back(setup);
        Ok(id)
    }

    /// ALERTING on an incoming call.
    pub fn alert(&mut self, id: CallId) -> Result<(), CallError> {
        let call = self.calls.get_mut(&id).ok_or(CallError::UnknownCall(id))?;
        if call.state != CallState::IncomingProceeding {
            return Err(CallError::WrongState { call: id, state: call.state });
        }
        call.state = CallState::IncomingReceived;
        let msg = Message::new(call.call_ref(), MessageType::Alerting);
        self.out.push_back(msg);
        Ok(())
    }

    /// CONNECT on an incoming call.
    pub fn answer(&mut self, id: CallId, now: Instant) -> Result<(), CallError> {
        let side = self.side;
        let call = self.calls.get_mut(&id).ok_or(CallError::UnknownCall(id))?;
        if !matches!(call.state, CallState::IncomingProceeding | CallState::IncomingReceived) {
            return Err(CallError::WrongState { call: id, state: call.state });
        }
        let msg = Message::new(call.call_ref(), MessageType::Connect);
        match side {
            // The user waits for CONNECT ACK; the network is active at once (§5.2.8).
            Side::User => {
                call.state = CallState::ConnectRequest;
                call.start(CallTimer::T313, now);
            }
            Side::Network => call.state = CallState::Active,
        }
        self.out.push_back(msg);
        if side == Side::Network {
            self.events.push_back(CallEvent::Connected { call: id });
        }
        Ok(())
    }

    /// Clears a call from this end with a Q.850 cause (DISCONNECT, §5.3.3).
    pub fn hangup(&mut self, id: CallId, cause_value: u8, now: Instant) -> Result<(), CallError> {
        let call = self.calls.get_mut(&id).ok_or(CallError::UnknownCall(id))?;
        call.finished = true;
        if matches!(call.state, CallState::Null | CallState::DisconnectRequest | CallState::ReleaseRequest) {
            return Ok(());
        }
        if matches!(call.timer, Some((CallTimer::T309, _))) {
            // No data link to clear it over: the far end's own T309 clears its side.
            info!("q931: {id} cleared locally while the data link is down");
            self.forget(id);
            return Ok(());
        }
        let cause = Cause { location: 0, value: cause_value, diagnostic: Vec::new() };
        let msg = Message::new(call.call_ref(), MessageType::Disconnect).with(Ie::Cause(cause.clone()));
        call.cause = Some(cause);
        call.state = CallState::DisconnectRequest;
        call.start(CallTimer::T305, now);
        info!("q931: {id} DISCONNECT cause {cause_value}");
        self.out.push_back(msg);
        Ok(())
    }

    /// Layer 2 is gone (span alarm, link failure, §5.8.9): active calls are kept for T309 in
    /// case the link comes back; every other call ends locally.
    pub fn link_failed(&mut self, now: Instant) {
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        for id in ids {
            let Some(call) = self.calls.get_mut(&id) else { continue };
            if call.state == CallState::Active {
                if !matches!(call.timer, Some((CallTimer::T309, _))) {
                    info!("q931: {id} active, kept for T309 while the data link is down");
                    call.start(CallTimer::T309, now);
                }
            } else {
                self.finish(id, Cause::new(cause::NETWORK_OUT_OF_ORDER));
                self.forget(id);
            }
        }
    }

    /// Layer 2 is back: calls kept by T309 go on, and the far end hears their state (§5.8.9).
    pub fn link_restored(&mut self) {
        let kept: Vec<CallId> = self
            .calls
            .values()
            .filter(|c| matches!(c.timer, Some((CallTimer::T309, _))))
            .map(|c| c.id)
            .collect();
        for id in kept {
            if let Some(call) = self.calls.get_mut(&id) {
                call.stop_timer();
            }
            info!("q931: {id} survived the data link failure");
            self.send_status(id, cause::NORMAL_UNSPECIFIED);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let restarts: Vec<(u8, u8)> =
            self.restarts.iter().filter(|(_, (at, _))| *at <= now).map(|(n, (_, sent))| (*n, *sent)).collect();
        for (channel, sent) in restarts {
            if sent < RESTART_ATTEMPTS {
                debug!("q931: T316 expired for B-channel {channel}, RESTART again");
                self.send_restart(channel, sent + 1, now);
            } else {
                // §5.5.1: no more calls on it; left to maintenance (a RESTART from the far end frees it).
                warn!("q931: B-channel {channel} never acknowledged {sent} RESTARTs, left out of service");
                self.restarts.remove(&channel);
            }
        }
        let due: Vec<(CallId, CallTimer)> = self
            .calls
            .values()
            .filter_map(|c| match c.timer {
                Some((t, at)) if at <= now => Some((c.id, t)),
                _ => None,
            })
            .collect();
        for (id, timer) in due {
            let Some(call) = self.calls.get_mut(&id) else { continue };
            call.timer = None;
            call.expiries = call.expiries.saturating_add(1);
            let first = call.expiries == 1;
            debug!("q931: {id} {timer:?} expired");
            match timer {
                CallTimer::T302 => {
                    let digits = call.called.as_ref().map(|c| c.digits.clone()).unwrap_or_default();
                    if self.dial_plan.complete_on_timeout(&digits) {
                        self.overlap_complete(id);
                    } else {
                        info!("q931: {id} number {digits:?} incomplete when T302 ran out");
                        let _ = self.hangup(id, cause::INVALID_NUMBER_FORMAT, now);
                    }
                }
                CallTimer::T309 => {
                    warn!("q931: {id} cleared: the data link did not come back within T309");
                    self.finish(id, Cause::new(cause::DESTINATION_OUT_OF_ORDER));
                    self.forget(id);
                }
                CallTimer::T303 if first => {
                    if let Some(setup) = call.setup.clone() {
                        call.restart(CallTimer::T303, now);
                        self.out.push_back(setup);
                    }
                }
                CallTimer::T303 => {
                    let msg = Message::new(call.call_ref(), MessageType::ReleaseComplete)
                        .with(Ie::Cause(Cause::new(cause::RECOVERY_ON_TIMER_EXPIRY)));
                    self.out.push_back(msg);
                    self.finish(id, Cause::new(cause::NO_USER_RESPONDING));
                    self.forget(id);
                }
                CallTimer::T310 | CallTimer::T313 => {
                    self.finish(id, Cause::new(cause::RECOVERY_ON_TIMER_EXPIRY));
                    // The call exists: hangup cannot fail here.
                    let _ = self.hangup(id, cause::RECOVERY_ON_TIMER_EXPIRY, now);
                }
                CallTimer::T305 => {
                    let cause = call.cause.clone().unwrap_or_else(|| Cause::new(cause::NORMAL_CLEARING));
                    self.send_release(id, Some(cause), now);
                }
                CallTimer::T308 if first => {
                    let release = Message::new(call.call_ref(), MessageType::Release)
                        .with(Ie::Cause(Cause::new(cause::RECOVERY_ON_TIMER_EXPIRY)));
                    call.restart(CallTimer::T308, now);
                    self.out.push_back(release);
                }
                CallTimer::T308 => {
                    // §5.3.4.3: the call reference is freed and the B-channel restarted, out of
                    // service until the far end acknowledges.
                    warn!("q931: {id} no RELEASE COMPLETE after two RELEASEs, restarting its channel");
                    let channel = call.channel;
                    self.finish(id, Cause::new(cause::RECOVERY_ON_TIMER_EXPIRY));
                    self.forget(id);
                    if let Some(n) = channel {
                        if self.pool.reserve(n, CallId::MAINTENANCE).is_ok() {
                            self.send_restart(n, 1, now);
                        }
                    }
                }
            }
        }
    }

    pub fn handle_message(&mut self, msg: Message, now: Instant) {
        if msg.call_ref.is_global() {
            self.handle_global(msg);
            return;
        }
        // The flag is set by the side that did not allocate the reference: then it is ours.
        let key = (msg.call_ref.value, msg.call_ref.to_originator);
        let Some(&id) = self.by_cr.get(&key) else {
            self.handle_unknown_cr(msg, now);
            return;
        };
        let Some(state) = self.calls.get(&id).map(|c| c.state) else { return };
        debug!("q931: {id} {:?} in {state:?}", msg.kind);
        match (msg.kind, state) {
            (MessageType::CallProceeding, CallState::OutgoingInitiated) => {
                if let Some(channel) = self.confirm_channel(id, &msg, now) {
                    self.set_state(id, CallState::OutgoingProceeding, Some(CallTimer::T310), now);
                    self.events.push_back(CallEvent::Proceeding { call: id, channel });
                }
            }
            (MessageType::Alerting, CallState::OutgoingInitiated | CallState::OutgoingProceeding) => {
                if self.confirm_channel(id, &msg, now).is_some() {
                    self.set_state(id, CallState::OutgoingDelivered, None, now);
                    self.events.push_back(CallEvent::Alerting { call: id });
                }
            }
            (
                MessageType::Connect,
                CallState::OutgoingInitiated | CallState::OutgoingProceeding | CallState::OutgoingDelivered,
            ) => {
                if self.confirm_channel(id, &msg, now).is_some() {
                    self.set_state(id, CallState::Active, None, now);
                    self.reply(id, MessageType::ConnectAck);
                    self.events.push_back(CallEvent::Connected { call: id });
                }
            }
            (MessageType::ConnectAck, CallState::ConnectRequest) => {
                self.set_state(id, CallState::Active, None, now);
                self.events.push_back(CallEvent::Connected { call: id });
            }
            // The network may acknowledge its own CONNECT's answer; harmless once active.
            (MessageType::ConnectAck, CallState::Active) => {}
            (MessageType::Progress | MessageType::SetupAck, s) if s != CallState::ReleaseRequest => {}
            (MessageType::Information, CallState::OverlapReceiving) => self.more_digits(id, &msg, now),
            // Outside overlap receiving INFORMATION carries nothing this stack acts on.
            (MessageType::Information, _) => {}
            (MessageType::Disconnect, CallState::ReleaseRequest) => {}
            (MessageType::Disconnect, _) => {
                let cause = msg.cause().cloned().unwrap_or_else(|| Cause::new(cause::NORMAL_UNSPECIFIED));
                info!("q931: {id} DISCONNECT from the far end, cause {}", cause.value);
                self.finish(id, cause);
                self.send_release(id, None, now);
            }
            (MessageType::Release, CallState::ReleaseRequest) => {
                // Both ends sent RELEASE (§5.3.5): done without RELEASE COMPLETE.
                self.forget(id);
            }
            (MessageType::Release, _) => {
                let cause = msg.cause().cloned().unwrap_or_else(|| Cause::new(cause::NORMAL_CLEARING));
                self.reply(id, MessageType::ReleaseComplete);
                self.finish(id, cause);
                self.forget(id);
            }
            (MessageType::ReleaseComplete, _) => {
                let cause = msg.cause().cloned().unwrap_or_else(|| Cause::new(cause::NORMAL_CLEARING));
                if state == CallState::OutgoingInitiated && self.retry_elsewhere(id, &cause, now) {
                    return;
                }
                self.finish(id, cause);
                self.forget(id);
            }
            (MessageType::StatusEnquiry, _) => self.send_status(id, cause::RESPONSE_TO_STATUS_ENQUIRY),
            (MessageType::Status, _) => {
                if msg.call_state() == Some(0) {
                    let cause = msg.cause().cloned().unwrap_or_else(|| Cause::new(cause::WRONG_MESSAGE_FOR_STATE));
                    warn!("q931: {id} far end has no such call, clearing");
                    self.finish(id, cause);
                    self.forget(id);
                }
            }
            (MessageType::Unknown(code), _) => {
                debug!("q931: {id} unknown message type {code:#04x}");
                self.send_status(id, cause::MESSAGE_TYPE_NONEXISTENT);
            }
            (kind, state) => {
                debug!("q931: {id} {kind:?} not expected in {state:?}");
                self.send_status(id, cause::WRONG_MESSAGE_FOR_STATE);
            }
        }
    }

    fn handle_unknown_cr(&mut self, msg: Message, now: Instant) {
        let reply_ref = CallRef { value: msg.call_ref.value, to_originator: !msg.call_ref.to_originator };
        match msg.kind {
            MessageType::Setup if !msg.call_ref.to_originator => self.incoming_setup(msg, now),
            MessageType::ReleaseComplete => {}
            MessageType::StatusEnquiry => self.out.push_back(
                Message::new(reply_ref, MessageType::Status)
                    .with(Ie::Cause(Cause::new(cause::RESPONSE_TO_STATUS_ENQUIRY)))
                    .with(Ie::CallState(0)),
            ),
            MessageType::Status if msg.call_state() == Some(0) => {}
            MessageType::Status => self.out.push_back(
                Message::new(reply_ref, MessageType::ReleaseComplete)
                    .with(Ie::Cause(Cause::new(cause::WRONG_MESSAGE_FOR_STATE))),
            ),
            _ => self.out.push_back(
                Message::new(reply_ref, MessageType::ReleaseComplete)
                    .with(Ie::Cause(Cause::new(cause::INVALID_CALL_REFERENCE))),
            ),
        }
    }

    fn incoming_setup(&mut self, msg: Message, now: Instant) {
        let reply_ref = CallRef { value: msg.call_ref.value, to_originator: true };
        let refuse = |stack: &mut Stack, value: u8| {
            info!("q931: refusing SETUP cr {} with cause {value}", reply_ref.value);
            stack
                .out
                .push_back(Message::new(reply_ref, MessageType::ReleaseComplete).with(Ie::Cause(Cause::new(value))));
        };
        if !msg.has_bearer_capability() {
            refuse(self, cause::MANDATORY_IE_MISSING);
            return;
        }
        let digits = msg.called().map(|c| c.digits.as_str()).unwrap_or_default();
        let complete = match msg.sending_complete() || self.dial_plan.is_empty() {
            true => Completeness::Complete,
            false => self.dial_plan.check(digits),
        };
        if complete == Completeness::Invalid {
            refuse(self, cause::UNALLOCATED_NUMBER);
            return;
        }
        let id = self.new_call(msg.call_ref.value, false, CallState::IncomingProceeding);
        let requested = msg.channel_id();
        let channel = match requested.map(|c| c.selection) {
            Some(ChannelSelection::Channel(n)) => {
                let exclusive = requested.is_some_and(|c| c.exclusive);
                self.channel_for_incoming(id, n, exclusive)
            }
            Some(ChannelSelection::NoChannel) => Err(cause::NO_CIRCUIT_AVAILABLE),
            Some(ChannelSelection::Any) | None => {
                self.pool.reserve_any(id, self.hunt()).ok_or(cause::NO_CIRCUIT_AVAILABLE)
            }
        };
        let channel = match channel {
            Ok(n) => n,
            Err(value) => {
                self.forget(id);
                refuse(self, value);
                return;
            }
        };
        let channel_ie = Ie::ChannelId(ChannelId { exclusive: true, selection: ChannelSelection::Channel(channel) });
        let Some(call) = self.calls.get_mut(&id) else { return };
        call.channel = Some(channel);
        call.called = msg.called().cloned();
        call.calling = msg.calling().cloned();
        if complete == Completeness::Complete {
            info!("q931: {id} incoming SETUP cr {} on B-channel {channel}", reply_ref.value);
            self.out.push_back(Message::new(reply_ref, MessageType::CallProceeding).with(channel_ie));
            self.proceed(id);
            return;
        }
        // The application hears of the call once its number is complete.
        call.finished = true;
        call.state = CallState::OverlapReceiving;
        call.start(CallTimer::T302, now);
        info!("q931: {id} incoming SETUP cr {} on B-channel {channel}, collecting digits", reply_ref.value);
        self.out.push_back(Message::new(reply_ref, MessageType::SetupAck).with(channel_ie));
    }

    /// INFORMATION while collecting the called number (§5.2.4).
    fn more_digits(&mut self, id: CallId, msg: &Message, now: Instant) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        if let Some(more) = msg.called() {
            match call.called.as_mut() {
                Some(called) => called.digits.push_str(&more.digits),
                None => call.called = Some(more.clone()),
            }
        }
        let digits = call.called.as_ref().map(|c| c.digits.clone()).unwrap_or_default();
        let complete = match msg.sending_complete() {
            true => Completeness::Complete,
            false => self.dial_plan.check(&digits),
        };
        match complete {
            Completeness::Complete => self.overlap_complete(id),
            Completeness::Incomplete => call.start(CallTimer::T302, now),
            Completeness::Invalid => {
                info!("q931: {id} number {digits:?} matches nothing in the dial plan");
                let _ = self.hangup(id, cause::UNALLOCATED_NUMBER, now);
            }
        }
    }

    /// The collected number is complete: CALL PROCEEDING, which names no channel since SETUP
    /// ACKNOWLEDGE did (§5.2.4).
    fn overlap_complete(&mut self, id: CallId) {
        self.reply(id, MessageType::CallProceeding);
        self.proceed(id);
    }

    /// The incoming call's number is complete and CALL PROCEEDING sent: the application hears of it.
    fn proceed(&mut self, id: CallId) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let Some(channel) = call.channel else { return };
        call.state = CallState::IncomingProceeding;
        call.stop_timer();
        call.finished = false;
        self.events.push_back(CallEvent::Incoming {
            call: id,
            channel,
            called: call.called.take(),
            calling: call.calling.take(),
        });
    }

    /// Channel selection for a SETUP asking for `n`, with glare resolved as §5.7 says: the
    /// network side's choice wins.
    fn channel_for_incoming(&mut self, id: CallId, n: u8, exclusive: bool) -> Result<u8, u8> {
        if !self.pool.layout().is_bchannel(n) {
            return Err(cause::CHANNEL_DOES_NOT_EXIST);
        }
        if self.pool.reserve(n, id).is_ok() {
            return Ok(n);
        }
        let holder = self.pool.owner(n).and_then(|h| self.calls.get(&h)).map(|c| (c.id, c.state));
        match (self.side, holder) {
            (Side::User, Some((ours, CallState::OutgoingInitiated))) => {
                // Our SETUP for the same channel crossed the network's: give the channel up; our
                // call was a preference and learns its channel from the network's answer.
                warn!("q931: glare on B-channel {n}: the network's call takes it from {ours}");
                if self.pool.take_over(n, id).is_ok() {
                    if let Some(call) = self.calls.get_mut(&ours) {
                        call.channel = None;
                    }
                    return Ok(n);
                }
                Err(cause::CHANNEL_NOT_AVAILABLE)
            }
            _ if exclusive => Err(cause::CHANNEL_NOT_AVAILABLE),
            _ => {
                if matches!(holder, Some((_, CallState::OutgoingInitiated))) {
                    warn!("q931: glare on B-channel {n}: keeping it, offering another");
                }
                self.pool.reserve_any(id, self.hunt()).ok_or(cause::NO_CIRCUIT_AVAILABLE)
            }
        }
    }

    /// Takes the channel the far end indicated in its first answer; clears the call if unusable.
    fn confirm_channel(&mut self, id: CallId, msg: &Message, now: Instant) -> Option<u8> {
        let current = self.calls.get(&id)?.channel;
        let indicated = match msg.channel_id().map(|c| c.selection) {
            Some(ChannelSelection::Channel(n)) => Some(n),
            _ => None,
        };
        let chosen = match (indicated, current) {
            (Some(n), Some(c)) if n == c => Some(n),
            (Some(n), _) if self.pool.reserve(n, id).is_ok() => {
                if let Some(old) = current {
                    self.pool.release(old, id);
                }
                Some(n)
            }
            (None, Some(c)) => Some(c),
            _ => None,
        };
        match chosen {
            Some(n) => {
                if let Some(call) = self.calls.get_mut(&id) {
                    call.channel = Some(n);
                }
                Some(n)
            }
            None => {
                warn!("q931: {id} far end indicated an unusable B-channel {indicated:?}");
                self.finish(id, Cause::new(cause::CHANNEL_UNACCEPTABLE));
                self.send_release(id, Some(Cause::new(cause::CHANNEL_UNACCEPTABLE)), now);
                None
            }
        }
    }

    /// The user side's SETUP was refused for its channel (§5.7 glare with an exclusive request or
    /// a busy channel): try once more on another free channel with a fresh call reference.
    fn retry_elsewhere(&mut self, id: CallId, cause: &Cause, now: Instant) -> bool {
        if self.side != Side::User || !matches!(cause.value, cause::CHANNEL_NOT_AVAILABLE | cause::NO_CIRCUIT_AVAILABLE) {
            return false;
        }
        let Some(call) = self.calls.get(&id) else { return false };
        if call.retries > 0 {
            return false;
        }
        let (old_cr, old_channel) = (call.cr, call.channel);
        let Some(setup) = call.setup.clone() else { return false };
        if let Some(old) = old_channel {
            self.pool.release(old, id);
        }
        let channel = self.free_channel_except(old_channel).and_then(|n| self.pool.reserve(n, id).ok().map(|_| n));
        let Some(channel) = channel else {
            if let Some(old) = old_channel {
                let _ = self.pool.reserve(old, id);
            }
            return false;
        };
        self.by_cr.remove(&(old_cr, true));
        let cr = self.allocate_cr();
        self.by_cr.insert((cr, true), id);
        let mut setup = setup;
        setup.call_ref = CallRef { value: cr, to_originator: false };
        for ie in &mut setup.ies {
            if let Ie::ChannelId(ci) = ie {
                ci.selection = ChannelSelection::Channel(channel);
            }
        }
        if let Some(call) = self.calls.get_mut(&id) {
            call.cr = cr;
            call.channel = Some(channel);
            call.retries += 1;
            call.setup = Some(setup.clone());
            call.start(CallTimer::T303, now);
        }
        info!("q931: {id} refused with cause {}, retrying on B-channel {channel}", cause.value);
        self.out.push_back(setup);
        true
    }

    fn free_channel_except(&self, except: Option<u8>) -> Option<u8> {
        let free = |n: &u8| self.pool.is_free(*n) && Some(*n) != except;
        match self.hunt() {
            Hunt::Ascending => self.pool.layout().bchannels().find(free),
            Hunt::Descending => self.pool.layout().bchannels().rev().find(free),
        }
    }

    /// RESTART for one B-channel (class indicated), T316 started (§5.5.1).
    fn send_restart(&mut self, channel: u8, attempt: u8, now: Instant) {
        info!("q931: RESTART B-channel {channel} (attempt {attempt})");
        let msg = Message::new(CallRef::GLOBAL, MessageType::Restart)
            .with(Ie::ChannelId(ChannelId { exclusive: true, selection: ChannelSelection::Channel(channel) }))
            .with(Ie::RestartIndicator(RestartClass::Indicated));
        self.restarts.insert(channel, (now + T316, attempt));
        self.out.push_back(msg);
    }

    fn handle_global(&mut self, msg: Message) {
        match msg.kind {
            MessageType::RestartAck => {
                let acked: Vec<u8> = match msg.channel_id().map(|c| c.selection) {
                    Some(ChannelSelection::Channel(n)) => vec![n],
                    _ => self.restarts.keys().copied().collect(),
                };
                for n in acked {
                    if self.restarts.remove(&n).is_some() {
                        info!("q931: B-channel {n} restarted, back in service");
                        self.pool.release(n, CallId::MAINTENANCE);
                    }
                }
            }
            MessageType::Restart => {
                let class = msg.ies.iter().find_map(|ie| match ie {
                    Ie::RestartIndicator(c) => Some(*c),
                    _ => None,
                });
                let channel = match msg.channel_id().map(|c| c.selection) {
                    Some(ChannelSelection::Channel(n)) => Some(n),
                    _ => None,
                };
                let victims: Vec<CallId> = self
                    .calls
                    .values()
                    .filter(|c| match class {
                        Some(RestartClass::Indicated) => channel.is_some() && c.channel == channel,
                        _ => true,
                    })
                    .map(|c| c.id)
                    .collect();
                info!("q931: RESTART {class:?} channel {channel:?}: clearing {} call(s)", victims.len());
                // The far end's restart returns the channels to service, ours included.
                let restarted: Vec<u8> = match (class, channel) {
                    (Some(RestartClass::Indicated), Some(n)) => vec![n],
                    (Some(RestartClass::Indicated), None) => Vec::new(),
                    _ => self.pool.layout().bchannels().collect(),
                };
                for n in restarted {
                    self.restarts.remove(&n);
                    self.pool.release(n, CallId::MAINTENANCE);
                }
                for id in victims {
                    self.finish(id, Cause::new(cause::TEMPORARY_FAILURE));
                    self.forget(id);
                }
                let mut ack = Message::new(CallRef { value: 0, to_originator: true }, MessageType::RestartAck);
                ack.ies = msg
                    .ies
                    .into_iter()
                    .filter(|ie| matches!(ie, Ie::ChannelId(_) | Ie::RestartIndicator(_)))
                    .collect();
                self.out.push_back(ack);
            }
            kind => debug!("q931: ignoring {kind:?} on the global call reference"),
        }
    }

    fn set_state(&mut self, id: CallId, state: CallState, timer: Option<CallTimer>, now: Instant) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.state = state;
            call.stop_timer();
            if let Some(t) = timer {
                call.start(t, now);
            }
        }
    }

    fn reply(&mut self, id: CallId, kind: MessageType) {
        if let Some(call) = self.calls.get(&id) {
            self.out.push_back(Message::new(call.call_ref(), kind));
        }
    }

    fn send_status(&mut self, id: CallId, cause_value: u8) {
        if let Some(call) = self.calls.get(&id) {
            let msg = Message::new(call.call_ref(), MessageType::Status)
                .with(Ie::Cause(Cause::new(cause_value)))
                .with(Ie::CallState(call.state.value(self.side)));
            self.out.push_back(msg);
        }
    }

    fn send_release(&mut self, id: CallId, cause: Option<Cause>, now: Instant) {
        let Some(call) = self.calls.get_mut(&id) else { return };
        let mut msg = Message::new(call.call_ref(), MessageType::Release);
        if let Some(cause) = cause {
            msg = msg.with(Ie::Cause(cause));
        }
        call.state = CallState::ReleaseRequest;
        call.start(CallTimer::T308, now);
        self.out.push_back(msg);
    }

    /// Reports the end of the call to the application, once.
    fn finish(&mut self, id: CallId, cause: Cause) {
        if let Some(call) = self.calls.get_mut(&id) {
            if !call.finished {
                call.finished = true;
                self.events.push_back(CallEvent::Cleared { call: id, cause });
            }
        }
    }

    /// Drops the call and frees its channel and call reference.
    fn forget(&mut self, id: CallId) {
        if let Some(call) = self.calls.remove(&id) {
            if let Some(n) = call.channel {
                self.pool.release(n, id);
            }
            self.by_cr.remove(&(call.cr, call.originated_locally));
        }
    }
}
