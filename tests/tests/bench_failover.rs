//! The failover benchmarks behind tests/bench/failover (ignored in the test run: they measure,
//! they do not judge). On the survivability topology, `failover` cuts the WAN and measures the
//! time to survival mode, to the first successful branch call and PSTN call, and from the
//! restore to pass-through, beside the industry's anchors; `flaps` runs 100 WAN flaps that each
//! reach survival and pass-through, with a call across every one, and counts calls dropped,
//! bindings lost and seconds per cycle.
use holdfast_tests::branch::{mode_of, Flap, Sba};
use holdfast_tests::kamailio::Kamailio;
use holdfast_tests::netns::{Topology, PSTN};
use holdfast_tests::phones::{call, Answerer, PhoneConfig};
use holdfast_tests::scratch::Scratch;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const DOMAIN: &str = "central.example";
const ROUNDS: usize = 3;

#[test]
#[ignore = "a benchmark: run tests/bench/failover"]
fn failover() {
    let scratch = Scratch::new("bench-failover");
    let topo = Topology::new();
    let kam = Kamailio::start(&topo, &scratch.path, DOMAIN, &[("alice", "a-pw"), ("bob", "b-pw")]);
    let sba = Sba::start(&topo, &scratch, DOMAIN, kam.addr.port(), "");
    let _carrier = Answerer::carrier(&topo.pstn, &scratch.path, SocketAddr::from((PSTN, 5060)), 600);
    let phone = |user: &'static str, password: &'static str, i: u8| PhoneConfig {
        user,
        password,
        domain: DOMAIN,
        addr: SocketAddr::from((Topology::phone_ip(i), 5060)),
        registrar: sba.addr,
        expires: 60,
        refresh: Duration::from_secs(2),
    };
    let alice = Answerer::phone(&topo.phones, &scratch.path, &phone("alice", "a-pw", 1), 600);
    let bob = Answerer::phone(&topo.phones, &scratch.path, &phone("bob", "b-pw", 2), 600);
    assert!(alice.wait_registrations(0, Duration::from_secs(10)) && bob.wait_registrations(0, Duration::from_secs(10)));

    // One attempt: a short call that must connect and hang up cleanly within 3 s.
    let attempt = |from: u8, port: u16, callee: &str| {
        call(&topo.phones, SocketAddr::from((Topology::phone_ip(from), port)), sba.addr, "alice", callee, DOMAIN, Duration::from_millis(100))
            .run(&scratch.path, 3)
            .status
            .success()
    };
    let first_success = |from: u8, port: u16, callee: &str, start: Instant| -> Duration {
        while start.elapsed() < Duration::from_secs(60) {
            if attempt(from, port, callee) {
                return start.elapsed();
            }
        }
        panic!("no successful call to {callee} within 60 s of the cut");
    };

    let mut rows = Vec::new();
    for round in 0..ROUNDS {
        let cut = Instant::now();
        topo.cut_wan();
        let db = sba.db.clone();
        let watcher = std::thread::spawn(move || {
            while cut.elapsed() < Duration::from_secs(30) {
                if mode_of(&db) == "survival" {
                    return Some(cut.elapsed());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            None
        });
        let branch_call = first_success(1, 5100 + round as u16, "bob", cut);
        let pstn_call = first_success(1, 5200 + round as u16, "+4930123456", cut);
        let to_survival = watcher.join().ok().flatten().expect("survival mode within 30 s");
        let restored = Instant::now();
        topo.restore_wan();
        let back = sba.wait_mode("pass-through", Duration::from_secs(30)).expect("failback");
        rows.push((to_survival, branch_call, pstn_call, restored.elapsed().min(back)));
        // Let the phones re-register through the central site before the next round.
        std::thread::sleep(Duration::from_secs(3));
    }

    println!("failover benchmark ({ROUNDS} rounds, WAN cut by nftables drop inside the test's namespaces)");
    println!("round  cut->survival  cut->1st branch call  cut->1st PSTN call  restore->pass-through");
    for (i, (s, b, p, f)) in rows.iter().enumerate() {
        println!("{:>5}  {:>13.2?}  {:>20.2?}  {:>18.2?}  {:>21.2?}", i + 1, s, b, p, f);
    }
    let worst_call = rows.iter().map(|r| r.1.max(r.2)).max().unwrap_or_default();
    println!("worst first successful call after the cut: {worst_call:.2?}");
    for (peer, secs) in [("Cisco SRST", 90.0), ("Microsoft SBA", 120.0), ("AudioCodes SAS", 60.0)] {
        println!("  vs {peer} (~{secs} s): {:.0}x faster", secs / worst_call.as_secs_f64());
    }
    println!("Microsoft SBA failback anchor 240 s; Holdfast failback worst {:.2?}", rows.iter().map(|r| r.3).max().unwrap_or_default());
}

/// Flaps in the `flaps` benchmark.
const FLAPS: usize = 100;

#[test]
#[ignore = "a benchmark: run tests/bench/failover"]
fn flaps() {
    let scratch = Scratch::new("bench-flaps");
    let topo = Topology::new();
    let kam = Kamailio::start(&topo, &scratch.path, DOMAIN, &[("alice", "a-pw"), ("bob", "b-pw")]);
    let sba = Sba::start(&topo, &scratch, DOMAIN, kam.addr.port(), "");
    let phone = |user: &'static str, password: &'static str, i: u8| PhoneConfig {
        user,
        password,
        domain: DOMAIN,
        addr: SocketAddr::from((Topology::phone_ip(i), 5060)),
        registrar: sba.addr,
        expires: 60,
        refresh: Duration::from_secs(2),
    };
    let alice = Answerer::phone(&topo.phones, &scratch.path, &phone("alice", "a-pw", 1), 1800);
    let bob = Answerer::phone(&topo.phones, &scratch.path, &phone("bob", "b-pw", 2), 1800);
    assert!(alice.wait_registrations(0, Duration::from_secs(10)) && bob.wait_registrations(0, Duration::from_secs(10)));
    let bindings = sba.registrations().len();
    let transitions = sba.transitions();

    // Each flap has a call of its own, answered before the cut and held past the restore: it
    // must end with its own BYE answered (sipp's success). Calls overlap, so each has a port.
    let mut flaps: Vec<Flap> = Vec::new();
    let mut calls = Vec::new();
    let mut dropped = 0;
    let ended_ok = |c: &mut holdfast_tests::netns::KillOnDrop| c.0.wait().map(|s| s.success()).unwrap_or(false);
    let started = Instant::now();
    for n in 0..FLAPS {
        let answered = bob.answered();
        let port = 5100 + (n % 20) as u16;
        let from = SocketAddr::from((Topology::phone_ip(1), port));
        calls.push(call(&topo.phones, from, sba.addr, "alice", "bob", DOMAIN, Duration::from_secs(6)).spawn(&scratch.path, 30));
        let deadline = Instant::now() + Duration::from_secs(10);
        while bob.answered() == answered {
            assert!(Instant::now() < deadline, "flap {n}: the call before the cut was not answered\n{}", sba.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        flaps.push(sba.flap(Duration::from_secs(15)));
        // Calls two flaps old have ended by now (6 s of talk): collect them, freeing their ports.
        while calls.len() > 2 {
            let mut oldest = calls.remove(0);
            dropped += usize::from(!ended_ok(&mut oldest));
        }
    }
    dropped += calls.iter_mut().map(|c| usize::from(!ended_ok(c))).sum::<usize>();
    let elapsed = started.elapsed();
    let lost = bindings.saturating_sub(sba.registrations().len());
    let stats = |f: fn(&Flap) -> Duration| {
        let mut v: Vec<Duration> = flaps.iter().map(f).collect();
        v.sort();
        (v[v.len() / 2], v[v.len() - 1])
    };
    let ((s50, smax), (p50, pmax), (c50, cmax)) = (stats(|f| f.to_survival), stats(|f| f.to_pass_through), stats(|f| f.cycle));
    println!("WAN flaps benchmark: {FLAPS} flaps, each held until survival, then until pass-through (nftables drop in the test's namespaces)");
    println!("  cut -> survival        median {s50:.2?}  max {smax:.2?}");
    println!("  restore -> pass-through median {p50:.2?}  max {pmax:.2?}");
    println!("  seconds per cycle       median {:.2}  max {:.2}  ({FLAPS} cycles in {:.0} s)", c50.as_secs_f64(), cmax.as_secs_f64(), elapsed.as_secs_f64());
    println!("  mode transitions counted {} (expected {})", sba.transitions() - transitions, 2 * FLAPS);
    println!("  calls across a flap: {FLAPS}, dropped {dropped}");
    println!("  bindings before {bindings}, lost {lost}");
}
