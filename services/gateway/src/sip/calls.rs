//! The call layer: SIP messages, PRI events and time go in; SIP messages to send (`poll_outbound`)
//! and requests for the trunk and the RTP streams (`poll_action`) come out.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use log::{debug, info, warn};

use holdfast_media::g711::{PT_PCMA, PT_PCMU};
use holdfast_sip::message::{HeaderName, Message, Method, NameAddr, Request, Response, Uri};
use holdfast_sip::transaction::{Event, Inbound, TimerConfig, Transactions, TxEvent, TxId};
use holdfast_sip::driver::Outbound;
use holdfast_sip::transport::{Protocol, Source};

use holdfast_sip::Ids;
use holdfast_telephony::ack_wait::{AckDue, AckWait};
use holdfast_telephony::cause::{self, LOCATION_PRIVATE_LOCAL};
use holdfast_telephony::dialog::Dialog;
use holdfast_telephony::reason;
use holdfast_telephony::sdp::{self, Profile, SessionDescription};

use super::requests;
use super::trust::{self, Admission};
use super::ALLOW;
use crate::dahdi::Law;
use crate::pri::PriEvent;
use crate::q931::ie::{Cause, NumberingPlan, PartyNumber, Presentation, TypeOfNumber, PRESENTATION_RESTRICTED};
use crate::q931::{CallEvent, CallId, Outgoing};
use crate::rtp::{law_of, payload_type};
/// The o= user of our descriptions.
const ORIGIN: &str = "sba-gateway";

#[derive(Debug, Clone)]
pub struct SipConfig {
    /// Our SIP address: Via, Contact and From host.
    pub local: SocketAddr,
    /// sba-mediation, where PSTN calls are sent.
    pub mediation: SocketAddr,
    /// The span's G.711 law.
    pub law: Law,
    /// Our RTP address for each B-channel.
    pub rtp: HashMap<u8, SocketAddr>,
}

/// Names one call (SIP dialog plus PRI call) for the layer's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LegId(u64);

/// What the trunk and the RTP streams must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a SETUP; report the outcome with `Calls::on_placed`.
    Place { leg: LegId, request: Outgoing },
    Alert(CallId),
    Answer(CallId),
    Hangup { call: CallId, cause: u8 },
    /// Join B-channel `channel` to RTP at `remote` with G.711 `payload_type`.
    MediaStart { channel: u8, remote: SocketAddr, payload_type: u8 },
    MediaStop { channel: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// A PSTN call we offered to mediation (we are the UAC).
    Pstn,
    /// An INVITE from mediation we placed on the span (we are the UAS).
    Sip,
}

#[derive(Debug)]
struct Leg {
    origin: Origin,
    call_id: String,
    /// The INVITE: ours to mediation (UAC) or mediation's (UAS, to build responses from).
    invite: Request,
    /// UAS: from the INVITE on (our tag chosen). UAC: once mediation's 2xx came.
    dialog: Option<Dialog>,
    pri: Option<CallId>,
    channel: Option<u8>,
    /// The INVITE transaction, client or server, while it runs.
    invite_tx: Option<TxId>,
    /// UAS: the peer's audio and the codec chosen for it. UAC: the codec offered first.
    remote_audio: Option<(SocketAddr, u8)>,
    session: u64,
    alerted: bool,
    media: bool,
    /// The 2xx sent or received: the dialog is up.
    confirmed: bool,
    /// UAS: our 2xx, sent again until its ACK.
    retransmit: Option<AckWait>,
    /// The PSTN side is gone (with this cause) while the INVITE is still pending.
    abandoned: Option<u8>,
    /// UAC: the ACK for the 2xx, sent again as it was when the 2xx comes again.
    ack: Option<Request>,
}

pub struct Calls {
    config: SipConfig,
    txns: Transactions,
    ids: Ids,
    in_service: bool,
    next_leg: u64,
    legs: HashMap<LegId, Leg>,
    by_call_id: HashMap<String, LegId>,
    by_pri: HashMap<CallId, LegId>,
    by_tx: HashMap<TxId, LegId>,
    outbound: VecDeque<Outbound>,
    actions: VecDeque<Action>,
    /// SIP messages from anyone but mediation, refused.
    strangers: u64,
}

/// Digits a Q.931 party number may carry (IA5 0-9, `*`, `#`); anything else is refused in both
/// directions rather than copied into a SETUP or a SIP header.
fn dialable(digits: &str) -> bool {
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
}

fn digits_of(uri: &Uri) -> Option<String> {
    let raw = match uri {
        Uri::Sip(s) => s.user.clone()?,
        Uri::Tel(t) => t.number.clone(),
        Uri::Other(_) => return None,
    };
    // Visual separators of tel URIs go; user parameters after ';' are not part of the number.
    let number: String = raw.split(';').next()?.chars().filter(|c| !matches!(c, '-' | '.' | '(' | ')')).collect();
    dialable(number.strip_prefix('+').unwrap_or(&number)).then_some(number)
}

/// The caller's number: the asserted identity from mediation (RFC 3325) before From.
fn calling_number(request: &Request) -> Option<String> {
    let asserted = request.headers.get(&HeaderName::PAssertedIdentity);
    let asserted = asserted.and_then(|v| NameAddr::parse(v.split(',').next()?).ok()).and_then(|n| digits_of(&n.uri));
    asserted.or_else(|| request.from_header().ok().and_then(|f| digits_of(&f.uri)))
}

/// A number as SIP writes it (`+` first for E.164) as a Q.931 party number.
pub(crate) fn party(number: &str) -> PartyNumber {
    match number.strip_prefix('+') {
        Some(rest) => PartyNumber::new(TypeOfNumber::International, NumberingPlan::Isdn, rest),
        None => PartyNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, number),
    }
}

/// A Q.931 party number as SIP writes it; None unless its digits are dialable.
fn sip_number(number: &PartyNumber) -> Option<String> {
    if !dialable(&number.digits) {
        return None;
    }
    Some(match number.ton {
        TypeOfNumber::International => format!("+{}", number.digits),
        _ => number.digits.clone(),
    })
}

/// Presentation restricted (Q.931 octet 3a): the caller withheld its number.
fn restricted(number: &PartyNumber) -> bool {
    number.presentation.is_some_and(|p| p.presentation == PRESENTATION_RESTRICTED)
}

impl Calls {
    pub fn new(config: SipConfig, ids: Ids) -> Calls {
        Calls {
            config,
            txns: Transactions::new(TimerConfig::default()),
            ids,
            in_service: false,
            next_leg: 1,
            legs: HashMap::new(),
            by_call_id: HashMap::new(),
            by_pri: HashMap::new(),
            by_tx: HashMap::new(),
            outbound: VecDeque::new(),
            actions: VecDeque::new(),
            strangers: 0,
        }
    }

    /// SIP messages refused because they did not come from mediation.
    pub fn strangers(&self) -> u64 {
        self.strangers
    }

    pub fn active_calls(&self) -> usize {
        self.legs.len()
    }

    pub fn poll_outbound(&mut self) -> Option<Outbound> {
        self.outbound.pop_front()
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub fn next_timeout(&mut self) -> Option<Instant> {
        let retransmits = self.legs.values().filter_map(|l| Some(l.retransmit.as_ref()?.deadline()));
        retransmits.chain(self.txns.next_timeout()).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.txns.handle_timeout(now);
        let mut lost = Vec::new();
        for (id, leg) in &mut self.legs {
            let Some(wait) = leg.retransmit.as_mut() else { continue };
            match wait.handle_timeout(now) {
                AckDue::Nothing => {}
                AckDue::Retransmit(ok) => self.outbound.push_back(Outbound::Response(ok.clone())),
                AckDue::GaveUp => {
                    warn!("{}: no ACK for our 200 OK in 64*T1, ending the call", leg.call_id);
                    leg.retransmit = None;
                    lost.push(*id);
                }
            }
        }
        for id in lost {
            self.end(id, cause::RECOVERY_ON_TIMER_EXPIRY, true, true, now);
        }
        self.drain_transactions(now);
    }

    pub fn on_transport_error(&mut self, tx: TxId, now: Instant) {
        self.txns.on_transport_error(tx);
        self.drain_transactions(now);
    }

    pub fn on_message(&mut self, msg: Message, source: Source, now: Instant) {
        let admission = trust::admit(&msg, source.addr, self.config.mediation);
        if admission != Admission::Serve {
            self.strangers += 1;
            if self.strangers.is_power_of_two() {
                info!("SIP from {} refused: only mediation ({}) is served ({} so far)", source.addr, self.config.mediation, self.strangers);
            }
            if let (Admission::Refuse, Message::Request(request)) = (admission, msg) {
                self.outbound.push_back(Outbound::Response(request.response(403)));
            }
            return;
        }
        match msg {
            Message::Request(request) => match self.txns.on_request(request, source.transport, now) {
                Ok(Inbound::Request { id, request }) => self.on_request(id, request, source, now),
                Ok(Inbound::Cancel { id, request, invite }) => self.on_cancel(id, request, invite, now),
                Ok(Inbound::Ack(ack)) => self.on_ack(&ack),
                Ok(Inbound::Absorbed) => {}
                Err(e) => debug!("request from {} refused by the transaction layer: {e}", source.addr),
            },
            Message::Response(response) => {
                if let Some(stray) = self.txns.on_response(response, now) {
                    self.on_stray_response(stray);
                }
            }
        }
        self.drain_transactions(now);
    }

    /// The outcome of an `Action::Place`.
    pub fn on_placed(&mut self, id: LegId, result: Result<CallId, u8>, now: Instant) {
        let Some(leg) = self.legs.get_mut(&id) else { return };
        match result {
            Ok(call) => {
                leg.pri = Some(call);
                self.by_pri.insert(call, id);
                if let Some(c) = leg.abandoned {
                    self.end(id, c, false, true, now);
                }
            }
            Err(c) => {
                info!("{}: the span refused the call with cause {c}", leg.call_id);
                self.end(id, c, false, false, now);
            }
        }
        self.drain_transactions(now);
    }

    pub fn on_pri(&mut self, event: PriEvent, now: Instant) {
        match event {
            PriEvent::InService(up) => self.in_service = up,
            PriEvent::Call(CallEvent::Incoming { call, channel, called, calling }) => {
                self.offer_to_mediation(call, channel, called, calling, now)
            }
            PriEvent::Call(CallEvent::Proceeding { call, channel }) => {
                if let Some(leg) = self.by_pri.get(&call).and_then(|id| self.legs.get_mut(id)) {
                    leg.channel = Some(channel);
                }
            }
            PriEvent::Call(CallEvent::Alerting { call }) => self.alerting(call, now),
            PriEvent::Call(CallEvent::Connected { call }) => self.connected(call, now),
            PriEvent::Call(CallEvent::Cleared { call, cause: c }) => {
                if let Some(id) = self.by_pri.remove(&call) {
                    if let Some(leg) = self.legs.get_mut(&id) {
                        leg.pri = None;
                    }
                    self.pstn_cleared(id, &c, now);
                }
            }
        }
        self.drain_transactions(now);
    }

    fn new_leg(&mut self, leg: Leg) -> LegId {
        let id = LegId(self.next_leg);
        self.next_leg += 1;
        self.by_call_id.insert(leg.call_id.clone(), id);
        if let Some(tx) = leg.invite_tx {
            self.by_tx.insert(tx, id);
        }
        self.legs.insert(id, leg);
        id
    }

    fn respond(&mut self, tx: TxId, response: Response, now: Instant) {
        if let Err(e) = self.txns.send_response(tx, response, now) {
            debug!("response not sent: {e}");
        }
    }

    /// A response of the leg's INVITE with our To tag.
    fn leg_response(leg: &Leg, status: u16) -> Option<Response> {
        let mut r = leg.invite.response(status);
        r.headers.set(HeaderName::To, leg.dialog.as_ref()?.local.clone());
        Some(r)
    }

    fn on_request(&mut self, tx: TxId, request: Request, source: Source, now: Instant) {
        let method = request.method.clone();
        if method == Method::INVITE {
            let in_dialog = request.to_header().ok().and_then(|t| t.tag().map(str::to_owned)).is_some();
            if in_dialog {
                // Re-INVITEs (hold, session refresh) are not supported; the call goes on as it was.
                return self.respond(tx, request.response(488), now);
            }
            return self.on_invite(tx, request, source, now);
        }
        if method == Method::BYE {
            let Some(id) = self.leg_of(&request) else { return self.respond(tx, request.response(481), now) };
            self.respond(tx, request.response(200), now);
            let c = reason::q850_cause(&request.headers).unwrap_or(cause::NORMAL_CLEARING);
            info!("{}: BYE from mediation (cause {c})", request.call_id().unwrap_or_default());
            return self.end(id, c, false, true, now);
        }
        if method == Method::OPTIONS {
            let mut r = request.response(if self.in_service { 200 } else { 503 });
            r.headers.add(HeaderName::Allow, ALLOW);
            return self.respond(tx, r, now);
        }
        let mut r = request.response(405);
        r.headers.add(HeaderName::Allow, ALLOW);
        self.respond(tx, r, now);
    }

    fn refuse(&mut self, tx: TxId, request: &Request, status: u16, c: u8, now: Instant) {
        let mut r = request.response(status);
        r.headers.add(HeaderName::Reason, reason::q850(c, None));
        self.respond(tx, r, now);
    }

    /// An INVITE from mediation: checked, then offered to the span.
    fn on_invite(&mut self, tx: TxId, request: Request, source: Source, now: Instant) {
        let Ok(call_id) = request.call_id().map(str::to_owned) else { return self.respond(tx, request.response(400), now) };
        if self.by_call_id.contains_key(&call_id) {
            return self.respond(tx, request.response(482), now);
        }
        if !self.in_service {
            info!("{call_id}: trunk unavailable (span alarm or D-channel down), 503");
            return self.refuse(tx, &request, 503, cause::NETWORK_OUT_OF_ORDER, now);
        }
        let offer = SessionDescription::parse(&request.body);
        let audio = match offer.as_ref().map_err(Clone::clone).and_then(|o| o.audio(Some(&Profile::Avp))) {
            Ok(a) => a,
            Err(e) => {
                info!("{call_id}: unusable offer ({e}), 488");
                return self.refuse(tx, &request, 488, cause::INTERWORKING, now);
            }
        };
        let chosen = sdp::choose_g711(&audio.media.payload_types(), payload_type(self.config.law));
        let (Some(remote), Some(pt)) = (audio.address(), chosen) else {
            info!("{call_id}: no G.711 audio with an address in the offer, 488");
            return self.refuse(tx, &request, 488, cause::INTERWORKING, now);
        };
        let Some(called) = digits_of(&request.uri) else {
            info!("{call_id}: {} carries no dialable number, 484", request.uri);
            return self.refuse(tx, &request, 484, cause::INVALID_NUMBER_FORMAT, now);
        };
        let calling = calling_number(&request);
        let withheld = holdfast_telephony::privacy::withheld(&request);
        let tag = self.ids.tag();
        // Without From, To or a Contact no dialog can be formed (RFC 3261 §8.1.1.8).
        let Some(dialog) = Dialog::as_uas(&request, &tag, source.addr, source.transport) else {
            return self.respond(tx, request.response(400), now);
        };
        info!("{call_id}: INVITE from mediation for {called}, codec PT {pt}");
        let mut calling = calling.as_deref().map(party);
        if let (true, Some(c)) = (withheld, calling.as_mut()) {
            c.presentation = Some(Presentation { presentation: PRESENTATION_RESTRICTED, screening: 0 });
        }
        let outgoing = Outgoing { called: party(&called), calling, channel: None };
        let session = self.ids.next_u32().into();
        let id = self.new_leg(Leg {
            origin: Origin::Sip,
            call_id,
            invite: request,
            dialog: Some(dialog),
            pri: None,
            channel: None,
            invite_tx: Some(tx),
            remote_audio: Some((remote, pt)),
            session,
            alerted: false,
            media: false,
            confirmed: false,
            retransmit: None,
            abandoned: None,
            ack: None,
        });
        self.actions.push_back(Action::Place { leg: id, request: outgoing });
    }

    fn on_cancel(&mut self, tx: TxId, request: Request, invite: Option<TxId>, now: Instant) {
        let id = invite.and_then(|i| self.by_tx.get(&i).copied());
        let pending = id.and_then(|id| self.legs.get(&id)).is_some_and(|l| l.origin == Origin::Sip && !l.confirmed);
        let (Some(id), true) = (id, pending) else { return self.respond(tx, request.response(481), now) };
        self.respond(tx, request.response(200), now);
        let c = reason::q850_cause(&request.headers).unwrap_or(cause::NORMAL_CLEARING);
        info!("{}: CANCEL from mediation", request.call_id().unwrap_or_default());
        let Some(leg) = self.legs.get_mut(&id) else { return };
        // The INVITE's final response is the 487; `end` owes none after it.
        let (invite_tx, terminated) = (leg.invite_tx.take(), Self::leg_response(leg, 487));
        if leg.pri.is_none() {
            // The SETUP is on its way: hang up once the trunk says which call it is.
            leg.abandoned = Some(c);
        } else {
            self.end(id, c, false, true, now);
        }
        if let (Some(tx), Some(r)) = (invite_tx, terminated) {
            self.respond(tx, r, now);
        }
    }

    fn on_ack(&mut self, ack: &Request) {
        if let Some(leg) = self.leg_of(ack).and_then(|id| self.legs.get_mut(&id)) {
            leg.retransmit = None;
        }
    }

    /// The leg whose dialog an in-dialog request belongs to by its full dialog id (Call-ID
    /// and both tags, RFC 3261 §12.2.2), not by its Call-ID alone.
    fn leg_of(&self, request: &Request) -> Option<LegId> {
        let id = self.by_call_id.get(request.call_id().ok()?).copied()?;
        self.legs.get(&id)?.dialog.as_ref()?.owns(request).then_some(id)
    }

    /// A 2xx retransmitted after our INVITE transaction ended: the ACK was lost, send it again.
    fn on_stray_response(&mut self, response: Response) {
        let is_invite_2xx =
            (200..300).contains(&response.status) && response.cseq().is_ok_and(|c| c.method == Method::INVITE);
        let id = response.call_id().ok().and_then(|c| self.by_call_id.get(c).copied());
        if let (true, Some(leg)) = (is_invite_2xx, id.and_then(|id| self.legs.get(&id))) {
            if let (Some(request), Some(d)) = (leg.ack.clone(), leg.dialog.as_ref()) {
                self.outbound.push_back(Outbound::Request { request, dest: d.dest, transport: Protocol::Udp });
            }
        }
    }

    /// A SETUP from the PSTN: an INVITE to mediation with the called number.
    fn offer_to_mediation(
        &mut self,
        call: CallId,
        channel: u8,
        called: Option<PartyNumber>,
        calling: Option<PartyNumber>,
        now: Instant,
    ) {
        let (Some(called), Some(local_rtp)) = (called.as_ref().and_then(sip_number), self.config.rtp.get(&channel)) else {
            info!("{call}: no dialable called number, refusing");
            self.actions.push_back(Action::Hangup { call, cause: cause::INVALID_NUMBER_FORMAT });
            return;
        };
        let session: u64 = self.ids.next_u32().into();
        // The span's law first: a peer that takes the first codec needs no conversion.
        let ours = payload_type(self.config.law);
        let other = if ours == PT_PCMU { PT_PCMA } else { PT_PCMU };
        let offer = SessionDescription::g711(ORIGIN, session, *local_rtp, &[ours, other]).to_string();
        let withheld = calling.as_ref().is_some_and(restricted);
        let calling = calling.as_ref().and_then(sip_number);
        let (local, mediation) = (self.config.local, self.config.mediation);
        let caller = requests::Caller { number: calling.as_deref(), withheld };
        let invite = requests::invite(local, mediation, &called, caller, offer, &mut self.ids);
        let call_id = invite.call_id().unwrap_or_default().to_owned();
        info!("{call} on B-channel {channel}: INVITE {called} to mediation ({call_id})");
        let tx = match self.txns.send_request(invite.clone(), mediation, Protocol::Udp, now) {
            Ok(tx) => tx,
            Err(e) => {
                warn!("{call}: INVITE not started: {e}");
                self.actions.push_back(Action::Hangup { call, cause: cause::TEMPORARY_FAILURE });
                return;
            }
        };
        let id = self.new_leg(Leg {
            origin: Origin::Pstn,
            call_id,
            invite,
            dialog: None,
            pri: Some(call),
            channel: Some(channel),
            invite_tx: Some(tx),
            remote_audio: None,
            session,
            alerted: false,
            media: false,
            confirmed: false,
            retransmit: None,
            abandoned: None,
            ack: None,
        });
        self.by_pri.insert(call, id);
    }

    fn alerting(&mut self, call: CallId, now: Instant) {
        let Some(&id) = self.by_pri.get(&call) else { return };
        let Some(leg) = self.legs.get_mut(&id) else { return };
        if leg.origin != Origin::Sip || leg.alerted {
            return;
        }
        leg.alerted = true;
        let (tx, ringing) = (leg.invite_tx, Self::leg_response(leg, 180));
        if let (Some(tx), Some(ringing)) = (tx, ringing) {
            self.respond(tx, ringing, now);
        }
    }

    /// The PSTN answered a call from mediation: 200 OK with our SDP answer, audio flows.
    fn connected(&mut self, call: CallId, now: Instant) {
        let Some(&id) = self.by_pri.get(&call) else { return };
        let Some(leg) = self.legs.get_mut(&id) else { return };
        if leg.origin != Origin::Sip || leg.confirmed {
            return;
        }
        let (Some(channel), Some((remote, pt))) = (leg.channel, leg.remote_audio) else { return };
        let Some(local_rtp) = self.config.rtp.get(&channel) else { return };
        let Some(mut ok) = Self::leg_response(leg, 200) else { return };
        ok.headers.add(HeaderName::Contact, requests::contact(self.config.local));
        ok.headers.add(HeaderName::ContentType, "application/sdp");
        ok.body = SessionDescription::g711(ORIGIN, leg.session, *local_rtp, &[pt]).to_bytes();
        leg.confirmed = true;
        leg.media = true;
        // Unreliable transports need the 2xx retransmitted until the ACK (§13.3.1.4).
        leg.retransmit = Some(AckWait::new(ok.clone(), &self.txns.timers(), now));
        info!("{}: answered on B-channel {channel}, 200 OK", leg.call_id);
        if let Some(tx) = leg.invite_tx {
            self.respond(tx, ok, now);
        }
        self.actions.push_back(Action::MediaStart { channel, remote, payload_type: pt });
    }

    /// The PSTN side ended (the far end cleared, or the line failed).
    fn pstn_cleared(&mut self, id: LegId, c: &Cause, now: Instant) {
        let Some(leg) = self.legs.get_mut(&id) else { return };
        info!("{}: PSTN cleared with cause {}", leg.call_id, c.value);
        match (leg.origin, leg.confirmed) {
            (Origin::Sip, false) => {
                // The final response goes here, with the cause's own location; `end` owes none.
                let status = cause::sip_status_at(c.value, c.location);
                if let (Some(tx), Some(mut r)) = (leg.invite_tx.take(), Self::leg_response(leg, status)) {
                    r.headers.add(HeaderName::Reason, reason::q850(c.value, None));
                    self.respond(tx, r, now);
                }
                self.end(id, c.value, false, false, now);
            }
            (Origin::Pstn, false) => {
                // The INVITE is pending: CANCEL it; a 2xx that crosses the CANCEL gets ACK + BYE.
                leg.abandoned = Some(c.value);
                if let Some(tx) = leg.invite_tx {
                    if let Err(e) = self.txns.cancel(tx, now) {
                        debug!("CANCEL not sent: {e}");
                    }
                }
            }
            (_, true) => self.end(id, c.value, true, false, now),
        }
    }

    /// The response to our INVITE to mediation.
    fn on_invite_response(&mut self, id: LegId, response: Response, now: Instant) {
        let Some(leg) = self.legs.get_mut(&id) else { return };
        let status = response.status;
        if status < 200 {
            if (180..=183).contains(&status) && !leg.alerted && leg.abandoned.is_none() {
                leg.alerted = true;
                if let Some(call) = leg.pri {
                    self.actions.push_back(Action::Alert(call));
                }
            }
            return;
        }
        if status >= 300 {
            leg.invite_tx = None;
            let c = reason::q850_cause(&response.headers).unwrap_or_else(|| cause::for_sip_status(status));
            info!("{}: mediation answered {status}, clearing with cause {c}", leg.call_id);
            return self.end(id, c, false, true, now);
        }
        if leg.confirmed {
            return;
        }
        let Some(d) = Dialog::as_uac(&leg.invite, &response, self.config.mediation, Protocol::Udp) else {
            warn!("{}: a 2xx without a usable To, ending the call", leg.call_id);
            leg.invite_tx = None;
            return self.end(id, cause::INTERWORKING, false, true, now);
        };
        leg.confirmed = true;
        let ack = d.ack(d.local_cseq, self.config.local, &mut self.ids);
        leg.ack = Some(ack.clone());
        self.outbound.push_back(Outbound::Request { request: ack, dest: d.dest, transport: Protocol::Udp });
        leg.dialog = Some(d);
        if let Some(c) = leg.abandoned {
            return self.end(id, c, true, false, now);
        }
        let answer = SessionDescription::parse(&response.body).ok();
        let chosen = answer.as_ref().and_then(|a| a.audio(Some(&Profile::Avp)).ok()).and_then(|a| {
            Some((a.address()?, a.media.payload_types().into_iter().find(|pt| law_of(*pt).is_some())?))
        });
        let (Some(call), Some(channel)) = (leg.pri, leg.channel) else { return };
        match chosen {
            Some((remote, pt)) => {
                info!("{}: answered by mediation, CONNECT on B-channel {channel}, codec PT {pt}", leg.call_id);
                leg.media = true;
                leg.remote_audio = Some((remote, pt));
                self.actions.push_back(Action::Answer(call));
                self.actions.push_back(Action::MediaStart { channel, remote, payload_type: pt });
            }
            None => {
                warn!("{}: the answer has no usable G.711 audio, ending the call", leg.call_id);
                self.end(id, cause::INTERWORKING, true, true, now);
            }
        }
    }

    /// Ends a leg: BYE to mediation when `bye` (the dialog is up), hangup on the span when
    /// `hangup` (the PSTN call is still there), media stopped, the leg forgotten.
    fn end(&mut self, id: LegId, c: u8, bye: bool, hangup: bool, now: Instant) {
        let Some(mut leg) = self.legs.remove(&id) else { return };
        self.by_call_id.remove(&leg.call_id);
        if let Some(tx) = leg.invite_tx {
            self.by_tx.remove(&tx);
        }
        if leg.origin == Origin::Sip && !leg.confirmed {
            // The INVITE from mediation is still unanswered: a final response is owed.
            let status = cause::sip_status_at(c, LOCATION_PRIVATE_LOCAL);
            if let (Some(tx), Some(mut r)) = (leg.invite_tx, Self::leg_response(&leg, status)) {
                r.headers.add(HeaderName::Reason, reason::q850(c, None));
                self.respond(tx, r, now);
            }
        }
        if let (true, true, Some(d)) = (bye, leg.confirmed, leg.dialog.as_mut()) {
            let request = requests::bye(d, c, self.config.local, &mut self.ids);
            if let Err(e) = self.txns.send_request(request, d.dest, d.transport, now) {
                warn!("{}: BYE not sent: {e}", leg.call_id);
            }
        }
        if let Some(call) = leg.pri {
            self.by_pri.remove(&call);
            if hangup {
                self.actions.push_back(Action::Hangup { call, cause: c });
            }
        }
        if let (true, Some(channel)) = (leg.media, leg.channel) {
            self.actions.push_back(Action::MediaStop { channel });
        }
    }

    fn drain_transactions(&mut self, now: Instant) {
        // Each pass consumes queued items; the bound only guards against a logic loop.
        for _ in 0..10_000 {
            let mut busy = false;
            while let Some(Event { id, event }) = self.txns.poll_event() {
                busy = true;
                let leg = self.by_tx.get(&id).copied();
                match (event, leg) {
                    (TxEvent::Response(r) | TxEvent::TimedOut(r), Some(leg)) => self.on_invite_response(leg, r, now),
                    (TxEvent::TransportError, Some(leg)) => {
                        let mut r = Response::new(503);
                        r.headers.add(HeaderName::Reason, reason::q850(cause::NETWORK_OUT_OF_ORDER, None));
                        self.on_invite_response(leg, r, now);
                    }
                    (TxEvent::Terminated, _) => {
                        self.by_tx.remove(&id);
                        if let Some(leg) = leg.and_then(|l| self.legs.get_mut(&l)) {
                            leg.invite_tx = None;
                        }
                    }
                    _ => {}
                }
            }
            while let Some(t) = self.txns.poll_transmit() {
                busy = true;
                self.outbound.push_back(Outbound::Transaction(t));
            }
            if !busy {
                return;
            }
        }
        warn!("sip: transaction events did not settle");
    }
}
