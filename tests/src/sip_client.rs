//! A small UDP user agent for protocol tests that sipp cannot express (SHA-256 digest, replayed
//! nonce-counts, malformed bytes), built on Holdfast's own SIP library.
use holdfast_sip::auth::DigestClient;
use holdfast_sip::message::{HeaderName, Message, Method, Request, Response, Uri};
use holdfast_sip::wire;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

pub struct Ua {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    pub user: String,
    pub domain: String,
    pub call_id: String,
    pub cseq: u32,
    branch: u32,
}

impl Ua {
    pub fn new(server: SocketAddr, user: &str, domain: &str) -> Ua {
        Ua::with_socket(UdpSocket::bind("127.0.0.1:0").expect("bind"), server, user, domain)
    }

    /// A UA on a socket of the caller's (one bound inside a test namespace).
    pub fn with_socket(sock: UdpSocket, server: SocketAddr, user: &str, domain: &str) -> Ua {
        sock.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
        let call_id = format!("{user}-{}@test", sock.local_addr().expect("addr").port());
        Ua { sock, server, user: user.into(), domain: domain.into(), call_id, cseq: 0, branch: 0 }
    }

    pub fn local(&self) -> SocketAddr {
        self.sock.local_addr().expect("addr")
    }

    /// A REGISTER for this user's AOR with a fresh branch and the next CSeq.
    pub fn register(&mut self, expires: u32, authorization: Option<&str>) -> Request {
        self.cseq += 1;
        self.branch += 1;
        let local = self.local();
        let mut r = Request::new(Method::REGISTER, Uri::parse(&format!("sip:{}", self.domain)).expect("uri"));
        let h = &mut r.headers;
        h.add(HeaderName::Via, format!("SIP/2.0/UDP {local};branch=z9hG4bK-ua{}-{};rport", local.port(), self.branch));
        h.add(HeaderName::From, format!("<sip:{}@{}>;tag=ua{}", self.user, self.domain, local.port()));
        h.add(HeaderName::To, format!("<sip:{}@{}>", self.user, self.domain));
        h.add(HeaderName::CallId, self.call_id.clone());
        h.add(HeaderName::CSeq, format!("{} REGISTER", self.cseq));
        h.add(HeaderName::Contact, format!("<sip:{}@{local}>", self.user));
        h.add(HeaderName::MaxForwards, "70");
        h.add(HeaderName::Expires, expires.to_string());
        if let Some(a) = authorization {
            h.add(HeaderName::Authorization, a);
        }
        r
    }

    pub fn send(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.server).expect("send");
    }

    /// The next final response, provisional ones skipped.
    pub fn recv(&self) -> Response {
        loop {
            let r = self.recv_any();
            if r.status >= 200 {
                return r;
            }
        }
    }

    /// The next response, parsed.
    pub fn recv_any(&self) -> Response {
        let mut buf = vec![0u8; 65536];
        let (n, _) = self.sock.recv_from(&mut buf).expect("no answer from the registrar");
        match wire::parse(&buf[..n]) {
            Ok(Message::Response(r)) => r,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    /// Sends a REGISTER (see `register`) and waits for its response.
    pub fn request(&mut self, expires: u32, authorization: Option<&str>) -> Response {
        let req = self.register(expires, authorization);
        self.send(&req.to_bytes().expect("a writable request"));
        self.recv()
    }

    /// The Authorization answering `challenge` for a REGISTER to this domain.
    pub fn answer(&self, challenge: &Response, password: &str, nc: u32) -> String {
        register_authorization(challenge, &self.domain, &self.user, password, nc)
    }
}

/// The Authorization answering `challenge` (a 401) for `user`'s REGISTER to `domain`.
pub fn register_authorization(challenge: &Response, domain: &str, user: &str, password: &str, nc: u32) -> String {
    let values: Vec<&str> = challenge.headers.get_all(&HeaderName::WwwAuthenticate).collect();
    let chosen = DigestClient::preferred_challenge(&values).expect("a digest challenge");
    DigestClient::authorize(chosen, "REGISTER", &format!("sip:{domain}"), user, password, "0a4f113b", nc)
        .expect("answerable challenge")
}

/// The next final response that arrives on `sock` (provisional ones and anything unparsable skipped).
pub fn final_response(sock: &UdpSocket) -> Response {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = sock.recv_from(&mut buf).expect("an answer");
        if let Ok(Message::Response(r)) = wire::parse(&buf[..n]) {
            if r.status >= 200 {
                return r;
            }
        }
    }
}
