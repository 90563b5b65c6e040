//! State the socket tasks and the handles share, and the hand-over of received messages.
use super::connections::Connections;
use super::route::{response_route, Destination};
use super::stamp::stamp_via;
use super::{Incoming, Source};
use crate::message::Message;
use log::debug;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) local: SocketAddr,
    pub(crate) udp: UdpSocket,
    connections: Mutex<Connections>,
    pub(crate) incoming: mpsc::Sender<Incoming>,
}

impl Shared {
    pub(crate) fn new(local: SocketAddr, udp: UdpSocket, incoming: mpsc::Sender<Incoming>) -> Self {
        Shared { local, udp, connections: Mutex::new(Connections::default()), incoming }
    }

    /// A destination in the family of our socket: an IPv6 socket reaches IPv4 peers through
    /// IPv4-mapped addresses.
    pub(crate) fn udp_dest(&self, dest: SocketAddr) -> SocketAddr {
        match (self.local.ip(), dest.ip()) {
            (IpAddr::V6(_), IpAddr::V4(v4)) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), dest.port()),
            _ => dest,
        }
    }

    /// Never held across an await.
    pub(crate) fn connections(&self) -> MutexGuard<'_, Connections> {
        self.connections.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stamps a request's Via and passes the message on. False once nobody receives any more.
    pub(crate) async fn deliver(&self, mut msg: Message, source: Source) -> bool {
        if let Message::Request(request) = &mut msg {
            if let Err(e) = stamp_via(request, source.addr) {
                debug!("dropping a request from {} without a usable Via: {e}", source.addr);
                return true;
            }
            if let Some(conn) = source.conn {
                let route = request.top_via_raw().ok().and_then(|via| response_route(&via));
                if let Some(Destination::Addr(addr)) = route.map(|r| r.dest) {
                    if addr != source.addr {
                        self.connections().alias(addr, conn);
                    }
                }
            }
        }
        self.incoming.send(Incoming { msg, source }).await.is_ok()
    }
}

/// Peers of a dual-stack socket show up as ::ffff:a.b.c.d; everything above the sockets sees
/// them, and keys them, as plain IPv4.
pub(crate) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}
