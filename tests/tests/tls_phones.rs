//! SIP over TLS on the embedded default (image/run-local: sba-registrar's TLS listener on
//! 127.0.0.1:5061 and sba-mediation's on 127.0.0.1:5071, both with the one certificate generated
//! under var/tls, and both answering SIP over it): baresip registers over TLS,
//! checking that certificate, and is called over its TLS flow; `sbactl tls install` puts a
//! company CA's certificate in place while the call is up: new handshakes present it at once,
//! the call (and the phone's TLS connection) goes on and ends normally. Plain SIP sent to the
//! TLS port gets no answer. A second SIP stack, linphonec (its own TLS, mbedtls), registers over
//! TLS with digest and calls the TLS baresip, while a stranger at 127.0.0.2 with its own TLS
//! connection cannot move linphonec's binding without the password.
//! RFC 5626 outbound: baresip (`sipnat=outbound`) registers over TLS with an instance and
//! reg-id; new connections to its listening port are then dropped (nftables), so requests can
//! reach it only over its own connection: a call to it and the caller's BYE arrive, its own
//! call out is answered and the callee's BYE comes back to it (both BYEs following the flow
//! token in our Record-Route), and not one connection to its port was attempted.
use holdfast_tests::local::{LocalAppliance, DOMAIN, REGISTRAR};
use holdfast_tests::no_new_connections::NoNewConnections;
use holdfast_tests::phones::{Baresip, Event, Linphonec, Phone, PhoneConfig};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::sip_client::register_authorization;
use holdfast_tests::tls_client::TlsUa;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);
const TLS: &str = "127.0.0.1:5061";
/// sba-mediation's TLS listener in the embedded default (trunks and PBXs connecting in).
const MEDIATION_TLS: &str = "127.0.0.1:5071";

fn config<'a>(user: &'a str, password: &'a str, port: u16, registrar: &str) -> PhoneConfig<'a> {
    PhoneConfig {
        user,
        password,
        domain: DOMAIN,
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        registrar: registrar.parse().unwrap(),
        expires: 3600,
        refresh: Duration::from_secs(3600),
    }
}

/// The SHA-256 fingerprint of the certificate a TLS handshake with `addr` presents now, as
/// openssl (a second TLS stack) sees it: "AB:CD:...".
fn presented(app: &LocalAppliance, addr: &str) -> String {
    let script = format!("openssl s_client -connect {addr} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256");
    let out = app.ns().command("sh").args(["-c", &script]).output().expect("openssl (apt-get install openssl)");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().rsplit('=').next().unwrap_or_default().to_string()
}

/// `sbactl tls show`'s SHA-256 line for the certificate files in `dir`.
fn shown(app: &LocalAppliance, dir: &Path) -> String {
    let out = app.sbactl(&["tls", "show", "--dir", &dir.to_string_lossy()]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines().find_map(|l| l.strip_prefix("SHA-256:")).map(|f| f.trim().to_string()).unwrap_or_else(|| panic!("{text}"))
}

/// A certificate for the appliance from a company CA (openssl), in `dir`: (cert, key).
fn company_certificate(dir: &Path) -> (String, String) {
    let (ca_key, ca, key, csr, cert) = ("ca.key", "ca.pem", "new.key", "new.csr", "new.pem");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl").current_dir(dir).args(args).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_key, "-out", ca, "-subj", "/CN=Company CA", "-days", "30"]);
    run(&["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=sba.branch.example"]);
    std::fs::write(dir.join("ext"), "subjectAltName=DNS:sba.branch.example,IP:127.0.0.1\n").unwrap();
    run(&["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, "-days", "30", "-extfile", "ext"]);
    (dir.join(cert).to_string_lossy().into(), dir.join(key).to_string_lossy().into())
}

#[test]
fn a_tls_phone_is_called_over_its_flow_and_a_new_certificate_needs_no_restart() {
    let scratch = Scratch::new("tls-phones");
    let app = LocalAppliance::start(&scratch.path);
    app.add_users(&[("3001", "pw-3001"), ("3002", "pw-3002")]);
    let tls_dir = scratch.path.join("var/tls");
    let generated = tls_dir.join("cert.pem");
    assert!(generated.exists(), "the embedded default generated no certificate: {}", app.log("sba-registrar"));

    let tls_phone = Baresip::start_tls(app.ns(), &scratch.path, &config("3001", "pw-3001", 5066, TLS), 120, &generated);
    let mut caller = Baresip::start(app.ns(), &scratch.path, &config("3002", "pw-3002", 5064, REGISTRAR), 120);
    let deadline = Instant::now() + WAIT;
    while app.binding("3001").is_none() || app.binding("3002").is_none() {
        assert!(Instant::now() < deadline, "not registered:\n{}\n{}", tls_phone.console(), app.log("sba-registrar"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let bound = app.binding("3001").unwrap();
    assert_eq!(bound["transport"], "tls", "{bound}");
    assert!(bound["contact"].as_str().unwrap_or_default().contains("transport=tls"), "{bound}");
    let old = shown(&app, &tls_dir);
    assert_eq!(presented(&app, TLS), old, "the registrar presents the certificate sbactl shows");

    // sba-mediation listens for TLS too, with the same certificate: a handshake checked against
    // it (by the CA file and the address), and SIP answered over it.
    assert_eq!(presented(&app, MEDIATION_TLS), old, "sba-mediation presents the certificate sbactl shows");
    let mut pbx = TlsUa::connect(app.ns(), MEDIATION_TLS.parse().unwrap(), &generated, "pbx", DOMAIN);
    let answer = pbx.options(&format!("sip:{MEDIATION_TLS}"));
    assert_eq!(answer.status, 200, "OPTIONS over TLS to sba-mediation: {} {}\n{}", answer.status, answer.reason, app.log("sba-mediation"));

    caller.dial(&format!("sip:3001@{DOMAIN}"));
    assert!(tls_phone.wait(Event::Connected, 0, WAIT), "the TLS phone was not reached:\n{}", caller.console());
    assert!(caller.wait(Event::Connected, 0, WAIT), "{}", caller.console());

    // A company CA's certificate while the call is up.
    let (cert, key) = company_certificate(&scratch.path);
    let out = app.sbactl(&["tls", "install", &cert, &key, "--dir", &tls_dir.to_string_lossy()]);
    assert!(out.status.success(), "sbactl tls install: {}", String::from_utf8_lossy(&out.stderr));
    let new = shown(&app, &tls_dir);
    assert_ne!(new, old);
    let deadline = Instant::now() + WAIT;
    while presented(&app, TLS) != new || presented(&app, MEDIATION_TLS) != new {
        assert!(Instant::now() < deadline, "new handshakes still present the old certificate: {}\n{}", app.log("sba-registrar"), app.log("sba-mediation"));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(app.log("sba-registrar").contains("new appliance certificate"), "{}", app.log("sba-registrar"));

    // The call and the phone's TLS connection went on: the hang-up reaches it over the flow.
    std::thread::sleep(Duration::from_secs(1));
    caller.hang_up();
    assert!(tls_phone.wait(Event::Ended, 0, WAIT), "the BYE did not reach the TLS phone:\n{}", tls_phone.console());
    assert_eq!(app.binding("3001").unwrap()["source"], bound["source"], "the phone kept its TLS connection");

    // Plain SIP on the TLS port is no handshake: the connection closes without an answer.
    let mut plain = app
        .ns()
        .command("bash")
        .args(["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/5061; printf 'OPTIONS sip:{DOMAIN} SIP/2.0\\r\\n\\r\\n' >&3; timeout 5 cat <&3")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("bash");
    let mut answer = String::new();
    plain.stdout.take().unwrap().read_to_string(&mut answer).unwrap();
    let _ = plain.wait();
    assert!(!answer.contains("SIP/2.0"), "plain SIP answered on the TLS port: {answer}");
}

#[test]
fn linphonec_registers_over_tls_with_digest_and_calls_while_a_stranger_cannot_take_its_binding() {
    let scratch = Scratch::new("tls-linphonec");
    let app = LocalAppliance::start(&scratch.path);
    app.add_users(&[("3001", "pw-3001"), ("3004", "pw-3004")]);
    let generated = scratch.path.join("var/tls/cert.pem");
    let baresip = Baresip::start_tls(app.ns(), &scratch.path, &config("3001", "pw-3001", 5066, TLS), 120, &generated);
    let mut linphonec = Linphonec::start_tls(app.ns(), &scratch.path, &config("3004", "pw-3004", 5068, TLS), &generated);
    let deadline = Instant::now() + WAIT;
    while app.binding("3001").is_none() || app.binding("3004").is_none() {
        assert!(Instant::now() < deadline, "not registered:\n{}\n{}", linphonec.terminal().text(), app.log("sba-registrar"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let bound = app.binding("3004").unwrap();
    assert_eq!(bound["transport"], "tls", "{bound}");
    assert!(bound["user_agent"].as_str().unwrap_or_default().contains("Linphone"), "{bound}");

    // A stranger on another host, over a TLS connection of its own, knows the user name only.
    let stranger = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut mallory = TlsUa::connect_from(app.ns(), stranger, TLS.parse().unwrap(), &generated, "3004", DOMAIN);
    let contact = "sip:3004@127.0.0.2:5099;transport=tls";
    let challenge = mallory.register(contact, 600, None);
    assert_eq!(challenge.status, 401, "{} {}", challenge.status, challenge.reason);
    let guessed = register_authorization(&challenge, DOMAIN, "3004", "guessed", 1);
    let refused = mallory.register(contact, 600, Some(&guessed));
    assert!(matches!(refused.status, 401 | 403), "a guessed password: {} {}", refused.status, refused.reason);
    assert_eq!(app.binding("3004").unwrap()["contact"], bound["contact"], "the stranger moved linphonec's binding");

    // linphonec calls the TLS baresip through the registrar and hangs up.
    linphonec.dial(&format!("sip:3001@{DOMAIN}"));
    assert!(baresip.wait(Event::Connected, 0, WAIT), "linphonec's call did not reach baresip:\n{}\n{}", linphonec.terminal().text(), app.log("sba-registrar"));
    assert!(linphonec.wait(Event::Connected, 0, WAIT), "{}", linphonec.terminal().text());
    std::thread::sleep(Duration::from_secs(1));
    linphonec.hang_up();
    assert!(baresip.wait(Event::Ended, 0, WAIT), "linphonec's BYE did not reach baresip:\n{}", baresip.console());
    assert_eq!(app.binding("3004").unwrap()["contact"], bound["contact"]);
}

#[test]
fn an_outbound_tls_phone_is_reached_only_over_its_own_connection_both_ways() {
    let scratch = Scratch::new("tls-outbound");
    let app = LocalAppliance::start(&scratch.path);
    app.add_users(&[("3001", "pw-3001"), ("3002", "pw-3002")]);
    let generated = scratch.path.join("var/tls/cert.pem");
    // baresip listens for TLS on its SIP port + 1.
    let mut phone = Baresip::start_tls_outbound(app.ns(), &scratch.path, &config("3001", "pw-3001", 5066, TLS), 120, &generated);
    let mut other = Baresip::start(app.ns(), &scratch.path, &config("3002", "pw-3002", 5064, REGISTRAR), 120);
    let deadline = Instant::now() + WAIT;
    while app.binding("3001").is_none() || app.binding("3002").is_none() {
        assert!(Instant::now() < deadline, "not registered:\n{}\n{}", phone.console(), app.log("sba-registrar"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let bound = app.binding("3001").unwrap();
    assert_eq!(bound["transport"], "tls", "{bound}");
    assert_eq!(bound["reg_id"], 1, "baresip asked for outbound: {bound}");
    assert!(bound["instance"].is_string(), "{bound}");

    let blocked = NoNewConnections::to(app.ns(), 5067);
    // Called: the INVITE and the caller's BYE reach the phone over its own connection.
    other.dial(&format!("sip:3001@{DOMAIN}"));
    assert!(phone.wait(Event::Connected, 0, WAIT), "the phone was not reached over its flow:\n{}\n{}", other.console(), app.log("sba-registrar"));
    assert!(other.wait(Event::Connected, 0, WAIT), "{}", other.console());
    // baresip reports a BYE from the far end as its session closed "by peer" (libre's
    // ECONNRESET); its "terminated" line after it came late or not at all in these runs.
    let bye = "sip:3002@branch.local: session closed: Connection reset by peer";
    other.hang_up();
    assert!(phone.wait_for(bye, 0, WAIT), "the caller's BYE did not reach the phone over its flow:\n{}\n{}", phone.console(), app.log("sba-registrar"));

    // Calling: the callee's BYE comes back over the phone's connection too.
    phone.dial(&format!("sip:3002@{DOMAIN}"));
    assert!(other.wait(Event::Connected, 1, WAIT), "the phone's call did not reach 3002:\n{}\n{}", phone.console(), app.log("sba-registrar"));
    assert!(phone.wait(Event::Connected, 1, WAIT), "{}", phone.console());
    other.hang_up();
    assert!(phone.wait_for(bye, 1, WAIT), "the callee's BYE did not come back over the phone's flow:\n{}\n{}", phone.console(), app.log("sba-registrar"));

    assert_eq!(blocked.attempts(), 0, "a connection to the phone's own port was attempted:\n{}", app.log("sba-registrar"));
    assert_eq!(app.binding("3001").unwrap()["source"], bound["source"], "the phone kept its one TLS connection");
}
