//! The answer to a request the wire layer refused, built from whatever could be read of it.
use super::datagram::is_status_line;
use super::error::WireError;
use super::head::{find_head_end, head_text, skip_leading_crlf, split_list, start_line};
use crate::message::syntax::is_token;
use crate::message::{HeaderName, NameAddr, Response, Via};
use std::hash::{DefaultHasher, Hash, Hasher};

/// A 400/505/513 for `bytes`, with the Via, From, To, Call-ID and CSeq that could be salvaged.
/// None when `bytes` is a response (an invalid response is dropped, RFC 3261 §18.1.2) or when
/// there is no request line or no usable Via to send the answer along.
pub fn error_response(bytes: &[u8], error: &WireError) -> Option<Response> {
    let bytes = skip_leading_crlf(bytes);
    let head = match find_head_end(bytes, 0) {
        Some((end, _)) => &bytes[..end],
        None => bytes,
    };
    if is_status_line(head) {
        return None;
    }
    let head = head_text(head);
    let (first, lines) = start_line(&head);
    if !first.split(' ').next().is_some_and(is_token) {
        return None;
    }
    let mut response = Response::new(error.status());
    response.reason = error.reason();
    let mut vias = Vec::new();
    let (mut from, mut to, mut call_id, mut cseq) = (None, None, None, None);
    for line in lines.flatten() {
        let name = HeaderName::parse(line.name);
        let slot = match name {
            HeaderName::Via => {
                vias.extend(split_list(&line.value).filter_map(salvage_via));
                continue;
            }
            HeaderName::From => &mut from,
            HeaderName::To => &mut to,
            HeaderName::CallId => &mut call_id,
            HeaderName::CSeq => &mut cseq,
            _ => continue,
        };
        if slot.is_none() && !line.value.is_empty() {
            *slot = Some(line.value.into_owned());
        }
    }
    if vias.is_empty() {
        return None;
    }
    for via in vias {
        response.headers.add(HeaderName::Via, via);
    }
    if let Some(from) = from {
        response.headers.add(HeaderName::From, from);
    }
    if let Some(to) = to {
        let to = match NameAddr::parse(&to) {
            // RFC 3261 §8.2.6.2: the UAS adds a To tag. Derived from the request so that a
            // retransmission gets the same answer.
            Ok(addr) if addr.tag().is_none() => format!("{to};tag={:016x}", tag_for(&head)),
            _ => to,
        };
        response.headers.add(HeaderName::To, to);
    }
    if let Some(call_id) = call_id {
        response.headers.add(HeaderName::CallId, call_id);
    }
    if let Some(cseq) = cseq {
        response.headers.add(HeaderName::CSeq, cseq);
    }
    Some(response)
}

/// A Via that parses is kept as sent; one with broken parameters is cut back to its
/// sent-protocol and sent-by (RFC 4475 badinv01), which is what routing the answer needs.
fn salvage_via(value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    if Via::parse(value).is_ok() {
        return Some(value.to_string());
    }
    let hop = value.split(';').next()?;
    Via::parse(hop).ok().map(|v| v.to_string())
}

fn tag_for(head: &str) -> u64 {
    let mut h = DefaultHasher::new();
    head.hash(&mut h);
    h.finish()
}
