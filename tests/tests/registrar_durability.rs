//! A REGISTER answered 200 means its binding is on disk: kill -9 the registrar in the middle of
//! a sipp REGISTER load, start it again, and every acknowledged binding must still be there.
use holdfast_tests::registrar::{Registrar, DOMAIN};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::sipp::Sipp;
use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

const USERS: usize = 5000;

#[test]
fn kill9_under_register_load_loses_no_acknowledged_binding() {
    let scratch = Scratch::new("reg-kill9");
    let mut csv = String::from("SEQUENTIAL\n");
    for i in 0..USERS {
        csv.push_str(&format!("user{i};pw{i}\n"));
    }
    let users = scratch.file("users.csv");
    std::fs::write(&users, &csv).unwrap();
    let mut reg = Registrar::start(&scratch, "digest_algorithms = [\"MD5\"]", &[]);
    let out = reg.sbactl(&["user", "import", users.to_str().unwrap(), "--domain", DOMAIN]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A fresh start loads the imported users before it answers.
    reg.kill9();
    reg.restart();

    // 1,000 registrations a second for 5 s, each challenged and then authenticated.
    let mut cmd = Sipp::new("register_load_auth.xml", reg.addr)
        .key("domain", DOMAIN)
        .arg("-inf")
        .arg(users.to_str().unwrap())
        .arg("-s")
        .arg("[field0]")
        .arg("-ap")
        .arg("[field1]")
        .arg("-trace_logs")
        .arg("-recv_timeout")
        .arg("3000")
        .calls(USERS as u32, 1000)
        .command(&scratch.path, 60);
    let sipp = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start sipp");
    std::thread::sleep(Duration::from_millis(2500));
    reg.kill9();
    let status = sipp.wait_with_output().expect("sipp ran").status;

    let acked: HashSet<String> = std::fs::read_dir(&scratch.path)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_logs.log"))
        .flat_map(|e| std::fs::read_to_string(e.path()).unwrap_or_default().lines().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|l| l.strip_prefix("ACKED ").map(|u| format!("sip:{u}@{DOMAIN}")))
        .collect();
    assert!(acked.len() > 100, "too few registrations were acknowledged before the kill ({}; sipp {status})", acked.len());
    assert!(acked.len() < USERS, "the kill came after the load ended; nothing was tested");

    reg.restart();
    let stored: HashSet<String> =
        reg.registrations().iter().filter_map(|b| b["aor"].as_str().map(str::to_string)).collect();
    let lost: Vec<&String> = acked.difference(&stored).collect();
    assert!(lost.is_empty(), "{} acknowledged bindings lost, e.g. {:?}", lost.len(), lost.iter().take(5).collect::<Vec<_>>());
    eprintln!("{} acknowledged before kill -9, all {} found after restart ({} stored)", acked.len(), acked.len(), stored.len());
}
