//! baresip, a real SIP phone, registers with its password and shows in `sbactl registrations`.
use holdfast_tests::ports::free_port;
use holdfast_tests::registrar::{Registrar, DOMAIN};
use holdfast_tests::scratch::Scratch;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn baresip_registers_with_a_password() {
    let scratch = Scratch::new("reg-baresip");
    let reg = Registrar::start(&scratch, "", &[("frank", "pw-frank")]);
    let phone = scratch.path.join("baresip");
    std::fs::create_dir_all(&phone).unwrap();
    std::fs::write(
        phone.join("config"),
        format!(
            "sip_listen 127.0.0.1:{}\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule_app account.so\n",
            free_port()
        ),
    )
    .unwrap();
    std::fs::write(
        phone.join("accounts"),
        format!("<sip:frank@{DOMAIN}>;auth_pass=pw-frank;outbound=\"sip:{}\";regint=600\n", reg.addr),
    )
    .unwrap();
    let mut baresip = Command::new("baresip")
        .arg("-f")
        .arg(&phone)
        .args(["-t", "20"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start baresip (apt-get install baresip)");

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut found = None;
    while Instant::now() < deadline && found.is_none() {
        found = reg.registrations().into_iter().find(|b| b["aor"] == format!("sip:frank@{DOMAIN}"));
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = baresip.kill();
    let _ = baresip.wait();
    let binding = found.expect("baresip's binding never appeared in sbactl registrations");
    let contact = binding["contact"].as_str().unwrap();
    assert!(contact.starts_with("sip:frank-") && contact.contains("@127.0.0.1:"), "{binding}");
    let expires = binding["expires"].as_u64().unwrap();
    assert!(expires > 500 && expires <= 600, "{binding}");
    assert!(binding["user_agent"].as_str().unwrap_or_default().contains("baresip"), "{binding}");
}
