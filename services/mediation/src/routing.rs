//! Where a call goes, decided without I/O: voice policies name the PSTN usages a user may use,
//! routes pair a number pattern and a usage with an ordered list of trunks (M:N: one Mediation
//! Server, many gateways, carrier SBCs and IP-PBXs), trunks translate numbers on the way out.
//! Inbound, DIDs map to branch users and the IP-PBX's number ranges go to the PBX.
use crate::srtp_policy::SrtpPolicy;
use crate::numbers::{anchored, DialPlan, Normalized, NumberError, Rule};
use holdfast_media::srtp::Suite;
use holdfast_sip::transport::Protocol;
use regex::Regex;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

/// The usage whose numbers no other usage may reach.
pub const PREMIUM: &str = "premium";

/// What is at the far end of a trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrunkKind {
    /// An ITSP's SBC (SIP trunk), possibly with registration.
    Carrier,
    /// A PSTN gateway (sba-gateway) over direct SIP.
    Gateway,
    /// An IP-PBX over direct SIP.
    Pbx,
}

impl TrunkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TrunkKind::Carrier => "carrier",
            TrunkKind::Gateway => "gateway",
            TrunkKind::Pbx => "pbx",
        }
    }
}

/// Outbound registration of a SIP trunk with its carrier (digest auth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub user: String,
    pub password: String,
    /// The registrar's domain (the To/From host and Request-URI); the trunk address by default.
    pub domain: String,
    pub expires: u32,
}

/// One pairing of this Mediation Server with a gateway, carrier SBC or IP-PBX.
#[derive(Debug, Clone)]
pub struct Trunk {
    pub name: String,
    pub kind: TrunkKind,
    pub address: SocketAddr,
    pub transport: Protocol,
    /// Rewrites of the called number sent on this trunk; the first match applies.
    pub called: Vec<Rule>,
    /// Rewrites of the calling number sent on this trunk; the first match applies.
    pub calling: Vec<Rule>,
    /// The SDP goes end to end and the relay stays out of the media path.
    pub media_bypass: bool,
    /// SRTP on this trunk's leg.
    pub srtp: SrtpPolicy,
    /// The SDES suites we offer this trunk, most preferred first (`srtp_suites`; default all).
    pub srtp_suites: Vec<Suite>,
    /// Kept under OPTIONS health checks.
    pub options: bool,
    pub registration: Option<Registration>,
    /// Addresses calls from this trunk may come from (the trunk's address always may): single
    /// addresses or an IP-PBX's ranges.
    pub inbound_from: Vec<AddressRange>,
    /// A REFER from this trunk's side may transfer the call (run under the branch user's voice
    /// policy); off unless set: a carrier must not place calls in the branch's name.
    pub allow_refer: bool,
}

/// An address or a CIDR range (`10.1.0.0/16`, `2001:db8::/32`, `192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    net: IpAddr,
    prefix: u8,
}

impl AddressRange {
    pub fn parse(text: &str) -> Result<AddressRange, String> {
        let (ip, prefix) = match text.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix)),
            None => (text, None),
        };
        let net: IpAddr = ip.trim().parse().map_err(|_| format!("{text:?} is not an IP address or range"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{text:?}: the prefix must be 0..={max}"))?,
            None => max,
        };
        Ok(AddressRange { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |a: IpAddr| -> u128 {
            match a {
                IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
                IpAddr::V6(v6) => u128::from(v6),
            }
        };
        if self.net.is_ipv4() != ip.is_ipv4() {
            return false;
        }
        // IPv4 sits in the top 32 bits, so one mask of the top `prefix` bits serves both.
        let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
        bits(self.net) & mask == bits(ip) & mask
    }
}

impl Trunk {
    fn translate(rules: &[Rule], number: &str) -> (String, Option<String>) {
        rules
            .iter()
            .find_map(|r| r.apply(number).map(|n| (n, Some(r.name.clone()))))
            .unwrap_or_else(|| (number.to_string(), None))
    }

    /// The called number as this trunk wants it, and the rule that made it.
    pub fn translate_called(&self, e164: &str) -> (String, Option<String>) {
        Trunk::translate(&self.called, e164)
    }

    pub fn translate_calling(&self, number: &str) -> (String, Option<String>) {
        Trunk::translate(&self.calling, number)
    }

    /// Whether a request from `ip` may be a call from this trunk.
    pub fn accepts_from(&self, ip: IpAddr) -> bool {
        self.address.ip() == ip || self.inbound_from.iter().any(|r| r.contains(ip))
    }
}

/// A voice policy: the PSTN usages its users may call through, in order of preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub usages: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub pattern: Regex,
    pub usage: String,
    /// Trunk names, tried in order.
    pub trunks: Vec<String>,
}

/// Where an inbound call for a matching number goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundTarget {
    /// A branch user: the replacement template gives the user part (e.g. `3$1`).
    User(String),
    /// An IP-PBX trunk that owns this number range.
    Trunk(String),
}

#[derive(Debug, Clone)]
pub struct InboundRule {
    pub pattern: Regex,
    pub target: InboundTarget,
}

/// Why a call is refused, as the SIP response that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
    /// The route the number matched, when the call was refused on it (no usage granted).
    pub route: Option<String>,
}

impl Refusal {
    fn new(status: u16, reason: impl Into<String>) -> Refusal {
        Refusal { status, reason: reason.into(), route: None }
    }
}

/// A trunk the call may take, with the numbers as sent on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkLeg {
    pub trunk: String,
    pub called: String,
    /// None: the caller has no number to show (sent anonymous, with Privacy: id).
    pub calling: Option<String>,
    /// The translation rules applied, if any.
    pub called_rule: Option<String>,
    pub calling_rule: Option<String>,
}

/// An outbound call's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    pub dialled: String,
    pub normalized: Normalized,
    /// The caller's number (`Plan::calling_number`); None for a caller known only by name.
    pub caller: Option<String>,
    pub policy: String,
    pub usage: String,
    pub route: String,
    /// In the route's order; health is the caller's business.
    pub legs: Vec<TrunkLeg>,
}

/// An inbound call's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    User { number: String, user: String },
    Pbx { number: String, leg: TrunkLeg },
}

/// The whole plan: dial plan, policies, routes, trunks, inbound rules.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub dial_plan: DialPlan,
    pub policies: Vec<Policy>,
    /// User name -> policy name; users not listed get `default_policy`.
    pub user_policies: HashMap<String, String>,
    pub default_policy: String,
    pub routes: Vec<Route>,
    pub trunks: Vec<Trunk>,
    pub inbound: Vec<InboundRule>,
}

impl Plan {
    /// The SDES suites offered to trunk `name`, most preferred first; all of them elsewhere.
    pub fn srtp_suites(&self, name: Option<&str>) -> &[Suite] {
        name.and_then(|n| self.trunk(n)).map_or(&Suite::ALL[..], |t| &t.srtp_suites[..])
    }

    pub fn trunk(&self, name: &str) -> Option<&Trunk> {
        self.trunks.iter().find(|t| t.name == name)
    }

    /// The trunk a request from `source` comes from, if any: the trunk at that very address
    /// first (several trunks may share a host), else one that accepts its IP.
    pub fn trunk_from(&self, source: SocketAddr) -> Option<&Trunk> {
        self.trunk_among(source, |_| true)
    }

    /// `trunk_from` for a request that came over `transport`: a TLS trunk's requests come over
    /// TLS, and its address over UDP (a source forged at will) or plain TCP is no trunk.
    pub fn trunk_over(&self, source: SocketAddr, transport: Protocol) -> Option<&Trunk> {
        self.trunk_among(source, |t| t.transport != Protocol::Tls || transport == Protocol::Tls)
    }

    fn trunk_among(&self, source: SocketAddr, admits: impl Fn(&Trunk) -> bool) -> Option<&Trunk> {
        let mut candidates = self.trunks.iter().filter(|t| admits(t));
        candidates.clone().find(|t| t.address == source).or_else(|| candidates.find(|t| t.accepts_from(source.ip())))
    }

    pub fn policy_of(&self, user: &str) -> Option<&Policy> {
        let name = self.user_policies.get(user).unwrap_or(&self.default_policy);
        self.policies.iter().find(|p| &p.name == name)
    }

    /// Decides an outbound call of `user` (from `caller`, their number or extension) to
    /// `dialled`: 484 when the dial plan cannot make it E.164, 404 when no route matches, 403
    /// when routes match but none in a usage the user's policy grants.
    pub fn outbound(&self, user: &str, caller: &str, dialled: &str) -> Result<Outbound, Refusal> {
        let normalized = self.dial_plan.normalize(dialled).map_err(|e| match e {
            NumberError::NotANumber(_) => Refusal::new(404, format!("Not Found ({e})")),
            _ => Refusal::new(484, format!("Address Incomplete ({e})")),
        })?;
        let mut matching: Vec<&Route> = self.routes.iter().filter(|r| r.pattern.is_match(&normalized.e164)).collect();
        // Toll-fraud guard: a premium number goes out through a premium route or not at all,
        // never through a broader route that happens to match it too.
        if matching.iter().any(|r| r.usage == PREMIUM) {
            matching.retain(|r| r.usage == PREMIUM);
        }
        if matching.is_empty() {
            return Err(Refusal::new(404, format!("Not Found (no route for {})", normalized.e164)));
        }
        let policy = self.policy_of(user);
        let granted = |r: &&&Route| policy.is_some_and(|p| p.usages.contains(&r.usage));
        // The policy's usage order decides between routes of several usages (seeds: PSTN usages
        // are ordered); within a usage, configuration order.
        let route = policy
            .and_then(|p| p.usages.iter().find_map(|u| matching.iter().filter(granted).find(|r| &r.usage == u)))
            .ok_or_else(|| {
                let usages: Vec<&str> = matching.iter().map(|r| r.usage.as_str()).collect();
                let refusal = Refusal::new(403, format!("Forbidden (no usage: {} not granted to {user})", usages.join(", ")));
                Refusal { route: matching.first().map(|r| r.name.clone()), ..refusal }
            })?;
        let caller = self.calling_number(caller);
        let legs = route
            .trunks
            .iter()
            .filter_map(|name| self.trunk(name))
            .map(|t| self.leg(t, &normalized, caller.as_deref()))
            .collect();
        Ok(Outbound {
            dialled: dialled.to_string(),
            caller,
            policy: policy.map(|p| p.name.clone()).unwrap_or_default(),
            usage: route.usage.clone(),
            route: route.name.clone(),
            legs,
            normalized,
        })
    }

    /// The number a caller shows on the PSTN: `caller` (a number sba-registrar asserted, or the
    /// From user) normalized by the dial plan, or kept as it is when it is a number the plan does
    /// not know; a name (a user without a number in sba-registrar's directory) has none.
    pub fn calling_number(&self, caller: &str) -> Option<String> {
        match self.dial_plan.normalize(caller) {
            Ok(n) => Some(n.e164),
            Err(NumberError::NotANumber(_)) => None,
            Err(_) => Some(caller.to_string()),
        }
    }

    fn leg(&self, trunk: &Trunk, called: &Normalized, caller: Option<&str>) -> TrunkLeg {
        let (number, called_rule) = trunk.translate_called(&called.e164);
        let called = match &called.ext {
            Some(ext) => format!("{number};ext={ext}"),
            None => number,
        };
        let (calling, calling_rule) = match caller.map(|c| trunk.translate_calling(c)) {
            Some((number, rule)) => (Some(number), rule),
            None => (None, None),
        };
        TrunkLeg { trunk: trunk.name.clone(), called, calling, called_rule, calling_rule }
    }

    /// Decides a call that came in from trunk `from` for `called`: a branch user for a DID, or
    /// the IP-PBX that owns the number (never back to the trunk it came from).
    pub fn inbound(&self, from: &str, called: &str, caller: &str) -> Result<Inbound, Refusal> {
        let number = self
            .dial_plan
            .normalize(called)
            .map_err(|e| Refusal::new(404, format!("Not Found ({e})")))?
            .e164;
        for rule in &self.inbound {
            if !rule.pattern.is_match(&number) {
                continue;
            }
            match &rule.target {
                InboundTarget::User(template) => {
                    let user = rule.pattern.replace(&number, template.as_str()).into_owned();
                    return Ok(Inbound::User { number, user });
                }
                InboundTarget::Trunk(name) if name != from => {
                    let Some(trunk) = self.trunk(name) else { continue };
                    let caller = self.calling_number(caller);
                    let leg = self.leg(trunk, &Normalized { e164: number.clone(), ext: None, rule: None }, caller.as_deref());
                    return Ok(Inbound::Pbx { number, leg });
                }
                InboundTarget::Trunk(_) => {}
            }
        }
        Err(Refusal::new(404, format!("Not Found (no DID {number} here)")))
    }
}

/// A compiled route pattern (anchored like the dial plan's).
pub fn route_pattern(pattern: &str) -> Result<Regex, regex::Error> {
    anchored(pattern)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod range_tests {
    use super::AddressRange;

    #[test]
    fn addresses_and_ranges() {
        let r = |t: &str| AddressRange::parse(t).unwrap();
        assert!(r("10.1.0.0/16").contains("10.1.200.3".parse().unwrap()));
        assert!(!r("10.1.0.0/16").contains("10.2.0.1".parse().unwrap()));
        assert!(r("192.0.2.7").contains("192.0.2.7".parse().unwrap()));
        assert!(!r("192.0.2.7").contains("192.0.2.8".parse().unwrap()));
        assert!(r("0.0.0.0/0").contains("203.0.113.1".parse().unwrap()));
        assert!(!r("0.0.0.0/0").contains("::1".parse().unwrap()));
        assert!(r("2001:db8::/32").contains("2001:db8:1::5".parse().unwrap()));
        assert!(!r("2001:db8::/32").contains("2001:db9::5".parse().unwrap()));
        for bad in ["10.0.0.0/33", "pbx.local", "10.0.0.0/x", "::/129"] {
            assert!(AddressRange::parse(bad).is_err(), "{bad}");
        }
    }
}
