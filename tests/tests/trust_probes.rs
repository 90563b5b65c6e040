//! The WAN monitor believes only the central site: a host on the branch LAN (127.0.0.2) that
//! answers the OPTIONS probes in its place, with guessed branches, can neither keep the branch
//! in pass-through while the WAN is dead nor push it into survival while the WAN is up. Each
//! forgery is counted (`sbactl status --json`: `forged_probe_answers`), and the phone registered
//! through the central site keeps working through the cut.
use holdfast_tests::branch::status_of;
use holdfast_tests::registrar::{Registrar, DOMAIN};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::sip_client::Ua;
use holdfast_tests::stub_central::StubCentral;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Sends forged probe answers to the registrar from 127.0.0.2 until stopped: `status` for
/// every probe id 1..=600 with a made-up token, as an attacker who knows the branch format would.
fn forger(registrar: SocketAddr, status: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let sock = UdpSocket::bind("127.0.0.2:0").expect("bind 127.0.0.2");
        let mut sent = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for id in 1..=600u64 {
                let answer = format!(
                    "SIP/2.0 {status} Forged\r\nVia: SIP/2.0/UDP {registrar};branch=z9hG4bK-wan-{id}-{:032x};rport\r\n\
                     From: <sip:holdfast-wan@{DOMAIN}>;tag=x\r\nTo: <sip:central>;tag=y\r\nCall-ID: wan-{id}-x@{DOMAIN}\r\n\
                     CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                    u128::from(id) * 0x9e37_79b9
                );
                let _ = sock.send_to(answer.as_bytes(), registrar);
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        sent
    })
}

fn mode(reg: &Registrar) -> String {
    status_of(&reg.db).and_then(|s| s["mode"].as_str().map(str::to_string)).unwrap_or_default()
}

fn wait_mode(reg: &Registrar, want: &str, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < within {
        if mode(reg) == want {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn forged_probe_answers_neither_hold_nor_force_the_wan_state() {
    let scratch = Scratch::new("trust-probes");
    let central = StubCentral::start();
    let reg = Registrar::start(
        &scratch,
        &format!("\n[central]\nproxies = [\"{}\"]\nbranch_expires = 60\n", central.addr),
        &[],
    );
    assert!(wait_mode(&reg, "pass-through", Duration::from_secs(10)).is_some(), "no pass-through: {}", mode(&reg));

    // The phone registers through the central site.
    let mut phone = Ua::new(reg.addr, "alice", DOMAIN);
    let ok = phone.request(600, None);
    assert_eq!(ok.status, 200, "{}", ok.reason);
    assert_eq!(central.registers(), 1);

    // WAN up, forged 503s for two seconds: still pass-through.
    let stop = Arc::new(AtomicBool::new(false));
    let attack = forger(reg.addr, 503, stop.clone());
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let sent_503 = attack.join().expect("forger");
    assert_eq!(mode(&reg), "pass-through", "forged 503s pushed the branch into survival");

    // WAN dead, forged 200s all the while: survival within 3 s all the same.
    let stop = Arc::new(AtomicBool::new(false));
    let attack = forger(reg.addr, 200, stop.clone());
    std::thread::sleep(Duration::from_millis(300));
    central.cut();
    let took = wait_mode(&reg, "survival", Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let sent_200 = attack.join().expect("forger");
    assert!(took.is_some(), "forged 200s held the branch in {} with the WAN dead", mode(&reg));
    eprintln!("survival {:?} after the cut, {sent_503} forged 503s and {sent_200} forged 200s sent", took.unwrap_or_default());

    let status = status_of(&reg.db).expect("status");
    let forged = status["forged_probe_answers"].as_u64().expect("forged_probe_answers in status --json");
    assert!(forged > 0, "forgeries not counted: {status}");
    assert_eq!(status["wan_counters"]["successes"].as_u64().map(|s| s > 0), Some(true), "{status}");

    // The real phone refreshes its binding in survival.
    let refreshed = phone.request(600, None);
    assert_eq!(refreshed.status, 200, "{}", refreshed.reason);
}
