//! sba-web's part of sba.toml: `[web]` and `[cdr]`, and where the other services keep what it
//! reads (`[registrar].db`, `[gateway].status_file`). Errors name the key and the line.
use holdfast_runtime::config::{self, ConfigError};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT: &str = include_str!("default.toml");

#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (None: the embedded default); checked on the configuration page.
    pub file: Option<PathBuf>,
    pub db: PathBuf,
    pub gateway_status: PathBuf,
    pub web: Web,
    pub cdr: Option<CdrUpload>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Web {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// HTTPS with the appliance certificate; plain HTTP is allowed on loopback only.
    #[serde(default = "yes")]
    pub tls: bool,
    #[serde(default = "default_tls_dir")]
    pub tls_dir: PathBuf,
    /// Names (DNS or IP) a generated certificate is made for; default: the host name and the
    /// listen address.
    #[serde(default)]
    pub names: Vec<String>,
    /// A login lasts this long.
    #[serde(default = "default_session_minutes")]
    pub session_minutes: u64,
}

/// Where call records go home: `[cdr] upload = "https://central.example/cdr"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CdrUpload {
    pub upload: String,
    /// A PEM file of the CA that signed the receiver's certificate, beside the public roots.
    pub ca: Option<PathBuf>,
    /// Records per POST.
    #[serde(default = "default_batch")]
    pub batch: u32,
    /// Names this appliance in each batch (default: `[registrar].site`, else the host name).
    pub site: Option<String>,
}

#[derive(Deserialize)]
struct File {
    registrar: Option<Registrar>,
    gateway: Option<Gateway>,
    web: Option<Web>,
    cdr: Option<CdrUpload>,
}

/// Only the keys sba-web needs; the registrar checks its own section.
#[derive(Deserialize)]
struct Registrar {
    db: Option<PathBuf>,
    site: Option<String>,
}

#[derive(Deserialize)]
struct Gateway {
    status_file: Option<PathBuf>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 443))
}
fn yes() -> bool {
    true
}
fn default_tls_dir() -> PathBuf {
    PathBuf::from(holdfast_tls::DEFAULT_DIR)
}
fn default_session_minutes() -> u64 {
    480
}
fn default_batch() -> u32 {
    100
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (text, file) = config::read(path)?;
        let mut c = parse(&text, &file)?;
        c.file = Some(path.to_owned());
        Ok(c)
    }

    pub fn embedded() -> Config {
        parse(DEFAULT, "embedded default").expect("the embedded default parses")
    }
}

pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    let f: File = toml::from_str(text).map_err(|e| config::located(text, file, &e))?;
    let key_error = |section: &str, key: &str, message: String| ConfigError::Key {
        file: file.to_owned(),
        line: config::line_of(text, section, key).unwrap_or(0),
        key: format!("{section}.{key}"),
        message,
    };
    let registrar = f.registrar.unwrap_or(Registrar { db: None, site: None });
    let db = registrar.db.unwrap_or_else(|| PathBuf::from(holdfast_runtime::DEFAULT_DB));
    let gateway_status = f
        .gateway
        .and_then(|g| g.status_file)
        .unwrap_or_else(|| holdfast_status::path_of::<holdfast_status::snapshot::GatewayStatus>(&db));
    let web = match f.web {
        Some(w) => w,
        None => toml::from_str::<Web>("").map_err(|e| config::located(text, file, &e))?,
    };
    if !web.tls && !web.listen.ip().is_loopback() {
        return Err(key_error("web", "tls", format!("plain HTTP only on loopback: {} needs tls = true", web.listen)));
    }
    if web.session_minutes == 0 {
        return Err(key_error("web", "session_minutes", "must be at least 1".into()));
    }
    let mut cdr = f.cdr;
    if let Some(c) = &mut cdr {
        if let Err(e) = crate::cdr_upload::client::Endpoint::parse(&c.upload) {
            return Err(key_error("cdr", "upload", e.to_string()));
        }
        if c.batch == 0 || c.batch > 10_000 {
            return Err(key_error("cdr", "batch", "must be 1 to 10000".into()));
        }
        if c.site.is_none() {
            c.site = registrar.site;
        }
    }
    Ok(Config { file: None, db, gateway_status, web, cdr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_is_plain_http_on_loopback_8080() {
        let c = Config::embedded();
        assert_eq!(c.web.listen, "127.0.0.1:8080".parse().unwrap());
        assert!(!c.web.tls);
        assert_eq!(c.db, PathBuf::from("./var/sba.db"));
        assert_eq!(c.gateway_status, PathBuf::from("./var/sba.db.gateway.json"));
        assert!(c.cdr.is_none());
    }

    #[test]
    fn the_appliance_serves_https_and_plain_http_must_stay_on_loopback() {
        let c = parse(include_str!("../../../image/overlay/etc/sba/sba.toml"), "sba.toml").unwrap();
        assert!(c.web.tls);
        let text = "[web]\nlisten = \"0.0.0.0:8080\"\ntls = false\n";
        match parse(text, "sba.toml") {
            Err(ConfigError::Key { line, key, .. }) => assert_eq!((line, key.as_str()), (3, "web.tls")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cdr_upload_needs_https() {
        let text = "[registrar]\nsite = \"leeds\"\n\n[cdr]\nupload = \"https://10.0.0.1:8443/cdr\"\n";
        let c = parse(text, "t").unwrap();
        let cdr = c.cdr.unwrap();
        assert_eq!((cdr.site.as_deref(), cdr.batch), (Some("leeds"), 100));
        match parse("[cdr]\nupload = \"http://central/cdr\"\n", "sba.toml") {
            Err(ConfigError::Key { line, key, .. }) => assert_eq!((line, key.as_str()), (2, "cdr.upload")),
            other => panic!("{other:?}"),
        }
    }
}
