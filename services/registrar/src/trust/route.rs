//! The Record-Route this proxy inserts, and the proof an in-dialog request carries back in its
//! Route: a keyed tag over the dialog (the initial request's Call-ID and From tag) in a URI
//! parameter. Only this proxy can make it, so a Route naming us without it (or with another
//! dialog's) proves nothing, whatever address it names. The key is kept in the store, so the
//! dialogs of before a restart still prove themselves after it.
use holdfast_sip::keyed::KeyedHash;
use holdfast_sip::message::{Request, Uri};

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

    /// `<URI;lr;hfd=TAG>` for the dialog `call_id` with the caller's `from_tag`; `uri` names us.
    pub fn record_route(&self, uri: &str, call_id: &str, from_tag: &str) -> String {
        format!("<{uri};lr;{PARAM}={}>", self.key.hex_tag(&[call_id.as_bytes(), from_tag.as_bytes()]))
    }

    /// Whether `route` (a Route URI naming us) carries the tag of the dialog `request` belongs
    /// to. The caller's tag is the From tag of its own requests and the To tag of the callee's.
    pub fn proves(&self, route: &Uri, request: &Request) -> bool {
        let Some(tag) = route.as_sip().and_then(|s| s.params.value(PARAM)) else { return false };
        let Ok(call_id) = request.call_id() else { return false };
        let tags = [request.from_header().ok(), request.to_header().ok()];
        tags.iter()
            .flatten()
            .filter_map(|h| h.tag())
            .any(|t| self.key.verify_hex(&[call_id.as_bytes(), t.as_bytes()], tag))
    }
}
