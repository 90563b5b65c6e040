//! Open stream connections (TCP and TLS), found by id (the connection a request came in on) or
//! by transport and address (the peer, or the address a response to that peer is routed to).
//!
//! Each connection has a bounded queue of messages to send and one task that writes them, so a
//! sender never waits on a peer: a peer that stops reading fills its queue and sending to it
//! fails at once, rather than holding up the loop that sends.
use super::{ConnId, Protocol, TcpLimits};
use bytes::Bytes;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Messages waiting for one connection's writer; a peer this far behind is not reading.
const SEND_QUEUE: usize = 512;

#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) id: ConnId,
    pub(crate) peer: SocketAddr,
    pub(crate) protocol: Protocol,
    queue: mpsc::Sender<Bytes>,
    /// Told when the connection is to be dropped without waiting for the peer (`close`).
    dropped: tokio::sync::Notify,
}

impl Connection {
    /// Queues one whole message; the connection's writer sends messages in order, never
    /// interleaved.
    pub(crate) fn send(&self, bytes: Bytes) -> io::Result<()> {
        self.queue.try_send(bytes).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                io::Error::new(io::ErrorKind::WouldBlock, format!("{} connection to {} is not draining", self.protocol, self.peer))
            }
            mpsc::error::TrySendError::Closed(_) => {
                io::Error::new(io::ErrorKind::BrokenPipe, format!("{} connection to {} is closed", self.protocol, self.peer))
            }
        })
    }

    /// Asks the connection's task to drop it, in whatever state it is (connecting, in the
    /// handshake, open).
    pub(crate) fn drop_now(&self) {
        self.dropped.notify_one();
    }

    /// Ready once `drop_now` was called.
    pub(crate) async fn drop_requested(&self) {
        self.dropped.notified().await
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
    by_addr: HashMap<(Protocol, SocketAddr), ConnId>,
    /// Open connections by the peer's IP address.
    by_ip: HashMap<IpAddr, usize>,
}

impl Connections {
    /// Whether one more connection from `peer` stays within `limits`.
    pub(crate) fn admits(&self, peer: SocketAddr, limits: &TcpLimits) -> bool {
        self.by_id.len() < limits.max_connections
            && self.by_ip.get(&canonical(peer).ip()).copied().unwrap_or(0) < limits.max_per_ip
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// A new connection with `peer` (canonical, see `canonical`), and the receiving end
    /// of its send queue for its writer.
    pub(crate) fn insert(&mut self, peer: SocketAddr, protocol: Protocol) -> (Arc<Connection>, mpsc::Receiver<Bytes>) {
        let id = ConnId(self.next_id);
        self.next_id += 1;
        let (queue, outgoing) = mpsc::channel(SEND_QUEUE);
        let connection = Arc::new(Connection { id, peer, protocol, queue, dropped: tokio::sync::Notify::new() });
        self.by_id.insert(id, Entry { connection: connection.clone(), aliases: Vec::new() });
        self.by_addr.insert((protocol, peer), id);
        *self.by_ip.entry(peer.ip()).or_default() += 1;
        (connection, outgoing)
    }

    pub(crate) fn find(&self, protocol: Protocol, addr: SocketAddr) -> Option<Arc<Connection>> {
        let id = self.by_addr.get(&(protocol, canonical(addr)))?;
        self.by_id.get(id).map(|e| e.connection.clone())
    }

    pub(crate) fn get(&self, id: ConnId) -> Option<Arc<Connection>> {
        self.by_id.get(&id).map(|e| e.connection.clone())
    }

    /// Routes `addr` to connection `id` as well (a response routed to received IP and sent-by
    /// port must find the connection whose peer port differs; RFC 5923 aliases).
    pub(crate) fn alias(&mut self, addr: SocketAddr, id: ConnId) {
        let Some(entry) = self.by_id.get_mut(&id) else { return };
        let addr = canonical(addr);
        if self.by_addr.insert((entry.connection.protocol, addr), id) != Some(id) {
            entry.aliases.push(addr);
        }
    }

    pub(crate) fn remove(&mut self, id: ConnId) {
        let Some(entry) = self.by_id.remove(&id) else { return };
        let ip = entry.connection.peer.ip();
        if let Some(n) = self.by_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.by_ip.remove(&ip);
            }
        }
        let protocol = entry.connection.protocol;
        for addr in entry.aliases.iter().chain([&entry.connection.peer]) {
            if self.by_addr.get(&(protocol, *addr)) == Some(&id) {
                self.by_addr.remove(&(protocol, *addr));
            }
        }
    }
}

/// Peers of a dual-stack socket show up as ::ffff:a.b.c.d; everything above the sockets sees
/// them, and keys them, as plain IPv4.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}
