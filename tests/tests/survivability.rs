//! Survivability end to end (issue 3): phones (sipp) register through the SBA to Kamailio as the
//! central site; the WAN between SBA and central is cut and restored with nftables inside the
//! test's own namespaces. One scenario walks the list in order, on one topology:
//! normal mode, the cut, kill -9 during the outage, an unknown device (refused to register and
//! to call the PSTN), an attacker host beside the phones during the outage, failback with a call
//! answered before it, 10 flaps that each reach survival and pass-through.
use holdfast_sip::message::HeaderName;
use holdfast_tests::branch::Sba;
use holdfast_tests::kamailio::Kamailio;
use holdfast_tests::netns::{Topology, PSTN};
use holdfast_tests::phones::{call, Answerer, Baresip, Event, Phone, PhoneConfig};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::sip_client::Ua;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const DOMAIN: &str = "central.example";
const HOLD: Duration = Duration::from_millis(500);
/// WAN flaps in step 6 (tests/bench/failover runs 100).
const FLAPS: u64 = 10;

/// The detection target: survival within 3 s of the cut (measured from our side of
/// `cut_wan`, which also includes sbactl's polling).
const DETECT_WITHIN: Duration = Duration::from_secs(3);

fn phone_at(i: u8) -> SocketAddr {
    SocketAddr::from((Topology::phone_ip(i), 5060))
}

#[test]
fn branch_survives_the_wan() {
    let scratch = Scratch::new("survival");
    let topo = Topology::new();
    let users = [("alice", "alice-pw"), ("bob", "bob-pw"), ("carol", "carol-pw"), ("erin", "erin-pw"), ("gina", "gina-pw")];
    let kam = Kamailio::start(&topo, &scratch.path, DOMAIN, &users);
    // These lines land in the config's [survival] section, then a [[directory]] block.
    let extra = "voicemail = \"+15550100\"\nno_answer_secs = 3\n\n\
                 [[directory]]\nsite = \"hq\"\nfirst = \"2000\"\nlast = \"2999\"\ne164 = \"+15551232000\"\n";
    let mut sba = Sba::start(&topo, &scratch, DOMAIN, kam.addr.port(), extra);
    assert_eq!(sba.mode(), "pass-through");
    let carrier = Answerer::carrier(&topo.pstn, &scratch.path, SocketAddr::from((PSTN, 5060)), 300);

    // 1. Normal mode: phones register through the SBA to Kamailio.
    let registrar = sba.addr;
    let phone = |user: &'static str, password: &'static str, i: u8| PhoneConfig {
        refresh: Duration::from_secs(2),
        ..PhoneConfig::new(user, password, DOMAIN, phone_at(i), registrar)
    };
    let alice = Answerer::phone(&topo.phones, &scratch.path, &phone("alice", "alice-pw", 1), 300);
    let bob = Answerer::phone(&topo.phones, &scratch.path, &phone("bob", "bob-pw", 2), 300);
    for p in [&alice, &bob] {
        assert!(p.wait_registrations(0, Duration::from_secs(10)), "not registered:\n{}\n{}", p.log(), sba.log());
    }
    // baresip, a real phone, registers through the SBA too.
    let carol_config = PhoneConfig { refresh: Duration::from_secs(30), ..phone("carol", "carol-pw", 3) };
    let mut carol = Baresip::start(&topo.phones, &scratch.path, &carol_config, 300);
    wait_until(
        || kam.location().iter().any(|(u, _)| u == "carol"),
        Duration::from_secs(10),
        &format!("baresip never reached Kamailio through the SBA:\n{}", carol.console()),
    );
    let location = kam.location();
    for (user, i) in [("alice", 1), ("bob", 2)] {
        assert!(location.iter().any(|(u, c)| u == user && c.contains(&Topology::phone_ip(i).to_string())), "{location:?}");
    }
    // A phone asking for an hour gets the central hour cached and branch_expires (60 s) itself;
    // its frequent refreshes are answered at the branch: the WAN sees the first REGISTER only.
    let gina_config = PhoneConfig { expires: 3600, refresh: Duration::from_millis(500), ..phone("gina", "gina-pw", 4) };
    let gina = Answerer::phone(&topo.phones, &scratch.path, &gina_config, 300);
    assert!(gina.wait_registrations(0, Duration::from_secs(10)), "gina not registered:\n{}", gina.log());
    let central_cseq = kam.cseq_of("gina").expect("gina at the central site");
    assert!(gina.wait_registrations(4, Duration::from_secs(10)), "gina's refreshes:\n{}", gina.log());
    assert_eq!(kam.cseq_of("gina"), Some(central_cseq), "refreshes reached the central site");
    let cached_gina = sba.registrations().into_iter().find(|b| b["aor"] == format!("sip:gina@{DOMAIN}")).expect("gina cached");
    assert!(cached_gina["cseq"].as_u64().unwrap_or(0) > central_cseq, "{cached_gina}");
    assert!(cached_gina["expires"].as_u64().unwrap_or(0) > 3000, "the central grant is cached: {cached_gina}");

    let cached = sba.registrations();
    assert!(cached.iter().all(|b| b["origin"] == "central"), "{cached:?}");
    assert_eq!(cached.len(), 4, "{cached:?}");
    // The phones see the branch expiry, the cache keeps the central one.
    assert!(cached.iter().all(|b| b["expires"].as_u64().unwrap_or(0) > 50), "{cached:?}");

    let (sba_addr, sba_log) = (sba.addr, sba.config.with_extension("log"));
    let branch_call = |from: u8, caller: &str, callee: &str, label: &str| {
        let out = call(&topo.phones, SocketAddr::from((Topology::phone_ip(from), 5070)), sba_addr, caller, callee, DOMAIN, HOLD)
            .run(&scratch.path, 20);
        let log = std::fs::read_to_string(&sba_log).unwrap_or_default();
        assert!(out.status.success(), "{label}: call {caller} -> {callee} failed\n{log}");
    };
    branch_call(1, "alice", "bob", "normal mode");
    assert_eq!(bob.answered(), 1);

    // 2. The WAN is cut while a call is up; survival within the detection time.
    let mut long_call = call(&topo.phones, SocketAddr::from((Topology::phone_ip(1), 5071)), sba.addr, "alice", "bob", DOMAIN, Duration::from_secs(8))
        .spawn(&scratch.path, 30);
    wait_until(|| bob.answered() == 2, Duration::from_secs(5), "the long call was not answered");
    let cut = Instant::now();
    topo.cut_wan();
    sba.wait_mode("survival", DETECT_WITHIN).unwrap_or_else(|| panic!("not in survival mode {DETECT_WITHIN:?} after the cut:\n{}", sba.log()));
    eprintln!("survival mode {:?} after the cut", cut.elapsed());
    branch_call(2, "bob", "alice", "survival");
    let pstn_before = carrier.answered();
    branch_call(1, "alice", "+4930123456", "PSTN in survival");
    assert_eq!(carrier.answered(), pstn_before + 1, "the PSTN call did not reach the carrier");
    // A central-site extension goes out over the PSTN as its DID.
    branch_call(2, "bob", "2042", "central extension in survival");
    assert!(carrier.log().contains("INVITE sip:+15551232042@"), "the DID rewrite did not happen");
    // baresip takes a call and places one while the WAN is down.
    branch_call(1, "alice", "carol", "to baresip in survival");
    let answered = bob.answered();
    carol.command(&format!("/dial sip:bob@{DOMAIN}"));
    wait_until(|| bob.answered() > answered, Duration::from_secs(10), &format!("baresip's call in survival:\n{}", carol.console()));
    assert!(carol.wait_for("Call established", 1, Duration::from_secs(5)), "{}", carol.console());
    carol.command("/hangup");
    attack_beside_the_phones(&topo, &sba, &carrier);
    branch_call(1, "alice", "bob", "survival, after the attacks");
    let long = long_call.0.wait().expect("sipp ran");
    assert!(long.success(), "the call up before the cut was dropped\n{}", sba.log());

    // 3. kill -9 during the outage: the cache still routes calls after the restart.
    sba.kill9();
    sba.restart();
    assert_eq!(sba.mode(), "survival", "a restart during the outage comes back in survival");
    branch_call(1, "alice", "bob", "after kill -9 in survival");

    // 4. An unknown device is refused; a device with local credentials is challenged.
    let dave = topo.phones.udp_socket(phone_at(5)).expect("socket");
    let mut dave = Ua::with_socket(dave, sba.addr, "dave", DOMAIN);
    let r = dave.request(60, None);
    assert_eq!(r.status, 403, "unknown device: {} {}", r.status, r.reason);
    assert!(sba.registrations().iter().all(|b| b["aor"] != format!("sip:dave@{DOMAIN}")));
    // Nor may it call the PSTN, even posing as a registered user (toll fraud).
    let local = dave.local();
    let invite = format!(
        "INVITE sip:+4930123456@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-dave-inv;rport\r\n\
         From: <sip:alice@{DOMAIN}>;tag=dave\r\nTo: <sip:+4930123456@{DOMAIN}>\r\nCall-ID: dave-inv\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:alice@{local}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    let pstn_before = carrier.answered();
    dave.send(invite.as_bytes());
    let r = dave.recv();
    assert_eq!((r.status, r.reason.as_str()), (403, "Forbidden (caller not registered here)"));
    assert_eq!(carrier.answered(), pstn_before, "an unregistered device reached the PSTN");
    let mut add = std::process::Command::new(holdfast_tests::bins::bin("sbactl"));
    add.arg("--db").arg(&sba.db).args(["user", "add", "frank", "--domain", DOMAIN, "--password-stdin"]);
    let out = holdfast_tests::registrar::with_stdin(add, "frank-local");
    assert!(out.status.success());
    let frank = topo.phones.udp_socket(phone_at(6)).expect("socket");
    let mut frank = Ua::with_socket(frank, sba.addr, "frank", DOMAIN);
    let challenge = wait_for(|| Some(frank.request(60, None)).filter(|r| r.status == 401), Duration::from_secs(3));
    let auth = frank.answer(&challenge, "frank-local", 1);
    let ok = frank.request(60, Some(&auth));
    assert_eq!(ok.status, 200, "local credentials in survival: {} {}", ok.status, ok.reason);
    assert!(ok.headers.get(&HeaderName::Contact).is_some());
    // frank's device never answers: after no_answer_secs the call goes to the PSTN voicemail.
    branch_call(1, "alice", "frank", "unanswered call to voicemail");
    assert!(carrier.log().contains("INVITE sip:+15550100@"), "the unanswered call did not reach voicemail");

    // 5. Failback: a call answered before the restore stays up across it; new registrations
    // reach Kamailio.
    let answered = alice.answered();
    let mut across = call(&topo.phones, SocketAddr::from((Topology::phone_ip(2), 5072)), sba.addr, "bob", "alice", DOMAIN, Duration::from_secs(6))
        .spawn(&scratch.path, 30);
    wait_until(|| alice.answered() > answered, Duration::from_secs(5), "the call across the restore was not answered before it");
    let restored = Instant::now();
    topo.restore_wan();
    sba.wait_mode("pass-through", Duration::from_secs(10)).unwrap_or_else(|| panic!("no failback:\n{}", sba.log()));
    eprintln!("pass-through {:?} after the restore", restored.elapsed());
    let erin = Answerer::phone(&topo.phones, &scratch.path, &phone("erin", "erin-pw", 7), 120);
    assert!(erin.wait_registrations(0, Duration::from_secs(10)), "erin never registered after failback:\n{}", erin.log());
    assert!(kam.location().iter().any(|(u, _)| u == "erin"), "a new registration did not reach Kamailio");
    assert!(across.0.wait().expect("sipp ran").success(), "the call up during failback was dropped\n{}", sba.log());

    // 6. 10 flaps, each crossing both thresholds: the WAN stays cut until survival mode, then
    // restored until pass-through. sbactl status counts both transitions of every flap; a call
    // (baresip to bob) is up across all of them and ends with its own BYE; no binding is lost.
    let before = sba.registrations().len();
    let transitions = sba.transitions();
    let (connected, ended, hung_up) = (carol.count(Event::Connected), carol.count(Event::Ended), bob.hung_up());
    carol.dial(&format!("sip:bob@{DOMAIN}"));
    assert!(carol.wait(Event::Connected, connected, Duration::from_secs(10)), "{}", carol.console());
    for n in 0..FLAPS {
        let flap = sba.flap(Duration::from_secs(10));
        eprintln!("flap {n}: survival after {:?}, pass-through {:?} after the restore", flap.to_survival, flap.to_pass_through);
        assert!(sba.is_running(), "sba-registrar died while the WAN flapped");
    }
    assert_eq!(sba.transitions(), transitions + 2 * FLAPS, "sbactl status --json: {:?}", sba.status());
    assert_eq!(carol.count(Event::Ended), ended, "the call across the flaps was dropped:\n{}", carol.console());
    carol.hang_up();
    wait_until(|| bob.hung_up() > hung_up, Duration::from_secs(10), "the call's BYE did not reach bob: it was gone");
    let after = sba.registrations().len();
    assert!(after >= before, "bindings lost while flapping: {before} -> {after}");
    branch_call(2, "bob", "alice", "after the flaps");
}

fn wait_until(mut f: impl FnMut() -> bool, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for<T>(mut f: impl FnMut() -> Option<T>, within: Duration) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "condition not met within {within:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An attacker host beside the phones (10.77.1.40), and packets forged with alice's address
/// (her IP, another port), while the WAN is down and a call is up: posing as alice it may not
/// move or remove her binding nor reach the PSTN, not even with a To tag and a Route as if in a
/// dialog; its flood gets it banned, while a flood forged with alice's IP (she holds a binding)
/// is only shed while it lasts. The caller then checks that alice still calls.
fn attack_beside_the_phones(topo: &Topology, sba: &Sba, carrier: &Answerer) {
    let alice_aor = format!("sip:alice@{DOMAIN}");
    let alice_before: Vec<_> = sba.registrations().into_iter().filter(|b| b["aor"] == alice_aor).collect();
    let pstn_before = carrier.answered();
    let host = topo.phones.udp_socket(SocketAddr::from((Topology::phone_ip(30), 5060))).expect("socket");
    let mut mallory = Ua::with_socket(host, sba.addr, "alice", DOMAIN);
    let r = mallory.request(60, None);
    assert_eq!(r.status, 403, "alice's contact moved to the attacker: {} {}", r.status, r.reason);
    let local = mallory.local();
    let invite = format!(
        "INVITE sip:+4930123456@{PSTN}:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-mallory-inv;rport\r\n\
         Route: <sip:{};lr>\r\nFrom: <sip:alice@{DOMAIN}>;tag=mallory\r\nTo: <sip:+4930123456@{DOMAIN}>;tag=as-if\r\n\
         Call-ID: mallory-inv\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{local}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        sba.addr
    );
    mallory.send(invite.as_bytes());
    let r = mallory.recv();
    assert_eq!(r.status, 403, "an in-dialog-looking INVITE from the attacker: {} {}", r.status, r.reason);
    let forged = topo.phones.udp_socket(SocketAddr::from((Topology::phone_ip(1), 5098))).expect("socket");
    let mut forged = Ua::with_socket(forged, sba.addr, "alice", DOMAIN);
    let mut wildcard = forged.register(0, None);
    wildcard.headers.set(HeaderName::Contact, "*");
    forged.send(&wildcard.to_bytes().expect("serializable"));
    let r = forged.recv();
    assert_eq!(r.status, 403, "Contact: * with alice's address: {} {}", r.status, r.reason);

    // Floods, in bursts until the answers stop: the attacker's address is banned; alice's IP from
    // another port is shed (bounded, counted) and not banned: she calls right after (below).
    let flood = |ua: &mut Ua| {
        ua.sock.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
        let mut buf = vec![0u8; 65536];
        for _ in 0..50 {
            for _ in 0..20 {
                let bytes = ua.register(60, None).to_bytes().expect("serializable");
                ua.send(&bytes);
            }
            if (0..20).filter(|_| ua.sock.recv_from(&mut buf).is_ok()).count() == 0 {
                return true;
            }
        }
        false
    };
    assert!(flood(&mut mallory), "the attacker's flood was never banned");
    assert!(flood(&mut forged), "a flood with alice's IP was never shed");
    wait_until(
        || sba.status().and_then(|s| s["refused"]["source_bans"].as_u64()).is_some_and(|n| n >= 2),
        Duration::from_secs(10),
        "the ban and the shedding were not counted",
    );
    let alice_after: Vec<_> = sba.registrations().into_iter().filter(|b| b["aor"] == alice_aor).collect();
    for key in ["contact", "source", "path", "transport"] {
        let values = |v: &[serde_json::Value]| v.iter().map(|b| b[key].clone()).collect::<Vec<_>>();
        assert_eq!(values(&alice_after), values(&alice_before), "alice's {key} changed");
    }
    assert_eq!(carrier.answered(), pstn_before, "the attacker reached the PSTN");
}
