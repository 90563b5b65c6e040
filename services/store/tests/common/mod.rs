//! Helpers shared by the store tests.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use holdfast_store::{Binding, Origin};

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "holdfast-store-{name}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn binding(user: &str, contact_port: u16, expires_at: i64) -> Binding {
    Binding {
        aor: format!("sip:{user}@branch.example.org"),
        contact: format!("sip:{user}@192.0.2.10:{contact_port};transport=udp"),
        instance: Some("<urn:uuid:00000000-0000-1000-8000-000a95a0e128>".to_owned()),
        reg_id: Some(1),
        call_id: format!("{user}-{contact_port}@192.0.2.10"),
        cseq: 1,
        q: Some(0.5),
        expires_at,
        path: vec![
            "<sip:edge1.example.org;lr>".to_owned(),
            "<sip:edge2.example.org;lr>".to_owned(),
        ],
        source: format!("192.0.2.10:{contact_port}"),
        transport: "udp".to_owned(),
        user_agent: Some("holdfast-test/1".to_owned()),
        updated_at: expires_at - 3600,
        origin: Origin::Local,
    }
}
