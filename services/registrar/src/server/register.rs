//! REGISTER in the three modes: the branch as primary registrar (no central site), pass-through
//! to the central site with caching (WAN up), and survival from the cache (WAN down).
use super::{bad, refuse, Server};
use crate::auth::Check;
use crate::registrar::{aor_of, contact_key, Change, Decision};
use crate::routing::Mode;
use crate::trust::{survival_register, SurvivalRegister};
use holdfast_sip::message::{Header, HeaderName, Method, NameAddr, Request, Response};
use holdfast_sip::transaction::{Event, TxEvent, TxId};
use holdfast_sip::transport::Source;
use holdfast_store::{BindingOp, Origin};
use std::net::IpAddr;
use std::time::Instant;

/// A phone's REGISTER waiting for the central site's answer.
pub struct Relay {
    server: TxId,
    request: Request,
    aor: String,
    source: Source,
}

impl Relay {
    pub fn into_parts(self) -> (TxId, Request, String, Source) {
        (self.server, self.request, self.aor, self.source)
    }
}

pub fn op(change: Change) -> BindingOp {
    match change {
        Change::Upsert(b) => BindingOp::Upsert(b),
        Change::Remove { aor, contact } => BindingOp::Delete { aor, contact },
    }
}

impl Server {
    pub(super) fn on_register(&mut self, id: TxId, req: Request, source: Source, now: Instant) {
        let to = match req.to_header() {
            Ok(to) => to,
            Err(e) => return self.respond(id, bad(&req, &e.to_string())),
        };
        let Some(aor) = aor_of(&to.uri) else {
            return self.respond(id, bad(&req, "To is not a sip: address of record"));
        };
        match self.mode() {
            Mode::Standalone => self.register_locally(id, req, &aor, source, now),
            Mode::Normal => self.relay_register(id, req, aor, source, now),
            Mode::Survival => self.register_in_survival(id, req, &aor, source, now),
        }
    }

    /// A REGISTER without credentials for the branch's own registrar gets its 401 with no server
    /// transaction, as Kamailio's sl module answers: half of all REGISTERs are such, and each
    /// transaction would hold its response for 64*T1. A retransmission gets the same challenge
    /// anew (RFC 3261 §8.2.7: the To tag is derived from the request, so it is the same tag).
    pub(super) fn stateless_challenge(&mut self, req: &Request, source: &Source, now: Instant) -> Option<Response> {
        let candidate = req.method == Method::REGISTER
            && self.mode() == Mode::Standalone
            && req.headers.get(&HeaderName::Authorization).is_none()
            && req.headers.get(&HeaderName::Route).is_none()
            && self.addressed_to_us(&req.uri);
        if !candidate {
            return None;
        }
        let aor = aor_of(&req.to_header().ok()?.uri)?;
        let (user, domain) = split_aor(&aor);
        let Check::Refuse(r) = self.auth.as_mut()?.check(req, user, domain, source.addr.ip(), now) else {
            return None;
        };
        (r.status == 401).then_some(r)
    }

    /// A stateless challenge for a banned or shedding source's request, its nonce bound to
    /// `ip` (401 for a REGISTER, in its To domain; 407 for another request, in its From domain):
    /// how a real phone behind a flood forged with its address proves the address is its own.
    pub(super) fn bound_challenge(&self, req: &Request, ip: IpAddr, now: Instant) -> Option<Response> {
        let register = req.method == Method::REGISTER;
        let party = if register { req.to_header() } else { req.from_header() };
        let aor = aor_of(&party.ok()?.uri)?;
        let (_, domain) = split_aor(&aor);
        let auth = self.auth.as_ref().filter(|a| a.has_domain(domain))?;
        Some(auth.challenge(req, domain, ip, false, !register, now))
    }

    /// The branch's own registrar: local credentials, local bindings.
    fn register_locally(&mut self, id: TxId, req: Request, aor: &str, source: Source, now: Instant) {
        if !self.authenticate(id, &req, aor, &source, now) {
            return;
        }
        self.decide(id, &req, aor, source, Origin::Local);
    }

    /// WAN down: the branch answers from its cache, and believes a REGISTER only on evidence
    /// (`trust::survival_register`): an unchanged refresh from the binding's own address or
    /// connection, or the user's password when its HA1 is on the box.
    pub(super) fn register_in_survival(&mut self, id: TxId, req: Request, aor: &str, source: Source, now: Instant) {
        let unix = super::unix_now();
        let (user, domain) = split_aor(aor);
        let has_ha1 = self.auth.as_ref().is_some_and(|a| a.has_user(user, domain));
        let live = self.registrar.lookup(aor, unix);
        match survival_register(&req, &source, &live, has_ha1) {
            SurvivalRegister::Refresh => {
                let capped = self.cap_expiry(&req);
                self.decide(id, &capped, aor, source, Origin::Central);
            }
            SurvivalRegister::Challenge => {
                if self.authenticate(id, &req, aor, &source, now) {
                    self.decide(id, &req, aor, source, Origin::Local);
                }
            }
            SurvivalRegister::Refuse(why) => {
                log::info!("survival: REGISTER for {aor} from {} refused: {why}", source.addr);
                self.counters.refused_registers += 1;
                self.respond(id, refuse(&req, 403, why));
            }
        }
    }

    /// Runs the local digest check; false when it has answered the request itself.
    fn authenticate(&mut self, id: TxId, req: &Request, aor: &str, source: &Source, now: Instant) -> bool {
        let Some(auth) = &mut self.auth else { return true };
        let (user, domain) = split_aor(aor);
        match auth.check(req, user, domain, source.addr.ip(), now) {
            Check::Pass => true,
            Check::Refuse(r) => {
                self.respond(id, r);
                false
            }
            Check::RefuseLater(r, delay) => {
                self.respond_later(id, r, delay);
                false
            }
        }
    }

    fn decide(&mut self, id: TxId, req: &Request, aor: &str, source: Source, origin: Origin) {
        match self.registrar.register(req, aor, source, super::unix_now(), origin) {
            Decision::Reply(r) => self.respond(id, r),
            Decision::Commit { changes, response, undo } => {
                let ops = changes.into_iter().map(op).collect();
                self.commit_then_respond(id, ops, response, undo);
            }
        }
    }

    /// Sends the phone's REGISTER on to the central registrar, with a Path through us so the
    /// central site's calls for the phone come back this way (RFC 3327).
    fn relay_register(&mut self, id: TxId, req: Request, aor: String, source: Source, now: Instant) {
        // The phone comes back every branch_expires; while the central grant outlives two of
        // those, its refreshes are the branch's to answer and the WAN is left alone.
        let branch_expires = self.central.as_ref().map_or(u32::MAX, |c| c.branch_expires);
        let keep = 2 * u64::from(branch_expires);
        if let Some(Decision::Commit { changes, mut response, undo }) =
            self.registrar.refresh_locally(&req, &aor, &source, super::unix_now(), keep)
        {
            shorten(&mut response, branch_expires);
            let ops = changes.into_iter().map(op).collect();
            return self.commit_then_respond(id, ops, response, undo);
        }
        let Some(central) = self.central_proxy() else {
            return self.respond(id, refuse(&req, 503, "Service Unavailable (no central site)"));
        };
        let transport = self.central_transport();
        let local = self.addresses.facing(central.ip(), transport);
        let mut out = req.clone();
        let hops = req.headers.get(&HeaderName::MaxForwards).and_then(|v| v.trim().parse::<u32>().ok()).unwrap_or(70);
        if hops == 0 {
            return self.respond(id, req.response(483));
        }
        out.headers.set(HeaderName::MaxForwards, (hops - 1).min(70).to_string());
        let path = self.path_towards(central, self.outbound_flow(&req, &source));
        out.headers.push_front(Header::new(HeaderName::Path, path));
        if !out.headers.get_all(&HeaderName::Supported).any(|s| s.trim().eq_ignore_ascii_case("path")) {
            out.headers.add(HeaderName::Supported, "path");
        }
        let via = format!("SIP/2.0/{transport} {local};branch={}", self.ids.branch());
        out.headers.push_front(Header::new(HeaderName::Via, via));
        match self.txns.send_request(out, central, transport, now) {
            Ok(client) => {
                self.relays.insert(client, Relay { server: id, request: req, aor, source });
            }
            Err(e) => {
                log::warn!("REGISTER not relayed: {e}");
                self.respond(id, refuse(&req, 500, "Server Internal Error (relay failed)"));
            }
        }
    }

    /// The central site answered (or did not) a relayed REGISTER.
    pub(super) fn on_relay_event(&mut self, event: Event, _now: Instant) {
        let final_response = match event.event {
            TxEvent::Response(r) if r.status < 200 => return,
            TxEvent::Response(r) | TxEvent::TimedOut(r) => r,
            TxEvent::TransportError => Response::new(503),
            TxEvent::Terminated | TxEvent::AckTimedOut => {
                self.relays.remove(&event.id);
                return;
            }
        };
        let Some(relay) = self.relays.remove(&event.id) else { return };
        let mut r = final_response;
        r.headers.remove_first(&HeaderName::Via);
        if r.headers.count(&HeaderName::Via) == 0 {
            // A response we made up (timeout, transport error): answer the phone's request.
            r = refuse(&relay.request, 503, "Service Unavailable (central registrar did not answer)");
            r.headers.add(HeaderName::parse("Retry-After"), "5");
            return self.respond(relay.server, r);
        }
        if !(200..300).contains(&r.status) {
            // Challenges and refusals pass through untouched.
            return self.respond(relay.server, r);
        }
        self.cache_central_grant(relay, r);
    }

    /// Caches what the central site granted for the phone's contacts, then tells the phone a
    /// shorter expiry (so it comes back soon) once the cache is on disk.
    fn cache_central_grant(&mut self, relay: Relay, mut ok: Response) {
        let granted = granted_expiries(&relay.request, &ok);
        let mut cached = relay.request.clone();
        cached.headers.remove_all(&HeaderName::Contact);
        cached.headers.remove_all(&HeaderName::Expires);
        for (value, expires) in &granted {
            cached.headers.add(HeaderName::Contact, with_expires(value, *expires));
        }
        if granted.is_empty() {
            for c in relay.request.headers.get_all(&HeaderName::Contact) {
                cached.headers.add(HeaderName::Contact, c);
            }
            if let Some(e) = relay.request.headers.get(&HeaderName::Expires) {
                cached.headers.add(HeaderName::Expires, e);
            }
        }
        let branch_expires = self.central.as_ref().map_or(u32::MAX, |c| c.branch_expires);
        shorten(&mut ok, branch_expires);
        match self.registrar.register(&cached, &relay.aor, relay.source, super::unix_now(), Origin::Central) {
            Decision::Commit { changes, undo, .. } => {
                let ops = changes.into_iter().map(op).collect();
                self.commit_then_respond(relay.server, ops, ok, undo);
            }
            Decision::Reply(_) => self.respond(relay.server, ok),
        }
    }

    /// The REGISTER with every expiry held to what the branch grants while on its own.
    fn cap_expiry(&self, req: &Request) -> Request {
        let Some(cap) = self.central.as_ref().map(|c| c.branch_expires) else { return req.clone() };
        let mut out = req.clone();
        let header = req.headers.get(&HeaderName::Expires).and_then(|e| e.trim().parse::<u32>().ok());
        let contacts: Vec<String> = req.headers.get_all(&HeaderName::Contact).map(str::to_string).collect();
        out.headers.remove_all(&HeaderName::Contact);
        for c in contacts {
            match NameAddr::parse(&c) {
                Ok(na) => {
                    let asked = na.params.value("expires").and_then(|e| e.parse::<u32>().ok()).or(header).unwrap_or(cap);
                    out.headers.add(HeaderName::Contact, with_expires(&c, asked.min(cap)));
                }
                Err(_) => out.headers.add(HeaderName::Contact, c),
            }
        }
        out
    }
}

fn split_aor(aor: &str) -> (&str, &str) {
    let rest = aor.strip_prefix("sip:").unwrap_or(aor);
    rest.rsplit_once('@').unwrap_or((rest, ""))
}

/// For each Contact of the phone's request, the expiry the central 200 OK lists for it (0 if it
/// is not listed: the central site did not keep it).
fn granted_expiries(request: &Request, ok: &Response) -> Vec<(String, u32)> {
    let header = ok.headers.get(&HeaderName::Expires).and_then(|e| e.trim().parse::<u32>().ok());
    let listed: Vec<(String, Option<u32>)> = ok
        .headers
        .get_all(&HeaderName::Contact)
        .filter_map(|v| NameAddr::parse(v).ok())
        .map(|na| (contact_key(&na.uri), na.params.value("expires").and_then(|e| e.parse().ok())))
        .collect();
    request
        .headers
        .get_all(&HeaderName::Contact)
        .filter(|v| v.trim() != "*")
        .filter_map(|v| NameAddr::parse(v).ok().map(|na| (v, na)))
        .map(|(v, na)| {
            let key = contact_key(&na.uri);
            let expires = listed.iter().find(|(k, _)| *k == key).map_or(0, |(_, e)| e.or(header).unwrap_or(0));
            (v.to_string(), expires)
        })
        .collect()
}

/// A Contact value with its `expires` parameter set.
fn with_expires(value: &str, expires: u32) -> String {
    match NameAddr::parse(value) {
        Ok(mut na) => {
            na.params.set("expires", Some(expires.to_string()));
            na.to_string()
        }
        Err(_) => value.to_string(),
    }
}

/// Holds every expiry in a 200 OK to `cap`.
fn shorten(ok: &mut Response, cap: u32) {
    let contacts: Vec<String> = ok.headers.get_all(&HeaderName::Contact).map(str::to_string).collect();
    if contacts.is_empty() {
        return;
    }
    ok.headers.remove_all(&HeaderName::Contact);
    for c in contacts {
        let shorter = match NameAddr::parse(&c) {
            Ok(na) => match na.params.value("expires").and_then(|e| e.parse::<u32>().ok()) {
                Some(e) if e > cap => with_expires(&c, cap),
                _ => c,
            },
            Err(_) => c,
        };
        ok.headers.add(HeaderName::Contact, shorter);
    }
    if let Some(e) = ok.headers.get(&HeaderName::Expires).and_then(|e| e.trim().parse::<u32>().ok()) {
        ok.headers.set(HeaderName::Expires, e.min(cap).to_string());
    }
}
