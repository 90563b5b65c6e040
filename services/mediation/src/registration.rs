//! Outbound registration of SIP trunks with their carriers (RFC 3261 §10.2), sans-IO: a
//! REGISTER at start, answered challenges (digest, RFC 7616) once per attempt, a refresh at 80 %
//! of the granted expiry, a retry 30 s after a failure.
use crate::routing::Registration;
use holdfast_sip::auth::DigestClient;
use holdfast_sip::message::{HeaderName, Method, NameAddr, Request, Response, Uri};
use holdfast_sip::transaction::{Event, Transactions, TxEvent, TxId};
use holdfast_sip::transport::Protocol;
use holdfast_sip::Ids;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long after a failed registration the next attempt goes out.
const RETRY: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Binding {
    trunk: String,
    dest: SocketAddr,
    transport: Protocol,
    reg: Registration,
    call_id: String,
    from_tag: String,
    cseq: u32,
    next_at: Instant,
    /// Until when the carrier holds our binding.
    registered_until: Option<Instant>,
    /// The challenge of this attempt was answered already: a second one means bad credentials.
    answered_challenge: bool,
}

pub struct Registrations {
    bindings: Vec<Binding>,
    pending: HashMap<TxId, usize>,
    local: SocketAddr,
    ids: Ids,
}

impl Registrations {
    /// The trunks with registration credentials; the first REGISTERs go out at `now`.
    pub fn new(
        trunks: impl IntoIterator<Item = (String, SocketAddr, Protocol, Registration)>,
        local: SocketAddr,
        mut ids: Ids,
        now: Instant,
    ) -> Registrations {
        let bindings = trunks
            .into_iter()
            .map(|(trunk, dest, transport, reg)| Binding {
                trunk,
                dest,
                transport,
                reg,
                call_id: ids.call_id(local.ip()),
                from_tag: ids.tag(),
                cseq: 0,
                next_at: now,
                registered_until: None,
                answered_challenge: false,
            })
            .collect();
        Registrations { bindings, pending: HashMap::new(), local, ids }
    }

    pub fn is_registered(&self, trunk: &str, now: Instant) -> bool {
        self.bindings.iter().any(|b| b.trunk == trunk && b.registered_until.is_some_and(|u| u > now))
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.bindings.iter().map(|b| b.next_at).min()
    }

    pub fn handle_timeout(&mut self, txns: &mut Transactions, now: Instant) {
        for i in 0..self.bindings.len() {
            if self.bindings[i].next_at <= now {
                self.bindings[i].answered_challenge = false;
                // Should this attempt get no answer at all, the next one follows the retry delay.
                self.bindings[i].next_at = now + RETRY;
                self.send(txns, i, None, now);
            }
        }
    }

    fn send(&mut self, txns: &mut Transactions, i: usize, authorization: Option<(HeaderName, String)>, now: Instant) {
        let local = self.local;
        let b = &mut self.bindings[i];
        b.cseq += 1;
        let request = register(b, local, authorization, &mut self.ids);
        match txns.send_request(request, b.dest, b.transport, now) {
            Ok(id) => {
                self.pending.insert(id, i);
            }
            Err(e) => log::warn!("REGISTER to trunk {} not sent: {e}", b.trunk),
        }
    }

    /// A client transaction event; false when it is not a REGISTER's.
    pub fn on_event(&mut self, txns: &mut Transactions, event: &Event, now: Instant) -> bool {
        let Some(&i) = self.pending.get(&event.id) else { return false };
        match &event.event {
            TxEvent::Response(r) if r.status >= 200 => {
                self.pending.remove(&event.id);
                self.on_response(txns, i, r, now);
            }
            TxEvent::TimedOut(_) | TxEvent::TransportError => {
                self.pending.remove(&event.id);
                let b = &mut self.bindings[i];
                log::warn!("trunk {}: REGISTER unanswered, retrying in {}s", b.trunk, RETRY.as_secs());
                b.next_at = now + RETRY;
            }
            TxEvent::Terminated => {
                self.pending.remove(&event.id);
            }
            _ => {}
        }
        true
    }

    fn on_response(&mut self, txns: &mut Transactions, i: usize, r: &Response, now: Instant) {
        let b = &mut self.bindings[i];
        match r.status {
            200..=299 => {
                let granted = granted_expiry(r, b.reg.expires);
                b.registered_until = Some(now + Duration::from_secs(granted.into()));
                // Refresh at 80 %, so a lost REGISTER still has time to be retried.
                b.next_at = now + Duration::from_secs(u64::from(granted) * 4 / 5).max(Duration::from_secs(1));
                log::info!("trunk {} registered for {granted}s", b.trunk);
            }
            401 | 407 if !b.answered_challenge => {
                let (challenge_header, answer_header) = match r.status {
                    401 => (HeaderName::WwwAuthenticate, HeaderName::Authorization),
                    _ => (HeaderName::ProxyAuthenticate, HeaderName::ProxyAuthorization),
                };
                let challenges: Vec<&str> = r.headers.get_all(&challenge_header).collect();
                let Some(challenge) = DigestClient::preferred_challenge(&challenges) else {
                    log::warn!("trunk {}: {} without a usable digest challenge", b.trunk, r.status);
                    b.next_at = now + RETRY;
                    return;
                };
                let uri = format!("sip:{}", b.reg.domain);
                let cnonce = self.ids.tag();
                match DigestClient::authorize(challenge, "REGISTER", &uri, &b.reg.user, &b.reg.password, &cnonce, 1) {
                    Ok(value) => {
                        b.answered_challenge = true;
                        self.send(txns, i, Some((answer_header, value)), now);
                    }
                    Err(e) => {
                        log::warn!("trunk {}: cannot answer the challenge: {e}", b.trunk);
                        b.next_at = now + RETRY;
                    }
                }
            }
            status => {
                log::warn!("trunk {}: registration refused ({status} {})", b.trunk, r.reason);
                b.registered_until = None;
                b.next_at = now + RETRY;
            }
        }
    }
}

fn register(b: &Binding, local: SocketAddr, authorization: Option<(HeaderName, String)>, ids: &mut Ids) -> Request {
    let domain = &b.reg.domain;
    let uri = Uri::parse(&format!("sip:{domain}")).unwrap_or_else(|_| Uri::Other(format!("sip:{domain}")));
    let mut r = Request::new(Method::REGISTER, uri);
    let h = &mut r.headers;
    h.add(HeaderName::Via, format!("SIP/2.0/{} {local};branch={};rport", b.transport, ids.branch()));
    h.add(HeaderName::MaxForwards, "70");
    h.add(HeaderName::From, format!("<sip:{}@{domain}>;tag={}", b.reg.user, b.from_tag));
    h.add(HeaderName::To, format!("<sip:{}@{domain}>", b.reg.user));
    h.add(HeaderName::CallId, b.call_id.clone());
    h.add(HeaderName::CSeq, format!("{} REGISTER", b.cseq));
    h.add(HeaderName::Contact, format!("<sip:{}@{local}>", b.reg.user));
    h.add(HeaderName::Expires, b.reg.expires.to_string());
    if let Some((name, value)) = authorization {
        h.add(name, value);
    }
    r
}

/// The expiry the registrar granted: our Contact's expires parameter, else Expires, else what
/// we asked for.
fn granted_expiry(r: &Response, asked: u32) -> u32 {
    let from_contact = r.headers.get_all(&HeaderName::Contact).find_map(|c| {
        NameAddr::parse(c).ok()?.params.value("expires")?.trim().parse().ok()
    });
    let from_header = r.headers.get(&HeaderName::Expires).and_then(|e| e.trim().parse().ok());
    from_contact.or(from_header).unwrap_or(asked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_sip::transaction::{TimerConfig, Transmit};

    fn sent(txns: &mut Transactions, regs: &mut Registrations, now: Instant, answer: Option<Response>) -> Vec<Request> {
        if let Some(a) = answer {
            assert!(txns.on_response(a, now).is_none());
        }
        let mut out = vec![];
        for _ in 0..10 {
            while let Some(e) = txns.poll_event() {
                regs.on_event(txns, &e, now);
            }
            match txns.poll_transmit() {
                Some(Transmit::Request { request, .. }) => out.push(std::sync::Arc::unwrap_or_clone(request)),
                Some(_) => {}
                None => break,
            }
        }
        out
    }

    #[test]
    fn registers_answers_the_challenge_once_and_refreshes_at_80_percent() {
        let now = Instant::now();
        let mut txns = Transactions::new(TimerConfig::default());
        let reg = Registration { user: "branch".into(), password: "pw".into(), domain: "itsp.test".into(), expires: 600 };
        let dest = "127.0.0.1:5080".parse().unwrap();
        let mut regs = Registrations::new([("itsp".to_string(), dest, Protocol::Udp, reg)], "127.0.0.1:5070".parse().unwrap(), Ids::seeded(1), now);
        regs.handle_timeout(&mut txns, now);
        let first = sent(&mut txns, &mut regs, now, None).pop().unwrap();
        assert_eq!(first.uri.to_string(), "sip:itsp.test");
        assert!(first.headers.get(&HeaderName::Authorization).is_none());

        let mut challenge = first.response(401);
        challenge.headers.add(HeaderName::WwwAuthenticate, "Digest realm=\"itsp.test\", nonce=\"n1\", qop=\"auth\", algorithm=MD5");
        let second = sent(&mut txns, &mut regs, now, Some(challenge.clone())).pop().unwrap();
        let auth = second.headers.get(&HeaderName::Authorization).unwrap();
        assert!(auth.contains("username=\"branch\"") && auth.contains("nonce=\"n1\""), "{auth}");
        assert_eq!(second.cseq().unwrap().seq, 2);
        assert_eq!(second.call_id().unwrap(), first.call_id().unwrap());
        assert!(!regs.is_registered("itsp", now));

        let mut ok = second.response(200);
        ok.headers.add(HeaderName::Contact, "<sip:branch@127.0.0.1:5070>;expires=300");
        assert!(sent(&mut txns, &mut regs, now, Some(ok)).is_empty());
        assert!(regs.is_registered("itsp", now));
        assert_eq!(regs.next_timeout(), Some(now + Duration::from_secs(240)));

        // A second challenge in one attempt means the credentials are wrong: no loop, a retry later.
        let later = now + Duration::from_secs(240);
        regs.handle_timeout(&mut txns, later);
        let refresh = sent(&mut txns, &mut regs, later, None).pop().unwrap();
        let mut c = refresh.response(401);
        c.headers.add(HeaderName::WwwAuthenticate, "Digest realm=\"itsp.test\", nonce=\"n2\", algorithm=MD5");
        let answered = sent(&mut txns, &mut regs, later, Some(c)).pop().unwrap();
        let mut again = answered.response(401);
        again.headers.add(HeaderName::WwwAuthenticate, "Digest realm=\"itsp.test\", nonce=\"n3\", algorithm=MD5");
        assert!(sent(&mut txns, &mut regs, later, Some(again)).is_empty());
        assert_eq!(regs.next_timeout(), Some(later + RETRY));
    }
}
