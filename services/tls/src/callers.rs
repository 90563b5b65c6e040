//! Whom the appliance believes when a SIP peer connects in over TLS from a peer's address (a
//! carrier's edge calling in on a trunk): the peer must show a client certificate that chains
//! to that peer's CA bundle and carries its `tls_name`, as when the appliance connects to it.
//! The address alone proves nothing (a host on the carrier's network, a hijacked address);
//! the certificate is the carrier. rustls's webpki verifier checks the chain; it checks no
//! name for client certificates, so the name is checked here with the server-name rules.
use crate::peer::roots;
use crate::{provider, LiveCert, TlsError};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::client::verify_server_name;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// One peer that may connect in: its CA bundle (None: the Mozilla roots) and its name.
#[derive(Debug, Clone)]
pub struct CallerTrust<'a> {
    pub ca: Option<&'a Path>,
    pub name: ServerName<'static>,
}

/// A server configuration presenting the appliance certificate that requires a client
/// certificate from one of `callers` (the peers configured at one address); empty: an error.
pub fn caller_server_config(live: &Arc<LiveCert>, callers: &[CallerTrust<'_>]) -> Result<Arc<ServerConfig>, TlsError> {
    let mut checks = Vec::new();
    let mut hints = Vec::new();
    for caller in callers {
        let chain = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(caller.ca)?), provider())
            .build()
            .map_err(|e| TlsError::Rustls(rustls::Error::General(format!("client certificate check: {e}"))))?;
        hints.extend_from_slice(chain.root_hint_subjects());
        checks.push((chain, caller.name.clone()));
    }
    if checks.is_empty() {
        return Err(TlsError::Rustls(rustls::Error::General("no caller to check client certificates for".into())));
    }
    live.server_config_verifying(Arc::new(Callers { checks, hints }))
}

#[derive(Debug)]
struct Callers {
    checks: Vec<(Arc<dyn ClientCertVerifier>, ServerName<'static>)>,
    hints: Vec<DistinguishedName>,
}

impl Callers {
    fn first(&self) -> &Arc<dyn ClientCertVerifier> {
        &self.checks[0].0
    }
}

impl ClientCertVerifier for Callers {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    /// Believed when one caller's CA and name both hold; else the first caller's refusal.
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let mut refusal = None;
        for (chain, name) in &self.checks {
            let checked = chain
                .verify_client_cert(end_entity, intermediates, now)
                .and_then(|_| verify_server_name(&ParsedCertificate::try_from(end_entity)?, name));
            match checked {
                Ok(()) => return Ok(ClientCertVerified::assertion()),
                Err(e) => {
                    refusal.get_or_insert(e);
                }
            }
        }
        Err(refusal.unwrap_or(rustls::Error::NoCertificatesPresented))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.first().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.first().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.first().supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{peer_client_config, ApplianceCert, PeerTrust};
    use rustls::{ClientConnection, ServerConnection};
    use std::path::PathBuf;

    struct Ca {
        cert: rcgen::Certificate,
        key: rcgen::KeyPair,
        dir: PathBuf,
    }

    impl Ca {
        fn new(dir: &Path, name: &str) -> Ca {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params.distinguished_name.push(rcgen::DnType::CommonName, name);
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = params.self_signed(&key).unwrap();
            let dir = dir.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
            Ca { cert, key, dir }
        }

        fn bundle(&self) -> PathBuf {
            self.dir.join("ca.pem")
        }

        /// A client showing a certificate from this CA for `name` (installed as a LiveCert).
        fn client(&self, name: &str) -> Arc<rustls::ClientConfig> {
            let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
            params.distinguished_name.push(rcgen::DnType::CommonName, name);
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
            let (cert_file, key_file, dir) = (self.dir.join(format!("{name}.pem")), self.dir.join(format!("{name}.key")), self.dir.join(name));
            std::fs::write(&cert_file, cert.pem()).unwrap();
            std::fs::write(&key_file, key.serialize_pem()).unwrap();
            let live = LiveCert::watch(&ApplianceCert::install(&dir, &cert_file, &key_file, None).unwrap()).unwrap();
            peer_client_config(&PeerTrust { ca: None, verify: false, client_cert: Some(live) }).unwrap()
        }
    }

    /// A handshake in memory; the server's refusal, if it refused.
    fn handshake(client: Arc<rustls::ClientConfig>, server: Arc<ServerConfig>) -> Result<(), rustls::Error> {
        let mut c = ClientConnection::new(client, ServerName::try_from("sba.branch.example").unwrap()).unwrap();
        let mut s = ServerConnection::new(server).unwrap();
        for _ in 0..10 {
            let mut wire = Vec::new();
            c.write_tls(&mut wire).unwrap();
            s.read_tls(&mut wire.as_slice()).unwrap();
            s.process_new_packets()?;
            let mut wire = Vec::new();
            s.write_tls(&mut wire).unwrap();
            c.read_tls(&mut wire.as_slice()).unwrap();
            let _ = c.process_new_packets();
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(());
            }
        }
        Err(rustls::Error::General("handshake stuck".into()))
    }

    #[test]
    fn a_caller_must_show_a_certificate_from_its_ca_for_its_name() {
        let dir = std::env::temp_dir().join(format!("holdfast-tls-callers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let ours = LiveCert::watch(&ApplianceCert::load_or_generate(&dir.join("ours"), &["sba.branch.example".into()]).unwrap()).unwrap();
        let (carriers, attacker) = (Ca::new(&dir, "carriers"), Ca::new(&dir, "attacker"));
        let name = ServerName::try_from("sip.carrier.example").unwrap();
        let server = caller_server_config(&ours, &[CallerTrust { ca: Some(&carriers.bundle()), name }]).unwrap();

        handshake(carriers.client("sip.carrier.example"), server.clone()).expect("the carrier's own certificate");
        let other_name = handshake(carriers.client("other.example"), server.clone()).unwrap_err();
        assert!(other_name.to_string().contains("not valid for name"), "{other_name}");
        let other_ca = handshake(attacker.client("sip.carrier.example"), server.clone()).unwrap_err();
        assert!(other_ca.to_string().contains("UnknownIssuer"), "{other_ca}");
        let none = peer_client_config(&PeerTrust { ca: None, verify: false, client_cert: None }).unwrap();
        assert!(handshake(none, server).is_err(), "no certificate at all");
        assert!(caller_server_config(&ours, &[]).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
