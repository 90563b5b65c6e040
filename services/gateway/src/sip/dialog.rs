//! One SIP dialog's identity and the requests the gateway sends in it (RFC 3261 §12): the
//! INVITE that starts a call towards mediation, the ACK for a 2xx, and BYE. Mediation is the
//! gateway's only SIP peer and its next hop, so in-dialog requests go to the address the dialog
//! was set up with; a route set is not kept.

use std::net::SocketAddr;

use holdfast_sip::message::{HeaderName, Method, Request, Response, Uri};
use holdfast_sip::transaction::new_branch;
use holdfast_telephony::reason;

#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    /// Our From (UAC) or To (UAS) value, with our tag.
    pub local: String,
    /// The peer's From or To value, with its tag once known.
    pub remote: String,
    /// Request-URI of in-dialog requests: the peer's Contact.
    pub target: Uri,
    /// Where in-dialog requests are sent.
    pub dest: SocketAddr,
    /// Our CSeq for requests in the dialog.
    pub cseq: u32,
    /// The CSeq of the INVITE (ACK reuses it).
    pub invite_cseq: u32,
}

pub fn tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

fn via(local: SocketAddr) -> String {
    format!("SIP/2.0/UDP {local};branch={};rport", new_branch())
}

pub fn contact(local: SocketAddr) -> String {
    format!("<sip:sba-gateway@{local}>")
}

impl Dialog {
    fn request(&self, method: Method, seq: u32, local: SocketAddr) -> Request {
        let mut r = Request::new(method.clone(), self.target.clone());
        r.headers.add(HeaderName::Via, via(local));
        r.headers.add(HeaderName::MaxForwards, "70");
        r.headers.add(HeaderName::From, self.local.clone());
        r.headers.add(HeaderName::To, self.remote.clone());
        r.headers.add(HeaderName::CallId, self.call_id.clone());
        r.headers.add(HeaderName::CSeq, format!("{seq} {method}"));
        r
    }

    /// The ACK for a 2xx to our INVITE (§13.2.2.4): a new transaction of its own.
    pub fn ack(&self, local: SocketAddr) -> Request {
        self.request(Method::ACK, self.invite_cseq, local)
    }

    /// BYE carrying the Q.850 cause the PSTN side ended with.
    pub fn bye(&mut self, cause: u8, local: SocketAddr) -> Request {
        self.cseq += 1;
        let mut r = self.request(Method::BYE, self.cseq, local);
        r.headers.add(HeaderName::Reason, reason::q850(cause, None));
        r
    }

    /// Learns the peer's tag and Contact from a 2xx to our INVITE.
    pub fn confirm(&mut self, ok: &Response) {
        if let Some(to) = ok.headers.get(&HeaderName::To) {
            self.remote = to.to_owned();
        }
        if let Some(uri) = contact_uri(&ok.headers) {
            self.target = uri;
        }
    }
}

/// The URI of the first Contact, if it parses.
pub fn contact_uri(headers: &holdfast_sip::message::Headers) -> Option<Uri> {
    let value = headers.get(&HeaderName::Contact)?;
    holdfast_sip::message::NameAddr::parse(value.split(',').next()?).ok().map(|n| n.uri)
}

/// A new call towards mediation: the dialog and its INVITE with our SDP offer.
pub fn invite(
    local: SocketAddr,
    mediation: SocketAddr,
    called: &str,
    calling: Option<&str>,
    sdp: String,
) -> (Dialog, Request) {
    let target = Uri::parse(&format!("sip:{called}@{mediation}"))
        .unwrap_or_else(|_| Uri::Other(format!("sip:{mediation}")));
    let from_user = calling.filter(|c| !c.is_empty()).unwrap_or("anonymous");
    let dialog = Dialog {
        call_id: format!("{:016x}{:016x}@sba-gateway", rand::random::<u64>(), rand::random::<u64>()),
        local: format!("<sip:{from_user}@{local}>;tag={}", tag()),
        remote: format!("<{target}>"),
        target,
        dest: mediation,
        cseq: 1,
        invite_cseq: 1,
    };
    let mut r = dialog.request(Method::INVITE, 1, local);
    r.headers.add(HeaderName::Contact, contact(local));
    r.headers.add(HeaderName::ContentType, "application/sdp");
    r.headers.add(HeaderName::Allow, super::ALLOW);
    r.body = sdp.into_bytes();
    (dialog, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_ack_and_bye_share_the_dialog_and_number_their_cseq() {
        let local: SocketAddr = "127.0.0.1:5080".parse().unwrap();
        let med: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        let (mut d, inv) = invite(local, med, "2000", Some("5551000"), "v=0\r\n".into());
        assert_eq!(inv.uri.to_string(), "sip:2000@127.0.0.1:5070");
        assert!(inv.from_header().unwrap().tag().is_some());
        assert_eq!(inv.to_header().unwrap().tag(), None);
        let mut ok = inv.response(200);
        ok.headers.add(HeaderName::Contact, "<sip:med@127.0.0.1:5071>");
        d.confirm(&ok);
        let ack = d.ack(local);
        assert_eq!(ack.uri.to_string(), "sip:med@127.0.0.1:5071");
        assert_eq!(ack.cseq().unwrap().seq, 1);
        assert_eq!(ack.to_header().unwrap().tag(), ok.to_header().unwrap().tag());
        assert_ne!(ack.top_via().unwrap().branch(), inv.top_via().unwrap().branch());
        let bye = d.bye(17, local);
        assert_eq!(bye.cseq().unwrap().seq, 2);
        assert_eq!(bye.call_id().unwrap(), inv.call_id().unwrap());
        assert_eq!(reason::q850_cause(&bye.headers), Some(17));
    }
}
