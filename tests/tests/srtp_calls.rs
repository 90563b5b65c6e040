//! SRTP through the appliance (issue 12): the embedded default with the branch phones' leg set to
//! `srtp = "mandatory"`. baresip with `mediaenc=srtp-mand` (RTP/SAVP, SDES keys, its own libre
//! SRTP) calls the PSTN: sba-mediation answers it with a key of its own, the relay decrypts
//! towards sba-gateway's simulated exchange (plain RTP) and encrypts back, and baresip's
//! decrypted recording holds the exchange's tone and the echo of its own. While the call talks,
//! an on-path attacker (a raw socket in the appliance's namespace) replays one of the phone's
//! genuine packets and sends copies with a changed tag, all from the phone's own address, and a
//! host at 127.0.0.2 sends to the relay's ports: every such packet is dropped, the replays and
//! forgeries counted in sba-mediation's status (sba_srtp_packets_*), and the audio flows on.
//! A plain phone's call is answered 488. Then the exchange calls the SRTP phone's DID: our offer
//! (RTP/SAVP, a fresh key per suite) is answered by baresip and the audio flows again. No key
//! reaches a log or the call records.
use holdfast_tests::audio;
use holdfast_tests::local::{LocalAppliance, DOMAIN, REGISTRAR};
use holdfast_tests::phones::{Baresip, BaresipAudio, Event, Phone, PhoneConfig};
use holdfast_tests::scratch::Scratch;
use holdfast_tests::wait::wait_until;
use std::process::Stdio;
use std::time::{Duration, Instant};

const PHONE_HZ: u32 = 440;
const EXCHANGE_HZ: f64 = 1000.0;
const WAIT: Duration = Duration::from_secs(15);
/// Replays and forgeries the attacker sends (each), 20 ms apart.
const ATTACKS: u64 = 50;

/// The on-path attacker: takes the phone's first SRTP packet to the relay off the loopback
/// (baresip sends from 20000-20999, the relay listens on 30000-30999), then sends it again
/// `n` times as it was and `n` times as packets not sent yet (sequence numbers ahead) with the
/// last octet (the tag) changed, from the phone's address (raw IP, no UDP checksum); meanwhile
/// 127.0.0.2 sends the same bytes to the relay. (A forgery under an index already seen counts
/// as a replay: RFC 3711 §3.3 checks the index before the tag.)
const ATTACKER: &str = r#"
import socket, struct, sys, time
n = int(sys.argv[1])
sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
sniff.bind(("lo", 0))
sniff.settimeout(30)
while True:
    ip = sniff.recv(65535)[14:]
    if len(ip) < 40 or ip[0] >> 4 != 4 or ip[9] != 17:
        continue
    ihl = (ip[0] & 15) * 4
    sport, dport, length = struct.unpack("!HHH", ip[ihl:ihl + 6])
    rtp = ip[ihl + 8:ihl + length]
    if 20000 <= sport < 21000 and 30000 <= dport < 31000 and len(rtp) > 12 and rtp[1] & 0x7F in (0, 8):
        break
packet = bytearray(ip[:ihl + length])
packet[ihl + 6:ihl + 8] = b"\0\0"
seq = struct.unpack("!H", packet[ihl + 10:ihl + 12])[0]
dst = socket.inet_ntoa(bytes(packet[16:20]))
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
stranger.bind(("127.0.0.2", 0))
for i in range(n):
    raw.sendto(bytes(packet), (dst, 0))
    forged = bytearray(packet)
    forged[ihl + 10:ihl + 12] = struct.pack("!H", (seq + 1000 + i) & 0xFFFF)
    forged[-1] ^= 0x5A
    raw.sendto(bytes(forged), (dst, 0))
    stranger.sendto(bytes(rtp), (dst, dport))
    time.sleep(0.02)
print("attacked", sport, dport, flush=True)
"#;

fn config(user: &'static str, port: u16) -> PhoneConfig<'static> {
    PhoneConfig {
        user,
        password: if user == "3001" { "pw-3001" } else { "pw-3002" },
        domain: DOMAIN,
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        registrar: REGISTRAR.parse().unwrap(),
        expires: 600,
        refresh: Duration::from_secs(600),
    }
}



#[test]
fn an_srtp_phone_reaches_the_pstn_while_replayed_and_forged_packets_are_dropped_and_counted() {
    let scratch = Scratch::new("srtp-calls");
    // The embedded default, with SRTP required of the phones.
    let mediation = scratch.file("mediation.toml");
    let default = include_str!("../../services/mediation/src/default.toml");
    std::fs::write(&mediation, default.replacen("[mediation]\n", "[mediation]\nsrtp = \"mandatory\"\n", 1)).unwrap();
    let app = LocalAppliance::start_configured(&scratch.path, &[("sba-mediation", &mediation)]);
    app.add_users(&[("3001", "pw-3001"), ("3002", "pw-3002")]);
    let mut phone = Baresip::start_srtp(app.ns(), &scratch.path, &config("3001", 5066), 120, BaresipAudio::Tone(PHONE_HZ));
    let mut plain = Baresip::start(app.ns(), &scratch.path, &config("3002", 5064), 120);
    wait_until("both phones registered", WAIT, || app.binding("3001").is_some() && app.binding("3002").is_some());

    // A plain RTP/AVP offer to the mandatory leg: 488, no trunk tried.
    plain.dial("5551234567");
    assert!(plain.wait_for("488", 0, WAIT), "the plain phone's call was not refused 488:\n{}", plain.console());

    let attacker = app
        .ns()
        .command("python3")
        .args(["-c", ATTACKER, &ATTACKS.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (apt-get install python3)");
    phone.dial("5551234567");
    assert!(phone.wait(Event::Connected, 0, WAIT), "the SRTP call did not connect:\n{}\n{}", phone.console(), app.log("sba-mediation"));
    let attacked = attacker.wait_with_output().expect("attacker");
    let said = String::from_utf8_lossy(&attacked.stdout);
    assert!(said.contains("attacked"), "the attacker saw no SRTP from the phone: {said}{}", String::from_utf8_lossy(&attacked.stderr));
    // The call goes on talking after the attack.
    std::thread::sleep(Duration::from_secs(2));
    phone.hang_up();
    assert!(phone.wait(Event::Ended, 0, WAIT), "{}", phone.console());

    let heard = phone.heard().expect("baresip kept no audio of the call");
    assert!(audio::seconds_of(&heard, EXCHANGE_HZ) >= 0.3, "the phone did not hear the exchange's tone: {}", heard.display());
    assert!(audio::seconds_of(&heard, f64::from(PHONE_HZ)) >= 1.0, "the phone did not hear its echo from the PSTN: {}", heard.display());

    let deadline = Instant::now() + WAIT;
    loop {
        let rtp = app.rtp_counters();
        if rtp["srtp_replayed"].as_u64() >= Some(ATTACKS) && rtp["srtp_auth_failed"].as_u64() >= Some(ATTACKS) {
            break;
        }
        assert!(Instant::now() < deadline, "the replays and forgeries were not counted: {rtp}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rtp = app.rtp_counters();
    // The stranger's packets too: dropped, whatever the reason the relay gives.
    assert!(rtp["dropped"].as_u64() >= Some(3 * ATTACKS), "{rtp}");

    // The other way: the exchange calls 3001's DID. sba-mediation offers the phone RTP/SAVP with a
    // fresh key per suite; baresip answers with one of them and a key of its own.
    app.pstn_call("5559873001", Some(Duration::from_secs(4)));
    assert!(phone.wait(Event::Connected, 1, WAIT), "the DID call did not reach the SRTP phone:\n{}\n{}", phone.console(), app.log("sba-mediation"));
    assert!(phone.wait(Event::Ended, 1, WAIT), "the exchange did not hang up:\n{}", phone.console());
    let heard = phone.heard().expect("baresip kept no audio of the DID call");
    assert!(audio::seconds_of(&heard, EXCHANGE_HZ) >= 0.5, "the phone did not hear the exchange's tone: {}", heard.display());
    assert!(audio::seconds_of(&heard, f64::from(PHONE_HZ)) >= 1.0, "the phone did not hear its echo: {}", heard.display());

    // No key anywhere it could be read back: the logs and the call records.
    let cdrs = String::from_utf8_lossy(&app.sbactl(&["cdr", "--csv"]).stdout).into_owned();
    assert!(cdrs.lines().any(|l| l.contains("+15551234567") && l.contains(",pstn,")), "no record of the SRTP call:\n{cdrs}");
    for (what, text) in [("cdrs", cdrs), ("sba-mediation", app.log("sba-mediation")), ("sba-registrar", app.log("sba-registrar"))] {
        assert!(!text.contains("inline:"), "a key in {what}:\n{text}");
    }
}
