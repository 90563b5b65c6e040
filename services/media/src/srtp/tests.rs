use super::*;
use rtp_rs::{RtpPacketBuilder, Seq};

fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
    RtpPacketBuilder::new()
        .payload_type(0)
        .ssrc(ssrc)
        .sequence(Seq::from(seq))
        .timestamp(u32::from(seq) * 160)
        .payload(&[0x55; 160])
        .build()
        .unwrap()
}

/// A receiver report from `ssrc` with no report blocks.
fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

const RTP: PacketKind = PacketKind::Rtp { payload_type: 0 };

/// A sender with key `k` and the relay's leg that receives from it.
fn pair(suite: Suite) -> (LegCrypto, LegCrypto) {
    let k = MasterKey::random(suite);
    let sender = LegCrypto::new(LegKeys { inbound: MasterKey::random(suite), outbound: k.clone() });
    let relay = LegCrypto::new(LegKeys { inbound: k, outbound: MasterKey::random(suite) });
    (sender, relay)
}

#[test]
fn every_suite_round_trips_rtp_and_rtcp() {
    for suite in Suite::ALL {
        let (mut phone, mut relay) = pair(suite);
        // Across the sequence number's wrap (the rollover counter moves on).
        for seq in (65530..=65535).chain(0..5) {
            let plain = rtp(7, seq);
            let sealed = phone.protect(RTP, &plain).unwrap();
            assert_ne!(&sealed[12..], &plain[12..], "{suite}: payload encrypted");
            assert_eq!(relay.unprotect(RTP, &sealed).unwrap().as_ref(), plain.as_slice(), "{suite} seq {seq}");
        }
        let sealed = phone.protect(PacketKind::Rtcp, &rtcp(7)).unwrap();
        assert_eq!(relay.unprotect(PacketKind::Rtcp, &sealed).unwrap().as_ref(), rtcp(7).as_slice(), "{suite}");
    }
}

#[test]
fn a_bad_tag_or_another_key_is_refused() {
    for suite in Suite::ALL {
        let (mut phone, mut relay) = pair(suite);
        let mut sealed = phone.protect(RTP, &rtp(7, 10)).unwrap().to_vec();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(relay.unprotect(RTP, &sealed), Err(Refusal::Auth), "{suite}");
        let (mut stranger, _) = pair(suite);
        let forged = stranger.protect(RTP, &rtp(7, 11)).unwrap();
        assert_eq!(relay.unprotect(RTP, &forged), Err(Refusal::Auth), "{suite}");
        let forged = stranger.protect(PacketKind::Rtcp, &rtcp(7)).unwrap();
        assert_eq!(relay.unprotect(PacketKind::Rtcp, &forged), Err(Refusal::Auth), "{suite}");
        // The genuine packets still pass after the forgeries.
        let sealed = phone.protect(RTP, &rtp(7, 12)).unwrap();
        assert!(relay.unprotect(RTP, &sealed).is_ok(), "{suite}");
    }
}

#[test]
fn a_replayed_index_is_refused() {
    for suite in Suite::ALL {
        let (mut phone, mut relay) = pair(suite);
        let first = phone.protect(RTP, &rtp(7, 100)).unwrap();
        assert!(relay.unprotect(RTP, &first).is_ok());
        assert_eq!(relay.unprotect(RTP, &first), Err(Refusal::Replay), "{suite}");
        let report = phone.protect(PacketKind::Rtcp, &rtcp(7)).unwrap();
        assert!(relay.unprotect(PacketKind::Rtcp, &report).is_ok());
        assert_eq!(relay.unprotect(PacketKind::Rtcp, &report), Err(Refusal::Replay), "{suite}");
        // Late but inside the window, and not seen: taken.
        let later: Vec<_> = (101..110).map(|s| phone.protect(RTP, &rtp(7, s)).unwrap()).collect();
        assert!(relay.unprotect(RTP, &later[8]).is_ok());
        assert!(relay.unprotect(RTP, &later[3]).is_ok());
    }
}

#[test]
fn a_rekey_starts_afresh_only_the_direction_whose_key_changed() {
    for suite in Suite::ALL {
        let (mut phone, relay) = pair(suite);
        let (phone_key, relay_key) = (phone.outbound.key.clone(), relay.outbound.key.clone());
        let mut relay = relay;
        let first = phone.protect(RTP, &rtp(7, 100)).unwrap();
        assert!(relay.unprotect(RTP, &first).is_ok());
        // The same keys again (a re-INVITE that keeps them): the replay window is kept.
        relay = relay.rekeyed(LegKeys { inbound: phone_key, outbound: relay_key.clone() });
        assert_eq!(relay.unprotect(RTP, &first), Err(Refusal::Replay), "{suite}");
        // The phone's new key: its packets under the old one no longer pass, the new ones do,
        // and what the relay sends it stays under the relay's unchanged key.
        let new_key = MasterKey::random(suite);
        let old = phone.protect(RTP, &rtp(7, 101)).unwrap();
        relay = relay.rekeyed(LegKeys { inbound: new_key.clone(), outbound: relay_key.clone() });
        assert_eq!(relay.unprotect(RTP, &old), Err(Refusal::Auth), "{suite}");
        let mut phone = LegCrypto::new(LegKeys { inbound: relay_key, outbound: new_key });
        assert!(relay.unprotect(RTP, &phone.protect(RTP, &rtp(7, 102)).unwrap()).is_ok(), "{suite}");
        assert!(phone.unprotect(RTP, &relay.protect(RTP, &rtp(9, 5)).unwrap()).is_ok(), "{suite}");
    }
}

#[test]
fn unencrypted_or_short_srtcp_is_refused_without_a_panic() {
    for suite in Suite::ALL {
        let (mut phone, mut relay) = pair(suite);
        let mut sealed = phone.protect(PacketKind::Rtcp, &rtcp(7)).unwrap().to_vec();
        let e = sealed.len() - suite.srtcp_index_from_end();
        sealed[e] &= 0x7F;
        assert_eq!(relay.unprotect(PacketKind::Rtcp, &sealed), Err(Refusal::Malformed), "{suite}: E flag clear");
        for len in 0..40 {
            let mut p = vec![0x80u8; len];
            if len > 1 {
                p[1] = 201;
            }
            assert!(relay.unprotect(PacketKind::Rtcp, &p).is_err(), "{suite} {len}");
            assert!(relay.unprotect(RTP, &p).is_err(), "{suite} {len}");
        }
    }
}

#[test]
fn forged_ssrcs_leave_no_state_and_real_ones_are_bounded() {
    let (mut phone, mut relay) = pair(Suite::AesCm128HmacSha1_80);
    let (mut stranger, _) = pair(Suite::AesCm128HmacSha1_80);
    for ssrc in 0..1000 {
        let forged = stranger.protect(RTP, &rtp(ssrc, 1)).unwrap();
        assert_eq!(relay.unprotect(RTP, &forged), Err(Refusal::Auth));
    }
    assert!(relay.inbound.contexts.is_empty());
    for ssrc in 0..10 {
        let sealed = phone.protect(RTP, &rtp(ssrc, 1)).unwrap();
        assert!(relay.unprotect(RTP, &sealed).is_ok());
    }
    assert_eq!(relay.inbound.contexts.len(), MAX_SSRCS);
    assert!(phone.outbound.contexts.len() <= MAX_SSRCS);
}

#[test]
fn keys_are_strict_and_never_printed() {
    let suite = Suite::AesCm128HmacSha1_80;
    let key = MasterKey::random(suite);
    let text = key.to_base64();
    assert_eq!(text.len(), 40);
    assert_eq!(MasterKey::from_base64(suite, &text).unwrap(), key);
    assert!(!format!("{key:?}").contains(text.as_str()));
    assert!(format!("{key:?}").contains("redacted"));
    // GCM's 28 octets: padded as written, taken without the padding too.
    let gcm = MasterKey::random(Suite::AeadAes128Gcm);
    let padded = gcm.to_base64();
    assert!(padded.ends_with('='));
    assert_eq!(MasterKey::from_base64(Suite::AeadAes128Gcm, padded.trim_end_matches('=')).unwrap(), gcm);
    for bad in [
        &text[..39],
        &format!("{}A", &*text),
        &format!(" {}", &text[1..]),
        &format!("{}*", &text[..39]),
        "",
        &"A".repeat(10_000),
    ] {
        assert!(MasterKey::from_base64(suite, bad).is_err(), "{bad:?}");
    }
    // A valid key of the wrong suite's length.
    assert!(MasterKey::from_base64(Suite::AeadAes128Gcm, &text).is_err());
    assert_eq!(
        MasterKey::new(suite, &[0; 29]),
        Err(KeyError::Length { suite, expected: 30, got: 29 })
    );
}
