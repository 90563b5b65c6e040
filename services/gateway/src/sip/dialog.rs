//! The requests the gateway makes up in its dialogs with sba-mediation (RFC 3261 §12): the
//! INVITE that offers a PSTN call to mediation, our Contact, and the BYE carrying the PSTN's
//! cause. The dialog itself (tags, route set, CSeq, ACK) is holdfast-telephony's `Dialog`.

use std::net::SocketAddr;

use holdfast_sip::message::{HeaderName, Method, Request, Uri};
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

/// A new call towards mediation: an INVITE opening a dialog of its own, with our SDP offer.
pub fn invite(
    local: SocketAddr,
    mediation: SocketAddr,
    called: &str,
    calling: Option<&str>,
    sdp: String,
    ids: &mut Ids,
) -> Request {
    let target = Uri::parse(&format!("sip:{called}@{mediation}"))
        .unwrap_or_else(|_| Uri::Other(format!("sip:{mediation}")));
    let from_user = calling.filter(|c| !c.is_empty()).unwrap_or("anonymous");
    let mut r = Request::new(Method::INVITE, target.clone());
    r.headers.add(HeaderName::Via, format!("SIP/2.0/UDP {local};branch={};rport", ids.branch()));
    r.headers.add(HeaderName::MaxForwards, "70");
    r.headers.add(HeaderName::From, format!("<sip:{from_user}@{local}>;tag={}", ids.tag()));
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
        let inv = invite(local, med, "2000", Some("5551000"), "v=0\r\n".into(), &mut ids);
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
