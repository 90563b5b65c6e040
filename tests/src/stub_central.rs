//! A stand-in for the central site on loopback, for tests that need a WAN that can die at a
//! given moment without namespaces: it answers the WAN monitor's OPTIONS and grants every
//! REGISTER (200 OK listing its contacts) until it is told the WAN is cut, then stays silent.
//! Where the central site's own behaviour matters (digest, calls), the tests run Kamailio.
use holdfast_sip::message::{HeaderName, Message, Method};
use holdfast_sip::wire;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct StubCentral {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    registers: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StubCentral {
    pub fn start() -> StubCentral {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind the stub central");
        sock.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        let addr = sock.local_addr().expect("addr");
        let (cut, stop, registers) = (Arc::default(), Arc::default(), Arc::default());
        let (c, s, r): (Arc<AtomicBool>, Arc<AtomicBool>, Arc<AtomicU64>) =
            (Arc::clone(&cut), Arc::clone(&stop), Arc::clone(&registers));
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
                if c.load(Ordering::Relaxed) {
                    continue;
                }
                let Ok(Message::Request(req)) = wire::parse(&buf[..n]) else { continue };
                let mut ok = req.response(200);
                if req.method == Method::REGISTER {
                    r.fetch_add(1, Ordering::Relaxed);
                    for contact in req.headers.get_all(&HeaderName::Contact) {
                        ok.headers.add(HeaderName::Contact, format!("{contact};expires=600"));
                    }
                }
                let _ = sock.send_to(&ok.to_bytes().expect("a writable 200"), from);
            }
        });
        StubCentral { addr, cut, stop, registers, thread: Some(thread) }
    }

    /// The WAN dies: nothing is answered any more.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::Relaxed);
    }

    /// REGISTERs granted so far.
    pub fn registers(&self) -> u64 {
        self.registers.load(Ordering::Relaxed)
    }
}

impl Drop for StubCentral {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
