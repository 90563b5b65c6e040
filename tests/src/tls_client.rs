//! A SIP user agent over TLS for tests that need one TLS connection in their own hands (a
//! REGISTER with a new Contact on the very flow the central site authenticated, and the same
//! from another connection): openssl s_client (a second TLS stack) makes the connection and
//! checks the server's certificate by the CA and the address; messages are written to it and
//! read back through holdfast-sip's stream framing.
use crate::netns::{KillOnDrop, Netns};
use holdfast_sip::message::{HeaderName, Message, Method, Request, Response, Uri};
use holdfast_sip::wire::{StreamDecoder, StreamItem};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct TlsUa {
    _client: KillOnDrop,
    stdin: ChildStdin,
    responses: mpsc::Receiver<Response>,
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
        let (tx, responses) = mpsc::channel();
        std::thread::spawn(move || {
            let mut decoder = StreamDecoder::new();
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    return;
                }
                decoder.push(&buf[..n]);
                while let Some(item) = decoder.next() {
                    if let Ok(StreamItem::Message(Message::Response(r))) = item {
                        if tx.send(r).is_err() {
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
            responses,
            user: user.to_string(),
            domain: domain.to_string(),
            call_id: format!("{user}-tls-{n}-{}@test", server.port()),
            cseq: 0,
        }
    }

    /// Sends a REGISTER binding `contact` (a URI) for `expires` and waits for its final response.
    pub fn register(&mut self, contact: &str, expires: u32, authorization: Option<&str>) -> Response {
        self.cseq += 1;
        let mut r = Request::new(Method::REGISTER, Uri::parse(&format!("sip:{}", self.domain)).expect("uri"));
        let h = &mut r.headers;
        // The sent-by is nominal: with rport the answer comes back on this connection.
        h.add(HeaderName::Via, format!("SIP/2.0/TLS tls-ua.invalid;branch=z9hG4bK-tls-ua-{};rport", self.cseq));
        h.add(HeaderName::From, format!("<sip:{}@{}>;tag=tls-ua", self.user, self.domain));
        h.add(HeaderName::To, format!("<sip:{}@{}>", self.user, self.domain));
        h.add(HeaderName::CallId, self.call_id.clone());
        h.add(HeaderName::CSeq, format!("{} REGISTER", self.cseq));
        h.add(HeaderName::Contact, format!("<{contact}>"));
        h.add(HeaderName::MaxForwards, "70");
        h.add(HeaderName::Expires, expires.to_string());
        if let Some(a) = authorization {
            h.add(HeaderName::Authorization, a);
        }
        self.stdin.write_all(&r.to_bytes().expect("a request we wrote is writable")).expect("write to s_client");
        self.stdin.flush().expect("flush s_client");
        loop {
            let r = self.responses.recv_timeout(Duration::from_secs(15)).expect("no answer over TLS");
            if r.status >= 200 {
                return r;
            }
        }
    }
}
