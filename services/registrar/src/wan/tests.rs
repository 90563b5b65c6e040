use super::*;
use holdfast_sip::message::{HeaderName, Message, Method};
use holdfast_sip::transport::Protocol;
use holdfast_sip::wire;

const A: &str = "10.77.2.2:5060";
const B: &str = "10.77.2.3:5060";

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

const KEY: [u8; 32] = [9; 32];

/// The answer a probe's target gives: the probe's id and token back.
fn answer(probe: &Probe) -> ProbeAnswer {
    ProbeAnswer { id: probe.id, token: probe.token.clone() }
}

fn config(targets: &[&str]) -> WanConfig {
    WanConfig { targets: targets.iter().map(|t| addr(t)).collect(), ..WanConfig::default() }
}

/// What the simulated network does with a probe sent at `sent` (seconds since start) to
/// `target`: answer with a status after a delay, or lose it.
enum Fate {
    Answer { status: u16, after: Duration },
    Lost,
    TransportError,
}

/// Drives a monitor in simulated time the way the server's event loop will: sleep until the
/// next timer or delivery, handle it, send what is due, collect events.
struct Sim {
    monitor: WanMonitor,
    start: Instant,
    now: Instant,
    in_flight: Vec<(Instant, Probe, u16)>,
    events: Vec<WanEvent>,
}

impl Sim {
    fn new(config: WanConfig) -> Sim {
        let start = Instant::now();
        Sim { monitor: WanMonitor::new(config, start, KEY).expect("valid config"), start, now: start, in_flight: Vec::new(), events: Vec::new() }
    }

    fn secs(&self, t: Instant) -> f64 {
        (t - self.start).as_secs_f64()
    }

    /// Runs until `until` seconds; `net` decides each probe's fate from its send time and target.
    fn run(&mut self, until: f64, mut net: impl FnMut(f64, SocketAddr) -> Fate) {
        let end = self.start + Duration::from_secs_f64(until);
        for _ in 0..100_000 {
            let delivery = self.in_flight.iter().map(|d| d.0).min();
            let next = match (self.monitor.next_timeout(), delivery) {
                (Some(t), Some(d)) => t.min(d),
                (t, d) => t.or(d).expect("a monitor always has a next timeout"),
            };
            if next > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(next);
            let now = self.now;
            let (due, later): (Vec<_>, Vec<_>) = self.in_flight.drain(..).partition(|d| d.0 <= now);
            self.in_flight = later;
            for (_, probe, status) in due {
                self.monitor.on_response(&answer(&probe), probe.target, status, now);
            }
            self.monitor.handle_timeout(now);
            while let Some(probe) = self.monitor.poll_probe(now) {
                match net(self.secs(now), probe.target) {
                    Fate::Answer { status, after } => self.in_flight.push((now + after, probe, status)),
                    Fate::Lost => {}
                    Fate::TransportError => self.monitor.on_transport_error(probe.id, now),
                }
            }
            while let Some(e) = self.monitor.poll_event() {
                self.events.push(e);
            }
        }
        panic!("simulation did not reach {until} s");
    }

    fn event_times(&self) -> Vec<(&'static str, f64)> {
        self.events
            .iter()
            .map(|e| match *e {
                WanEvent::Down { at } => ("down", self.secs(at)),
                WanEvent::Up { at } => ("up", self.secs(at)),
            })
            .collect()
    }
}

fn ok() -> Fate {
    Fate::Answer { status: 200, after: Duration::from_millis(20) }
}

/// The WAN dies at `cut` seconds and comes back at `back`.
fn outage(cut: f64, back: f64) -> impl FnMut(f64, SocketAddr) -> Fate {
    move |t, _| if t >= cut && t < back { Fate::Lost } else { ok() }
}

#[test]
fn defaults_match_the_issue() {
    let c = WanConfig::default();
    assert_eq!((c.interval, c.timeout, c.down_after, c.up_after), (Duration::from_millis(400), Duration::from_millis(800), 3, 5));
    assert_eq!(c.initial, WanState::Up);
}

#[test]
fn dead_wan_is_detected_within_3_s_whatever_the_phase() {
    let mut worst: f64 = 0.0;
    // Cut at every 10 ms phase of the probe cadence; responses in flight at the cut are lost too.
    for phase in 0..40 {
        let cut = 5.0 + f64::from(phase) * 0.01;
        let mut sim = Sim::new(config(&[A]));
        sim.run(12.0, |t, _| if t + 0.02 >= cut { Fate::Lost } else { ok() });
        let ev = sim.event_times();
        assert_eq!(ev.len(), 1, "phase {phase}: {ev:?}");
        assert_eq!(ev[0].0, "down");
        worst = worst.max(ev[0].1 - cut);
        assert_eq!(sim.monitor.state(), WanState::Down);
        assert_eq!(sim.monitor.counters().transitions, 1);
    }
    // timeout + (down_after - 1) × interval, plus at most one interval of phase.
    assert!(worst <= 2.0 + 1e-9, "worst detection {worst} s");
    assert!(worst > 1.5, "worst detection {worst} s is implausibly fast");
}

#[test]
fn one_or_two_lost_probes_do_not_take_the_wan_down() {
    let mut sim = Sim::new(config(&[A]));
    let mut n = 0;
    // Lose two probes of every five, never three in a row.
    sim.run(30.0, |_, _| {
        n += 1;
        if n % 5 < 2 { Fate::Lost } else { ok() }
    });
    assert!(sim.events.is_empty(), "{:?}", sim.event_times());
    assert_eq!(sim.monitor.state(), WanState::Up);
    assert!(sim.monitor.counters().failures > 20);
}

#[test]
fn up_again_only_after_m_consecutive_successes() {
    let mut sim = Sim::new(config(&[A]));
    sim.run(20.0, outage(2.0, 10.0));
    let ev = sim.event_times();
    assert_eq!(ev.iter().map(|e| e.0).collect::<Vec<_>>(), ["down", "up"]);
    // The first probe at or after 10.0 s is answered 20 ms later; four more at 400 ms spacing.
    let first_good = (10.0f64 / 0.4).ceil() * 0.4;
    assert!((ev[1].1 - (first_good + 4.0 * 0.4 + 0.02)).abs() < 1e-6, "{ev:?}");
}

#[test]
fn a_failure_during_recovery_restarts_the_count() {
    let mut sim = Sim::new(config(&[A]));
    // Down at 2 s; from 10 s every fifth probe is lost, so five successes never line up.
    let mut n = 0;
    sim.run(30.0, |t, _| {
        if t < 2.0 {
            return ok();
        }
        if t < 10.0 {
            return Fate::Lost;
        }
        n += 1;
        if n % 5 == 0 { Fate::Lost } else { ok() }
    });
    assert_eq!(sim.event_times().iter().map(|e| e.0).collect::<Vec<_>>(), ["down"]);
    assert_eq!(sim.monitor.state(), WanState::Down);
}

#[test]
fn flapping_wan_gives_one_event_per_real_change() {
    let mut sim = Sim::new(config(&[A]));
    // Ten outages of 4 s with 6 s of health between them.
    sim.run(100.0, |t, _| if t % 10.0 >= 4.0 && t % 10.0 < 8.0 { Fate::Lost } else { ok() });
    let kinds: Vec<_> = sim.event_times().iter().map(|e| e.0).collect();
    assert_eq!(kinds.len(), 20, "{kinds:?}");
    assert!(kinds.chunks(2).all(|c| c == ["down", "up"]), "{kinds:?}");
    assert_eq!(sim.monitor.counters().transitions, 20);
}

#[test]
fn status_503_and_transport_errors_fail_other_finals_succeed() {
    for (status, down) in [(503, true), (200, false), (404, false), (405, false), (483, false), (500, false), (603, false)] {
        let mut sim = Sim::new(config(&[A]));
        sim.run(5.0, |_, _| Fate::Answer { status, after: Duration::from_millis(5) });
        assert_eq!(sim.monitor.state() == WanState::Down, down, "status {status}");
    }
    let mut sim = Sim::new(config(&[A]));
    sim.run(5.0, |_, _| Fate::TransportError);
    assert_eq!(sim.event_times().len(), 1);
    // Three probes, sent at 0, 0.4 and 0.8 s, each failing at once.
    assert!((sim.event_times()[0].1 - 0.8).abs() < 1e-6, "{:?}", sim.event_times());
}

#[test]
fn provisional_responses_are_not_verdicts() {
    let mut sim = Sim::new(config(&[A]));
    sim.run(5.0, |_, _| Fate::Answer { status: 100, after: Duration::from_millis(5) });
    assert_eq!(sim.monitor.state(), WanState::Down);
    assert_eq!(sim.monitor.counters().successes, 0);
}

#[test]
fn late_responses_after_a_timeout_are_ignored() {
    let mut sim = Sim::new(config(&[A]));
    // Every answer comes 900 ms after its probe, past the 800 ms timeout: a WAN this slow is
    // as good as dead for calls, and the late 200s must not bring it back.
    sim.run(10.0, |_, _| Fate::Answer { status: 200, after: Duration::from_millis(900) });
    assert_eq!(sim.event_times().iter().map(|e| e.0).collect::<Vec<_>>(), ["down"]);
    let c = sim.monitor.counters();
    assert_eq!(c.successes, 0);
    assert!(c.ignored_responses >= 20, "{c:?}");
    // Every probe timed out (or is still waiting); every delivered answer was ignored.
    assert_eq!(c.failures + sim.monitor.outstanding.len() as u64, c.probes_sent);
    assert_eq!(c.ignored_responses + sim.in_flight.len() as u64, c.probes_sent);
}

#[test]
fn any_live_target_keeps_the_wan_up() {
    let mut sim = Sim::new(config(&[A, B]));
    let (a, b) = (addr(A), addr(B));
    // A dies at 2 s; B dies at 6 s; A returns at 10 s.
    sim.run(20.0, |t, target| {
        let dead = (target == a && (2.0..10.0).contains(&t)) || (target == b && t >= 6.0);
        if dead { Fate::Lost } else { ok() }
    });
    let ev = sim.event_times();
    assert_eq!(ev.iter().map(|e| e.0).collect::<Vec<_>>(), ["down", "up"], "{ev:?}");
    assert!(ev[0].1 > 6.0 && ev[0].1 <= 8.0, "{ev:?}");
    assert!(ev[1].1 > 10.0 && ev[1].1 <= 12.5, "{ev:?}");
    let states: Vec<_> = sim.monitor.target_states().collect();
    assert_eq!(states, [(a, WanState::Up), (b, WanState::Down)]);
    // Both targets are probed at the same cadence: at 0, 0.4, … 20.0 s.
    assert_eq!(sim.monitor.counters().probes_sent, 2 * 51);
}

#[test]
fn starting_down_waits_for_m_successes() {
    let mut sim = Sim::new(WanConfig { initial: WanState::Down, ..config(&[A]) });
    assert_eq!(sim.monitor.state(), WanState::Down);
    sim.run(5.0, |_, _| ok());
    let ev = sim.event_times();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, "up");
    assert!((ev[0].1 - (4.0 * 0.4 + 0.02)).abs() < 1e-6, "{ev:?}");
}

#[test]
fn a_late_caller_gets_no_burst_of_probes() {
    let start = Instant::now();
    let mut m = WanMonitor::new(config(&[A]), start, KEY).unwrap();
    assert!(m.poll_probe(start).is_some());
    assert!(m.poll_probe(start).is_none());
    assert_eq!(m.next_timeout(), Some(start + Duration::from_millis(400)));
    let late = start + Duration::from_secs(3);
    assert!(m.poll_probe(late).is_some());
    assert!(m.poll_probe(late).is_none());
    assert_eq!(m.next_timeout(), Some(start + Duration::from_millis(800)), "the first probe's deadline");
    m.handle_timeout(late);
    assert_eq!(m.next_timeout(), Some(late + Duration::from_millis(400)));
}

#[test]
fn bad_configs_are_refused() {
    let now = Instant::now();
    let cases = [
        (WanConfig::default(), WanConfigError::NoTargets),
        (WanConfig { interval: Duration::ZERO, ..config(&[A]) }, WanConfigError::ZeroInterval),
        (WanConfig { timeout: Duration::ZERO, ..config(&[A]) }, WanConfigError::ZeroTimeout),
        (WanConfig { down_after: 0, ..config(&[A]) }, WanConfigError::ZeroThreshold),
        (WanConfig { up_after: 0, ..config(&[A]) }, WanConfigError::ZeroThreshold),
    ];
    for (c, err) in cases {
        assert_eq!(WanMonitor::new(c, now, KEY).unwrap_err(), err);
    }
}

#[test]
fn options_request_is_valid_sip_and_its_response_maps_back() {
    let probe = Probe { id: 42, target: addr(A), token: "0123abcd".repeat(4) };
    let request = options_request(&probe, addr("10.77.2.1:5060"), Protocol::Udp, "branch.example");
    let bytes = request.to_bytes().unwrap();
    let Ok(Message::Request(parsed)) = wire::parse(&bytes) else {
        panic!("unparseable probe: {}", String::from_utf8_lossy(&bytes));
    };
    assert_eq!(parsed.method, Method::OPTIONS);
    assert_eq!(parsed.uri.to_string(), "sip:10.77.2.2:5060");
    let branch = parsed.top_via().unwrap().branch().unwrap().to_string();
    assert!(branch.starts_with("z9hG4bK-wan-42-"), "{branch}");
    let response = parsed.response(200);
    let Ok(Message::Response(back)) = wire::parse(&response.to_bytes().unwrap()) else { panic!("unparseable response") };
    assert_eq!(probe_answer(&back), Some(answer(&probe)));
    // Two probes with the same id (a restarted branch, keyed afresh) differ on the wire.
    let restarted = WanMonitor::new(config(&[A]), Instant::now(), [1; 32]).unwrap().poll_probe(Instant::now()).unwrap();
    let first = WanMonitor::new(config(&[A]), Instant::now(), KEY).unwrap().poll_probe(Instant::now()).unwrap();
    assert_eq!(restarted.id, first.id);
    let (a, b) = (options_request(&first, addr("10.77.2.1:5060"), Protocol::Udp, "b"), options_request(&restarted, addr("10.77.2.1:5060"), Protocol::Udp, "b"));
    assert_ne!(a.top_via().unwrap().branch(), b.top_via().unwrap().branch());
    assert_ne!(a.call_id().unwrap(), b.call_id().unwrap());
}

#[test]
fn responses_to_anything_else_are_not_probes() {
    let probe = Probe { id: 7, target: addr("[2001:db8::1]:5060"), token: "feed".repeat(8) };
    let request = options_request(&probe, addr("[2001:db8::2]:5070"), Protocol::Tls, "branch.example");
    assert_eq!(request.uri.to_string(), "sip:[2001:db8::1]:5060");
    assert!(request.headers.get(&HeaderName::Via).unwrap().starts_with("SIP/2.0/TLS [2001:db8::2]:5070;"));
    let mut other = request.clone();
    other.headers.set(HeaderName::Via, "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK77");
    assert_eq!(probe_answer(&other.response(200)), None);
    let mut register = request.clone();
    register.headers.set(HeaderName::CSeq, "1 REGISTER");
    assert_eq!(probe_answer(&register.response(200)), None);
    let mut mangled = request.clone();
    mangled.headers.set(HeaderName::Via, "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-wan-x1-abc");
    assert_eq!(probe_answer(&mangled.response(200)), None);
    let mut no_via = request.response(200);
    no_via.headers.remove_all(&HeaderName::Via);
    assert_eq!(probe_answer(&no_via), None);
    assert_eq!(probe_answer(&request.response(200)), Some(answer(&probe)));
}

/// A host on the LAN answering in the central site's place: with guessed tokens, or with the
/// right token from its own address (it saw a probe), or from the target's address with
/// another probe's token. None of it counts; every piece is counted as forged.
#[test]
fn forged_answers_neither_keep_the_wan_up_nor_take_it_down() {
    let start = Instant::now();
    let mut m = WanMonitor::new(config(&[A]), start, KEY).unwrap();
    let lan_host = addr("10.77.1.66:5060");
    let mut forged = 0;
    let mut now = start;
    // The WAN is dead: no genuine answer ever comes; the forger answers every probe.
    while now < start + Duration::from_secs(3) {
        m.handle_timeout(now);
        while let Some(p) = m.poll_probe(now) {
            let guessed = ProbeAnswer { id: p.id, token: "00".repeat(16) };
            m.on_response(&guessed, addr(A), 200, now);
            m.on_response(&answer(&p), lan_host, 200, now);
            let other = ProbeAnswer { id: p.id + 1, token: p.token.clone() };
            m.on_response(&other, addr(A), 200, now);
            forged += 3;
        }
        now += Duration::from_millis(10);
    }
    assert_eq!(m.state(), WanState::Down, "forgeries kept the WAN up");
    assert_eq!(m.counters().forged, forged);
    assert_eq!(m.counters().successes, 0);

    // The WAN is up: forged 503s from the LAN host do not take it down.
    let mut m = WanMonitor::new(config(&[A]), start, KEY).unwrap();
    let mut now = start;
    while now < start + Duration::from_secs(3) {
        m.handle_timeout(now);
        while let Some(p) = m.poll_probe(now) {
            m.on_response(&answer(&p), lan_host, 503, now);
            m.on_response(&ProbeAnswer { id: p.id, token: "ab".repeat(16) }, addr(A), 503, now);
            m.on_response(&answer(&p), addr(A), 200, now);
        }
        now += Duration::from_millis(10);
    }
    assert_eq!(m.state(), WanState::Up, "forged 503s took the WAN down");
    assert_eq!(m.counters().failures, 0);
    assert!(m.counters().forged > 0);
}
