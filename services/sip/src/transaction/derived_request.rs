//! Requests a client builds from its INVITE: the ACK for a non-2xx final response (RFC 3261
//! §17.1.1.3) and the CANCEL (§9.1). Both reuse the INVITE's top Via, so its branch, and so both
//! reach the same server transaction.
use crate::message::{HeaderError, HeaderName, Headers, Method, Request, Response};

/// The ACK for a 300-699 response to `invite`: the To header (with the tag the server chose) comes
/// from the response, everything else from the INVITE.
pub fn ack_for_non_2xx(invite: &Request, response: &Response) -> Result<Request, HeaderError> {
    let to = response.headers.get(&HeaderName::To).ok_or(HeaderError::Missing("To"))?;
    derived(invite, Method::ACK, to)
}

/// The ACK `ack_for_non_2xx` builds, before the response is known (its To is the INVITE's).
pub(crate) fn ack_template(invite: &Request) -> Result<Request, HeaderError> {
    let to = invite.headers.get(&HeaderName::To).ok_or(HeaderError::Missing("To"))?;
    derived(invite, Method::ACK, to)
}

/// A CANCEL for `invite`, to be sent to the same destination.
pub fn cancel_for(invite: &Request) -> Result<Request, HeaderError> {
    let to = invite.headers.get(&HeaderName::To).ok_or(HeaderError::Missing("To"))?;
    derived(invite, Method::CANCEL, to)
}

fn derived(invite: &Request, method: Method, to: &str) -> Result<Request, HeaderError> {
    let seq = invite.cseq()?.seq;
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
