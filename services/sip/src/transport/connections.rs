//! Open TCP connections, found by id (the connection a request came in on) or by address (the
//! peer, or the address a response to that peer is routed to).
use super::shared::canonical;
use super::ConnId;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Mutex;

/// A peer that stops reading must not block our senders forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) id: ConnId,
    pub(crate) peer: SocketAddr,
    writer: Mutex<OwnedWriteHalf>,
}

impl Connection {
    /// Writes one whole message; writers queue on the lock so messages never interleave.
    pub(crate) async fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let mut writer = self.writer.lock().await;
        match tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(bytes)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "TCP write timed out")),
        }
    }
}

#[derive(Debug)]
struct Entry {
    connection: Arc<Connection>,
    aliases: Vec<SocketAddr>,
}

#[derive(Debug, Default)]
pub(crate) struct Connections {
    next_id: u64,
    by_id: HashMap<ConnId, Entry>,
    by_addr: HashMap<SocketAddr, ConnId>,
}

impl Connections {
    /// `peer` is canonical (see `shared::canonical`).
    pub(crate) fn insert(&mut self, peer: SocketAddr, writer: OwnedWriteHalf) -> Arc<Connection> {
        let id = ConnId(self.next_id);
        self.next_id += 1;
        let connection = Arc::new(Connection { id, peer, writer: Mutex::new(writer) });
        self.by_id.insert(id, Entry { connection: connection.clone(), aliases: Vec::new() });
        self.by_addr.insert(peer, id);
        connection
    }

    pub(crate) fn find(&self, addr: SocketAddr) -> Option<Arc<Connection>> {
        let id = self.by_addr.get(&canonical(addr))?;
        self.by_id.get(id).map(|e| e.connection.clone())
    }

    /// Routes `addr` to connection `id` as well (a response routed to received IP and sent-by
    /// port must find the connection whose peer port differs).
    pub(crate) fn alias(&mut self, addr: SocketAddr, id: ConnId) {
        let Some(entry) = self.by_id.get_mut(&id) else { return };
        let addr = canonical(addr);
        if self.by_addr.insert(addr, id) != Some(id) {
            entry.aliases.push(addr);
        }
    }

    pub(crate) fn remove(&mut self, id: ConnId) {
        let Some(entry) = self.by_id.remove(&id) else { return };
        for addr in entry.aliases.iter().chain([&entry.connection.peer]) {
            if self.by_addr.get(addr) == Some(&id) {
                self.by_addr.remove(addr);
            }
        }
    }
}
