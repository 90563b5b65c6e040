//! Registrar behaviour that sipp cannot express: SHA-256 digest, nonce-count replay, the
//! failure throttle, malformed and unknown requests, users added while it runs, config errors.
use holdfast_sip::message::HeaderName;
use holdfast_tests::bins::bin;
use holdfast_tests::registrar::{Registrar, DOMAIN};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::sip_client::Ua;
use std::time::{Duration, Instant};

#[test]
fn sha256_digest_registers_and_a_replayed_nonce_count_is_refused() {
    let scratch = Scratch::new("proto-sha256");
    let reg = Registrar::start(&scratch, "digest_algorithms = [\"SHA-256\", \"MD5\"]", &[("gina", "pw-gina")]);
    let mut ua = Ua::new(reg.addr, "gina", DOMAIN);
    let challenge = ua.request(600, None);
    assert_eq!(challenge.status, 401);
    let offered: Vec<&str> = challenge.headers.get_all(&HeaderName::WwwAuthenticate).collect();
    assert_eq!(offered.len(), 2);
    assert!(offered[0].contains("algorithm=SHA-256") && offered[1].contains("algorithm=MD5"), "{offered:?}");

    let auth = ua.answer(&challenge, "pw-gina", 1);
    assert!(auth.contains("algorithm=SHA-256"), "{auth}");
    let ok = ua.request(600, Some(&auth));
    assert_eq!(ok.status, 200, "{}", ok.reason);
    assert_eq!(reg.registrations().len(), 1);

    // The same nonce-count again (a captured request replayed) gets no binding refresh.
    let replay = ua.request(900, Some(&auth));
    assert_eq!(replay.status, 401, "a replayed nonce-count must be challenged, got {} {}", replay.status, replay.reason);
    assert!(reg.registrations()[0]["expires"].as_u64().unwrap() <= 600);
    // The next count is fine.
    let next = ua.request(900, Some(&ua.answer(&challenge, "pw-gina", 2)));
    assert_eq!(next.status, 200, "{}", next.reason);
}

/// Challenges go out without a transaction: a retransmitted REGISTER is challenged again, with
/// the same To tag (RFC 3261 §8.2.7), and either challenge's nonce leads to a binding.
#[test]
fn a_retransmitted_register_is_challenged_again_with_the_same_tag() {
    let scratch = Scratch::new("proto-stateless-401");
    let reg = Registrar::start(&scratch, "", &[("ivy", "pw-ivy")]);
    let mut ua = Ua::new(reg.addr, "ivy", DOMAIN);
    let first = ua.register(600, None).to_bytes().unwrap();
    ua.send(&first);
    let a = ua.recv();
    ua.send(&first);
    let b = ua.recv();
    assert_eq!((a.status, b.status), (401, 401));
    let tag = |r: &holdfast_sip::message::Response| r.to_header().expect("To").tag().map(str::to_string);
    assert!(tag(&a).is_some(), "a 401 carries a To tag");
    assert_eq!(tag(&a), tag(&b), "a retransmission gets the same To tag");
    // Another request (new branch and CSeq) gets a tag of its own.
    let c = ua.request(600, None);
    assert_ne!(tag(&a), tag(&c));
    let ok = ua.request(600, Some(&ua.answer(&b, "pw-ivy", 1)));
    assert_eq!(ok.status, 200, "{}", ok.reason);
    assert_eq!(reg.registrations().len(), 1);
}

/// A phone set up with a wrong digest username ("carol@" for carol) is told apart in the log
/// from a wrong password: the line names the username it sent, not the AOR it registers.
#[test]
fn the_log_names_the_digest_username_the_phone_sent() {
    use holdfast_sip::auth::DigestClient;
    let scratch = Scratch::new("proto-digest-username");
    let reg = Registrar::start(&scratch, "", &[("carol", "pw-carol")]);
    let mut ua = Ua::new(reg.addr, "carol", DOMAIN);
    let challenge = ua.request(600, None);
    let values: Vec<&str> = challenge.headers.get_all(&HeaderName::WwwAuthenticate).collect();
    let chosen = DigestClient::preferred_challenge(&values).expect("a digest challenge");
    let authorize = |username: &str, password: &str| {
        DigestClient::authorize(chosen, "REGISTER", &format!("sip:{DOMAIN}"), username, password, "0a4f113b", 1).unwrap()
    };
    assert_eq!(ua.request(600, Some(&authorize("carol@", "pw-carol"))).status, 401);
    assert_eq!(ua.request(600, Some(&authorize("carol", "wrong"))).status, 401);
    let log = std::fs::read_to_string(reg.config.with_extension("log")).unwrap_or_default();
    assert!(log.contains(&format!("REGISTER for carol@{DOMAIN} from 127.0.0.1:")), "{log}");
    assert!(log.contains(&format!("digest username \"carol@\" is no user of {DOMAIN}")), "{log}");
    assert!(log.contains("wrong password for digest username \"carol\""), "{log}");
    assert!(!log.contains("unknown user"), "{log}");
}

/// `sbactl status` shows its times as UTC dates and how long ago, not raw Unix seconds; `--json`
/// keeps each Unix time and adds it in RFC 3339 beside it.
#[test]
fn sbactl_status_shows_times_people_read() {
    let scratch = Scratch::new("proto-status-times");
    let reg = Registrar::start(&scratch, "", &[]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let json = loop {
        let out = reg.sbactl(&["status", "--json"]);
        if out.status.success() {
            break serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("status JSON");
        }
        assert!(Instant::now() < deadline, "no status: {}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(100));
    };
    let since = json["since"].as_i64().expect("since");
    let rfc3339 = json["since_rfc3339"].as_str().expect("since_rfc3339");
    // GNU date says what that second is.
    let date = std::process::Command::new("date").args(["-u", &format!("-d@{since}"), "+%Y-%m-%dT%H:%M:%S.000Z"]).output().expect("date");
    assert_eq!(rfc3339, String::from_utf8_lossy(&date.stdout).trim(), "since {since}");
    assert!(json["started_rfc3339"].is_string(), "{json}");

    let out = reg.sbactl(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains(&since.to_string()), "a raw epoch: {text}");
    let wan = text.lines().find(|l| l.starts_with("wan:")).unwrap_or_else(|| panic!("{text}"));
    assert!(wan.contains(&format!("since {rfc3339} (")) && (wan.ends_with(" ago)") || wan.ends_with("(just now)")), "{wan}");
}

#[test]
fn repeated_failures_from_one_source_are_slowed_down() {
    let scratch = Scratch::new("proto-throttle");
    let reg = Registrar::start(&scratch, "", &[("hank", "right")]);
    let mut ua = Ua::new(reg.addr, "hank", DOMAIN);
    let mut first = Duration::ZERO;
    let mut last = Duration::ZERO;
    for attempt in 0..7 {
        let challenge = ua.request(600, None);
        let wrong = ua.answer(&challenge, "wrong", 1);
        let started = Instant::now();
        let r = ua.request(600, Some(&wrong));
        let took = started.elapsed();
        assert_ne!(r.status, 200);
        if attempt == 0 {
            first = took;
        }
        last = took;
    }
    assert!(first < Duration::from_millis(200), "the first failure is answered at once ({first:?})");
    assert!(last >= Duration::from_millis(250), "the 7th failure in a row is answered late ({last:?})");
    assert!(reg.registrations().is_empty());
}

#[test]
fn malformed_and_unknown_requests_get_clear_answers() {
    let scratch = Scratch::new("proto-bad");
    let reg = Registrar::start(&scratch, "", &[("x", "pw-x")]);
    let mut ua = Ua::new(reg.addr, "x", DOMAIN);
    let local = ua.local();
    let head = |method: &str, extra: &str| {
        format!(
            "{method} sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-{method}\r\n\
             From: <sip:x@{DOMAIN}>;tag=1\r\nTo: <sip:x@{DOMAIN}>\r\nCall-ID: c-{method}\r\n\
             CSeq: 1 {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
        )
    };
    ua.send(head("REGISTER", "Expires: soon\r\nContact: <sip:x@127.0.0.1>\r\n").as_bytes());
    let r = ua.recv();
    assert_eq!(r.status, 400);
    ua.send(head("REGISTER", "Content-Length: 12\r\n").as_bytes());
    let r = ua.recv();
    assert_eq!(r.status, 400);
    assert!(r.reason.to_ascii_lowercase().contains("content-length"), "{}", r.reason);
    ua.send(head("FROBNICATE", "").as_bytes());
    let r = ua.recv();
    assert_eq!(r.status, 501);
    assert!(r.headers.get_all(&HeaderName::Allow).any(|m| m == "REGISTER"));
    // A caller that has not registered here may place no call (toll fraud): refused before the
    // proxy says anything about the callee.
    ua.send(head("INVITE", "").as_bytes());
    let r = ua.recv();
    assert_eq!((r.status, r.reason.as_str()), (403, "Forbidden (caller not registered here)"));
    let challenge = ua.request(600, None);
    let authorization = ua.answer(&challenge, "pw-x", 1);
    assert_eq!(ua.request(600, Some(&authorization)).status, 200);
    // Registered: an INVITE for nobody in particular, and one for a user who is not registered.
    ua.send(head("INVITE", "").replace("branch=z9hG4bK-INVITE", "branch=z9hG4bK-INVITE-1").as_bytes());
    assert_eq!(ua.recv().status, 404);
    let to_nobody = head("INVITE", "")
        .replace(&format!("INVITE sip:{DOMAIN}"), &format!("INVITE sip:nobody@{DOMAIN}"))
        .replace("branch=z9hG4bK-INVITE", "branch=z9hG4bK-INVITE-2");
    ua.send(to_nobody.as_bytes());
    assert_eq!(ua.recv().status, 404);
    ua.send(head("OPTIONS", "").as_bytes().iter().map(|&b| if b == b'2' { b'3' } else { b }).collect::<Vec<u8>>().as_slice());
    let r = ua.recv();
    assert_eq!(r.status, 505);
}

#[test]
fn users_added_and_removed_while_running_take_effect() {
    let scratch = Scratch::new("proto-live-users");
    let reg = Registrar::start(&scratch, "", &[("ivy", "pw-ivy")]);
    reg.add_user("jack", "pw-jack");
    let registered = |name: &str, pw: &str| {
        let mut ua = Ua::new(reg.addr, name, DOMAIN);
        let challenge = ua.request(600, None);
        if challenge.status != 401 {
            return challenge.status;
        }
        let auth = ua.answer(&challenge, pw, 1);
        ua.request(600, Some(&auth)).status
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while registered("jack", "pw-jack") != 200 {
        assert!(Instant::now() < deadline, "a user added with sbactl was never accepted");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = reg.sbactl(&["user", "list"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("sip:ivy@{DOMAIN}\nsip:jack@{DOMAIN}\n"));
    assert!(reg.sbactl(&["user", "remove", "jack", "--domain", DOMAIN]).status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while registered("jack", "pw-jack") == 200 {
        assert!(Instant::now() < deadline, "a removed user still registers");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!reg.sbactl(&["user", "remove", "jack", "--domain", DOMAIN]).status.success(), "removing twice is an error");
}

#[test]
fn config_errors_name_the_key_and_the_line() {
    let scratch = Scratch::new("proto-config");
    let path = scratch.file("bad.toml");
    std::fs::write(&path, "[registrar]\nlisten = \"127.0.0.1:5999\"\ndb = \"x.db\"\ndomain = \"b\"\nmin_expires = \"ten\"\n").unwrap();
    let out = std::process::Command::new(bin("sba-registrar")).arg("--config").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 5") && err.contains("registrar.min_expires"), "{err}");
}
