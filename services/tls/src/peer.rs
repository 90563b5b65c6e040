//! Whom the appliance trusts when it connects to a SIP peer (a central proxy, a trunk): the
//! peer's certificate must chain to a CA bundle (the operator's file, else the Mozilla roots)
//! and carry the peer's `tls_name`, checked by rustls at the handshake. An operator may switch
//! the check off for one peer (`tls_verify = false`, for a carrier with a broken chain); the
//! services log that at start, and this verifier still checks the handshake's signatures, so
//! the connection is encrypted to whoever holds the presented key, only not authenticated.
use crate::{provider, read_certs, LiveCert, TlsError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// How one peer is trusted.
#[derive(Debug, Clone)]
pub struct PeerTrust<'a> {
    /// A PEM bundle of the CAs the peer's certificate must chain to; None: the Mozilla roots.
    pub ca: Option<&'a Path>,
    /// False: the certificate is not checked at all (an explicit, logged opt-out).
    pub verify: bool,
    /// Shown to the peer when it asks for a client certificate (mutual TLS).
    pub client_cert: Option<Arc<LiveCert>>,
}

impl<'a> PeerTrust<'a> {
    /// Checked against `ca` (None: the Mozilla roots), without a client certificate.
    pub fn verified(ca: Option<&'a Path>) -> PeerTrust<'a> {
        PeerTrust { ca, verify: true, client_cert: None }
    }
}

/// The client configuration for a peer trusted as `trust` says.
pub fn peer_client_config(trust: &PeerTrust<'_>) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = if trust.verify {
        builder.with_root_certificates(roots(trust.ca)?)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(Unverified(provider())))
    };
    let config = match &trust.client_cert {
        Some(cert) => builder.with_client_cert_resolver(cert.clone()),
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The certificates in `ca`, or the Mozilla roots.
pub(crate) fn roots(ca: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let Some(path) = ca else {
        return Ok(RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() });
    };
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert)?;
    }
    Ok(roots)
}

/// Accepts any certificate; checks that the peer holds its key.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
