//! Second SIP stacks beside baresip, against the appliance on run-local's embedded defaults:
//! twinkle (console) and linphonec register with their passwords, call baresip and are called
//! (linphonec only calls: see tests/src/phones), hang up and are hung up on, and unregister.
use holdfast_tests::local::{LocalAppliance, DOMAIN};
use holdfast_tests::phones::{Baresip, Event, Linphonec, Phone, PhoneConfig, Twinkle};
use holdfast_tests::scratch::Scratch;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);
const TALK: Duration = Duration::from_secs(1);

fn config<'a>(user: &'a str, password: &'a str, port: u16) -> PhoneConfig<'a> {
    LocalAppliance::phone(user, password, port, 600)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A call from `caller` to `callee`, answered, then hung up by `caller` or by `callee`.
fn call<'a>(caller: &'a mut dyn Phone, callee: &'a mut dyn Phone, target: &str, callee_hangs_up: bool, n: usize) {
    caller.dial(target);
    assert!(caller.wait(Event::Connected, n, WAIT), "not connected:\n{}", caller.terminal().text());
    assert!(callee.wait(Event::Connected, n, WAIT), "not answered:\n{}", callee.terminal().text());
    std::thread::sleep(TALK);
    let (ending, other) = if callee_hangs_up { (callee, caller) } else { (caller, callee) };
    ending.hang_up();
    assert!(other.wait(Event::Ended, n, WAIT), "the hang-up did not reach the other end:\n{}", other.terminal().text());
    assert!(ending.wait(Event::Ended, n, WAIT), "{}", ending.terminal().text());
}

#[test]
fn twinkle_registers_calls_and_is_called_hangs_up_and_unregisters() {
    let scratch = Scratch::new("stack-twinkle");
    let app = LocalAppliance::start(&scratch.path);
    app.add_users(&[("3001", "pw-3001"), ("3003", "pw-3003")]);
    let mut baresip = Baresip::start(app.ns(), &scratch.path, &config("3001", "pw-3001", 5066), 120);
    let mut twinkle = Twinkle::start(app.ns(), &scratch.path, &config("3003", "pw-3003", 5063), 24000);
    wait_until("both registered", || app.binding("3001").is_some() && app.binding("3003").is_some());
    let binding = app.binding("3003").unwrap();
    assert!(binding["user_agent"].as_str().unwrap_or_default().contains("Twinkle"), "{binding}");

    // twinkle calls and hangs up; baresip calls and twinkle is hung up on.
    call(&mut twinkle, &mut baresip, &format!("sip:3001@{DOMAIN}"), false, 0);
    call(&mut baresip, &mut twinkle, &format!("sip:3003@{DOMAIN}"), false, 1);
    assert_eq!(twinkle.count(Event::Incoming), 1, "{}", twinkle.terminal().text());

    twinkle.unregister();
    wait_until("twinkle's binding gone", || app.binding("3003").is_none());
    assert!(app.binding("3001").is_some());
}

#[test]
fn linphonec_registers_calls_hangs_up_is_hung_up_on_and_unregisters() {
    let scratch = Scratch::new("stack-linphonec");
    let app = LocalAppliance::start(&scratch.path);
    app.add_users(&[("3001", "pw-3001"), ("3004", "pw-3004")]);
    let mut baresip = Baresip::start(app.ns(), &scratch.path, &config("3001", "pw-3001", 5066), 120);
    let mut linphonec = Linphonec::start(app.ns(), &scratch.path, &config("3004", "pw-3004", 5064));
    wait_until("both registered", || app.binding("3001").is_some() && app.binding("3004").is_some());
    let binding = app.binding("3004").unwrap();
    assert!(binding["user_agent"].as_str().unwrap_or_default().contains("Linphone"), "{binding}");

    // linphonec hangs up its first call; baresip hangs up the second.
    call(&mut linphonec, &mut baresip, &format!("sip:3001@{DOMAIN}"), false, 0);
    call(&mut linphonec, &mut baresip, &format!("sip:3001@{DOMAIN}"), true, 1);

    linphonec.unregister();
    wait_until("linphonec's binding gone", || app.binding("3004").is_none());
    assert!(app.binding("3001").is_some());
}
