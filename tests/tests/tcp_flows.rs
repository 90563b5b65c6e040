//! A phone registered over TCP stays reachable when its connection is gone: after a registrar
//! restart (kill -9) its binding's flow, the phone's ephemeral port, is closed, and a call made
//! at once reaches the phone at its Contact on a new connection (RFC 3261 §18.1.1), instead of
//! failing until the phone's next refresh.
use holdfast_sip::transport::Protocol;
use holdfast_tests::local::{LocalAppliance, DOMAIN};
use holdfast_tests::phones::{Baresip, BaresipAudio, Event, Phone, PhoneConfig};
use holdfast_tests::scratch::Scratch;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

fn config<'a>(user: &'a str, password: &'a str, port: u16) -> PhoneConfig<'a> {
    LocalAppliance::phone(user, password, port, 3600)
}

/// `caller` calls 3001, which answers; the caller hangs up.
fn call_3001(caller: &mut Baresip, callee: &Baresip, n: usize) {
    caller.dial(&format!("sip:3001@{DOMAIN}"));
    assert!(callee.wait(Event::Connected, n, WAIT), "the TCP phone was not reached:\n{}", caller.console());
    assert!(caller.wait(Event::Connected, n, WAIT), "{}", caller.console());
    // baresip 1.0 was seen to stall ending a call hung up the moment it was answered.
    std::thread::sleep(Duration::from_secs(1));
    caller.hang_up();
    assert!(callee.wait(Event::Ended, n, WAIT), "{}", callee.console());
}

#[test]
fn a_tcp_phone_is_called_at_once_after_a_registrar_restart() {
    let scratch = Scratch::new("tcp-flows");
    let mut app = LocalAppliance::start(&scratch.path);
    app.add_users(&[("3001", "pw-3001"), ("3002", "pw-3002")]);
    let tcp_phone =
        Baresip::start_with(app.ns(), &scratch.path, &config("3001", "pw-3001", 5066), 120, BaresipAudio::Echo, Protocol::Tcp);
    let mut caller = Baresip::start(app.ns(), &scratch.path, &config("3002", "pw-3002", 5064), 120);
    let deadline = Instant::now() + WAIT;
    while app.binding("3001").is_none() || app.binding("3002").is_none() {
        assert!(Instant::now() < deadline, "not registered:\n{}\n{}", tcp_phone.console(), caller.console());
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = app.binding("3001").unwrap();
    assert_eq!(before["transport"], "tcp", "{before}");
    call_3001(&mut caller, &tcp_phone, 0);

    app.restart_registrar();
    let after = app.binding("3001").expect("the binding is kept across the restart");
    assert_eq!(after["source"], before["source"], "the phone has not registered again: {after}");
    call_3001(&mut caller, &tcp_phone, 1);
    assert_eq!(app.binding("3001").unwrap()["source"], before["source"], "reached without a new registration");
}
