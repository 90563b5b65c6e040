//! A plain-RTP leg that re-offers SRTP mid-call (issue 12): the embedded default plus a carrier
//! trunk (`srtp` left `optional`); the carrier (sipp, a real SIP stack but no SRTP of its own)
//! calls the DID of a plain baresip phone (440 Hz) with plain RTP, then re-INVITEs with RTP/SAVP
//! and an SDES key. sba-mediation answers RTP/SAVP with a key of its own under the carrier's tag
//! (sipp checks it), the phone's leg stays plain (relayed a plain re-offer), and the relay turns
//! SRTP on the carrier's leg once the phone accepted.
//!
//! What it shows, on the wire (a capture on the namespace's loopback): what the relay sends the
//! carrier holds the phone's tone as G.711 before the re-INVITE and none of it after, every
//! packet then carrying an auth tag, while the phone keeps sending its tone in the clear.
use holdfast_tests::local::{LocalAppliance, DOMAIN, REGISTRAR};
use holdfast_tests::phones::{Baresip, BaresipAudio, Event, NsSipp, Phone, PhoneConfig, PHONE_RTP_PORTS};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::wait::wait_until;
use holdfast_tests::wire::{self, flow, with_tone};
use std::ops::RangeInclusive;
use std::time::Duration;

const PHONE_HZ: u32 = 440;
const CARRIER: &str = "127.0.0.1:5090";
/// Where sipp (on `CARRIER`) takes RTP: NsSipp derives it from its SIP port.
const CARRIER_MEDIA: RangeInclusive<u16> = 15090..=15090;
const RELAY_PORTS: RangeInclusive<u16> = 30000..=30999;
const WAIT: Duration = Duration::from_secs(15);
const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

#[test]
fn a_plain_carrier_leg_re_offering_srtp_mid_call_is_answered_srtp_and_the_relay_encrypts_towards_it() {
    let scratch = Scratch::new("srtp-reoffer");
    let mediation = scratch.file("mediation.toml");
    let default = include_str!("../../services/mediation/src/default.toml");
    std::fs::write(&mediation, format!("{default}\n[[mediation.trunks]]\nname = \"carrier\"\nkind = \"carrier\"\naddress = \"{CARRIER}\"\n")).unwrap();
    let app = LocalAppliance::start_configured(&scratch.path, &[("sba-mediation", &mediation)]);
    app.add_users(&[("3001", "pw-3001")]);
    let phone_config = PhoneConfig::new("3001", "pw-3001", DOMAIN, "127.0.0.1:5066".parse().unwrap(), REGISTRAR.parse().unwrap());
    let phone = Baresip::start_with(app.ns(), &scratch.path, &phone_config, 120, BaresipAudio::Tone(PHONE_HZ), holdfast_sip::transport::Protocol::Udp);
    wait_until("the phone registered", WAIT, || app.binding("3001").is_some());

    let watcher = wire::Watcher::start(app.ns(), &scratch.path, &["15090-15090", "20000-20999"]);
    let carrier = NsSipp::new(app.ns(), "srtp_reoffer_carrier.xml", CARRIER.parse().unwrap(), "127.0.0.1:5070".parse().unwrap())
        .key("caller", "+12125550100")
        .key("did", "+15559873001")
        .key("key", KEY)
        .run(&scratch.path, 30);
    let seen = watcher.stop();
    assert!(
        carrier.status.success(),
        "the carrier's scenario failed (no RTP/SAVP answer with our key?):\n{}{}\n{}\n{}",
        String::from_utf8_lossy(&carrier.stdout),
        String::from_utf8_lossy(&carrier.stderr),
        phone.console(),
        app.log("sba-mediation")
    );
    assert!(phone.wait(Event::Ended, 0, WAIT), "{}", phone.console());

    // The re-INVITE went about 2 s into the call: split what the relay sent the carrier there.
    let to_carrier = flow(&seen, &RELAY_PORTS, &CARRIER_MEDIA);
    let from_phone = flow(&seen, &PHONE_RTP_PORTS, &RELAY_PORTS);
    let first = to_carrier.first().map_or(0.0, |s| s.at);
    let before: Vec<&wire::Seen> = to_carrier.iter().copied().filter(|s| s.at < first + 1.5).collect();
    let after: Vec<&wire::Seen> = to_carrier.iter().copied().filter(|s| s.at > first + 2.5).collect();
    let summary = format!(
        "relay->carrier before {} ({} with {PHONE_HZ} Hz), after {} ({} with {PHONE_HZ} Hz), phone->relay {} ({} with {PHONE_HZ} Hz)",
        before.len(),
        with_tone(&before, PHONE_HZ),
        after.len(),
        with_tone(&after, PHONE_HZ),
        from_phone.len(),
        with_tone(&from_phone, PHONE_HZ)
    );
    eprintln!("on the wire: {summary}");
    assert!(with_tone(&before, PHONE_HZ) >= 50, "the carrier's leg was not plain first: {summary}");
    assert!(after.len() >= 40 && with_tone(&after, PHONE_HZ) == 0, "the carrier's leg did not turn SRTP: {summary}");
    assert!(wire::all_tagged(&after), "a packet to the carrier without an auth tag after the upgrade: {summary}");
    assert!(with_tone(&from_phone, PHONE_HZ) >= 150, "the phone's leg did not stay plain: {summary}");
    let log = app.log("sba-mediation");
    assert!(!log.contains("inline:"), "a key in the log:\n{log}");
}
