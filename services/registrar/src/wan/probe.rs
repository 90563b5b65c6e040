//! The OPTIONS keepalive on the wire, and matching its responses back to the probe.
use super::Probe;
use holdfast_sip::message::{HeaderName, Host, Method, Params, Request, Response, SipUri, Uri};
use holdfast_sip::transaction::new_branch;
use std::net::SocketAddr;

/// Probe branches start with this (the RFC 3261 magic cookie included), so a probe's response
/// is recognised without a transaction table.
const BRANCH_PREFIX: &str = "z9hG4bK-wan-";

/// The OPTIONS for `probe`, sent from `local` (the Via sent-by) over UDP. The branch is
/// `z9hG4bK-wan-<id>-<random>`: the id to match the response, the random part so branches and
/// Call-IDs stay unique across restarts of the branch.
pub fn options_request(probe: &Probe, local: SocketAddr, from_domain: &str) -> Request {
    let unique = new_branch();
    let unique = unique.trim_start_matches(holdfast_sip::transaction::MAGIC_COOKIE);
    let uri = Uri::Sip(SipUri {
        secure: false,
        user: None,
        password: None,
        host: host_of(probe.target),
        port: Some(probe.target.port()),
        params: Params::default(),
        headers: Vec::new(),
    });
    let mut request = Request::new(Method::OPTIONS, uri.clone());
    let local_host = host_of(local);
    request.headers.add(
        HeaderName::Via,
        format!("SIP/2.0/UDP {local_host}:{};branch={BRANCH_PREFIX}{}-{unique};rport", local.port(), probe.id),
    );
    request.headers.add(HeaderName::MaxForwards, "70");
    request.headers.add(HeaderName::From, format!("<sip:holdfast-wan@{from_domain}>;tag={unique}"));
    request.headers.add(HeaderName::To, format!("<{uri}>"));
    request.headers.add(HeaderName::CallId, format!("wan-{}-{unique}@{from_domain}", probe.id));
    request.headers.add(HeaderName::CSeq, "1 OPTIONS");
    request.headers.add(HeaderName::Accept, "application/sdp");
    request
}

/// The probe a response answers, or None when it answers something else.
pub fn probe_id(response: &Response) -> Option<u64> {
    if response.cseq().ok()?.method != Method::OPTIONS {
        return None;
    }
    let via = response.top_via().ok()?;
    let rest = via.branch()?.strip_prefix(BRANCH_PREFIX)?;
    let (id, _unique) = rest.split_once('-')?;
    id.parse().ok()
}

fn host_of(addr: SocketAddr) -> Host {
    match addr {
        SocketAddr::V4(a) => Host::V4(*a.ip()),
        SocketAddr::V6(a) => Host::V6(*a.ip()),
    }
}
