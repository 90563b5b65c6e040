//! Digest authentication of REGISTERs against the users in the store: one DigestServer per
//! domain (the realm is the domain, as the stored HA1s are computed), the users' HA1s held in
//! memory and reloaded from the store, and a throttle on sources that keep failing. Each nonce is
//! bound to the address its challenge went to, so a failure counts against an address only when
//! its sender received our packet there: forging a phone's address over UDP cannot get the
//! phone throttled.
use holdfast_sip::auth::{
    Algorithm, AuthError, Credentials, DigestConfig, DigestServer, FailureThrottle, ThrottleConfig, Verdict,
};
use holdfast_sip::message::{HeaderName, Request, Response};
use holdfast_store::{HashAlgorithm, UserRecord};
use std::collections::HashMap;
use std::net::IpAddr;
use holdfast_runtime::WallClock;
use std::time::{Duration, Instant};

/// What to do with a REGISTER after looking at its credentials.
pub enum Check {
    /// Proven for this AOR: go on.
    Pass,
    /// Answer with this (a challenge or a refusal) now.
    Refuse(Response),
    /// Answer with this after a delay (the source keeps failing).
    RefuseLater(Response, Duration),
}

pub struct Authenticator {
    servers: HashMap<String, DigestServer>,
    /// domain -> user name -> HA1s.
    users: HashMap<String, HashMap<String, UserRecord>>,
    algorithms: Vec<Algorithm>,
    nonce_lifetime: Duration,
    /// Keys every domain's nonces (each server keys them with its realm too).
    secret: [u8; 32],
    /// Nonces carry the wall time; it comes from the `now` of each call.
    clock: WallClock,
    throttle: FailureThrottle,
}

impl Authenticator {
    /// `secret` keys the nonces (random at each start: a restart makes clients answer a fresh
    /// challenge), `clock` tells the wall time at the `now` each check is given.
    pub fn new(algorithms: Vec<Algorithm>, nonce_lifetime: Duration, secret: [u8; 32], clock: WallClock) -> Authenticator {
        Authenticator {
            servers: HashMap::new(),
            users: HashMap::new(),
            algorithms,
            nonce_lifetime,
            secret,
            clock,
            throttle: FailureThrottle::new(ThrottleConfig::default()),
        }
    }

    /// Replaces the users with a fresh load from the store.
    pub fn set_users(&mut self, users: Vec<UserRecord>) {
        let mut by_domain: HashMap<String, HashMap<String, UserRecord>> = HashMap::new();
        for u in users {
            by_domain.entry(u.domain.to_ascii_lowercase()).or_default().insert(u.name.clone(), u);
        }
        for domain in by_domain.keys() {
            if !self.servers.contains_key(domain) {
                let mut config = DigestConfig::new(domain, self.secret);
                config.nonce_lifetime = self.nonce_lifetime;
                config.algorithms = self.algorithms.clone();
                self.servers.insert(domain.clone(), DigestServer::new(config));
            }
        }
        self.users = by_domain;
    }

    pub fn has_user(&self, user: &str, domain: &str) -> bool {
        self.users.get(&domain.to_ascii_lowercase()).is_some_and(|u| u.contains_key(user))
    }

    /// Whether users of `domain` exist (a challenge for it can be answered).
    pub fn has_domain(&self, domain: &str) -> bool {
        self.server(&domain.to_ascii_lowercase()).is_some()
    }

    pub fn user_count(&self) -> usize {
        self.users.values().map(HashMap::len).sum()
    }

    /// Checks that `req` proves the password of `user@domain`, the AOR it registers.
    pub fn check(&mut self, req: &Request, user: &str, domain: &str, source: IpAddr, now: Instant) -> Check {
        match self.throttle.check(source, now) {
            Verdict::Blocked(_) => return Check::Refuse(refuse(req, 403, "Forbidden (too many failed attempts)")),
            Verdict::Delay(d) => {
                let challenge = self.challenge(req, domain, source, false, false, now);
                return Check::RefuseLater(challenge, d);
            }
            Verdict::Allowed => {}
        }
        let wall = self.clock.system_time(now);
        let Some(server) = self.server(domain) else {
            // No user of this domain exists: nobody can register in it. Not counted as a failure:
            // nothing shows the request came from its source.
            return Check::Refuse(refuse(req, 403, "Forbidden (unknown domain)"));
        };
        let credentials = req
            .headers
            .get_all(&HeaderName::Authorization)
            .filter_map(|v| Credentials::parse(v).ok())
            .find(|c| c.realm.eq_ignore_ascii_case(server.realm()));
        let Some(credentials) = credentials else {
            return Check::Refuse(self.challenge(req, domain, source, false, false, now));
        };
        // What the phone really sent as its digest username (not the To user): a phone set up
        // with the wrong one is found by its log line.
        let username = shown(&credentials.username);
        let users = self.users.get(domain);
        let verdict = server.verify_credentials_from(
            req.method.as_str(),
            credentials,
            |name, _realm, alg| users.and_then(|u| u.get(name)).and_then(|u| Some(u.ha1(store_alg(alg))?.to_string())),
            wall,
            &address_bytes(source),
        );
        match verdict {
            Ok(ok) if ok.username == user => {
                self.throttle.record_success(source);
                Check::Pass
            }
            Ok(ok) => {
                log::info!("{} authenticated as {} but registers {user}@{domain}: refused", source, ok.username);
                self.throttle.record_failure(source, now);
                Check::Refuse(refuse(req, 403, "Forbidden (credentials of another user)"))
            }
            Err(AuthError::Stale) => Check::Refuse(self.challenge(req, domain, source, true, false, now)),
            Err(AuthError::UnknownUser) => {
                log::info!("REGISTER for {user}@{domain} from {source}: digest username {username} is no user of {domain}");
                self.throttle.record_failure(source, now);
                Check::Refuse(self.challenge(req, domain, source, false, false, now))
            }
            Err(AuthError::BadCredentials) => {
                log::info!("REGISTER for {user}@{domain} from {source}: wrong password for digest username {username}");
                self.throttle.record_failure(source, now);
                Check::Refuse(self.challenge(req, domain, source, false, false, now))
            }
            Err(e) => {
                log::debug!("REGISTER for {user}@{domain} from {source}: {e}; challenging again");
                Check::Refuse(self.challenge(req, domain, source, false, false, now))
            }
        }
    }

    /// The digest server of a domain that has users (a removed domain's server is kept, so its
    /// nonces stay valid should users return).
    fn server(&self, domain: &str) -> Option<&DigestServer> {
        self.users.get(domain).and(self.servers.get(domain))
    }

    /// Whether `req` carries credentials answering a challenge we sent to `source` (its
    /// Authorization, or a Proxy-Authorization): proof that its sender receives packets there
    /// (the password is not checked).
    pub fn proves_address(&self, req: &Request, source: IpAddr) -> bool {
        let peer = address_bytes(source);
        [HeaderName::Authorization, HeaderName::ProxyAuthorization]
            .iter()
            .flat_map(|name| req.headers.get_all(name))
            .any(|v| self.answers_us(v, &peer))
    }

    /// Removes the Proxy-Authorization values answering a challenge we sent to `source`: they
    /// proved the address here and mean nothing to the next hop (another proxy of the same
    /// realm would take them for its own and fail them).
    pub fn remove_our_answers(&self, req: &mut Request, source: IpAddr) {
        let peer = address_bytes(source);
        let values: Vec<String> = req.headers.get_all(&HeaderName::ProxyAuthorization).map(str::to_string).collect();
        if values.iter().any(|v| self.answers_us(v, &peer)) {
            req.headers.remove_all(&HeaderName::ProxyAuthorization);
            for v in values.into_iter().filter(|v| !self.answers_us(v, &peer)) {
                req.headers.add(HeaderName::ProxyAuthorization, v);
            }
        }
    }

    /// Whether a credentials value carries a nonce one of our realms issued to `peer`.
    fn answers_us(&self, value: &str, peer: &[u8]) -> bool {
        Credentials::parse(value)
            .is_ok_and(|c| self.servers.get(&c.realm.to_ascii_lowercase()).is_some_and(|s| s.issued_to(&c.nonce, peer)))
    }

    /// A challenge for `req` whose nonce is bound to `source`: 401 (WWW-Authenticate), or with
    /// `proxy` 407 (Proxy-Authenticate) for a request that is not a REGISTER.
    pub fn challenge(&self, req: &Request, domain: &str, source: IpAddr, stale: bool, proxy: bool, now: Instant) -> Response {
        let (status, header) = if proxy { (407, HeaderName::ProxyAuthenticate) } else { (401, HeaderName::WwwAuthenticate) };
        let mut r = req.response(status);
        if let Some(server) = self.server(domain) {
            for value in server.challenge_to(self.clock.system_time(now), stale, &address_bytes(source)) {
                r.headers.add(header.clone(), value);
            }
        }
        r
    }
}

/// A name a phone sent, for a log line: quoted with its control characters escaped (no forged
/// log lines), and cut at 64 characters.
fn shown(name: &str) -> String {
    const MAX: usize = 64;
    match name.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &name[..cut]),
        None => format!("{name:?}"),
    }
}

fn refuse(req: &Request, status: u16, reason: &str) -> Response {
    let mut r = req.response(status);
    r.reason = reason.to_string();
    r
}

/// What a nonce is bound to: the address, IPv4 however it arrived.
fn address_bytes(ip: IpAddr) -> Vec<u8> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn store_alg(alg: Algorithm) -> HashAlgorithm {
    match alg {
        Algorithm::Md5 => HashAlgorithm::Md5,
        Algorithm::Sha256 => HashAlgorithm::Sha256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_sip::auth::DigestClient;
    use holdfast_sip::message::{Method, Uri};

    fn authenticator() -> Authenticator {
        let mut a = Authenticator::new(vec![Algorithm::Md5], Duration::from_secs(300), [3; 32], WallClock::read());
        let user = UserRecord { name: "alice".into(), domain: "branch.test".into(), ha1_md5: "0".repeat(32), ha1_sha256: String::new() };
        a.set_users(vec![user]);
        a
    }

    fn invite() -> Request {
        let mut r = Request::new(Method::INVITE, Uri::parse("sip:bob@branch.test").unwrap());
        r.headers.add(HeaderName::Via, "SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK1");
        r.headers.add(HeaderName::From, "<sip:alice@branch.test>;tag=a");
        r.headers.add(HeaderName::To, "<sip:bob@branch.test>");
        r.headers.add(HeaderName::CallId, "c1");
        r.headers.add(HeaderName::CSeq, "1 INVITE");
        r
    }

    /// A 407 bound to the phone's address, answered: the answer proves that address, no other,
    /// and comes off before the INVITE goes on (a foreign realm's answer stays).
    #[test]
    fn an_answered_proxy_challenge_proves_the_address_it_went_to_and_comes_off() {
        let a = authenticator();
        let phone: IpAddr = "10.0.0.10".parse().unwrap();
        let challenge = a.challenge(&invite(), "branch.test", phone, false, true, Instant::now());
        assert_eq!(challenge.status, 407);
        let offered: Vec<&str> = challenge.headers.get_all(&HeaderName::ProxyAuthenticate).collect();
        assert_eq!(offered.len(), 1, "{challenge:?}");
        assert!(challenge.headers.get(&HeaderName::WwwAuthenticate).is_none());
        let answer = DigestClient::authorize(offered[0], "INVITE", "sip:bob@branch.test", "alice", "pw", "cn", 1).unwrap();
        let foreign = "Digest username=\"alice\", realm=\"central.test\", nonce=\"n\", uri=\"sip:bob@branch.test\", response=\"00\"";
        let mut answered = invite();
        answered.headers.add(HeaderName::ProxyAuthorization, answer);
        answered.headers.add(HeaderName::ProxyAuthorization, foreign);
        assert!(a.proves_address(&answered, phone));
        assert!(!a.proves_address(&answered, "10.0.0.66".parse().unwrap()), "bound to the phone's address");
        assert!(!a.proves_address(&invite(), phone), "no credentials, no proof");
        let mut elsewhere = answered.clone();
        a.remove_our_answers(&mut elsewhere, "10.0.0.66".parse().unwrap());
        assert_eq!(elsewhere.headers.count(&HeaderName::ProxyAuthorization), 2, "not ours from there: left alone");
        a.remove_our_answers(&mut answered, phone);
        let left: Vec<&str> = answered.headers.get_all(&HeaderName::ProxyAuthorization).collect();
        assert_eq!(left, vec![foreign]);
    }

    #[test]
    fn names_are_logged_quoted_escaped_and_cut() {
        assert_eq!(shown("carol@"), "\"carol@\"");
        assert_eq!(shown("x\r\nsba-registrar INFO forged"), "\"x\\r\\nsba-registrar INFO forged\"");
        let long = "é".repeat(100);
        assert_eq!(shown(&long), format!("{:?}...", "é".repeat(64)));
    }
}
