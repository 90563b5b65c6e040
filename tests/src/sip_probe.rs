//! A minimal SIP client for readiness checks: OPTIONS over UDP until a 200 comes back.
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Sends OPTIONS to `to` until it answers 200 or `within` passes.
pub fn wait_ready(to: SocketAddr, within: Duration) -> bool {
    wait_ready_from(UdpSocket::bind("127.0.0.1:0").expect("bind"), to, within)
}

/// `wait_ready` from `sock` (one bound inside a namespace, say).
pub fn wait_ready_from(sock: UdpSocket, to: SocketAddr, within: Duration) -> bool {
    sock.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let local = sock.local_addr().expect("addr");
    let deadline = Instant::now() + within;
    let mut n = 0;
    while Instant::now() < deadline {
        n += 1;
        let msg = format!(
            "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-probe-{n};rport\r\n\
             From: <sip:probe@{local}>;tag=p{n}\r\nTo: <sip:{to}>\r\nCall-ID: probe-{n}@{local}\r\n\
             CSeq: {n} OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        );
        let _ = sock.send_to(msg.as_bytes(), to);
        let mut buf = [0u8; 4096];
        if let Ok((len, _)) = sock.recv_from(&mut buf) {
            if buf[..len].starts_with(b"SIP/2.0 200") {
                return true;
            }
        }
    }
    false
}
