//! The appliance's TLS in one place. Its certificate lives in a directory (`/etc/sba/tls` on the
//! image): `cert.pem` (the chain, leaf first) and `key.pem`. An admin drops in a certificate
//! from the company CA there; without one, the first service to start generates a self-signed
//! certificate for the appliance's names and keeps it, so its fingerprint stays the same across
//! restarts and a browser's exception or a phone's pinned certificate keeps working. sba-web
//! serves HTTPS with it; SIP over TLS (port 5061) takes the same `ServerConfig`.
//!
//! `LiveCert` serves the certificate to handshakes and swaps in a new one when its files change
//! (`install` writes them: `sbactl tls install`).
//!
//! `client_config` is the other direction: whom the appliance trusts when it connects out (the
//! central site's call record receiver): the Mozilla roots plus an optional private CA;
//! `peer_client_config` the same for SIP peers (central proxies, trunks), by CA bundle, with
//! the appliance certificate as client certificate (mutual TLS) where asked.
//! `caller_server_config` is mutual TLS the other way: a peer connecting in shows a client
//! certificate from its CA for its name.
#![forbid(unsafe_code)]
mod callers;
mod install;
mod live;
mod peer;

pub use callers::{caller_server_config, CallerTrust};
pub use install::CertInfo;
pub use live::LiveCert;
pub use peer::{peer_client_config, PeerTrust};
pub use rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the image keeps the certificate.
pub const DEFAULT_DIR: &str = "/etc/sba/tls";
pub(crate) const CERT_FILE: &str = "cert.pem";
pub(crate) const KEY_FILE: &str = "key.pem";
const LOCK_FILE: &str = ".lock";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    Pem { path: PathBuf, message: String },
    #[error("generating the appliance certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The appliance certificate and its key.
pub struct ApplianceCert {
    pub dir: PathBuf,
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// Made by this call (self-signed), rather than found in `dir`.
    pub generated: bool,
}

impl ApplianceCert {
    /// The certificate in `dir`, if there is one.
    pub fn load(dir: &Path) -> Result<Option<ApplianceCert>, TlsError> {
        let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
        if !cert_path.exists() && !key_path.exists() {
            return Ok(None);
        }
        let chain = read_certs(&cert_path)?;
        let key = read_key(&key_path)?;
        Ok(Some(ApplianceCert { dir: dir.to_owned(), chain, key, generated: false }))
    }

    /// The certificate in `dir`, or a self-signed one for `names` (DNS names or IP addresses)
    /// generated now and written there (the key readable by its owner only).
    pub fn load_or_generate(dir: &Path, names: &[String]) -> Result<ApplianceCert, TlsError> {
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Io { path: dir.to_owned(), source })?;
        // sba-web and the SIP services start together: one generates, the others load it.
        let _lock = lock(dir)?;
        if let Some(found) = Self::load(dir)? {
            return Ok(found);
        }
        let rcgen::CertifiedKey { cert, key_pair } = rcgen::generate_simple_self_signed(names.to_vec())?;
        // Key first: a crash between the two leaves no certificate without its key.
        write_replacing(&dir.join(KEY_FILE), key_pair.serialize_pem().as_bytes(), 0o600)?;
        write_replacing(&dir.join(CERT_FILE), cert.pem().as_bytes(), 0o644)?;
        log::info!("generated a self-signed appliance certificate in {} for {}", dir.display(), names.join(", "));
        let key = PrivateKeyDer::try_from(key_pair.serialize_der())
            .map_err(|message| TlsError::Pem { path: dir.join(KEY_FILE), message: message.to_string() })?;
        Ok(ApplianceCert { dir: dir.to_owned(), chain: vec![cert.der().clone()], key, generated: true })
    }

    /// SHA-256 of the leaf certificate, as browsers show it (AB:CD:...).
    pub fn fingerprint_sha256(&self) -> String {
        let digest = Sha256::digest(&self.chain[0]);
        digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(CERT_FILE)
    }

    /// The chain with its signing key, checked to belong together.
    pub(crate) fn certified_key(&self) -> Result<rustls::sign::CertifiedKey, TlsError> {
        Ok(rustls::sign::CertifiedKey::from_der(self.chain.clone(), self.key.clone_key(), &provider())?)
    }
}

/// Trust for connections the appliance makes: the Mozilla root store, plus the certificates in
/// `extra_ca` (a PEM file: the central site's private CA).
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = extra_ca {
        for cert in read_certs(path)? {
            roots.add(cert)?;
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// ring's provider. rustls deprecates it for lacking post-quantum key exchange, which only its
/// aws-lc-rs provider has; aws-lc-rs needs cmake and a C toolchain the offline image build
/// does not carry. Browsers and phones negotiate X25519 with it.
#[allow(deprecated)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates in a PEM file; none is an error.
pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Pem { path: path.to_owned(), message: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::Pem { path: path.to_owned(), message: "no certificate in it".into() });
    }
    Ok(certs)
}

pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem { path: path.to_owned(), message: e.to_string() })
}

/// Holds `dir`'s lock file (an advisory lock: the services and `sbactl tls install` writing the
/// pair one at a time) until dropped.
pub(crate) fn lock(dir: &Path) -> Result<std::fs::File, TlsError> {
    let path = dir.join(LOCK_FILE);
    let io = |source| TlsError::Io { path: path.clone(), source };
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(&path).map_err(io)?;
    file.lock().map_err(io)?;
    Ok(file)
}

/// Writes a file whole through a temporary name (readers see the old or the new), with `mode`.
pub(crate) fn write_replacing(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let io = |source| TlsError::Io { path: path.to_owned(), source };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp).map_err(io)?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_is_kept_and_served_again() {
        let dir = std::env::temp_dir().join(format!("holdfast-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let names = vec!["sba.branch.local".to_string(), "127.0.0.1".to_string()];
        let first = ApplianceCert::load_or_generate(&dir, &names).unwrap();
        assert!(first.generated);
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        let again = ApplianceCert::load_or_generate(&dir, &names).unwrap();
        assert!(!again.generated);
        assert_eq!(first.fingerprint_sha256(), again.fingerprint_sha256());
        assert_eq!(again.fingerprint_sha256().len(), 32 * 3 - 1);
        LiveCert::watch(&again).unwrap().server_config(&[b"http/1.1"]).unwrap();
        // Its own certificate as a CA file: a client trusting it is configured.
        client_config(Some(&again.cert_path())).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_broken_certificate_is_an_error_not_a_new_one() {
        let dir = std::env::temp_dir().join(format!("holdfast-tls-broken-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(CERT_FILE), "not a certificate").unwrap();
        std::fs::write(dir.join(KEY_FILE), "nor a key").unwrap();
        assert!(ApplianceCert::load_or_generate(&dir, &["x".into()]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A certificate from a company CA for `name`, written as PEM files in `dir`: (cert, key, ca).
    fn company_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Company CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        let paths = (dir.join("new.pem"), dir.join("new.key"), dir.join("ca.pem"));
        std::fs::write(&paths.0, cert.pem()).unwrap();
        std::fs::write(&paths.1, key.serialize_pem()).unwrap();
        std::fs::write(&paths.2, ca.pem()).unwrap();
        paths
    }

    #[test]
    fn an_installed_certificate_is_served_by_a_running_service_and_a_wrong_key_is_refused() {
        let dir = std::env::temp_dir().join(format!("holdfast-tls-install-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let generated = ApplianceCert::load_or_generate(&dir, &["sba.branch.local".to_string()]).unwrap();
        let live = LiveCert::watch(&generated).unwrap();
        let (cert, key, ca) = company_cert(&dir.join("in"), "sba.branch.example");
        let (_, other_key, _) = company_cert(&dir.join("other"), "sba.branch.example");

        // A key that is not the certificate's is refused and the old pair stays.
        assert!(ApplianceCert::install(&dir, &cert, &other_key, None).is_err());
        assert_eq!(ApplianceCert::load(&dir).unwrap().unwrap().fingerprint_sha256(), generated.fingerprint_sha256());

        let installed = ApplianceCert::install(&dir, &cert, &key, Some(&ca)).unwrap();
        assert_eq!(installed.chain.len(), 2);
        let info = installed.info().unwrap();
        assert_eq!(info.subject, "CN=sba.branch.example");
        assert_eq!(info.issuer, "CN=Company CA");
        assert!(info.not_before < info.not_after);
        assert_eq!(info.fingerprint_sha256, installed.fingerprint_sha256());
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions());
        assert_eq!(mode & 0o777, 0o600);
        // The running side picks it up at its next look.
        assert!(live.reload());
        assert_eq!(live.fingerprint_sha256(), installed.fingerprint_sha256());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
