use super::*;
use holdfast_media::srtp::{MasterKey, Suite};

const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n\
    m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
    a=rtcp:40009\r\na=sendrecv\r\nm=video 40002 RTP/AVP 96\r\nc=IN IP4 192.0.2.6\r\n";

fn sd(text: &str) -> SessionDescription {
    SessionDescription::parse(text.as_bytes()).unwrap()
}

fn remote_media(body: &[u8]) -> Result<RemoteMedia, SdpError> {
    let sd = SessionDescription::parse(body)?;
    let audio = sd.audio(None)?;
    Ok(audio.remote_media().expect("an address"))
}

/// The first RTP/AVP audio stream: its address (None on hold) and payload types.
fn avp_audio(body: &[u8]) -> Result<(Option<SocketAddr>, Vec<u8>), SdpError> {
    let sd = SessionDescription::parse(body)?;
    let audio = sd.audio(Some(&Profile::Avp))?;
    Ok((audio.address(), audio.media.payload_types()))
}

#[test]
fn a_description_is_written_back_as_it_came() {
    assert_eq!(sd(OFFER).to_string(), OFFER);
    let lf = "v=0\nc=IN IP4 224.2.1.1/127\nm=audio 49170/2 RTP/AVP 0\na=fmtp:0 x=1\na=ice-ufrag:abc\n";
    assert_eq!(sd(lf).to_string(), lf.replace('\n', "\r\n"));
}

#[test]
fn reads_the_audio_stream() {
    let m = remote_media(OFFER.as_bytes()).unwrap();
    assert_eq!(m.rtp, "192.0.2.5:40000".parse().unwrap());
    assert_eq!(m.rtcp, Some("192.0.2.5:40009".parse().unwrap()));
    assert_eq!((m.audio_pt, m.telephone_event_pt, m.rtcp_mux), (Some(8), Some(101), false));
    let media_level = "v=0\nc=IN IP4 0.0.0.0\nm=audio 5004 RTP/AVP 0\nc=IN IP6 2001:db8::1\na=rtcp-mux\n";
    let m = remote_media(media_level.as_bytes()).unwrap();
    assert_eq!(m.rtp, "[2001:db8::1]:5004".parse().unwrap());
    assert!(m.rtcp_mux);
    assert_eq!(remote_media(b"v=0\nc=IN IP4 1.2.3.4\n"), Err(SdpError::NoAudio));
    assert_eq!(remote_media(b"v=0\nm=audio 1 RTP/AVP 0\n"), Err(SdpError::NoConnection));
}

#[test]
fn g711_laws_are_offered_both_and_answered_in_the_offerer_s() {
    let mut offer = sd("v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n");
    offer.offer_both_g711();
    let offer = offer.to_string();
    assert!(offer.contains("m=audio 4000 RTP/AVP 8 101 0\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"), "{offer}");
    let mut both = sd(OFFER);
    both.offer_both_g711();
    assert_eq!(both.to_string(), OFFER, "both laws offered already");
    // The far side picks µ-law: the A-law side is told A-law.
    let answer = "v=0\r\nc=IN IP4 192.0.2.2\r\nm=audio 5000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n";
    let mut for_a = sd(answer);
    let pt = for_a.answer_for(&[8, 101]);
    let for_a = for_a.to_string();
    assert_eq!(pt, Some(8));
    assert!(for_a.contains("m=audio 5000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"), "{for_a}");
    assert!(!for_a.contains("PCMU"), "{for_a}");
    let mut same = sd(answer);
    let pt = same.answer_for(&[0, 8]);
    assert_eq!((same.to_string().as_str(), pt), (answer, Some(0)));
    // Formats the offerer never offered are left out of its answer.
    let mut only_mu = sd(answer);
    let pt = only_mu.answer_for(&[0]);
    let only_mu = only_mu.to_string();
    assert_eq!(pt, Some(0));
    assert!(only_mu.contains("m=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n") && !only_mu.contains("PCMA"), "{only_mu}");
}

#[test]
fn a_held_sdp_is_offered_sendrecv() {
    let mut held = sd(&format!("{OFFER}a=sendonly\r\n"));
    assert_eq!(held.audio(None).unwrap().direction, Direction::SendRecv, "the audio stream's own attribute");
    held.sendrecv();
    let out = held.to_string();
    assert!(!out.contains("a=sendonly") && !out.contains("a=sendrecv"), "{out}");
    assert!(out.starts_with("v=0\r\no=- 1 2 IN IP4 192.0.2.5\r\n") && out.contains("a=rtpmap:101 telephone-event/8000\r\n"), "{out}");
}

#[test]
fn hold_and_disabled_streams_have_no_address() {
    let old_style = sd("v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 6000 RTP/AVP 0\r\n");
    assert_eq!(old_style.audio(None).unwrap().address(), None);
    assert_eq!(old_style.audio(None).unwrap().remote_media(), None);
    let disabled = sd("v=0\r\nc=IN IP4 10.0.0.2\r\nm=audio 0 RTP/AVP 0\r\n");
    assert_eq!(disabled.audio(None).unwrap().address(), None);
    let sendonly = sd("v=0\r\nc=IN IP4 10.0.0.2\r\na=sendonly\r\nm=audio 6000 RTP/AVP 0\r\n");
    let audio = sendonly.audio(None).unwrap();
    assert_eq!((audio.direction, audio.address()), (Direction::SendOnly, Some("10.0.0.2:6000".parse().unwrap())));
}

#[test]
fn point_at_the_relay_keeps_the_rest_and_declines_other_streams() {
    let mut out = sd(OFFER);
    out.point_at("127.0.0.1:30002".parse().unwrap()).unwrap();
    let out = out.to_string();
    assert!(out.contains("o=- 1 2 IN IP4 127.0.0.1\r\n"), "{out}");
    assert!(out.contains("m=audio 30002 RTP/AVP 8 0 101\r\n"), "{out}");
    assert!(out.contains("a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"), "{out}");
    assert!(!out.contains("a=rtcp:"), "{out}");
    assert!(!out.contains("192.0.2."), "{out}");
    assert!(out.contains("m=video 0 RTP/AVP 96"), "{out}");
    let m = remote_media(out.as_bytes()).unwrap();
    assert_eq!(m.rtp, "127.0.0.1:30002".parse().unwrap());
    assert_eq!(m.audio_pt, Some(8));
    let mut v6 = sd(OFFER);
    v6.point_at("[::1]:30000".parse().unwrap()).unwrap();
    assert!(v6.to_string().contains("o=- 1 2 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\n"));
    assert_eq!(sd("v=0\r\nm=video 1 RTP/AVP 96\r\n").point_at("127.0.0.1:1".parse().unwrap()), Err(SdpError::NoAudio));
}

#[test]
fn a_g711_description_lists_our_formats_and_parses_back() {
    let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let sdp = SessionDescription::g711("sba-gateway", 7, local, &[8, 0]).to_string();
    assert!(sdp.starts_with("v=0\r\no=sba-gateway 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"), "{sdp}");
    assert!(sdp.contains("m=audio 40000 RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"), "{sdp}");
    assert!(sdp.ends_with("a=ptime:20\r\na=sendrecv\r\n"), "{sdp}");
    assert_eq!(avp_audio(sdp.as_bytes()).unwrap(), (Some(local), vec![8, 0]));
    let answer = SessionDescription::g711("sba-gateway", 1, "[::1]:5004".parse().unwrap(), &[0]).to_string();
    assert!(answer.contains("c=IN IP6 ::1\r\n") && answer.contains("m=audio 5004 RTP/AVP 0\r\n"), "{answer}");
}

#[test]
fn the_answer_prefers_the_law_asked_for_and_refuses_without_g711() {
    assert_eq!(choose_g711(&[18, 0, 8], 8), Some(8));
    assert_eq!(choose_g711(&[18, 0], 8), Some(0));
    assert_eq!(choose_g711(&[18, 101], 0), None);
}

#[test]
fn media_level_connection_wins_and_the_profile_picks_the_stream() {
    let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
               m=video 5000 RTP/AVP 96\r\nc=IN IP4 10.0.0.9\r\n\
               m=audio 6000 RTP/AVP 0 101\r\nc=IN IP4 10.0.0.2\r\n";
    assert_eq!(avp_audio(sdp.as_bytes()).unwrap().0, Some("10.0.0.2:6000".parse().unwrap()));
    let hold = "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 6000 RTP/AVP 0\r\n";
    assert_eq!(avp_audio(hold.as_bytes()).unwrap().0, None);
    // SRTP offered first, plain RTP as the fallback stream: a plain-RTP end takes the second.
    let best_effort = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 7000 RTP/SAVP 0\r\nm=audio 7002 RTP/AVP 0\r\n";
    let sd = sd(best_effort);
    assert_eq!(sd.audio(None).unwrap().media.profile, Profile::Savp);
    assert_eq!(avp_audio(best_effort.as_bytes()).unwrap().0, Some("10.0.0.1:7002".parse().unwrap()));
}

#[test]
fn only_a_description_naming_a_secure_profile_may_hold_srtp() {
    for (text, secure) in [
        ("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 7000 RTP/SAVP 0\r\n", true),
        ("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 7000 RTP/SAVPF 0\r\n", true),
        ("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 7000 RTP/AVP 0\r\n", false),
        ("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 7000 rtp/savp 0\r\n", false),
        ("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 7000 UDP/TLS/RTP/SAVPF 0\r\n", false),
    ] {
        let parsed = sd(text).audio(None).unwrap().media.is_secure();
        assert_eq!(parsed, secure, "{text}");
        // The byte test never says no where the parse says yes.
        assert!(Profile::may_hold_secure(text.as_bytes()) || !parsed, "{text}");
    }
    assert!(!Profile::may_hold_secure(b""));
    assert!(!Profile::may_hold_secure(b"RTP/SAV"));
    assert!(Profile::may_hold_secure(b"RTP/SAVP"));
}

#[test]
fn broken_descriptions_are_errors() {
    assert_eq!(avp_audio(b"v=0\r\nm=video 1 RTP/AVP 96\r\n"), Err(SdpError::NoAudio));
    assert_eq!(avp_audio(b"v=0\r\nm=audio 1 RTP/AVP 0\r\n"), Err(SdpError::NoConnection));
    assert_eq!(avp_audio(b"c=IN IP4 nonsense\r\nm=audio 1 RTP/AVP 0\r\n"), Err(SdpError::Malformed("c=")));
    assert_eq!(avp_audio(b"c=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n"), Err(SdpError::Malformed("m=")));
    assert_eq!(avp_audio(b"v=0\r\no=- 1\r\n"), Err(SdpError::Malformed("o=")));
    assert_eq!(avp_audio(&[0xff, 0xfe]), Err(SdpError::NotText));
}

/// An SDES offer as baresip's srtp module writes one (AES_256_CM_HMAC_SHA1_80 first), with a
/// suite the appliance does not know ahead of it.
const SAVP: &str = "v=0\r\no=- 1 2 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n\
    m=audio 40000 RTP/SAVP 0\r\na=crypto:9 AES_192_CM_HMAC_SHA1_80 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n\
    a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:mJ3qVMn0yHTpsJpLfCWdDyE1GmLbsZ/CVAZGiohRaLd5iNcgr/Gt/CkJnEIfnw==\r\n\
    a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20\r\n\
    a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n\
    a=crypto:4 AEAD_AES_128_GCM inline:Bd6ZmFXtWv+9wDh7hO5O1vTP1XKhQKIuJxhXwA==\r\na=sendrecv\r\n";

#[test]
fn sdes_keys_are_read_in_the_offerer_s_order_and_written_back() {
    let d = sd(SAVP);
    let audio = d.audio(Some(&Profile::Savp)).unwrap();
    let suites: Vec<Suite> = audio.media.crypto().map(|c| c.suite()).collect();
    assert_eq!(suites, [Suite::AesCm256HmacSha1_80, Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32, Suite::AeadAes128Gcm]);
    assert_eq!(audio.media.crypto().map(|c| c.tag).collect::<Vec<_>>(), [1, 2, 3, 4]);
    // Written back: the lifetime is not kept (the relay re-keys per call), the rest is.
    let text = d.to_string();
    assert!(text.contains("a=crypto:9 AES_192_CM_HMAC_SHA1_80 inline:NzB4d1BI"));
    assert!(text.contains("a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:mJ3qVMn0yHTpsJpLfCWdDyE1GmLbsZ/CVAZGiohRaLd5iNcgr/Gt/CkJnEIfnw==\r\n"));
    assert!(text.contains("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"));
    assert_eq!(sd(&text), d);
    // No key is ever in a Debug print (logs).
    let debug = format!("{d:?}");
    for secret in ["mJ3qVMn0", "WVNfX19z", "NzB4d1BI", "Bd6ZmFXt"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}

#[test]
fn lines_the_relay_cannot_use_are_kept_but_never_chosen() {
    let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
    for line in [
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|1:4"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key} KDR=1"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key} UNENCRYPTED_SRTCP"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|1:4;inline:{key}|2:4"),
        format!("a=crypto:1 F8_128_HMAC_SHA1_80 inline:{key}"),
    ] {
        let text = format!("v=0\r\nc=IN IP4 192.0.2.5\r\nm=audio 4000 RTP/SAVP 0\r\n{line}\r\n");
        let d = sd(&text);
        assert_eq!(d.media[0].crypto().count(), 0, "{line}");
        assert_eq!(d.to_string(), text);
        assert!(!format!("{d:?}").contains(key));
    }
}

#[test]
fn a_hostile_crypto_line_is_an_error() {
    let key = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
    let long = "A".repeat(600);
    for line in [
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}", &key[..36]),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}AAAA"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}!", &key[..39]),
        format!("a=crypto:1 AEAD_AES_128_GCM inline:{key}"),
        format!("a=crypto:1234567890 AES_CM_128_HMAC_SHA1_80 inline:{key}"),
        format!("a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:{key}"),
        format!("a=crypto:-1 AES_CM_128_HMAC_SHA1_80 inline:{key}"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {key}"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^49"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|0"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|2^20|x:4"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}|"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80  inline:{key}"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{long}"),
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80".to_string(),
        "a=crypto:".to_string(),
    ] {
        let text = format!("v=0\r\nc=IN IP4 192.0.2.5\r\nm=audio 4000 RTP/SAVP 0\r\n{line}\r\n");
        assert_eq!(SessionDescription::parse(text.as_bytes()), Err(SdpError::Malformed("a=crypto")), "{line}");
    }
}

#[test]
fn our_key_replaces_every_crypto_line() {
    let mut d = sd(SAVP);
    let ours = Crypto { tag: 2, key: MasterKey::random(Suite::AesCm128HmacSha1_32) };
    d.media[0].set_crypto(std::slice::from_ref(&ours));
    assert_eq!(d.media[0].crypto().collect::<Vec<_>>(), [&ours]);
    let text = d.to_string();
    assert_eq!(text.matches("a=crypto:").count(), 1);
    assert_eq!(sd(&text).media[0].crypto().next(), Some(&ours));
    d.media[0].set_crypto(&[]);
    assert!(!d.to_string().contains("a=crypto"));
    assert_eq!(d.media[0].profile, Profile::Avp);
    d.media[0].set_crypto(&[ours]);
    assert_eq!(d.media[0].profile, Profile::Savp);
}

#[test]
fn no_key_crosses_the_relay() {
    let mut d = sd(&SAVP.replace("a=sendrecv\r\n", "a=sendrecv\r\nm=video 5000 RTP/SAVP 96\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"));
    d.point_at("198.51.100.1:30000".parse().unwrap()).unwrap();
    let text = d.to_string();
    assert!(!text.contains("a=crypto"), "{text}");
    assert!(text.contains("m=audio 30000 RTP/SAVP 0"), "the profile is the caller's to set: {text}");
}
