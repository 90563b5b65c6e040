//! SRTP on each leg of a call (RFC 3711, keyed by SDES: RFC 4568). Each leg, the branch's
//! phones or a trunk, has a policy (`SrtpPolicy`). The relay ends SRTP on every leg it carries:
//! a leg gets keys of ours, fresh per call, so no key crosses from one side to the other, and a
//! plain side (sba-gateway's) stays RTP. Media bypass keeps the relay out only when the two
//! ends can talk to each other directly: the caller's offer is what the far leg's policy takes.
//! Keys live in the call's memory only: nothing here is logged or reaches a call record.
use holdfast_media::srtp::{LegKeys, MasterKey, Suite};
use holdfast_sip::Ids;
use holdfast_telephony::sdp::{Crypto, Profile, SessionDescription};
use crate::srtp_policy::SrtpPolicy;

/// What a leg offered, as its policy takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Offered {
    Plain,
    /// RTP/SAVP, with the first of its keys the relay can use (the offerer's preference).
    Srtp(Crypto),
    /// No description (a late offer) from a mandatory leg: it is offered SRTP with keys of
    /// ours in our 2xx, when the far end's offer comes, and answers in its ACK.
    Late,
}

/// The offer a leg made in `body` (empty: a late offer), or None when its policy refuses it
/// (488): plain to a mandatory leg, SRTP to one that is off, RTP/SAVP with no key the relay
/// can use, or a mandatory leg's description that cannot be read.
pub(super) fn offered(body: &[u8], policy: SrtpPolicy) -> Option<Offered> {
    if body.is_empty() && policy == SrtpPolicy::Mandatory {
        return Some(Offered::Late);
    }
    if !Profile::may_hold_secure(body) {
        return (policy != SrtpPolicy::Mandatory).then_some(Offered::Plain);
    }
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

/// Whether a leg under `policy` takes `offer` as it is (media bypass, SDP end to end). A late
/// offer under mandatory needs the relay: the keys in the far end's offer are not the leg's.
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

/// The keys we offer a leg: one of each of `suites` (in order), fresh, for a mandatory leg;
/// none otherwise.
pub(super) fn offer(policy: SrtpPolicy, suites: &[Suite], ids: &mut Ids) -> Vec<Crypto> {
    if policy != SrtpPolicy::Mandatory {
        return Vec::new();
    }
    (1..).zip(suites).map(|(tag, &suite)| Crypto { tag, key: fresh(suite, ids) }).collect()
}

/// The leg's keys from its answer to `ours` (the key it sent under a tag and suite we offered,
/// and ours of that tag); None when it answered plain or with nothing we offered.
pub(super) fn answered(ours: &[Crypto], body: &[u8]) -> Option<(Crypto, LegKeys)> {
    if !Profile::may_hold_secure(body) {
        return None;
    }
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

/// What a mid-call description does to a leg's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Rekey {
    Unchanged,
    /// The relay's side for the leg takes these keys.
    Rekeyed(LegKeys),
    /// An offer the leg's SRTP cannot take: answered 488, nothing changes.
    Refused,
}

/// How a leg answered keys of ours it was offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OfferAnswer {
    /// It was offered none.
    NotOffered,
    /// It answered one of them with a key of its own: the relay's side for it takes these.
    Keyed(LegKeys),
    /// It answered plain, or with nothing we offered: a mandatory leg without media.
    Unkeyed,
}

/// A leg's SRTP in a call through the relay: its policy, the key we gave it (written into
/// every description that goes to it) and its keys as the relay has them.
#[derive(Debug, Clone)]
pub(super) struct LegSrtp {
    policy: SrtpPolicy,
    pub(super) ours: Option<Crypto>,
    pub(super) keys: Option<LegKeys>,
    /// Keys of ours offered to the leg in our 2xx after its late offer, until its ACK answers.
    offered: Vec<Crypto>,
}

impl LegSrtp {
    /// A leg without SRTP (yet), under `policy`.
    pub(super) fn plain(policy: SrtpPolicy) -> LegSrtp {
        LegSrtp { policy, ours: None, keys: None, offered: Vec::new() }
    }

    pub(super) fn new(policy: SrtpPolicy, ours: Crypto, keys: LegKeys) -> LegSrtp {
        LegSrtp { policy, ours: Some(ours), keys: Some(keys), offered: Vec::new() }
    }

    /// The keys for our offer to the leg after its late offer: a fresh key a suite for a
    /// mandatory leg (the same ones again if a provisional response offered them already),
    /// none otherwise.
    pub(super) fn offer(&mut self, ids: &mut Ids) -> Vec<Crypto> {
        if self.offered.is_empty() {
            self.offered = offer(self.policy, &Suite::ALL, ids);
        }
        self.offered.clone()
    }

    /// The leg's answer (in its ACK) to the keys `offer` gave it.
    pub(super) fn answer_to_offer(&mut self, body: &[u8]) -> OfferAnswer {
        if self.offered.is_empty() {
            return OfferAnswer::NotOffered;
        }
        let offered = std::mem::take(&mut self.offered);
        match answered(&offered, body) {
            Some((ours, keys)) => {
                *self = LegSrtp::new(self.policy, ours, keys.clone());
                OfferAnswer::Keyed(keys)
            }
            None => OfferAnswer::Unkeyed,
        }
    }

    /// A mid-call offer from the leg (RFC 4568 §7.1.4). On an SRTP leg: its key under our tag
    /// and suite becomes its inbound key; a usable line of another tag or suite gets a fresh
    /// key of ours under its tag; an offer with no usable key is refused (488) and the call
    /// keeps the keys it has. A plain leg whose policy allows SRTP that now offers it is
    /// answered with a key of ours, and its side of the relay turns SRTP once the other side
    /// accepts (an "off" leg's SRTP offer is refused); its plain offers change nothing.
    pub(super) fn reoffered(&mut self, body: &[u8], ids: &mut Ids) -> Rekey {
        if let Some(ours) = self.ours.clone() {
            if let Some((_, keys)) = answered(std::slice::from_ref(&ours), body) {
                return self.set(ours, keys);
            }
        }
        match (offered(body, self.policy), &self.ours) {
            (Some(Offered::Srtp(theirs)), _) => {
                let (ours, keys) = answer(&theirs, ids);
                self.set(ours, keys)
            }
            (Some(Offered::Plain), None) => Rekey::Unchanged,
            _ => Rekey::Refused,
        }
    }

    /// A mid-call answer from the leg to an offer that carried our key: its key under our tag
    /// and suite becomes its inbound key; an answer without one changes nothing (the leg's
    /// packets must still authenticate under the keys it has).
    pub(super) fn reanswered(&mut self, body: &[u8]) -> Rekey {
        let Some(ours) = self.ours.clone() else { return Rekey::Unchanged };
        match answered(std::slice::from_ref(&ours), body) {
            Some((_, keys)) => self.set(ours, keys),
            None => Rekey::Unchanged,
        }
    }

    fn set(&mut self, ours: Crypto, keys: LegKeys) -> Rekey {
        if self.ours.as_ref() == Some(&ours) && self.keys.as_ref() == Some(&keys) {
            return Rekey::Unchanged;
        }
        *self = LegSrtp::new(self.policy, ours, keys.clone());
        Rekey::Rekeyed(keys)
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
        assert_eq!(offered(b"", Mandatory), Some(Offered::Late));
        assert!(!takes(&Offered::Late, Mandatory) && !takes(&Offered::Late, Optional));
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
        assert!(offer(SrtpPolicy::Optional, &Suite::ALL, &mut ids).is_empty());
        // A trunk's own list, in its order.
        let gcm_first = [Suite::AeadAes256Gcm, Suite::AesCm128HmacSha1_80];
        let listed = offer(SrtpPolicy::Mandatory, &gcm_first, &mut ids);
        assert_eq!(listed.iter().map(|c| (c.tag, c.suite())).collect::<Vec<_>>(), [(1, gcm_first[0]), (2, gcm_first[1])]);
        let offered_b = offer(SrtpPolicy::Mandatory, &Suite::ALL, &mut ids);
        assert_eq!(offered_b.iter().map(|c| (c.tag, c.suite())).collect::<Vec<_>>(), (1..).zip(Suite::ALL).collect::<Vec<_>>());
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
        let mut leg = LegSrtp::new(SrtpPolicy::Mandatory, mine.clone(), keys);
        assert_eq!(leg.reanswered(&reply), Rekey::Unchanged);
        assert_eq!(leg.reoffered(&reply, &mut ids), Rekey::Unchanged);
        let other = MasterKey::random(Suite::AesCm128HmacSha1_32);
        let rekey = body("RTP/SAVP", &format!("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:{}\r\n", other.to_base64().as_str()));
        assert_eq!(leg.reanswered(&rekey), Rekey::Rekeyed(LegKeys { inbound: other.clone(), outbound: mine.key.clone() }));
        assert_eq!(leg.lines(), [mine.clone()]);
        // An answer without our tag changes nothing; a re-offer without a usable key is refused.
        assert_eq!(leg.reanswered(&body("RTP/AVP", "")), Rekey::Unchanged);
        assert_eq!(leg.reoffered(&body("RTP/AVP", ""), &mut ids), Rekey::Refused);
        assert_eq!(leg.reoffered(&body("RTP/SAVP", &format!("a=crypto:1 AES_192_CM_HMAC_SHA1_80 inline:{KEY}\r\n")), &mut ids), Rekey::Refused);
        assert_eq!(leg.keys.as_ref().map(|k| &k.inbound), Some(&other));
        // A re-offer under another tag and suite: a fresh key of ours for it, under its tag.
        let switch = body("RTP/SAVP", &format!("a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n"));
        let Rekey::Rekeyed(keys) = leg.reoffered(&switch, &mut ids) else { panic!() };
        let now_ours = leg.lines()[0].clone();
        assert_eq!((now_ours.tag, now_ours.suite()), (4, Suite::AesCm128HmacSha1_80));
        assert_ne!(now_ours.key, mine.key);
        assert_eq!(keys, LegKeys { inbound: MasterKey::from_base64(Suite::AesCm128HmacSha1_80, KEY).unwrap(), outbound: now_ours.key });
        // A plain leg: its plain offers change nothing; an SRTP one is answered with a key of
        // ours unless its policy is off.
        assert_eq!(LegSrtp::plain(SrtpPolicy::Optional).reoffered(&body("RTP/AVP", ""), &mut ids), Rekey::Unchanged);
        let mut plain = LegSrtp::plain(SrtpPolicy::Optional);
        let Rekey::Rekeyed(keys) = plain.reoffered(&switch, &mut ids) else { panic!() };
        assert_eq!((plain.lines()[0].tag, &keys.outbound), (4, &plain.lines()[0].key));
        assert_eq!(LegSrtp::plain(SrtpPolicy::Off).reoffered(&switch, &mut ids), Rekey::Refused);
        // A late offer's leg: our keys for it once (kept for the 2xx after a provisional), then
        // its ACK's answer picks one; a mandatory leg answering plain is unkeyed.
        let mut late = LegSrtp::plain(SrtpPolicy::Mandatory);
        let for_it = late.offer(&mut ids);
        assert_eq!((for_it.len(), late.offer(&mut ids)), (Suite::ALL.len(), for_it.clone()));
        let reply = body("RTP/SAVP", &format!("a=crypto:3 AEAD_AES_128_GCM inline:{}\r\n", MasterKey::random(Suite::AeadAes128Gcm).to_base64().as_str()));
        let OfferAnswer::Keyed(keys) = late.answer_to_offer(&reply) else { panic!() };
        assert_eq!((late.lines(), &keys.outbound), (std::slice::from_ref(&for_it[2]), &for_it[2].key));
        let mut late = LegSrtp::plain(SrtpPolicy::Mandatory);
        late.offer(&mut ids);
        assert_eq!(late.answer_to_offer(&body("RTP/AVP", "")), OfferAnswer::Unkeyed);
        assert_eq!(LegSrtp::plain(SrtpPolicy::Optional).offer(&mut ids), []);
        assert_eq!(LegSrtp::plain(SrtpPolicy::Optional).answer_to_offer(&body("RTP/AVP", "")), OfferAnswer::NotOffered);
    }
}
