//! Status snapshots: each service rewrites a small JSON file now and then (write to a temporary
//! name, then rename, so a reader sees the old file or the new one, never half of one), and
//! sba-web and `sbactl status` read them. Nothing here waits on a reader: a service never
//! blocks on the page or the metrics.
//!
//! `histogram` is the latency histogram the services fill (lock-free) and the snapshots carry;
//! `snapshot` holds the file formats, one struct per service, the one place they are defined.
#![forbid(unsafe_code)]
pub mod histogram;
pub mod snapshot;

use std::path::{Path, PathBuf};

pub use histogram::{Histogram, HistogramSnapshot};

/// Replaces `path` with `bytes` atomically. A failure is logged, not returned: a status file
/// that could not be written must not stop a service.
pub fn write_atomic(path: &Path, bytes: &[u8]) {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    if let Err(e) = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)) {
        log::warn!("status file {}: {e}", path.display());
    }
}

/// A service's snapshot and the name of its file beside the database.
pub trait Snapshot {
    /// Appended to the database's file name: `sba.db` -> `sba.db.status.json`.
    const SUFFIX: &'static str;
}

impl Snapshot for snapshot::RegistrarStatus {
    const SUFFIX: &'static str = ".status.json";
}

impl Snapshot for snapshot::MediationStatus {
    const SUFFIX: &'static str = ".mediation.json";
}

impl Snapshot for snapshot::GatewayStatus {
    const SUFFIX: &'static str = ".gateway.json";
}

/// Where the snapshot `T` of the services on database `db` is.
pub fn path_of<T: Snapshot>(db: &Path) -> PathBuf {
    beside(db, T::SUFFIX)
}

/// `<db>` with `suffix` appended to its file name: `sba.db` -> `sba.db.status.json`.
pub fn beside(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    db.with_file_name(name)
}

/// Reads and parses a snapshot; None when the file is missing or not (yet) valid.
pub fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}
