//! Binding the sockets, and the handle through which the rest of Holdfast sends.
use super::connections::Connection;
use super::route::{response_route, Destination};
use super::shared::Shared;
use super::tls::{self, TlsSetup, TlsState};
use super::{tcp, udp, ConnId, Incoming, Protocol, TcpLimits, TcpStats, TransportError};
use crate::message::{Message, Request, Response};
use crate::transaction::Transmit;
use bytes::Bytes;
use log::debug;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Received messages queue here while the TU is busy; beyond it the kernel's socket buffer
/// takes over.
const INCOMING_QUEUE: usize = 4096;
/// With port 0 the UDP port is chosen first; TCP may find it taken and then both try again.
const BIND_ATTEMPTS: usize = 16;

/// Binds UDP and TCP on one address, and TLS when asked.
pub struct Transport;

impl Transport {
    /// Binds `addr` (port 0 picks one port for both) and starts the receiving tasks, which run
    /// until the returned receiver is dropped.
    pub async fn bind(addr: SocketAddr) -> Result<(TransportHandle, mpsc::Receiver<Incoming>), TransportError> {
        Self::bind_with_tls(addr, None).await
    }

    /// As `bind`, and with `tls`: its listener (if any) and connections out over TLS.
    pub async fn bind_with_tls(
        addr: SocketAddr,
        tls: Option<TlsSetup>,
    ) -> Result<(TransportHandle, mpsc::Receiver<Incoming>), TransportError> {
        Self::bind_with(addr, tls, TcpLimits::default()).await
    }

    /// As `bind_with_tls`, with stream connections held to `limits`.
    pub async fn bind_with(
        addr: SocketAddr,
        tls: Option<TlsSetup>,
        limits: TcpLimits,
    ) -> Result<(TransportHandle, mpsc::Receiver<Incoming>), TransportError> {
        let (udp, listener) = bind_both(addr).await?;
        let local = udp.local_addr()?;
        let tls_listener = match tls.as_ref().and_then(|t| t.listen) {
            Some(at) => Some(TcpListener::bind(at).await?),
            None => None,
        };
        let tls_local = tls_listener.as_ref().map(TcpListener::local_addr).transpose()?;
        let state = tls.as_ref().map(|t| Arc::new(TlsState::new(t, tls_local)));
        let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
        let shared = Arc::new(Shared::new(local, udp, tx, limits));
        tokio::spawn(udp::serve(shared.clone()));
        tokio::spawn(tcp::accept(shared.clone(), listener));
        if let (Some(listener), Some(setup), Some(state)) = (tls_listener, tls, state.clone()) {
            tokio::spawn(tls::accept(shared.clone(), listener, setup.server, state));
        }
        Ok((TransportHandle { shared, tls: state }, rx))
    }
}

async fn bind_both(addr: SocketAddr) -> io::Result<(tokio::net::UdpSocket, TcpListener)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let udp = udp::bind(addr)?;
        let tcp_addr = SocketAddr::new(addr.ip(), udp.local_addr()?.port());
        match TcpListener::bind(tcp_addr).await {
            Ok(listener) => return Ok((udp, listener)),
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse && attempt < BIND_ATTEMPTS => {}
            Err(e) => return Err(e),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TransportHandle {
    shared: Arc<Shared>,
    tls: Option<Arc<TlsState>>,
}

impl TransportHandle {
    /// The bound address (UDP and TCP share it).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// The TLS listener's address, when there is one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|t| t.local)
    }

    /// Our listening address for `transport`: what a Via, Path or Record-Route names so that
    /// the next hop reaches us over the same transport.
    pub fn listening(&self, transport: Protocol) -> SocketAddr {
        match transport {
            Protocol::Tls => self.tls_addr().unwrap_or(self.shared.local),
            Protocol::Udp | Protocol::Tcp => self.shared.local,
        }
    }

    /// Whether connection `conn` (a flow a request came in on) is still open.
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.shared.connections().get(conn).is_some()
    }

    /// Sends a response where its top Via says (RFC 3261 §18.2.2): over TCP on the connection
    /// the request came in on while it is open, else over a new one to the received address and
    /// sent-by port; over UDP to maddr, else received and rport (or sent-by port).
    pub async fn send_response(&self, response: &Response) -> Result<(), TransportError> {
        let via = response.top_via_raw()?;
        let route = response_route(&via).ok_or_else(|| TransportError::Unsupported(via.transport.to_string()))?;
        let bytes = Bytes::from(response.to_bytes()?);
        match route.transport {
            Protocol::Udp => {
                let dest = resolve(&route.dest).await?;
                self.shared.udp.send_to(&bytes, self.shared.udp_dest(dest)).await?;
            }
            Protocol::Tcp | Protocol::Tls => {
                if let Destination::Addr(addr) = route.dest {
                    let open = self.shared.connections().find(route.transport, addr);
                    if let Some(connection) = open {
                        match connection.send(bytes.clone()) {
                            Ok(()) => return Ok(()),
                            Err(e) => {
                                debug!("{} connection to {addr} failed ({e}); reconnecting", route.transport);
                                self.shared.connections().remove(connection.id);
                            }
                        }
                    }
                }
                let dest = resolve(route.reconnect.as_ref().unwrap_or(&route.dest)).await?;
                self.connection_to(dest, route.transport).await?.send(bytes)?;
            }
        }
        Ok(())
    }

    /// Stream connections open, refused over the limits, closed for idling.
    pub fn tcp_stats(&self) -> TcpStats {
        use std::sync::atomic::Ordering::Relaxed;
        TcpStats {
            open: self.shared.connections().len(),
            refused: self.shared.counters.refused.load(Relaxed),
            idle_closed: self.shared.counters.idle_closed.load(Relaxed),
        }
    }

    /// Whether a `transport` connection with `peer` is open (a flow a phone registered over is
    /// alive).
    pub fn has_connection(&self, peer: SocketAddr, transport: Protocol) -> bool {
        self.shared.connections().find(transport, peer).is_some()
    }

    /// Drops the `transport` connection to `peer`, if one is open or being made: the next
    /// message to `peer` opens a new one. For a connection that went silent (a WAN cut leaves
    /// it open, its unacknowledged data backing off in the kernel for minutes).
    pub fn drop_connection(&self, peer: SocketAddr, transport: Protocol) {
        let mut connections = self.shared.connections();
        if let Some(connection) = connections.find(transport, peer) {
            connections.remove(connection.id);
            connection.drop_now();
        }
    }

    /// Sends a message to `dest`, over TCP on an open connection to it or a new one.
    pub async fn send_to(&self, msg: &Message, dest: SocketAddr, transport: Protocol) -> Result<(), TransportError> {
        self.send_bytes(msg.to_bytes()?, dest, transport).await
    }

    /// Sends a request outside any transaction (an ACK for a 2xx, a probe) to `dest`.
    pub async fn send_request(&self, request: &Request, dest: SocketAddr, transport: Protocol) -> Result<(), TransportError> {
        self.send_bytes(request.to_bytes()?, dest, transport).await
    }

    /// Sends what the transaction layer produced (`Transactions::poll_transmit`); on an error
    /// the caller reports `Transactions::on_transport_error(transmit.id())`.
    pub async fn transmit(&self, transmit: &Transmit) -> Result<(), TransportError> {
        match transmit {
            Transmit::Request { request, dest, transport, .. } => {
                self.send_bytes(request.to_bytes()?, *dest, *transport).await
            }
            Transmit::Response { response, .. } => self.send_response(response.as_ref()).await,
        }
    }

    async fn send_bytes(&self, bytes: Vec<u8>, dest: SocketAddr, transport: Protocol) -> Result<(), TransportError> {
        match transport {
            Protocol::Udp => {
                self.shared.udp.send_to(&bytes, self.shared.udp_dest(dest)).await?;
            }
            Protocol::Tcp | Protocol::Tls => self.connection_to(dest, transport).await?.send(bytes.into())?,
        }
        Ok(())
    }

    /// An open connection to `dest`, or a new one: TCP is connected before this returns (a
    /// refused connect is reported at once); TLS is made beside (see `tls`).
    async fn connection_to(&self, dest: SocketAddr, transport: Protocol) -> Result<Arc<Connection>, TransportError> {
        let open = self.shared.connections().find(transport, dest);
        match (open, transport) {
            (Some(connection), _) => Ok(connection),
            (None, Protocol::Tls) => match &self.tls {
                Some(tls) => Ok(tls::connect(&self.shared, tls, dest)),
                None => Err(TransportError::Unsupported("TLS (not configured)".to_string())),
            },
            (None, _) => Ok(tcp::connect(&self.shared, dest).await?),
        }
    }
}

async fn resolve(dest: &Destination) -> Result<SocketAddr, TransportError> {
    match dest {
        Destination::Addr(addr) => Ok(*addr),
        Destination::Name(host, port) => tokio::net::lookup_host((host.as_str(), *port))
            .await?
            .next()
            .ok_or_else(|| TransportError::Unresolvable(host.clone())),
    }
}
