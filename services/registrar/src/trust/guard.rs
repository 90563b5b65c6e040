//! The per-source guard, Kamailio's pike as the anchor: a source that sends more than
//! `max_requests` in a `window` is banned for `ban_for`, and its requests are dropped unheard.
//! Over UDP a source address is one forged header away, so a ban must not be a weapon against
//! the phone whose address is forged. The caller counts no configured peer here. A UDP address
//! (IP and port) that bindings were registered from has a budget of its own, `max_requests` per
//! binding and one more, and is never banned: beyond its budget it sheds for the rest of the
//! window only. Everything else from that IP (a flood forged with the phone's IP from another
//! port, or the phone calling from a second port) has the IP's budget, also shed rather than
//! banned; an IP that holds no binding is banned `ban_for`.
//!
//! What a banned or shedding UDP source sends still passes when it proves its sender receives
//! packets at that address, which a blind forger cannot: credentials answering a challenge we
//! sent there (`Evidence::Nonce`), the keyed tag of our Record-Route for its dialog
//! (`Evidence::Dialog`: a call in progress can still be hung up), or the branch of a
//! transaction we hold (`Evidence::Transaction`: a CANCEL, a retransmission). Each unproven new
//! request from a phone's registered address gets a stateless challenge bound to it instead, as
//! Kamailio's default script challenges every INVITE: the real phone answers its own and is
//! through, the forger never sees it. That reflects a flood one packet for one to the address it
//! forged, never amplified, and at most `CHALLENGES_PER_BUDGET` times the address's budget in a
//! window (bounded work); a flood faster than that crowds the phone's own challenge out in
//! proportion, which is what UDP cannot prevent. A stranger's IP, or a phone's IP from a port
//! no binding was registered from, gets a REGISTER challenge at most once per `challenge_every`. Over TCP the handshake proves the address: a banned TCP
//! source is dropped outright.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Challenges a shedding phone address may get in one window, per request of its budget.
const CHALLENGES_PER_BUDGET: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardConfig {
    pub window: Duration,
    /// Requests a source may send in one window; 0 turns the guard off.
    pub max_requests: u32,
    pub ban_for: Duration,
    /// How often a banned source's REGISTER is answered with a challenge.
    pub challenge_every: Duration,
    /// Sources remembered at most (the oldest windows are forgotten first).
    pub max_sources: usize,
}

impl Default for GuardConfig {
    /// 200 requests in 2 s: a phone sends a handful, a burst of BLF subscriptions some dozens.
    fn default() -> GuardConfig {
        GuardConfig {
            window: Duration::from_secs(2),
            max_requests: 200,
            ban_for: Duration::from_secs(60),
            challenge_every: Duration::from_secs(1),
            max_sources: 65_536,
        }
    }
}

/// What a banned source's request shows about its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// It came over a TCP connection: the address is the sender's.
    Connection,
    /// Over UDP with credentials whose nonce was issued to this address.
    Nonce,
    /// Over UDP, in a dialog it proves with our Record-Route's keyed tag.
    Dialog,
    /// Over UDP, in a transaction we hold (its branch is the sender's own).
    Transaction,
    /// Over UDP, nothing.
    None,
}

/// What a banned source's request could be challenged with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// A REGISTER: 401.
    Register,
    /// Another new request that can carry credentials (INVITE, SUBSCRIBE, ...): 407.
    Request,
    /// ACK or CANCEL: no challenge can be answered.
    Nothing,
}

/// Whom a request is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// The IP address of a source that holds no binding.
    Ip(IpAddr),
    /// The IP address of a registered phone, from a port no binding was registered from.
    PhoneIp(IpAddr),
    /// The UDP address that `bindings` live bindings were registered from.
    Registered { addr: SocketAddr, bindings: usize },
}

impl Counted {
    /// The table's key: an IP as the address with port 0.
    fn key(self) -> SocketAddr {
        match self {
            Counted::Ip(ip) | Counted::PhoneIp(ip) => SocketAddr::new(ip, 0),
            Counted::Registered { addr, .. } => addr,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Pass,
    Drop,
    /// Answer with a stateless challenge bound to the source's address (401 for a REGISTER,
    /// 407 otherwise).
    Challenge,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardCounters {
    /// Times a source was banned (or a registered address went over its budget in a window).
    pub bans: u64,
    /// Requests dropped from banned sources.
    pub dropped: u64,
    /// Requests from banned sources answered with a challenge bound to their address.
    pub challenged: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Instant,
    count: u32,
    banned_until: Option<Instant>,
    last_challenge: Option<Instant>,
    /// Challenges sent in this window.
    challenges: u32,
}

#[derive(Debug)]
pub struct Guard {
    config: GuardConfig,
    sources: HashMap<SocketAddr, Entry>,
    pub counters: GuardCounters,
}

impl Guard {
    pub fn new(config: GuardConfig) -> Guard {
        Guard { config, sources: HashMap::new(), counters: GuardCounters::default() }
    }

    /// Counts a request against `counted`; whether that source is banned or over its budget
    /// (then ask `banned` what to do).
    pub fn count(&mut self, counted: Counted, now: Instant) -> bool {
        if self.config.max_requests == 0 {
            return false;
        }
        let config = self.config;
        let max_requests = self.budget(counted);
        let ban_for = match counted {
            Counted::Ip(_) => config.ban_for,
            Counted::PhoneIp(_) | Counted::Registered { .. } => config.window,
        };
        let key = counted.key();
        if !self.sources.contains_key(&key) {
            // A row is over when its window and its ban are.
            let over = |e: &Entry| e.banned_until.is_none_or(|u| now >= u) && now.saturating_duration_since(e.window_start) >= config.window;
            holdfast_sip::bounded::make_room(&mut self.sources, config.max_sources, over, |e| e.window_start);
        }
        let entry = self.sources.entry(key).or_insert(Entry { window_start: now, count: 0, banned_until: None, last_challenge: None, challenges: 0 });
        if entry.banned_until.is_some_and(|until| now >= until) {
            entry.banned_until = None;
        }
        if now.saturating_duration_since(entry.window_start) >= config.window {
            entry.window_start = now;
            entry.count = 0;
            entry.challenges = 0;
        }
        entry.count = entry.count.saturating_add(1);
        if entry.banned_until.is_none() && entry.count > max_requests {
            match counted {
                Counted::Ip(ip) => log::warn!("{ip} sent over {max_requests} requests in {:?}: banned for {ban_for:?}", config.window),
                Counted::PhoneIp(ip) => log::warn!(
                    "{ip} (a registered phone's IP) sent over {max_requests} requests in {:?} from ports no binding was \
                     registered from: those without proof of the address are dropped until the window ends",
                    config.window
                ),
                Counted::Registered { addr, bindings } => log::warn!(
                    "{addr} (where {bindings} bindings were registered from) sent over {max_requests} requests in {:?}: \
                     its requests without proof of the address are dropped until the window ends",
                    config.window
                ),
            }
            // A phone's address or IP sheds until its window ends: the next window starts it over.
            entry.banned_until = Some(match counted {
                Counted::Ip(_) => now + ban_for,
                Counted::PhoneIp(_) | Counted::Registered { .. } => entry.window_start + ban_for,
            });
            self.counters.bans += 1;
        }
        entry.banned_until.is_some()
    }

    /// Requests `counted` may send in one window.
    fn budget(&self, counted: Counted) -> u32 {
        match counted {
            Counted::Ip(_) | Counted::PhoneIp(_) => self.config.max_requests,
            Counted::Registered { bindings, .. } => {
                let per = u32::try_from(bindings).unwrap_or(u32::MAX).saturating_add(1);
                self.config.max_requests.saturating_mul(per)
            }
        }
    }

    /// What to do with a request from the banned (or shedding) `counted`, given what it shows
    /// about its address and what it could be challenged with.
    pub fn banned(&mut self, counted: Counted, evidence: Evidence, ask: Ask, now: Instant) -> Admit {
        let budget = self.budget(counted);
        let every = self.config.challenge_every;
        let admit = match evidence {
            Evidence::Connection => Admit::Drop,
            Evidence::Nonce | Evidence::Dialog | Evidence::Transaction => Admit::Pass,
            Evidence::None => match (self.sources.get_mut(&counted.key()), counted, ask) {
                (_, _, Ask::Nothing) | (None, ..) => Admit::Drop,
                // A phone's registered address: each new request is asked to prove it.
                (Some(e), Counted::Registered { .. }, _) if e.challenges < budget.saturating_mul(CHALLENGES_PER_BUDGET) => {
                    e.challenges += 1;
                    Admit::Challenge
                }
                // Anyone else: a REGISTER, once per `challenge_every`.
                (Some(e), Counted::Ip(_) | Counted::PhoneIp(_), Ask::Register)
                    if e.last_challenge.is_none_or(|at| now.saturating_duration_since(at) >= every) =>
                {
                    e.last_challenge = Some(now);
                    Admit::Challenge
                }
                _ => Admit::Drop,
            },
        };
        match admit {
            Admit::Drop => self.counters.dropped += 1,
            Admit::Challenge => self.counters.challenged += 1,
            Admit::Pass => {}
        }
        admit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> GuardConfig {
        GuardConfig { max_requests: 5, max_sources: 8, ..GuardConfig::default() }
    }

    const ATTACKER: Counted = Counted::Ip(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2)));
    const PHONE: Counted = Counted::Ip(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)));

    #[test]
    fn a_source_over_the_rate_is_banned_for_a_while_and_others_are_not() {
        let mut g = Guard::new(config());
        let t0 = Instant::now();
        assert!((0..5).all(|_| !g.count(ATTACKER, t0)));
        assert!(g.count(ATTACKER, t0), "the sixth request in the window bans");
        assert!(!g.count(PHONE, t0));
        assert_eq!(g.counters.bans, 1);
        assert!(g.count(ATTACKER, t0 + Duration::from_secs(59)), "still banned");
        assert!(!g.count(ATTACKER, t0 + Duration::from_secs(61)), "the ban is over");
    }

    #[test]
    fn a_slow_source_is_never_banned() {
        let mut g = Guard::new(config());
        let t0 = Instant::now();
        for i in 0..100 {
            assert!(!g.count(PHONE, t0 + Duration::from_millis(500) * i));
        }
    }

    #[test]
    fn a_nonce_sent_to_the_address_lets_a_banned_udp_source_through_but_not_a_tcp_one() {
        let mut g = Guard::new(config());
        let t0 = Instant::now();
        (0..6).for_each(|_| {
            g.count(PHONE, t0);
        });
        assert_eq!(g.banned(PHONE, Evidence::Nonce, Ask::Register, t0), Admit::Pass, "a forged flood does not lock out the phone");
        assert_eq!(g.banned(PHONE, Evidence::None, Ask::Nothing, t0), Admit::Drop);
        assert_eq!(g.banned(PHONE, Evidence::Connection, Ask::Register, t0), Admit::Drop, "a TCP flooder is who it says");
        assert_eq!(g.counters, GuardCounters { bans: 1, dropped: 2, challenged: 0 });
    }

    #[test]
    fn a_banned_strangers_register_is_challenged_once_a_second_and_nothing_else_is() {
        let mut g = Guard::new(config());
        let t0 = Instant::now();
        (0..6).for_each(|_| {
            g.count(ATTACKER, t0);
        });
        assert_eq!(g.banned(ATTACKER, Evidence::None, Ask::Register, t0), Admit::Challenge);
        assert_eq!(g.banned(ATTACKER, Evidence::None, Ask::Register, t0 + Duration::from_millis(500)), Admit::Drop);
        assert_eq!(g.banned(ATTACKER, Evidence::None, Ask::Request, t0 + Duration::from_millis(600)), Admit::Drop, "a stranger's INVITE");
        assert_eq!(g.banned(ATTACKER, Evidence::None, Ask::Register, t0 + Duration::from_secs(1)), Admit::Challenge);
    }

    /// A flood forged with a phone's exact address: what the phone proves passes (its answer to
    /// a challenge sent to the address, its calls in progress, its transactions); what proves
    /// nothing is challenged, up to ten times the budget in a window, then dropped.
    #[test]
    fn requests_that_prove_the_address_pass_a_shedding_phone_address_and_the_rest_is_challenged_within_its_budget() {
        let mut g = Guard::new(config());
        let t0 = Instant::now();
        let phone = Counted::Registered { addr: "127.0.0.1:5062".parse().unwrap(), bindings: 1 };
        // 5 a binding and 5 more.
        assert!((0..10).all(|_| !g.count(phone, t0)));
        assert!(g.count(phone, t0), "over its budget");
        for proof in [Evidence::Nonce, Evidence::Dialog, Evidence::Transaction] {
            assert_eq!(g.banned(phone, proof, Ask::Request, t0), Admit::Pass, "{proof:?}");
        }
        // Unproven INVITEs (or REGISTERs) get a challenge each, 100 in the window (ten times its
        // budget of 10), then nothing.
        for n in 0..100 {
            let ask = if n % 2 == 0 { Ask::Request } else { Ask::Register };
            assert_eq!(g.banned(phone, Evidence::None, ask, t0), Admit::Challenge, "challenge {n}");
        }
        assert_eq!(g.banned(phone, Evidence::None, Ask::Request, t0), Admit::Drop, "beyond the budget of challenges");
        assert_eq!(g.banned(phone, Evidence::None, Ask::Nothing, t0), Admit::Drop, "an ACK or CANCEL proving nothing");
        assert_eq!(g.counters, GuardCounters { bans: 1, dropped: 2, challenged: 100 });
        // The next window starts both budgets over.
        let t1 = t0 + Duration::from_secs(2);
        assert!((0..10).all(|_| !g.count(phone, t1)));
        assert!(g.count(phone, t1));
        assert_eq!(g.banned(phone, Evidence::None, Ask::Request, t1), Admit::Challenge);
    }

    #[test]
    fn a_registered_address_has_a_budget_per_binding_and_sheds_only_until_its_window_ends() {
        let mut g = Guard::new(config());
        let t0 = Instant::now();
        let phone = Counted::Registered { addr: "127.0.0.1:5062".parse().unwrap(), bindings: 2 };
        // 5 a binding and 5 more: 15 in the window.
        assert!((0..15).all(|_| !g.count(phone, t0)));
        assert!(g.count(phone, t0 + Duration::from_millis(10)), "over its budget");
        assert_eq!(g.banned(phone, Evidence::Nonce, Ask::Request, t0), Admit::Pass, "the phone's own answer to a challenge");
        assert_eq!(g.banned(phone, Evidence::None, Ask::Nothing, t0), Admit::Drop);
        // The IP is counted apart: another port of the phone's IP has the IP's budget, and sheds
        // to its window's end as well.
        let other_ports = Counted::PhoneIp(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)));
        assert!((0..5).all(|_| !g.count(other_ports, t0)));
        assert!(g.count(other_ports, t0), "the sixth from another port of that IP");
        assert_eq!(g.banned(other_ports, Evidence::None, Ask::Request, t0), Admit::Drop, "another port's INVITE");
        assert_eq!(g.banned(other_ports, Evidence::None, Ask::Register, t0), Admit::Challenge, "another port's REGISTER");
        assert_eq!(g.banned(other_ports, Evidence::None, Ask::Register, t0), Admit::Drop, "once a second");
        assert!(g.count(phone, t0 + Duration::from_millis(1999)), "shed for the rest of the window");
        assert!(!g.count(phone, t0 + Duration::from_secs(2)), "not banned beyond it");
        assert!(!g.count(other_ports, t0 + Duration::from_secs(2)), "nor is the phone's IP");
    }

    #[test]
    fn the_table_is_bounded() {
        let mut g = Guard::new(config());
        let t0 = Instant::now();
        for i in 0..1000u32 {
            g.count(Counted::Ip(IpAddr::V4(i.into())), t0 + Duration::from_millis(i.into()));
        }
        assert!(g.sources.len() <= 8);
    }

    #[test]
    fn off_counts_nothing() {
        let mut g = Guard::new(GuardConfig { max_requests: 0, ..config() });
        assert!((0..100).all(|_| !g.count(ATTACKER, Instant::now())));
    }
}
