//! SIP over TLS (RFC 3261 §26, RFC 5246/8446 through rustls): the listener (port 5061 by
//! default), outgoing connections to the peers the appliance knows (the central proxies,
//! trunks), each checked by the name its certificate must carry, and connections opened
//! without waiting: a handshake over the WAN takes round trips, and a dead WAN would hold the
//! sender for the whole connect timeout, so messages queue on the new connection while it is
//! being made and are dropped with it if it fails (the transactions then time out).
//! A peer that connects in from a configured caller's address (a carrier's edge) must show
//! that caller's client certificate: its handshake is made with the caller's own server
//! configuration, and a refusal is logged like one going out.
use super::connections::{canonical, Connection};
use super::shared::Shared;
use super::tcp::{self, ACCEPT_BACKOFF};
use super::{stream, Protocol};
use log::{debug, warn};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// A peer that connects and then says nothing must not hold a connection slot for long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The same refusal of the same peer is logged as a warning at most this often.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

/// A peer the appliance connects to over TLS, and what its certificate must show.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    pub addr: SocketAddr,
    /// Who it is in log lines: "central proxy", "trunk itsp".
    pub label: String,
    /// The name its certificate must carry (`tls_name`): a DNS name or an IP address.
    pub name: ServerName<'static>,
    /// The trust it is checked against (a CA bundle, or none at all when the operator opted
    /// out), and the client certificate shown to it, if any (mutual TLS).
    pub client: Arc<ClientConfig>,
}

/// A peer that connects in from `ip` (any port) and must prove itself by a client certificate.
#[derive(Debug, Clone)]
pub struct TlsCaller {
    pub ip: IpAddr,
    /// Who it is in log lines: "trunk itsp".
    pub label: String,
    /// The name its certificate must carry, for log lines (`server` checks it).
    pub name: String,
    /// The appliance certificate, and the client certificate this caller must show.
    pub server: Arc<ServerConfig>,
}

/// TLS for a transport: the server side and the trust for connections it makes.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    /// Where to accept TLS; None: connections out only.
    pub listen: Option<SocketAddr>,
    /// The appliance certificate (its resolver may swap it while running).
    pub server: Arc<ServerConfig>,
    /// For a destination that is no configured peer (a phone whose flow is gone, reached at
    /// its Contact): its certificate must carry its IP address and chain to `client`'s roots.
    pub client: Arc<ClientConfig>,
    pub peers: Vec<TlsPeer>,
    /// Peers connecting in from these addresses get their own server side (one per address).
    pub callers: Vec<TlsCaller>,
}

/// What the socket tasks keep of a `TlsSetup`.
#[derive(Debug)]
pub(crate) struct TlsState {
    pub(crate) local: Option<SocketAddr>,
    client: Arc<ClientConfig>,
    peers: HashMap<SocketAddr, TlsPeer>,
    callers: HashMap<IpAddr, TlsCaller>,
    /// The last refusal logged for each destination (a caller: its IP, port 0), and when.
    refused: Mutex<HashMap<SocketAddr, (Instant, String)>>,
}

impl TlsState {
    pub(crate) fn new(setup: &TlsSetup, local: Option<SocketAddr>) -> TlsState {
        TlsState {
            local,
            client: setup.client.clone(),
            peers: setup.peers.iter().map(|p| (canonical(p.addr), p.clone())).collect(),
            callers: setup.callers.iter().map(|c| (c.ip.to_canonical(), c.clone())).collect(),
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// How `dest` is checked: as its configured peer, or by its IP address.
    fn peer(&self, dest: SocketAddr) -> TlsPeer {
        match self.peers.get(&canonical(dest)) {
            Some(peer) => peer.clone(),
            None => TlsPeer {
                addr: dest,
                label: "destination".to_string(),
                name: ServerName::IpAddress(dest.ip().into()),
                client: self.client.clone(),
            },
        }
    }

    /// The caller `peer` connects in as, if its address is one.
    fn caller(&self, peer: SocketAddr) -> Option<&TlsCaller> {
        self.callers.get(&peer.ip().to_canonical())
    }

    /// `what`: "to trunk x 1.2.3.4:5061" or "from trunk x 1.2.3.4:40000"; `key`: whose
    /// refusals are counted as the same.
    fn log_refusal(&self, key: SocketAddr, what: &str, name: &str, reason: &str) {
        let now = Instant::now();
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = match refused.get(&key) {
            Some((at, last)) => last != reason || now.duration_since(*at) >= REFUSAL_LOG_EVERY,
            None => true,
        };
        if fresh {
            warn!("TLS {what} refused (expected name {name}): {reason}");
            refused.insert(key, (now, reason.to_string()));
        } else {
            debug!("TLS {what} refused again: {reason}");
        }
    }

    fn connected(&self, addr: SocketAddr) {
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if refused.remove(&addr).is_some() {
            log::info!("TLS to {addr} established again");
        }
    }
}

pub(crate) async fn accept(shared: Arc<Shared>, listener: TcpListener, server: Arc<ServerConfig>, tls: Arc<TlsState>) {
    let local = listener.local_addr().ok();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shared.incoming.closed() => return,
        };
        match accepted {
            Ok((stream, peer)) if shared.admits(peer) => {
                tcp::no_delay(&stream, peer);
                let (connection, outgoing) = shared.connections().insert(canonical(peer), Protocol::Tls);
                let handshake = handshake_in(tls.clone(), server.clone(), stream, peer);
                tokio::spawn(stream::run(shared.clone(), connection, outgoing, handshake));
            }
            Ok(_) => {}
            Err(e) => {
                warn!("TLS accept on {local:?}: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn handshake_in(
    tls: Arc<TlsState>,
    server: Arc<ServerConfig>,
    stream: TcpStream,
    peer: SocketAddr,
) -> io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
    let caller = tls.caller(peer);
    let acceptor = TlsAcceptor::from(caller.map_or(server, |c| c.server.clone()));
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => {
            match caller {
                Some(c) => tls.log_refusal(SocketAddr::new(c.ip, 0), &format!("from {} {peer}", c.label), &c.name, &e.to_string()),
                None => debug!("TLS handshake with {peer} failed: {e}"),
            }
            Err(e)
        }
        Err(_) => {
            debug!("TLS handshake with {peer} timed out");
            Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))
        }
    }
}

/// A new connection to `dest`, usable at once: what is sent on it waits for the handshake.
pub(crate) fn connect(shared: &Arc<Shared>, tls: &Arc<TlsState>, dest: SocketAddr) -> Arc<Connection> {
    let (connection, outgoing) = shared.connections().insert(canonical(dest), Protocol::Tls);
    let handshake = handshake_out(tls.clone(), tls.peer(dest));
    tokio::spawn(stream::run(shared.clone(), connection.clone(), outgoing, handshake));
    connection
}

async fn handshake_out(
    tls: Arc<TlsState>,
    peer: TlsPeer,
) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let name = server_name_text(&peer.name);
    let attempt = async {
        let stream = tcp::open(peer.addr).await?;
        let connector = TlsConnector::from(peer.client.clone());
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(peer.name.clone(), stream)).await {
            Ok(result) => result,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")),
        }
    };
    match attempt.await {
        Ok(stream) => {
            tls.connected(peer.addr);
            Ok(stream)
        }
        Err(e) => {
            tls.log_refusal(peer.addr, &format!("to {} {}", peer.label, peer.addr), &name, &e.to_string());
            Err(e)
        }
    }
}

/// A certificate name as log lines write it.
pub fn server_name_text(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(dns) => dns.as_ref().to_string(),
        ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}
