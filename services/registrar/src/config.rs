//! The appliance's TOML configuration, as far as the registrar reads it. Errors name the key and
//! the line, so whoever edits /etc/sba/sba.toml on a branch box can find the mistake.
use crate::directory::is_dialable;
use holdfast_runtime::config::{self, ConfigError};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT: &str = include_str!("default.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    registrar: Registrar,
    central: Option<Central>,
    #[serde(default)]
    survival: Survival,
    #[serde(default)]
    directory: Vec<DirectoryRange>,
    // The other services' sections: read by them, accepted here.
    #[serde(rename = "mediation")]
    _mediation: Option<toml::Table>,
    #[serde(rename = "gateway")]
    _gateway: Option<toml::Table>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registrar {
    pub listen: SocketAddr,
    pub db: PathBuf,
    /// The branch's SIP domain; users added without a domain belong to it.
    pub domain: String,
    /// This branch's name in `[[directory]]`.
    #[serde(default = "site")]
    pub site: String,
    /// Digest authentication of REGISTER (RFC 7616); off only for a closed lab.
    #[serde(default = "yes")]
    pub auth: bool,
    #[serde(default = "min_expires")]
    pub min_expires: u32,
    #[serde(default = "max_expires")]
    pub max_expires: u32,
    #[serde(default = "default_expires")]
    pub default_expires: u32,
    #[serde(default = "nonce_lifetime")]
    pub nonce_lifetime: u32,
    /// Digest algorithms offered, most preferred first (RFC 8760). MD5 alone by default: many
    /// phones know nothing else and some (libre-based ones such as baresip 1.0) refuse a 401
    /// that also offers SHA-256; sipp 3.6 reads only the first. ["SHA-256", "MD5"] where the
    /// phones allow it.
    #[serde(default = "digest_algorithms")]
    pub digest_algorithms: Vec<String>,
}

fn site() -> String {
    "branch".to_string()
}
fn yes() -> bool {
    true
}
fn min_expires() -> u32 {
    60
}
fn max_expires() -> u32 {
    7200
}
fn default_expires() -> u32 {
    3600
}
fn nonce_lifetime() -> u32 {
    300
}
fn digest_algorithms() -> Vec<String> {
    vec!["MD5".to_string()]
}

/// The central site. Without it the branch registrar is the primary registrar.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Central {
    /// The central registrar/proxy addresses, most preferred first; REGISTERs and calls for users
    /// not at the branch go to the first one that answers the WAN monitor's OPTIONS.
    pub proxies: Vec<SocketAddr>,
    /// Expiry granted to phones: shorter than the central site's, so the branch learns of moved
    /// phones quickly; refreshes in between are answered here without loading the WAN.
    #[serde(default = "branch_expires")]
    pub branch_expires: u32,
    /// WAN monitor: OPTIONS every interval to each proxy, each allowed `keepalive_timeout_ms`.
    #[serde(default = "keepalive_interval_ms")]
    pub keepalive_interval_ms: u64,
    #[serde(default = "keepalive_timeout_ms")]
    pub keepalive_timeout_ms: u64,
    /// Consecutive failed probes before survival mode; consecutive answers before failback.
    #[serde(default = "down_after")]
    pub down_after: u32,
    #[serde(default = "up_after")]
    pub up_after: u32,
}

/// What the branch does on its own while the WAN is down.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Survival {
    /// sba-mediation: where calls to the PSTN go.
    pub mediation: Option<SocketAddr>,
    /// A PSTN voicemail number for branch calls nobody answers.
    pub voicemail: Option<String>,
    /// How long a branch phone rings before the call goes to voicemail.
    #[serde(default = "no_answer_secs")]
    pub no_answer_secs: u32,
}

/// A block of extensions of one site and the E.164 numbers they have from the PSTN:
/// extension `first + n` is `e164 + n`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryRange {
    pub site: String,
    pub first: String,
    pub last: String,
    pub e164: String,
}

fn branch_expires() -> u32 {
    120
}
fn keepalive_interval_ms() -> u64 {
    400
}
fn keepalive_timeout_ms() -> u64 {
    800
}
fn down_after() -> u32 {
    3
}
fn up_after() -> u32 {
    5
}
fn no_answer_secs() -> u32 {
    20
}

#[derive(Debug, Clone)]
pub struct Config {
    pub registrar: Registrar,
    pub central: Option<Central>,
    pub survival: Survival,
    pub directory: Vec<DirectoryRange>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (text, file) = config::read(path)?;
        Config::parse(&text, &file)
    }

    pub fn embedded() -> Config {
        // The embedded default is tested to parse (see tests below).
        Config::parse(DEFAULT, "embedded default").unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let parsed: File = toml::from_str(text).map_err(|e| config::located(text, file, &e))?;
        let config = Config {
            registrar: parsed.registrar,
            central: parsed.central,
            survival: parsed.survival,
            directory: parsed.directory,
        };
        config.validate(text, file)?;
        Ok(config)
    }

    fn validate(&self, text: &str, file: &str) -> Result<(), ConfigError> {
        let r = &self.registrar;
        let key_err = |key: &str, message: String| ConfigError::Key {
            file: file.to_string(),
            line: config::line_of(text, "registrar", key).unwrap_or(0),
            key: format!("registrar.{key}"),
            message,
        };
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
        if r.nonce_lifetime < 10 {
            return Err(key_err("nonce_lifetime", "must be at least 10 seconds".into()));
        }
        let in_section = |section: &str, key: &str, message: String| ConfigError::Key {
            file: file.to_string(),
            line: config::line_of(text, section, key).unwrap_or(0),
            key: format!("{section}.{key}"),
            message,
        };
        if let Some(c) = &self.central {
            if c.proxies.is_empty() {
                return Err(in_section("central", "proxies", "list at least one central proxy".into()));
            }
            if c.branch_expires < r.min_expires {
                return Err(in_section("central", "branch_expires", format!("below min_expires {}", r.min_expires)));
            }
            if c.keepalive_interval_ms == 0 || c.keepalive_timeout_ms == 0 {
                return Err(in_section("central", "keepalive_interval_ms", "intervals must be above zero".into()));
            }
            if c.down_after == 0 || c.up_after == 0 {
                return Err(in_section("central", "down_after", "down_after and up_after must be at least 1".into()));
            }
        }
        if let Some(v) = &self.survival.voicemail {
            if !is_dialable(v) {
                return Err(in_section("survival", "voicemail", format!("{v:?} is not a phone number")));
            }
        }
        for d in &self.directory {
            let ok = is_dialable(&d.first)
                && is_dialable(&d.last)
                && is_dialable(&d.e164)
                && d.first.len() == d.last.len()
                && d.first <= d.last;
            if !ok {
                return Err(ConfigError::Other {
                    file: file.to_string(),
                    message: format!(
                        "[[directory]] of site {:?}: first/last must be digit strings of one length, first <= last, e164 a number",
                        d.site
                    ),
                });
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
