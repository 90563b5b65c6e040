//! The transport on loopback, IPv4 and IPv6: round trips, Via stamping, §18.2.2 routing, TCP
//! connection reuse, RFC 5626 keepalive, faulty datagrams.
use holdfast_sip::message::{HeaderName, Message, Request, Response};
use holdfast_sip::transport::{Incoming, Protocol, Transport, TransportHandle};
use holdfast_sip::wire;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

fn request_bytes(method: &str, via: &str) -> Vec<u8> {
    format!(
        "{method} sip:bob@example.com SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=1\r\n\
         To: <sip:bob@example.com>\r\nCall-ID: loop-1\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

async fn bind(addr: &str) -> (TransportHandle, mpsc::Receiver<Incoming>) {
    Transport::bind(addr.parse().unwrap()).await.expect("bind")
}

async fn next(rx: &mut mpsc::Receiver<Incoming>) -> Incoming {
    timeout(WAIT, rx.recv()).await.expect("a message in time").expect("transport running")
}

fn request(incoming: &Incoming) -> &Request {
    match &incoming.msg {
        Message::Request(r) => r,
        other => panic!("expected a request, got {other:?}"),
    }
}

async fn recv_response(socket: &UdpSocket) -> Response {
    let mut buf = vec![0u8; 65_535];
    let (len, _) = timeout(WAIT, socket.recv_from(&mut buf)).await.expect("a response in time").unwrap();
    match wire::parse(&buf[..len]).expect("a valid response") {
        Message::Response(r) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

/// Reads from a stream until one whole response arrived.
async fn read_stream(stream: &mut TcpStream) -> Response {
    let mut decoder = wire::StreamDecoder::new();
    let mut buf = [0u8; 4096];
    for _ in 0..100 {
        let len = timeout(WAIT, stream.read(&mut buf)).await.expect("data in time").unwrap();
        assert!(len > 0, "connection closed early");
        decoder.push(&buf[..len]);
        if let Some(item) = decoder.next() {
            match item.expect("a valid message") {
                wire::StreamItem::Message(Message::Response(r)) => return r,
                other => panic!("expected a response, got {other:?}"),
            }
        }
    }
    panic!("no whole message after 100 reads");
}

async fn udp_round_trip(bind_addr: &str) {
    let (handle, mut rx) = bind(bind_addr).await;
    let client = UdpSocket::bind(SocketAddr::new(handle.local_addr().ip(), 0)).await.unwrap();
    let client_addr = client.local_addr().unwrap();
    let host = match client_addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    let via = format!("SIP/2.0/UDP {host}:{};branch=z9hG4bKu1;rport", client_addr.port());
    client.send_to(&request_bytes("OPTIONS", &via), handle.local_addr()).await.unwrap();

    let incoming = next(&mut rx).await;
    assert_eq!(incoming.source.addr, client_addr);
    assert_eq!(incoming.source.transport, Protocol::Udp);
    assert_eq!(incoming.source.conn, None);
    let top = request(&incoming).top_via().unwrap();
    assert_eq!(top.params.value("rport"), Some(client_addr.port().to_string().as_str()));
    assert_eq!(top.params.value("received"), Some(client_addr.ip().to_string().as_str()));

    handle.send_response(&request(&incoming).response(200)).await.unwrap();
    let response = recv_response(&client).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.headers.get(&HeaderName::CallId), Some("loop-1"));
}

#[tokio::test]
async fn udp_round_trip_ipv4() {
    udp_round_trip("127.0.0.1:0").await;
}

#[tokio::test]
async fn udp_round_trip_ipv6() {
    udp_round_trip("[::1]:0").await;
}

#[tokio::test]
async fn response_follows_rport_not_the_sent_by_port() {
    let (handle, mut rx) = bind("127.0.0.1:0").await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // The phone behind a NAT claims a port that is not the one its packets leave from.
    let via = "SIP/2.0/UDP 10.1.1.1:5999;branch=z9hG4bKnat;rport";
    client.send_to(&request_bytes("REGISTER", via), handle.local_addr()).await.unwrap();
    let incoming = next(&mut rx).await;
    let top = request(&incoming).top_via().unwrap();
    assert_eq!(top.params.value("received"), Some("127.0.0.1"));
    handle.send_response(&request(&incoming).response(200)).await.unwrap();
    assert_eq!(recv_response(&client).await.status, 200);
}

#[tokio::test]
async fn without_rport_the_response_goes_to_received_and_sent_by_port() {
    let (handle, mut rx) = bind("127.0.0.1:0").await;
    let sender = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let listener = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // A sent-by host that is not the source address earns received=; the port stays sent-by's.
    let via = format!("SIP/2.0/UDP 192.0.2.55:{};branch=z9hG4bKrecv", listener.local_addr().unwrap().port());
    sender.send_to(&request_bytes("OPTIONS", &via), handle.local_addr()).await.unwrap();
    let incoming = next(&mut rx).await;
    let top = request(&incoming).top_via().unwrap();
    assert_eq!(top.params.value("received"), Some("127.0.0.1"));
    assert_eq!(top.params.get("rport"), None);
    handle.send_response(&request(&incoming).response(404)).await.unwrap();
    assert_eq!(recv_response(&listener).await.status, 404);
}

#[tokio::test]
async fn faulty_datagrams_are_answered_400_or_dropped() {
    let (handle, mut rx) = bind("127.0.0.1:0").await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = client.local_addr().unwrap().port();
    let bad_cseq = format!(
        "OPTIONS sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKbad\r\n\
         From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: bad-1\r\nCSeq: many OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    client.send_to(b"\x00\x01 this is not SIP", handle.local_addr()).await.unwrap();
    client.send_to(b"\r\n\r\n", handle.local_addr()).await.unwrap();
    client.send_to(bad_cseq.as_bytes(), handle.local_addr()).await.unwrap();
    // The answer echoes the faulty CSeq, so it is checked as text.
    let mut buf = vec![0u8; 65_535];
    let (len, _) = timeout(WAIT, client.recv_from(&mut buf)).await.expect("an answer in time").unwrap();
    let answer = String::from_utf8_lossy(&buf[..len]);
    assert!(answer.starts_with("SIP/2.0 400 Bad Request"), "{answer}");
    assert!(answer.contains("Call-ID: bad-1\r\n"), "{answer}");

    // Nothing of the three reached the TU; a good request after them does.
    let via = format!("SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKgood");
    client.send_to(&request_bytes("OPTIONS", &via), handle.local_addr()).await.unwrap();
    let incoming = next(&mut rx).await;
    assert_eq!(request(&incoming).headers.get(&HeaderName::CallId), Some("loop-1"));
    assert!(timeout(Duration::from_millis(200), client.recv_from(&mut buf)).await.is_err(), "no second answer");
}

async fn tcp_round_trip(bind_addr: &str) {
    let (handle, mut rx) = bind(bind_addr).await;
    let mut stream = TcpStream::connect(handle.local_addr()).await.unwrap();
    let client_addr = stream.local_addr().unwrap();
    // Sent-by names a port nobody listens on: the response must use this connection anyway.
    let host = match client_addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    let via = format!("SIP/2.0/TCP {host}:9;branch=z9hG4bKt1");
    stream.write_all(&request_bytes("REGISTER", &via)).await.unwrap();

    let incoming = next(&mut rx).await;
    assert_eq!(incoming.source.addr, client_addr);
    assert_eq!(incoming.source.transport, Protocol::Tcp);
    assert!(incoming.source.conn.is_some());
    handle.send_response(&request(&incoming).response(200)).await.unwrap();
    assert_eq!(read_stream(&mut stream).await.status, 200);

    // RFC 5626: a CRLFCRLF ping is answered with a CRLF pong on the same connection.
    stream.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    timeout(WAIT, stream.read_exact(&mut pong)).await.expect("pong in time").unwrap();
    assert_eq!(&pong, b"\r\n");
}

#[tokio::test]
async fn tcp_response_on_the_same_connection_and_keepalive_ipv4() {
    tcp_round_trip("127.0.0.1:0").await;
}

#[tokio::test]
async fn tcp_response_on_the_same_connection_and_keepalive_ipv6() {
    tcp_round_trip("[::1]:0").await;
}

#[tokio::test]
async fn tcp_faulty_message_is_answered_on_the_connection() {
    let (handle, _rx) = bind("127.0.0.1:0").await;
    let mut stream = TcpStream::connect(handle.local_addr()).await.unwrap();
    let wrong_version = b"OPTIONS sip:bob@example.com SIP/7.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKv\r\n\
        From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: v-1\r\nCSeq: 1 OPTIONS\r\n\
        Content-Length: 0\r\n\r\n";
    stream.write_all(wrong_version).await.unwrap();
    assert_eq!(read_stream(&mut stream).await.status, 505);
}

#[tokio::test]
async fn requests_go_out_over_udp_and_tcp() {
    let (handle, _rx) = bind("127.0.0.1:0").await;
    let via = format!("SIP/2.0/UDP {};branch=z9hG4bKout", handle.local_addr());
    let request = match wire::parse(&request_bytes("OPTIONS", &via)).unwrap() {
        Message::Request(r) => r,
        other => panic!("{other:?}"),
    };
    let msg = Message::Request(request);

    let udp_peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    handle.send_to(&msg, udp_peer.local_addr().unwrap(), Protocol::Udp).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    let (len, from) = timeout(WAIT, udp_peer.recv_from(&mut buf)).await.unwrap().unwrap();
    assert_eq!(from, handle.local_addr(), "sent from the bound socket");
    assert_eq!(wire::parse(&buf[..len]).unwrap(), msg);

    let tcp_peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = tcp_peer.local_addr().unwrap();
    handle.send_to(&msg, peer_addr, Protocol::Tcp).await.unwrap();
    handle.send_to(&msg, peer_addr, Protocol::Tcp).await.unwrap();
    let (mut accepted, _) = timeout(WAIT, tcp_peer.accept()).await.unwrap().unwrap();
    let mut decoder = wire::StreamDecoder::new();
    let mut got = 0;
    for _ in 0..100 {
        if got == 2 {
            break;
        }
        let len = timeout(WAIT, accepted.read(&mut buf)).await.unwrap().unwrap();
        decoder.push(&buf[..len]);
        got += decoder.by_ref().filter(|i| matches!(i, Ok(wire::StreamItem::Message(m)) if *m == msg)).count();
    }
    assert_eq!(got, 2, "both requests over the one connection");
    assert!(timeout(Duration::from_millis(100), tcp_peer.accept()).await.is_err(), "no second connection");
}

#[tokio::test]
async fn two_transports_talk_tcp_and_the_response_returns_on_the_connection() {
    let (alice, mut alice_rx) = bind("127.0.0.1:0").await;
    let (bob, mut bob_rx) = bind("127.0.0.1:0").await;
    let via = format!("SIP/2.0/TCP {};branch=z9hG4bKab;rport", alice.local_addr());
    let Message::Request(invite) = wire::parse(&request_bytes("INVITE", &via)).unwrap() else { panic!() };
    alice.send_to(&Message::Request(invite), bob.local_addr(), Protocol::Tcp).await.unwrap();

    let incoming = next(&mut bob_rx).await;
    assert_eq!(incoming.source.transport, Protocol::Tcp);
    assert_ne!(incoming.source.addr, alice.local_addr(), "the connection comes from an ephemeral port");
    let top = request(&incoming).top_via().unwrap();
    assert_eq!(top.params.value("rport"), Some(incoming.source.addr.port().to_string().as_str()));
    bob.send_response(&request(&incoming).response(180)).await.unwrap();

    let answer = next(&mut alice_rx).await;
    assert_eq!(answer.source.transport, Protocol::Tcp);
    assert_eq!(answer.source.addr, bob.local_addr());
    assert!(matches!(answer.msg, Message::Response(ref r) if r.status == 180));
}

#[tokio::test]
async fn dual_stack_any_address_serves_ipv4_clients_as_ipv4() {
    let (handle, mut rx) = bind("[::]:0").await;
    let server: SocketAddr = format!("127.0.0.1:{}", handle.local_addr().port()).parse().unwrap();

    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let client_addr = client.local_addr().unwrap();
    let via = format!("SIP/2.0/UDP 127.0.0.1:{};branch=z9hG4bKds;rport", client_addr.port());
    client.send_to(&request_bytes("OPTIONS", &via), server).await.unwrap();
    let incoming = next(&mut rx).await;
    assert_eq!(incoming.source.addr, client_addr, "not ::ffff:127.0.0.1");
    assert_eq!(request(&incoming).top_via().unwrap().params.value("received"), Some("127.0.0.1"));
    handle.send_response(&request(&incoming).response(200)).await.unwrap();
    assert_eq!(recv_response(&client).await.status, 200);

    let mut stream = TcpStream::connect(server).await.unwrap();
    stream.write_all(&request_bytes("OPTIONS", "SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKds2")).await.unwrap();
    let incoming = next(&mut rx).await;
    assert_eq!(incoming.source.addr, stream.local_addr().unwrap());
    handle.send_response(&request(&incoming).response(200)).await.unwrap();
    assert_eq!(read_stream(&mut stream).await.status, 200);
}
