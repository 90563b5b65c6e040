//! The messages the B2BUA builds: the B side's INVITE (a new dialog: own Call-ID, tag, CSeq)
//! and the responses the A side gets.
use super::{relay_sdp, Hop, Target};
use holdfast_sip::message::{escape_user, HeaderName, Request, Response, Uri};
use holdfast_sip::Ids;
use holdfast_telephony::privacy;
use holdfast_telephony::sdp::Crypto;
use std::net::SocketAddr;

/// The user part of a SIP URI or the number of a tel: URI.
pub fn user_of(uri: &Uri) -> Option<String> {
    match uri {
        Uri::Sip(sip) => sip.user.clone(),
        Uri::Tel(tel) => Some(tel.number.clone()),
        Uri::Other(_) => None,
    }
}

/// A fresh INVITE for `target` carrying A's offer, its audio pointed at `relay` (the relay's
/// B-side port) unless the trunk bypasses media. Only the session description and what a
/// callee needs to see cross; A's Via, Route, Record-Route and Call-ID stay on A's side.
/// `contact` is ours on B's leg (`B2buaConfig::contact`).
pub fn invite_to_b(a: &Request, target: &Target, local: SocketAddr, contact: &str, relay: Option<SocketAddr>, keys: &[Crypto], ids: &mut Ids) -> Request {
    let hops = a.headers.get(&HeaderName::MaxForwards).and_then(|v| v.trim().parse::<u32>().ok()).unwrap_or(70);
    let body = match relay {
        Some(port) if !a.body.is_empty() => relay_sdp::offer(&a.body, Some(port), keys, false),
        _ => a.body.clone(),
    };
    new_invite(target, local, contact, hops.saturating_sub(1).min(70), body, ids)
}

/// An INVITE opening a new dialog towards `target` (its own Call-ID, tag and CSeq), offering
/// `body` (none: a late offer) and a session timer; `contact` is ours on that leg.
pub fn new_invite(target: &Target, local: SocketAddr, contact: &str, max_forwards: u32, body: Vec<u8>, ids: &mut Ids) -> Request {
    let host = target.dest;
    let called = escape_user(&target.called);
    let scheme = if target.sips { "sips" } else { "sip" };
    let uri = Uri::parse(&format!("{scheme}:{called}@{host};user=phone"))
        .or_else(|_| Uri::parse(&format!("{scheme}:{host}")))
        .unwrap_or_else(|_| Uri::Other(format!("{scheme}:{host}")));
    let mut r = Request::new(holdfast_sip::message::Method::INVITE, uri);
    let h = &mut r.headers;
    h.add(HeaderName::Via, format!("SIP/2.0/{} {local};branch={};rport", target.transport, ids.branch()));
    h.add(HeaderName::MaxForwards, max_forwards.to_string());
    let tag = ids.tag();
    match (&target.calling, target.withheld) {
        (Some(number), false) => h.add(HeaderName::From, format!("<sip:{}@{local};user=phone>;tag={tag}", escape_user(number))),
        // No number to show, or the caller withheld it: anonymous, and the network is asked to
        // withhold the identity (RFC 3323). A trunk is in our trust domain and gets the number
        // in P-Asserted-Identity (RFC 3325 §9.1: the gateway's SETUP, a carrier's billing and
        // emergency calls); a phone does not.
        (number, _) => {
            h.add(HeaderName::From, privacy::anonymous_from(&tag));
            h.add(HeaderName::Privacy, "id");
            if let (Some(number), Hop::Trunk(_)) = (number, &target.hop) {
                h.add(HeaderName::PAssertedIdentity, format!("<sip:{}@{local};user=phone>", escape_user(number)));
            }
        }
    }
    h.add(HeaderName::To, format!("<{scheme}:{called}@{host};user=phone>"));
    h.add(HeaderName::CallId, ids.call_id(local.ip()));
    h.add(HeaderName::CSeq, "1 INVITE");
    h.add(HeaderName::Contact, contact);
    h.add(HeaderName::Allow, ALLOW);
    h.add(HeaderName::Supported, "timer");
    h.add(HeaderName::SessionExpires, super::timers::SESSION_EXPIRES.to_string());
    if !body.is_empty() {
        h.add(HeaderName::ContentType, "application/sdp");
        r.body = body;
    }
    r
}

/// The methods we take, for Allow.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, REFER";

/// A response to A's INVITE with our To tag (the same on every response: one dialog on A's
/// side whichever trunk answers) and, for 18x/2xx, our Contact.
pub fn answer_to_a(invite: &Request, a_tag: &str, status: u16, contact: &str) -> Response {
    let mut r = invite.response(status);
    if status > 100 {
        if let Some(to) = invite.headers.get(&HeaderName::To) {
            r.headers.set(HeaderName::To, format!("{to};tag={a_tag}"));
        }
    }
    if (101..300).contains(&status) {
        // §12.1.1: the route set A's side keeps comes from our copy of its Record-Route.
        for rr in invite.headers.get_all(&HeaderName::RecordRoute) {
            r.headers.add(HeaderName::RecordRoute, rr);
        }
        r.headers.add(HeaderName::Contact, contact);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_sip::message::sample;
    use holdfast_sip::transport::Protocol;
    use crate::b2bua::Hop;

    #[test]
    fn the_b_invite_is_a_new_dialog_with_the_trunk_numbers() {
        let a = sample::request(
            "INVITE sip:2125550100@127.0.0.1:5070
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-x
             From: <sip:3012@branch.local>;tag=a
             To: <sip:2125550100@branch.local>
             Call-ID: a-call
             CSeq: 5 INVITE
             Max-Forwards: 69

             v=0
             o=- 1 1 IN IP4 192.0.2.9
             s=-
             c=IN IP4 192.0.2.9
             t=0 0
             m=audio 4000 RTP/AVP 0",
        );
        let target = Target {
            hop: Hop::Trunk("carrier-a".into()),
            dest: "127.0.0.1:5080".parse().unwrap(),
            transport: Protocol::Udp,
            called: "12125550100".into(),
            calling: Some("+15559873012".into()),
            withheld: false,
            sips: false,
            bypass: false,
            srtp: crate::srtp_policy::SrtpPolicy::Optional,
        };
        let (local, contact) = ("127.0.0.1:5070".parse().unwrap(), "<sip:mediation@127.0.0.1:5070>");
        let b = invite_to_b(&a, &target, local, contact, Some("127.0.0.1:30002".parse().unwrap()), &[], &mut Ids::seeded(1));
        assert_eq!(b.uri.to_string(), "sip:12125550100@127.0.0.1:5080;user=phone");
        assert_ne!(b.call_id().unwrap(), "a-call");
        assert_eq!(b.cseq().unwrap().seq, 1);
        assert_eq!(b.headers.count(&HeaderName::Via), 1);
        assert_eq!(b.headers.get(&HeaderName::MaxForwards), Some("68"));
        assert!(b.from_header().unwrap().tag().is_some());
        assert!(b.to_header().unwrap().tag().is_none());
        assert!(b.headers.get(&HeaderName::From).unwrap().starts_with("<sip:+15559873012@"));
        let sdp = String::from_utf8(b.body.clone()).unwrap();
        assert!(sdp.contains("m=audio 30002 ") && sdp.contains("c=IN IP4 127.0.0.1"), "{sdp}");

        let ringing = answer_to_a(&a, "t1", 180, contact);
        assert_eq!(ringing.to_header().unwrap().tag(), Some("t1"));
        assert_eq!(answer_to_a(&a, "t1", 503, contact).to_header().unwrap().tag(), Some("t1"));
        assert!(answer_to_a(&a, "t1", 503, contact).headers.get(&HeaderName::Contact).is_none());
    }
}
