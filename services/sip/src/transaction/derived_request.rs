//! Requests a client builds from its INVITE: the ACK for a non-2xx final response (RFC 3261
//! §17.1.1.3) and the CANCEL (§9.1). Both reuse the INVITE's top Via, so its branch, and so both
//! reach the same server transaction.
use crate::message::{HeaderError, HeaderName, Headers, Method, Request};

/// The ACK for a 300-699 response to `invite`, before that response is known: the client
/// INVITE transaction puts the response's To (with the tag the server chose) in it.
pub(crate) fn ack_for(invite: &Request) -> Result<Request, HeaderError> {
    derived(invite, Method::ACK)
}

/// Whether `invite` has what its ACK and CANCEL copy, without building either.
pub(crate) fn check_derivable(invite: &Request) -> Result<(), HeaderError> {
    copied(invite).map(drop)
}

/// A CANCEL for `invite`, to be sent to the same destination.
pub fn cancel_for(invite: &Request) -> Result<Request, HeaderError> {
    derived(invite, Method::CANCEL)
}

/// The INVITE's headers an ACK or CANCEL copies: CSeq number, To, top Via, From, Call-ID.
fn copied(invite: &Request) -> Result<(u32, &str, &str, &str, &str), HeaderError> {
    let seq = invite.cseq()?.seq;
    let to = invite.headers.get(&HeaderName::To).ok_or(HeaderError::Missing("To"))?;
    let via = invite.headers.get(&HeaderName::Via).ok_or(HeaderError::Missing("Via"))?;
    let from = invite.headers.get(&HeaderName::From).ok_or(HeaderError::Missing("From"))?;
    Ok((seq, to, via, from, invite.call_id()?))
}

fn derived(invite: &Request, method: Method) -> Result<Request, HeaderError> {
    let (seq, to, via, from, call_id) = copied(invite)?;
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
