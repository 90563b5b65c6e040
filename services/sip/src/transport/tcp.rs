//! TCP: the listener, outgoing connections, and one reading task per connection that frames
//! messages with `wire::StreamDecoder` and answers RFC 5626 pings.
use super::connections::Connection;
use super::shared::{canonical, Shared};
use super::{Protocol, Source};
use crate::wire::{self, StreamDecoder, StreamItem};
use log::{debug, warn};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed accept (out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

pub(crate) async fn accept(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shared.incoming.closed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                adopt(&shared, stream, peer);
            }
            Err(e) => {
                warn!("TCP accept on {}: {e}", shared.local);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

pub(crate) async fn connect(shared: &Arc<Shared>, peer: SocketAddr) -> io::Result<Arc<Connection>> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(peer)).await {
        Ok(stream) => stream?,
        Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, format!("TCP connect to {peer} timed out"))),
    };
    Ok(adopt(shared, stream, peer))
}

fn adopt(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) -> Arc<Connection> {
    if let Err(e) = stream.set_nodelay(true) {
        debug!("TCP_NODELAY for {peer}: {e}");
    }
    let (reader, writer) = stream.into_split();
    let connection = shared.connections().insert(canonical(peer), writer);
    tokio::spawn(serve(shared.clone(), connection.clone(), reader));
    connection
}

async fn serve(shared: Arc<Shared>, connection: Arc<Connection>, mut reader: OwnedReadHalf) {
    let peer = connection.peer;
    if let Err(e) = read_messages(&shared, &connection, &mut reader).await {
        debug!("TCP connection with {peer}: {e}");
    }
    shared.connections().remove(connection.id);
}

async fn read_messages(shared: &Shared, connection: &Connection, reader: &mut OwnedReadHalf) -> io::Result<()> {
    let mut decoder = StreamDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = reader.read(&mut buf) => read?,
            _ = shared.incoming.closed() => return Ok(()),
        };
        if read == 0 {
            return Ok(());
        }
        decoder.push(&buf[..read]);
        while let Some(item) = decoder.next() {
            match item {
                Ok(StreamItem::Message(msg)) => {
                    let source = Source { addr: connection.peer, transport: Protocol::Tcp, conn: Some(connection.id) };
                    if !shared.deliver(msg, source).await {
                        return Ok(());
                    }
                }
                Ok(StreamItem::Ping) => connection.write(b"\r\n").await?,
                Ok(StreamItem::Pong) => {}
                Err(e) => {
                    if let Some(response) = wire::error_response(decoder.last_rejected(), &e) {
                        connection.write(&response.to_bytes()).await?;
                    }
                    debug!("faulty message from {}: {e}", connection.peer);
                }
            }
        }
        // A framing error leaves no message boundary to resume at.
        if decoder.is_closed() {
            return Ok(());
        }
    }
}
