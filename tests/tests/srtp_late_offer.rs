//! A late offer under `srtp = "mandatory"` (issue 12), with real peers: linphonec (its own SIP
//! stack, libsrtp2) set to require SRTP (SDES) with AES_256_CM_HMAC_SHA1_80 alone and to make
//! late offers (`sdp_200_ack`: an INVITE without SDP) calls a carrier (a plain baresip behind a
//! trunk; sba-gateway's simulated exchange takes no late offer) through the embedded default
//! whose branch phones' leg is mandatory. sba-mediation sends the INVITE on without SDP; the
//! carrier offers plain RTP in its 2xx; the phone gets OUR offer in the 2xx: RTP/SAVP on the
//! relay with a fresh key a suite, and answers AES_256_CM_HMAC_SHA1_80's in its ACK, which keys
//! its leg of the relay.
//!
//! What it shows, from a capture on the namespace's loopback and both ends' recordings: the
//! INVITE carried no SDP, the 2xx an RTP/SAVP offer with a=crypto lines, the ACK an RTP/SAVP
//! answer with the AES-256 one; each end heard the other's tone (the relay decrypts and encrypts
//! under AES-256 counter mode, libsrtp2 at the other end); the phone leg's RTP holds none of the
//! tones in the clear and every packet carries an auth tag. No key reaches a log or the records.
use holdfast_tests::audio;
use holdfast_tests::local::{LocalAppliance, DOMAIN, REGISTRAR};
use holdfast_tests::phones::{Baresip, BaresipAudio, Event, Linphonec, Phone, PhoneConfig, CARRIER_RTP_PORTS, LINPHONEC_RTP_PORT};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::wait::wait_until;
use holdfast_tests::wire::{self, flow, with_tone};
use std::ops::RangeInclusive;
use std::time::Duration;

const PHONE_HZ: u32 = 440;
const CARRIER_HZ: u32 = 1000;
const CARRIER: &str = "127.0.0.1:5090";
const PHONE_SIP: u16 = 5068;
/// The relay's ports in the embedded default.
const RELAY_PORTS: RangeInclusive<u16> = 30000..=30999;
const WAIT: Duration = Duration::from_secs(15);
/// How long the call talks.
const TALK: Duration = Duration::from_secs(3);

#[test]
fn a_late_offer_from_a_phone_that_must_have_srtp_is_answered_with_our_srtp_offer_and_talks() {
    let scratch = Scratch::new("srtp-late");
    let mediation = scratch.file("mediation.toml");
    let default = include_str!("../../services/mediation/src/default.toml");
    let national = "[[mediation.routes]]\nname = \"national\"\n";
    let route = format!("[[mediation.routes]]\nname = \"carrier\"\npattern = '\\+1212\\d{{7}}'\nusage = \"national\"\ntrunks = [\"carrier\"]\n\n{national}");
    let trunk = format!("\n[[mediation.trunks]]\nname = \"carrier\"\nkind = \"carrier\"\naddress = \"{CARRIER}\"\n");
    let config = default.replacen("[mediation]\n", "[mediation]\nsrtp = \"mandatory\"\n", 1).replacen(national, &route, 1) + &trunk;
    std::fs::write(&mediation, config).unwrap();
    let app = LocalAppliance::start_configured(&scratch.path, &[("sba-mediation", &mediation)]);
    app.add_users(&[("3001", "pw-3001")]);
    let config = PhoneConfig::new("3001", "pw-3001", DOMAIN, format!("127.0.0.1:{PHONE_SIP}").parse().unwrap(), REGISTRAR.parse().unwrap());
    let mut phone = Linphonec::start_srtp_late_offer(app.ns(), &scratch.path, &config);
    let carrier =
        Baresip::start_carrier(app.ns(), &scratch.path, CARRIER.parse().unwrap(), "+12125550100", 120, BaresipAudio::Tone(CARRIER_HZ), false, CARRIER_RTP_PORTS);
    wait_until("linphonec registered", WAIT, || app.binding("3001").is_some());
    let tone = scratch.file("tone.wav");
    audio::write_tone(&tone, f64::from(PHONE_HZ), 10);

    let watcher = wire::Watcher::start(app.ns(), &scratch.path, &[&format!("{PHONE_SIP}-{PHONE_SIP}"), &format!("{LINPHONEC_RTP_PORT}-{LINPHONEC_RTP_PORT}"), "5070-5070"]);
    phone.dial(&format!("sip:2125550100@{DOMAIN}"));
    if !phone.wait(Event::Connected, 0, WAIT) {
        let sip: Vec<String> = watcher.stop().iter().filter(|s| s.udp.first() != Some(&0x80)).map(wire::Seen::text).collect();
        panic!(
            "the late-offer SRTP call did not connect:\n{}\n{}\nSIP at the phone:\n{}",
            phone.terminal().text(),
            app.log("sba-mediation"),
            sip.join("\n----\n")
        );
    }
    let heard = phone.play_and_record(&tone);
    std::thread::sleep(TALK);
    phone.hang_up();
    assert!(phone.wait(Event::Ended, 0, WAIT), "{}", phone.terminal().text());
    assert!(carrier.wait(Event::Ended, 0, WAIT), "{}", carrier.console());
    let seen = watcher.stop();

    // The signalling: no SDP in the INVITE; our SRTP offer in the 2xx; the phone's SRTP answer in its ACK.
    let sip = |from_phone: bool, start: &str| {
        seen.iter()
            .filter(|s| (s.from == PHONE_SIP) == from_phone && (s.from == PHONE_SIP || s.to == PHONE_SIP))
            .map(wire::Seen::text)
            .filter(|t| t.starts_with(start))
            .collect::<Vec<_>>()
    };
    let invites = sip(true, "INVITE ");
    assert!(!invites.is_empty() && invites.iter().all(|i| !i.contains("m=audio")), "the phone's INVITE carried SDP: {invites:?}");
    let ok = sip(false, "SIP/2.0 200").into_iter().find(|t| t.contains(" INVITE\r\n") && t.contains("m=audio")).expect("a 2xx with an offer");
    assert!(ok.contains("RTP/SAVP") && ok.matches("a=crypto:").count() >= 3, "our 2xx is no SRTP offer: {ok}");
    let ack = sip(true, "ACK ").into_iter().find(|t| t.contains("m=audio")).expect("an ACK with the answer");
    assert!(ack.contains("RTP/SAVP") && ack.matches("a=crypto:").count() == 1, "the phone's answer is not SRTP: {ack}");
    assert!(ack.contains(" AES_256_CM_HMAC_SHA1_80 inline:"), "the phone did not answer AES_256_CM_HMAC_SHA1_80: {ack}");

    // Audio both ways through the relay's decryption and encryption.
    let carrier_heard = carrier.heard().expect("the carrier kept no audio");
    assert!(audio::seconds_of(&heard, f64::from(CARRIER_HZ)) >= 1.0, "the phone did not hear the carrier: {}", heard.display());
    assert!(audio::seconds_of(&carrier_heard, f64::from(PHONE_HZ)) >= 1.0, "the carrier did not hear the phone: {}", carrier_heard.display());

    // The phone's leg on the wire: only ciphertext, every packet with its auth tag.
    let phone_port = LINPHONEC_RTP_PORT..=LINPHONEC_RTP_PORT;
    let (out, back) = (flow(&seen, &phone_port, &RELAY_PORTS), flow(&seen, &RELAY_PORTS, &phone_port));
    let summary = format!(
        "phone->relay {} ({} with {PHONE_HZ} Hz), relay->phone {} ({} with {CARRIER_HZ} Hz)",
        out.len(),
        with_tone(&out, PHONE_HZ),
        back.len(),
        with_tone(&back, CARRIER_HZ)
    );
    eprintln!("on the wire: {summary}");
    assert!(out.len() >= 100 && back.len() >= 100, "{summary}");
    assert_eq!((with_tone(&out, PHONE_HZ), with_tone(&back, CARRIER_HZ), with_tone(&back, PHONE_HZ)), (0, 0, 0), "{summary}");
    assert!(wire::all_tagged(&out) && wire::all_tagged(&back), "a packet without an auth tag: {summary}");

    let cdrs = String::from_utf8_lossy(&app.sbactl(&["cdr", "--csv"]).stdout).into_owned();
    assert!(cdrs.contains("+12125550100"), "no record of the call:\n{cdrs}");
    for (what, text) in [("cdrs", cdrs), ("sba-mediation", app.log("sba-mediation")), ("sba-registrar", app.log("sba-registrar"))] {
        assert!(!text.contains("inline:"), "a key in {what}:\n{text}");
    }
}
