//! The Record-Route this proxy inserts, and the proof an in-dialog request carries back in its
//! Route: a keyed tag over the dialog (the initial request's Call-ID and From tag) in a URI
//! parameter. Only this proxy can make it, so a Route naming us without it (or with another
//! dialog's) proves nothing, whatever address it names. The key is kept in the store, so the
//! dialogs of before a restart still prove themselves after it.
//!
//! An entry naming the side of a phone reached over its own TCP/TLS connection carries that
//! connection as a flow token (RFC 5626 §5.2: the user part, with `ob`), under the same tag:
//! a token nobody can forge or move to another dialog, which sends the dialog's requests to
//! the phone over the phone's connection, not to a Contact it may not listen on.
use holdfast_sip::keyed::KeyedHash;
use holdfast_sip::message::{HeaderError, Request, Uri};
use std::net::SocketAddr;

/// The Record-Route URI parameter holding the tag.
const PARAM: &str = "hfd";

#[derive(Debug, Clone)]
pub struct RouteStamp {
    key: KeyedHash,
}

impl RouteStamp {
    pub fn new(secret: &[u8; 32]) -> RouteStamp {
        RouteStamp { key: KeyedHash::new(secret, "record-route") }
    }

    /// `<URI;lr;hfd=TAG>` for the dialog `call_id` with the caller's `from_tag`; `uri` names us
    /// (`sip:ADDR...`). With `flow`: `<sip:TOKEN@ADDR...;lr;ob;hfd=TAG>`, the tag over the
    /// token too.
    pub fn record_route(&self, uri: &str, call_id: &str, from_tag: &str, flow: Option<SocketAddr>) -> String {
        let Some(flow) = flow else {
            return format!("<{uri};lr;{PARAM}={}>", self.key.hex_tag(&[call_id.as_bytes(), from_tag.as_bytes()]));
        };
        let token = flow_token(flow);
        let uri = uri.replacen("sip:", &format!("sip:{token}@"), 1);
        let tag = self.key.hex_tag(&[call_id.as_bytes(), from_tag.as_bytes(), token.as_bytes()]);
        format!("<{uri};lr;ob;{PARAM}={tag}>")
    }

    /// Whether `route` (a Route URI naming us) carries the tag of the dialog `request` belongs
    /// to. The caller's tag is the From tag of its own requests and the To tag of the callee's.
    pub fn proves(&self, route: &Uri, request: &Request) -> bool {
        let Some(sip) = route.as_sip() else { return false };
        let Some(tag) = sip.params.value(PARAM) else { return false };
        let Ok(call_id) = request.call_id() else { return false };
        let tagged = |header: Result<Option<&str>, HeaderError>| {
            header.ok().flatten().is_some_and(|t| match &sip.user {
                Some(token) => self.key.verify_hex(&[call_id.as_bytes(), t.as_bytes(), token.as_bytes()], tag),
                None => self.key.verify_hex(&[call_id.as_bytes(), t.as_bytes()], tag),
            })
        };
        // The To tag is read only when the From's is not the one.
        tagged(request.from_tag()) || tagged(request.to_tag())
    }
}

/// The flow a proven Route entry names (its user part), if it names one.
pub fn flow_of(route: &Uri) -> Option<SocketAddr> {
    let token = route.as_sip()?.user.as_deref()?.strip_prefix('f')?;
    let text = (0..token.len())
        .step_by(2)
        .map(|i| token.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect::<Option<Vec<u8>>>()?;
    std::str::from_utf8(&text).ok()?.parse().ok()
}

/// A flow's address as a URI user part: `f` and the hex of its text (IPv6 colons included).
fn flow_token(flow: SocketAddr) -> String {
    flow.to_string().bytes().fold(String::from("f"), |mut s, b| {
        s.push_str(&format!("{b:02x}"));
        s
    })
}
