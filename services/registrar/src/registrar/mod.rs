//! The registrar of RFC 3261 §10.3 as a sans-IO core: it holds the bindings, decides what a
//! REGISTER (already authenticated) does to them, and says which changes must reach the disk
//! before the answer may go out. Time comes in as unix seconds.
mod binding;

pub use binding::{aor_of, binding_key, contact_key, contact_value, unquote_instance};

use holdfast_store::{Binding, Origin};

use holdfast_sip::message::{ip_text, HeaderName, NameAddr, Request, Response};
use holdfast_sip::transport::Source;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// Option tags this registrar implements (RFC 3327 path, RFC 5626 outbound).
const SUPPORTED: &[&str] = &["path", "outbound"];

#[derive(Debug, Clone)]
pub struct Limits {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    /// Contacts one AOR may hold (a REGISTER that would hold more is refused).
    pub max_contacts: usize,
}

/// A change the store must commit before the REGISTER is answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Upsert(Binding),
    Remove { aor: String, contact: String },
}

/// What to do with a REGISTER.
#[derive(Debug)]
pub enum Decision {
    /// Answer now: nothing changed (a query, or a refusal).
    Reply(Response),
    /// Commit `changes`, then send `response`; if the commit fails, `undo` restores the AOR.
    Commit { changes: Vec<Change>, response: Response, undo: Undo },
}

/// The bindings an AOR had before a change, to put back when its commit fails.
#[derive(Debug)]
pub struct Undo {
    aor: String,
    before: Vec<Binding>,
}

pub struct Registrar {
    limits: Limits,
    bindings: HashMap<String, Vec<Binding>>,
    /// Bindings by the IP address they were registered from (the per-source guard asks).
    sources: HashMap<IpAddr, usize>,
    /// UDP bindings by the address (IP and port) they were registered from.
    udp_addresses: HashMap<SocketAddr, usize>,
    /// REGISTERs refused for holding more than `max_contacts`.
    capped: u64,
}

impl Registrar {
    pub fn new(limits: Limits, loaded: Vec<Binding>) -> Registrar {
        let mut r = Registrar { limits, bindings: HashMap::new(), sources: HashMap::new(), udp_addresses: HashMap::new(), capped: 0 };
        let mut by_aor: HashMap<String, Vec<Binding>> = HashMap::new();
        for b in loaded {
            by_aor.entry(b.aor.clone()).or_default().push(b);
        }
        for (aor, list) in by_aor {
            r.replace(&aor, list);
        }
        r
    }

    /// Whether a binding was registered from `ip` (expired ones count until the next sweep).
    pub fn holds_source(&self, ip: IpAddr) -> bool {
        self.sources.contains_key(&ip.to_canonical())
    }

    /// Sets `aor`'s bindings to `after` (none: removes the AOR); returns the ones before.
    fn replace(&mut self, aor: &str, after: Vec<Binding>) -> Vec<Binding> {
        self.index(&after, true);
        let before = if after.is_empty() { self.bindings.remove(aor) } else { self.bindings.insert(aor.to_string(), after) };
        let before = before.unwrap_or_default();
        self.index(&before, false);
        before
    }

    /// How many bindings were registered over UDP from `addr` (expired ones count until the
    /// next sweep): the per-source guard gives that address a budget of its own.
    pub fn udp_bindings_from(&self, addr: SocketAddr) -> usize {
        self.udp_addresses.get(&canonical(addr)).copied().unwrap_or(0)
    }

    fn index(&mut self, bindings: &[Binding], add: bool) {
        for b in bindings {
            let Some(addr) = source_addr(b) else { continue };
            let udp = b.transport.eq_ignore_ascii_case("udp");
            if add {
                *self.sources.entry(addr.ip()).or_default() += 1;
                if udp {
                    *self.udp_addresses.entry(addr).or_default() += 1;
                }
            } else {
                forget(&mut self.sources, addr.ip());
                if udp {
                    forget(&mut self.udp_addresses, addr);
                }
            }
        }
    }

    pub fn lookup(&self, aor: &str, now: u64) -> Vec<&Binding> {
        let mut v: Vec<&Binding> =
            self.bindings.get(aor).map(|v| v.iter().filter(|b| alive(b, now)).collect()).unwrap_or_default();
        // Highest q first (RFC 3261 §16.6: q orders the targets).
        v.sort_by(|a, b| b.q.unwrap_or(1.0).total_cmp(&a.q.unwrap_or(1.0)));
        v
    }

    /// A live binding whose contact has `key` (see `contact_key`), of any AOR.
    pub fn find_contact(&self, key: &str, now: u64) -> Option<&Binding> {
        self.bindings.values().flatten().find(|b| alive(b, now) && binding_key(b) == key)
    }

    /// REGISTERs refused at the contacts cap so far.
    pub fn capped(&self) -> u64 {
        self.capped
    }

    pub fn binding_count(&self) -> usize {
        self.bindings.values().map(Vec::len).sum()
    }

    /// Decides a REGISTER for `aor` (the caller has authenticated it for that AOR). For a
    /// binding granted by the central site (`Origin::Central`) the central expiry stands: the
    /// local Min-Expires and cap do not apply.
    pub fn register(&mut self, req: &Request, aor: &str, source: Source, now: u64, origin: Origin) -> Decision {
        match self.plan(req, aor, source, now, origin) {
            Ok(Some((_, after))) if after.iter().filter(|b| alive(b, now)).count() > self.limits.max_contacts => {
                self.capped += 1;
                let mut r = req.response(403);
                r.reason = format!("Forbidden (more than {} contacts for one address of record)", self.limits.max_contacts);
                Decision::Reply(r)
            }
            Ok(None) => Decision::Reply(self.ok(req, aor, now)),
            Ok(Some((changes, after))) => {
                let before = self.replace(aor, after);
                let response = self.ok(req, aor, now);
                Decision::Commit { changes, response, undo: Undo { aor: aor.to_string(), before } }
            }
            Err(response) => Decision::Reply(response),
        }
    }

    /// In pass-through, a refresh the branch answers itself instead of loading the WAN: every
    /// contact of `req` is already bound from the central site for this device (same source IP,
    /// same Call-ID, a higher CSeq) with more than `keep` seconds of the central grant left. The
    /// bindings keep the central expiry; only their CSeq moves. None: relay it.
    pub fn refresh_locally(&mut self, req: &Request, aor: &str, source: &Source, now: u64, keep: u64) -> Option<Decision> {
        let call_id = req.call_id().ok()?;
        let cseq = req.cseq().ok()?.seq;
        if req.headers.get(&HeaderName::Expires).is_some_and(|e| e.trim() == "0") {
            return None;
        }
        let contacts: Vec<NameAddr> =
            req.headers.get_all(&HeaderName::Contact).map(NameAddr::parse).collect::<Result<_, _>>().ok()?;
        if contacts.is_empty() || contacts.iter().any(|c| c.params.value("expires") == Some("0")) {
            return None;
        }
        let mut after = self.bindings.get(aor)?.clone();
        let mut changes = Vec::new();
        for contact in &contacts {
            let instance = contact.params.value("+sip.instance").map(unquote_instance);
            let key = contact_key(&contact.uri);
            let b = after.iter_mut().find(|b| match (&instance, &b.instance) {
                (Some(i), Some(bi)) => i == bi,
                _ => b.instance.is_none() && binding_key(b) == key,
            })?;
            let same_device = b.source.parse::<std::net::SocketAddr>().is_ok_and(|a| a.ip() == source.addr.ip());
            let left = u64::try_from(b.expires_at).unwrap_or(0).saturating_sub(now);
            if b.origin != Origin::Central || !same_device || b.call_id != call_id || cseq <= b.cseq || left <= keep {
                return None;
            }
            b.cseq = cseq;
            b.updated_at = unix(now);
            changes.push(Change::Upsert(b.clone()));
        }
        let before = self.replace(aor, after);
        let response = self.ok(req, aor, now);
        Some(Decision::Commit { changes, response, undo: Undo { aor: aor.to_string(), before } })
    }

    pub fn undo(&mut self, undo: Undo) {
        self.replace(&undo.aor, undo.before);
    }

    /// Drops bindings whose time is up; the returned changes clear them from the store.
    pub fn expire(&mut self, now: u64) -> Vec<Change> {
        let mut gone = Vec::new();
        self.bindings.retain(|_, list| {
            let (kept, expired): (Vec<Binding>, Vec<Binding>) = std::mem::take(list).into_iter().partition(|b| alive(b, now));
            *list = kept;
            gone.extend(expired);
            !list.is_empty()
        });
        self.index(&gone, false);
        gone.into_iter().map(|b| Change::Remove { aor: b.aor, contact: b.contact }).collect()
    }

    /// The new binding list of `aor` and the changes that lead to it, or None for a query, or the
    /// refusal to send.
    #[allow(clippy::type_complexity)]
    fn plan(
        &self,
        req: &Request,
        aor: &str,
        source: Source,
        now: u64,
        origin: Origin,
    ) -> Result<Option<(Vec<Change>, Vec<Binding>)>, Response> {
        let local = origin == Origin::Local;
        let unsupported: Vec<&str> = req
            .headers
            .get_all(&HeaderName::Require)
            .filter(|tag| !SUPPORTED.iter().any(|s| s.eq_ignore_ascii_case(tag.trim())))
            .collect();
        if !unsupported.is_empty() {
            let mut r = req.response(420);
            r.headers.add(HeaderName::Unsupported, unsupported.join(", "));
            return Err(r);
        }
        let call_id = req.call_id().map_err(|e| bad(req, &e.to_string()))?.to_string();
        let cseq = req.cseq().map_err(|e| bad(req, &e.to_string()))?.seq;
        let header_expires = match req.headers.get(&HeaderName::Expires) {
            Some(v) => Some(v.trim().parse::<u32>().map_err(|_| bad(req, "malformed Expires"))?),
            None => None,
        };
        let contacts: Vec<&str> = req.headers.get_all(&HeaderName::Contact).collect();
        if contacts.is_empty() {
            return Ok(None);
        }
        let current = self.bindings.get(aor).cloned().unwrap_or_default();

        if contacts.iter().any(|c| c.trim() == "*") {
            if contacts.len() != 1 || header_expires != Some(0) {
                return Err(bad(req, "Contact: * needs Expires: 0 and no other contact"));
            }
            if current.iter().any(|b| b.call_id == call_id && cseq <= b.cseq) {
                return Err(out_of_order(req));
            }
            let changes = current
                .iter()
                .map(|b| Change::Remove { aor: aor.to_string(), contact: b.contact.clone() })
                .collect();
            return Ok(Some((changes, Vec::new())));
        }

        let path: Vec<String> = req.headers.get_all(&HeaderName::Path).map(str::to_string).collect();
        let user_agent = req.headers.get(&HeaderName::UserAgent).map(str::to_string);
        let mut after = current.clone();
        let mut changes = Vec::new();
        for value in contacts {
            let contact = NameAddr::parse(value).map_err(|e| bad(req, &e.to_string()))?;
            let expires = match contact.params.get("expires") {
                Some(Some(v)) => v.trim().parse::<u32>().map_err(|_| bad(req, "malformed Contact expires"))?,
                Some(None) => return Err(bad(req, "malformed Contact expires")),
                None => header_expires.unwrap_or(self.limits.default_expires),
            };
            if local && expires != 0 && expires < self.limits.min_expires {
                let mut r = req.response(423);
                r.headers.add(HeaderName::MinExpires, self.limits.min_expires.to_string());
                return Err(r);
            }
            let expires = if local { expires.min(self.limits.max_expires) } else { expires };
            let q = match contact.params.value("q") {
                Some(q) if valid_q(q) => q.parse::<f32>().ok(),
                Some(_) => return Err(bad(req, "malformed q-value")),
                None => None,
            };
            let instance = contact.params.value("+sip.instance").map(unquote_instance);
            let reg_id = match contact.params.value("reg-id") {
                Some(v) => Some(v.parse::<u32>().map_err(|_| bad(req, "malformed reg-id"))?),
                None => None,
            };
            let key = contact_key(&contact.uri);
            let uri_text = contact.uri.to_string();
            // RFC 5626 §6: an instance (with its reg-id) names the flow, whatever its URI now is.
            let existing = after.iter().position(|b| match (&instance, &b.instance) {
                (Some(i), Some(bi)) => i == bi && reg_id == b.reg_id,
                _ => b.instance.is_none() && binding_key(b) == key,
            });
            if let Some(at) = existing {
                let old = &after[at];
                if old.call_id == call_id && cseq <= old.cseq {
                    return Err(out_of_order(req));
                }
                let old = after.remove(at);
                changes.push(Change::Remove { aor: aor.to_string(), contact: old.contact });
            }
            if expires == 0 {
                continue;
            }
            let binding = Binding {
                aor: aor.to_string(),
                contact: uri_text,
                instance,
                reg_id,
                call_id: call_id.clone(),
                cseq,
                q,
                expires_at: unix(now + u64::from(expires)),
                path: path.clone(),
                source: socket_text(source.addr),
                transport: source.transport.param().to_string(),
                user_agent: user_agent.clone(),
                updated_at: unix(now),
                origin,
            };
            // An upsert of the same contact supersedes its removal.
            changes.retain(|c| !matches!(c, Change::Remove { contact, .. } if *contact == binding.contact));
            changes.push(Change::Upsert(binding.clone()));
            after.push(binding);
        }
        Ok(Some((changes, after)))
    }

    /// 200 OK listing every current binding of the AOR with its remaining expiry (§10.3 step 8).
    fn ok(&self, req: &Request, aor: &str, now: u64) -> Response {
        let mut r = req.response(200);
        let bindings = self.lookup(aor, now);
        for b in &bindings {
            r.headers.add(HeaderName::Contact, contact_value(b, now));
        }
        for p in req.headers.get_all(&HeaderName::Path) {
            r.headers.add(HeaderName::Path, p);
        }
        let outbound = bindings.iter().any(|b| b.reg_id.is_some())
            && req.headers.get_all(&HeaderName::Supported).any(|s| s.trim().eq_ignore_ascii_case("outbound"));
        if outbound {
            r.headers.add(HeaderName::Require, "outbound");
        }
        r.headers.add(HeaderName::Supported, SUPPORTED.join(", "));
        r
    }
}

/// `ip:port` (`[ip]:port` for IPv6), as SocketAddr writes it, through the fast address writer.
fn socket_text(addr: std::net::SocketAddr) -> String {
    let ip = ip_text(addr.ip());
    match addr {
        std::net::SocketAddr::V4(_) => format!("{ip}:{}", addr.port()),
        std::net::SocketAddr::V6(_) => format!("[{ip}]:{}", addr.port()),
    }
}

fn alive(b: &Binding, now: u64) -> bool {
    u64::try_from(b.expires_at).is_ok_and(|at| at > now)
}

fn unix(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// RFC 3261 §20.10: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ).
fn valid_q(q: &str) -> bool {
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    frac.len() <= 3
        && frac.bytes().all(|b| b.is_ascii_digit())
        && match int {
            "0" => true,
            "1" => frac.bytes().all(|b| b == b'0'),
            _ => false,
        }
}

fn bad(req: &Request, why: &str) -> Response {
    let mut r = req.response(400);
    r.reason = format!("Bad Request ({why})");
    r
}

/// §10.3 step 7: a request whose CSeq is not above the binding's, in the same Call-ID, is stale.
fn out_of_order(req: &Request) -> Response {
    let mut r = req.response(400);
    r.reason = "Bad Request (CSeq out of order)".to_string();
    r
}

#[cfg(test)]
mod tests;

fn source_addr(b: &Binding) -> Option<SocketAddr> {
    b.source.parse::<SocketAddr>().ok().map(canonical)
}

fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// One binding fewer under `key`.
fn forget<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
    if let Some(n) = counts.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&key);
        }
    }
}
