//! sba-mediation's trunks over TLS, against openssl s_server as the carriers' TLS ends: a
//! trunk whose certificate carries its `tls_name` and chains to its `tls_ca` receives the
//! health check's OPTIONS inside TLS; a trunk presenting a certificate for another name (from
//! the same CA) is refused, with a log line that names the trunk, the expected name and the
//! reason, and receives no SIP. The mediation's own TLS listener presents the appliance
//! certificate `sbactl tls show` prints.
use holdfast_tests::bins::bin;
use holdfast_tests::netns::KillOnDrop;
use holdfast_tests::scratch::{free_port, Scratch};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl (apt-get install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A carrier's certificate for `name` from the test's CA (ca.pem), as `<file>.pem`/`<file>.key`.
fn carrier_cert(dir: &Path, file: &str, name: &str) {
    let (key, csr, cert, ext) = (format!("{file}.key"), format!("{file}.csr"), format!("{file}.pem"), format!("{file}.ext"));
    openssl(dir, &["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", &key, "-out", &csr, "-subj", &format!("/CN={name}")]);
    std::fs::write(dir.join(&ext), format!("subjectAltName=DNS:{name}\n")).unwrap();
    openssl(dir, &["x509", "-req", "-in", &csr, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", &cert, "-days", "2", "-extfile", &ext]);
}

/// openssl s_server on `port` with `<file>.pem`, what it receives written to `<file>.out`.
fn carrier(dir: &Path, file: &str, port: u16) -> KillOnDrop {
    let out = std::fs::File::create(dir.join(format!("{file}.out"))).unwrap();
    let child = Command::new("openssl")
        .current_dir(dir)
        .args(["s_server", "-quiet", "-accept", &format!("127.0.0.1:{port}"), "-cert", &format!("{file}.pem"), "-key", &format!("{file}.key")])
        // s_server ends a connection at EOF on its input: keep it open.
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server");
    KillOnDrop(child)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool, context: impl Fn() -> String) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}:\n{}", context());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_trunk_is_reached_over_tls_by_name_and_a_wrong_certificate_is_refused_and_logged() {
    let scratch = Scratch::new("tls-trunks");
    let dir = &scratch.path;
    openssl(dir, &["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=Carrier CA", "-days", "2"]);
    carrier_cert(dir, "good", "sip.carrier.example");
    carrier_cert(dir, "bad", "other.example");
    let (good_port, bad_port, sip_port, tls_port) = (free_port(), free_port(), free_port(), free_port());
    let _good = carrier(dir, "good", good_port);
    let _bad = carrier(dir, "bad", bad_port);

    let ca = dir.join("ca.pem");
    let config = dir.join("sba.toml");
    let trunk = |name: &str, port: u16| {
        format!(
            "[[mediation.trunks]]\nname = \"{name}\"\nkind = \"carrier\"\naddress = \"127.0.0.1:{port}\"\ntransport = \"tls\"\n\
             tls_name = \"sip.carrier.example\"\ntls_ca = \"{}\"\n\n",
            ca.display()
        )
    };
    std::fs::write(
        &config,
        format!(
            "[mediation]\nlisten = \"127.0.0.1:{sip_port}\"\ntls_listen = \"127.0.0.1:{tls_port}\"\ntls_dir = \"{}\"\n\
             db = \"{}\"\noptions_interval_ms = 200\nmedia_ports = [{}, {}]\n\n{}{}",
            dir.join("tls").display(),
            dir.join("sba.db").display(),
            40000,
            40099,
            trunk("itsp", good_port),
            trunk("impostor", bad_port),
        ),
    )
    .unwrap();
    let log = dir.join("sba-mediation.log");
    let mediation = Command::new(bin("sba-mediation"))
        .arg("--config")
        .arg(&config)
        .env("HOLDFAST_LOG_STDERR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start sba-mediation");
    let _mediation = KillOnDrop(mediation);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();

    wait_until("the OPTIONS inside TLS at the trunk whose certificate verifies", || read("good.out").contains("OPTIONS sip:"), || read("sba-mediation.log"));
    let expected = format!("TLS to trunk impostor 127.0.0.1:{bad_port} refused (expected name sip.carrier.example)");
    wait_until("the refusal's log line", || read("sba-mediation.log").contains(&expected), || read("sba-mediation.log"));
    let line = read("sba-mediation.log").lines().find(|l| l.contains(&expected)).unwrap_or_default().to_string();
    assert!(line.contains("not valid for name") && line.contains("other.example"), "the reason is named: {line}");
    assert!(!read("bad.out").contains("SIP/2.0"), "the impostor received SIP: {}", read("bad.out"));
    assert!(read("good.out").contains("SIP/2.0/TLS"), "the OPTIONS says it travels over TLS: {}", read("good.out"));

    // The listener presents the appliance certificate.
    let script = format!("openssl s_client -connect 127.0.0.1:{tls_port} </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256");
    let presented = Command::new("sh").args(["-c", &script]).output().expect("openssl s_client");
    let presented = String::from_utf8_lossy(&presented.stdout).trim().rsplit('=').next().unwrap_or_default().to_string();
    let shown = Command::new(bin("sbactl")).args(["tls", "show", "--dir"]).arg(dir.join("tls")).output().expect("sbactl");
    let shown = String::from_utf8_lossy(&shown.stdout).to_string();
    let fingerprint = shown.lines().find_map(|l| l.strip_prefix("SHA-256:")).map(str::trim).unwrap_or_else(|| panic!("{shown}"));
    assert_eq!(presented, fingerprint, "{shown}");
}
