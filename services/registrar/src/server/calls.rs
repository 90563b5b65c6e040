//! Requests that are not REGISTERs for us: where they go (the routing decision, the Route set,
//! the dialog's remote target) and handing them to the proxy.
use super::{refuse, Server};
use crate::proxy::{binding_hop, route_uri, route_value, Side, Target};
use crate::registrar::{aor_of, binding_key, contact_key};
use crate::routing::{Destination, Router};
use holdfast_sip::driver::Outbound;
use holdfast_sip::message::{Host, HeaderName, Method, NameAddr, Request, Response, Uri};
use holdfast_sip::transaction::TxId;
use crate::trust::flow_of;
use holdfast_sip::transport::{Protocol, Source};
use holdfast_store::Binding;
use std::net::SocketAddr;
use std::time::Instant;

/// Methods this proxy and registrar handle (RFC 3261 §20.5).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REFER, MESSAGE, NOTIFY, SUBSCRIBE, PRACK, REGISTER";

impl Server {
    pub(super) fn on_request(&mut self, id: TxId, mut request: Request, source: Source, inbound: Side, now: Instant) {
        if let Some(top) = self.trust.proven_route(&request, |a| self.addresses.is_ours(a)) {
            return self.in_dialog(id, request, top, inbound, now);
        }
        // The central site's request for an outbound phone, along the Path that names its flow.
        let path_flow = self.path_flow(&request);
        // An initial request, or one that claims a dialog without proving it: our own Route
        // entries come off, and so does any Route preloaded by the sender (as Kamailio's
        // default script does), so nobody steers us to a next hop of their choosing.
        request.headers.remove_all(&HeaderName::Route);
        if self.addressed_to_us(&request.uri) {
            if request.method == Method::REGISTER {
                return self.on_register(id, request, source, now);
            }
            if request.method == Method::OPTIONS && user_of(&request.uri).is_none() {
                let mut r = request.response(200);
                r.headers.add(HeaderName::Allow, ALLOW);
                r.headers.add(HeaderName::Accept, "application/sdp");
                r.headers.add(HeaderName::Supported, "path, outbound");
                return self.respond(id, r);
            }
        }
        if let Method::Extension(_) = request.method {
            let mut r = request.response(501);
            r.headers.add(HeaderName::Allow, ALLOW);
            return self.respond(id, r);
        }
        if request.method == Method::REGISTER {
            // A REGISTER for another domain: this is not its registrar.
            return self.respond(id, refuse(&request, 403, "Forbidden (not a registrar for this domain)"));
        }
        if let Some(auth) = &self.auth {
            auth.remove_our_answers(&mut request, source.addr.ip());
        }
        if let Some(r) = self.loop_or_hops(&request) {
            return self.respond(id, r);
        }
        let unix = super::unix_now();
        let ours = self.addresses.is_ours(source.addr);
        let registrar = &self.registrar;
        if let Err(why) = self.trust.may_call(&request, source.addr, ours, |aor| registrar.lookup(aor, unix)) {
            log::info!("{} from {} refused: {why}", request.method, source.addr);
            self.counters.refused_callers += 1;
            return self.respond(id, refuse(&request, 403, why));
        }
        if let Some((flow, transport)) = path_flow {
            return match self.flow_target(request.uri.clone(), flow, transport) {
                Ok(t) => self.proxy.forward(&mut self.txns, id, request, inbound, vec![t], None, now),
                Err(flow) => self.flow_failed(id, &request, flow),
            };
        }
        // An address for a Request-URI reaches only a contact registered here (the central
        // site's calls to a phone, after its Path): no relaying to hosts of the caller's choice.
        if !self.addressed_to_us(&request.uri) && request.uri.socket_addr().is_some() {
            return match self.contact_target(&request) {
                Some(t) => self.proxy.forward(&mut self.txns, id, request, inbound, vec![t], None, now),
                None => self.respond(id, refuse(&request, 404, "Not Found (no such contact here)")),
            };
        }
        self.route_initial(id, request, inbound, now);
    }

    /// A request of a dialog this proxy record-routed (`top`, its top Route, proved it): past
    /// our Route entries to the next one, or to its Request-URI, the dialog's remote target (RFC
    /// 3261 §16.12), or to the phone's flow our last entry names (430 Flow Failed when that
    /// connection is gone, RFC 5626 §5.3).
    fn in_dialog(&mut self, id: TxId, mut request: Request, top: Uri, inbound: Side, now: Instant) {
        let ours = self.strip_our_routes(&mut request, top);
        if let Some(r) = self.loop_or_hops(&request) {
            return self.respond(id, r);
        }
        match self.next_hop(&request, ours) {
            Ok(Some(t)) => self.proxy.forward(&mut self.txns, id, request, inbound, vec![t], None, now),
            Ok(None) => self.respond(id, refuse(&request, 404, "Not Found (next hop is not an address)")),
            Err(flow) => self.flow_failed(id, &request, flow),
        }
    }

    fn flow_failed(&mut self, id: TxId, request: &Request, flow: SocketAddr) {
        log::info!("{} for the flow {flow}: its connection is gone", request.method);
        self.respond(id, refuse(request, 430, "Flow Failed"))
    }

    /// The flow the top Route names when it is our Path entry for an outbound phone, with the
    /// entry's transport.
    fn path_flow(&self, request: &Request) -> Option<(SocketAddr, Protocol)> {
        let top = NameAddr::parse(request.headers.get(&HeaderName::Route)?).ok()?.uri;
        if !top.socket_addr().is_some_and(|a| self.addresses.is_ours(a)) {
            return None;
        }
        Some((self.path.flow(&top)?, hop_of(&top)?.1))
    }

    /// A target over the phone's own connection `flow` (RFC 5626 §5.3); Err while it is gone.
    fn flow_target(&mut self, uri: Uri, flow: SocketAddr, transport: Protocol) -> Result<Target, SocketAddr> {
        if !self.transport.has_connection(flow, transport) {
            return Err(flow);
        }
        let local = self.addresses.facing(flow.ip(), transport);
        Ok(Target { uri, dest: flow, transport, route: Vec::new(), local, asserted: None, flow: Some(flow) })
    }

    /// 482 for a request looping through us, 483 when its Max-Forwards ran out (400 if unreadable).
    fn loop_or_hops(&self, request: &Request) -> Option<Response> {
        if crate::proxy::is_loop(request, &self.addresses.ours()) {
            return Some(request.response(482));
        }
        match request.headers.get(&HeaderName::MaxForwards).map(|v| v.trim().parse::<u32>()) {
            Some(Ok(0)) => Some(request.response(483)),
            Some(Err(_)) => Some(refuse(request, 400, "Bad Request (malformed Max-Forwards)")),
            _ => None,
        }
    }

    /// Where an in-dialog request goes after our Route entries (`ours`, the last of them, and
    /// whether it was the top one, which `proven_route` proved before they came off): the next
    /// Route (loose routing, the Request-URI stays), else the phone's flow our entry names while
    /// it is open (Err when it is gone), else its Request-URI.
    fn next_hop(&mut self, request: &Request, (ours, top): (Uri, bool)) -> Result<Option<Target>, SocketAddr> {
        if let Some(next) = request.headers.get(&HeaderName::Route).and_then(|r| NameAddr::parse(r).ok()) {
            return Ok(self.target_at(next.uri, request.uri.clone()));
        }
        let proven = (top || self.trust.stamp.proves(&ours, request)).then_some(ours);
        let flow = proven.and_then(|u| Some((flow_of(&u)?, hop_of(&u)?.1)));
        let Some((flow, transport)) = flow else { return Ok(self.target_at(request.uri.clone(), request.uri.clone())) };
        self.flow_target(request.uri.clone(), flow, transport).map(Some)
    }

    /// The phone's own connection a request came in on (RFC 5626 flow): a TCP or TLS
    /// connection from a host other than the central site's proxies (a proxy is reached by its
    /// Record-Route, not by the connection it happened to use).
    pub(super) fn phone_flow(&self, source: &Source) -> Option<SocketAddr> {
        let central = self.central.as_ref().is_some_and(|c| c.proxies.iter().any(|p| p.ip() == source.addr.ip()));
        (source.transport.is_reliable() && source.conn.is_some() && !central).then_some(source.addr)
    }

    /// The phone's own connection a REGISTER came in on (`phone_flow`) when the phone asked
    /// for outbound (RFC 5626 §4.2: a Contact with `reg-id`): our Path names that flow.
    pub(super) fn outbound_flow(&self, register: &Request, source: &Source) -> Option<SocketAddr> {
        let outbound = register
            .headers
            .get_all(&HeaderName::Contact)
            .any(|c| NameAddr::parse(c).is_ok_and(|c| c.params.value("reg-id").is_some()));
        outbound.then(|| self.phone_flow(source)).flatten()
    }

    /// The registered contact a Request-URI names: among the bindings of the To AOR first, else
    /// among all (a call forwarded to another user's phone).
    fn contact_target(&mut self, request: &Request) -> Option<Target> {
        let key = contact_key(&request.uri);
        let unix = super::unix_now();
        let to_aor = request.to_header().ok().and_then(|t| aor_of(&t.uri));
        let found = to_aor
            .and_then(|aor| self.registrar.lookup(&aor, unix).into_iter().find(|b| binding_key(b) == key).cloned())
            .or_else(|| self.registrar.find_contact(&key, unix).cloned())?;
        self.binding_target(&found)
    }

    fn route_initial(&mut self, id: TxId, request: Request, inbound: Side, now: Instant) {
        match self.plan_initial(&request) {
            Ok((targets, fallback)) => self.proxy.forward(&mut self.txns, id, request, inbound, targets, fallback, now),
            Err(r) => self.respond(id, r),
        }
    }

    /// Requests sent to the central site just before the WAN died: routed again as survival
    /// routes them, so a call dialled during detection still connects.
    pub(super) fn reroute_stranded(&mut self, now: Instant) {
        let Some(central) = &self.central else { return };
        let dead = central.proxies.clone();
        for (id, request) in self.proxy.stranded(&dead) {
            log::info!("rerouting {} {} stranded on the dead WAN", request.method, request.uri);
            match self.plan_initial(&request) {
                Ok((targets, fallback)) => self.proxy.reroute(&mut self.txns, id, targets, fallback, now),
                Err(r) => self.proxy.give_up(&mut self.txns, id, r, now),
            }
        }
    }

    /// The targets (and voicemail fallback) of an initial request, or the refusal.
    fn plan_initial(&mut self, request: &Request) -> Result<(Vec<Target>, Option<Target>), holdfast_sip::message::Response> {
        let ours = self.addressed_to_us(&request.uri);
        let user = user_of(&request.uri).map(str::to_string);
        let mode = self.mode();
        let unix = super::unix_now();
        let router = Router {
            directory: &self.directory,
            site: &self.site,
            domain: &self.domain,
            pstn: self.survival.mediation.is_some(),
        };
        let registrar = &self.registrar;
        let destination =
            router.route(user.as_deref(), ours, mode, |aor| registrar.lookup(aor, unix).into_iter().cloned().collect());
        match destination {
            Destination::Local(bindings) => {
                let mut targets: Vec<Target> = bindings.iter().filter_map(|b| self.binding_target(b)).collect();
                self.sips_over_tls_only(request, &mut targets)?;
                let fallback = match (mode, &self.survival.voicemail, request.method == Method::INVITE) {
                    (crate::routing::Mode::Survival, Some(vm), true) => self.pstn_target(&vm.clone(), request),
                    _ => None,
                };
                Ok((targets, fallback))
            }
            Destination::Central => match self.central_target(request.uri.clone()) {
                Some(t) => {
                    let mut targets = vec![t];
                    self.sips_over_tls_only(request, &mut targets)?;
                    Ok((targets, None))
                }
                None => Err(refuse(request, 503, "Service Unavailable (no central site)")),
            },
            Destination::Pstn(number) => match self.pstn_target(&number, request) {
                Some(t) => {
                    log::debug!("call {} to the PSTN as {number}", request.call_id().unwrap_or("?"));
                    Ok((vec![t], None))
                }
                None => Err(refuse(request, 503, "Service Unavailable (no PSTN route)")),
            },
            Destination::Refuse(status, reason) => Err(refuse(request, status, reason)),
        }
    }

    /// A sips: Request-URI asks for TLS on every hop, to the phone too (RFC 3261 §26.2.2, RFC
    /// 5630 §3.1.3: no last-hop exception): only the targets reached over TLS are kept. None
    /// left of some is 480 with warn-code 380 (RFC 5630 §5.3); the caller must not retry as sip:.
    /// (sba-mediation checks the PSTN side's own hops: its trunks.)
    fn sips_over_tls_only(&self, request: &Request, targets: &mut Vec<Target>) -> Result<(), Response> {
        if !matches!(&request.uri, Uri::Sip(sip) if sip.secure) {
            return Ok(());
        }
        let before = targets.len();
        targets.retain(|t| t.transport == Protocol::Tls);
        if targets.is_empty() && before > 0 {
            let mut r = refuse(request, 480, "Temporarily Unavailable (no TLS hop to the callee)");
            r.headers.add(HeaderName::Warning, format!("380 {} \"SIPS Not Allowed\"", self.domain));
            return Err(r);
        }
        Ok(())
    }

    /// An ACK for a 2xx: no transaction, sent on where its Route or Request-URI says when it
    /// proves its dialog, dropped otherwise (no task of its own: it joins the loop's queue).
    pub(super) fn forward_ack(&mut self, mut ack: Request, inbound: Side) {
        let Some(top) = self.trust.proven_route(&ack, |a| self.addresses.is_ours(a)) else {
            self.counters.unproven_acks += 1;
            return log::debug!("ACK for {} proves no dialog of ours: dropped", ack.uri);
        };
        let ours = self.strip_our_routes(&mut ack, top);
        let Ok(Some(target)) = self.next_hop(&ack, ours) else {
            return log::debug!("ACK for {} has nowhere to go", ack.uri);
        };
        let request = self.proxy.ack_request(&ack, inbound, &target);
        self.outbox.push_back(Outbound::Request { request, dest: target.dest, transport: target.transport });
    }

    /// Removes the Route entries naming us from the top: `top` (the top one, read already), and
    /// a second after a double Record-Route or an outbound proxy setting; the last one removed,
    /// and whether it was `top`.
    fn strip_our_routes(&mut self, request: &mut Request, top: Uri) -> (Uri, bool) {
        request.headers.remove_first(&HeaderName::Route);
        let mut last = (top, true);
        while let Some(next) = request.headers.get(&HeaderName::Route).and_then(|r| NameAddr::parse(r).ok()) {
            if !next.uri.socket_addr().is_some_and(|a| self.addresses.is_ours(a)) {
                break;
            }
            request.headers.remove_first(&HeaderName::Route);
            last = (next.uri, false);
        }
        last
    }

    /// Whether a Request-URI names this branch: its domain, or one of its addresses.
    pub(super) fn addressed_to_us(&self, uri: &Uri) -> bool {
        match uri {
            Uri::Sip(sip) => match &sip.host {
                Host::Domain(d) => d.eq_ignore_ascii_case(&self.domain),
                _ => uri.socket_addr().is_some_and(|a| self.addresses.is_ours(a)),
            },
            Uri::Tel(_) => true,
            Uri::Other(_) => false,
        }
    }

    /// A target that carries `request_uri` to the host and port of `next`.
    fn target_at(&mut self, next: Uri, request_uri: Uri) -> Option<Target> {
        let (dest, transport) = hop_of(&next)?;
        let local = self.addresses.facing(dest.ip(), transport);
        Some(Target { uri: request_uri, dest, transport, route: Vec::new(), local, asserted: None, flow: None })
    }

    /// A registered contact, reached over the flow it registered from while it is open, else at
    /// its Contact (`binding_hop`), following its Path.
    fn binding_target(&mut self, b: &Binding) -> Option<Target> {
        let uri = Uri::parse(&b.contact).ok()?;
        let contact = hop_of(&uri);
        let transport = Protocol::from_param(&b.transport).unwrap_or(Protocol::Udp);
        let flow = match b.source.parse().ok() {
            Some(source) => (source, transport),
            None => contact?,
        };
        let open = self.transport.has_connection(flow.0, flow.1);
        let (dest, transport) = binding_hop(flow, contact, open);
        let local = self.addresses.facing(dest.ip(), transport);
        // Over its own open connection, the phone's side of the dialog is that flow.
        let flow = (transport.is_reliable() && open && (dest, transport) == flow).then_some(dest);
        Some(Target { uri, dest, transport, route: b.path.clone(), local, asserted: None, flow })
    }

    fn central_target(&mut self, request_uri: Uri) -> Option<Target> {
        let dest = self.central_proxy()?;
        let transport = self.central_transport();
        let local = self.addresses.facing(dest.ip(), transport);
        Some(Target { uri: request_uri, dest, transport, route: Vec::new(), local, asserted: None, flow: None })
    }

    /// sba-mediation, with the number in the Request-URI and the caller's own number, which the
    /// directory gives its user (a DID of its extension block, or its named entry), asserted.
    /// A caller without one goes out without a number (sba-mediation withholds it).
    fn pstn_target(&mut self, number: &str, request: &Request) -> Option<Target> {
        let dest = self.survival.mediation?;
        let uri = Uri::parse(&format!("sip:{number}@{dest};user=phone")).ok()?;
        let local = self.addresses.facing(dest.ip(), Protocol::Udp);
        let caller = request.from_header().ok().and_then(|f| user_of(&f.uri).map(str::to_string));
        let asserted = caller.and_then(|user| self.directory.e164_of(&user).map(|(_, e164)| e164));
        Some(Target { uri, dest, transport: Protocol::Udp, route: Vec::new(), local, asserted, flow: None })
    }

    /// The central proxy to use now: the first one the WAN monitor sees answering.
    pub(super) fn central_proxy(&self) -> Option<SocketAddr> {
        let central = self.central.as_ref()?;
        let up = self.wan.as_ref().and_then(|w| {
            w.target_states().find(|(_, s)| *s == crate::wan::WanState::Up).map(|(a, _)| a)
        });
        up.or_else(|| central.proxies.first().copied())
    }

    /// How the central site is reached (`[central] transport`).
    pub(super) fn central_transport(&self) -> Protocol {
        self.central.as_ref().map_or(Protocol::Udp, |c| c.transport.protocol())
    }

    /// The Path entry that brings the central site's requests for a phone back through us,
    /// over the transport we reach it by; with the phone's `flow` for an outbound phone on its
    /// own connection (`PathStamp`).
    pub(super) fn path_towards(&mut self, central: SocketAddr, flow: Option<SocketAddr>) -> String {
        let transport = self.central_transport();
        let side = Side { addr: self.addresses.facing(central.ip(), transport), transport, flow: None };
        match flow {
            Some(flow) => self.path.entry(&route_uri(side), flow),
            None => route_value(side),
        }
    }

}

fn user_of(uri: &Uri) -> Option<&str> {
    match uri {
        Uri::Sip(sip) => sip.user.as_deref(),
        Uri::Tel(tel) => Some(tel.number.as_str()),
        Uri::Other(_) => None,
    }
}

/// Where a URI leads (RFC 3263 §4, without DNS: the branch's next hops are addresses): over its
/// `transport` parameter, over TLS for a sips: URI (RFC 3261 §26.2.2: TLS on every hop), else
/// UDP; to its port, else the transport's default (5061 over TLS).
fn hop_of(uri: &Uri) -> Option<(SocketAddr, Protocol)> {
    let sip = uri.as_sip()?;
    let named = sip.params.value("transport").and_then(Protocol::from_param);
    let transport = if sip.secure { Protocol::Tls } else { named.unwrap_or(Protocol::Udp) };
    let ip = sip.host.ip()?;
    Some((SocketAddr::new(ip, sip.port.unwrap_or(transport.default_port())), transport))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uri_leads_over_its_transport_to_its_port_or_the_transports_default() {
        let hop = |u: &str| hop_of(&Uri::parse(u).unwrap());
        let at = |a: &str, t| Some((a.parse::<SocketAddr>().unwrap(), t));
        assert_eq!(hop("sip:bob@192.0.2.5"), at("192.0.2.5:5060", Protocol::Udp));
        assert_eq!(hop("sip:bob@192.0.2.5:5070;transport=TCP"), at("192.0.2.5:5070", Protocol::Tcp));
        assert_eq!(hop("sip:192.0.2.5;transport=tls;lr"), at("192.0.2.5:5061", Protocol::Tls));
        assert_eq!(hop("sips:bob@192.0.2.5"), at("192.0.2.5:5061", Protocol::Tls));
        assert_eq!(hop("sips:bob@192.0.2.5:5071;transport=tcp"), at("192.0.2.5:5071", Protocol::Tls), "sips over TCP is TLS");
        assert_eq!(hop("sip:bob@branch.example"), None, "no DNS at the branch");
        assert_eq!(hop("tel:+15550100"), None);
    }
}
