//! The appliance certificate while the services run: rustls asks `LiveCert` for it at every
//! handshake, and a watcher thread reloads it when its files change (`sbactl tls install`),
//! so new handshakes present the new certificate while calls in progress, and the connections
//! they use, go on untouched.
use crate::{provider, ApplianceCert, TlsError, CERT_FILE, KEY_FILE};
use rustls::client::ResolvesClientCert;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// How often the certificate files are looked at.
const WATCH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct LiveCert {
    dir: PathBuf,
    current: RwLock<(Arc<CertifiedKey>, String)>,
}

/// What tells that the files changed: their modification times and sizes.
type Stamp = Option<(SystemTime, u64, SystemTime, u64)>;

fn stamp(dir: &Path) -> Stamp {
    let meta = |name| std::fs::metadata(dir.join(name)).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
    let (cert, key) = (meta(CERT_FILE)?, meta(KEY_FILE)?);
    Some((cert.0, cert.1, key.0, key.1))
}

impl LiveCert {
    /// Serves `cert` and watches its directory for a new one (for the life of the process).
    pub fn watch(cert: &ApplianceCert) -> Result<Arc<LiveCert>, TlsError> {
        let live = Arc::new(LiveCert {
            dir: cert.dir.clone(),
            current: RwLock::new((Arc::new(cert.certified_key()?), cert.fingerprint_sha256())),
        });
        let watched = Arc::downgrade(&live);
        let dir = cert.dir.clone();
        std::thread::Builder::new()
            .name("tls-cert-watch".into())
            .spawn(move || {
                let mut seen = stamp(&dir);
                loop {
                    std::thread::sleep(WATCH_EVERY);
                    let Some(live) = watched.upgrade() else { return };
                    let now = stamp(&dir);
                    if now != seen && live.reload() {
                        seen = now;
                    }
                }
            })
            .map_err(|source| TlsError::Io { path: cert.dir.clone(), source })?;
        Ok(live)
    }

    /// Loads the certificate files again; true once they hold a usable certificate (a key
    /// written before its certificate does not match it yet: the old one stays until both are
    /// there).
    pub fn reload(&self) -> bool {
        let loaded = ApplianceCert::load(&self.dir).and_then(|c| match c {
            Some(c) => Ok(Some((c.certified_key()?, c.fingerprint_sha256()))),
            None => Ok(None),
        });
        match loaded {
            Ok(Some((key, fingerprint))) => {
                let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
                if current.1 != fingerprint {
                    log::info!("new appliance certificate in {} (SHA-256 {fingerprint}); new TLS handshakes use it", self.dir.display());
                }
                *current = (Arc::new(key), fingerprint);
                true
            }
            Ok(None) => false,
            Err(e) => {
                log::debug!("appliance certificate not reloaded (yet): {e}");
                false
            }
        }
    }

    pub fn fingerprint_sha256(&self) -> String {
        self.current.read().unwrap_or_else(|p| p.into_inner()).1.clone()
    }

    fn key(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).0.clone()
    }

    /// A server configuration presenting the current certificate, offering `alpn`.
    pub fn server_config(self: &Arc<Self>, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// A server configuration presenting the current certificate whose clients must pass
    /// `verifier` (see `caller_server_config`).
    pub(crate) fn server_config_verifying(self: &Arc<Self>, verifier: Arc<dyn ClientCertVerifier>) -> Result<Arc<ServerConfig>, TlsError> {
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.clone());
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for LiveCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.key())
    }
}

/// The appliance certificate is also its client certificate towards the central site
/// (mutual TLS).
impl ResolvesClientCert for LiveCert {
    fn resolve(&self, _root_hint_subjects: &[&[u8]], sigschemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        let key = self.key();
        key.key.choose_scheme(sigschemes).is_some().then_some(key)
    }

    fn has_certs(&self) -> bool {
        true
    }
}
