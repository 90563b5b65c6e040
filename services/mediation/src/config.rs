//! The `[mediation]` section of /etc/sba/sba.toml (the other sections belong to the other
//! services and are skipped). Errors name the key and the line, as the registrar's do.
use crate::srtp_policy::SrtpPolicy;
use crate::numbers::{DialPlan, Rule};
use crate::routing::{route_pattern, AddressRange, InboundRule, InboundTarget, Plan, Policy, Registration, Route, Trunk, TrunkKind};
use holdfast_media::srtp::Suite;
use holdfast_sip::transport::Protocol;
use holdfast_tls::rustls::pki_types::ServerName;
use holdfast_runtime::config::{ConfigError, Loaded, Source};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

pub const DEFAULT: &str = include_str!("default.toml");

// `[mediation]` has one source of defaults, `Mediation::default()`: a key left out, the table
// left out and an empty table all mean the same.
#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    mediation: Mediation,
    #[serde(default)]
    registrar: RegistrarDb,
}

/// Only `[registrar].db` is read from the registrar's section: CDRs go to the same database.
#[derive(Debug, Default, Deserialize)]
struct RegistrarDb {
    db: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Mediation {
    listen: Spanned<SocketAddr>,
    /// Our address in Via and Contact when `listen` is a wildcard.
    advertise: Option<IpAddr>,
    /// sba-registrar: inbound calls for branch users go there.
    registrar: SocketAddr,
    db: Option<PathBuf>,
    /// An address, or "auto": the default route's source address, else the LAN interface's,
    /// looked up at start.
    media_ip: Spanned<String>,
    media_ports: Spanned<[u16; 2]>,
    options_interval_ms: u64,
    dead_after: u32,
    /// Ringing longer than this without an answer moves the call to the next trunk.
    no_answer_secs: u64,
    /// An answered call whose media stopped this long is ended (its ends are gone).
    media_timeout_secs: u64,
    /// SRTP on the branch phones' leg (each trunk has its own `srtp`).
    srtp: SrtpPolicy,
    /// Calls in progress at most (both directions); beyond: 503 with Retry-After.
    max_calls: u32,
    /// Call records older than this many days are deleted, and beyond this many rows the oldest.
    cdr_keep_days: u32,
    cdr_keep_rows: u32,
    default_policy: Option<Spanned<String>>,
    rules: Vec<RuleEntry>,
    policies: Vec<PolicyEntry>,
    routes: Vec<RouteEntry>,
    trunks: Vec<TrunkEntry>,
    inbound: Vec<InboundEntry>,
    /// Where trunks and PBXs reach us over SIP over TLS; none: no TLS listener.
    tls_listen: Option<SocketAddr>,
    /// The appliance certificate (shared with sba-registrar and sba-web).
    tls_dir: PathBuf,
}

impl Default for Mediation {
    fn default() -> Mediation {
        Mediation {
            listen: Spanned::new(0..0, SocketAddr::from(([127, 0, 0, 1], 5070))),
            advertise: None,
            registrar: SocketAddr::from(([127, 0, 0, 1], 5060)),
            db: None,
            media_ip: Spanned::new(0..0, "127.0.0.1".into()),
            media_ports: Spanned::new(0..0, [30000, 30999]),
            options_interval_ms: 5000,
            dead_after: 2,
            no_answer_secs: 60,
            media_timeout_secs: 60,
            srtp: SrtpPolicy::default(),
            // A Survivable Branch Appliance's branch, 1,000 users, at heavy PSTN use: one port
            // per 5 users (Planning for PSTN connectivity, gateway size). The default
            // media_ports relay 250 calls (two port pairs each).
            max_calls: 200,
            cdr_keep_days: 90,
            cdr_keep_rows: 500_000,
            default_policy: None,
            rules: Vec::new(),
            policies: Vec::new(),
            routes: Vec::new(),
            trunks: Vec::new(),
            inbound: Vec::new(),
            tls_listen: None,
            tls_dir: PathBuf::from(holdfast_tls::DEFAULT_DIR),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    #[serde(default)]
    name: String,
    pattern: Spanned<String>,
    replace: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyEntry {
    name: String,
    usages: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteEntry {
    name: String,
    pattern: Spanned<String>,
    usage: String,
    trunks: Spanned<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum KindEntry {
    Carrier,
    Gateway,
    Pbx,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum TransportEntry {
    Udp,
    Tcp,
    Tls,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrunkEntry {
    name: Spanned<String>,
    kind: KindEntry,
    address: SocketAddr,
    #[serde(default = "udp")]
    transport: TransportEntry,
    #[serde(default)]
    called: Vec<RuleEntry>,
    #[serde(default)]
    calling: Vec<RuleEntry>,
    #[serde(default)]
    media_bypass: bool,
    #[serde(default)]
    srtp: SrtpPolicy,
    /// The SDES suites offered to the trunk, most preferred first (RFC 4568/6188/7714 names).
    #[serde(default)]
    srtp_suites: Vec<Spanned<String>>,
    /// OPTIONS health checks; off for a peer that does not answer OPTIONS.
    #[serde(default = "yes")]
    options: bool,
    /// Addresses or CIDR ranges (an IP-PBX's) calls from this trunk may also come from.
    #[serde(default)]
    inbound_from: Vec<Spanned<String>>,
    /// A REFER from this trunk may transfer its calls.
    #[serde(default)]
    allow_refer: bool,
    registration: Option<RegistrationEntry>,
    /// transport = "tls": the name the trunk's certificate must carry (default: its IP address),
    /// the CA bundle it must chain to (default: the Mozilla roots), and the explicit opt-out.
    tls_name: Option<Spanned<String>>,
    tls_ca: Option<PathBuf>,
    #[serde(default = "yes")]
    tls_verify: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationEntry {
    user: String,
    password: String,
    domain: Option<String>,
    #[serde(default = "register_expires")]
    expires: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InboundEntry {
    pattern: Spanned<String>,
    user: Option<String>,
    trunk: Option<Spanned<String>>,
}

fn yes() -> bool {
    true
}
fn udp() -> TransportEntry {
    TransportEntry::Udp
}
fn register_expires() -> u32 {
    600
}

/// How a trunk over TLS is checked.
#[derive(Debug, Clone)]
pub struct TrunkTls {
    pub trunk: String,
    pub address: SocketAddr,
    /// What its certificate must name (`tls_name`, else its IP address).
    pub name: ServerName<'static>,
    /// The CA bundle it must chain to; None: the Mozilla roots.
    pub ca: Option<PathBuf>,
    /// False: `tls_verify = false`, logged at start.
    pub verify: bool,
}

/// What sba-mediation runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub tls_listen: Option<SocketAddr>,
    pub tls_dir: PathBuf,
    pub tls_trunks: Vec<TrunkTls>,
    /// The address peers reach us at (Via, Contact): `advertise`, else the listen address.
    pub advertise: IpAddr,
    pub registrar: SocketAddr,
    /// The SQLite database for CDRs: `[mediation].db`, else `[registrar].db`, else ./var/sba.db.
    pub db: PathBuf,
    /// The relay's address in SDP; None ("auto"): the default route's source address, else the
    /// LAN interface's, looked up at start (media_ip.rs).
    pub media_ip: Option<IpAddr>,
    pub media_ports: std::ops::RangeInclusive<u16>,
    /// OPTIONS to each trunk this often; `dead_after` unanswered in a row mark it dead.
    pub options_interval: Duration,
    pub dead_after: u32,
    pub no_answer: Duration,
    pub media_timeout: Duration,
    /// SRTP on the branch phones' leg.
    pub srtp: SrtpPolicy,
    pub max_calls: usize,
    /// How long and how many call records are kept.
    pub cdr_keep: Duration,
    pub cdr_keep_rows: u32,
    pub plan: Plan,
}

impl Loaded for Config {
    const DEFAULT: &'static str = DEFAULT;

    fn from_source(source: &Source) -> Result<Config, ConfigError> {
        let parsed: File = source.sections()?;
        let m = parsed.mediation;
        let at = |span: Range<usize>, key: String, message: String| source.span_error(span, key, message);
        let rules = |entries: &[RuleEntry], key: &str| -> Result<Vec<Rule>, ConfigError> {
            entries
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let name = if r.name.is_empty() { format!("{key}[{i}]") } else { r.name.clone() };
                    Rule::new(&name, r.pattern.get_ref(), &r.replace)
                        .map_err(|e| at(r.pattern.span(), format!("{key}[{i}].pattern"), e.to_string()))
                })
                .collect()
        };
        let listen = *m.listen.get_ref();
        let advertise = m.advertise.unwrap_or(listen.ip());
        if advertise.is_unspecified() {
            let why = "a wildcard address needs `advertise` (the address peers reach us at)".to_string();
            return Err(at(m.listen.span(), "mediation.listen".into(), why));
        }
        let media_ip = match m.media_ip.get_ref().as_str() {
            "auto" => None,
            text => match text.parse::<IpAddr>() {
                Ok(ip) if !ip.is_unspecified() => Some(ip),
                _ => {
                    let why = "the relay's address goes into SDP: a concrete address, or \"auto\" (the LAN's, looked up at start)".to_string();
                    return Err(at(m.media_ip.span(), "mediation.media_ip".into(), why));
                }
            },
        };
        let [first, last] = *m.media_ports.get_ref();
        if first == 0 || first > last || first % 2 == 1 {
            let why = "[first, last] with an even first port above 0, first <= last".to_string();
            return Err(at(m.media_ports.span(), "mediation.media_ports".into(), why));
        }

        let mut trunks = Vec::new();
        let mut tls_trunks = Vec::new();
        let mut names = HashSet::new();
        for (i, t) in m.trunks.iter().enumerate() {
            if !names.insert(t.name.get_ref().clone()) {
                return Err(at(t.name.span(), format!("mediation.trunks[{i}].name"), "duplicate trunk name".into()));
            }
            let mut srtp_suites = Vec::new();
            for name in &t.srtp_suites {
                let suite = Suite::from_name(name.get_ref()).ok_or_else(|| {
                    let known: Vec<&str> = Suite::ALL.iter().map(|s| s.name()).collect();
                    at(name.span(), format!("mediation.trunks[{i}].srtp_suites"), format!("unknown suite (one of {})", known.join(", ")))
                })?;
                srtp_suites.push(suite);
            }
            if srtp_suites.is_empty() {
                srtp_suites = Suite::ALL.to_vec();
            }
            if matches!(t.transport, TransportEntry::Tls) {
                let name = t.tls_name.as_ref().map_or_else(|| t.address.ip().to_string(), |n| n.get_ref().clone());
                let server_name = ServerName::try_from(name).map_err(|e| {
                    let span = t.tls_name.as_ref().map_or(t.name.span(), Spanned::span);
                    at(span, format!("mediation.trunks[{i}].tls_name"), e.to_string())
                })?;
                tls_trunks.push(TrunkTls {
                    trunk: t.name.get_ref().clone(),
                    address: t.address,
                    name: server_name.to_owned(),
                    ca: t.tls_ca.clone(),
                    verify: t.tls_verify,
                });
            }
            let registration = t.registration.as_ref().map(|r| Registration {
                user: r.user.clone(),
                password: r.password.clone(),
                domain: r.domain.clone().unwrap_or_else(|| t.address.ip().to_string()),
                expires: r.expires,
            });
            trunks.push(Trunk {
                name: t.name.get_ref().clone(),
                kind: match t.kind {
                    KindEntry::Carrier => TrunkKind::Carrier,
                    KindEntry::Gateway => TrunkKind::Gateway,
                    KindEntry::Pbx => TrunkKind::Pbx,
                },
                address: t.address,
                transport: match t.transport {
                    TransportEntry::Udp => Protocol::Udp,
                    TransportEntry::Tcp => Protocol::Tcp,
                    TransportEntry::Tls => Protocol::Tls,
                },
                called: rules(&t.called, &format!("mediation.trunks[{i}].called"))?,
                calling: rules(&t.calling, &format!("mediation.trunks[{i}].calling"))?,
                media_bypass: t.media_bypass,
                srtp: t.srtp,
                srtp_suites,
                options: t.options,
                registration,
                inbound_from: t
                    .inbound_from
                    .iter()
                    .map(|r| {
                        AddressRange::parse(r.get_ref())
                            .map_err(|e| at(r.span(), format!("mediation.trunks[{i}].inbound_from"), e))
                    })
                    .collect::<Result<_, _>>()?,
                allow_refer: t.allow_refer,
            });
        }

        let mut routes = Vec::new();
        for (i, r) in m.routes.iter().enumerate() {
            let pattern = route_pattern(r.pattern.get_ref())
                .map_err(|e| at(r.pattern.span(), format!("mediation.routes[{i}].pattern"), e.to_string()))?;
            if let Some(unknown) = r.trunks.get_ref().iter().find(|n| !names.contains(*n)) {
                return Err(at(r.trunks.span(), format!("mediation.routes[{i}].trunks"), format!("no trunk {unknown:?}")));
            }
            if r.trunks.get_ref().is_empty() {
                return Err(at(r.trunks.span(), format!("mediation.routes[{i}].trunks"), "list at least one trunk".into()));
            }
            routes.push(Route {
                name: r.name.clone(),
                pattern,
                usage: r.usage.clone(),
                trunks: r.trunks.get_ref().clone(),
            });
        }

        let mut policies: Vec<Policy> =
            m.policies.iter().map(|p| Policy { name: p.name.clone(), usages: p.usages.clone() }).collect();
        let user_policies: HashMap<String, String> =
            m.policies.iter().flat_map(|p| p.users.iter().map(|u| (u.clone(), p.name.clone()))).collect();
        // Users no policy lists get `default_policy`; without one, the policy named "default",
        // else a built-in one that grants local and national calls only: international and
        // premium need a policy that names them (the toll-fraud guard).
        let default_policy = match &m.default_policy {
            Some(name) if !policies.iter().any(|p| &p.name == name.get_ref()) => {
                return Err(at(name.span(), "mediation.default_policy".into(), format!("no policy {:?}", name.get_ref())));
            }
            Some(name) => name.get_ref().clone(),
            None => {
                if !policies.iter().any(|p| p.name == "default") {
                    policies.push(Policy { name: "default".into(), usages: vec!["local".into(), "national".into()] });
                }
                "default".to_string()
            }
        };

        let mut inbound = Vec::new();
        for (i, r) in m.inbound.iter().enumerate() {
            let key = format!("mediation.inbound[{i}]");
            let pattern = route_pattern(r.pattern.get_ref())
                .map_err(|e| at(r.pattern.span(), format!("{key}.pattern"), e.to_string()))?;
            let target = match (&r.user, &r.trunk) {
                (Some(user), None) => InboundTarget::User(user.clone()),
                (None, Some(trunk)) if names.contains(trunk.get_ref()) => InboundTarget::Trunk(trunk.get_ref().clone()),
                (None, Some(trunk)) => {
                    return Err(at(trunk.span(), format!("{key}.trunk"), format!("no trunk {:?}", trunk.get_ref())))
                }
                _ => return Err(at(r.pattern.span(), key, "set exactly one of user and trunk".into())),
            };
            inbound.push(InboundRule { pattern, target });
        }

        let db = m
            .db
            .or(parsed.registrar.db)
            .unwrap_or_else(|| PathBuf::from(holdfast_runtime::DEFAULT_DB));
        Ok(Config {
            listen,
            advertise,
            tls_listen: m.tls_listen,
            tls_dir: m.tls_dir,
            tls_trunks,
            registrar: m.registrar,
            db,
            media_ip,
            media_ports: first..=last,
            options_interval: Duration::from_millis(m.options_interval_ms.max(100)),
            dead_after: m.dead_after.max(1),
            no_answer: Duration::from_secs(m.no_answer_secs.max(1)),
            media_timeout: Duration::from_secs(m.media_timeout_secs.max(5)),
            srtp: m.srtp,
            max_calls: m.max_calls as usize,
            cdr_keep: Duration::from_secs(u64::from(m.cdr_keep_days.max(1)) * 86_400),
            cdr_keep_rows: m.cdr_keep_rows.max(1),
            plan: Plan {
                dial_plan: DialPlan { rules: rules(&m.rules, "mediation.rules")? },
                policies,
                user_policies,
                default_policy,
                routes,
                trunks,
                inbound,
            },
        })
    }
}

#[cfg(test)]
mod tests;
