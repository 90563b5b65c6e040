//! SRTP on each leg of a call (RFC 3711, keyed by SDES: RFC 4568). Each leg, the branch's
//! phones or a trunk, has a policy (`SrtpPolicy`). The relay ends SRTP on every leg it carries:
//! a leg gets keys of ours, fresh per call, so no key crosses from one side to the other, and a
//! plain side (sba-gateway's) stays RTP. Media bypass keeps the relay out only when the two
//! ends can talk to each other directly: the caller's offer is what the far leg's policy takes.
//! Keys live in the call's memory only: nothing here is logged or reaches a call record.
use holdfast_media::srtp::{LegKeys, MasterKey, Suite};
use holdfast_sip::Ids;
use holdfast_telephony::sdp::{Crypto, SessionDescription};
use serde::Deserialize;

/// `srtp = "mandatory" | "optional" | "off"` for a leg.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// RTP/SAVP only: a plain offer from the leg is answered 488, our offers to it are SRTP.
    Mandatory,
    /// Either: an SRTP offer is answered with SRTP, a plain one plain; our offers are plain
    /// RTP/AVP (what every peer takes).
    #[default]
    Optional,
    /// Plain RTP only: an RTP/SAVP offer is answered 488.
    Off,
}

/// What a leg offered, as its policy takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Offered {
    Plain,
    /// RTP/SAVP, with the first of its keys the relay can use (the offerer's preference).
    Srtp(Crypto),
}

/// The offer a leg made in `body` (none: a late offer), or None when its policy refuses it
/// (488): plain to a mandatory leg, SRTP to one that is off, RTP/SAVP with no key the relay
/// can use, or a mandatory leg's description that cannot be read.
pub(super) fn offered(body: &[u8], policy: SrtpPolicy) -> Option<Offered> {
    let audio = SessionDescription::parse(body).ok().and_then(|sd| {
        let media = sd.audio(None).ok()?.media;
        Some((media.is_secure(), media.crypto().next().cloned()))
    });
    match (audio, policy) {
        (Some((true, _)), SrtpPolicy::Off) => None,
        (Some((true, key)), _) => key.map(Offered::Srtp),
        (_, SrtpPolicy::Mandatory) => None,
        _ => Some(Offered::Plain),
    }
}

/// Whether a leg under `policy` takes `offer` as it is (media bypass, SDP end to end).
pub(super) fn takes(offer: &Offered, policy: SrtpPolicy) -> bool {
    matches!(
        (offer, policy),
        (Offered::Plain, SrtpPolicy::Optional | SrtpPolicy::Off) | (Offered::Srtp(_), SrtpPolicy::Optional | SrtpPolicy::Mandatory)
    )
}

fn fresh(suite: Suite, ids: &mut Ids) -> MasterKey {
    MasterKey::generate(suite, || ids.next_u64())
}

/// Our answer to a leg's SRTP offer: a fresh key of the suite it chose, under its tag, and the
/// leg's keys for the relay.
pub(super) fn answer(theirs: &Crypto, ids: &mut Ids) -> (Crypto, LegKeys) {
    let ours = Crypto { tag: theirs.tag, key: fresh(theirs.suite(), ids) };
    let keys = LegKeys { inbound: theirs.key.clone(), outbound: ours.key.clone() };
    (ours, keys)
}

/// The keys we offer a leg: one a suite, fresh, for a mandatory leg; none otherwise.
pub(super) fn offer(policy: SrtpPolicy, ids: &mut Ids) -> Vec<Crypto> {
    if policy != SrtpPolicy::Mandatory {
        return Vec::new();
    }
    (1..).zip(Suite::ALL).map(|(tag, suite)| Crypto { tag, key: fresh(suite, ids) }).collect()
}

/// The leg's keys from its answer to `ours` (the key it sent under a tag and suite we offered,
/// and ours of that tag); None when it answered plain or with nothing we offered.
pub(super) fn answered(ours: &[Crypto], body: &[u8]) -> Option<(Crypto, LegKeys)> {
    let sd = SessionDescription::parse(body).ok()?;
    let media = sd.audio(None).ok()?.media;
    if !media.is_secure() {
        return None;
    }
    let keys = media.crypto().find_map(|theirs| {
        let mine = ours.iter().find(|o| o.tag == theirs.tag && o.suite() == theirs.suite())?;
        Some((mine.clone(), LegKeys { inbound: theirs.key.clone(), outbound: mine.key.clone() }))
    });
    keys
}

/// A leg's SRTP in a call through the relay: the key we gave it (written into every
/// description that goes to it) and its keys as the relay has them.
#[derive(Debug, Clone, Default)]
pub(super) struct LegSrtp {
    pub(super) ours: Option<Crypto>,
    pub(super) keys: Option<LegKeys>,
}

impl LegSrtp {
    pub(super) fn new(ours: Crypto, keys: LegKeys) -> LegSrtp {
        LegSrtp { ours: Some(ours), keys: Some(keys) }
    }

    /// A mid-call description from the leg: the keys the relay needs when it sent a new key of
    /// ours (None: nothing changes; a leg keeps SRTP though a re-offer leaves the keys out,
    /// its packets must still authenticate).
    pub(super) fn rekeyed(&mut self, body: &[u8]) -> Option<LegKeys> {
        let ours = self.ours.as_ref()?;
        let (_, keys) = answered(std::slice::from_ref(ours), body)?;
        if self.keys.as_ref() == Some(&keys) {
            return None;
        }
        self.keys = Some(keys.clone());
        Some(keys)
    }

    /// The key lines for a description going to this leg.
    pub(super) fn lines(&self) -> &[Crypto] {
        self.ours.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";

    fn body(profile: &str, crypto: &str) -> Vec<u8> {
        format!("v=0\r\nc=IN IP4 192.0.2.5\r\nm=audio 4000 {profile} 0\r\n{crypto}").into_bytes()
    }

    #[test]
    fn each_policy_takes_what_it_should() {
        use SrtpPolicy::*;
        let srtp = body("RTP/SAVP", &format!("a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:{KEY}\r\n"));
        let plain = body("RTP/AVP", "");
        let best_effort = body("RTP/AVP", &format!("a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"));
        let unknown_suite = body("RTP/SAVP", &format!("a=crypto:1 AES_192_CM_HMAC_SHA1_80 inline:{KEY}\r\n"));
        let bad_key = body("RTP/SAVP", &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{}\r\n", &KEY[..20]));
        let Some(Offered::Srtp(c)) = offered(&srtp, Mandatory) else { panic!() };
        assert_eq!((c.tag, c.suite()), (5, Suite::AesCm128HmacSha1_32));
        assert!(matches!(offered(&srtp, Optional), Some(Offered::Srtp(_))));
        assert_eq!(offered(&srtp, Off), None);
        assert_eq!(offered(&plain, Mandatory), None);
        assert_eq!(offered(&best_effort, Mandatory), None);
        assert_eq!(offered(&plain, Optional), Some(Offered::Plain));
        assert_eq!(offered(&best_effort, Off), Some(Offered::Plain));
        assert_eq!(offered(&unknown_suite, Optional), None);
        assert_eq!(offered(&bad_key, Mandatory), None);
        assert_eq!(offered(b"", Mandatory), None);
        assert_eq!(offered(b"", Optional), Some(Offered::Plain));
        assert!(takes(&Offered::Plain, Optional) && !takes(&Offered::Plain, Mandatory));
        assert!(takes(&Offered::Srtp(c.clone()), Mandatory) && !takes(&Offered::Srtp(c), Off));
    }

    #[test]
    fn keys_are_fresh_per_leg_and_the_answer_picks_one_we_offered() {
        let mut ids = Ids::seeded(7);
        let Some(Offered::Srtp(theirs)) =
            offered(&body("RTP/SAVP", &format!("a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n")), SrtpPolicy::Optional)
        else {
            panic!()
        };
        let (ours, keys) = answer(&theirs, &mut ids);
        assert_eq!((ours.tag, ours.suite()), (9, theirs.suite()));
        assert_ne!(ours.key, theirs.key);
        assert_eq!((&keys.inbound, &keys.outbound), (&theirs.key, &ours.key));
        assert!(offer(SrtpPolicy::Optional, &mut ids).is_empty());
        let offered_b = offer(SrtpPolicy::Mandatory, &mut ids);
        assert_eq!(offered_b.iter().map(|c| (c.tag, c.suite())).collect::<Vec<_>>(), [
            (1, Suite::AesCm128HmacSha1_80),
            (2, Suite::AesCm128HmacSha1_32),
            (3, Suite::AeadAes128Gcm)
        ]);
        assert!(offered_b.iter().all(|c| c.key != ours.key));
        // The carrier answers with tag 2 and its own key.
        let reply = body("RTP/SAVP", &format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}\r\n"));
        let (mine, keys) = answered(&offered_b, &reply).unwrap();
        assert_eq!(mine, offered_b[1]);
        assert_eq!(keys.outbound, offered_b[1].key);
        // A tag we offered under another suite, or a plain answer: no keys.
        assert_eq!(answered(&offered_b, &body("RTP/SAVP", &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY}\r\n"))), None);
        assert_eq!(answered(&offered_b, &body("RTP/AVP", "")), None);
        // Mid-call: the same key again changes nothing; a new key of the leg's re-keys it.
        let mut leg = LegSrtp::new(mine, keys);
        assert_eq!(leg.rekeyed(&reply), None);
        let other = MasterKey::random(Suite::AesCm128HmacSha1_32).to_base64();
        let rekey = body("RTP/SAVP", &format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{}\r\n", other.as_str()));
        assert!(leg.rekeyed(&rekey).is_some());
        assert_eq!(leg.rekeyed(&body("RTP/AVP", "")), None);
    }
}
