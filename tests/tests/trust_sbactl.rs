//! sbactl's doors (issue 11, item 8): no password on the command line, a mistyped --db is an
//! error rather than a fresh database, and `user import` keeps a quoted `;` in a password and
//! takes Kamailio's MD5 HA1 column. The imported users register with their real passwords
//! while the same names with the wrong (or the once-truncated) password from 127.0.0.2 fail.
use holdfast_tests::bins::bin;
use holdfast_tests::registrar::{with_stdin, Registrar, DOMAIN};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::sip_client::Ua;
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// sbactl on `db` with `line` on its standard input.
fn sbactl(db: &Path, args: &[&str], line: &str) -> Output {
    let mut command = Command::new(bin("sbactl"));
    command.arg("--db").arg(db).args(args);
    with_stdin(command, line)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn passwords_never_in_argv_and_a_wrong_db_is_refused() {
    let scratch = Scratch::new("trust-sbactl-db");
    let typo = scratch.file("sab.db");
    let out = sbactl(&typo, &["user", "add", "alice", "--domain", DOMAIN, "--password-stdin"], "pw-alice");
    assert!(!out.status.success(), "a user was added to a database that did not exist");
    assert!(stderr(&out).contains("sbactl --db") && stderr(&out).contains("init"), "{}", stderr(&out));
    assert!(!typo.exists(), "a mistyped --db created {}", typo.display());
    for args in [&["user", "list"][..], &["registrations"], &["cdr"]] {
        assert!(!sbactl(&typo, args, "").status.success(), "{args:?} on a missing database");
        assert!(!typo.exists());
    }

    let db = scratch.file("sba.db");
    let init = sbactl(&db, &["init"], "");
    assert!(init.status.success() && db.is_file(), "init: {}", stderr(&init));
    assert!(sbactl(&db, &["init"], "").status.success(), "init of an existing database");
    // The old form, with the password in argv, is not accepted at all.
    let argv = sbactl(&db, &["user", "add", "alice", "--domain", DOMAIN, "--password", "pw-alice"], "");
    assert!(!argv.status.success(), "--password on the command line was accepted");
    // No terminal and no --password-stdin: nothing to ask at, refused.
    let no_tty = sbactl(&db, &["user", "add", "alice", "--domain", DOMAIN], "pw-alice");
    assert!(!no_tty.status.success() && stderr(&no_tty).contains("--password-stdin"), "{}", stderr(&no_tty));
    let ok = sbactl(&db, &["user", "add", "alice", "--domain", DOMAIN, "--password-stdin"], "pw-alice");
    assert!(ok.status.success(), "{}", stderr(&ok));
    let list = sbactl(&db, &["user", "list"], "");
    assert_eq!(String::from_utf8_lossy(&list.stdout), format!("sip:alice@{DOMAIN}\n"));
}

/// MD5("bob:branch.test:bob;s3cret"), as Kamailio's subscriber.ha1 holds it.
const BOB_HA1: &str = "a55bfd351d7e5d10fc7d806555efd52c";

#[test]
fn import_keeps_quoted_semicolons_and_takes_kamailio_ha1() {
    let scratch = Scratch::new("trust-sbactl-import");
    let reg = Registrar::start(&scratch, "digest_algorithms = [\"MD5\"]", &[]);
    let sipp_csv = scratch.file("users.csv");
    std::fs::write(&sipp_csv, "SEQUENTIAL\ncarol;\"c;arol-pw\"\n").unwrap();
    let out = reg.sbactl(&["user", "import", sipp_csv.to_str().unwrap(), "--domain", DOMAIN]);
    assert!(out.status.success(), "{}", stderr(&out));
    // `mysql -B -e 'SELECT username, domain, ha1 FROM subscriber'`: a header, tabs, other domains.
    let kamailio = scratch.file("subscriber.tsv");
    std::fs::write(&kamailio, format!("username\tdomain\tha1\nbob\t{DOMAIN}\t{BOB_HA1}\neve\telsewhere.test\t{BOB_HA1}\n"))
        .unwrap();
    let out = reg.sbactl(&["user", "import", kamailio.to_str().unwrap(), "--domain", DOMAIN]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("added 1 users") && stdout.contains("left out 1 rows"), "{stdout}");

    let attempt = |from: &str, name: &str, password: &str| {
        let sock = UdpSocket::bind(format!("{from}:0")).expect("bind");
        let mut ua = Ua::with_socket(sock, reg.addr, name, DOMAIN);
        let challenge = ua.request(600, None);
        if challenge.status != 401 {
            return challenge.status;
        }
        let auth = ua.answer(&challenge, password, 1);
        ua.request(600, Some(&auth)).status
    };
    // The registrar reloads its users within a few seconds of the import.
    let deadline = Instant::now() + Duration::from_secs(10);
    while attempt("127.0.0.1", "bob", "bob;s3cret") != 200 {
        assert!(Instant::now() < deadline, "bob, imported by HA1, never registered with his password");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(attempt("127.0.0.1", "carol", "c;arol-pw"), 200, "carol's quoted password");
    // From a second address: the password the old import cut at ';', and a guess for bob.
    assert_ne!(attempt("127.0.0.2", "carol", "c"), 200, "the truncated password still works");
    assert_ne!(attempt("127.0.0.2", "bob", "bob"), 200, "a wrong password for an HA1 user works");
    assert_ne!(attempt("127.0.0.2", "eve", "bob;s3cret"), 200, "a user of another domain was imported");
    let aors: Vec<String> = reg.registrations().iter().filter_map(|b| b["aor"].as_str().map(str::to_string)).collect();
    assert_eq!(aors.len(), 2, "{aors:?}");
    // The real phones keep working after the attempts.
    assert_eq!(attempt("127.0.0.1", "bob", "bob;s3cret"), 200);
}
