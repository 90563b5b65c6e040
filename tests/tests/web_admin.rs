//! sba-web end to end (issue 13): the survivability topology (phones, the SBA, Kamailio as the
//! central site) with sba-registrar in the SBA's namespace, sba-mediation and sba-gateway (its
//! simulated span's far end a PSTN exchange that answers) at the PSTN side's address where the
//! registrar sends numbers in survival, and sba-web reading their database and status files; headless
//! Chromium logs in and watches a phone appear once it registers, the mode turn to survival
//! when the WAN is cut and back after, and downloads the call records; /metrics, parsed as the
//! Prometheus text format, moves with what the test does. A second address (127.0.0.2) guessing
//! the password is slowed down, and holding 64 silent connections does not lock the admin out.
//! During the call a stranger beside the PSTN side (127.0.0.2) is refused by sba-mediation and
//! sba-gateway and its RTP spray dropped; the page and /metrics count it, and the call goes on.
//! A screenshot of each page goes to target/test-output/web_admin/.
use holdfast_tests::bins::{bin, repo};
use holdfast_tests::branch::Sba;
use holdfast_tests::kamailio::Kamailio;
use holdfast_tests::netns::{KillOnDrop, Netns, Topology, PSTN, SBA_PSTN};
use holdfast_tests::phones::{call, Answerer, PhoneConfig};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::sip_client::final_response;
use holdfast_tests::web::{sample, Web, ADMIN_PASSWORD};
use holdfast_tests::webdriver::{Browser, CHROMEDRIVER, CHROMIUM};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const DOMAIN: &str = "central.example";

/// sba-gateway, in the PSTN namespace beside sba-mediation.
const GATEWAY: &str = "127.0.0.1:5080";
/// sba-mediation's relay ports (on its media_ip, 127.0.0.1 in the PSTN namespace): a small
/// range, so that a spray covers every port a call can have.
const MEDIA_PORTS: std::ops::RangeInclusive<u16> = 40000..=40019;

/// An INVITE for a PSTN number from `sock` to `to`; the final status it got.
fn stranger_invite(sock: &UdpSocket, to: SocketAddr) -> u16 {
    let local = sock.local_addr().expect("addr");
    let invite = format!(
        "INVITE sip:+4930999999@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-stranger-{port}\r\n\
         From: <sip:mallory@{local}>;tag=m\r\nTo: <sip:+4930999999@{to}>\r\nCall-ID: stranger-{port}@test\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:mallory@{local}>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        port = to.port()
    );
    sock.send_to(invite.as_bytes(), to).expect("send");
    final_response(sock).status
}

/// Ten G.711 packets to each port of `ports` on 127.0.0.1.
fn spray_rtp(sock: &UdpSocket, ports: std::ops::RangeInclusive<u16>) {
    for port in ports {
        for seq in 0u16..10 {
            let mut packet = vec![0x80, 0x00];
            packet.extend_from_slice(&seq.to_be_bytes());
            packet.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
            packet.extend_from_slice(&0x5eed_u32.to_be_bytes());
            packet.resize(12 + 160, 0xff);
            // A closed port answers with ICMP, which a later send reports: not our concern.
            let _ = sock.send_to(&packet, (std::net::Ipv4Addr::LOCALHOST, port));
        }
    }
}

/// `count` TCP connections from `from` to `to`, opened and held silent until dropped.
fn hold_connections(from: &str, to: SocketAddr, count: usize) -> KillOnDrop {
    let script = format!(
        "import socket, time\nsocket.setdefaulttimeout(5)\n\
         held = [socket.create_connection(('{}', {}), source_address=('{from}', 0)) for _ in range({count})]\n\
         print('held', flush=True)\ntime.sleep(60)\n",
        to.ip(),
        to.port()
    );
    let mut child = std::process::Command::new("python3").args(["-c", &script]).stdout(Stdio::piped()).spawn().expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().expect("stdout")), &mut line).expect("read");
    assert_eq!(line.trim(), "held", "{count} connections from {from} not opened");
    KillOnDrop(child)
}

/// A service of the appliance started in namespace `ns` on the test's config.
fn start_in(ns: &Netns, service: &str, config: &Path, dir: &Path) -> KillOnDrop {
    let log = std::fs::File::create(dir.join(format!("{service}.log"))).expect("log");
    let child = ns
        .command(bin(service).to_str().expect("utf-8 path"))
        .arg("--config")
        .arg(config)
        .env("HOLDFAST_LOG_STDERR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {service}: {e}"));
    KillOnDrop(child)
}

#[test]
fn the_admin_page_follows_the_branch() {
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(Path::new(tool).exists(), "{tool} missing: apt-get install chromium chromium-driver (tests/run does)");
    }
    let scratch = Scratch::new("web-admin");
    let shots = repo().join("target/test-output/web_admin");
    std::fs::create_dir_all(&shots).expect("output folder");
    let topo = Topology::new();
    let kam = Kamailio::start(&topo, &scratch.path, DOMAIN, &[("alice", "alice-pw")]);
    let db = scratch.file("sba.db");
    // sba-mediation where the registrar sends numbers in survival ([survival].mediation, the PSTN
    // side's address), its one trunk sba-gateway beside it, which takes SIP from it alone.
    let extra = format!(
        "[mediation]\nlisten = \"{PSTN}:5060\"\nregistrar = \"{SBA_PSTN}:5060\"\nmedia_ports = [{}, {}]\n\n\
         [[mediation.routes]]\nname = \"world\"\npattern = '\\+\\d{{6,15}}'\nusage = \"national\"\ntrunks = [\"pstn\"]\n\n\
         [[mediation.trunks]]\nname = \"pstn\"\nkind = \"gateway\"\naddress = \"{GATEWAY}\"\ntransport = \"udp\"\n\n\
         [gateway]\nsimulated = true\nmediation = \"{PSTN}:5060\"\nstatus_file = \"{}.gateway.json\"\nexchange_control = \"{}\"\n",
        MEDIA_PORTS.start(),
        MEDIA_PORTS.end(),
        db.display(),
        scratch.file("pstn.sock").display()
    );
    let sba = Sba::start(&topo, &scratch, DOMAIN, kam.addr.port(), &extra);
    let _mediation = start_in(&topo.pstn, "sba-mediation", &sba.config, &scratch.path);
    let _gateway = start_in(&topo.pstn, "sba-gateway", &sba.config, &scratch.path);
    let web = Web::start(&scratch.path, &sba.db);

    // Metrics before anything happened.
    let m = web.metrics();
    assert_eq!(sample(&m, "sba_registrations", &[]), Some(0.0));
    assert_eq!(sample(&m, "sba_mode", &[("mode", "pass-through")]), Some(1.0));
    assert_eq!(sample(&m, "sba_wan_up", &[]), Some(1.0));

    // The certificate served is the one sbactl shows.
    let shown = std::process::Command::new(bin("sbactl")).args(["tls", "show", "--dir"]).arg(scratch.path.join("tls")).output().expect("sbactl");
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    let fingerprint = shown.lines().find_map(|l| l.strip_prefix("SHA-256:")).map(str::trim).unwrap_or_else(|| panic!("{shown}"));
    assert!(web.log().contains(fingerprint), "sba-web serves another certificate than {fingerprint}");

    // Password guessing from a second address is slowed down: after three failures it is
    // refused before any password check (429); the admin's own address is not held up.
    let jar = scratch.path.join("attacker-cookies");
    let statuses: Vec<u16> = (0..6).map(|_| web.login_from("127.0.0.2", "guess", &jar)).collect();
    assert_eq!(&statuses[..4], &[401, 401, 401, 401], "{statuses:?}");
    assert_eq!(statuses[5], 429, "{statuses:?}");
    let log = web.log();
    assert!(log.contains("web login from 127.0.0.2 refused"), "{log}");

    // One address holds at most a quarter of sba-web's 64 connections: 127.0.0.2 opening all
    // 64 and sending nothing on them leaves room for the admin.
    let held = hold_connections("127.0.0.2", web.addr, 64);
    let (status, _, _) = web.get("/metrics");
    assert_eq!(status, 200, "the admin was turned away while 127.0.0.2 held connections");
    assert!(web.log().contains("16 connections open from this address; 127.0.0.2"), "{}", web.log());
    drop(held);

    // Without a session every page sends the browser to log in; a wrong password is refused.
    let b = Browser::start(&scratch.path);
    b.goto(&format!("{}/registrations", web.base));
    b.wait("the login page", Duration::from_secs(10), |b| b.find("#password").is_some());
    b.screenshot(&shots.join("login.png"));
    b.type_into("#password", "not-the-password");
    b.click("#login");
    b.wait("the refusal", Duration::from_secs(10), |b| b.text("#login-error").contains("Wrong password"));
    b.type_into("#password", ADMIN_PASSWORD);
    b.click("#login");
    b.wait("the overview in pass-through", Duration::from_secs(10), |b| b.text("#mode") == "pass-through");
    b.screenshot(&shots.join("overview.png"));
    // The session cookie is out of the pages' scripts' reach (HttpOnly), sent over HTTPS only
    // (Secure), and not on requests other sites start (SameSite=Strict; the login form's cookie
    // is made the same way and its header shows it).
    let seen = b.run_async("arguments[arguments.length - 1](document.cookie)");
    assert!(!seen.as_str().unwrap_or_default().contains("sba_session"), "a script reads the session cookie: {seen}");
    let jar = scratch.path.join("admin-cookies");
    assert_eq!(web.login_from("127.0.0.1", ADMIN_PASSWORD, &jar), 303);
    let jar = std::fs::read_to_string(&jar).expect("cookie jar");
    let session = jar.lines().find(|l| l.contains("\tsba_session\t")).unwrap_or_else(|| panic!("no session cookie:\n{jar}"));
    assert!(session.starts_with("#HttpOnly_") && session.split('\t').nth(3) == Some("TRUE"), "not HttpOnly and Secure: {session}");
    let headers = std::process::Command::new("curl").args(["-sk", "-o", "/dev/null", "-D", "-"]).arg(format!("{}/login", web.base)).output().expect("curl");
    let headers = String::from_utf8_lossy(&headers.stdout).to_lowercase();
    assert!(headers.contains("set-cookie: sba_login=") && headers.contains("samesite=strict"), "{headers}");

    // A phone registers through the SBA to Kamailio: it appears on the registrations page.
    b.goto(&format!("{}/registrations", web.base));
    let alice = PhoneConfig {
        user: "alice",
        password: "alice-pw",
        domain: DOMAIN,
        addr: SocketAddr::from((Topology::phone_ip(1), 5060)),
        registrar: sba.addr,
        expires: 60,
        refresh: Duration::from_secs(2),
    };
    let phone = Answerer::phone(&topo.phones, &scratch.path, &alice, 300);
    assert!(phone.wait_registrations(0, Duration::from_secs(10)), "alice not registered:\n{}", phone.log());
    let row = format!("tr[data-aor=\"sip:alice@{DOMAIN}\"]");
    b.wait("alice on the registrations page", Duration::from_secs(10), |b| b.find(&row).is_some());
    b.screenshot(&shots.join("registrations.png"));
    // The search: by any part of the AOR, contact, address or user agent, in any case.
    b.goto(&format!("{}/registrations?q=nobody", web.base));
    b.wait("an empty search", Duration::from_secs(10), |b| b.text("#count").starts_with("0 of 1 "));
    b.goto(&format!("{}/registrations", web.base));
    b.type_into("#q", "ALICE@");
    b.click(".search button");
    b.wait("alice found", Duration::from_secs(10), |b| b.text("#count").starts_with("1 of 1 ") && b.find(&row).is_some());
    b.screenshot(&shots.join("registrations-search.png"));
    let m = web.metrics();
    assert_eq!(sample(&m, "sba_registrations", &[]), Some(1.0));
    // The registrar rewrites its snapshot every 5 s: its histograms follow within that.
    b.wait("the probe round trips and alice's commit in /metrics", Duration::from_secs(12), |_| {
        let m = web.metrics();
        sample(&m, "sba_wan_probe_rtt_seconds", &[]).unwrap_or(0.0) > 0.0
            && sample(&m, "sba_sqlite_commit_seconds", &[("service", "sba-registrar")]).unwrap_or(0.0) > 0.0
    });

    // The WAN is cut: the overview turns to survival by itself, and back after the restore.
    b.goto(&format!("{}/", web.base));
    topo.cut_wan();
    b.wait("survival on the overview", Duration::from_secs(10), |b| b.text("#mode") == "survival");
    b.screenshot(&shots.join("overview-survival.png"));
    let m = web.metrics();
    assert_eq!(sample(&m, "sba_wan_up", &[]), Some(0.0));
    assert_eq!(sample(&m, "sba_mode", &[("mode", "survival")]), Some(1.0));
    assert!(sample(&m, "sba_wan_probes_total", &[("result", "failed")]).unwrap_or(0.0) >= 3.0);

    // A PSTN call in survival: through sba-mediation and sba-gateway to the exchange, which
    // answers. The calls page shows it while it lasts, the metrics and the records after.
    b.goto(&format!("{}/calls", web.base));
    let from = SocketAddr::from((Topology::phone_ip(1), 5070));
    let pstn_call = call(&topo.phones, from, sba.addr, "alice", "+4930123456", DOMAIN, Duration::from_secs(8)).spawn(&scratch.path, 30);
    b.wait("the call on the calls page", Duration::from_secs(10), |b| b.text("#active").starts_with("1 call"));
    b.screenshot(&shots.join("calls.png"));
    b.wait("the call and its B-channel in /metrics", Duration::from_secs(10), |_| {
        let m = web.metrics();
        sample(&m, "sba_calls_active", &[]) == Some(1.0) && sample(&m, "sba_span_bchannels_in_use", &[("span", "1")]) == Some(1.0)
    });

    // While it lasts, a host beside the PSTN side (127.0.0.2) tries sba-mediation and
    // sba-gateway directly (neither takes SIP from it: 403) and sprays RTP at every port of the
    // relay's range (dropped: not the call's parties). The call goes on; the refusals count.
    let stranger = topo.pstn.udp_socket(SocketAddr::from(([127, 0, 0, 2], 0))).expect("127.0.0.2 in the PSTN namespace");
    stranger.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    assert_eq!(stranger_invite(&stranger, SocketAddr::from((PSTN, 5060))), 403, "sba-mediation took a stranger's INVITE");
    assert_eq!(stranger_invite(&stranger, GATEWAY.parse().expect("address")), 403, "sba-gateway took a stranger's INVITE");
    spray_rtp(&stranger, MEDIA_PORTS);
    b.wait("the foreign RTP counted on the calls page", Duration::from_secs(10), |b| b.text("#rtp-dropped-foreign").parse().unwrap_or(0) > 0);
    b.screenshot(&shots.join("calls-attacked.png"));
    let mut pstn_call = pstn_call;
    assert!(pstn_call.0.wait().expect("sipp ran").success(), "the PSTN call failed under attack:\n{}", sba.log());
    b.wait("the call's record in /metrics", Duration::from_secs(10), |_| {
        sample(&web.metrics(), "sba_calls_total", &[("result", "answered")]) == Some(1.0)
    });
    b.wait("the call gone from /metrics", Duration::from_secs(10), |_| {
        let m = web.metrics();
        sample(&m, "sba_calls_active", &[]) == Some(0.0) && sample(&m, "sba_span_bchannels_in_use", &[("span", "1")]) == Some(0.0)
    });
    let m = web.metrics();
    assert!(sample(&m, "sba_sqlite_commit_seconds", &[("service", "sba-mediation")]).unwrap_or(0.0) >= 1.0, "the call record's commit");
    assert_eq!(sample(&m, "sba_trunk_up", &[("trunk", "pstn"), ("kind", "gateway")]), Some(1.0));
    assert!(sample(&m, "sba_rtp_packets_dropped_foreign_total", &[]).unwrap_or(0.0) > 0.0, "the spray was not counted");
    for service in ["sba-mediation", "sba-gateway"] {
        let refused = sample(&m, "sba_requests_refused_total", &[("service", service), ("reason", "not_a_peer")]);
        assert!(refused.unwrap_or(0.0) >= 1.0, "{service}'s refusal not in /metrics: {refused:?}");
    }
    // The exchange's tone reached the relay. It counts as dropped: the phone's media address is
    // in the phones' namespace, which the PSTN side of this topology cannot reach.
    assert!(sample(&web.metrics(), "sba_rtp_packets_dropped_total", &[]).unwrap_or(0.0) > 0.0, "no RTP at the relay");
    b.goto(&format!("{}/", web.base));
    for service in ["sba-mediation", "sba-gateway"] {
        let row = format!("#refused tr[data-service=\"{service}\"][data-reason=\"not_a_peer\"] .count");
        b.wait("the refusals on the overview", Duration::from_secs(10), |b| b.text(&row).parse().unwrap_or(0) >= 1);
    }
    topo.restore_wan();
    b.wait("pass-through again", Duration::from_secs(15), |b| b.text("#mode") == "pass-through");
    b.screenshot(&shots.join("overview-failback.png"));
    let m = web.metrics();
    assert_eq!(sample(&m, "sba_wan_up", &[]), Some(1.0));
    assert!(sample(&m, "sba_wan_transitions_total", &[]).unwrap_or(0.0) >= 2.0);

    // Trunks (sba-mediation), the span (sba-gateway's simulated T1), calls, configuration.
    b.goto(&format!("{}/trunks", web.base));
    b.wait("the gateway trunk", Duration::from_secs(10), |b| b.find("tr[data-trunk]").is_some());
    b.screenshot(&shots.join("trunks.png"));
    let m = web.metrics();
    assert!(m.samples.iter().any(|s| s.metric == "sba_trunk_up"), "no trunk in /metrics");
    b.goto(&format!("{}/span", web.base));
    b.wait("the span without alarms", Duration::from_secs(10), |b| b.text("#alarms") == "none");
    assert_eq!(b.text("#bchannels"), "0 / 23");
    b.screenshot(&shots.join("span.png"));
    let m = web.metrics();
    assert_eq!(sample(&m, "sba_span_alarm", &[("span", "1")]), Some(0.0));
    assert_eq!(sample(&m, "sba_span_bchannels", &[("span", "1")]), Some(23.0));
    b.goto(&format!("{}/config", web.base));
    b.wait("the configuration check", Duration::from_secs(10), |b| b.find("#config-ok").is_some());
    b.screenshot(&shots.join("config.png"));
    // A mistake in the file shows at once, with its key and line, before any service restarts.
    let mut text = std::fs::read_to_string(&web.config).expect("web config");
    text.push_str("\n[mediation]\nlisten = \"nowhere\"\n");
    let bad_line = text.lines().count();
    std::fs::write(&web.config, text).expect("write config");
    b.wait("the configuration error", Duration::from_secs(10), |b| {
        b.text("#config-errors").contains(&format!("line {bad_line}: key `mediation.listen`"))
    });
    b.screenshot(&shots.join("config-error.png"));

    // Call records: the page, and the CSV downloaded by the browser.
    b.goto(&format!("{}/cdrs", web.base));
    b.wait("the records page", Duration::from_secs(10), |b| b.find("#csv").is_some());
    b.screenshot(&shots.join("cdrs.png"));
    b.click("#csv");
    let csv = scratch.path.join("downloads/call-records.csv");
    b.wait("the CSV download", Duration::from_secs(10), |_| csv.exists());
    let text = std::fs::read_to_string(&csv).expect("CSV");
    assert!(text.starts_with("call_id,direction,setup,answer,end,caller,"), "{text}");
    assert!(text.lines().any(|l| l.contains(",+4930123456,") && l.contains(",200,")), "the PSTN call's record:\n{text}");

    // Logged out, the pages are closed again.
    b.goto(&format!("{}/", web.base));
    b.click("header button");
    b.wait("the login page after logout", Duration::from_secs(10), |b| b.find("#password").is_some());
    let (status, _, _) = web.get("/registrations");
    assert_eq!(status, 303, "a page without a session");
    eprintln!("screenshots in {}", shots.display());
}
