//! sba-mediation's TLS: its listener (trunks and PBXs that connect in) with the appliance
//! certificate, kept live for `sbactl tls install`, and the trust each TLS trunk is checked by,
//! both ways: when we connect to it, and when it connects in from its address (its client
//! certificate, from its `tls_ca`, for its `tls_name`).
use crate::config::Config;
use holdfast_sip::transport::{server_name_text, TlsCaller, TlsPeer, TlsSetup};
use holdfast_tls::{caller_server_config, peer_client_config, ApplianceCert, CallerTrust, LiveCert, PeerTrust, TlsError};
use std::collections::BTreeMap;

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
        callers: callers(config, &live)?,
    }))
}

/// A TLS trunk's address connecting in must show that trunk's client certificate (any of the
/// trunks configured at that address). A trunk with `tls_verify = false` is believed by its
/// address, as when we connect to it.
fn callers(config: &Config, live: &std::sync::Arc<LiveCert>) -> Result<Vec<TlsCaller>, TlsError> {
    let mut by_ip: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for t in config.tls_trunks.iter().filter(|t| t.verify) {
        by_ip.entry(t.address.ip().to_canonical()).or_default().push(t);
    }
    by_ip
        .into_iter()
        .map(|(ip, trunks)| {
            let trust: Vec<_> = trunks.iter().map(|t| CallerTrust { ca: t.ca.as_deref(), name: t.name.clone() }).collect();
            Ok(TlsCaller {
                ip,
                label: format!("trunk {}", trunks.iter().map(|t| t.trunk.as_str()).collect::<Vec<_>>().join("/")),
                name: trunks.iter().map(|t| server_name_text(&t.name)).collect::<Vec<_>>().join(" or "),
                server: caller_server_config(live, &trust)?,
            })
        })
        .collect()
}
