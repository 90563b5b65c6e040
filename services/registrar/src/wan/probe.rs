//! The OPTIONS keepalive on the wire, and reading a probe's answer back.
use super::Probe;
use holdfast_sip::message::{HeaderName, Host, Method, Params, Request, Response, SipUri, Uri};
use holdfast_sip::transport::Protocol;
use std::net::SocketAddr;

/// Probe branches start with this (the RFC 3261 magic cookie included), so a probe's response
/// is recognised without a transaction table.
const BRANCH_PREFIX: &str = "z9hG4bK-wan-";

/// What an answer claims: the probe it answers and the token it carries back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeAnswer {
    pub id: u64,
    pub token: String,
}

/// The OPTIONS for `probe`, sent from `local` (the Via sent-by) over `transport`. The branch is
/// `z9hG4bK-wan-<id>-<token>`: the id to match the answer, the token to prove it genuine (and,
/// keyed afresh at each start, to keep branches and Call-IDs unique across restarts).
pub fn options_request(probe: &Probe, local: SocketAddr, transport: Protocol, from_domain: &str) -> Request {
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
    let (id, token) = (probe.id, &probe.token);
    request.headers.add(
        HeaderName::Via,
        format!("SIP/2.0/{transport} {local_host}:{};branch={BRANCH_PREFIX}{id}-{token};rport", local.port()),
    );
    request.headers.add(HeaderName::MaxForwards, "70");
    request.headers.add(HeaderName::From, format!("<sip:holdfast-wan@{from_domain}>;tag={token}"));
    request.headers.add(HeaderName::To, format!("<{uri}>"));
    request.headers.add(HeaderName::CallId, format!("wan-{id}-{token}@{from_domain}"));
    request.headers.add(HeaderName::CSeq, "1 OPTIONS");
    request.headers.add(HeaderName::Accept, "application/sdp");
    request
}

/// The probe a response claims to answer, or None when it is not shaped as a probe's answer.
/// Whether the claim holds is the monitor's to judge.
pub fn probe_answer(response: &Response) -> Option<ProbeAnswer> {
    if response.cseq().ok()?.method != Method::OPTIONS {
        return None;
    }
    from_branch(response.top_via().ok()?.branch()?)
}

/// The probe a request we sent is (to fail it when sending fails).
pub fn probe_of(request: &Request) -> Option<ProbeAnswer> {
    if request.method != Method::OPTIONS {
        return None;
    }
    from_branch(request.top_via().ok()?.branch()?)
}

fn from_branch(branch: &str) -> Option<ProbeAnswer> {
    let (id, token) = branch.strip_prefix(BRANCH_PREFIX)?.split_once('-')?;
    Some(ProbeAnswer { id: id.parse().ok()?, token: token.to_string() })
}

fn host_of(addr: SocketAddr) -> Host {
    match addr {
        SocketAddr::V4(a) => Host::V4(*a.ip()),
        SocketAddr::V6(a) => Host::V6(*a.ip()),
    }
}
