//! The relay's RTP counters on sba-web's /metrics, end to end (issue 13): the appliance on
//! image/run-local's embedded defaults (sba-web on http://127.0.0.1:8080), a baresip phone
//! sending a tone calls a PSTN number; the simulated exchange answers with its tone and echoes.
//! While the call talks, sba_rtp_packets_relayed_total climbs; then the network between the
//! call's parties and the relay loses every tenth RTP packet on its way in (an iptables rule in
//! the test's own namespace: the INPUT chain, so no sender is told), and
//! sba_rtp_packets_lost_total grows by exactly the packets that rule dropped. After the hang-up
//! neither counter goes back (the released session's counts stay in the totals).
use holdfast_sip::transport::Protocol;
use holdfast_tests::local::{LocalAppliance, DOMAIN};
use holdfast_tests::phones::{Baresip, BaresipAudio, Event, Phone, PhoneConfig};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::wait::wait_until;
use holdfast_tests::web::{parse, sample};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
/// sba-mediation's relay ports on the embedded default (its RTP on the even ones).
const RELAY_PORTS: &str = "30000:30999";
/// Every tenth RTP packet into the relay is lost.
const EVERY: &str = "10";

/// sba-web's /metrics, once it answers.
fn metrics(app: &LocalAppliance) -> Option<prometheus_parse::Scrape> {
    let out = app.ns().output("curl", &["-sf", "--max-time", "5", "http://127.0.0.1:8080/metrics"]);
    out.status.success().then(|| parse(&String::from_utf8_lossy(&out.stdout)))
}

/// The relay's (relayed, lost) totals on /metrics.
fn rtp_totals(app: &LocalAppliance) -> Option<(f64, f64)> {
    let scrape = metrics(app)?;
    Some((sample(&scrape, "sba_rtp_packets_relayed_total", &[])?, sample(&scrape, "sba_rtp_packets_lost_total", &[])?))
}

fn iptables(app: &LocalAppliance, args: &[&str]) -> String {
    let out = app.ns().output("iptables", args);
    assert!(out.status.success(), "iptables {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The RTP the network loses on its way into the relay: every `EVERY`th UDP packet to an even
/// port of the relay's range (RTCP goes to the odd ones).
fn lose_rtp(app: &LocalAppliance) {
    let even_port = "0>>22&0x3C@0&0x1=0";
    iptables(app, &["-A", "INPUT", "-p", "udp", "--dport", RELAY_PORTS, "-m", "u32", "--u32", even_port, "-m", "statistic", "--mode", "nth", "--every", EVERY, "--packet", "0", "-j", "DROP"]);
}

/// The packets the loss rule dropped so far.
fn dropped(app: &LocalAppliance) -> u64 {
    let listing = iptables(app, &["-L", "INPUT", "-v", "-x", "-n"]);
    listing
        .lines()
        .find(|l| l.contains("DROP") && l.contains("statistic"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no loss rule in:\n{listing}"))
}

/// Stops the loss (an ACCEPT for all UDP ahead of the rule) and returns what the rule dropped.
fn stop_losing_rtp(app: &LocalAppliance) -> u64 {
    iptables(app, &["-I", "INPUT", "1", "-p", "udp", "-j", "ACCEPT"]);
    dropped(app)
}

#[test]
fn rtp_relayed_and_lost_move_on_metrics_during_a_real_call() {
    let scratch = Scratch::new("web-rtp");
    let mut app = LocalAppliance::start(&scratch.path);
    app.add_users(&[("3001", "secret-3001")]);
    let phone = PhoneConfig {
        user: "3001",
        password: "secret-3001",
        domain: DOMAIN,
        addr: "127.0.0.1:5066".parse().expect("address"),
        registrar: LocalAppliance::registrar_addr(),
        expires: 600,
        refresh: Duration::from_secs(600),
    };
    let mut baresip = Baresip::start_with(app.ns(), &scratch.path, &phone, 120, BaresipAudio::Tone(440), Protocol::Udp);
    wait_until("3001 registered", WAIT, || app.binding("3001").is_some());
    app.start_web();
    wait_until("sba-web's /metrics on http://127.0.0.1:8080", WAIT, || rtp_totals(&app).is_some());
    let (relayed_before, lost_before) = rtp_totals(&app).expect("/metrics");

    // The call: baresip's tone to the relay and on to sba-gateway, the exchange's back.
    baresip.dial("5551234567");
    assert!(baresip.wait(Event::Connected, 0, WAIT), "no answer from the PSTN:\n{}\n{}", baresip.console(), app.log("sba-mediation"));
    let relayed = || rtp_totals(&app).map_or(0.0, |(r, _)| r - relayed_before);
    // 50 packets a second each way: a second of talk relays well over 50.
    wait_until("relayed RTP on /metrics during the call", WAIT, || relayed() > 50.0);
    assert_eq!(rtp_totals(&app).map(|(_, l)| l - lost_before), Some(0.0), "RTP lost on loopback without any loss");

    // The network loses some of it for a while; the call goes on after, so every gap is seen.
    lose_rtp(&app);
    wait_until("the loss under way", WAIT, || dropped(&app) >= 20);
    let dropped = stop_losing_rtp(&app);
    let lost = || rtp_totals(&app).map_or(0.0, |(_, l)| l - lost_before);
    wait_until(&format!("{dropped} packets lost on /metrics"), WAIT, || lost() == dropped as f64);
    let (relayed_in_call, lost_in_call) = (relayed(), lost());

    baresip.hang_up();
    assert!(baresip.wait(Event::Ended, 0, WAIT), "{}", baresip.console());
    wait_until("the call released on /metrics", WAIT, || {
        metrics(&app).and_then(|m| sample(&m, "sba_calls_active", &[])) == Some(0.0)
    });
    assert!(relayed() >= relayed_in_call, "relayed went back after the call: {} < {relayed_in_call}", relayed());
    assert_eq!(lost(), lost_in_call, "the lost count changed after the call");
    eprintln!("relayed {} packets in the call, lost {dropped} of them on the way in (every {EVERY}th)", relayed());
}
