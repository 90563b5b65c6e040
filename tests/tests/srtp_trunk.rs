//! SRTP on the trunk side (issue 12), against a real SIP peer as the carrier: the embedded
//! default plus a carrier trunk with `srtp = "mandatory"`, where a second baresip
//! (`mediaenc=srtp-mand`, libre's own SRTP) answers calls to +1 212 555 0100. A plain phone
//! (baresip, the branch leg's default `optional`) calls it: sba-mediation offers the carrier
//! RTP/SAVP with a fresh key per suite, the carrier answers with one of them and its key, and
//! the relay decrypts and encrypts between the plain phone leg and the SRTP trunk leg.
//!
//! What it shows: both baresips' recordings hold the other's tone (audio both ways, the
//! carrier's after its own decryption); on the wire (a capture on the namespace's loopback),
//! the phone leg's RTP payloads hold the tones as G.711 and the trunk leg's hold nothing of
//! them, and every trunk packet is longer by the auth tag; while the call talks, an on-path
//! attacker replays the carrier's packets, sends forgeries and packets under a key not the
//! call's, all from the carrier's own address, and 127.0.0.2 sends to the relay's trunk port:
//! all dropped, the SRTP ones counted, and the audio goes on in both directions afterwards.
use holdfast_tests::audio;
use holdfast_tests::local::{LocalAppliance, DOMAIN, REGISTRAR};
use holdfast_tests::phones::{Baresip, BaresipAudio, Event, Phone, PhoneConfig, CARRIER_RTP_PORTS, PHONE_RTP_PORTS};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::wait::wait_until;
use holdfast_tests::wire::{self, flow, with_tone};
use holdfast_sip::transport::Protocol;
use std::ops::RangeInclusive;
use std::process::Stdio;
use std::time::{Duration, Instant};

const PHONE_HZ: u32 = 440;
const CARRIER_HZ: u32 = 1000;
const CARRIER: &str = "127.0.0.1:5090";
const CARRIER_NUMBER: &str = "+12125550100";
/// The relay's ports in the embedded default.
const RELAY_PORTS: RangeInclusive<u16> = 30000..=30999;
const WAIT: Duration = Duration::from_secs(15);
/// Replays, forgeries and wrong-key packets the attacker sends (each), 20 ms apart.
const ATTACKS: u64 = 50;
/// How long the capture goes on after the attack (the call keeps talking).
const HOLD_S: u32 = 3;

/// The watcher on the namespace's loopback (`wire::script`'s sniffer): writes every UDP packet
/// between the phones' or carriers' RTP ports and the relay's (one line: seconds since start,
/// source port, destination port, the UDP payload in hex) to argv[3]. From the carrier's first RTP packet
/// to the relay on, it attacks in rounds 20 ms apart, `n` rounds, each: the packet again as it
/// was, a copy with its sequence number ahead and its last octet (the tag) changed, and one
/// with a sequence number further ahead, random payload and an HMAC-SHA1 tag under a random
/// key (a packet under a key not the call's), all three raw from the carrier's own address,
/// and the genuine bytes from 127.0.0.2. It stops `hold` seconds after the last round (30 s at
/// most) and prints when the attack ended.
const WATCHER: &str = r#"
import hashlib, hmac
n, hold, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
PHONE, CARRIER, RELAY = range(20000, 21000), range(22000, 23000), range(30000, 31000)
sniff = sniffer(0.005)
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
stranger.bind(("127.0.0.2", 0))
log = open(out, "w")
start = time.monotonic()
genuine, rounds, next_round, ended = None, 0, 0.0, None
while time.monotonic() - start < 30 and (ended is None or time.monotonic() - ended < hold):
    now = time.monotonic()
    if genuine is not None and rounds < n and now >= next_round:
        ip, ihl, seq, dst, dport = genuine
        udp = ihl + 8
        raw.sendto(bytes(ip), (dst, 0))
        forged = bytearray(ip)
        forged[udp + 2:udp + 4] = struct.pack("!H", (seq + 1000 + rounds) & 0xFFFF)
        forged[-1] ^= 0x5A
        raw.sendto(bytes(forged), (dst, 0))
        other = bytearray(ip)
        other[udp + 2:udp + 4] = struct.pack("!H", (seq + 2000 + rounds) & 0xFFFF)
        tag = len(ip) - udp - 12 - 160
        body = os.urandom(160)
        mac = hmac.new(os.urandom(20), bytes(other[udp:udp + 12]) + body + bytes(4), hashlib.sha1).digest()
        other[udp + 12:] = body + (mac * 2)[:tag]
        raw.sendto(bytes(other), (dst, 0))
        stranger.sendto(bytes(ip[udp:]), (dst, dport))
        rounds += 1
        next_round = now + 0.02
        if rounds == n:
            ended = time.monotonic()
            print("attacked %.3f" % (ended - start), flush=True)
    got = next_udp(sniff)
    if got is None:
        continue
    ip, ihl, sport, dport, length = got
    payload = ip[ihl + 8:ihl + length]
    if not ((sport in PHONE or sport in CARRIER) and dport in RELAY or sport in RELAY and (dport in PHONE or dport in CARRIER)):
        continue
    log.write("%.3f %d %d %s\n" % (time.monotonic() - start, sport, dport, payload.hex()))
    if genuine is None and sport in CARRIER and len(payload) > 12 + 160 and payload[1] & 0x7F in (0, 8):
        packet = bytearray(ip[:ihl + length])
        packet[ihl + 6:ihl + 8] = b"\0\0"
        seq = struct.unpack("!H", packet[ihl + 10:ihl + 12])[0]
        genuine = (packet, ihl, seq, socket.inet_ntoa(bytes(packet[16:20])), dport)
log.close()
"#;

/// The embedded default with a carrier trunk that requires SRTP, and a route to it for the
/// carrier's numbers (+1 212, national usage, ahead of the national route to the gateway).
fn config() -> String {
    config_with("")
}

/// `config()` with `keys` more in the carrier's trunk.
fn config_with(keys: &str) -> String {
    let default = include_str!("../../services/mediation/src/default.toml");
    let national = "[[mediation.routes]]\nname = \"national\"\n";
    assert!(default.contains(national), "the embedded default has no national route");
    let route = format!(
        "[[mediation.routes]]\nname = \"carrier\"\npattern = '\\+1212\\d{{7}}'\nusage = \"national\"\ntrunks = [\"carrier\"]\n\n{national}"
    );
    let trunk = format!("\n[[mediation.trunks]]\nname = \"carrier\"\nkind = \"carrier\"\naddress = \"{CARRIER}\"\nsrtp = \"mandatory\"\n{keys}");
    default.replacen(national, &route, 1) + &trunk
}

#[test]
fn a_call_over_an_srtp_trunk_talks_both_ways_is_encrypted_on_the_wire_and_shrugs_off_replays_and_wrong_keys() {
    let scratch = Scratch::new("srtp-trunk");
    let (app, mut phone, carrier) = plain_phone_and_carrier(&scratch, &config());

    let capture = scratch.file("wire.txt");
    let watcher = app
        .ns()
        .command("python3")
        .args(["-c", &wire::script(WATCHER), &ATTACKS.to_string(), &HOLD_S.to_string()])
        .arg(&capture)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (apt-get install python3)");
    phone.dial("2125550100");
    assert!(
        phone.wait(Event::Connected, 0, WAIT),
        "the call to the carrier did not connect:\n{}\n{}\n{}",
        phone.console(),
        carrier.console(),
        app.log("sba-mediation")
    );
    let watched = watcher.wait_with_output().expect("watcher");
    let said = String::from_utf8_lossy(&watched.stdout);
    let attack_ended: f64 = said
        .split_whitespace()
        .skip_while(|w| *w != "attacked")
        .nth(1)
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("the watcher saw no RTP from the carrier: {said}{}", String::from_utf8_lossy(&watched.stderr)));
    phone.hang_up();
    assert!(phone.wait(Event::Ended, 0, WAIT), "{}", phone.console());
    assert!(carrier.wait(Event::Ended, 0, WAIT), "{}", carrier.console());

    // Audio both ways, each side's after its own decryption (the carrier's) or the relay's (the phone's).
    let carrier_heard = carrier.heard().expect("the carrier's baresip kept no audio of the call");
    let phone_heard = phone.heard().expect("the phone's baresip kept no audio of the call");
    let secs = f64::from(HOLD_S) - 0.5;
    assert!(audio::seconds_of(&carrier_heard, f64::from(PHONE_HZ)) >= secs, "the carrier did not hear the phone: {}", carrier_heard.display());
    assert!(audio::seconds_of(&phone_heard, f64::from(CARRIER_HZ)) >= secs, "the phone did not hear the carrier: {}", phone_heard.display());

    // The wire: the phone leg's G.711 holds the tones, the trunk leg's holds nothing of them.
    let seen = wire::read(&capture);
    let phone_out = flow(&seen, &PHONE_RTP_PORTS, &RELAY_PORTS);
    let phone_in = flow(&seen, &RELAY_PORTS, &PHONE_RTP_PORTS);
    let trunk_in = flow(&seen, &CARRIER_RTP_PORTS, &RELAY_PORTS);
    let trunk_out = flow(&seen, &RELAY_PORTS, &CARRIER_RTP_PORTS);
    let summary = format!(
        "phone->relay {} ({} with {PHONE_HZ} Hz), relay->phone {} ({} with {CARRIER_HZ} Hz), carrier->relay {} ({} with {CARRIER_HZ} Hz), \
         relay->carrier {} ({} with {PHONE_HZ} Hz)",
        phone_out.len(),
        with_tone(&phone_out, PHONE_HZ),
        phone_in.len(),
        with_tone(&phone_in, CARRIER_HZ),
        trunk_in.len(),
        with_tone(&trunk_in, CARRIER_HZ),
        trunk_out.len(),
        with_tone(&trunk_out, PHONE_HZ)
    );
    eprintln!("on the wire: {summary}");
    // The detector works on this capture: plain G.711 of the two tones is found in it.
    assert!(with_tone(&phone_out, PHONE_HZ) >= 100 && with_tone(&phone_in, CARRIER_HZ) >= 100, "{summary}");
    assert!(trunk_in.len() >= 100 && trunk_out.len() >= 100, "{summary}");
    assert_eq!((with_tone(&trunk_in, CARRIER_HZ), with_tone(&trunk_out, PHONE_HZ)), (0, 0), "{summary}");
    assert!(wire::all_tagged(&trunk_in) && wire::all_tagged(&trunk_out), "a trunk packet without an auth tag: {summary}");
    // The call talked on after the attack, both ways, on both legs (50 packets a second).
    let after = |packets: &[&wire::Seen]| packets.iter().filter(|s| s.at > attack_ended).count();
    let least = 40 * (HOLD_S as usize - 1);
    assert!([&phone_out, &phone_in, &trunk_in, &trunk_out].iter().all(|f| after(f) >= least), "too few packets after the attack: {summary}");

    // Every attack packet dropped; the SRTP ones counted as what they were.
    let deadline = Instant::now() + WAIT;
    loop {
        let rtp = app.rtp_counters();
        if rtp["srtp_replayed"].as_u64() >= Some(ATTACKS) && rtp["srtp_auth_failed"].as_u64() >= Some(2 * ATTACKS) {
            break;
        }
        assert!(Instant::now() < deadline, "the replays, forgeries and wrong-key packets were not counted: {rtp}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rtp = app.rtp_counters();
    eprintln!("sba-mediation's RTP counters: {rtp}");
    assert!(rtp["dropped"].as_u64() >= Some(4 * ATTACKS), "{rtp}");

    // No key anywhere it could be read back.
    let cdrs = String::from_utf8_lossy(&app.sbactl(&["cdr", "--csv"]).stdout).into_owned();
    assert!(cdrs.contains(CARRIER_NUMBER), "no record of the call:\n{cdrs}");
    for (what, text) in [("cdrs", cdrs), ("sba-mediation", app.log("sba-mediation"))] {
        assert!(!text.contains("inline:"), "a key in {what}:\n{text}");
    }
}

#[test]
fn a_phone_over_tls_with_srtp_calls_the_srtp_carrier_and_both_hear_each_other_through_ciphertext_only() {
    // Issue 12's first test: baresip registers and calls over TLS with `mediaenc=srtp-mand`,
    // through sba-registrar and sba-mediation, to a carrier (SRTP too): both legs of the relay are
    // SRTP, each with keys of its own, and what each end heard is checked after its decryption.
    let scratch = Scratch::new("srtp-tls");
    let mediation = scratch.file("mediation.toml");
    std::fs::write(&mediation, config()).unwrap();
    let app = LocalAppliance::start_configured(&scratch.path, &[("sba-mediation", &mediation)]);
    app.add_users(&[("3001", "pw-3001")]);
    let generated = scratch.path.join("var/tls/cert.pem");
    assert!(generated.exists(), "the embedded default generated no certificate: {}", app.log("sba-registrar"));
    let phone_config = PhoneConfig::new("3001", "pw-3001", DOMAIN, "127.0.0.1:5066".parse().unwrap(), "127.0.0.1:5061".parse().unwrap());
    let mut phone = Baresip::start_tls_srtp(app.ns(), &scratch.path, &phone_config, 120, &generated, BaresipAudio::Tone(PHONE_HZ));
    let carrier =
        Baresip::start_srtp_carrier(app.ns(), &scratch.path, CARRIER.parse().unwrap(), CARRIER_NUMBER, 120, BaresipAudio::Tone(CARRIER_HZ));
    wait_until("the phone registered over TLS", WAIT, || app.binding("3001").is_some_and(|b| b["transport"] == "tls"));

    let seen = call_the_carrier(&app, &scratch, &mut phone, &carrier, &["20000-20999", "22000-22999"], "TLS SRTP");
    let legs = [
        flow(&seen, &PHONE_RTP_PORTS, &RELAY_PORTS),
        flow(&seen, &RELAY_PORTS, &PHONE_RTP_PORTS),
        flow(&seen, &CARRIER_RTP_PORTS, &RELAY_PORTS),
        flow(&seen, &RELAY_PORTS, &CARRIER_RTP_PORTS),
    ];
    let summary: Vec<(usize, usize, usize)> = legs.iter().map(|l| (l.len(), with_tone(l, PHONE_HZ), with_tone(l, CARRIER_HZ))).collect();
    eprintln!("on the wire (packets, with {PHONE_HZ} Hz, with {CARRIER_HZ} Hz): phone->relay, relay->phone, carrier->relay, relay->carrier {summary:?}");
    assert!(summary.iter().all(|&(n, a, b)| n >= 100 && a == 0 && b == 0), "{summary:?}");
    assert!(legs.iter().all(|l| wire::all_tagged(l)), "a packet without an auth tag: {summary:?}");
}

#[test]
fn a_trunk_offered_aes_128_gcm_alone_talks_through_it_with_a_real_peer() {
    a_trunk_offered_one_gcm_suite_talks_through_it("AEAD_AES_128_GCM");
}

#[test]
fn a_trunk_offered_aes_256_gcm_alone_talks_through_it_with_a_real_peer() {
    a_trunk_offered_one_gcm_suite_talks_through_it("AEAD_AES_256_GCM");
}

/// A GCM `suite` (RFC 7714) end to end: the trunk's `srtp_suites` lists it alone, so the
/// carrier's baresip (libre's SRTP, which takes the first suite it knows of an offer) answers
/// it; the relay's GCM meets libre's both ways, heard after decryption at the carrier.
fn a_trunk_offered_one_gcm_suite_talks_through_it(suite: &str) {
    let scratch = Scratch::new(&format!("srtp-{}", suite.to_ascii_lowercase()));
    let (app, mut phone, carrier) = plain_phone_and_carrier(&scratch, &config_with(&format!("srtp_suites = [\"{suite}\"]\n")));

    let seen = call_the_carrier(&app, &scratch, &mut phone, &carrier, &["20000-20999", "22000-22999", "5090-5090"], suite);

    // Our offer had the one suite; the carrier answered it.
    let sip: Vec<String> = seen.iter().filter(|s| s.from == 5090 || s.to == 5090).map(wire::Seen::text).collect();
    let offer = sip.iter().find(|t| t.starts_with("INVITE ") && t.contains("m=audio")).expect("our INVITE to the carrier");
    assert_eq!(offer.matches("a=crypto:").count(), 1, "{offer}");
    assert!(offer.contains(&format!(" {suite} inline:")), "{offer}");
    let answer = sip.iter().find(|t| t.starts_with("SIP/2.0 200") && t.contains("m=audio")).expect("the carrier's 2xx");
    assert!(answer.contains("RTP/SAVP") && answer.contains(&format!(" {suite} inline:")), "the carrier did not answer {suite}: {answer}");

    let trunk = [flow(&seen, &CARRIER_RTP_PORTS, &RELAY_PORTS), flow(&seen, &RELAY_PORTS, &CARRIER_RTP_PORTS)];
    let summary: Vec<(usize, usize, usize)> = trunk.iter().map(|l| (l.len(), with_tone(l, PHONE_HZ), with_tone(l, CARRIER_HZ))).collect();
    eprintln!("{suite} trunk leg on the wire (packets, with {PHONE_HZ} Hz, with {CARRIER_HZ} Hz): carrier->relay, relay->carrier {summary:?}");
    assert!(summary.iter().all(|&(n, a, b)| n >= 100 && a == 0 && b == 0), "{summary:?}");
    // G.711's 160 octets and GCM's 16-octet tag.
    let gcm_sized = trunk.iter().all(|l| l.iter().all(|s| s.g711().is_some_and(|(_, p)| p.len() == 160 + 16)));
    assert!(gcm_sized, "a trunk packet that is not 160 octets and GCM's tag: {summary:?}");
}

/// The phone calls the carrier and they talk for HOLD_S seconds, the wire watched on `ranges`;
/// each must have heard the other (after its own decryption). What the watcher saw.
fn call_the_carrier(app: &LocalAppliance, scratch: &Scratch, phone: &mut Baresip, carrier: &Baresip, ranges: &[&str], what: &str) -> Vec<wire::Seen> {
    let watcher = wire::Watcher::start(app.ns(), &scratch.path, ranges);
    phone.dial("2125550100");
    assert!(
        phone.wait(Event::Connected, 0, WAIT),
        "the {what} call did not connect:\n{}\n{}\n{}",
        phone.console(),
        carrier.console(),
        app.log("sba-mediation")
    );
    std::thread::sleep(Duration::from_secs(u64::from(HOLD_S)));
    phone.hang_up();
    assert!(carrier.wait(Event::Ended, 0, WAIT), "{}", carrier.console());
    let seen = watcher.stop();
    let secs = f64::from(HOLD_S) - 1.0;
    let carrier_heard = carrier.heard().expect("the carrier's baresip kept no audio of the call");
    let phone_heard = phone.heard().expect("the phone's baresip kept no audio of the call");
    assert!(audio::seconds_of(&carrier_heard, f64::from(PHONE_HZ)) >= secs, "the carrier did not hear the phone: {}", carrier_heard.display());
    assert!(audio::seconds_of(&phone_heard, f64::from(CARRIER_HZ)) >= secs, "the phone did not hear the carrier: {}", phone_heard.display());
    seen
}

/// sba-mediation on `config` with the rest of the embedded default, a plain phone (3001, baresip
/// over UDP, its tone) registered, and the SRTP carrier (baresip, its tone).
fn plain_phone_and_carrier(scratch: &Scratch, config: &str) -> (LocalAppliance, Baresip, Baresip) {
    let mediation = scratch.file("mediation.toml");
    std::fs::write(&mediation, config).unwrap();
    let app = LocalAppliance::start_configured(&scratch.path, &[("sba-mediation", &mediation)]);
    app.add_users(&[("3001", "pw-3001")]);
    let phone_config = PhoneConfig::new("3001", "pw-3001", DOMAIN, "127.0.0.1:5066".parse().unwrap(), REGISTRAR.parse().unwrap());
    let phone = Baresip::start_with(app.ns(), &scratch.path, &phone_config, 120, BaresipAudio::Tone(PHONE_HZ), Protocol::Udp);
    let carrier =
        Baresip::start_srtp_carrier(app.ns(), &scratch.path, CARRIER.parse().unwrap(), CARRIER_NUMBER, 120, BaresipAudio::Tone(CARRIER_HZ));
    wait_until("the phone registered", WAIT, || app.binding("3001").is_some());
    (app, phone, carrier)
}
