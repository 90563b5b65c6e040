//! sba-mediation's TLS: its listener (trunks and PBXs that connect in) with the appliance
//! certificate, kept live for `sbactl tls install`, and the trust each TLS trunk is checked by.
use crate::config::Config;
use holdfast_sip::transport::{TlsPeer, TlsSetup};
use holdfast_tls::{peer_client_config, ApplianceCert, LiveCert, PeerTrust, TlsError};

/// None when neither a listener nor a trunk uses TLS.
pub fn setup(config: &Config) -> Result<Option<TlsSetup>, TlsError> {
    if config.tls_listen.is_none() && config.tls_trunks.is_empty() {
        return Ok(None);
    }
    let names = vec![config.advertise.to_string(), "localhost".to_string()];
    let cert = ApplianceCert::load_or_generate(&config.tls_dir, &names)?;
    log::info!("TLS with {} (SHA-256 {})", cert.cert_path().display(), cert.fingerprint_sha256());
    let live = LiveCert::watch(&cert)?;
    let mut peers = Vec::new();
    for t in &config.tls_trunks {
        if !t.verify {
            log::warn!("trunk {} ({}): its TLS certificate is NOT verified (tls_verify = false)", t.trunk, t.address);
        }
        // The appliance certificate is shown to a trunk that asks for one (mutual TLS).
        let trust = PeerTrust { ca: t.ca.as_deref(), verify: t.verify, client_cert: Some(live.clone()) };
        peers.push(TlsPeer {
            addr: t.address,
            label: format!("trunk {}", t.trunk),
            name: t.name.clone(),
            client: peer_client_config(&trust)?,
        });
    }
    Ok(Some(TlsSetup {
        listen: config.tls_listen,
        server: live.server_config(&[])?,
        client: peer_client_config(&PeerTrust::verified(None))?,
        peers,
    }))
}
