//! SIP over TLS on loopback: a phone's flow carries the response and later requests to it
//! (RFC 5626/5923), CRLF keepalives inside TLS, peers checked by name, a wrong name refused.
use holdfast_sip::message::{HeaderName, Message, Request};
use holdfast_sip::transport::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use holdfast_sip::transport::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use holdfast_sip::transport::{Incoming, Protocol, TlsPeer, TlsSetup, Transport, TransportHandle};
use holdfast_sip::wire::{self, StreamDecoder, StreamItem};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

/// A private CA and certificates it signs, as a central site's PKI would have.
struct Pki {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    fn new() -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        Pki { ca, ca_key }
    }

    fn server(&self, names: &[&str]) -> Arc<ServerConfig> {
        let params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        let chain = vec![cert.der().clone(), self.ca.der().clone()];
        let key = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        Arc::new(
            ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        )
    }

    fn client(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(self.ca.der().to_vec())).unwrap();
        Arc::new(
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

async fn bind(pki: &Pki, names: &[&str], peers: Vec<TlsPeer>) -> (TransportHandle, mpsc::Receiver<Incoming>) {
    let setup = TlsSetup {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        server: pki.server(names),
        client: pki.client(),
        peers,
        callers: Vec::new(),
    };
    Transport::bind_with_tls("127.0.0.1:0".parse().unwrap(), Some(setup)).await.expect("bind")
}

fn request(method: &str, via: &str, call_id: &str) -> Request {
    let text = format!(
        "{method} sip:bob@example.com SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=1\r\n\
         To: <sip:bob@example.com>\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    );
    match wire::parse(text.as_bytes()).unwrap() {
        Message::Request(r) => r,
        other => panic!("{other:?}"),
    }
}

async fn next(rx: &mut mpsc::Receiver<Incoming>) -> Incoming {
    timeout(WAIT, rx.recv()).await.expect("a message in time").expect("transport running")
}

type ClientStream = tokio_rustls::client::TlsStream<TcpStream>;

/// A phone's side: a TLS connection to the appliance, checked against the test CA.
async fn phone(pki: &Pki, server: SocketAddr) -> ClientStream {
    let tcp = TcpStream::connect(server).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(pki.client());
    connector.connect(ServerName::try_from("sba.branch.test").unwrap(), tcp).await.expect("handshake")
}

/// Reads items off a TLS stream until one satisfies `want`.
async fn read_until(stream: &mut ClientStream, decoder: &mut StreamDecoder, want: impl Fn(&StreamItem) -> bool) -> StreamItem {
    let mut buf = [0u8; 4096];
    for _ in 0..100 {
        while let Some(item) = decoder.next() {
            let item = item.expect("a valid message");
            if want(&item) {
                return item;
            }
        }
        let len = timeout(WAIT, stream.read(&mut buf)).await.expect("data in time").unwrap();
        assert!(len > 0, "connection closed early");
        decoder.push(&buf[..len]);
    }
    panic!("nothing wanted after 100 reads");
}

#[tokio::test]
async fn a_phones_tls_flow_carries_responses_keepalives_and_requests_to_it() {
    let pki = Pki::new();
    let (sba, mut rx) = bind(&pki, &["sba.branch.test"], Vec::new()).await;
    let tls_addr = sba.tls_addr().expect("a TLS listener");
    assert_eq!(sba.listening(Protocol::Tls), tls_addr);
    let mut stream = phone(&pki, tls_addr).await;
    let local = stream.get_ref().0.local_addr().unwrap();
    // The phone claims a listening port of its own: nobody listens there, and with `alias`
    // (RFC 5923) requests for it use this connection too.
    let via = "SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKtls1;rport;alias";
    stream.write_all(&request("REGISTER", via, "tls-1").to_bytes().unwrap()).await.unwrap();

    let incoming = next(&mut rx).await;
    assert_eq!(incoming.source.transport, Protocol::Tls);
    assert_eq!(incoming.source.addr, local);
    let conn = incoming.source.conn.expect("a flow");
    assert!(sba.is_open(conn));
    let Message::Request(register) = incoming.msg else { panic!() };
    sba.send_response(&register.response(200)).await.unwrap();
    let mut decoder = StreamDecoder::new();
    let got = read_until(&mut stream, &mut decoder, |i| matches!(i, StreamItem::Message(_))).await;
    assert!(matches!(got, StreamItem::Message(Message::Response(ref r)) if r.status == 200));

    // RFC 5626 keepalive inside TLS.
    stream.write_all(b"\r\n\r\n").await.unwrap();
    assert_eq!(read_until(&mut stream, &mut decoder, |_| true).await, StreamItem::Pong);

    // A call to the phone: to its flow's address, and to the aliased sent-by.
    for (dest, call_id) in [(local, "to-flow"), ("127.0.0.1:5999".parse().unwrap(), "to-alias")] {
        let invite = request("INVITE", &format!("SIP/2.0/TLS {tls_addr};branch=z9hG4bK{call_id}"), call_id);
        sba.send_to(&Message::Request(invite), dest, Protocol::Tls).await.unwrap();
        let got = read_until(&mut stream, &mut decoder, |i| matches!(i, StreamItem::Message(_))).await;
        let StreamItem::Message(Message::Request(r)) = got else { panic!("{got:?}") };
        assert_eq!(r.headers.get(&HeaderName::CallId), Some(call_id));
    }

    drop(stream);
    for _ in 0..100 {
        if !sba.is_open(conn) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the closed flow is still listed as open");
}

#[tokio::test]
async fn an_alias_never_names_another_host() {
    let pki = Pki::new();
    let (sba, mut rx) = bind(&pki, &["sba.branch.test"], Vec::new()).await;
    let mut stream = phone(&pki, sba.tls_addr().unwrap()).await;
    let via = "SIP/2.0/TLS 127.0.0.9:5061;branch=z9hG4bKhijack;alias";
    stream.write_all(&request("OPTIONS", via, "hijack").to_bytes().unwrap()).await.unwrap();
    next(&mut rx).await;
    // Nothing listens at 127.0.0.9:5061: the send fails in the background, and nothing for
    // that host comes down the attacker's connection.
    let invite = request("INVITE", "SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKx", "for-9");
    sba.send_to(&Message::Request(invite), "127.0.0.9:5061".parse().unwrap(), Protocol::Tls).await.unwrap();
    let mut buf = [0u8; 256];
    assert!(timeout(Duration::from_millis(300), stream.read(&mut buf)).await.is_err(), "nothing arrives");
}

fn peer(addr: SocketAddr, name: &str, client: Arc<ClientConfig>) -> TlsPeer {
    TlsPeer { addr, label: "central proxy".into(), name: ServerName::try_from(name.to_string()).unwrap(), client }
}

#[tokio::test]
async fn a_peer_is_reached_over_tls_by_name_and_answers_on_the_connection() {
    let pki = Pki::new();
    let (central, mut central_rx) = bind(&pki, &["proxy.hq.test"], Vec::new()).await;
    let central_addr = central.tls_addr().unwrap();
    let (sba, mut sba_rx) = bind(&pki, &["sba.branch.test"], vec![peer(central_addr, "proxy.hq.test", pki.client())]).await;

    let via = format!("SIP/2.0/TLS {};branch=z9hG4bKup;rport", sba.listening(Protocol::Tls));
    sba.send_to(&Message::Request(request("OPTIONS", &via, "up-1")), central_addr, Protocol::Tls).await.unwrap();
    let incoming = next(&mut central_rx).await;
    assert_eq!(incoming.source.transport, Protocol::Tls);
    let Message::Request(options) = incoming.msg else { panic!() };
    central.send_response(&options.response(200)).await.unwrap();
    let answer = next(&mut sba_rx).await;
    assert_eq!(answer.source.transport, Protocol::Tls);
    assert_eq!(answer.source.addr, central_addr);
    assert!(matches!(answer.msg, Message::Response(ref r) if r.status == 200));
}

#[tokio::test]
async fn a_peer_whose_certificate_names_another_host_is_refused() {
    let pki = Pki::new();
    let (central, mut central_rx) = bind(&pki, &["evil.example"], Vec::new()).await;
    let central_addr = central.tls_addr().unwrap();
    let (sba, _sba_rx) = bind(&pki, &["sba.branch.test"], vec![peer(central_addr, "proxy.hq.test", pki.client())]).await;
    let via = format!("SIP/2.0/TLS {};branch=z9hG4bKwrong", sba.listening(Protocol::Tls));
    sba.send_to(&Message::Request(request("OPTIONS", &via, "wrong-1")), central_addr, Protocol::Tls).await.unwrap();
    // The handshake fails on our side: nothing reaches the impostor.
    assert!(timeout(Duration::from_millis(500), central_rx.recv()).await.is_err(), "nothing delivered");

    // A certificate from a CA we do not trust is refused the same way.
    let stranger = Pki::new();
    let (other, mut other_rx) = bind(&stranger, &["proxy.hq.test"], Vec::new()).await;
    let other_addr = other.tls_addr().unwrap();
    let (sba, _rx) = bind(&pki, &["sba.branch.test"], vec![peer(other_addr, "proxy.hq.test", pki.client())]).await;
    sba.send_to(&Message::Request(request("OPTIONS", &via, "wrong-2")), other_addr, Protocol::Tls).await.unwrap();
    assert!(timeout(Duration::from_millis(500), other_rx.recv()).await.is_err(), "nothing delivered");
}

#[tokio::test]
async fn without_tls_configured_a_tls_send_is_an_error() {
    let (plain, _rx) = Transport::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let r = request("OPTIONS", "SIP/2.0/TLS 127.0.0.1;branch=z9hG4bKno", "no-tls");
    assert!(plain.send_to(&Message::Request(r), "127.0.0.1:5061".parse().unwrap(), Protocol::Tls).await.is_err());
    assert_eq!(plain.tls_addr(), None);
}

#[tokio::test]
async fn a_dropped_connection_is_replaced_by_a_new_one_at_the_next_send() {
    let pki = Pki::new();
    let (central, mut central_rx) = bind(&pki, &["proxy.hq.test"], Vec::new()).await;
    let central_addr = central.tls_addr().unwrap();
    let (sba, _sba_rx) = bind(&pki, &["sba.branch.test"], vec![peer(central_addr, "proxy.hq.test", pki.client())]).await;
    let via = format!("SIP/2.0/TLS {};branch=z9hG4bKdrop;rport", sba.listening(Protocol::Tls));
    let options = |call_id: &str| Message::Request(request("OPTIONS", &via, call_id));
    sba.send_to(&options("drop-1"), central_addr, Protocol::Tls).await.unwrap();
    let first = next(&mut central_rx).await.source;
    assert!(sba.has_connection(central_addr, Protocol::Tls));

    // What a WAN cut leaves: a connection we no longer trust. Dropped, it is gone at once, and
    // the next message opens another.
    sba.drop_connection(central_addr, Protocol::Tls);
    assert!(!sba.has_connection(central_addr, Protocol::Tls));
    sba.send_to(&options("drop-2"), central_addr, Protocol::Tls).await.unwrap();
    let second = next(&mut central_rx).await.source;
    assert_ne!((second.addr, second.conn), (first.addr, first.conn), "the message came on the old connection");
    // The old one is closed on the far side too.
    let deadline = tokio::time::Instant::now() + WAIT;
    while central.is_open(first.conn.unwrap()) {
        assert!(tokio::time::Instant::now() < deadline, "the dropped connection stayed open");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
