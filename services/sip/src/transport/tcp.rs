//! TCP: the listener and outgoing connections; `stream` runs each connection.
use super::connections::Connection;
use super::connections::canonical;
use super::shared::Shared;
use super::{stream, Protocol};
use log::{debug, warn};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed accept (out of file descriptors), so the loop does not spin.
pub(crate) const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

pub(crate) async fn accept(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shared.incoming.closed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                if shared.admits(peer) {
                    adopt(&shared, stream, peer);
                }
            }
            Err(e) => {
                warn!("TCP accept on {}: {e}", shared.local);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

pub(crate) async fn connect(shared: &Arc<Shared>, peer: SocketAddr) -> io::Result<Arc<Connection>> {
    let stream = open(peer).await?;
    Ok(adopt(shared, stream, peer))
}

/// A TCP connection to `peer`, within `CONNECT_TIMEOUT`, with Nagle off (SIP messages are
/// written whole and must not wait for an acknowledgement).
pub(crate) async fn open(peer: SocketAddr) -> io::Result<TcpStream> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
        Ok(stream) => stream?,
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, format!("TCP connect to {peer} timed out"))),
    };
    no_delay(&stream, peer);
    Ok(stream)
}

pub(crate) fn no_delay(stream: &TcpStream, peer: SocketAddr) {
    if let Err(e) = stream.set_nodelay(true) {
        debug!("TCP_NODELAY for {peer}: {e}");
    }
}

fn adopt(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) -> Arc<Connection> {
    no_delay(&stream, peer);
    let (connection, outgoing) = shared.connections().insert(canonical(peer), Protocol::Tcp);
    tokio::spawn(stream::run(shared.clone(), connection.clone(), outgoing, std::future::ready(Ok(stream))));
    connection
}
