//! The appliance's TOML configuration, as far as the registrar reads it. Errors name the key and
//! the line, so whoever edits /etc/sba/sba.toml on a branch box can find the mistake.
use crate::directory::{is_dialable, DirectoryEntry};
use holdfast_runtime::config::{ConfigError, Loaded, Source};
use holdfast_sip::transport::Protocol;
use holdfast_tls::rustls::pki_types::ServerName;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

pub const DEFAULT: &str = include_str!("default.toml");

// Each section has one source of defaults, its `Default`: a key left out, a table left out and
// an empty table all mean the same (`#[serde(default)]` on the struct takes missing keys from it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    registrar: Registrar,
    /// Present or not decides the mode: without it the branch is the primary registrar.
    central: Option<Central>,
    #[serde(default)]
    survival: Survival,
    #[serde(default)]
    directory: Vec<DirectoryEntry>,
    // The other services' sections: read by them, accepted here.
    #[serde(rename = "mediation")]
    _mediation: Option<toml::Table>,
    #[serde(rename = "gateway")]
    _gateway: Option<toml::Table>,
    #[serde(rename = "web")]
    _web: Option<toml::Table>,
    #[serde(rename = "cdr")]
    _cdr: Option<toml::Table>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Registrar {
    pub listen: SocketAddr,
    pub db: PathBuf,
    /// The branch's SIP domain; users added without a domain belong to it.
    pub domain: String,
    /// This branch's name in `[[directory]]`.
    pub site: String,
    /// Digest authentication of REGISTER (RFC 7616); off only for a closed lab.
    pub auth: bool,
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub nonce_lifetime: u32,
    /// Digest algorithms offered, most preferred first (RFC 8760). MD5 alone by default: many
    /// phones know nothing else and some (libre-based ones such as baresip 1.0) refuse a 401
    /// that also offers SHA-256; sipp 3.6 reads only the first. ["SHA-256", "MD5"] where the
    /// phones allow it.
    pub digest_algorithms: Vec<String>,
    /// Where phones reach us over SIP over TLS (5061); none: no TLS listener.
    pub tls_listen: Option<SocketAddr>,
    /// The appliance certificate (cert.pem, key.pem; generated there at first start when
    /// absent), shared with sba-web's `[web].tls_dir`.
    pub tls_dir: PathBuf,
    /// Contacts one AOR may hold; a REGISTER beyond it is refused (403) and counted.
    pub max_contacts: usize,
    /// `[registrar.limits]`.
    pub limits: Limits,
}

/// Bounds on what the network can make the registrar hold, each counted in `sbactl status`'s
/// `refused`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Live SIP transactions; a new request beyond them gets a stateless 503.
    pub max_transactions: usize,
    /// Requests one address may send in 2 s before it is banned (Kamailio's pike); 0: off.
    /// Configured peers are never counted; a UDP address bindings were registered from has this
    /// many per binding and one more, and sheds instead of being banned (trust/guard.rs).
    pub requests_per_source: u32,
    pub ban_secs: u32,
    pub tcp_connections: usize,
    pub tcp_per_source: usize,
    /// A TCP connection that carries nothing (not even an RFC 5626 keepalive) this long is closed.
    pub tcp_idle_secs: u32,
    /// Responses the digest failure throttle holds back at once; beyond, 503 at once.
    pub delayed_responses: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_transactions: 100_000,
            requests_per_source: 200,
            ban_secs: 60,
            tcp_connections: 4096,
            tcp_per_source: 256,
            tcp_idle_secs: 600,
            delayed_responses: 4096,
        }
    }
}

impl Default for Registrar {
    fn default() -> Registrar {
        Registrar {
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            db: PathBuf::from(holdfast_runtime::DEFAULT_DB),
            domain: "branch.local".to_string(),
            site: "branch".to_string(),
            auth: true,
            min_expires: 60,
            max_expires: 7200,
            default_expires: 3600,
            nonce_lifetime: 300,
            digest_algorithms: vec!["MD5".to_string()],
            tls_listen: None,
            tls_dir: PathBuf::from(holdfast_tls::DEFAULT_DIR),
            max_contacts: 10,
            limits: Limits::default(),
        }
    }
}

/// The central site. Without it the branch registrar is the primary registrar.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Central {
    /// The central registrar/proxy addresses, most preferred first; REGISTERs and calls for users
    /// not at the branch go to the first one that answers the WAN monitor's OPTIONS.
    pub proxies: Vec<SocketAddr>,
    /// How the central proxies are reached: pass-through REGISTERs, calls, the WAN probe, and
    /// the Path that brings the central site's requests back (over TLS it names our
    /// `tls_listen`, which must then be set).
    pub transport: CentralTransport,
    /// transport = "tls": the name the proxies' certificates must carry (default: each proxy's
    /// IP address), the CA bundle they must chain to (default: the Mozilla roots), the
    /// explicit, logged opt-out of the check, and whether the appliance certificate is shown to
    /// a central site that asks for a client certificate (mutual TLS).
    pub tls_name: Option<String>,
    pub tls_ca: Option<PathBuf>,
    pub tls_verify: bool,
    pub tls_client_cert: bool,
    /// Expiry granted to phones: shorter than the central site's, so the branch learns of moved
    /// phones quickly; refreshes in between are answered here without loading the WAN.
    pub branch_expires: u32,
    /// WAN monitor: OPTIONS every interval to each proxy, each allowed `keepalive_timeout_ms`.
    pub keepalive_interval_ms: u64,
    pub keepalive_timeout_ms: u64,
    /// Consecutive failed probes before survival mode; consecutive answers before failback.
    pub down_after: u32,
    pub up_after: u32,
}

impl Default for Central {
    fn default() -> Central {
        Central {
            proxies: Vec::new(),
            transport: CentralTransport::Udp,
            tls_name: None,
            tls_ca: None,
            tls_verify: true,
            tls_client_cert: true,
            branch_expires: 120,
            keepalive_interval_ms: 400,
            keepalive_timeout_ms: 800,
            down_after: 3,
            up_after: 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CentralTransport {
    Udp,
    Tcp,
    Tls,
}

impl CentralTransport {
    pub fn protocol(self) -> Protocol {
        match self {
            CentralTransport::Udp => Protocol::Udp,
            CentralTransport::Tcp => Protocol::Tcp,
            CentralTransport::Tls => Protocol::Tls,
        }
    }
}

impl Central {
    /// The name proxy `addr`'s certificate must carry.
    pub fn tls_name_of(&self, addr: SocketAddr) -> Result<ServerName<'static>, String> {
        let name = self.tls_name.clone().unwrap_or_else(|| addr.ip().to_string());
        ServerName::try_from(name).map_err(|e| e.to_string())
    }
}

/// What the branch does on its own (no central site, or the WAN down).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Survival {
    /// sba-mediation: where calls to the PSTN go; none: numbers outside the branch get 503.
    pub mediation: Option<SocketAddr>,
    /// A PSTN voicemail number for branch calls nobody answers.
    pub voicemail: Option<String>,
    /// How long a branch phone rings before the call goes to voicemail (or gets 480).
    pub no_answer_secs: u32,
}

impl Default for Survival {
    fn default() -> Survival {
        Survival { mediation: None, voicemail: None, no_answer_secs: 20 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub registrar: Registrar,
    pub central: Option<Central>,
    pub survival: Survival,
    pub directory: Vec<DirectoryEntry>,
}

impl Loaded for Config {
    const DEFAULT: &'static str = DEFAULT;

    fn from_source(source: &Source) -> Result<Config, ConfigError> {
        let parsed: File = source.sections()?;
        let config = Config {
            registrar: parsed.registrar,
            central: parsed.central,
            survival: parsed.survival,
            directory: parsed.directory,
        };
        config.validate(source)?;
        Ok(config)
    }
}

impl Config {
    fn validate(&self, source: &Source) -> Result<(), ConfigError> {
        let r = &self.registrar;
        let key_err = |key: &str, message: String| source.key_error("registrar", key, message);
        if r.min_expires == 0 {
            return Err(key_err("min_expires", "must be at least 1 second".into()));
        }
        if r.max_expires < r.min_expires {
            return Err(key_err("max_expires", format!("{} is below min_expires {}", r.max_expires, r.min_expires)));
        }
        if !(r.min_expires..=r.max_expires).contains(&r.default_expires) {
            return Err(key_err("default_expires", format!("must lie within min_expires..=max_expires ({}..={})", r.min_expires, r.max_expires)));
        }
        if r.domain.is_empty() || r.domain.contains(|c: char| c.is_whitespace() || c == '@') {
            return Err(key_err("domain", format!("{:?} is not a SIP domain", r.domain)));
        }
        if r.digest_algorithms.is_empty()
            || r.digest_algorithms.iter().any(|a| !matches!(a.to_ascii_uppercase().as_str(), "MD5" | "SHA-256"))
        {
            return Err(key_err("digest_algorithms", "list one or both of \"SHA-256\", \"MD5\"".into()));
        }
        if r.max_contacts == 0 {
            return Err(key_err("max_contacts", "must be at least 1".into()));
        }
        if r.nonce_lifetime < 10 {
            return Err(key_err("nonce_lifetime", "must be at least 10 seconds".into()));
        }
        let l = &r.limits;
        for (key, value) in [
            ("max_transactions", l.max_transactions),
            ("tcp_connections", l.tcp_connections),
            ("tcp_per_source", l.tcp_per_source),
            ("tcp_idle_secs", l.tcp_idle_secs as usize),
            ("ban_secs", l.ban_secs as usize),
            ("delayed_responses", l.delayed_responses),
        ] {
            if value == 0 {
                return Err(key_err(&format!("limits.{key}"), "must be at least 1".into()));
            }
        }
        if let Some(c) = &self.central {
            if c.proxies.is_empty() {
                return Err(source.key_error("central", "proxies", "list at least one central proxy"));
            }
            if c.branch_expires < r.min_expires {
                return Err(source.key_error("central", "branch_expires", format!("below min_expires {}", r.min_expires)));
            }
            if c.keepalive_interval_ms == 0 || c.keepalive_timeout_ms == 0 {
                return Err(source.key_error("central", "keepalive_interval_ms", "intervals must be above zero"));
            }
            if c.down_after == 0 || c.up_after == 0 {
                return Err(source.key_error("central", "down_after", "down_after and up_after must be at least 1"));
            }
            if c.transport == CentralTransport::Tls {
                if r.tls_listen.is_none() {
                    let why = "\"tls\" needs registrar.tls_listen: the Path given to the central site names it";
                    return Err(source.key_error("central", "transport", why));
                }
                if let Err(e) = c.proxies.iter().try_for_each(|p| c.tls_name_of(*p).map(drop)) {
                    return Err(source.key_error("central", "tls_name", e));
                }
            }
        }
        if let Some(v) = &self.survival.voicemail {
            if !is_dialable(v) {
                return Err(source.key_error("survival", "voicemail", format!("{v:?} is not a phone number")));
            }
        }
        for d in &self.directory {
            let fault = match (&d.first, &d.last, &d.user) {
                _ if !is_dialable(&d.e164) => Some("e164 must be a number"),
                (Some(first), Some(last), None) => {
                    let block = is_dialable(first) && is_dialable(last) && first.len() == last.len() && first <= last;
                    (!block).then_some("first/last must be digit strings of one length, first <= last")
                }
                (None, None, Some(user)) => {
                    let name = !user.is_empty() && user.chars().all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c));
                    (!name).then_some("user must be a user name")
                }
                _ => Some("set first and last (a block of extensions) or user (one user), not both"),
            };
            if let Some(fault) = fault {
                return Err(source.error(format!("[[directory]] of site {:?}: {fault}", d.site)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses() {
        let c = Config::embedded();
        assert_eq!(c.registrar.listen, "127.0.0.1:5060".parse().unwrap());
        assert!(c.registrar.db.starts_with("./var"));
    }

    #[test]
    fn a_missing_table_and_an_empty_one_mean_the_same() {
        let empty = Config::parse("", "empty").unwrap_or_else(|e| panic!("{e}"));
        let tables = Config::parse("[registrar]\n[survival]\n", "tables").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(empty, tables);
        assert_eq!(empty.registrar, Registrar::default());
        assert_eq!(empty.survival.no_answer_secs, 20, "a ringing phone gets its 20 s without a [survival] table");
        assert!(empty.central.is_none() && empty.directory.is_empty());
        let central = Config::parse("[central]\nproxies = [\"192.0.2.1:5060\"]\n", "t").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(central.central.unwrap(), Central { proxies: vec!["192.0.2.1:5060".parse().unwrap()], ..Central::default() });
    }

    #[test]
    fn the_embedded_default_routes_numbers_to_mediation() {
        let c = Config::embedded();
        assert_eq!(c.survival.mediation, Some("127.0.0.1:5070".parse().unwrap()));
        assert_eq!(c.registrar.domain, "branch.local");
    }

    #[test]
    fn the_appliance_config_parses() {
        let text = include_str!("../../../image/overlay/etc/sba/sba.toml");
        let c = Config::parse(text, "sba.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.registrar.db, PathBuf::from("/var/lib/sba/sba.db"));
        assert!(c.central.is_none(), "the shipped default is a primary registrar");
    }

    #[test]
    fn central_survival_and_directory_parse() {
        let text = "[registrar]\nlisten = \"127.0.0.1:5060\"\ndb = \"x.db\"\ndomain = \"d\"\n\
                    [central]\nproxies = [\"192.0.2.1:5060\"]\n[survival]\nmediation = \"127.0.0.1:5070\"\n\
                    voicemail = \"+15550100\"\n[[directory]]\nsite = \"hq\"\nfirst = \"2000\"\nlast = \"2999\"\n\
                    e164 = \"+15551232000\"\n";
        let c = Config::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.central.unwrap().branch_expires, 120);
        assert_eq!(c.directory.len(), 1);
        let bad = text.replace("proxies = [\"192.0.2.1:5060\"]", "proxies = []");
        let e = Config::parse(&bad, "t.toml").unwrap_err().to_string();
        assert!(e.contains("central.proxies") && e.contains("line 6"), "{e}");
    }

    #[test]
    fn the_central_site_over_tls_needs_a_listener_and_a_valid_name() {
        let text = "[registrar]\ntls_listen = \"127.0.0.1:5061\"\n[central]\nproxies = [\"192.0.2.1:5061\"]\n\
                    transport = \"tls\"\ntls_name = \"sip.central.example\"\n";
        let c = Config::parse(text, "t.toml").unwrap_or_else(|e| panic!("{e}")).central.unwrap();
        assert_eq!((c.transport.protocol(), c.tls_verify, c.tls_client_cert), (Protocol::Tls, true, true));
        let name = c.tls_name_of("192.0.2.1:5061".parse().unwrap()).unwrap();
        assert_eq!(format!("{name:?}"), format!("{:?}", ServerName::try_from("sip.central.example").unwrap()));
        let by_ip = Config::parse(&text.replace("tls_name = \"sip.central.example\"\n", ""), "t").unwrap().central.unwrap();
        let name = by_ip.tls_name_of("192.0.2.1:5061".parse().unwrap()).unwrap();
        assert_eq!(format!("{name:?}"), format!("{:?}", ServerName::try_from("192.0.2.1").unwrap()));
        let e = Config::parse(&text.replace("tls_listen = \"127.0.0.1:5061\"\n", ""), "t.toml").unwrap_err().to_string();
        assert!(e.contains("central.transport") && e.contains("tls_listen"), "{e}");
        let e = Config::parse(&text.replace("sip.central.example", "not a name!"), "t.toml").unwrap_err().to_string();
        assert!(e.contains("central.tls_name") && e.contains("line 6"), "{e}");
        let e = Config::parse(&text.replace("\"tls\"", "\"sctp\""), "t.toml").unwrap_err().to_string();
        assert!(e.contains("central.transport"), "{e}");
    }

    #[test]
    fn a_directory_entry_is_a_block_or_one_named_user() {
        let user = "[[directory]]\nsite = \"branch\"\nuser = \"alice\"\ne164 = \"+15559870500\"\n";
        let c = Config::parse(user, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.directory[0].user.as_deref(), Some("alice"));
        let both = user.replace("user = \"alice\"", "user = \"alice\"\nfirst = \"3000\"\nlast = \"3001\"");
        let e = Config::parse(&both, "t.toml").unwrap_err().to_string();
        assert!(e.contains("not both"), "{e}");
        let e = Config::parse(&user.replace("alice", "al ice"), "t.toml").unwrap_err().to_string();
        assert!(e.contains("user must be a user name"), "{e}");
        let e = Config::parse(&user.replace("+15559870500", "none"), "t.toml").unwrap_err().to_string();
        assert!(e.contains("e164 must be a number"), "{e}");
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = "[registrar]\nlisten = \"127.0.0.1:5060\"\ndb = \"x.db\"\ndomain = \"d\"\nmin_expire = 5\n";
        let e = Config::parse(text, "t.toml").unwrap_err().to_string();
        assert!(e.contains("line 5"), "{e}");
        assert!(e.contains("registrar.min_expire"), "{e}");
    }

    #[test]
    fn bad_value_is_named_with_its_line() {
        let text = "[registrar]\nlisten = \"nowhere\"\ndb = \"x.db\"\ndomain = \"d\"\n";
        let e = Config::parse(text, "t.toml").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("registrar.listen"), "{e}");
    }

    #[test]
    fn inconsistent_expiry_is_named() {
        let text = "[registrar]\nlisten = \"127.0.0.1:5060\"\ndb = \"x.db\"\ndomain = \"d\"\nmin_expires = 600\nmax_expires = 60\n";
        let e = Config::parse(text, "t.toml").unwrap_err().to_string();
        assert!(e.contains("line 6") && e.contains("registrar.max_expires"), "{e}");
    }
}
