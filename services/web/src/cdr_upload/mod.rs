//! Call records home. sba-mediation stores every record in SQLite; this task posts them to the
//! central site (`[cdr] upload`) in JSON batches, in the order they were stored, and writes
//! down (fsynced) the last record the central site accepted. While the WAN is down (the
//! registrar's status says so) nothing is tried and records simply queue in the store; a
//! failed post is retried with backoff. After a restart or kill -9 it carries on from the
//! position on disk, so no record is skipped. Each record and each batch carry ids that name
//! them for good (`<site>:<row id>`): a batch posted again after a crash between the central
//! site's 200 and our fsync is recognised there and not stored twice.
mod backoff;
pub mod client;
mod position;

use client::Endpoint;

use crate::config::CdrUpload;
use backoff::Backoff;
use holdfast_status::snapshot::RegistrarStatus;
use holdfast_store::{Store, StoredCdr};
use position::Position;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Looking for new records when everything is sent, and for the WAN while it is down.
const IDLE_POLL: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Counters {
    pending: AtomicU64,
    uploaded: AtomicU64,
    failures: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadCounters {
    pub pending: u64,
    pub uploaded: u64,
    pub failures: u64,
}

impl Counters {
    pub fn snapshot(&self) -> UploadCounters {
        UploadCounters {
            pending: self.pending.load(Ordering::Relaxed),
            uploaded: self.uploaded.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{0}")]
    Endpoint(#[from] client::EndpointError),
    #[error(transparent)]
    Tls(#[from] holdfast_tls::TlsError),
    #[error(transparent)]
    Position(#[from] position::PositionError),
}

/// Starts the upload task; its counters are for /metrics.
pub fn start(config: CdrUpload, db: PathBuf, store: Store) -> Result<Arc<Counters>, UploadError> {
    let endpoint = Endpoint::parse(&config.upload)?;
    let tls = holdfast_tls::client_config(config.ca.as_deref())?;
    let position = Position::open(holdfast_status::beside(&db, ".cdr-upload.json"))?;
    let site = config.site.clone().unwrap_or_else(|| std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default());
    let counters = Arc::new(Counters::default());
    let uploader = Uploader { endpoint, tls, position, site, batch: config.batch, store, db, counters: counters.clone() };
    log::info!("call records go to {} (from record {} on)", config.upload, uploader.position.last() + 1);
    tokio::spawn(uploader.run());
    Ok(counters)
}

struct Uploader {
    endpoint: Endpoint,
    tls: Arc<rustls::ClientConfig>,
    position: Position,
    site: String,
    batch: u32,
    store: Store,
    db: PathBuf,
    counters: Arc<Counters>,
}

impl Uploader {
    async fn run(mut self) {
        let mut backoff = Backoff::new();
        loop {
            let pending = self.store.count_cdrs_after(self.position.last()).await.unwrap_or(0);
            self.counters.pending.store(pending, Ordering::Relaxed);
            if pending == 0 || self.wan_down() {
                tokio::time::sleep(IDLE_POLL).await;
                continue;
            }
            let records = match self.store.cdrs_after(self.position.last(), self.batch).await {
                Ok(r) => r,
                Err(e) => {
                    log::warn!("reading call records to upload: {e}");
                    tokio::time::sleep(IDLE_POLL).await;
                    continue;
                }
            };
            let Some(last) = records.last().map(|r| r.id) else { continue };
            let (key, body) = self.batch_body(&records);
            match client::post_json(&self.endpoint, &self.tls, &key, body).await {
                Ok(()) => {
                    if let Err(e) = self.position.advance(last) {
                        log::error!("call record upload position not saved ({e}); the batch will be posted again");
                    }
                    self.counters.uploaded.fetch_add(records.len() as u64, Ordering::Relaxed);
                    backoff.reset();
                    log::info!("{} call records uploaded (up to {key})", records.len());
                }
                Err(e) => {
                    self.counters.failures.fetch_add(1, Ordering::Relaxed);
                    let wait = backoff.next(rand::random::<f64>());
                    log::warn!("call record upload failed: {e}; retrying in {} ms", wait.as_millis());
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// The registrar says the central site is unreachable: posting now would only time out.
    fn wan_down(&self) -> bool {
        holdfast_status::read::<RegistrarStatus>(&holdfast_status::path_of::<RegistrarStatus>(&self.db)).is_some_and(|s| s.wan == "down")
    }

    /// The batch's idempotency key and its JSON.
    fn batch_body(&self, records: &[StoredCdr]) -> (String, Vec<u8>) {
        let first = records.first().map_or(0, |r| r.id);
        let last = records.last().map_or(0, |r| r.id);
        let key = format!("{}:{first}-{last}", self.site);
        let records: Vec<serde_json::Value> = records
            .iter()
            .map(|StoredCdr { id, cdr: c }| {
                json!({
                    "id": format!("{}:{id}", self.site),
                    "seq": id,
                    "call_id": c.call_id,
                    "direction": c.direction,
                    "setup_at": c.setup_at,
                    "answered_at": c.answered_at,
                    "ended_at": c.ended_at,
                    "caller": c.caller,
                    "callee_dialled": c.callee_dialled,
                    "callee": c.callee,
                    "callee_sent": c.callee_sent,
                    "caller_sent": c.caller_sent,
                    "route": c.route,
                    "trunk": c.trunk,
                    "failovers": c.failovers,
                    "status": c.status,
                    "q850": c.q850,
                    "end_cause": c.end_cause,
                    "referred_by": c.referred_by,
                    "transfer_of": c.transfer_of,
                })
            })
            .collect();
        let body = json!({ "site": self.site, "batch": key, "records": records });
        (key, serde_json::to_vec(&body).unwrap_or_default())
    }
}
