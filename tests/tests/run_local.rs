//! The README's first command, as a new user meets it: the three services on exactly
//! image/run-local's embedded defaults (no config written by the test), two phones of different
//! stacks (linphonec and baresip) registered with their passwords, and the three kinds of call a
//! branch makes, each with its audio found again at both ends: phone to phone, phone to the
//! PSTN (the simulated exchange answers with a tone, then echoes), PSTN to phone (`sbactl pstn
//! call` to a branch DID).
use holdfast_sip::transport::Protocol;
use holdfast_tests::audio;
use holdfast_tests::local::{LocalAppliance, DOMAIN};
use holdfast_tests::phones::{Baresip, BaresipAudio, Event, Linphonec, Phone, PhoneConfig};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::wait::wait_until;
use std::time::Duration;

/// What each end sends: baresip a 440 Hz sine, linphonec a 600 Hz one; the exchange's tone is 1 kHz.
const BARESIP_HZ: u32 = 440;
const LINPHONEC_HZ: f64 = 600.0;
const EXCHANGE_HZ: f64 = 1000.0;
/// Each call talks this long before it is hung up.
const TALK: Duration = Duration::from_secs(3);
const WAIT: Duration = Duration::from_secs(15);


fn registered(app: &LocalAppliance, user: &str) -> bool {
    let out = app.sbactl(&["registrations", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
    rows.iter().any(|b| b["aor"] == format!("sip:{user}@{DOMAIN}"))
}

#[test]
fn run_local_places_every_kind_of_call_with_audio_both_ways() {
    let scratch = Scratch::new("run-local");
    let mut app = LocalAppliance::start(&scratch.path);
    app.add_users(&[("3001", "secret-3001"), ("3002", "secret-3002")]);
    let registrar = LocalAppliance::registrar_addr();
    let config = |user, password, port: u16| PhoneConfig {
        user,
        password,
        domain: DOMAIN,
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        registrar,
        expires: 600,
        refresh: Duration::from_secs(600),
    };
    let baresip =
        Baresip::start_with(app.ns(), &scratch.path, &config("3001", "secret-3001", 5066), 120, BaresipAudio::Tone(BARESIP_HZ), Protocol::Udp);
    let mut linphonec = Linphonec::start(app.ns(), &scratch.path, &config("3002", "secret-3002", 5062));
    let tone = scratch.file("linphonec-tone.wav");
    audio::write_tone(&tone, LINPHONEC_HZ, 30);
    wait_until("both phones registered", WAIT, || registered(&app, "3001") && registered(&app, "3002"));

    // Phone to phone: linphonec calls baresip through the registrar; media flows end to end.
    linphonec.dial(&format!("sip:3001@{DOMAIN}"));
    assert!(linphonec.wait(Event::Connected, 0, WAIT), "phone to phone:\n{}", linphonec.terminal().text());
    assert!(baresip.wait(Event::Connected, 0, WAIT), "phone to phone:\n{}", baresip.console());
    let heard = linphonec.play_and_record(&tone);
    std::thread::sleep(TALK);
    linphonec.hang_up();
    assert!(baresip.wait(Event::Ended, 0, WAIT), "baresip saw no BYE:\n{}", baresip.console());
    let baresip_heard = baresip.heard().expect("baresip kept no audio of the call");
    assert!(audio::seconds_of(&heard, f64::from(BARESIP_HZ)) >= 1.0, "linphonec did not hear baresip: {}", heard.display());
    assert!(audio::seconds_of(&baresip_heard, LINPHONEC_HZ) >= 1.0, "baresip did not hear linphonec: {}", baresip_heard.display());

    // Phone to PSTN: a national number goes through sba-mediation to sba-gateway's simulated
    // span; the exchange answers, plays its tone, then echoes linphonec's.
    linphonec.dial("5551234567");
    assert!(linphonec.wait(Event::Connected, 1, WAIT), "phone to PSTN:\n{}\n{}", linphonec.terminal().text(), app.log("sba-mediation"));
    let heard = linphonec.play_and_record(&tone);
    std::thread::sleep(TALK);
    linphonec.hang_up();
    assert!(linphonec.wait(Event::Ended, 1, WAIT), "{}", linphonec.terminal().text());
    assert!(audio::seconds_of(&heard, EXCHANGE_HZ) >= 0.3, "linphonec did not hear the exchange's tone: {}", heard.display());
    assert!(audio::seconds_of(&heard, LINPHONEC_HZ) >= 1.0, "linphonec did not hear its echo from the PSTN: {}", heard.display());
    assert!(
        app.wait_log("sba-gateway", "cleared, cause 16", WAIT),
        "the exchange never cleared the call:\n{}",
        app.log("sba-gateway")
    );
    let cdrs = String::from_utf8_lossy(&app.sbactl(&["cdr", "--csv"]).stdout).into_owned();
    assert!(cdrs.lines().any(|l| l.contains("+15551234567") && l.contains(",pstn,")), "no call record on trunk pstn:\n{cdrs}");

    // PSTN to phone: the exchange calls 3001's DID; baresip answers and hears the tone, then
    // its own audio back; the exchange hangs up.
    app.pstn_call("5559873001", Some(Duration::from_secs(4)));
    assert!(baresip.wait(Event::Connected, 1, WAIT), "PSTN to phone:\n{}\n{}", baresip.console(), app.log("sba-mediation"));
    assert!(baresip.wait(Event::Ended, 1, WAIT), "the exchange did not hang up:\n{}", baresip.console());
    let heard = baresip.heard().expect("baresip kept no audio of the DID call");
    assert!(audio::seconds_of(&heard, EXCHANGE_HZ) >= 0.5, "baresip did not hear the exchange's tone: {}", heard.display());
    assert!(audio::seconds_of(&heard, f64::from(BARESIP_HZ)) >= 1.0, "baresip did not hear its echo: {}", heard.display());

    // The admin page at the address run-local prints: /metrics counts both phones and the calls.
    app.start_web();
    let get = |path: &str| {
        let url = format!("http://127.0.0.1:8080{path}");
        let out = app.ns().output("curl", &["-s", "--max-time", "5", "-w", "\n%{http_code}", &url]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_until("sba-web on http://127.0.0.1:8080", WAIT, || get("/metrics").ends_with("\n200"));
    let value = |metrics: &str, name: &str| {
        metrics.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
    };
    let metrics = get("/metrics");
    assert_eq!(value(&metrics, "sba_registrations"), Some(2.0), "{metrics}");
    // sba-mediation rewrites its status snapshot every second: the last call leaves it then.
    wait_until("no call in progress on /metrics", WAIT, || value(&get("/metrics"), "sba_calls_active") == Some(0.0));
    let page = get("/");
    assert!(page.ends_with("\n200") || page.ends_with("\n303"), "GET /: {page}\n{}", app.log("sba-web"));
}
