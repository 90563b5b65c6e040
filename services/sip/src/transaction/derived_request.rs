//! Requests a client builds from its INVITE: the ACK for a non-2xx final response (RFC 3261
//! §17.1.1.3) and the CANCEL (§9.1). Both reuse the INVITE's top Via, so its branch, and so both
//! reach the same server transaction.
use crate::message::{HeaderError, HeaderName, Headers, Method, Request};

/// The ACK for a 300-699 response to `invite`, before that response is known: the client
/// INVITE transaction puts the response's To (with the tag the server chose) in it.
pub(crate) fn ack_for(invite: &Request) -> Result<Request, HeaderError> {
    derived(invite, Method::ACK)
}

/// A CANCEL for `invite`, to be sent to the same destination.
pub fn cancel_for(invite: &Request) -> Result<Request, HeaderError> {
    derived(invite, Method::CANCEL)
}

fn derived(invite: &Request, method: Method) -> Result<Request, HeaderError> {
    let seq = invite.cseq()?.seq;
    let to = invite.headers.get(&HeaderName::To).ok_or(HeaderError::Missing("To"))?;
    let via = invite.headers.get(&HeaderName::Via).ok_or(HeaderError::Missing("Via"))?;
    let from = invite.headers.get(&HeaderName::From).ok_or(HeaderError::Missing("From"))?;
    let call_id = invite.call_id()?;
    let mut headers = Headers::default();
    headers.add(HeaderName::Via, via);
    for route in invite.headers.get_all(&HeaderName::Route) {
        headers.add(HeaderName::Route, route);
    }
    headers.add(HeaderName::MaxForwards, "70");
    headers.add(HeaderName::From, from);
    headers.add(HeaderName::To, to);
    headers.add(HeaderName::CallId, call_id);
    headers.add(HeaderName::CSeq, format!("{seq} {method}"));
    let mut request = Request::new(method, invite.uri.clone());
    request.headers = headers;
    Ok(request)
}
