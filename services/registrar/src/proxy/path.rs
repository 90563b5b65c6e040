//! The Path entry we add to a REGISTER on its way to the central site (RFC 3327), naming the
//! side we reach the centre on. For a phone that asked for outbound (RFC 5626: `reg-id`) over
//! its own TCP or TLS connection, the entry also carries that connection as a flow token (§5.1:
//! the user part, as in our Record-Route, which `trust::flow_of` reads back, and `ob`) under a
//! keyed tag of its own purpose, so nobody can forge one, move it to another flow, or pass it
//! off as a dialog's Record-Route. The central site's requests for the phone come back with the
//! entry as their top Route: they go over that very connection, and when it is gone the answer is
//! 430 Flow Failed (§5.3).
use crate::trust::flow_of;
use holdfast_sip::keyed::KeyedHash;
use holdfast_sip::message::Uri;
use std::net::SocketAddr;

/// The Path URI parameter holding the tag.
const PARAM: &str = "hfp";

#[derive(Debug, Clone)]
pub struct PathStamp {
    key: KeyedHash,
}

impl PathStamp {
    pub fn new(secret: &[u8; 32]) -> PathStamp {
        PathStamp { key: KeyedHash::new(secret, "path-flow") }
    }

    /// `<sip:TOKEN@ADDR...;lr;ob;hfp=TAG>`: `uri` (`sip:ADDR...`, naming us) with the phone's `flow`.
    pub fn entry(&self, uri: &str, flow: SocketAddr) -> String {
        let token = format!("f{}", hex::encode(flow.to_string()));
        let tag = self.key.hex_tag(&[token.as_bytes()]);
        format!("<{};lr;ob;{PARAM}={tag}>", uri.replacen("sip:", &format!("sip:{token}@"), 1))
    }

    /// The flow a Route entry (naming us) carries, when our tag over it proves we made it.
    pub fn flow(&self, route: &Uri) -> Option<SocketAddr> {
        let sip = route.as_sip()?;
        let token = sip.user.as_deref()?;
        self.key.verify_hex(&[token.as_bytes()], sip.params.value(PARAM)?).then(|| flow_of(route))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::RouteStamp;
    use holdfast_sip::message::NameAddr;

    fn uri_of(entry: &str) -> Uri {
        NameAddr::parse(entry).unwrap().uri
    }

    #[test]
    fn a_path_names_its_flow_and_only_our_tag_over_that_flow_proves_it() {
        let stamp = PathStamp::new(&[3; 32]);
        let phone: SocketAddr = "10.0.0.7:50112".parse().unwrap();
        let entry = stamp.entry("sip:192.0.2.1:5061;transport=tls", phone);
        assert!(entry.starts_with("<sip:f") && entry.contains("@192.0.2.1:5061;transport=tls;lr;ob;hfp="), "{entry}");
        assert_eq!(stamp.flow(&uri_of(&entry)), Some(phone));
        // Another key, another flow under this tag, no tag, a bare entry: nothing.
        assert_eq!(PathStamp::new(&[4; 32]).flow(&uri_of(&entry)), None);
        let other = stamp.entry("sip:192.0.2.1:5061;transport=tls", "10.0.0.8:50112".parse().unwrap());
        let moved = format!("{}{}", &other[..other.find(";hfp=").unwrap()], &entry[entry.find(";hfp=").unwrap()..]);
        assert_eq!(stamp.flow(&uri_of(&moved)), None, "{moved}");
        assert_eq!(stamp.flow(&uri_of(&entry.replace(";hfp=", ";x="))), None);
        assert_eq!(stamp.flow(&uri_of("<sip:192.0.2.1:5061;transport=tls;lr>")), None);
    }

    #[test]
    fn a_dialogs_record_route_is_no_path_entry() {
        let secret = [3; 32];
        let phone: SocketAddr = "10.0.0.7:50112".parse().unwrap();
        let rr = RouteStamp::new(&secret).record_route("sip:192.0.2.1:5061;transport=tls", "call-1", "a1", Some(phone));
        assert_eq!(PathStamp::new(&secret).flow(&uri_of(&rr.replace(";hfd=", ";hfp="))), None, "{rr}");
    }
}
