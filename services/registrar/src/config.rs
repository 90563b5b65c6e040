//! The appliance's TOML configuration, as far as the registrar reads it. Errors name the key and
//! the line, so whoever edits /etc/sba/sba.toml on a branch box can find the mistake.
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT: &str = include_str!("default.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    registrar: Registrar,
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

#[derive(Debug, Clone)]
pub struct Config {
    pub registrar: Registrar,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {source}")]
    Read { file: String, source: std::io::Error },
    #[error("{file} line {line}: key `{key}`: {message}")]
    Key { file: String, line: usize, key: String, message: String },
    #[error("{file}: {message}")]
    Other { file: String, message: String },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { file: file.clone(), source })?;
        Config::parse(&text, &file)
    }

    pub fn embedded() -> Config {
        // The embedded default is tested to parse (see tests below).
        Config::parse(DEFAULT, "embedded default").unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let parsed: File = toml::from_str(text).map_err(|e| located(text, file, &e))?;
        let config = Config { registrar: parsed.registrar };
        config.validate(text, file)?;
        Ok(config)
    }

    fn validate(&self, text: &str, file: &str) -> Result<(), ConfigError> {
        let r = &self.registrar;
        let key_err = |key: &str, message: String| ConfigError::Key {
            file: file.to_string(),
            line: line_of(text, "registrar", key).unwrap_or(0),
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
        Ok(())
    }
}

/// Turns a toml error into one that names the line and the key on it.
fn located(text: &str, file: &str, err: &toml::de::Error) -> ConfigError {
    let message = err.message().to_string();
    let Some(span) = err.span() else {
        return ConfigError::Other { file: file.to_string(), message };
    };
    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let section = text[..span.start.min(text.len())]
        .lines()
        .filter_map(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        .last()
        .map(|s| s.trim().to_string());
    let key_on_line = text.lines().nth(line - 1).and_then(|l| l.split_once('=')).map(|(k, _)| k.trim().to_string());
    let key = match (section, key_on_line) {
        (Some(s), Some(k)) => format!("{s}.{k}"),
        (None, Some(k)) => k,
        (Some(s), None) => s,
        (None, None) => "(top level)".to_string(),
    };
    ConfigError::Key { file: file.to_string(), line, key, message }
}

/// The line where `key` is set inside `[section]`.
fn line_of(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if let Some(s) = t.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            current = s.trim().to_string();
        } else if current == section && t.split_once('=').is_some_and(|(k, _)| k.trim() == key) {
            return Some(i + 1);
        }
    }
    None
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
