//! One stream connection (TCP, or TLS over TCP) from the moment its stream exists until it
//! closes: a reader that frames messages with `wire::StreamDecoder` and answers RFC 5626 pings,
//! and a writer that drains the connection's send queue.
use super::connections::Connection;
use super::shared::Shared;
use super::Source;
use crate::wire::{self, StreamDecoder, StreamItem};
use bytes::{Bytes, BytesMut};
use log::debug;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// A peer that stops reading must not keep its connection (and its queue) forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Queued messages written in one go, up to this many bytes.
const WRITE_BATCH: usize = 64 * 1024;

/// Runs `connection`: waits for `establish` (a connect, a TLS handshake; it logs its own
/// failure), then reads and writes until either side ends or we drop it, then forgets the
/// connection.
pub(crate) async fn run<S>(
    shared: Arc<Shared>,
    connection: Arc<Connection>,
    outgoing: mpsc::Receiver<Bytes>,
    establish: impl Future<Output = io::Result<S>>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let established = tokio::select! {
        established = establish => established.ok(),
        _ = connection.drop_requested() => None,
    };
    if let Some(stream) = established {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut outgoing = outgoing;
        let ended = tokio::select! {
            read = read_messages(&shared, &connection, &mut reader) => Ended::Reading(read),
            written = write_queue(&mut writer, &mut outgoing, false) => Ended::Writing(written),
            _ = connection.drop_requested() => Ended::Dropped,
        };
        let result = match ended {
            // What was queued before the reader stopped still goes out (the 400 for a message
            // that broke the framing).
            Ended::Reading(read) => read.and(write_queue(&mut writer, &mut outgoing, true).await),
            Ended::Writing(written) => written,
            Ended::Dropped => Err(io::Error::new(io::ErrorKind::ConnectionAborted, "dropped by us")),
        };
        if let Err(e) = result {
            debug!("{} connection with {}: {e}", connection.protocol, connection.peer);
        }
    }
    shared.connections().remove(connection.id);
}

enum Ended {
    Reading(io::Result<()>),
    Writing(io::Result<()>),
    Dropped,
}

/// Writes queued messages in batches until every sender is gone, or (`only_queued`) until the
/// queue is empty.
async fn write_queue<W: AsyncWrite + Unpin>(writer: &mut W, outgoing: &mut mpsc::Receiver<Bytes>, only_queued: bool) -> io::Result<()> {
    let mut batch = BytesMut::new();
    loop {
        let first = if only_queued { outgoing.try_recv().ok() } else { outgoing.recv().await };
        let Some(first) = first else { return Ok(()) };
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < WRITE_BATCH {
            let Ok(more) = outgoing.try_recv() else { break };
            batch.extend_from_slice(&more);
        }
        let write = async {
            writer.write_all(&batch).await?;
            writer.flush().await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(result) => result?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        }
    }
}

async fn read_messages<R: AsyncRead + Unpin>(shared: &Shared, connection: &Connection, reader: &mut R) -> io::Result<()> {
    let mut decoder = StreamDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let source = Source { addr: connection.peer, transport: connection.protocol, conn: Some(connection.id) };
    loop {
        let read = tokio::select! {
            read = tokio::time::timeout(shared.limits.idle_timeout, reader.read(&mut buf)) => match read {
                Ok(read) => read?,
                Err(_) => {
                    shared.counters.idle_closed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    debug!("{} connection with {} idle for {:?}: closed", connection.protocol, connection.peer, shared.limits.idle_timeout);
                    return Ok(());
                }
            },
            _ = shared.incoming.closed() => return Ok(()),
        };
        if read == 0 {
            return Ok(());
        }
        decoder.push(&buf[..read]);
        while let Some(item) = decoder.next() {
            match item {
                Ok(StreamItem::Message(msg)) => {
                    if !shared.deliver(msg, source).await {
                        return Ok(());
                    }
                }
                Ok(StreamItem::Ping) => connection.send(Bytes::from_static(b"\r\n"))?,
                Ok(StreamItem::Pong) => {}
                Err(e) => {
                    if let Some(Ok(bytes)) = wire::error_response(decoder.last_rejected(), &e).map(|r| r.to_bytes()) {
                        connection.send(bytes.into())?;
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
