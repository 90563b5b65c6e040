//! State the socket tasks and the handles share, and the hand-over of received messages.
use super::connections::{canonical, Connections};
use super::route::{response_route, Destination};
use super::stamp::stamp_via;
use super::{Incoming, Source, TcpLimits};
use crate::message::Message;
use log::debug;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) local: SocketAddr,
    pub(crate) udp: UdpSocket,
    connections: Mutex<Connections>,
    pub(crate) incoming: mpsc::Sender<Incoming>,
    pub(crate) limits: TcpLimits,
    pub(crate) counters: StreamCounters,
}

/// Counted by the stream tasks as they refuse or close connections.
#[derive(Debug, Default)]
pub(crate) struct StreamCounters {
    pub(crate) refused: AtomicU64,
    pub(crate) idle_closed: AtomicU64,
}

impl Shared {
    pub(crate) fn new(
        local: SocketAddr,
        udp: UdpSocket,
        incoming: mpsc::Sender<Incoming>,
        limits: TcpLimits,
    ) -> Self {
        Shared {
            local,
            udp,
            connections: Mutex::new(Connections::default()),
            incoming,
            limits,
            counters: StreamCounters::default(),
        }
    }

    /// Whether an accepted connection from `peer` stays within the limits; counted if not (the
    /// caller drops the stream, which closes it).
    pub(crate) fn admits(&self, peer: SocketAddr) -> bool {
        let admitted = self.connections().admits(peer, &self.limits);
        if !admitted {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            debug!("connection from {peer} refused: over the connection limits");
        }
        admitted
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
                self.alias_flow(request, source.addr, conn);
            }
        }
        self.incoming.send(Incoming { msg, source }).await.is_ok()
    }
}

impl Shared {
    /// Lets a response routed by the request's Via find the connection it came on, and (RFC
    /// 5923) lets requests to the sent-by address of a Via with `alias` reuse it. An alias names
    /// only the connection's own IP: a peer cannot draw traffic for other hosts onto its flow.
    fn alias_flow(&self, request: &crate::message::Request, peer: SocketAddr, conn: super::ConnId) {
        let Ok(via) = request.top_via_raw() else { return };
        if let Some(Destination::Addr(addr)) = response_route(&via).map(|r| r.dest) {
            if addr != peer {
                self.connections().alias(addr, conn);
            }
        }
        let [alias] = via.params(["alias"]);
        if alias.is_some() {
            if let Some(sent_by) = super::route::sent_by_addr(&via) {
                if canonical(sent_by).ip() == peer.ip() && canonical(sent_by) != peer {
                    self.connections().alias(sent_by, conn);
                }
            }
        }
    }
}
