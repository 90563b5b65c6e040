//! The central site over TLS (issue 12): Kamailio with its tls module as the central site, asking
//! every TLS peer for a certificate from the test's CA (mutual TLS: the branch shows the appliance
//! certificate, installed with `sbactl tls install`). The branch checks Kamailio's certificate by
//! the name `[central] tls_name` gives. Pass-through REGISTERs, the WAN probe, and the central
//! site's requests back through the Path all go over TLS; the WAN is cut (survival) and restored
//! (failback over a new TLS connection). A central certificate for another name is refused, with
//! a log line naming the peer and the reason, and nothing reaches it.
use holdfast_tests::branch::Sba;
use holdfast_tests::kamailio::{Kamailio, KamailioTls};
use holdfast_tests::netns::{Topology, CENTRAL, SBA_LAN, SBA_WAN};
use holdfast_tests::no_new_connections::NoNewConnections;
use holdfast_tests::phones::{call, Answerer, Baresip, Event, Phone, PhoneConfig};
use holdfast_tests::pki::Pki;
use holdfast_tests::scratch::Scratch;
use holdfast_tests::sip_client::{register_authorization, Ua};
use holdfast_tests::tls_client::TlsUa;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const DOMAIN: &str = "central.example";
/// The name the central site's certificate carries and the branch checks.
const CENTRAL_NAME: &str = "sip.central.example";
const WAIT: Duration = Duration::from_secs(15);
const HOLD: Duration = Duration::from_millis(500);

fn phone_at(i: u8) -> SocketAddr {
    SocketAddr::from((Topology::phone_ip(i), 5060))
}

/// The branch's appliance certificate from the test CA, installed as `sbactl tls install` does,
/// in a directory of its own: it names the branch's LAN address (phones check it) and WAN
/// address (Kamailio checks it, in and out).
fn install_branch_certificate(pki: &Pki, scratch: &Scratch) -> PathBuf {
    let dir = scratch.path.join("sba-tls");
    pki.install_appliance("sba", &format!("DNS:sba.branch.example,IP:{SBA_LAN},IP:{SBA_WAN}"), &dir);
    dir
}

/// The registrar's keys for TLS: its listener with the installed certificate, and the central
/// site over TLS, checked by `tls_name` against the test CA.
fn tls_keys(tls_dir: &Path, ca: &Path, tls_name: &str) -> [String; 2] {
    [
        format!("tls_listen = \"0.0.0.0:5061\"\ntls_dir = \"{}\"\n", tls_dir.display()),
        format!("transport = \"tls\"\ntls_name = \"{tls_name}\"\ntls_ca = \"{}\"\n", ca.display()),
    ]
}

/// Kamailio as the central site over TLS (its certificate from `pki` for CENTRAL_NAME and its
/// address, asking for ours), and the branch reaching it over TLS, checked by that name.
fn central_over_tls<'a>(topo: &'a Topology, scratch: &Scratch, pki: &Pki, users: &[(&str, &str)]) -> (Kamailio, Sba<'a>) {
    let (cert, key) = pki.issue("central", &format!("DNS:{CENTRAL_NAME},IP:{CENTRAL}"));
    let kam = Kamailio::start_with(topo, &scratch.path, DOMAIN, users, Some(&KamailioTls { cert: &cert, key: &key, ca: &pki.ca }));
    let tls_dir = install_branch_certificate(pki, scratch);
    let [registrar_keys, central_keys] = tls_keys(&tls_dir, &pki.ca, CENTRAL_NAME);
    let central_port = kam.tls_addr.expect("Kamailio listens for TLS").port();
    let sba = Sba::start_with(topo, scratch, DOMAIN, central_port, [&registrar_keys, &central_keys, ""]);
    (kam, sba)
}

fn wait_until(mut f: impl FnMut() -> bool, within: Duration, what: impl Fn() -> String) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "{}", what());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn of<'a>(rows: &'a [(String, String)], user: &str) -> Option<&'a str> {
    rows.iter().find(|(u, _)| u == user).map(|(_, v)| v.as_str())
}

#[test]
fn the_central_site_over_tls_through_a_cut_and_a_failback() {
    let scratch = Scratch::new("tls-central");
    let topo = Topology::new();
    let pki = Pki::new(&scratch.path, "pki");
    let users = [("alice", "alice-pw"), ("carol", "carol-pw"), ("dora", "dora-pw"), ("erin", "erin-pw"), ("hq", "hq-pw")];
    let (kam, sba) = central_over_tls(&topo, &scratch, &pki, &users);
    let phone = |user, password, i, registrar| PhoneConfig::new(user, password, DOMAIN, phone_at(i), registrar);

    // 1. Pass-through over TLS: baresip registers over TLS, a sipp phone over UDP; both
    // REGISTERs reach Kamailio on its TLS socket, with a Path naming the branch's TLS listener.
    let tls_registrar = SocketAddr::from((SBA_LAN, 5061));
    let mut carol = Baresip::start_tls(&topo.phones, &scratch.path, &phone("carol", "carol-pw", 3, tls_registrar), 300, &pki.ca);
    let alice = Answerer::phone(&topo.phones, &scratch.path, &PhoneConfig { refresh: Duration::from_secs(2), ..phone("alice", "alice-pw", 1, sba.addr) }, 300);
    wait_until(
        || ["alice", "carol"].iter().all(|u| of(&kam.location(), u).is_some()),
        WAIT,
        || format!("not registered at Kamailio through the branch:\n{}\n{}\n{}", carol.console(), sba.log(), kam.log_text()),
    );
    let sockets = kam.sockets();
    let paths = kam.paths();
    for user in ["alice", "carol"] {
        assert_eq!(of(&sockets, user), Some(format!("tls:{CENTRAL}:5061").as_str()), "{user}: {sockets:?}");
        let path = of(&paths, user).unwrap_or_default();
        assert!(path.contains(&format!("sip:{SBA_WAN}:5061;transport=tls;lr")), "{user}'s Path: {path}");
    }
    let cached = sba.registrations();
    let carol_binding = cached.iter().find(|b| b["aor"] == format!("sip:carol@{DOMAIN}")).expect("carol cached");
    assert_eq!(carol_binding["transport"], "tls", "{carol_binding}");
    assert_eq!(sba.mode(), "pass-through");

    // dora registers on a TLS connection of her own; the central site authenticates her (its
    // challenge passes through). Her password is not on the box.
    let mut dora = TlsUa::connect(&topo.phones, tls_registrar, &pki.ca, "dora", DOMAIN);
    let dora_at = |port: u16| format!("sip:dora@{}:{port};transport=tls", Topology::phone_ip(4));
    let challenge = dora.register(&dora_at(5061), 60, None);
    assert_eq!(challenge.status, 401, "the central site's challenge: {} {}", challenge.status, challenge.reason);
    let authorization = register_authorization(&challenge, DOMAIN, "dora", "dora-pw", 1);
    let ok = dora.register(&dora_at(5061), 60, Some(&authorization));
    assert_eq!(ok.status, 200, "dora through the branch: {} {}\n{}", ok.status, ok.reason, kam.log_text());

    // A call from the central site to carol: Kamailio follows her Path over TLS to the branch,
    // which reaches her over her TLS flow; the BYE comes the same way.
    let connected = carol.count(Event::Connected);
    let out = call(&topo.central, SocketAddr::from((CENTRAL, 5070)), kam.addr, "hq", "carol", DOMAIN, HOLD).run(&scratch.path, 20);
    assert!(out.status.success(), "the central site's call to carol failed:\n{}\n{}", sba.log(), kam.log_text());
    assert_eq!(carol.count(Event::Connected), connected + 1, "{}", carol.console());

    // A call from the branch to a central-site user (registered at Kamailio itself): the branch
    // sends it over TLS to the centre, which finds hq; carol hangs up.
    let hq_config = PhoneConfig::new("hq", "hq-pw", DOMAIN, SocketAddr::from((CENTRAL, 5072)), kam.addr);
    let hq = Answerer::phone(&topo.central, &scratch.path, &hq_config, 300);
    assert!(hq.wait_registrations(0, WAIT), "hq not registered at Kamailio:\n{}", hq.log());
    let (answered, hung_up) = (hq.answered(), hq.hung_up());
    carol.dial(&format!("sip:hq@{DOMAIN}"));
    wait_until(|| hq.answered() > answered, WAIT, || format!("carol's call to the centre:\n{}\n{}\n{}", carol.console(), sba.log(), kam.log_text()));
    assert!(carol.wait(Event::Connected, connected + 1, WAIT), "{}", carol.console());
    carol.hang_up();
    wait_until(|| hq.hung_up() > hung_up, WAIT, || format!("carol's BYE did not reach hq:\n{}\n{}", sba.log(), kam.log_text()));
    assert!(kam.log_text().contains(&format!("INVITE to hq over tls from {SBA_WAN}")), "{}", kam.log_text());

    // 2. The cut: the TLS probes go unanswered, survival; the branch's phones call each other.
    topo.cut_wan();
    sba.wait_mode("survival", Duration::from_secs(5)).unwrap_or_else(|| panic!("no survival after the cut:\n{}", sba.log()));
    let answered = alice.answered();
    carol.dial(&format!("sip:alice@{DOMAIN}"));
    wait_until(|| alice.answered() > answered, WAIT, || format!("carol's call in survival:\n{}\n{}", carol.console(), sba.log()));
    assert!(carol.wait(Event::Connected, connected + 2, WAIT), "{}", carol.console());
    let hung_up = alice.hung_up();
    carol.hang_up();
    wait_until(|| alice.hung_up() > hung_up, WAIT, || format!("carol's BYE did not reach alice:\n{}", sba.log()));

    // The trust rule over TLS while the WAN is down: the very TLS connection the central site
    // authenticated dora on refreshes her binding as it stands, but moves it nowhere (nothing on
    // the box can check her password), and no other connection does either.
    let refreshed = dora.register(&dora_at(5061), 60, None);
    assert_eq!(refreshed.status, 200, "dora's refresh on her flow in survival: {} {}\n{}", refreshed.status, refreshed.reason, sba.log());
    let moved = dora.register(&dora_at(5063), 60, None);
    assert_eq!(moved.status, 403, "dora's binding moved on her flow: {} {}", moved.status, moved.reason);
    let mut mallory = TlsUa::connect(&topo.phones, tls_registrar, &pki.ca, "dora", DOMAIN);
    let hijack = mallory.register(&dora_at(5099), 60, None);
    assert_eq!(hijack.status, 403, "dora's binding from another TLS connection: {} {}", hijack.status, hijack.reason);
    let contacts: Vec<String> = sba
        .registrations()
        .into_iter()
        .filter(|b| b["aor"] == format!("sip:dora@{DOMAIN}"))
        .map(|b| b["contact"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(contacts.iter().any(|c| c.contains(":5061")), "{contacts:?}");
    assert!(!contacts.iter().any(|c| c.contains(":5063") || c.contains(":5099")), "{contacts:?}");

    // 3. Failback: the WAN back, the probes go on a new TLS connection; a new registration
    // reaches Kamailio over TLS.
    let restored = Instant::now();
    topo.restore_wan();
    sba.wait_mode("pass-through", Duration::from_secs(10)).unwrap_or_else(|| panic!("no failback over TLS:\n{}", sba.log()));
    eprintln!("pass-through {:?} after the restore", restored.elapsed());
    let erin = Answerer::phone(&topo.phones, &scratch.path, &phone("erin", "erin-pw", 7, sba.addr), 120);
    assert!(erin.wait_registrations(0, WAIT), "erin never registered after failback:\n{}", erin.log());
    assert_eq!(of(&kam.sockets(), "erin"), Some(format!("tls:{CENTRAL}:5061").as_str()), "{:?}", kam.sockets());
    // The centre reaches carol over TLS again, through the branch, with the WAN back (the caller
    // on a port whose media ports are not hq's).
    let out = call(&topo.central, SocketAddr::from((CENTRAL, 5076)), kam.addr, "hq", "carol", DOMAIN, HOLD).run(&scratch.path, 20);
    assert!(
        out.status.success(),
        "the centre's call to carol after the failback failed:\n{}{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        sba.log(),
        kam.log_text()
    );
    assert!(carol.wait(Event::Connected, connected + 3, WAIT), "{}", carol.console());
    assert!(!sba.log().contains("refused (expected name"), "{}", sba.log());
}

#[test]
fn a_central_certificate_for_another_name_is_refused() {
    let scratch = Scratch::new("tls-central-name");
    let topo = Topology::new();
    let pki = Pki::new(&scratch.path, "pki");
    // Kamailio presents a certificate from the right CA, for another name.
    let (cert, key) = pki.issue("impostor", "DNS:other.example");
    let kam = Kamailio::start_with(&topo, &scratch.path, DOMAIN, &[("alice", "alice-pw")], Some(&KamailioTls { cert: &cert, key: &key, ca: &pki.ca }));
    let tls_dir = install_branch_certificate(&pki, &scratch);
    let [registrar_keys, central_keys] = tls_keys(&tls_dir, &pki.ca, CENTRAL_NAME);
    let sba = Sba::start_with(&topo, &scratch, DOMAIN, 5061, [&registrar_keys, &central_keys, ""]);

    let refusal = format!("TLS to central proxy {CENTRAL}:5061 refused (expected name {CENTRAL_NAME}): invalid peer certificate");
    wait_until(|| sba.log().contains(&refusal), WAIT, || format!("no refusal logged:\n{}", sba.log()));
    sba.wait_mode("survival", Duration::from_secs(10)).unwrap_or_else(|| panic!("the refused central site kept the branch up:\n{}", sba.log()));
    // Nothing went to it: a phone's REGISTER is the branch's to judge (an unknown device, 403).
    let sock = topo.phones.udp_socket(phone_at(1)).expect("socket");
    let mut alice = Ua::with_socket(sock, sba.addr, "alice", DOMAIN);
    assert_eq!(alice.request(60, None).status, 403);
    assert!(kam.location().is_empty(), "{:?}", kam.location());
    assert!(!kam.log_text().contains("registered sip:"), "{}", kam.log_text());
}

/// RFC 5626 toward the central site: an outbound phone (baresip, `reg-id`) registers over TLS
/// through the branch; the Path the branch adds names the phone's connection (a flow token,
/// `ob`), Kamailio keeps it, and the centre's call to the phone follows it: with new connections
/// to the phone's port dropped, the call still arrives, over the phone's own connection. Once
/// that connection is gone (the phone stopped), the centre's next call gets 430 Flow Failed
/// from the branch instead of a connection to wherever the Contact points.
#[test]
fn the_centre_reaches_an_outbound_tls_phone_over_its_flow_and_gets_430_once_it_is_gone() {
    let scratch = Scratch::new("tls-central-flow");
    let topo = Topology::new();
    let pki = Pki::new(&scratch.path, "pki");
    let users = [("carol", "carol-pw"), ("hq", "hq-pw")];
    let (kam, sba) = central_over_tls(&topo, &scratch, &pki, &users);
    let tls_registrar = SocketAddr::from((SBA_LAN, 5061));
    let config = PhoneConfig::new("carol", "carol-pw", DOMAIN, phone_at(3), tls_registrar);
    let carol = Baresip::start_tls_outbound(&topo.phones, &scratch.path, &config, 300, &pki.ca);
    wait_until(
        || of(&kam.location(), "carol").is_some(),
        WAIT,
        || format!("carol not registered at Kamailio through the branch:\n{}\n{}\n{}", carol.console(), sba.log(), kam.log_text()),
    );
    let path = of(&kam.paths(), "carol").unwrap_or_default().to_string();
    assert!(path.starts_with("<sip:f") && path.contains(&format!("@{SBA_WAN}:5061;transport=tls;lr;ob;hfp=")), "carol's Path: {path}");

    // baresip listens for TLS on its SIP port + 1: shut it, so only carol's own connection is left.
    let blocked = NoNewConnections::to(&topo.phones, phone_at(3).port() + 1);
    let out = call(&topo.central, SocketAddr::from((CENTRAL, 5070)), kam.addr, "hq", "carol", DOMAIN, HOLD).run(&scratch.path, 20);
    assert!(out.status.success(), "the centre's call to carol failed:\n{}\n{}\n{}", carol.console(), sba.log(), kam.log_text());
    assert_eq!(carol.count(Event::Connected), 1, "{}", carol.console());
    assert_eq!(blocked.attempts(), 0, "a connection to carol's port was attempted:\n{}", sba.log());

    // carol stops: her connection closes; the centre's next call along her Path gets 430.
    let cached = sba.registrations();
    let source = cached.iter().find(|b| b["aor"] == format!("sip:carol@{DOMAIN}")).map(|b| b["source"].as_str().unwrap_or_default().to_string());
    let source = source.unwrap_or_else(|| panic!("carol not cached: {cached:?}"));
    drop(carol);
    let out = call(&topo.central, SocketAddr::from((CENTRAL, 5070)), kam.addr, "hq", "carol", DOMAIN, HOLD).run(&scratch.path, 20);
    assert!(!out.status.success(), "a call to carol's closed flow went through:\n{}", sba.log());
    // The branch's line for its 430: "INVITE for the flow ADDR: its connection is gone".
    let flow_failed = format!("INVITE for the flow {source}:");
    wait_until(
        || sba.log().lines().any(|l| l.contains(&flow_failed) && l.contains("its connection is gone")),
        WAIT,
        || format!("no 430 for carol's closed flow:\n{}\n{}", sba.log(), kam.log_text()),
    );
    assert_eq!(blocked.attempts(), 0, "a connection to carol's port was attempted:\n{}", sba.log());
}
