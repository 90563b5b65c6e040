//! Who may do what at the branch, as decisions over the request, its source, the mode and what
//! the registrar holds, without sockets (the README's trust table is this module's summary):
//!
//! - A **new call** (any request outside a proven dialog) comes from a peer (the central
//!   proxies, sba-mediation, ourselves) or from a device registered here: the From AOR has a
//!   live binding from the sender's IP. Anyone else gets 403. With `auth` off (a closed lab)
//!   everyone may.
//! - An **in-dialog request** is relayed as such only when its top Route names us and carries
//!   the tag of our Record-Route for its dialog (`route`), as Kamailio's default script relays
//!   only what `loose_route` proves; anything else, To tag or not, is an initial request and
//!   meets the caller check. An ACK that proves nothing is dropped.
//! - A **REGISTER while the WAN is down** needs evidence for any change (`register`); the
//!   binding's own address or connection vouches only for a refresh of it as it stands.
mod guard;
mod register;
mod route;

pub use guard::{Admit, Ask, Counted, Evidence, Guard, GuardConfig};
pub use register::{survival_register, SurvivalRegister};
pub use route::{flow_of, RouteStamp};

use crate::registrar::aor_of;
use holdfast_sip::message::{HeaderName, NameAddr, Request, Uri};
use holdfast_store::Binding;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// What the trust rules turned away, for `sbactl status` (its `refused` map).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrustCounters {
    /// Requests outside a proven dialog from a sender that may not call (403).
    pub refused_callers: u64,
    /// ACKs that proved no dialog of ours (dropped).
    pub unproven_acks: u64,
    /// REGISTERs refused for want of evidence while the WAN was down.
    pub refused_registers: u64,
    /// REGISTERs refused for holding more contacts than an AOR may.
    pub capped_registers: u64,
    /// New requests refused (503) at the cap on live transactions.
    pub over_transactions: u64,
    /// Answers held back by the digest failure throttle.
    pub throttled: u64,
    /// Throttled answers sent at once (503) because too many were held back already.
    pub delayed_full: u64,
    /// REGISTERs answered 503 because the store's queue was full.
    pub store_busy: u64,
}

impl TrustCounters {
    /// The counts by reason, as the status file lists them.
    pub fn by_reason(&self) -> BTreeMap<String, u64> {
        [
            ("caller_not_registered", self.refused_callers),
            ("unproven_ack", self.unproven_acks),
            ("survival_register_without_evidence", self.refused_registers),
            ("max_contacts", self.capped_registers),
            ("max_transactions", self.over_transactions),
            ("auth_throttled", self.throttled),
            ("delayed_responses_full", self.delayed_full),
            ("store_queue_full", self.store_busy),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

#[derive(Debug)]
pub struct Trust {
    /// Digest authentication is on; off, the branch is a closed lab and trusts every caller.
    auth: bool,
    /// The central proxies and sba-mediation.
    peers: Vec<IpAddr>,
    pub stamp: RouteStamp,
}

impl Trust {
    pub fn new(auth: bool, peers: Vec<IpAddr>, stamp: RouteStamp) -> Trust {
        Trust { auth, peers, stamp }
    }

    pub fn is_peer(&self, ip: IpAddr) -> bool {
        self.peers.contains(&ip)
    }

    /// Whether the sender of `request` at `source` may place a new call (or another request
    /// outside a proven dialog); `ours`: `source` is one of our own addresses; `live` gives an
    /// AOR's live bindings. Err says why not.
    pub fn may_call<'b>(
        &self,
        request: &Request,
        source: SocketAddr,
        ours: bool,
        live: impl FnOnce(&str) -> Vec<&'b Binding>,
    ) -> Result<(), &'static str> {
        if !self.auth || ours || self.is_peer(source.ip()) {
            return Ok(());
        }
        let Some(aor) = request.from_header().ok().and_then(|f| aor_of(&f.uri)) else {
            return Err("Forbidden (caller not registered here)");
        };
        let bound_here = live(&aor).iter().any(|b| b.source.parse::<SocketAddr>().is_ok_and(|s| s.ip() == source.ip()));
        if bound_here {
            Ok(())
        } else {
            Err("Forbidden (caller not registered here)")
        }
    }

    /// Whether `request` proves it belongs to a dialog this proxy record-routed: a To tag, and a
    /// top Route naming one of our addresses (`is_ours`) with the dialog's tag.
    pub fn proves_dialog(&self, request: &Request, is_ours: impl Fn(SocketAddr) -> bool) -> bool {
        self.proven_route(request, is_ours).is_some()
    }

    /// The top Route's URI when `proves_dialog`.
    pub fn proven_route(&self, request: &Request, is_ours: impl Fn(SocketAddr) -> bool) -> Option<Uri> {
        if !request.to_tag().is_ok_and(|tag| tag.is_some()) {
            return None;
        }
        let top = NameAddr::parse(request.headers.get(&HeaderName::Route)?).ok()?.uri;
        (top.socket_addr().is_some_and(is_ours) && self.stamp.proves(&top, request)).then_some(top)
    }
}

#[cfg(test)]
mod tests;
