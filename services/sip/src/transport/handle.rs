//! Binding the sockets, and the handle through which the rest of Holdfast sends.
use super::connections::Connection;
use super::route::{response_route, Destination};
use super::shared::Shared;
use super::{tcp, udp, Incoming, Protocol, TransportError};
use crate::message::{Message, Response};
use crate::transaction::Transmit;
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

/// Binds UDP and TCP on one address.
pub struct Transport;

impl Transport {
    /// Binds `addr` (port 0 picks one port for both) and starts the receiving tasks, which run
    /// until the returned receiver is dropped.
    pub async fn bind(addr: SocketAddr) -> Result<(TransportHandle, mpsc::Receiver<Incoming>), TransportError> {
        let (udp, listener) = bind_both(addr).await?;
        let local = udp.local_addr()?;
        let (tx, rx) = mpsc::channel(INCOMING_QUEUE);
        let shared = Arc::new(Shared::new(local, udp, tx));
        tokio::spawn(udp::serve(shared.clone()));
        tokio::spawn(tcp::accept(shared.clone(), listener));
        Ok((TransportHandle { shared }, rx))
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
}

impl TransportHandle {
    /// The bound address (UDP and TCP share it).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// Sends a response where its top Via says (RFC 3261 §18.2.2): over TCP on the connection
    /// the request came in on while it is open, else over a new one to the received address and
    /// sent-by port; over UDP to maddr, else received and rport (or sent-by port).
    pub async fn send_response(&self, response: &Response) -> Result<(), TransportError> {
        let via = response.top_via_raw()?;
        let route = response_route(&via).ok_or_else(|| TransportError::Unsupported(via.transport.to_string()))?;
        let bytes = response.to_bytes();
        match route.transport {
            Protocol::Udp => {
                let dest = resolve(&route.dest).await?;
                self.shared.udp.send_to(&bytes, self.shared.udp_dest(dest)).await?;
            }
            Protocol::Tcp => {
                if let Destination::Addr(addr) = route.dest {
                    let open = self.shared.connections().find(addr);
                    if let Some(connection) = open {
                        match connection.write(&bytes).await {
                            Ok(()) => return Ok(()),
                            Err(e) => {
                                debug!("TCP connection to {addr} failed ({e}); reconnecting");
                                self.shared.connections().remove(connection.id);
                            }
                        }
                    }
                }
                let dest = resolve(route.reconnect.as_ref().unwrap_or(&route.dest)).await?;
                self.connection_to(dest).await?.write(&bytes).await?;
            }
        }
        Ok(())
    }

    /// Whether a TCP connection with `peer` is open (a flow a phone registered over is alive).
    pub fn has_connection(&self, peer: SocketAddr) -> bool {
        self.shared.connections().find(peer).is_some()
    }

    /// Sends a message to `dest`, over TCP on an open connection to it or a new one.
    pub async fn send_to(&self, msg: &Message, dest: SocketAddr, transport: Protocol) -> Result<(), TransportError> {
        self.send_bytes(&msg.to_bytes(), dest, transport).await
    }

    /// Sends what the transaction layer produced (`Transactions::poll_transmit`); on an error
    /// the caller reports `Transactions::on_transport_error(transmit.id())`.
    pub async fn transmit(&self, transmit: &Transmit) -> Result<(), TransportError> {
        match transmit {
            Transmit::Request { request, dest, transport, .. } => {
                self.send_bytes(&request.to_bytes(), *dest, *transport).await
            }
            Transmit::Response { response, .. } => self.send_response(response.as_ref()).await,
        }
    }

    async fn send_bytes(&self, bytes: &[u8], dest: SocketAddr, transport: Protocol) -> Result<(), TransportError> {
        match transport {
            Protocol::Udp => {
                self.shared.udp.send_to(bytes, self.shared.udp_dest(dest)).await?;
            }
            Protocol::Tcp => self.connection_to(dest).await?.write(bytes).await?,
        }
        Ok(())
    }

    async fn connection_to(&self, dest: SocketAddr) -> io::Result<Arc<Connection>> {
        let open = self.shared.connections().find(dest);
        match open {
            Some(connection) => Ok(connection),
            None => tcp::connect(&self.shared, dest).await,
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
