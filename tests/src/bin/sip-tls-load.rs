//! sip-tls-load: the load of tests/bench/register over TLS (Debian's sipp has no TLS). Two modes:
//!
//! - `register`: `--connections` TLS connections held open as phones hold theirs, each
//!   registering its share of the users (user0..userN-1, passwords pw0..) in turn, one REGISTER
//!   at a time per connection: unauthenticated, then (on a 401) with the digest answer. Counts
//!   the 200s.
//! - `handshake`: `--connections` tasks that each connect, complete a full TLS handshake (no
//!   session resumption: every one is a new key exchange and certificate check) and close, over
//!   and over. Counts the handshakes.
//!
//! Runs for `--seconds` (a bounded load: it stops by itself) and prints one line:
//! `ok=N failed=N handshakes=N seconds=S`.
use clap::{Parser, ValueEnum};
use holdfast_sip::auth::DigestClient;
use holdfast_sip::message::{HeaderName, Message, Method, Request, Response, Uri};
use holdfast_sip::transport::rustls::pki_types::{CertificateDer, ServerName};
use holdfast_sip::transport::rustls::{self, ClientConfig, RootCertStore};
use holdfast_sip::wire::{StreamDecoder, StreamItem};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

#[derive(Parser)]
struct Args {
    #[arg(long, value_enum)]
    mode: Mode,
    /// The server's TLS address.
    #[arg(long)]
    server: SocketAddr,
    /// The CA (PEM) the server's certificate chains to.
    #[arg(long)]
    ca: PathBuf,
    /// The name the server's certificate carries.
    #[arg(long)]
    name: String,
    #[arg(long)]
    domain: String,
    #[arg(long, default_value_t = 1000)]
    users: u32,
    #[arg(long, default_value_t = 100)]
    connections: u32,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Each answer may take this long before the connection counts as failed.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    Register,
    Handshake,
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
    handshakes: AtomicU64,
}

struct Load {
    args: Args,
    connector: TlsConnector,
    name: ServerName<'static>,
    counts: Counts,
    until: Instant,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let args = Args::parse();
    let provider = holdfast_tls::provider();
    let mut roots = RootCertStore::empty();
    let pem = std::fs::read(&args.ca)?;
    for cert in rustls_pemfile_certs(&pem)? {
        roots.add(cert)?;
    }
    let mut config = ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions()?.with_root_certificates(roots).with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    let name = ServerName::try_from(args.name.clone())?;
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let load = Arc::new(Load { args, connector: TlsConnector::from(Arc::new(config)), name, counts: Counts::default(), until });
    let started = Instant::now();
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..load.args.connections {
            let load = load.clone();
            tasks.push(tokio::spawn(async move {
                match load.args.mode {
                    Mode::Register => load.phone(i).await,
                    Mode::Handshake => load.handshakes().await,
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    let c = &load.counts;
    println!(
        "ok={} failed={} handshakes={} seconds={:.3}",
        c.ok.load(Relaxed),
        c.failed.load(Relaxed),
        c.handshakes.load(Relaxed),
        started.elapsed().as_secs_f64().min(load.args.seconds as f64)
    );
    Ok(())
}

/// The certificates of a PEM file (rustls' own PEM reader).
fn rustls_pemfile_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    use rustls::pki_types::pem::PemObject;
    Ok(CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>()?)
}

impl Load {
    async fn connect(&self) -> Result<TlsStream<TcpStream>, Error> {
        let tcp = TcpStream::connect(self.args.server).await?;
        tcp.set_nodelay(true)?;
        let tls = self.connector.connect(self.name.clone(), tcp).await?;
        self.counts.handshakes.fetch_add(1, Relaxed);
        Ok(tls)
    }

    async fn handshakes(&self) {
        while Instant::now() < self.until {
            match self.connect().await {
                Ok(mut tls) => {
                    let _ = tls.shutdown().await;
                }
                Err(_) => {
                    self.counts.failed.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// One phone connection registering users `first`, `first + connections`, ... in turn; a
    /// broken connection is counted and made again.
    async fn phone(&self, first: u32) {
        let mine: Vec<u32> = (first..self.args.users).step_by(self.args.connections as usize).collect();
        if mine.is_empty() {
            return;
        }
        let mut cseq = 0u32;
        let mut next = 0usize;
        while Instant::now() < self.until {
            let Ok(tls) = self.connect().await else {
                self.counts.failed.fetch_add(1, Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let mut conn = Conn { tls, decoder: StreamDecoder::new(), timeout: Duration::from_millis(self.args.timeout_ms) };
            let local = conn.tls.get_ref().0.local_addr().ok();
            while Instant::now() < self.until {
                let user = mine[next % mine.len()];
                next += 1;
                cseq += 2;
                match self.register(&mut conn, user, cseq, local).await {
                    Ok(true) => self.counts.ok.fetch_add(1, Relaxed),
                    Ok(false) => self.counts.failed.fetch_add(1, Relaxed),
                    Err(_) => {
                        self.counts.failed.fetch_add(1, Relaxed);
                        break;
                    }
                };
            }
        }
    }

    /// One registration: the REGISTER, and the answer to its challenge if there is one.
    async fn register(&self, conn: &mut Conn, user: u32, cseq: u32, local: Option<SocketAddr>) -> Result<bool, Error> {
        let local = local.map_or_else(|| "0.0.0.0:0".to_string(), |a| a.to_string());
        let domain = &self.args.domain;
        let build = |seq: u32, authorization: Option<&str>| {
            let mut r = Request::new(Method::REGISTER, Uri::parse(&format!("sip:{domain}")).unwrap_or_else(|_| Uri::Other(domain.clone())));
            let h = &mut r.headers;
            h.add(HeaderName::Via, format!("SIP/2.0/TLS {local};branch=z9hG4bK-l{user}-{seq};rport"));
            h.add(HeaderName::From, format!("<sip:user{user}@{domain}>;tag=l{user}"));
            h.add(HeaderName::To, format!("<sip:user{user}@{domain}>"));
            h.add(HeaderName::CallId, format!("load-{user}@{local}"));
            h.add(HeaderName::CSeq, format!("{seq} REGISTER"));
            h.add(HeaderName::Contact, format!("<sip:user{user}@{local};transport=tls>"));
            h.add(HeaderName::MaxForwards, "70");
            h.add(HeaderName::Expires, "3600");
            if let Some(a) = authorization {
                h.add(HeaderName::Authorization, a);
            }
            r
        };
        let first = conn.exchange(&build(cseq - 1, None)).await?;
        let answer = match first.status {
            200 => return Ok(true),
            401 => {
                let values: Vec<&str> = first.headers.get_all(&HeaderName::WwwAuthenticate).collect();
                let Some(chosen) = DigestClient::preferred_challenge(&values) else { return Ok(false) };
                let uri = format!("sip:{domain}");
                let password = format!("pw{user}");
                match DigestClient::authorize(chosen, "REGISTER", &uri, &format!("user{user}"), &password, "0a4f113b", 1) {
                    Ok(a) => a,
                    Err(_) => return Ok(false),
                }
            }
            _ => return Ok(false),
        };
        Ok(conn.exchange(&build(cseq, Some(&answer))).await?.status == 200)
    }
}

struct Conn {
    tls: TlsStream<TcpStream>,
    decoder: StreamDecoder,
    timeout: Duration,
}

impl Conn {
    /// Sends `request` and reads until its final response.
    async fn exchange(&mut self, request: &Request) -> Result<Response, Error> {
        self.tls.write_all(&request.to_bytes()?).await?;
        let mut buf = [0u8; 8192];
        loop {
            while let Some(item) = self.decoder.next() {
                if let StreamItem::Message(Message::Response(r)) = item? {
                    if r.status >= 200 {
                        return Ok(r);
                    }
                }
            }
            let n = tokio::time::timeout(self.timeout, self.tls.read(&mut buf)).await??;
            if n == 0 {
                return Err("closed".into());
            }
            self.decoder.push(&buf[..n]);
        }
    }
}
