//! A dialog (RFC 3261 §12) as one side of it sees it: what the requests it sends in the dialog
//! carry, and where they go: the first hop of the route set, else the remote target.
use holdfast_sip::message::{HeaderName, Headers, Method, NameAddr, Request, Response, Uri};
use holdfast_sip::transport::Protocol;
use holdfast_sip::Ids;
use std::net::SocketAddr;

#[derive(Debug, Clone)]
pub struct Dialog {
    pub call_id: String,
    /// Our From (UAC) or To (UAS) value, with our tag.
    pub local: String,
    pub local_tag: String,
    /// Theirs, with their tag.
    pub remote: String,
    /// The Request-URI of requests in the dialog: the peer's Contact.
    pub remote_target: Uri,
    /// Route headers for requests we send, in order.
    pub route: Vec<String>,
    pub local_cseq: u32,
    /// Where requests go: the first route hop, else the remote target, else where the dialog
    /// was set up with.
    pub dest: SocketAddr,
    pub transport: Protocol,
}

impl Dialog {
    /// The dialog a UAS forms by answering `invite` (§12.1.1): the route set is the
    /// Record-Route as received. `source` is where the INVITE came from.
    pub fn as_uas(invite: &Request, local_tag: &str, source: SocketAddr, transport: Protocol) -> Option<Dialog> {
        let to = invite.headers.get(&HeaderName::To)?;
        let remote = invite.headers.get(&HeaderName::From)?.to_string();
        let target = contact_uri(&invite.headers)?;
        let route: Vec<String> = invite.headers.get_all(&HeaderName::RecordRoute).map(str::to_string).collect();
        let dest = next_hop(&route, &target).unwrap_or(source);
        Some(Dialog {
            call_id: invite.call_id().ok()?.to_string(),
            local: format!("{to};tag={local_tag}"),
            local_tag: local_tag.to_string(),
            remote,
            remote_target: target,
            route,
            local_cseq: 0,
            dest,
            transport,
        })
    }

    /// The dialog a UAC forms from a 2xx (or 1xx with a tag) to its `invite` (§12.1.2): the
    /// route set is the Record-Route reversed. `fallback` is where the INVITE went.
    pub fn as_uac(invite: &Request, answer: &Response, fallback: SocketAddr, transport: Protocol) -> Option<Dialog> {
        let local = invite.headers.get(&HeaderName::From)?.to_string();
        let local_tag = NameAddr::tag_of(&local).ok()??.to_string();
        let remote = answer.headers.get(&HeaderName::To)?.to_string();
        let target = contact_uri(&answer.headers).unwrap_or_else(|| invite.uri.clone());
        let mut route: Vec<String> = answer.headers.get_all(&HeaderName::RecordRoute).map(str::to_string).collect();
        route.reverse();
        let dest = next_hop(&route, &target).unwrap_or(fallback);
        Some(Dialog {
            call_id: invite.call_id().ok()?.to_string(),
            local,
            local_tag,
            remote,
            remote_target: target,
            route,
            local_cseq: invite.cseq().ok()?.seq,
            dest,
            transport,
        })
    }

    /// Whether an in-dialog request from the peer is of this dialog by its full id (RFC 3261
    /// §12.2.2): the Call-ID, our tag in To and the peer's in From, not the Call-ID alone.
    pub fn owns(&self, request: &Request) -> bool {
        let remote_tag = NameAddr::tag_of(&self.remote).ok().flatten();
        request.call_id().is_ok_and(|c| c == self.call_id)
            && request.to_tag().is_ok_and(|t| t == Some(self.local_tag.as_str()))
            && request.from_tag().is_ok_and(|f| f == remote_tag && remote_tag.is_some())
    }

    /// A new request in this dialog with the next CSeq, sent by `via` (our address).
    pub fn request(&mut self, method: Method, via: SocketAddr, ids: &mut Ids) -> Request {
        self.local_cseq += 1;
        self.build(method, self.local_cseq, via, ids)
    }

    /// The ACK for a 2xx to the INVITE with CSeq `seq` (§13.2.2.4): same CSeq number, a
    /// transaction of its own.
    pub fn ack(&self, seq: u32, via: SocketAddr, ids: &mut Ids) -> Request {
        self.build(Method::ACK, seq, via, ids)
    }

    fn build(&self, method: Method, seq: u32, via: SocketAddr, ids: &mut Ids) -> Request {
        let mut r = Request::new(method.clone(), self.remote_target.clone());
        let h = &mut r.headers;
        h.add(HeaderName::Via, format!("SIP/2.0/{} {via};branch={};rport", self.transport, ids.branch()));
        for route in &self.route {
            h.add(HeaderName::Route, route.clone());
        }
        h.add(HeaderName::MaxForwards, "70");
        h.add(HeaderName::From, self.local.clone());
        h.add(HeaderName::To, self.remote.clone());
        h.add(HeaderName::CallId, self.call_id.clone());
        h.add(HeaderName::CSeq, format!("{seq} {method}"));
        r
    }
}

/// The URI of the first Contact, if it parses.
pub fn contact_uri(headers: &Headers) -> Option<Uri> {
    let value = headers.get(&HeaderName::Contact)?;
    NameAddr::parse(value.split(',').next()?).ok().map(|n| n.uri)
}

/// The address of the first route entry, else of the target, when they are IP addresses.
fn next_hop(route: &[String], target: &Uri) -> Option<SocketAddr> {
    match route.first() {
        Some(r) => NameAddr::parse(r).ok().and_then(|n| n.uri.socket_addr()),
        None => target.socket_addr(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_sip::message::{sample, Header};

    fn invite() -> Request {
        sample::request(
            "INVITE sip:+12125550100@127.0.0.1:5070;user=phone
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1
             Record-Route: <sip:127.0.0.1:5060;lr>
             From: <sip:3012@branch.local>;tag=a1
             To: <sip:+12125550100@branch.local>
             Call-ID: call-a
             CSeq: 7 INVITE
             Contact: <sip:3012@192.0.2.50:5062>",
        )
    }

    #[test]
    fn uas_dialog_routes_through_the_record_route() {
        let src = "127.0.0.1:5060".parse().unwrap();
        let mut d = Dialog::as_uas(&invite(), "ours", src, Protocol::Udp).unwrap();
        assert_eq!(d.dest, src);
        let bye = d.request(Method::BYE, "127.0.0.1:5070".parse().unwrap(), &mut Ids::seeded(1));
        assert_eq!(bye.uri.to_string(), "sip:3012@192.0.2.50:5062");
        assert_eq!(bye.headers.get(&HeaderName::Route), Some("<sip:127.0.0.1:5060;lr>"));
        assert_eq!(bye.headers.get(&HeaderName::From), Some("<sip:+12125550100@branch.local>;tag=ours"));
        assert_eq!(bye.headers.get(&HeaderName::To), Some("<sip:3012@branch.local>;tag=a1"));
        assert_eq!(bye.cseq().unwrap().seq, 1);
        assert_eq!(bye.call_id().unwrap(), "call-a");
    }

    #[test]
    fn uac_dialog_takes_the_answer_s_contact_and_tag() {
        let mut req = invite();
        req.headers.remove_all(&HeaderName::RecordRoute);
        let mut ok = req.response(200);
        ok.headers.push(Header::new(HeaderName::Contact, "<sip:carrier@127.0.0.1:5080>"));
        let fallback = "127.0.0.1:9".parse().unwrap();
        let d = Dialog::as_uac(&req, &ok, fallback, Protocol::Udp).unwrap();
        assert_eq!(d.dest, "127.0.0.1:5080".parse().unwrap());
        assert_eq!(d.local_tag, "a1");
        let mut ids = Ids::seeded(1);
        let ack = d.ack(7, "127.0.0.1:5070".parse().unwrap(), &mut ids);
        assert_eq!(ack.cseq().unwrap().to_string(), "7 ACK");
        assert!(ack.to_header().unwrap().tag().is_some());
        let again = d.ack(7, "127.0.0.1:5070".parse().unwrap(), &mut ids);
        assert_ne!(ack.top_via().unwrap().branch(), again.top_via().unwrap().branch());
    }
}
