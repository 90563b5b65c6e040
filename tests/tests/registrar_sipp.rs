//! The registrar against sipp (Debian's sip-tester) on loopback: RFC 3261 §10 registration with
//! RFC 7616 digest, as a phone would do it.
use holdfast_tests::registrar::{Registrar, DOMAIN};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::sipp::Sipp;

/// sipp 3.6 answers only the first challenge it reads, and knows only MD5.
const SIPP_AUTH: &str = "digest_algorithms = [\"MD5\", \"SHA-256\"]";

fn run(scratch: &Scratch, reg: &Registrar, scenario: &str, user: &str, password: &str) {
    let out = Sipp::new(scenario, reg.addr)
        .key("user", user)
        .key("domain", DOMAIN)
        .credentials(user, password)
        .arg("-trace_err")
        .run(&scratch.path, 30);
    let errors = std::fs::read_dir(&scratch.path)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        out.status.success(),
        "sipp {scenario} failed ({}):\n{}\n{errors}",
        out.status,
        String::from_utf8_lossy(&out.stdout).lines().rev().take(15).collect::<Vec<_>>().join("\n")
    );
}

fn contacts_of(reg: &Registrar, aor: &str) -> Vec<String> {
    let mut v: Vec<String> = reg
        .registrations()
        .into_iter()
        .filter(|b| b["aor"] == aor)
        .map(|b| b["contact"].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn register_refresh_unregister_wildcard() {
    let scratch = Scratch::new("reg-flow");
    let reg = Registrar::start(&scratch, SIPP_AUTH, &[("alice", "s3cret")]);
    run(&scratch, &reg, "register.xml", "alice", "s3cret");
    // The scenario ends with `Contact: *`: nothing is left.
    assert_eq!(contacts_of(&reg, "sip:alice@branch.test"), Vec::<String>::new());
}

#[test]
fn interval_too_brief_gets_423() {
    let scratch = Scratch::new("reg-423");
    let reg = Registrar::start(&scratch, SIPP_AUTH, &[("bob", "pw-bob")]);
    run(&scratch, &reg, "register_423.xml", "bob", "pw-bob");
    assert!(contacts_of(&reg, "sip:bob@branch.test").is_empty());
}

#[test]
fn wrong_password_is_challenged_again_and_binds_nothing() {
    let scratch = Scratch::new("reg-wrong");
    let reg = Registrar::start(&scratch, SIPP_AUTH, &[("carol", "right")]);
    run(&scratch, &reg, "register_wrong_password.xml", "carol", "right");
    assert!(reg.registrations().is_empty());
}

#[test]
fn two_contacts_for_one_aor() {
    let scratch = Scratch::new("reg-two");
    let reg = Registrar::start(&scratch, SIPP_AUTH, &[("dave", "pw")]);
    run(&scratch, &reg, "register_two_contacts.xml", "dave", "pw");
    let contacts = contacts_of(&reg, "sip:dave@branch.test");
    assert_eq!(contacts.len(), 2, "{contacts:?}");
    assert!(contacts.iter().any(|c| c.starts_with("sip:dave-mobile@")), "{contacts:?}");
    let rows = reg.registrations();
    assert!(rows.iter().all(|b| b["expires"].as_u64().is_some_and(|e| e > 590 && e <= 600)), "{rows:?}");
}

#[test]
fn unknown_user_is_refused() {
    let scratch = Scratch::new("reg-unknown");
    let reg = Registrar::start(&scratch, SIPP_AUTH, &[("erin", "pw")]);
    // mallory has no account: the challenge can never be met.
    run(&scratch, &reg, "register_wrong_password.xml", "mallory", "whatever");
    assert!(reg.registrations().is_empty());
}
