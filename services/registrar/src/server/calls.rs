//! Requests that are not REGISTERs for us: where they go (the routing decision, the Route set,
//! the dialog's remote target) and handing them to the proxy.
use super::{refuse, Server};
use crate::proxy::{binding_hop, route_value, Target};
use crate::registrar::aor_of;
use crate::routing::{Destination, Router};
use holdfast_sip::message::{Host, HeaderName, Message, Method, NameAddr, Request, Uri};
use holdfast_sip::transaction::TxId;
use holdfast_sip::transport::{Protocol, Source};
use holdfast_store::Binding;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// Methods this proxy and registrar handle (RFC 3261 §20.5).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REFER, MESSAGE, NOTIFY, SUBSCRIBE, PRACK, REGISTER";

impl Server {
    pub(super) fn on_request(&mut self, id: TxId, mut request: Request, source: Source, inbound: IpAddr, now: Instant) {
        self.strip_our_routes(&mut request);
        let routed_on = request.headers.get(&HeaderName::Route).is_some();
        if !routed_on && self.addressed_to_us(&request.uri) {
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
        if crate::proxy::is_loop(&request, &self.addresses.ours()) {
            return self.respond(id, request.response(482));
        }
        let hops = request.headers.get(&HeaderName::MaxForwards).map(|v| v.trim().parse::<u32>());
        match hops {
            Some(Ok(0)) => return self.respond(id, request.response(483)),
            Some(Err(_)) => return self.respond(id, refuse(&request, 400, "Bad Request (malformed Max-Forwards)")),
            _ => {}
        }
        let in_dialog = request.to_header().is_ok_and(|to| to.tag().is_some());
        if !in_dialog && !self.trusted_caller(&request, source) {
            log::info!("{} from {} refused: the caller is not registered here", request.method, source.addr);
            return self.respond(id, refuse(&request, 403, "Forbidden (caller not registered here)"));
        }
        if let Some(next) = request.headers.get(&HeaderName::Route).and_then(|r| NameAddr::parse(r).ok()) {
            // Loose routing: the next hop is the first Route; the Request-URI stays (§16.12).
            return match self.target_at(next.uri, request.uri.clone()) {
                Some(t) => self.proxy.forward(&mut self.txns, id, request, inbound, vec![t], None, now),
                None => self.respond(id, refuse(&request, 404, "Not Found (next hop is not an address)")),
            };
        }
        if in_dialog || !self.addressed_to_us(&request.uri) && is_address(&request.uri) {
            return match self.target_at(request.uri.clone(), request.uri.clone()) {
                Some(t) => self.proxy.forward(&mut self.txns, id, request, inbound, vec![t], None, now),
                None => self.respond(id, request.response(404)),
            };
        }
        self.route_initial(id, request, inbound, now);
    }

    /// Whether this proxy may place a new call (or other out-of-dialog request) for `request`'s
    /// sender. With authentication on, only a device that registered here with its password
    /// (From names an AOR with a binding from the sender's IP) or a peer of the appliance (the
    /// central proxies, sba-mediation, ourselves) may: anyone else on the LAN could otherwise
    /// call the PSTN as any user (toll fraud) or through us to any address.
    fn trusted_caller(&self, request: &Request, source: Source) -> bool {
        if self.auth.is_none() {
            return true;
        }
        let ip = source.addr.ip();
        let peers = self.central.iter().flat_map(|c| c.proxies.iter()).chain(self.survival.mediation.iter());
        if peers.map(SocketAddr::ip).any(|p| p == ip) || self.addresses.is_ours(source.addr) {
            return true;
        }
        let Some(aor) = request.from_header().ok().and_then(|f| aor_of(&f.uri)) else { return false };
        let now = super::unix_now();
        self.registrar.lookup(&aor, now).iter().any(|b| b.source.parse::<SocketAddr>().is_ok_and(|s| s.ip() == ip))
    }

    fn route_initial(&mut self, id: TxId, request: Request, inbound: IpAddr, now: Instant) {
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
                let targets: Vec<Target> = bindings.iter().filter_map(|b| self.binding_target(b)).collect();
                let fallback = match (mode, &self.survival.voicemail, request.method == Method::INVITE) {
                    (crate::routing::Mode::Survival, Some(vm), true) => self.pstn_target(&vm.clone()),
                    _ => None,
                };
                Ok((targets, fallback))
            }
            Destination::Central => match self.central_target(request.uri.clone()) {
                Some(t) => Ok((vec![t], None)),
                None => Err(refuse(request, 503, "Service Unavailable (no central site)")),
            },
            Destination::Pstn(number) => match self.pstn_target(&number) {
                Some(t) => {
                    log::debug!("call {} to the PSTN as {number}", request.call_id().unwrap_or("?"));
                    Ok((vec![t], None))
                }
                None => Err(refuse(request, 503, "Service Unavailable (no PSTN route)")),
            },
            Destination::Refuse(status, reason) => Err(refuse(request, status, reason)),
        }
    }

    /// An ACK for a 2xx: no transaction, forwarded where its Route or Request-URI says.
    pub(super) fn forward_ack(&mut self, mut ack: Request, inbound: IpAddr) {
        self.strip_our_routes(&mut ack);
        let next = match ack.headers.get(&HeaderName::Route).and_then(|r| NameAddr::parse(r).ok()) {
            Some(route) => route.uri,
            None => ack.uri.clone(),
        };
        let Some(target) = self.target_at(next, ack.uri.clone()) else {
            return log::debug!("ACK for {} has nowhere to go", ack.uri);
        };
        let out = self.proxy.ack_request(&ack, inbound, &target);
        let transport = self.transport.clone();
        tokio::spawn(async move {
            if let Err(e) = transport.send_to(&Message::Request(out), target.dest, target.transport).await {
                log::debug!("ACK not forwarded: {e}");
            }
        });
    }

    /// Removes the Route entries naming us from the top (one, or two after a double
    /// Record-Route, or an outbound proxy setting).
    fn strip_our_routes(&mut self, request: &mut Request) {
        while let Some(top) = request.headers.get(&HeaderName::Route).and_then(|r| NameAddr::parse(r).ok()) {
            if !address_of(&top.uri).is_some_and(|a| self.addresses.is_ours(a)) {
                break;
            }
            request.headers.remove_first(&HeaderName::Route);
        }
    }

    /// Whether a Request-URI names this branch: its domain, or one of its addresses.
    pub(super) fn addressed_to_us(&self, uri: &Uri) -> bool {
        match uri {
            Uri::Sip(sip) => match &sip.host {
                Host::Domain(d) => d.eq_ignore_ascii_case(&self.domain),
                _ => address_of(uri).is_some_and(|a| self.addresses.is_ours(a)),
            },
            Uri::Tel(_) => true,
            Uri::Other(_) => false,
        }
    }

    /// A target that carries `request_uri` to the host and port of `next`.
    fn target_at(&mut self, next: Uri, request_uri: Uri) -> Option<Target> {
        let dest = address_of(&next)?;
        let transport = transport_of(&next);
        let local = self.addresses.local_for(dest.ip());
        Some(Target { uri: request_uri, dest, transport, route: Vec::new(), local })
    }

    /// A registered contact, reached over the flow it registered from while it is open, else at
    /// its Contact (`binding_hop`), following its Path.
    fn binding_target(&mut self, b: &Binding) -> Option<Target> {
        let uri = Uri::parse(&b.contact).ok()?;
        let contact = address_of(&uri).map(|a| (a, transport_of(&uri)));
        let transport = if b.transport == "tcp" { Protocol::Tcp } else { Protocol::Udp };
        let flow = match b.source.parse().ok() {
            Some(source) => (source, transport),
            None => contact?,
        };
        let (dest, transport) = binding_hop(flow, contact, self.transport.has_connection(flow.0));
        let local = self.addresses.local_for(dest.ip());
        Some(Target { uri, dest, transport, route: b.path.clone(), local })
    }

    fn central_target(&mut self, request_uri: Uri) -> Option<Target> {
        let dest = self.central_proxy()?;
        let local = self.addresses.local_for(dest.ip());
        Some(Target { uri: request_uri, dest, transport: Protocol::Udp, route: Vec::new(), local })
    }

    /// sba-mediation, with the number in the Request-URI.
    fn pstn_target(&mut self, number: &str) -> Option<Target> {
        let dest = self.survival.mediation?;
        let uri = Uri::parse(&format!("sip:{number}@{dest};user=phone")).ok()?;
        let local = self.addresses.local_for(dest.ip());
        Some(Target { uri, dest, transport: Protocol::Udp, route: Vec::new(), local })
    }

    /// The central proxy to use now: the first one the WAN monitor sees answering.
    pub(super) fn central_proxy(&self) -> Option<SocketAddr> {
        let central = self.central.as_ref()?;
        let up = self.wan.as_ref().and_then(|w| {
            w.target_states().find(|(_, s)| *s == crate::wan::WanState::Up).map(|(a, _)| a)
        });
        up.or_else(|| central.proxies.first().copied())
    }

    /// The Path entry that brings the central site's requests for a phone back through us.
    pub(super) fn path_towards(&mut self, central: SocketAddr) -> String {
        let local = self.addresses.local_for(central.ip());
        route_value(SocketAddr::new(local, self.addresses.port()))
    }

}

fn user_of(uri: &Uri) -> Option<&str> {
    match uri {
        Uri::Sip(sip) => sip.user.as_deref(),
        Uri::Tel(tel) => Some(tel.number.as_str()),
        Uri::Other(_) => None,
    }
}

/// The socket address a URI names, when its host is an IP (no DNS at the branch).
fn address_of(uri: &Uri) -> Option<SocketAddr> {
    let Uri::Sip(sip) = uri else { return None };
    let ip: IpAddr = match &sip.host {
        Host::V4(a) => (*a).into(),
        Host::V6(a) => (*a).into(),
        Host::Domain(_) => return None,
    };
    Some(SocketAddr::new(ip, sip.port.unwrap_or(5060)))
}

fn is_address(uri: &Uri) -> bool {
    address_of(uri).is_some()
}

fn transport_of(uri: &Uri) -> Protocol {
    match uri {
        Uri::Sip(sip) if sip.params.value("transport").is_some_and(|t| t.eq_ignore_ascii_case("tcp")) => Protocol::Tcp,
        _ => Protocol::Udp,
    }
}
