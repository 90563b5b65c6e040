//! Building the request a proxy sends on a branch (RFC 3261 §16.6) and spotting loops (§16.3).
use super::target::{Side, Target};
use crate::trust::RouteStamp;
use holdfast_sip::message::{Header, HeaderName, Request, Uri, Via};
use holdfast_sip::transport::Protocol;
use std::net::SocketAddr;
use holdfast_sip::transaction::MAGIC_COOKIE;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

/// What identifies one request as it passes through (§16.6 item 8): if it comes back to us with
/// the same values, it is looping rather than spiralling.
pub fn loop_hash(req: &Request) -> u64 {
    let mut h = DefaultHasher::new();
    req.uri.to_string().hash(&mut h);
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::ProxyRequire, HeaderName::ProxyAuthorization]
    {
        for v in req.headers.get_all(&name) {
            v.hash(&mut h);
        }
    }
    req.cseq().map(|c| c.seq).unwrap_or(0).hash(&mut h);
    h.finish()
}

/// The branch of our Via: the loop hash of the request as received, then a counter.
pub fn branch(hash: u64, serial: u64) -> String {
    format!("{MAGIC_COOKIE}-hf{hash:016x}-{serial:x}")
}

/// Whether a Via we added earlier (sent-by one of `ours`), for this very request, is in it.
pub fn is_loop(req: &Request, ours: &[SocketAddr]) -> bool {
    let marker = format!("-hf{:016x}-", loop_hash(req));
    req.headers.get_all(&HeaderName::Via).any(|v| {
        Via::parse(v).ok().is_some_and(|via| {
            sent_by(&via).is_some_and(|a| ours.contains(&a)) && via.branch().is_some_and(|b| b.contains(&marker))
        })
    })
}

/// The sent-by of a Via as an address, when it is one.
pub fn sent_by(via: &Via) -> Option<SocketAddr> {
    Some(SocketAddr::new(via.host.ip()?, via.port.unwrap_or(5060)))
}

/// Initial requests that make a dialog keep us on its route (§16.6 item 4).
fn record_routes(req: &Request) -> bool {
    matches!(req.method.as_str(), "INVITE" | "SUBSCRIBE" | "REFER") && req.to_tag().is_ok_and(|tag| tag.is_none())
}

/// The copy of `req` sent towards `target`: Request-URI, Route set, Max-Forwards, Record-Route
/// and our Via with `branch`. `inbound` is where the request came in; when the target is reached
/// from another of our addresses or over another transport, or a side is a phone's flow, both
/// go into Record-Route (RFC 5658), so each side of the dialog reaches us where it can, over
/// the transport it came by (a phone over TLS keeps its in-dialog requests on TLS), and each
/// flow's entry names its flow. Each Record-Route carries `stamp`'s tag of the dialog (and of
/// its flow), which its in-dialog requests show to be relayed.
pub fn branch_request(req: &Request, target: &Target, inbound: Side, branch: &str, stamp: &RouteStamp) -> Request {
    let mut out = req.clone();
    out.uri = target.uri.clone();
    let hops = req.headers.get(&HeaderName::MaxForwards).and_then(|v| v.trim().parse::<u32>().ok()).unwrap_or(70);
    out.headers.set(HeaderName::MaxForwards, hops.saturating_sub(1).min(70).to_string());
    if record_routes(req) {
        let call_id = req.call_id().unwrap_or_default();
        let from_tag = req.from_tag().ok().flatten().unwrap_or_default();
        let secure = [&req.uri, &target.uri].iter().any(|u| matches!(u, Uri::Sip(sip) if sip.secure));
        let rr = |side: Side| {
            let entry = stamp.record_route(&route_uri(side), call_id, from_tag, side.flow);
            // A sips: request's entries (sips: as it came, or as it goes on to a sips: contact)
            // are sips: (RFC 3261 §16.6 item 4) on the sides it travels over TLS, so the
            // dialog's requests keep asking for TLS on every hop.
            if secure && side.transport == Protocol::Tls {
                entry.replacen("<sip:", "<sips:", 1)
            } else {
                entry
            }
        };
        out.headers.push_front(Header::new(HeaderName::RecordRoute, rr(inbound)));
        if target.side() != inbound {
            out.headers.push_front(Header::new(HeaderName::RecordRoute, rr(target.side())));
        }
    }
    // A Path (RFC 3327) becomes the Route the request follows to the phone, before any Route the
    // request already had.
    for r in target.route.iter().rev() {
        out.headers.push_front(Header::new(HeaderName::Route, r.clone()));
    }
    // An identity the phone asserted itself is no one's word (RFC 3325 §5): only ours goes on.
    out.headers.remove_all(&HeaderName::PAssertedIdentity);
    if let (Some(number), Uri::Sip(sip)) = (&target.asserted, &target.uri) {
        out.headers.add(HeaderName::PAssertedIdentity, format!("<sip:{number}@{};user=phone>", sip.host));
    }
    let via = target.local;
    out.headers.push_front(Header::new(HeaderName::Via, format!("SIP/2.0/{} {via};branch={branch}", target.transport)));
    out
}

/// `<sip:addr;lr>` (`;transport=tcp|tls` beside UDP): a loose-routing Route or Path entry
/// naming us on `side`.
pub fn route_value(side: Side) -> String {
    format!("<{};lr>", route_uri(side))
}

/// The URI naming us on `side`: over TCP or TLS the transport is named, else a next hop would
/// send over UDP (RFC 3263 §4.1).
pub fn route_uri(side: Side) -> String {
    match side.transport {
        Protocol::Udp => format!("sip:{}", side.addr),
        other => format!("sip:{};transport={}", side.addr, other.param()),
    }
}
