//! What the pages and the metrics show, read fresh for each request: the three services'
//! status snapshots and, from SQLite through read-only connections, the registrations and
//! call records. Nothing here can hold up a service.
use crate::config::Config;
use holdfast_status::snapshot::{GatewayStatus, MediationStatus, RegistrarStatus};
use holdfast_store::{Binding, Store};
use std::collections::BTreeMap;

/// A snapshot older than this means its service has stopped writing (it writes every 1-5 s).
pub const STALE_MS: u64 = 15_000;

pub struct Snapshots {
    pub registrar: Option<RegistrarStatus>,
    pub mediation: Option<MediationStatus>,
    pub gateway: Option<GatewayStatus>,
}

impl Snapshots {
    pub fn read(config: &Config) -> Snapshots {
        Snapshots {
            registrar: holdfast_status::read(&holdfast_status::path_of::<RegistrarStatus>(&config.db)),
            mediation: holdfast_status::read(&holdfast_status::path_of::<MediationStatus>(&config.db)),
            gateway: holdfast_status::read(&config.gateway_status),
        }
    }

    /// Each service with a snapshot and the requests it refused, by reason.
    pub fn refused(&self) -> Vec<(&'static str, &BTreeMap<String, u64>)> {
        [
            ("sba-registrar", self.registrar.as_ref().map(|r| &r.refused)),
            ("sba-mediation", self.mediation.as_ref().map(|m| &m.refused)),
            ("sba-gateway", self.gateway.as_ref().map(|g| &g.refused)),
        ]
        .into_iter()
        .filter_map(|(service, counts)| Some((service, counts?)))
        .collect()
    }
}

/// Whether a snapshot written at `written_at_ms` is current.
pub fn fresh(written_at_ms: u64) -> bool {
    holdfast_runtime::unix_ms().saturating_sub(written_at_ms) < STALE_MS
}

/// Bindings that have not expired, by AOR.
pub async fn registrations(store: &Store) -> Result<Vec<Binding>, holdfast_store::StoreError> {
    let mut bindings = store.list_bindings().await?;
    let now = holdfast_runtime::unix_secs();
    bindings.retain(|b| b.expires_at > now);
    bindings.sort_by(|a, b| a.aor.cmp(&b.aor).then(a.contact.cmp(&b.contact)));
    Ok(bindings)
}

/// How many phones are registered now (for /metrics: counted by the store, no rows read).
pub async fn registration_count(store: &Store) -> Result<u64, holdfast_store::StoreError> {
    store.count_bindings(holdfast_runtime::unix_secs()).await
}
