//! A transfer across SRTP and plain RTP (issue 12), with real baresip peers: the embedded
//! default with the branch phones' leg `srtp = "mandatory"`, a plain carrier (`srtp = "off"`,
//! +1 212 555 0100) and a carrier that must have SRTP (`srtp = "mandatory"`, +1 312 555 0100),
//! each a baresip of its own (libre's SRTP). The SRTP phone calls the plain carrier, then
//! transfers it (REFER) to the SRTP carrier: sba-mediation offers that target RTP/SAVP with
//! fresh keys, puts it in the phone's place on the relay, and re-INVITEs the plain carrier
//! (plain RTP still) towards it.
//!
//! What it shows: the two carriers hear each other (each recording holds the other's tone), so
//! media flows across the SRTP and plain legs; on the wire (a capture on the namespace's
//! loopback) the plain carrier's leg carries both tones as G.711, while the phone's leg and the
//! SRTP carrier's carry none of them and every packet has its auth tag; RTCP goes as SRTCP to
//! the SRTP carrier, and an SRTP end's SRTCP reaches the plain carrier decrypted.
use holdfast_tests::audio;
use holdfast_tests::local::{LocalAppliance, DOMAIN, REGISTRAR};
use holdfast_tests::phones::{Baresip, BaresipAudio, Event, Phone, PhoneConfig, PHONE_RTP_PORTS};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::wait::wait_until;
use holdfast_tests::wire::{self, flow, with_tone};
use std::ops::RangeInclusive;
use std::time::Duration;

const PHONE_HZ: u32 = 440;
const PLAIN_HZ: u32 = 1000;
const SECURE_HZ: u32 = 620;
const PLAIN: &str = "127.0.0.1:5090";
const SECURE: &str = "127.0.0.1:5092";
const PLAIN_RTP: RangeInclusive<u16> = 22000..=22499;
const SECURE_RTP: RangeInclusive<u16> = 22500..=22999;
/// The relay's ports in the embedded default.
const RELAY_PORTS: RangeInclusive<u16> = 30000..=30999;
const WAIT: Duration = Duration::from_secs(15);
/// How long the carriers talk after the transfer.
const TALK_S: u64 = 3;

/// The embedded default with the phones' leg mandatory, the two carriers' trunks, and routes
/// to them ahead of the national route to the gateway.
fn config() -> String {
    let default = include_str!("../../services/mediation/src/default.toml");
    let national = "[[mediation.routes]]\nname = \"national\"\n";
    assert!(default.contains(national), "the embedded default has no national route");
    let route = |name: &str, area: &str| {
        format!("[[mediation.routes]]\nname = \"{name}\"\npattern = '\\+1{area}\\d{{7}}'\nusage = \"national\"\ntrunks = [\"{name}\"]\n\n")
    };
    let routes = route("plain", "212") + &route("secure", "312") + national;
    let trunk = |name: &str, addr: &str, srtp: &str| {
        format!("\n[[mediation.trunks]]\nname = \"{name}\"\nkind = \"carrier\"\naddress = \"{addr}\"\nsrtp = \"{srtp}\"\n")
    };
    default.replacen("[mediation]\n", "[mediation]\nsrtp = \"mandatory\"\n", 1).replacen(national, &routes, 1)
        + &trunk("plain", PLAIN, "off")
        + &trunk("secure", SECURE, "mandatory")
}

#[test]
fn an_srtp_phone_transfers_a_plain_carrier_to_an_srtp_one_and_media_flows_encrypted_only_where_it_must() {
    let scratch = Scratch::new("srtp-transfer");
    let mediation = scratch.file("mediation.toml");
    std::fs::write(&mediation, config()).unwrap();
    let app = LocalAppliance::start_configured(&scratch.path, &[("sba-mediation", &mediation)]);
    app.add_users(&[("3001", "pw-3001")]);
    let phone_config = PhoneConfig::new("3001", "pw-3001", DOMAIN, "127.0.0.1:5066".parse().unwrap(), REGISTRAR.parse().unwrap());
    let mut phone = Baresip::start_srtp(app.ns(), &scratch.path, &phone_config, 120, BaresipAudio::Tone(PHONE_HZ));
    let tone = |hz| BaresipAudio::Tone(hz);
    let mut plain = Baresip::start_carrier(app.ns(), &scratch.path, PLAIN.parse().unwrap(), "+12125550100", 120, tone(PLAIN_HZ), false, PLAIN_RTP);
    let secure = Baresip::start_carrier(app.ns(), &scratch.path, SECURE.parse().unwrap(), "+13125550100", 120, tone(SECURE_HZ), true, SECURE_RTP);
    wait_until("the phone registered", WAIT, || app.binding("3001").is_some());

    let watcher = wire::Watcher::start(app.ns(), &scratch.path, &["20000-20999", "22000-22999", "30000-30999"]);

    let logs = |plain: &Baresip, secure: &Baresip, phone: &Baresip| {
        format!("phone:\n{}\nplain:\n{}\nsecure:\n{}\n{}", phone.console(), plain.console(), secure.console(), app.log("sba-mediation"))
    };
    phone.dial("2125550100");
    assert!(plain.wait(Event::Connected, 0, WAIT), "the call to the plain carrier did not connect:\n{}", logs(&plain, &secure, &phone));
    assert!(phone.wait(Event::Connected, 0, WAIT), "{}", logs(&plain, &secure, &phone));
    std::thread::sleep(Duration::from_secs(1));
    phone.command(&format!("/transfer sip:3125550100@{DOMAIN}"));
    assert!(secure.wait(Event::Connected, 0, WAIT), "the transfer did not reach the SRTP carrier:\n{}", logs(&plain, &secure, &phone));
    assert!(phone.wait(Event::Ended, 0, WAIT), "the phone's leg did not end with the transfer:\n{}", logs(&plain, &secure, &phone));
    std::thread::sleep(Duration::from_secs(TALK_S));
    plain.hang_up();
    assert!(secure.wait(Event::Ended, 0, WAIT), "{}", logs(&plain, &secure, &phone));
    let seen = watcher.stop();

    // Each carrier heard the other: across the plain leg and the SRTP leg, both ways.
    let secs = TALK_S as f64 - 1.0;
    let secure_heard = secure.heard().expect("the SRTP carrier kept no audio");
    let plain_heard = plain.heard().expect("the plain carrier kept no audio");
    assert!(audio::seconds_of(&secure_heard, f64::from(PLAIN_HZ)) >= secs, "the SRTP carrier did not hear the plain one: {}", secure_heard.display());
    assert!(audio::seconds_of(&plain_heard, f64::from(SECURE_HZ)) >= secs, "the plain carrier did not hear the SRTP one: {}", plain_heard.display());
    assert!(audio::seconds_of(&plain_heard, f64::from(PHONE_HZ)) >= 0.5, "the plain carrier did not hear the phone first: {}", plain_heard.display());

    // The wire: plain G.711 with the tones on the plain carrier's leg only.
    let (plain_out, plain_in) = (flow(&seen, &PLAIN_RTP, &RELAY_PORTS), flow(&seen, &RELAY_PORTS, &PLAIN_RTP));
    let (secure_out, secure_in) = (flow(&seen, &SECURE_RTP, &RELAY_PORTS), flow(&seen, &RELAY_PORTS, &SECURE_RTP));
    let (phone_out, phone_in) = (flow(&seen, &PHONE_RTP_PORTS, &RELAY_PORTS), flow(&seen, &RELAY_PORTS, &PHONE_RTP_PORTS));
    let summary = format!(
        "plain->relay {} ({} with {PLAIN_HZ} Hz), relay->plain {} ({} with {SECURE_HZ} Hz, {} with {PHONE_HZ} Hz), \
         secure->relay {} ({} with {SECURE_HZ} Hz), relay->secure {} ({} with {PLAIN_HZ} Hz), \
         phone->relay {} ({} with {PHONE_HZ} Hz), relay->phone {} ({} with {PLAIN_HZ} Hz)",
        plain_out.len(),
        with_tone(&plain_out, PLAIN_HZ),
        plain_in.len(),
        with_tone(&plain_in, SECURE_HZ),
        with_tone(&plain_in, PHONE_HZ),
        secure_out.len(),
        with_tone(&secure_out, SECURE_HZ),
        secure_in.len(),
        with_tone(&secure_in, PLAIN_HZ),
        phone_out.len(),
        with_tone(&phone_out, PHONE_HZ),
        phone_in.len(),
        with_tone(&phone_in, PLAIN_HZ),
    );
    eprintln!("on the wire: {summary}");
    let least = 40 * (TALK_S as usize - 1);
    assert!(with_tone(&plain_out, PLAIN_HZ) >= least && with_tone(&plain_in, SECURE_HZ) >= least, "{summary}");
    assert!(with_tone(&plain_in, PHONE_HZ) >= 10, "{summary}");
    assert!(secure_out.len() >= least && secure_in.len() >= least && phone_out.len() >= 10 && phone_in.len() >= 10, "{summary}");
    let clear = [with_tone(&secure_out, SECURE_HZ), with_tone(&secure_in, PLAIN_HZ), with_tone(&phone_out, PHONE_HZ), with_tone(&phone_in, PLAIN_HZ)];
    assert_eq!(clear, [0; 4], "{summary}");
    for leg in [&secure_out, &secure_in, &phone_out, &phone_in] {
        assert!(wire::all_tagged(leg), "an SRTP leg's packet without an auth tag: {summary}");
    }

    // RTCP as SRTCP (libre sends an RTCP APP packet as each call starts): the relay sends the SRTP
    // carrier only SRTCP, and the plain carrier plain RTCP, some of it from an SRTP end's SSRC
    // (decrypted SRTCP).
    let to_secure = wire::rtcp(&seen, &RELAY_PORTS, &SECURE_RTP);
    let to_plain = wire::rtcp(&seen, &RELAY_PORTS, &PLAIN_RTP);
    let srtp_ends: Vec<u32> =
        [wire::rtcp(&seen, &SECURE_RTP, &RELAY_PORTS), wire::rtcp(&seen, &PHONE_RTP_PORTS, &RELAY_PORTS)].concat().iter().filter(|s| s.is_srtcp()).filter_map(|s| s.rtcp_ssrc()).collect();
    let rtcp_summary = format!(
        "relay->secure {} ({} SRTCP), relay->plain {} ({} plain, {} from an SRTP end), SRTP ends' SRTCP SSRCs {srtp_ends:x?}",
        to_secure.len(),
        to_secure.iter().filter(|s| s.is_srtcp()).count(),
        to_plain.len(),
        to_plain.iter().filter(|s| s.is_plain_rtcp()).count(),
        to_plain.iter().filter(|s| s.rtcp_ssrc().is_some_and(|x| srtp_ends.contains(&x))).count()
    );
    eprintln!("RTCP: {rtcp_summary}");
    assert!(!to_secure.is_empty() && to_secure.iter().all(|s| s.is_srtcp()), "{rtcp_summary}");
    assert!(to_plain.iter().all(|s| s.is_plain_rtcp()), "{rtcp_summary}");
    assert!(to_plain.iter().any(|s| s.rtcp_ssrc().is_some_and(|x| srtp_ends.contains(&x))), "no decrypted SRTCP reached the plain leg: {rtcp_summary}");

    // Two records: the phone's call, ended by the transfer, and the transfer's own.
    let cdrs = String::from_utf8_lossy(&app.sbactl(&["cdr", "--csv"]).stdout).into_owned();
    assert!(cdrs.contains("transferred to 3125550100 by 3001") && cdrs.contains("+13125550100"), "{cdrs}");
    for (what, text) in [("cdrs", cdrs), ("sba-mediation", app.log("sba-mediation"))] {
        assert!(!text.contains("inline:"), "a key in {what}:\n{text}");
    }
}
