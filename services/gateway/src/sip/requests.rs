//! The requests the gateway makes up in its dialogs with sba-mediation (RFC 3261 §12): the
//! INVITE that offers a PSTN call to mediation, our Contact, and the BYE carrying the PSTN's
//! cause. The dialog itself (tags, route set, CSeq, ACK) is holdfast-telephony's `Dialog`.

use std::net::SocketAddr;

use holdfast_sip::message::{escape_user, HeaderName, Method, Request, Uri};
use holdfast_sip::Ids;
use holdfast_telephony::dialog::Dialog;
use holdfast_telephony::reason;

pub fn contact(local: SocketAddr) -> String {
    format!("<sip:sba-gateway@{local}>")
}

/// BYE carrying the Q.850 cause the PSTN side ended with.
pub fn bye(dialog: &mut Dialog, cause: u8, local: SocketAddr, ids: &mut Ids) -> Request {
    let mut r = dialog.request(Method::BYE, local, ids);
    r.headers.add(HeaderName::Reason, reason::q850(cause, None));
    r
}

/// Who calls, as the PSTN said: the number (if it sent a dialable one) and whether the caller
/// withheld it (presentation restricted).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub number: Option<&'a str>,
    pub withheld: bool,
}

/// A new call towards mediation: an INVITE opening a dialog of its own, with our SDP offer. A
/// withheld number goes only in P-Asserted-Identity, for mediation (our trust domain), with
/// `Privacy: id` and an anonymous From (RFC 3323 §4.1.1.3, RFC 3325 §9.1).
pub fn invite(local: SocketAddr, mediation: SocketAddr, called: &str, caller: Caller, sdp: String, ids: &mut Ids) -> Request {
    let target = Uri::parse(&format!("sip:{}@{mediation}", escape_user(called)))
        .unwrap_or_else(|_| Uri::Other(format!("sip:{mediation}")));
    let mut r = Request::new(Method::INVITE, target.clone());
    r.headers.add(HeaderName::Via, format!("SIP/2.0/UDP {local};branch={};rport", ids.branch()));
    r.headers.add(HeaderName::MaxForwards, "70");
    let tag = ids.tag();
    match (caller.number.filter(|c| !c.is_empty()), caller.withheld) {
        (Some(number), false) => {
            r.headers.add(HeaderName::From, format!("<sip:{}@{local}>;tag={tag}", escape_user(number)))
        }
        (number, _) => {
            r.headers.add(HeaderName::From, holdfast_telephony::privacy::anonymous_from(&tag));
            if let Some(number) = number {
                r.headers.add(HeaderName::PAssertedIdentity, format!("<sip:{}@{local}>", escape_user(number)));
                r.headers.add(HeaderName::Privacy, "id");
            }
        }
    }
    r.headers.add(HeaderName::To, format!("<{target}>"));
    r.headers.add(HeaderName::CallId, ids.call_id("sba-gateway"));
    r.headers.add(HeaderName::CSeq, "1 INVITE");
    r.headers.add(HeaderName::Contact, contact(local));
    r.headers.add(HeaderName::ContentType, "application/sdp");
    r.headers.add(HeaderName::Allow, super::ALLOW);
    r.body = sdp.into_bytes();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_sip::transport::Protocol;

    #[test]
    fn invite_ack_and_bye_share_the_dialog_and_number_their_cseq() {
        let local: SocketAddr = "127.0.0.1:5080".parse().unwrap();
        let med: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        let mut ids = Ids::seeded(1);
        let inv = invite(local, med, "2000", Caller { number: Some("5551000"), withheld: false }, "v=0\r\n".into(), &mut ids);
        assert_eq!(inv.uri.to_string(), "sip:2000@127.0.0.1:5070");
        assert!(inv.from_header().unwrap().tag().is_some());
        assert_eq!(inv.to_header().unwrap().tag(), None);
        let mut ok = inv.response(200);
        ok.headers.add(HeaderName::Contact, "<sip:med@127.0.0.1:5071>");
        let mut d = Dialog::as_uac(&inv, &ok, med, Protocol::Udp).unwrap();
        let ack = d.ack(1, local, &mut ids);
        assert_eq!(ack.uri.to_string(), "sip:med@127.0.0.1:5071");
        assert_eq!(ack.cseq().unwrap().seq, 1);
        assert_eq!(ack.to_header().unwrap().tag(), ok.to_header().unwrap().tag());
        assert_ne!(ack.top_via().unwrap().branch(), inv.top_via().unwrap().branch());
        let bye = bye(&mut d, 17, local, &mut ids);
        assert_eq!(bye.cseq().unwrap().seq, 2);
        assert_eq!(bye.call_id().unwrap(), inv.call_id().unwrap());
        assert_eq!(reason::q850_cause(&bye.headers), Some(17));
    }
}
