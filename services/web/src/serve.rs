//! Accepting connections: HTTPS with the appliance certificate (or plain HTTP on loopback),
//! HTTP/1.1, a bounded number of connections (and of those from one address), and time limits
//! on the TLS handshake and on request headers so a slow client holds nothing for long.
use crate::connections::Connections;
use crate::http::Peer;
use axum::{Extension, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const MAX_CONNECTIONS: usize = 64;
/// A quarter of them: an admin's browser opens a handful, a scraper one.
const MAX_PER_ADDRESS: usize = 16;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, app: Router) -> std::io::Result<()> {
    let connections = Connections::new(MAX_CONNECTIONS, MAX_PER_ADDRESS);
    loop {
        let (tcp, peer) = listener.accept().await?;
        let slot = match connections.take(peer.ip()) {
            Ok(slot) => slot,
            Err(refused) => {
                log::warn!("web: {refused}; {peer} turned away");
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone().layer(Extension(Peer(peer.ip()))));
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
            let served = match tls {
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => http.serve_connection(TokioIo::new(stream), service).await,
                    Ok(Err(e)) => return log::debug!("web: TLS handshake with {peer}: {e}"),
                    Err(_) => return log::debug!("web: TLS handshake with {peer} timed out"),
                },
                None => http.serve_connection(TokioIo::new(tcp), service).await,
            };
            if let Err(e) = served {
                log::debug!("web: connection from {peer}: {e}");
            }
        });
    }
}
