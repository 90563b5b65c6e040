//! Putting a certificate from the company CA in place of the appliance's (`sbactl tls
//! install`) and telling what a certificate is (`sbactl tls show`).
use crate::{lock, provider, read_certs, read_key, write_replacing, ApplianceCert, TlsError, CERT_FILE, KEY_FILE};
use rustls::pki_types::PrivateKeyDer;
use std::path::Path;
use x509_cert::der::Decode;

/// What `sbactl tls show` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// RFC 4514 text of the leaf's subject.
    pub subject: String,
    pub issuer: String,
    /// Validity, in seconds since the Unix epoch.
    pub not_before: u64,
    pub not_after: u64,
    pub fingerprint_sha256: String,
}

impl ApplianceCert {
    pub fn info(&self) -> Result<CertInfo, TlsError> {
        let bad = |message: String| TlsError::Pem { path: self.cert_path(), message };
        let cert = x509_cert::Certificate::from_der(&self.chain[0]).map_err(|e| bad(e.to_string()))?;
        let tbs = &cert.tbs_certificate;
        Ok(CertInfo {
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            not_before: tbs.validity.not_before.to_unix_duration().as_secs(),
            not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
            fingerprint_sha256: self.fingerprint_sha256(),
        })
    }

    /// Installs the certificate in `cert` (PEM, leaf first; `chain` adds intermediates) and
    /// its key into `dir`, after checking that the key is the certificate's. The key is
    /// written first: the services keep the old pair until the new one matches, so they never
    /// serve a certificate without its key.
    pub fn install(dir: &Path, cert: &Path, key: &Path, chain: Option<&Path>) -> Result<ApplianceCert, TlsError> {
        let mut certs = read_certs(cert)?;
        if let Some(chain) = chain {
            certs.extend(read_certs(chain)?);
        }
        let key_der = read_key(key)?;
        rustls::sign::CertifiedKey::from_der(certs.clone(), key_der.clone_key(), &provider())
            .map_err(|e| TlsError::Pem { path: key.to_owned(), message: format!("not the certificate's key: {e}") })?;
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Io { path: dir.to_owned(), source })?;
        let _lock = lock(dir)?;
        let pem_of = |label: &str, der: &[u8]| pem_text(label, der);
        let key_label = match &key_der {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        write_replacing(&dir.join(KEY_FILE), pem_of(key_label, key_der.secret_der()).as_bytes(), 0o600)?;
        let chain_pem: String = certs.iter().map(|c| pem_of("CERTIFICATE", c)).collect();
        write_replacing(&dir.join(CERT_FILE), chain_pem.as_bytes(), 0o644)?;
        ApplianceCert::load(dir)?.ok_or_else(|| TlsError::Pem { path: dir.join(CERT_FILE), message: "vanished after writing".into() })
    }
}

/// PEM armour (the pem crate rcgen writes its PEM with).
fn pem_text(label: &str, der: &[u8]) -> String {
    pem::encode_config(&pem::Pem::new(label, der), pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF))
}
