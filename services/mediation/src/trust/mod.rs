//! Whom sba-mediation serves, as decisions over a request's source, its transport and the plan,
//! without sockets (sba-mediation's rows of the README's trust table; every rule unit-tested
//! here, the server and the B2BUA only ask):
//!
//! - A request comes from a **peer**: the registrar (by its very socket, first: a trunk may
//!   share its IP), or a trunk by its address or its `inbound_from` ranges (an IP-PBX's CIDR); a
//!   trunk with `transport = "tls"` only over TLS, since its address over UDP or plain TCP is one
//!   forged header away (its TLS client certificate is checked at the handshake, `tls.rs`).
//! - Anyone else gets 403 with no call record, counted; an OPTIONS is answered to anyone (a
//!   health probe starts nothing). A response is heard from a peer only: our requests go to
//!   peers, and a stranger's answer (forged with a sniffed branch) is dropped, counted.
//! - A new call fits only while fewer than `max_calls` are in progress (503 beyond it, nothing
//!   kept for it).
//! - A transfer (REFER) places a call under a branch user's voice policy: from the branch's side
//!   always, from a trunk's side only when that trunk has `allow_refer`, and only where the call
//!   has a branch user to answer for it.
//! - A request in a dialog (BYE, re-INVITE, UPDATE, INFO, REFER, the ACK of our 2xx, a CANCEL of
//!   the INVITE) acts on one leg of a call, and only that leg's peer may send it: the registrar's
//!   socket for a branch leg, that trunk's addresses (over TLS for a TLS trunk) for a trunk leg.
//!   Call-ID and tags are no secret from whoever saw the call (a carrier sees its own leg's, a
//!   LAN host may sniff the phone's): another peer's request, or a stranger's, is refused (403;
//!   an ACK dropped), counted, and reaches no one.
use crate::routing::{Plan, Trunk};
use holdfast_sip::message::Method;
use holdfast_sip::transport::Protocol;
use std::net::SocketAddr;

/// Who sent a request: the branch (the registrar's socket) or a trunk, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Branch,
    Trunk(String),
}

/// What to do with a request, by who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// A peer's: served.
    Serve(Peer),
    /// An OPTIONS from anyone else: answered; it starts nothing.
    Probe,
    /// Anyone else's: 403, no call record, counted as `not_a_peer`.
    Refuse,
}

/// The peer that sent a request from `source` over `transport`, if any; `registrar`: the
/// registrar's socket.
pub fn peer_of(plan: &Plan, registrar: SocketAddr, source: SocketAddr, transport: Protocol) -> Option<Peer> {
    if source == registrar {
        return Some(Peer::Branch);
    }
    plan.trunk_over(source, transport).map(|t| Peer::Trunk(t.name.clone()))
}

/// Whether a request of `method` from `source` over `transport` is served.
pub fn admit(plan: &Plan, registrar: SocketAddr, method: &Method, source: SocketAddr, transport: Protocol) -> Admission {
    match peer_of(plan, registrar, source, transport) {
        Some(peer) => Admission::Serve(peer),
        None if *method == Method::OPTIONS => Admission::Probe,
        None => Admission::Refuse,
    }
}

/// Whether a response from `source` over `transport` is heard: a peer's only.
pub fn hears_response(plan: &Plan, registrar: SocketAddr, source: SocketAddr, transport: Protocol) -> bool {
    peer_of(plan, registrar, source, transport).is_some()
}

/// Whether a request in a dialog of a call's leg whose peer is `leg` (any method, the ACK of
/// our 2xx, a CANCEL of its INVITE) from `source` over `transport` is that peer's.
pub fn speaks_for(plan: &Plan, registrar: SocketAddr, leg: &Peer, source: SocketAddr, transport: Protocol) -> bool {
    peer_of(plan, registrar, source, transport).as_ref() == Some(leg)
}

/// Whether a new call fits beside the `in_progress` ones.
pub fn has_room(in_progress: usize, max_calls: usize) -> bool {
    in_progress < max_calls
}

/// Whether a REFER from the side whose trunk is `referrer` (None: the branch's side) may place a
/// call under the voice policy of `branch_user`, the call's branch user: Ok with that user, or
/// the reason of the 403.
pub fn may_transfer<'u>(referrer: Option<&Trunk>, branch_user: Option<&'u str>) -> Result<&'u str, String> {
    if let Some(trunk) = referrer.filter(|t| !t.allow_refer) {
        return Err(format!("Forbidden (trunk {} may not transfer)", trunk.name));
    }
    branch_user.ok_or_else(|| "Forbidden (no branch user to answer for the transfer)".to_string())
}

#[cfg(test)]
mod tests;
