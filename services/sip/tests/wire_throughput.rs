//! Parse and serialize throughput of a typical REGISTER and its 200 OK. Ignored by default:
//! `cargo test --release -p holdfast-sip --test wire_throughput -- --ignored --nocapture`.
use holdfast_sip::message::Message;
use holdfast_sip::wire;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts allocations: a figure that, unlike rates, holds on a busy machine.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(op: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    op();
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

const REGISTER: &[u8] = b"REGISTER sip:branch.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.17:5060;branch=z9hG4bK-524287-1---c8a3b6d2e1f0a9b8;rport\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:1001@192.0.2.17:5060;rinstance=6a1f2c3d4e5f6071;transport=UDP>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000000000001>\";reg-id=1\r\n\
To: <sip:1001@branch.example.com>\r\n\
From: \"Desk 1001\" <sip:1001@branch.example.com>;tag=8d1f5a2b\r\n\
Call-ID: Zjk3NjQ2ZWI3YzM5NDk0MjE0NmQzZDAxN2RiYzg2ZmE\r\n\
CSeq: 2 REGISTER\r\n\
Expires: 3600\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE\r\n\
Supported: replaces, outbound, path, gruu\r\n\
User-Agent: Example Phone 5.3.1\r\n\
Authorization: Digest username=\"1001\",realm=\"branch.example.com\",nonce=\"5f2a7c1e9b3d4a6f\",uri=\"sip:branch.example.com\",response=\"0a4f113eab0e9d2b6c4a1f0e7d3c2b1a\",algorithm=MD5,cnonce=\"a1b2c3d4\",qop=auth,nc=00000001\r\n\
Allow-Events: presence, kpml, talk\r\n\
Content-Length: 0\r\n\
\r\n";

/// CPU time of this thread (first field of schedstat), which holds on a busy machine where
/// wall-clock rates do not.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(stat.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0))
}

/// Returns operations per CPU-second.
fn rate(what: &str, mut op: impl FnMut()) -> f64 {
    // Warm up, then run for a bounded time and count.
    for _ in 0..1_000 {
        op();
    }
    let limit = Duration::from_secs(2);
    let started = Instant::now();
    let cpu_start = thread_cpu();
    let mut n = 0u64;
    while started.elapsed() < limit && n < 50_000_000 {
        for _ in 0..1_000 {
            op();
        }
        n += 1_000;
    }
    let wall = n as f64 / started.elapsed().as_secs_f64();
    let cpu = (thread_cpu() - cpu_start).as_secs_f64();
    let per_cpu_second = if cpu > 0.0 { n as f64 / cpu } else { wall };
    println!("{what}: {per_cpu_second:.0}/s of CPU, {:.2} µs CPU each ({wall:.0}/s wall clock)", 1e6 / per_cpu_second);
    per_cpu_second
}

#[test]
#[ignore]
fn parse_and_serialize_throughput() {
    let Ok(Message::Request(request)) = wire::parse(REGISTER) else { panic!("REGISTER does not parse") };
    let mut ok = request.response(200);
    ok.headers.add(
        holdfast_sip::message::HeaderName::Contact,
        "<sip:1001@192.0.2.17:5060;rinstance=6a1f2c3d4e5f6071;transport=UDP>;expires=3600",
    );
    let ok_bytes = ok.to_bytes().unwrap();
    let parse_allocations = allocations(|| drop(black_box(wire::parse(REGISTER))));
    println!(
        "allocations: parse REGISTER {parse_allocations}, parse 200 OK {}, serialize 200 OK {}",
        allocations(|| drop(black_box(wire::parse(&ok_bytes)))),
        allocations(|| drop(black_box(ok.to_bytes())))
    );
    let parse = rate("parse REGISTER", || drop(black_box(wire::parse(black_box(REGISTER)))));
    rate("parse 200 OK", || drop(black_box(wire::parse(black_box(&ok_bytes)))));
    rate("serialize 200 OK", || drop(black_box(black_box(&ok).to_bytes())));
    rate("parse REGISTER + serialize 200 OK", || {
        let m = wire::parse(black_box(REGISTER)).unwrap();
        drop(black_box(m));
        drop(black_box(black_box(&ok).to_bytes()));
    });
    // The registrar's goal (issue 2) needs tens of thousands per second in all; in release the
    // wire layer must leave it the lion's share of a core.
    assert!(parse > 20_000.0, "parse too slow: {parse:.0}/s");
}
