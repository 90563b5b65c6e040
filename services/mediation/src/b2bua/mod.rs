//! The B2BUA core, sans-IO over the transaction table (as the registrar's proxy is): a call is
//! two independent dialogs — the A side that called us, the B side we call — each with its own
//! Call-ID, tags and CSeq. B is tried trunk after trunk while a trunk itself fails; what the
//! callee answers ends the call (`failover.rs`). SDP is rewritten so media flows through the relay
//! (unless the trunk bypasses media). Time comes in as `now`; ACKs for 2xx and call records come
//! out of `poll_output`.
mod acks;
mod failover;
mod messages;
mod relay_sdp;
mod session;
mod srtp;
mod summary;
mod timers;
mod transfer;

use crate::routing::{Inbound, Plan, Refusal};
use crate::srtp_policy::SrtpPolicy;
use crate::trust::{self, Admission, Peer};
use holdfast_media::srtp::LegKeys;
use holdfast_media::{RemoteMedia, Side};
use holdfast_telephony::sdp::{Crypto, SessionDescription};
use holdfast_sip::message::{HeaderName, Method, NameAddr, Request, Response, Uri};
use holdfast_sip::transaction::{Event, Transactions, TxEvent, TxId};
use holdfast_sip::transport::Protocol;
use holdfast_store::Cdr;
use holdfast_runtime::WallClock;
use holdfast_sip::Ids;
use holdfast_telephony::ack_wait::AckWait;
use holdfast_telephony::dialog::Dialog;
use holdfast_telephony::{cause, privacy, reason};
use failover::{Failure, Hunt};
use messages::{answer_to_a, invite_to_b, user_of};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The relay as the B2BUA sees it, so the core is tested without sockets.
pub trait Media {
    type Id: Copy + std::fmt::Debug + PartialEq;
    /// A session: its id, the port the A side sends to, the port the B side sends to.
    fn allocate(&mut self, now: Instant) -> Result<(Self::Id, SocketAddr, SocketAddr), String>;
    fn set_remote(&mut self, id: Self::Id, side: Side, remote: RemoteMedia);
    /// A leg's SRTP keys; none: plain RTP.
    fn set_crypto(&mut self, id: Self::Id, side: Side, keys: Option<LegKeys>);
    fn release(&mut self, id: Self::Id, now: Instant);
    /// Sessions that received no packet for `idle_for` at `now`: calls whose ends are gone.
    fn idle(&self, idle_for: Duration, now: Instant) -> Vec<Self::Id>;
}

#[derive(Debug, Clone)]
pub struct B2buaConfig {
    /// Our SIP address (Via, Contact).
    pub local: SocketAddr,
    /// Our TLS listener as peers reach it, for the Contact of a leg over TLS; None: none.
    pub tls_local: Option<SocketAddr>,
    /// Where calls for branch users go.
    pub registrar: SocketAddr,
    /// Ringing this long ends the call: the callee does not answer.
    pub no_answer: Duration,
    /// SRTP on the branch phones' leg (a trunk's is the trunk's).
    pub srtp: SrtpPolicy,
    /// Calls in progress at most; a new INVITE beyond is refused 503 with Retry-After.
    pub max_calls: usize,
}

impl B2buaConfig {
    /// Our Contact on a leg over `transport`, naming it, so the far end's requests in the
    /// dialog come back over the same transport: a TLS leg names the TLS listener, a TCP leg
    /// says transport=tcp (without it a UDP peer's default, RFC 3263 §4.1).
    pub fn contact(&self, transport: Protocol) -> String {
        match (transport, self.tls_local) {
            (Protocol::Tls, Some(tls)) => format!("<sip:mediation@{tls};transport=tls>"),
            (Protocol::Tcp, _) => format!("<sip:mediation@{};transport=tcp>", self.local),
            _ => format!("<sip:mediation@{}>", self.local),
        }
    }

    /// Our Contact on a leg over `transport` of a sips: call or not: a sips: dialog's is sips:
    /// (RFC 3261 §8.1.1.8 and §12.1.1), and every leg of a sips: call is over TLS.
    pub fn contact_of(&self, transport: Protocol, sips: bool) -> String {
        match self.tls_local {
            Some(tls) if sips && transport == Protocol::Tls => format!("<sips:mediation@{tls}>"),
            _ => self.contact(transport),
        }
    }

    /// Our Contact towards `target`.
    fn contact_to(&self, target: &Target) -> String {
        self.contact_of(target.transport, target.sips)
    }
}

/// What a caller refused for capacity is told to wait, in seconds.
const RETRY_AFTER_SECS: &str = "10";

/// What the event loop must do besides draining the transaction table.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A request outside any transaction (the ACK for a 2xx).
    Send { request: Request, dest: SocketAddr, transport: Protocol },
    /// A response outside any transaction (a 2xx retransmitted until the ACK), routed by Via.
    Respond(Response),
    /// A call ended: store its record.
    Cdr(Cdr),
}

/// A sips: Request-URI asks that every hop be TLS (RFC 3261 §26.2.2, RFC 5630 §3): only
/// the TLS targets are tried, with sips: Request-URIs; none left is 416 (Unsupported URI
/// Scheme: the URI cannot be honoured from here; RFC 5630 §3.1.3 bars sending it on as sip:).
fn sips_only_over_tls(uri: &Uri, targets: &mut Vec<Target>) -> Result<(), Refusal> {
    if !matches!(uri, Uri::Sip(sip) if sip.secure) {
        return Ok(());
    }
    let before = targets.len();
    targets.retain(|t| t.transport == Protocol::Tls);
    if targets.is_empty() && before > 0 {
        return Err(Refusal { status: 416, reason: "Unsupported URI Scheme (sips: and no TLS hop)".into(), route: None });
    }
    for t in targets.iter_mut() {
        t.sips = true;
    }
    Ok(())
}

/// Where the B side of a call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Hop {
    /// A trunk of the plan, by name.
    Trunk(String),
    /// Back to the registrar: a DID call for a branch user.
    Registrar,
}

impl Hop {
    /// The peer that alone may send in the dialog of this hop (`trust::speaks_for`).
    fn peer(&self) -> Peer {
        match self {
            Hop::Trunk(name) => Peer::Trunk(name.clone()),
            Hop::Registrar => Peer::Branch,
        }
    }

    fn trunk(&self) -> Option<&str> {
        match self {
            Hop::Trunk(name) => Some(name),
            Hop::Registrar => None,
        }
    }

    /// Whether this is one of the `trunks` named (the dead ones).
    fn is_in(&self, trunks: &HashSet<String>) -> bool {
        self.trunk().is_some_and(|t| trunks.contains(t))
    }
}

/// As call records and logs name it.
impl std::fmt::Display for Hop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.trunk().unwrap_or("registrar"))
    }
}

/// Who placed a call, as its record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// A branch user's call, from the registrar.
    Outbound,
    /// From a trunk.
    Inbound,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// One place the B side may be called.
#[derive(Debug, Clone)]
struct Target {
    hop: Hop,
    dest: SocketAddr,
    transport: Protocol,
    called: String,
    /// None: no number to show (From anonymous, Privacy: id).
    calling: Option<String>,
    /// The caller asked to withhold its number (RFC 3323): From anonymous, the number only in
    /// P-Asserted-Identity towards a trunk.
    withheld: bool,
    /// A's Request-URI was sips: (RFC 5630: TLS on every hop): B's is too, over TLS only.
    sips: bool,
    bypass: bool,
    srtp: SrtpPolicy,
}

impl Target {
    /// The caller as its From shows it: the number, or anonymous.
    fn caller_sent(&self) -> String {
        match &self.calling {
            Some(number) if !self.withheld => number.clone(),
            _ => privacy::ANONYMOUS.into(),
        }
    }
}

#[derive(Debug)]
struct Attempt {
    client: TxId,
    invite: Request,
    target: Target,
    provisional: bool,
    /// A CANCEL waits for the first provisional response (§9.1).
    cancel_when_provisional: bool,
    ring_until: Option<Instant>,
    /// Cancelled for ringing too long: the 487 moves the call on rather than ending it.
    no_answer: bool,
    /// INVITEs sent again after a 422 (RFC 4028), bounded.
    session_retries: u8,
    /// The SRTP keys offered to the target through the relay (none: plain).
    keys: Vec<Crypto>,
}

impl Attempt {
    fn new(client: TxId, invite: Request, target: Target, ring_until: Instant) -> Attempt {
        Attempt {
            client,
            invite,
            target,
            provisional: false,
            cancel_when_provisional: false,
            ring_until: Some(ring_until),
            no_answer: false,
            session_retries: 0,
            keys: Vec::new(),
        }
    }

    /// A provisional response came: a CANCEL that waited for one goes now.
    fn provisional(&mut self, txns: &mut Transactions, now: Instant) {
        self.provisional = true;
        if self.cancel_when_provisional {
            cancel(txns, self.client, now);
        }
    }
}

/// A call's state, each carrying what the call has in it and nothing else.
enum State {
    /// B is being called, target after target.
    Setup(Setup),
    /// B answered: both dialogs stand.
    Answered(Answered),
}

struct Setup {
    /// B's targets, the one being called and those not tried yet.
    hunt: Hunt,
    /// A gave up (CANCEL, or BYE in the early dialog) while B was being called.
    cancelled: bool,
    /// Late offer through the relay: the formats B offered, which A's answer is fitted to.
    b_offered: Option<Vec<u8>>,
}

struct Answered {
    /// Our 2xx to A until its ACK comes.
    unacked: Option<AckWait>,
    /// Late offer (no SDP in A's INVITE): B's ACK waits for the answer in A's ACK, with the
    /// formats B offered.
    late_ack: Option<(Output, Option<Vec<u8>>)>,
}

struct Call<Id> {
    server: TxId,
    invite: Request,
    source: SocketAddr,
    source_transport: Protocol,
    a_tag: String,
    a_dialog: Option<Dialog>,
    b_dialog: Option<Dialog>,
    media: Option<(Id, SocketAddr, SocketAddr)>,
    /// A re-INVITE or UPDATE waiting for the other side.
    relayed: Option<session::Relayed>,
    /// RFC 4028 session timers of each dialog, when negotiated.
    a_timer: Option<timers::SessionTimer>,
    b_timer: Option<timers::SessionTimer>,
    /// Our session refresh (UPDATE) in flight, and the side it went to.
    refresh: Option<(TxId, Side)>,
    /// The last SDP each side sent us, as it sent it (a transfer offers the transferee's).
    sdp: [Vec<u8>; 2],
    /// The branch user on either end, whose voice policy a transfer to a number falls under.
    branch_user: Option<String>,
    /// The side that was called (B, until a transfer puts its target on the referrer's side).
    callee_side: Side,
    /// A blind transfer (REFER) in progress.
    transfer: Option<transfer::Transfer>,
    /// Each side's SRTP through the relay.
    srtp: [srtp::LegSrtp; 2],
    /// What A's offer said, for the relay, and its audio formats.
    a_media: Option<RemoteMedia>,
    a_formats: Vec<u8>,
    state: State,
    cdr: Cdr,
}

impl<Id> Call<Id> {
    /// A's Request-URI was sips: (so is B's, `sips_only_over_tls`): a sips: call.
    fn sips(&self) -> bool {
        matches!(&self.invite.uri, Uri::Sip(sip) if sip.secure)
    }

    fn is_answered(&self) -> bool {
        matches!(self.state, State::Answered(_))
    }

    fn cancelled(&self) -> bool {
        matches!(&self.state, State::Setup(s) if s.cancelled)
    }

    /// B's INVITE in progress.
    fn attempt(&self) -> Option<&Attempt> {
        match &self.state {
            State::Setup(s) => s.hunt.attempt.as_ref(),
            State::Answered(_) => None,
        }
    }

    fn attempt_mut(&mut self) -> Option<&mut Attempt> {
        match &mut self.state {
            State::Setup(s) => s.hunt.attempt.as_mut(),
            State::Answered(_) => None,
        }
    }

    fn unacked(&self) -> Option<&AckWait> {
        match &self.state {
            State::Answered(a) => a.unacked.as_ref(),
            State::Setup(_) => None,
        }
    }

    /// A acknowledged our 2xx (or another dialog took its place).
    fn acked(&mut self) {
        if let State::Answered(a) = &mut self.state {
            a.unacked = None;
        }
    }

    fn dialog(&mut self, side: Side) -> &mut Option<Dialog> {
        match side {
            Side::A => &mut self.a_dialog,
            Side::B => &mut self.b_dialog,
        }
    }

    fn timer(&mut self, side: Side) -> &mut Option<timers::SessionTimer> {
        match side {
            Side::A => &mut self.a_timer,
            Side::B => &mut self.b_timer,
        }
    }

    fn set_sdp(&mut self, side: Side, body: &[u8]) {
        if !body.is_empty() {
            self.sdp[ix(side)] = body.to_vec();
        }
    }
}

fn ix(side: Side) -> usize {
    match side {
        Side::A => 0,
        Side::B => 1,
    }
}

/// A dialog of ours as a request in it finds it: the call, its side, and the peer that alone may
/// send in it.
#[derive(Debug, Clone)]
struct Leg {
    call: u64,
    side: Side,
    peer: Peer,
}

/// What a request in a dialog names.
enum Named {
    /// No dialog of ours (481).
    Unknown,
    /// A dialog of ours, from another than its peer (refused, counted).
    Foreign,
    /// A dialog of ours, from its peer: the call and its side.
    Leg(u64, Side),
}

pub struct B2bua<M: Media> {
    config: B2buaConfig,
    plan: Plan,
    media: M,
    calls: HashMap<u64, Call<M::Id>>,
    by_server: HashMap<TxId, u64>,
    by_client: HashMap<TxId, u64>,
    /// (Call-ID, our tag) -> the leg it names.
    by_dialog: HashMap<(String, String), Leg>,
    dead: HashSet<String>,
    /// The INVITEs that set up calls in the last 64*T1 (Call-ID, From tag, CSeq), oldest first:
    /// a retransmission that arrives after our 2xx ended its transaction must not place the
    /// call a second time.
    recent: HashMap<(String, String, u32), u64>,
    recent_order: VecDeque<(Instant, (String, String, u32))>,
    next_call: u64,
    outputs: VecDeque<Output>,
    /// Requests from neither the registrar nor a trunk, refused 403 without a call record, and
    /// their responses, dropped.
    strangers: u64,
    /// INVITEs refused 503 because `max_calls` calls were in progress, without a call record.
    over_capacity: u64,
    /// Requests in a dialog of ours (ACKs and CANCELs too) from another than its leg's peer,
    /// refused (ACKs dropped).
    foreign_in_dialog: u64,
    /// The wall clock, for call records.
    clock: WallClock,
    ids: Ids,
}

impl<M: Media> B2bua<M> {
    pub fn new(config: B2buaConfig, plan: Plan, media: M, clock: WallClock, ids: Ids) -> Self {
        B2bua {
            config,
            plan,
            media,
            calls: HashMap::new(),
            by_server: HashMap::new(),
            by_client: HashMap::new(),
            by_dialog: HashMap::new(),
            dead: HashSet::new(),
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
            next_call: 0,
            outputs: VecDeque::new(),
            strangers: 0,
            over_capacity: 0,
            foreign_in_dialog: 0,
            clock,
            ids,
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Requests refused (and responses dropped) because they came from neither the registrar nor
    /// a trunk.
    pub fn strangers(&self) -> u64 {
        self.strangers
    }

    /// INVITEs refused because `max_calls` calls were in progress.
    pub fn over_capacity(&self) -> u64 {
        self.over_capacity
    }

    /// Requests in a dialog of ours refused because they came from another than its leg's peer.
    pub fn foreign_in_dialog(&self) -> u64 {
        self.foreign_in_dialog
    }

    /// Calls in progress.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The health checker's verdict: a dead trunk is skipped until it answers again.
    pub fn set_trunk_alive(&mut self, trunk: &str, alive: bool) {
        if alive {
            self.dead.remove(trunk);
        } else {
            self.dead.insert(trunk.to_string());
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn wall(&self, now: Instant) -> i64 {
        self.clock.unix_ms(now)
    }

    /// Whether a response from `source` over `transport` goes on to the transactions: a
    /// stranger's is dropped and counted with the requests refused as `not_a_peer`.
    pub fn hears_response(&mut self, source: SocketAddr, transport: Protocol) -> bool {
        if trust::hears_response(&self.plan, self.config.registrar, source, transport) {
            return true;
        }
        self.strangers += 1;
        if self.strangers.is_power_of_two() {
            log::info!("a response from {source} dropped: not the registrar or a trunk ({} refused so far)", self.strangers);
        }
        false
    }

    /// A new request from the transport, in server transaction `id`.
    pub fn on_request(&mut self, txns: &mut Transactions, id: TxId, request: Request, source: SocketAddr, transport: Protocol, now: Instant) {
        let peer = match trust::admit(&self.plan, self.config.registrar, &request.method, source, transport) {
            Admission::Serve(peer) => peer,
            Admission::Probe => {
                let mut r = request.response(200);
                r.headers.add(HeaderName::Allow, messages::ALLOW);
                return respond(txns, id, r, now);
            }
            Admission::Refuse => {
                self.strangers += 1;
                if self.strangers.is_power_of_two() {
                    log::info!("{} from {source} refused: not the registrar or a trunk ({} so far)", request.method, self.strangers);
                }
                let mut r = request.response(403);
                r.reason = "Forbidden (not a trunk or the branch)".into();
                return respond(txns, id, r, now);
            }
        };
        let in_dialog = request.to_header().is_ok_and(|to| to.tag().is_some());
        if in_dialog {
            return self.in_dialog(txns, id, request, source, transport, now);
        }
        match request.method {
            Method::INVITE => self.on_invite(txns, id, request, peer, source, transport, now),
            Method::OPTIONS => {
                let mut r = request.response(200);
                r.headers.add(HeaderName::Allow, messages::ALLOW);
                respond(txns, id, r, now);
            }
            _ => respond(txns, id, request.response(405), now),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_invite(&mut self, txns: &mut Transactions, id: TxId, invite: Request, peer: Peer, source: SocketAddr, transport: Protocol, now: Instant) {
        if let Some(r) = timers::too_small(&invite) {
            return respond(txns, id, r, now);
        }
        let Some(seen) = self.seen_invite(&invite, now) else { return respond(txns, id, invite.response(400), now) };
        if let Some(&key) = self.recent.get(&seen) {
            // Our 2xx again while the caller has not acknowledged it; else 482 (RFC 3261
            // §8.2.2.2): the call exists or existed, a stray answer harms nobody.
            let again = self.calls.get(&key).and_then(|c| Some(c.unacked()?.response().clone()));
            return respond(txns, id, again.unwrap_or_else(|| invite.response(482)), now);
        }
        if !trust::has_room(self.calls.len(), self.config.max_calls) {
            // Refused before anything is kept for it: no call, no record, no media ports.
            self.over_capacity += 1;
            if self.over_capacity.is_power_of_two() {
                log::warn!("INVITE from {source} refused: {} calls in progress (max_calls; {} refused so far)", self.calls.len(), self.over_capacity);
            }
            let mut r = invite.response(503);
            r.reason = "Service Unavailable (calls in progress at the limit)".into();
            r.headers.add(HeaderName::parse("Retry-After"), RETRY_AFTER_SECS);
            r.headers.add(HeaderName::Reason, reason::q850(cause::SWITCHING_EQUIPMENT_CONGESTION, None));
            return respond(txns, id, r, now);
        }
        let dialled = user_of(&invite.uri).unwrap_or_default();
        let withheld = privacy::withheld(&invite);
        let mut caller = invite.from_header().ok().and_then(|f| user_of(&f.uri)).unwrap_or_default();
        if let (Peer::Trunk(_), true) = (&peer, caller == privacy::ANONYMOUS) {
            // A trunk (our trust domain) names a withheld caller in P-Asserted-Identity.
            caller = asserted_number(&invite).unwrap_or(caller);
        }
        let mut cdr = Cdr {
            call_id: invite.call_id().unwrap_or_default().to_string(),
            setup_at: self.wall(now),
            caller: caller.clone(),
            callee_dialled: dialled.clone(),
            ..Cdr::default()
        };
        let direction = match peer {
            Peer::Branch => Direction::Outbound,
            Peer::Trunk(_) => Direction::Inbound,
        };
        cdr.direction = direction.as_str().to_string();
        let a_policy = match &peer {
            Peer::Branch => self.config.srtp,
            Peer::Trunk(name) => self.plan.trunks.iter().find(|t| &t.name == name).map_or(SrtpPolicy::Off, |t| t.srtp),
        };
        let targets = match &peer {
            Peer::Branch => {
                // sba-registrar asserts the caller's own number (RFC 3325); without one the
                // caller is its From user, a number or a name.
                let asserted = asserted_number(&invite);
                self.outbound_targets(&caller, asserted.as_deref().unwrap_or(&caller), &dialled, &mut cdr)
            }
            Peer::Trunk(from) => {
                // A registered trunk's carrier may address our Contact and name the DID in To.
                if self.plan.dial_plan.normalize(&dialled).is_err() {
                    if let Some(to) = invite.to_header().ok().and_then(|t| user_of(&t.uri)) {
                        cdr.callee_dialled = to;
                    }
                }
                let dialled = cdr.callee_dialled.clone();
                cdr.trunk = from.clone();
                self.inbound_targets(from, &dialled, &caller, &mut cdr)
            }
        };
        // SRTP: what A offered must be what its leg's policy takes (RFC 3264 §6: 488 otherwise).
        let a_offer = srtp::offered(&invite.body, a_policy);
        let targets = match (targets, &a_offer) {
            (Ok(_), None) => {
                log::info!("call {}: A's offer refused by its leg's srtp = {a_policy:?}", cdr.call_id);
                Err(Refusal { status: 488, reason: "Not Acceptable Here".into(), route: None })
            }
            (targets, _) => targets,
        };
        let mut targets = match targets {
            Ok(t) => t,
            Err(refusal) => return self.refuse(txns, id, &invite, &refusal, cdr, "refused", now),
        };
        for t in &mut targets {
            t.withheld = withheld;
        }
        if let Err(refusal) = sips_only_over_tls(&invite.uri, &mut targets) {
            log::info!("call {}: {}", cdr.call_id, refusal.reason);
            return self.refuse(txns, id, &invite, &refusal, cdr, "refused", now);
        }
        // A call from the branch is its caller's; a DID call is the called user's.
        let branch_user = match targets.first() {
            _ if direction == Direction::Outbound => Some(caller.clone()),
            Some(t) if t.hop == Hop::Registrar => Some(t.called.clone()),
            _ => None,
        };
        // Media bypass only where the far leg takes A's offer as it is.
        let a_offer = a_offer.unwrap_or(srtp::Offered::Plain);
        for t in &mut targets {
            t.bypass &= srtp::takes(&a_offer, t.srtp);
        }
        // A's description is the relay's business only: read once, when a target takes the relay.
        let through_relay = targets.iter().any(|t| !t.bypass);
        let a_sd = through_relay.then(|| SessionDescription::parse(&invite.body).ok()).flatten();
        let a_sd = a_sd.filter(|sd| sd.audio(None).is_ok());
        let a_media = a_sd.as_ref().and_then(relay_sdp::media).map(|m| RemoteMedia { learn_from: relay_sdp::originator_ip(&invite), ..m });
        let a_formats = a_sd.as_ref().map(SessionDescription::audio_formats).unwrap_or_default();
        // A late offer (no SDP) gets the relay as well: B's offer will be pointed at it.
        let relayed = a_sd.is_some() || invite.body.is_empty();
        let media = if relayed && through_relay {
            match self.media.allocate(now) {
                Ok(m) => Some(m),
                Err(e) => {
                    log::warn!("no media ports for call {}: {e}", cdr.call_id);
                    let mut r = invite.response(503);
                    r.headers.add(HeaderName::Reason, reason::q850(cause::RESOURCE_UNAVAILABLE, Some("no media ports")));
                    respond(txns, id, r, now);
                    return;
                }
            }
        } else {
            None
        };
        if let (Some((mid, ..)), Some(remote)) = (media, a_media) {
            self.media.set_remote(mid, Side::A, remote);
        }
        let mut a_srtp = srtp::LegSrtp::plain(a_policy);
        if let (Some((mid, ..)), srtp::Offered::Srtp(theirs)) = (media, &a_offer) {
            let (ours, keys) = srtp::answer(theirs, &mut self.ids);
            self.media.set_crypto(mid, Side::A, Some(keys.clone()));
            a_srtp = srtp::LegSrtp::new(a_policy, ours, keys);
        }
        let key = self.next_call;
        self.next_call += 1;
        self.recent.insert(seen.clone(), key);
        self.recent_order.push_back((now, seen));
        let a_tag = self.ids.tag();
        let call_id = cdr.call_id.clone();
        let sdp = [invite.body.clone(), Vec::new()];
        self.by_dialog.insert((call_id, a_tag.clone()), Leg { call: key, side: Side::A, peer });
        self.by_server.insert(id, key);
        self.calls.insert(
            key,
            Call {
                server: id,
                invite,
                source,
                source_transport: transport,
                a_tag,
                a_dialog: None,
                b_dialog: None,
                media,
                relayed: None,
                a_timer: None,
                b_timer: None,
                refresh: None,
                sdp,
                branch_user,
                callee_side: Side::B,
                transfer: None,
                srtp: [a_srtp, srtp::LegSrtp::plain(SrtpPolicy::Off)],
                a_media,
                a_formats,
                state: State::Setup(Setup { hunt: Hunt::new(targets), cancelled: false, b_offered: None }),
                cdr,
            },
        );
        self.next_target(txns, key, now);
    }

    /// What identifies `invite` among the recent ones (stale entries forgotten first); None
    /// without a Call-ID or CSeq (the transaction layer refuses those already).
    fn seen_invite(&mut self, invite: &Request, now: Instant) -> Option<(String, String, u32)> {
        let horizon = holdfast_sip::transaction::TimerConfig::default().transaction_timeout();
        while self.recent_order.front().is_some_and(|(at, _)| now.saturating_duration_since(*at) > horizon) {
            if let Some((_, seen)) = self.recent_order.pop_front() {
                self.recent.remove(&seen);
            }
        }
        let from_tag = invite.from_header().ok().and_then(|f| f.tag().map(str::to_string)).unwrap_or_default();
        Some((invite.call_id().ok()?.to_string(), from_tag, invite.cseq().ok()?.seq))
    }

    /// A call by branch `user`, showing `caller` (its number, or its name) on the PSTN.
    fn outbound_targets(&self, user: &str, caller: &str, dialled: &str, cdr: &mut Cdr) -> Result<Vec<Target>, Refusal> {
        let out = self.plan.outbound(user, caller, dialled).inspect_err(|refusal| {
            // A refused call's record is as complete as it can be: who called (their number),
            // what the number became and the route that refused it; no trunk was tried.
            if let Ok(n) = self.plan.dial_plan.normalize(dialled) {
                cdr.callee = n.to_string();
            }
            cdr.caller = self.plan.calling_number(caller).unwrap_or_else(|| user.to_string());
            cdr.route = refusal.route.clone().unwrap_or_default();
        })?;
        cdr.caller = out.caller.clone().unwrap_or_else(|| user.to_string());
        cdr.callee = out.normalized.to_string();
        cdr.route = out.route.clone();
        Ok(out
            .legs
            .iter()
            .filter_map(|leg| {
                let t = self.plan.trunk(&leg.trunk)?;
                Some(Target {
                    hop: Hop::Trunk(t.name.clone()),
                    dest: t.address,
                    transport: t.transport,
                    called: leg.called.clone(),
                    calling: leg.calling.clone(),
                    withheld: false,
                    sips: false,
                    bypass: t.media_bypass,
                    srtp: t.srtp,
                })
            })
            .collect())
    }

    fn inbound_targets(&self, from: &str, dialled: &str, caller: &str, cdr: &mut Cdr) -> Result<Vec<Target>, Refusal> {
        match self.plan.inbound(from, dialled, caller)? {
            Inbound::User { number, user } => {
                cdr.callee = number;
                cdr.route = "did".into();
                Ok(vec![Target {
                    hop: Hop::Registrar,
                    dest: self.config.registrar,
                    transport: Protocol::Udp,
                    called: user,
                    calling: self.plan.calling_number(caller),
                    withheld: false,
                    sips: false,
                    bypass: false,
                    srtp: self.config.srtp,
                }])
            }
            Inbound::Pbx { number, leg } => {
                let t = self.plan.trunk(&leg.trunk).ok_or_else(|| Refusal { status: 500, reason: "no trunk".into(), route: None })?;
                cdr.callee = number;
                cdr.route = "pbx".into();
                Ok(vec![Target {
                    hop: Hop::Trunk(t.name.clone()),
                    dest: t.address,
                    transport: t.transport,
                    called: leg.called,
                    calling: leg.calling,
                    withheld: false,
                    sips: false,
                    bypass: t.media_bypass,
                    srtp: t.srtp,
                }])
            }
        }
    }

    /// Answers `request` (an INVITE, or the REFER of a transfer) as `refusal` says, its Q.850
    /// cause in a Reason, and records the call that was not placed.
    fn refuse(&mut self, txns: &mut Transactions, id: TxId, request: &Request, refusal: &Refusal, mut cdr: Cdr, what: &str, now: Instant) {
        let mut r = request.response(refusal.status);
        r.reason = refusal.reason.clone();
        let cause = cause::for_sip_status(refusal.status);
        r.headers.add(HeaderName::Reason, reason::q850(cause, Some(&refusal.reason)));
        respond(txns, id, r, now);
        cdr.status = refusal.status;
        cdr.q850 = Some(cause);
        cdr.end_cause = format!("{what}: {}", refusal.reason);
        cdr.ended_at = cdr.setup_at;
        self.outputs.push_back(Output::Cdr(cdr));
    }

    /// Calls the next live target, or answers A with the last failure when none is left.
    fn next_target(&mut self, txns: &mut Transactions, key: u64, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else { return };
        let State::Setup(setup) = &mut call.state else { return };
        let (a, media, config, ids, plan) = (&call.invite, call.media, &self.config, &mut self.ids, &self.plan);
        let called = setup.hunt.call_next(txns, &self.dead, &mut call.cdr, now + config.no_answer, now, |target| {
            let relay_b = media.filter(|_| !target.bypass).map(|(_, _, b)| b);
            // A late offer (no SDP from A) is B's to make: no keys of ours then.
            let keys = match relay_b {
                Some(_) if !a.body.is_empty() => srtp::offer(target.srtp, plan.srtp_suites(target.hop.trunk()), ids),
                _ => Vec::new(),
            };
            (invite_to_b(a, target, config.local, &config.contact_to(target), relay_b, &keys, ids), keys)
        });
        match called {
            Ok(client) => {
                self.by_client.insert(client, key);
            }
            Err((status, reason, why)) => self.fail_a(txns, key, status, &reason, &why, now),
        }
    }

    /// Answers A's INVITE with a failure and ends the call.
    fn fail_a(&mut self, txns: &mut Transactions, key: u64, status: u16, reason: &str, why: &str, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else { return };
        let cancelled = call.cancelled();
        let status = if cancelled { 487 } else { status };
        let mut r = answer_to_a(&call.invite, &call.a_tag, status, &self.config.contact_of(call.source_transport, call.sips()));
        r.reason = if cancelled { "Request Terminated".into() } else { reason.to_string() };
        let cause = cause::for_sip_status(status);
        r.headers.add(HeaderName::Reason, reason::q850(cause, Some(&r.reason)));
        respond(txns, call.server, r, now);
        call.cdr.status = status;
        call.cdr.q850 = Some(cause);
        call.cdr.end_cause = if cancelled { "cancelled by caller".into() } else { why.to_string() };
        self.end(txns, key, now);
    }

    /// Forgets a call and writes its record (and that of a transfer it was making).
    fn end(&mut self, txns: &mut Transactions, key: u64, now: Instant) {
        let ended_at = self.wall(now);
        let Some(mut call) = self.calls.remove(&key) else { return };
        if let Some(t) = call.transfer.take() {
            self.abandon_transfer(txns, t, ended_at, now);
        }
        self.by_server.remove(&call.server);
        // Its entries: A's dialog as set up, and whatever dialogs fill its two slots now.
        self.by_dialog.remove(&(call.invite.call_id().unwrap_or_default().to_string(), call.a_tag.clone()));
        for d in [&call.a_dialog, &call.b_dialog].into_iter().flatten() {
            self.by_dialog.remove(&(d.call_id.clone(), d.local_tag.clone()));
        }
        if let Some(a) = call.attempt() {
            self.by_client.remove(&a.client);
        }
        if let Some((id, ..)) = call.media {
            self.media.release(id, now);
        }
        call.cdr.ended_at = ended_at;
        self.outputs.push_back(Output::Cdr(call.cdr));
    }

    /// A client transaction's event; false when it is not ours.
    pub fn on_event(&mut self, txns: &mut Transactions, event: &Event, now: Instant) -> bool {
        let Some(&key) = self.by_client.get(&event.id) else { return false };
        let call = self.calls.get(&key);
        let is_invite = call.and_then(|c| c.attempt()).is_some_and(|a| a.client == event.id);
        let is_relayed = call.and_then(|c| c.relayed.as_ref()).is_some_and(|r| r.client() == event.id);
        let is_transfer = call.and_then(|c| c.transfer.as_ref()?.attempt()).is_some_and(|a| a.client == event.id);
        let refreshed = call.and_then(|c| c.refresh).filter(|(id, _)| *id == event.id).map(|(_, side)| side);
        match &event.event {
            TxEvent::Terminated => {
                self.by_client.remove(&event.id);
            }
            e if is_relayed => self.relayed_event(txns, key, e, now),
            e if is_transfer => self.transfer_event(txns, key, e, now),
            // Our session refresh found the dialog gone (RFC 5057): the call is over. (NOTIFYs
            // and BYEs may fail without harm.)
            TxEvent::TimedOut(_) | TxEvent::Response(Response { status: 408 | 481, .. }) if refreshed.is_some() => {
                if let Some(side) = refreshed {
                    self.lost(txns, key, side, now);
                }
            }
            _ if !is_invite => {}
            TxEvent::Response(r) => self.b_response(txns, key, r.clone(), now),
            TxEvent::TimedOut(r) => self.b_failed(txns, key, r.status, "Request Timeout", "timeout", now),
            TxEvent::TransportError => self.b_failed(txns, key, 503, "Service Unavailable", "transport error", now),
            TxEvent::AckTimedOut => {}
        }
        true
    }

    fn b_response(&mut self, txns: &mut Transactions, key: u64, mut r: Response, now: Instant) {
        failover::callee_cause(&mut r);
        if r.status == 422 {
            let call = self.calls.get_mut(&key).filter(|c| !c.cancelled());
            let retried = call.and_then(|c| c.attempt_mut()).and_then(|a| a.retry_422(txns, &r, now, &mut self.ids));
            if let Some((old, new)) = retried {
                self.by_client.remove(&old);
                self.by_client.insert(new, key);
                return;
            }
        }
        let Some(call) = self.calls.get_mut(&key) else { return };
        let State::Setup(Setup { hunt: Hunt { attempt: Some(attempt), .. }, cancelled, .. }) = &mut call.state else { return };
        let cancelled = *cancelled;
        match r.status {
            100 => {
                attempt.provisional = true;
                if attempt.cancel_when_provisional {
                    cancel(txns, attempt.client, now);
                }
            }
            101..=199 => {
                attempt.provisional = true;
                if attempt.cancel_when_provisional {
                    cancel(txns, attempt.client, now);
                    return;
                }
                let body = self.b_sdp(key, &r);
                let Some(call) = self.calls.get_mut(&key) else { return };
                let mut out = answer_to_a(&call.invite, &call.a_tag, r.status, &self.config.contact_of(call.source_transport, call.sips()));
                out.reason = r.reason.clone();
                set_body(&mut out, body);
                respond(txns, call.server, out, now);
            }
            200..=299 => self.b_answered(txns, key, r, now),
            _ => match failover::failure(&r, attempt.no_answer) {
                Failure::Trunk => self.b_failed(txns, key, r.status, &r.reason, "failed", now),
                Failure::Callee { status, reason: phrase, cause } => {
                    let trunk = &attempt.target.hop;
                    let why = if attempt.no_answer { format!("trunk {trunk}: no answer") } else { format!("trunk {trunk}: {status} {phrase}") };
                    let status = if cancelled { 487 } else { status };
                    let mut out = answer_to_a(&call.invite, &call.a_tag, status, &self.config.contact_of(call.source_transport, call.sips()));
                    out.reason = if cancelled { "Request Terminated".into() } else { phrase };
                    out.headers.add(HeaderName::Reason, reason::q850(cause, Some(&out.reason)));
                    respond(txns, call.server, out, now);
                    call.cdr.status = status;
                    call.cdr.q850 = Some(cause);
                    call.cdr.end_cause = if cancelled { "cancelled by caller".into() } else { why };
                    self.end(txns, key, now);
                }
            },
        }
    }

    /// The SDP of a B response for A: remembered for the relay, in a G.711 law A offered, and
    /// pointed at the relay's A port. A's side of the relay learns the codec A will send. After
    /// a late offer it is B's offer, both laws offered to A; A answers in its ACK.
    fn b_sdp(&mut self, key: u64, r: &Response) -> Option<Vec<u8>> {
        let call = self.calls.get_mut(&key)?;
        if r.body.is_empty() {
            return None;
        }
        call.set_sdp(Side::B, &r.body);
        let bypass = call.attempt().is_some_and(|a| a.target.bypass);
        // Without the relay (none, or media bypass) the description goes to A as it came.
        let Some((id, a_port, _)) = call.media.filter(|_| !bypass) else { return Some(r.body.clone()) };
        let sd = SessionDescription::parse(&r.body).ok().filter(|sd| sd.audio(None).is_ok())?;
        if let Some(remote) = relay_sdp::media(&sd) {
            self.media.set_remote(id, Side::B, RemoteMedia { learn_from: relay_sdp::answerer_ip(r), ..remote });
        }
        let policy = call.attempt().map_or(SrtpPolicy::Off, |a| a.target.srtp);
        if call.invite.body.is_empty() {
            // B's offer: its SRTP answered in the ACK with a key of ours. A is offered plain,
            // or SRTP with keys of ours when its leg is mandatory (answered in its ACK).
            if let (Some(srtp::Offered::Srtp(theirs)), None) = (srtp::offered(&r.body, policy), &call.srtp[ix(Side::B)].keys) {
                let (ours, keys) = srtp::answer(&theirs, &mut self.ids);
                self.media.set_crypto(id, Side::B, Some(keys.clone()));
                call.srtp[ix(Side::B)] = srtp::LegSrtp::new(policy, ours, keys);
            }
            if let State::Setup(setup) = &mut call.state {
                setup.b_offered = Some(sd.audio_formats());
            }
            let for_a = call.srtp[ix(Side::A)].offer(&mut self.ids);
            return Some(relay_sdp::offer(&r.body, Some(a_port), &for_a, false));
        }
        // B's keys, where we offered ours (nothing to read otherwise).
        let offered = call.attempt().map(|a| a.keys.clone()).unwrap_or_default();
        let answered = if offered.is_empty() { None } else { srtp::answered(&offered, &r.body) };
        if let Some((ours, keys)) = answered {
            if call.srtp[ix(Side::B)].keys.as_ref() != Some(&keys) {
                self.media.set_crypto(id, Side::B, Some(keys.clone()));
                call.srtp[ix(Side::B)] = srtp::LegSrtp::new(policy, ours, keys);
            }
        }
        let (for_a, a_pt) = relay_sdp::answer(&r.body, &call.a_formats, a_port, call.srtp[ix(Side::A)].lines());
        if let Some(a) = call.a_media.as_mut() {
            a.audio_pt = a_pt;
            self.media.set_remote(id, Side::A, *a);
        }
        Some(for_a)
    }

    fn b_answered(&mut self, txns: &mut Transactions, key: u64, r: Response, now: Instant) {
        let body = self.b_sdp(key, &r);
        let wall = self.wall(now);
        let local = self.config.local;
        let Some(call) = self.calls.get_mut(&key) else { return };
        let State::Setup(setup) = &mut call.state else { return };
        let Some(attempt) = setup.hunt.attempt.take() else { return };
        let (cancelled, b_offered) = (setup.cancelled, setup.b_offered.take());
        let Some(b) = Dialog::as_uac(&attempt.invite, &r, attempt.target.dest, attempt.target.transport) else {
            log::warn!("call {}: 2xx without a usable To/Contact", call.cdr.call_id);
            return;
        };
        let seq = attempt.invite.cseq().map(|c| c.seq).unwrap_or(1);
        let ack = Output::Send { request: b.ack(seq, local, &mut self.ids), dest: b.dest, transport: b.transport };
        // A leg that must have SRTP whose callee answered without a key we can use (to our
        // offer, or in its own offer after a late one): there is no media to have, the call
        // ends as unacceptable (after an offer in its 2xx, the ACK goes out before the BYE).
        let unkeyed = attempt.target.srtp == SrtpPolicy::Mandatory
            && !attempt.target.bypass
            && call.media.is_some()
            && call.srtp[ix(Side::B)].keys.is_none();
        let late_ack = if call.invite.body.is_empty() && !r.body.is_empty() && !cancelled && !unkeyed {
            Some((ack, b_offered))
        } else {
            self.outputs.push_back(ack);
            None
        };
        if cancelled || unkeyed {
            // The callee answered as the caller hung up: end the B dialog at once.
            let mut b = b;
            let bye = b.request(Method::BYE, local, &mut self.ids);
            send_in_dialog(txns, &mut self.by_client, key, bye, &b, now);
            if unkeyed && !cancelled {
                log::info!("call {}: trunk {} answered without SRTP (srtp = mandatory)", call.cdr.call_id, attempt.target.hop);
                let mut out = answer_to_a(&call.invite, &call.a_tag, 488, &self.config.contact_of(call.source_transport, call.sips()));
                out.reason = "Not Acceptable Here".into();
                respond(txns, call.server, out, now);
                call.cdr.status = 488;
                call.cdr.end_cause = format!("trunk {}: answered without SRTP", attempt.target.hop);
                return self.end(txns, key, now);
            }
            call.cdr.status = 487;
            call.cdr.end_cause = "cancelled by caller".into();
            return self.end(txns, key, now);
        }
        self.by_dialog.insert((b.call_id.clone(), b.local_tag.clone()), Leg { call: key, side: Side::B, peer: attempt.target.hop.peer() });
        call.b_dialog = Some(b);
        if call.srtp[ix(Side::B)].keys.is_none() {
            call.srtp[ix(Side::B)] = srtp::LegSrtp::plain(attempt.target.srtp);
        }
        call.a_dialog = Dialog::as_uas(&call.invite, &call.a_tag, call.source, call.source_transport);
        call.cdr.answered_at = Some(wall);
        call.cdr.status = r.status;
        let mut out = answer_to_a(&call.invite, &call.a_tag, r.status, &self.config.contact_of(call.source_transport, call.sips()));
        set_body(&mut out, body);
        call.b_timer = timers::b_timer(&r.headers, now);
        call.a_timer = timers::a_timer(&call.invite.headers, now);
        if let Some((secs, _)) = timers::session_expires(&call.invite.headers) {
            // The caller asked for a session timer: it refreshes (RFC 4028 §9).
            out.headers.add(HeaderName::SessionExpires, format!("{};refresher=uac", secs.max(90)));
            out.headers.add(HeaderName::Require, "timer");
        }
        call.state = State::Answered(Answered { unacked: Some(AckWait::new(out.clone(), &txns.timers(), now)), late_ack });
        respond(txns, call.server, out, now);
    }

    /// The current trunk failed (see `failover`): the next trunk.
    fn b_failed(&mut self, txns: &mut Transactions, key: u64, status: u16, reason: &str, what: &str, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else { return };
        let State::Setup(setup) = &mut call.state else { return };
        let Some(attempt) = setup.hunt.trunk_failed(status, reason) else { return };
        log::info!("call {}: trunk {} {what} ({status}), trying the next", call.cdr.call_id, attempt.target.hop);
        self.by_client.remove(&attempt.client);
        if setup.cancelled {
            return self.fail_a(txns, key, 487, "Request Terminated", "cancelled by caller", now);
        }
        self.next_target(txns, key, now);
    }

    /// Side `gone`'s dialog is gone: BYE to the other side.
    fn lost(&mut self, txns: &mut Transactions, key: u64, gone: Side, now: Instant) {
        if self.calls.get(&key).is_some_and(|c| c.is_answered()) {
            self.hang_up(txns, key, gone.other(), now);
        }
    }

    /// A CANCEL from `source` over `transport` for server transaction `invite`: the status to
    /// answer it with (481 when no call has it, 403 when another than A's peer sent it).
    pub fn on_cancel(&mut self, txns: &mut Transactions, invite: TxId, source: SocketAddr, transport: Protocol, now: Instant) -> u16 {
        let Some(&key) = self.by_server.get(&invite) else { return 481 };
        let Some(call) = self.calls.get(&key) else { return 481 };
        let a = (call.invite.call_id().unwrap_or_default().to_string(), call.a_tag.clone());
        let Some(leg) = self.by_dialog.get(&a) else { return 481 };
        if !trust::speaks_for(&self.plan, self.config.registrar, &leg.peer, source, transport) {
            self.refuse_foreign(&Method::CANCEL, source);
            return 403;
        }
        let Some(call) = self.calls.get_mut(&key) else { return 481 };
        let State::Setup(setup) = &mut call.state else { return 481 };
        setup.cancelled = true;
        match setup.hunt.attempt.as_mut() {
            Some(a) if a.provisional => cancel(txns, a.client, now),
            Some(a) => a.cancel_when_provisional = true,
            None => {}
        }
        200
    }

    /// The leg a request in a dialog names by its Call-ID and our tag (its To's), if its sender
    /// is that leg's peer; another's is counted.
    fn named_leg(&mut self, request: &Request, source: SocketAddr, transport: Protocol) -> Named {
        let tag = request.to_header().ok().and_then(|t| t.tag().map(str::to_string)).unwrap_or_default();
        let call_id = request.call_id().unwrap_or_default().to_string();
        let Some(leg) = self.by_dialog.get(&(call_id, tag)) else { return Named::Unknown };
        if trust::speaks_for(&self.plan, self.config.registrar, &leg.peer, source, transport) {
            return Named::Leg(leg.call, leg.side);
        }
        self.refuse_foreign(&request.method, source);
        Named::Foreign
    }

    fn refuse_foreign(&mut self, method: &Method, source: SocketAddr) {
        self.foreign_in_dialog += 1;
        if self.foreign_in_dialog.is_power_of_two() {
            log::info!("{method} from {source} refused: not the peer of the dialog it names ({} so far)", self.foreign_in_dialog);
        }
    }

    /// BYE and other requests inside a dialog of ours, from `source` over `transport`.
    fn in_dialog(&mut self, txns: &mut Transactions, id: TxId, request: Request, source: SocketAddr, transport: Protocol, now: Instant) {
        let (key, side) = match self.named_leg(&request, source, transport) {
            Named::Leg(key, side) => (key, side),
            Named::Unknown => return respond(txns, id, request.response(481), now),
            Named::Foreign => {
                let mut r = request.response(403);
                r.reason = "Forbidden (not this dialog's peer)".into();
                return respond(txns, id, r, now);
            }
        };
        match request.method {
            Method::BYE if self.referrer_leaves(key, side) => respond(txns, id, request.response(200), now),
            Method::BYE => {
                respond(txns, id, request.response(200), now);
                let local = self.config.local;
                let Some(call) = self.calls.get_mut(&key) else { return };
                let other = match side {
                    Side::A => call.b_dialog.as_mut(),
                    Side::B => call.a_dialog.as_mut(),
                };
                if let Some(d) = other {
                    let mut bye = d.request(Method::BYE, local, &mut self.ids);
                    let cause = reason::q850_cause(&request.headers).unwrap_or(cause::NORMAL_CLEARING);
                    bye.headers.add(HeaderName::Reason, reason::q850(cause, Some("Normal call clearing")));
                    let d = d.clone();
                    send_in_dialog(txns, &mut self.by_client, key, bye, &d, now);
                }
                // A BYE in the early dialog (the caller gave up while B rang): B is cancelled,
                // A's INVITE answered 487.
                if let State::Setup(setup) = &call.state {
                    if let Some(a) = &setup.hunt.attempt {
                        cancel(txns, a.client, now);
                    }
                    let mut r = answer_to_a(&call.invite, &call.a_tag, 487, &self.config.contact_of(call.source_transport, call.sips()));
                    r.headers.add(HeaderName::Reason, reason::q850(cause::for_sip_status(487), Some("Request Terminated")));
                    respond(txns, call.server, r, now);
                    call.cdr.status = 487;
                }
                call.cdr.q850 = Some(reason::q850_cause(&request.headers).unwrap_or(cause::NORMAL_CLEARING));
                call.cdr.end_cause =
                    if side == call.callee_side { "BYE from callee".into() } else { "BYE from caller".into() };
                self.end(txns, key, now);
            }
            _ if matches!(request.method.as_str(), "INFO" | "OPTIONS") => respond(txns, id, request.response(200), now),
            _ if request.method.as_str() == "REFER" => self.on_refer(txns, key, side, id, request, now),
            _ if request.method == Method::INVITE || request.method.as_str() == "UPDATE" => {
                let answered = self.calls.get(&key).is_some_and(|c| c.is_answered());
                if let Some(r) = timers::too_small(&request) {
                    respond(txns, id, r, now);
                } else if answered {
                    self.session_refreshed(key, side, now);
                    self.relay_offer(txns, key, side, id, request, now);
                } else {
                    respond(txns, id, request.response(491), now);
                }
            }
            _ => respond(txns, id, request.response(501), now),
        }
    }

    /// Ends answered calls whose media stopped for `idle_for` (a phone or carrier that vanished
    /// without BYE): BYE to both sides with Q.850 cause 102 (recovery on timer expiry).
    pub fn reap_idle(&mut self, txns: &mut Transactions, idle_for: Duration, now: Instant) {
        let idle = self.media.idle(idle_for, now);
        let dead: Vec<u64> = self
            .calls
            .iter()
            .filter(|(_, c)| c.is_answered() && c.media.is_some_and(|(id, ..)| idle.contains(&id)))
            .map(|(k, _)| *k)
            .collect();
        for key in dead {
            if let Some(call) = self.calls.get(&key) {
                log::warn!("call {}: no media for {}s, ended", call.cdr.call_id, idle_for.as_secs());
            }
            self.bye_both(txns, key, cause::RECOVERY_ON_TIMER_EXPIRY, "media timeout", now);
        }
    }

    /// Ends an answered call from our side: BYE both ways with Q.850 `cause`, and its record.
    fn bye_both(&mut self, txns: &mut Transactions, key: u64, cause: u8, why: &str, now: Instant) {
        let local = self.config.local;
        let Some(call) = self.calls.get_mut(&key) else { return };
        for d in [call.a_dialog.as_mut(), call.b_dialog.as_mut()].into_iter().flatten() {
            let mut bye = d.request(Method::BYE, local, &mut self.ids);
            bye.headers.add(HeaderName::Reason, reason::q850(cause, Some(why)));
            let d = d.clone();
            send_in_dialog(txns, &mut self.by_client, key, bye, &d, now);
        }
        call.cdr.q850 = Some(cause);
        call.cdr.end_cause = why.to_string();
        self.end(txns, key, now);
    }

    /// The service is stopping: every call ends now (answered ones with BYE both ways, those
    /// being set up with 503 and a CANCEL), so that each has its record.
    pub fn shutdown(&mut self, txns: &mut Transactions, now: Instant) {
        let keys: Vec<u64> = self.calls.keys().copied().collect();
        for key in keys {
            let Some(call) = self.calls.get_mut(&key) else { continue };
            match &mut call.state {
                State::Answered(_) => self.bye_both(txns, key, cause::TEMPORARY_FAILURE, "mediation stopped", now),
                State::Setup(setup) => {
                    if let Some(a) = setup.hunt.attempt.take() {
                        cancel(txns, a.client, now);
                        self.by_client.remove(&a.client);
                    }
                    self.fail_a(txns, key, 503, "Service Unavailable", "mediation stopped", now);
                }
            }
        }
    }

    /// The earliest no-answer deadline.
    pub fn next_timeout(&self) -> Option<Instant> {
        let ringing = self.calls.values().flat_map(|c| [c.attempt(), c.transfer.as_ref().and_then(|t| t.attempt())]);
        let ringing = ringing.flatten().filter_map(|a| a.ring_until);
        let unacked = self.calls.values().filter_map(|c| Some(c.unacked()?.deadline()));
        let sessions = self.calls.values().flat_map(|c| [c.a_timer, c.b_timer]).flatten().map(|t| t.at());
        ringing.chain(unacked).chain(sessions).min()
    }

    /// Rang too long on a trunk: cancel it; its 487 moves the call to the next trunk. Our 2xx
    /// to A goes again while its ACK is missing.
    pub fn handle_timeout(&mut self, txns: &mut Transactions, now: Instant) {
        self.retransmit_due(txns, now);
        self.session_timers_due(txns, now);
        for call in self.calls.values_mut() {
            let transfer = call.transfer.as_mut().and_then(|t| t.attempt_mut());
            let attempt = match &mut call.state {
                State::Setup(s) => s.hunt.attempt.as_mut(),
                State::Answered(_) => None,
            };
            for a in [attempt, transfer].into_iter().flatten() {
                if a.ring_until.is_none_or(|t| t > now) {
                    continue;
                }
                a.ring_until = None;
                a.no_answer = true;
                if a.provisional {
                    cancel(txns, a.client, now);
                } else {
                    a.cancel_when_provisional = true;
                }
            }
        }
    }
}

fn set_body(r: &mut Response, body: Option<Vec<u8>>) {
    if let Some(body) = body {
        r.headers.set(HeaderName::ContentType, "application/sdp");
        r.body = body;
    }
}

fn respond(txns: &mut Transactions, id: TxId, r: Response, now: Instant) {
    if let Err(e) = txns.send_response(id, r, now) {
        log::debug!("response not sent: {e}");
    }
}

fn cancel(txns: &mut Transactions, client: TxId, now: Instant) {
    if let Err(e) = txns.cancel(client, now) {
        log::debug!("CANCEL not sent: {e}");
    }
}

fn send_in_dialog(txns: &mut Transactions, by_client: &mut HashMap<TxId, u64>, key: u64, req: Request, d: &Dialog, now: Instant) {
    match txns.send_request(req, d.dest, d.transport, now) {
        Ok(id) => {
            by_client.insert(id, key);
        }
        Err(e) => log::debug!("in-dialog request not sent: {e}"),
    }
}


/// The caller's number a peer asserted (P-Asserted-Identity, RFC 3325: sba-registrar, or a
/// trunk; only a peer's request gets here), when it is a number.
fn asserted_number(invite: &Request) -> Option<String> {
    let identity = NameAddr::parse(invite.headers.get(&HeaderName::PAssertedIdentity)?).ok()?;
    let number = user_of(&identity.uri)?;
    let digits = number.strip_prefix('+').unwrap_or(&number);
    (!digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(number)
}

#[cfg(test)]
mod tests;
