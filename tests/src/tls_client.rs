//! A SIP user agent over TLS for tests that need one TLS connection in their own hands
//! (REGISTERs on the very flow the central site authenticated, and from another connection): openssl s_client (a second TLS stack) makes the connection and
//! checks the server's certificate by the CA and the address; messages are written to it and
//! read back through holdfast-sip's stream framing.
use crate::netns::{KillOnDrop, Netns};
use holdfast_sip::message::{HeaderName, Message, Method, Request, Response, Uri};
use holdfast_sip::wire::{StreamDecoder, StreamItem};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Requests are written and answered exactly as the test says; those that arrive on the
/// connection wait for `next_request`.
pub struct TlsUa {
    _client: KillOnDrop,
    stdin: ChildStdin,
    messages: mpsc::Receiver<Message>,
    /// Requests that arrived while a response was awaited.
    requests: VecDeque<Request>,
    pub user: String,
    pub domain: String,
    call_id: String,
    cseq: u32,
}

impl TlsUa {
    /// A TLS connection from `ns` to `server`, whose certificate must chain to `ca` and name
    /// its IP address; `user`'s REGISTERs in `domain` go on it.
    pub fn connect(ns: &Netns, server: SocketAddr, ca: &Path, user: &str, domain: &str) -> TlsUa {
        TlsUa::open(ns, None, server, ca, user, domain)
    }

    /// `connect` from the address `from` (another host: 127.0.0.2 beside a loopback phone).
    pub fn connect_from(ns: &Netns, from: IpAddr, server: SocketAddr, ca: &Path, user: &str, domain: &str) -> TlsUa {
        TlsUa::open(ns, Some(from), server, ca, user, domain)
    }

    fn open(ns: &Netns, from: Option<IpAddr>, server: SocketAddr, ca: &Path, user: &str, domain: &str) -> TlsUa {
        let mut cmd = ns.command("openssl");
        cmd.args(["s_client", "-quiet", "-verify_return_error", "-verify_ip", &server.ip().to_string(), "-CAfile"])
            .arg(ca)
            .args(["-connect", &server.to_string()]);
        if let Some(from) = from {
            cmd.args(["-bind", &SocketAddr::new(from, 0).to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client (apt-get install openssl)");
        let stdin = child.stdin.take().expect("s_client stdin");
        let mut stdout = child.stdout.take().expect("s_client stdout");
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut decoder = StreamDecoder::new();
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    return;
                }
                decoder.push(&buf[..n]);
                while let Some(item) = decoder.next() {
                    if let Ok(StreamItem::Message(m)) = item {
                        if tx.send(m).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let n = std::process::id();
        TlsUa {
            _client: KillOnDrop(child),
            stdin,
            messages,
            requests: VecDeque::new(),
            user: user.to_string(),
            domain: domain.to_string(),
            call_id: format!("{user}-tls-{n}-{}@test", server.port()),
            cseq: 0,
        }
    }

    /// Sends a REGISTER binding `contact` (a URI) for `expires` and waits for its final response.
    pub fn register(&mut self, contact: &str, expires: u32, authorization: Option<&str>) -> Response {
        let mut r = self.request(Method::REGISTER, &format!("sip:{}", self.domain));
        let h = &mut r.headers;
        h.add(HeaderName::Contact, format!("<{contact}>"));
        h.add(HeaderName::Expires, expires.to_string());
        if let Some(a) = authorization {
            h.add(HeaderName::Authorization, a);
        }
        self.send(&r)
    }

    /// Sends an OPTIONS to `uri` and waits for its final response.
    pub fn options(&mut self, uri: &str) -> Response {
        let r = self.request(Method::OPTIONS, uri);
        self.send(&r)
    }

    /// A request of this UA's call to `uri` (From and To its user), with its next CSeq.
    pub fn request(&mut self, method: Method, uri: &str) -> Request {
        self.cseq += 1;
        let mut r = Request::new(method.clone(), Uri::parse(uri).expect("uri"));
        let h = &mut r.headers;
        // The sent-by is nominal: with rport the answer comes back on this connection.
        h.add(HeaderName::Via, format!("SIP/2.0/TLS tls-ua.invalid;branch=z9hG4bK-tls-ua-{}-{};rport", self.user, self.cseq));
        h.add(HeaderName::From, format!("<sip:{}@{}>;tag=tls-ua", self.user, self.domain));
        h.add(HeaderName::To, format!("<sip:{}@{}>", self.user, self.domain));
        h.add(HeaderName::CallId, self.call_id.clone());
        h.add(HeaderName::CSeq, format!("{} {method}", self.cseq));
        h.add(HeaderName::MaxForwards, "70");
        r
    }

    /// Writes `r` on the connection and waits for its final response.
    pub fn send(&mut self, r: &Request) -> Response {
        self.write(&r.to_bytes().expect("a request we wrote is writable"));
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.messages.recv_timeout(left).expect("no answer over TLS") {
                Message::Response(r) if r.status >= 200 => return r,
                Message::Response(_) => {}
                Message::Request(r) => self.requests.push_back(r),
            }
        }
    }

    /// The next request that arrives on the connection, within `within`.
    pub fn next_request(&mut self, within: Duration) -> Option<Request> {
        if let Some(r) = self.requests.pop_front() {
            return Some(r);
        }
        let deadline = Instant::now() + within;
        loop {
            match self.messages.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok()? {
                Message::Request(r) => return Some(r),
                Message::Response(_) => {}
            }
        }
    }

    /// Writes a request that has no response (an ACK) on the connection.
    pub fn write_request(&mut self, r: &Request) {
        self.write(&r.to_bytes().expect("a request we wrote is writable"));
    }

    /// Writes a response on the connection.
    pub fn respond(&mut self, r: &Response) {
        self.write(&r.to_bytes().expect("a response we wrote is writable"));
    }

    fn write(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).expect("write to s_client");
        self.stdin.flush().expect("flush s_client");
    }
}
