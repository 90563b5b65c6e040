//! The UDP socket: large kernel buffers (a REGISTER burst must queue, not drop) and one task
//! reading datagrams into one reused buffer.
use super::connections::canonical;
use super::shared::Shared;
use super::{Protocol, Source};
use crate::wire;
use log::{debug, warn};
use nix::sys::socket::{setsockopt, sockopt};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;

const SOCKET_BUFFER: usize = 4 * 1024 * 1024;
const MAX_DATAGRAM: usize = 65_535;

pub(crate) fn bind(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(addr)?;
    // The FORCE variants pass net.core.[rw]mem_max but need CAP_NET_ADMIN.
    if setsockopt(&socket, sockopt::RcvBufForce, &SOCKET_BUFFER).is_err() {
        if let Err(e) = setsockopt(&socket, sockopt::RcvBuf, &SOCKET_BUFFER) {
            warn!("cannot set SO_RCVBUF on {addr}: {e}");
        }
    }
    if setsockopt(&socket, sockopt::SndBufForce, &SOCKET_BUFFER).is_err() {
        if let Err(e) = setsockopt(&socket, sockopt::SndBuf, &SOCKET_BUFFER) {
            warn!("cannot set SO_SNDBUF on {addr}: {e}");
        }
    }
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// Reads until the receiver of incoming messages is dropped.
pub(crate) async fn serve(shared: Arc<Shared>) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            received = shared.udp.recv_from(&mut buf) => received,
            _ = shared.incoming.closed() => return,
        };
        let (len, from) = match received {
            Ok(received) => received,
            Err(e) => {
                debug!("UDP receive on {}: {e}", shared.local);
                continue;
            }
        };
        let bytes = &buf[..len];
        // RFC 5626 and many phones keep NAT bindings open with bare CRLFs.
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match wire::parse(bytes) {
            Ok(msg) => {
                let source = Source { addr: canonical(from), transport: Protocol::Udp, conn: None };
                if !shared.deliver(msg, source).await {
                    return;
                }
            }
            // The faulty request's Via is not trusted: the answer goes where the datagram came from.
            Err(e) => match wire::error_response(bytes, &e) {
                Some(response) => match response.to_bytes() {
                    Ok(bytes) => {
                        debug!("answering a faulty datagram from {from} with {}: {e}", response.status);
                        if let Err(e) = shared.udp.send_to(&bytes, from).await {
                            debug!("UDP send to {from}: {e}");
                        }
                    }
                    Err(unwritable) => debug!("no answer to a faulty datagram from {from} ({e}): {unwritable}"),
                },
                None => debug!("dropping a faulty datagram from {from}: {e}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::getsockopt;

    #[tokio::test]
    async fn socket_buffers_hold_a_register_burst() {
        let socket = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        // Linux reports twice the size asked for (the other half is its bookkeeping).
        assert!(getsockopt(&socket, sockopt::RcvBuf).unwrap() >= SOCKET_BUFFER);
        assert!(getsockopt(&socket, sockopt::SndBuf).unwrap() >= SOCKET_BUFFER);
    }
}
