//! One call's media state, sans-IO: latching, where each packet goes, how it
//! is rewritten, and the counters. The relay engine feeds it datagrams.
//!
//! Strict source (rtpengine's `strict-source`): a leg takes packets only from the address its
//! SDP announced. A NATed far end's real port is learnt from its first packet, and only from
//! the SDP's IP or the IP its signalling came from (`RemoteMedia::learn_from`); from then on the
//! leg takes nothing but that address. Anything else is dropped and counted (`foreign`): a third
//! host can neither inject audio into a call nor capture it by sending first (RTP bleed).
//! A leg with SRTP keys (`set_crypto`) takes only packets that authenticate under its far
//! end's key and were not seen before; they are decrypted on the way in, and what goes out to
//! that leg is encrypted under ours. Each leg is its own: the other may be plain RTP.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::g711::{PT_PCMA, PT_PCMU};
use crate::loss::SequenceGaps;
use crate::packet::{classify, PacketKind, Rewrite};
use crate::srtp::{LegCrypto, LegKeys, Refusal};

/// One of the two legs of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// The RTP port or the RTCP port of a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Rtp,
    Rtcp,
}

impl Channel {
    pub(crate) fn index(self) -> usize {
        match self {
            Channel::Rtp => 0,
            Channel::Rtcp => 1,
        }
    }
}

/// What one leg's far end announced in its SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteMedia {
    /// c= address and m= port.
    pub rtp: SocketAddr,
    /// a=rtcp (RFC 3605); `None` means the RTP port + 1.
    pub rtcp: Option<SocketAddr>,
    /// a=rtcp-mux accepted: RTCP shares the RTP port both ways.
    pub rtcp_mux: bool,
    /// The audio payload type in use (0 = PCMU, 8 = PCMA, anything else is
    /// relayed untouched).
    pub audio_pt: Option<u8>,
    /// The RFC 4733 telephone-event payload type, if negotiated.
    pub telephone_event_pt: Option<u8>,
    /// Where the leg's signalling came from (a NATed phone's public IP): its media may come
    /// from there too, on a port learnt from the first packet. Kept across re-INVITEs that
    /// do not name one.
    pub learn_from: Option<IpAddr>,
}

impl RemoteMedia {
    /// A far end at `rtp` with no codec information: packets pass unchanged.
    pub fn at(rtp: SocketAddr) -> Self {
        RemoteMedia {
            rtp,
            rtcp: None,
            rtcp_mux: false,
            audio_pt: None,
            telephone_event_pt: None,
            learn_from: None,
        }
    }

    fn rtcp_addr(&self) -> SocketAddr {
        self.rtcp.unwrap_or_else(|| {
            let mut a = self.rtp;
            a.set_port(a.port().wrapping_add(1));
            a
        })
    }
}

/// Counters of what one leg's far end sent to the relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegStats {
    /// Datagrams received on this leg's ports (RTP and RTCP).
    pub packets: u64,
    /// Bytes of those datagrams.
    pub bytes: u64,
    /// RTCP datagrams among them.
    pub rtcp_packets: u64,
    /// SRTP/SRTCP dropped for an authentication tag that did not verify (forged, or another key).
    pub srtp_auth_failed: u64,
    /// SRTP/SRTCP dropped for an index seen already (replayed) or behind the replay window.
    pub srtp_replayed: u64,
    /// Datagrams sent on to the other leg.
    pub forwarded: u64,
    /// Datagrams dropped: wrong source, malformed, no destination yet, send error.
    pub dropped: u64,
    /// Of those, the ones from an address the leg does not take (strict source).
    pub foreign: u64,
    /// RTP the far end sent that never arrived (gaps in the sequence numbers it took).
    pub lost: u64,
    /// The source RTP is latched to, once the first packet came.
    pub latched_rtp: Option<SocketAddr>,
}

/// A snapshot of a session's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionStats {
    pub a: LegStats,
    pub b: LegStats,
    /// Time since the last packet from either leg (or since allocation).
    pub idle: Duration,
}

/// Where a received datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Forward {
        /// Send out of this leg's socket...
        side: Side,
        /// ...on this port of it...
        channel: Channel,
        /// ...to this address...
        to: SocketAddr,
        /// ...after this rewrite.
        rewrite: Rewrite,
    },
    Drop(DropReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Came from an address the leg does not take: not the one it latched to, nor (before
    /// the first packet) its SDP's address or a port on its SDP's or signalling's IP.
    WrongSource,
    /// Neither RTP nor RTCP.
    Malformed,
    /// The other leg has neither SDP nor a latched address yet.
    NoDestination,
    /// SRTP refused it (see `Refusal`).
    Srtp(Refusal),
}

#[derive(Debug, Default)]
struct Leg {
    remote: Option<RemoteMedia>,
    latched_rtp: Option<SocketAddr>,
    latched_rtcp: Option<SocketAddr>,
    crypto: Option<LegCrypto>,
    gaps: SequenceGaps,
    stats: LegStats,
}

impl Leg {
    /// Before the leg latched on `channel`: the address its SDP announced for it, and the IPs a
    /// NATed far end may send from on a port of its own (the SDP's and the signalling's).
    fn expected_source(&self, channel: Channel) -> Option<(SocketAddr, [Option<IpAddr>; 2])> {
        let remote = self.remote?;
        let exact = match channel {
            Channel::Rtp => remote.rtp,
            Channel::Rtcp => remote.rtcp_addr(),
        };
        Some((exact, [Some(remote.rtp.ip()), remote.learn_from]))
    }

    fn rtp_destination(&self) -> Option<SocketAddr> {
        self.latched_rtp.or(self.remote.map(|r| r.rtp))
    }

    fn rtcp_mux(&self) -> bool {
        self.remote.is_some_and(|r| r.rtcp_mux)
    }

    /// The port RTCP goes out on towards this leg, and where to.
    fn rtcp_destination(&self) -> Option<(Channel, SocketAddr)> {
        if self.rtcp_mux() {
            return self.rtp_destination().map(|a| (Channel::Rtp, a));
        }
        self.latched_rtcp
            .or(self.remote.map(|r| r.rtcp_addr()))
            .or(self.latched_rtp.map(|mut a| {
                a.set_port(a.port().wrapping_add(1));
                a
            }))
            .map(|a| (Channel::Rtcp, a))
    }
}

/// Media state of one call: two legs, each with an RTP and an RTCP port.
#[derive(Debug)]
pub struct Session {
    legs: [Leg; 2],
    last_activity: Instant,
}

impl Session {
    pub fn new(now: Instant) -> Self {
        Session {
            legs: [Leg::default(), Leg::default()],
            last_activity: now,
        }
    }

    /// Sets (or changes, on re-INVITE) what a leg's SDP says. The leg latches
    /// again on its next packet, since the far end may have moved.
    pub fn set_remote(&mut self, side: Side, mut remote: RemoteMedia) {
        let leg = &mut self.legs[side.index()];
        remote.learn_from = remote.learn_from.or(leg.remote.and_then(|r| r.learn_from));
        leg.remote = Some(remote);
        leg.latched_rtp = None;
        leg.latched_rtcp = None;
        leg.stats.latched_rtp = None;
    }

    /// Sets (or changes, on re-INVITE) a leg's SRTP keys; none: the leg is plain RTP.
    pub fn set_crypto(&mut self, side: Side, keys: Option<LegKeys>) {
        let leg = &mut self.legs[side.index()];
        leg.crypto = match (leg.crypto.take(), keys) {
            (Some(old), Some(keys)) => Some(old.rekeyed(keys)),
            (_, keys) => keys.map(LegCrypto::new),
        };
    }

    /// Decides what happens to `datagram`, received on `side`/`channel`
    /// from `source`, and counts it.
    pub fn route(
        &mut self,
        side: Side,
        channel: Channel,
        datagram: &[u8],
        source: SocketAddr,
        now: Instant,
    ) -> Route {
        self.receive(side, channel, datagram, source, now).0
    }

    /// `route`, with the packet as the other leg should see it before `protect`: decrypted
    /// when this leg has SRTP keys (None: the datagram as it came).
    pub fn receive(
        &mut self,
        side: Side,
        channel: Channel,
        datagram: &[u8],
        source: SocketAddr,
        now: Instant,
    ) -> (Route, Option<Bytes>) {
        let (route, plain) = self.decide(side, channel, datagram, source, now);
        let stats = &mut self.legs[side.index()].stats;
        stats.packets += 1;
        stats.bytes += datagram.len() as u64;
        match route {
            Route::Forward { .. } => stats.forwarded += 1,
            Route::Drop(reason) => {
                stats.dropped += 1;
                match reason {
                    DropReason::Srtp(Refusal::Auth) => stats.srtp_auth_failed += 1,
                    DropReason::Srtp(Refusal::Replay) => stats.srtp_replayed += 1,
                    DropReason::WrongSource => stats.foreign += 1,
                    _ => {}
                }
            }
        }
        (route, plain)
    }

    /// A plain packet on its way out to `side`, encrypted when that leg has SRTP keys (None:
    /// it goes as it is).
    pub fn protect(&mut self, side: Side, packet: &[u8]) -> Option<Result<Bytes, Refusal>> {
        let crypto = self.legs[side.index()].crypto.as_mut()?;
        Some(classify(packet).map_err(|_| Refusal::Malformed).and_then(|kind| crypto.protect(kind, packet)))
    }

    /// Turns a forwarded packet into a dropped one when sending failed.
    pub fn send_failed(&mut self, side: Side) {
        let stats = &mut self.legs[side.index()].stats;
        stats.forwarded = stats.forwarded.saturating_sub(1);
        stats.dropped += 1;
    }

    fn decide(
        &mut self,
        side: Side,
        channel: Channel,
        datagram: &[u8],
        source: SocketAddr,
        now: Instant,
    ) -> (Route, Option<Bytes>) {
        let Ok(kind) = classify(datagram) else {
            return (Route::Drop(DropReason::Malformed), None);
        };
        let leg = &mut self.legs[side.index()];
        let expected = leg.expected_source(channel);
        let latched = match channel {
            Channel::Rtp => leg.latched_rtp,
            Channel::Rtcp => leg.latched_rtcp,
        };
        // Strict source, by address before anything else: a latched leg takes only its latched
        // address; before that, only its SDP's address or a port on an IP it may learn from.
        let allowed = match latched {
            Some(addr) => addr == source,
            None => expected.is_some_and(|(exact, ips)| source == exact || ips.contains(&Some(source.ip()))),
        };
        if !allowed {
            return (Route::Drop(DropReason::WrongSource), None);
        }
        // Before anything else about the packet is believed (its source latched, its time
        // counted as activity), it must authenticate.
        let plain = match leg.crypto.as_mut().map(|c| c.unprotect(kind, datagram)) {
            None => None,
            Some(Ok(plain)) => Some(plain),
            Some(Err(refusal)) => return (Route::Drop(DropReason::Srtp(refusal)), None),
        };
        // Symmetric RTP: the first packet the leg takes fixes the far end's real address
        // (its NAT mapping); later packets must come from there.
        let latch = match channel {
            Channel::Rtp => &mut leg.latched_rtp,
            Channel::Rtcp => &mut leg.latched_rtcp,
        };
        if latch.is_none() {
            log::debug!("{side:?} {channel:?} latched to {source}");
            *latch = Some(source);
            if channel == Channel::Rtp {
                leg.stats.latched_rtp = Some(source);
            }
        }
        self.last_activity = now;
        if let (PacketKind::Rtp { .. }, [_, _, s0, s1, _, _, _, _, i0, i1, i2, i3, ..]) = (kind, datagram) {
            leg.gaps.record(u32::from_be_bytes([*i0, *i1, *i2, *i3]), u16::from_be_bytes([*s0, *s1]));
            leg.stats.lost = leg.gaps.lost();
        }
        let from = self.legs[side.index()].remote;
        let to_leg = &self.legs[side.other().index()];
        let route = match kind {
            PacketKind::Rtcp => {
                self.legs[side.index()].stats.rtcp_packets += 1;
                match self.legs[side.other().index()].rtcp_destination() {
                    Some((channel, to)) => Route::Forward {
                        side: side.other(),
                        channel,
                        to,
                        rewrite: Rewrite::Unchanged,
                    },
                    None => Route::Drop(DropReason::NoDestination),
                }
            }
            PacketKind::Rtp { payload_type } => match to_leg.rtp_destination() {
                Some(to) => Route::Forward {
                    side: side.other(),
                    channel: Channel::Rtp,
                    to,
                    rewrite: rewrite_for(payload_type, from, to_leg.remote),
                },
                None => Route::Drop(DropReason::NoDestination),
            },
        };
        (route, plain)
    }

    pub fn stats(&self, now: Instant) -> SessionStats {
        SessionStats {
            a: self.legs[0].stats,
            b: self.legs[1].stats,
            idle: now.saturating_duration_since(self.last_activity),
        }
    }
}

/// The rewrite an RTP packet with `payload_type` needs between two legs'
/// negotiated media: G.711 transcoding when they chose different laws,
/// renumbering of telephone-events when they chose different numbers.
fn rewrite_for(payload_type: u8, from: Option<RemoteMedia>, to: Option<RemoteMedia>) -> Rewrite {
    let (Some(from), Some(to)) = (from, to) else {
        return Rewrite::Unchanged;
    };
    if Some(payload_type) == from.audio_pt {
        return match (from.audio_pt, to.audio_pt) {
            (Some(PT_PCMU), Some(PT_PCMA)) => Rewrite::UlawToAlaw { payload_type: PT_PCMA },
            (Some(PT_PCMA), Some(PT_PCMU)) => Rewrite::AlawToUlaw { payload_type: PT_PCMU },
            _ => Rewrite::Unchanged,
        };
    }
    match (from.telephone_event_pt, to.telephone_event_pt) {
        (Some(f), Some(t)) if f == payload_type && f != t => Rewrite::PayloadType(t),
        _ => Rewrite::Unchanged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtp_rs::{RtpPacketBuilder, Seq};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn rtp(pt: u8) -> Vec<u8> {
        RtpPacketBuilder::new()
            .payload_type(pt)
            .sequence(Seq::from(1))
            .payload(&[0xFF; 160])
            .build()
            .unwrap()
    }

    fn media(port: u16, audio: u8, event: Option<u8>) -> RemoteMedia {
        RemoteMedia {
            audio_pt: Some(audio),
            telephone_event_pt: event,
            ..RemoteMedia::at(addr(port))
        }
    }

    #[test]
    fn latches_to_first_source_and_drops_others() {
        let now = Instant::now();
        let mut s = Session::new(now);
        s.set_remote(Side::A, RemoteMedia::at(addr(4000)));
        s.set_remote(Side::B, RemoteMedia::at(addr(5000)));
        // B is behind NAT: its packets come from 6000, not the SDP's 5000.
        let r = s.route(Side::B, Channel::Rtp, &rtp(0), addr(6000), now);
        assert_eq!(r, Route::Forward { side: Side::A, channel: Channel::Rtp, to: addr(4000), rewrite: Rewrite::Unchanged });
        let r = s.route(Side::A, Channel::Rtp, &rtp(0), addr(4000), now);
        assert_eq!(r, Route::Forward { side: Side::B, channel: Channel::Rtp, to: addr(6000), rewrite: Rewrite::Unchanged });
        let r = s.route(Side::B, Channel::Rtp, &rtp(0), addr(6666), now);
        assert_eq!(r, Route::Drop(DropReason::WrongSource));
        let st = s.stats(now);
        assert_eq!((st.b.packets, st.b.forwarded, st.b.dropped, st.b.foreign), (2, 1, 1, 1));
        assert_eq!(st.b.latched_rtp, Some(addr(6000)));
        // A re-INVITE moves B: it latches afresh.
        s.set_remote(Side::B, RemoteMedia::at(addr(7000)));
        assert!(matches!(s.route(Side::B, Channel::Rtp, &rtp(0), addr(7002), now), Route::Forward { .. }));
    }

    #[test]
    fn no_destination_until_the_other_leg_has_sdp() {
        let now = Instant::now();
        let mut s = Session::new(now);
        s.set_remote(Side::A, RemoteMedia::at(addr(4000)));
        assert_eq!(s.route(Side::A, Channel::Rtp, &rtp(0), addr(4000), now), Route::Drop(DropReason::NoDestination));
        // A leg without SDP takes nothing (strict source): nobody can claim it by sending first.
        assert_eq!(s.route(Side::B, Channel::Rtp, &rtp(0), addr(5000), now), Route::Drop(DropReason::WrongSource));
        s.set_remote(Side::B, RemoteMedia::at(addr(5000)));
        assert!(matches!(s.route(Side::B, Channel::Rtp, &rtp(0), addr(5000), now), Route::Forward { to, .. } if to == addr(4000)));
        assert!(matches!(s.route(Side::A, Channel::Rtp, &rtp(0), addr(4000), now), Route::Forward { to, .. } if to == addr(5000)));
    }

    #[test]
    fn strict_source_takes_only_the_sdp_address_or_a_port_learnt_from_the_signalling_ip() {
        let now = Instant::now();
        let at = |ip: [u8; 4], port| SocketAddr::from((ip, port));
        let mut s = Session::new(now);
        s.set_remote(Side::A, RemoteMedia::at(at([192, 0, 2, 10], 4000)));
        // B: a phone behind NAT. Its SDP names its private address; its INVITE came from
        // 203.0.113.7, where its packets come from too, on a port the NAT chose.
        let nat = RemoteMedia { learn_from: Some(IpAddr::from([203, 0, 113, 7])), ..RemoteMedia::at(at([10, 0, 0, 5], 5000)) };
        s.set_remote(Side::B, nat);
        // A third host, first to send, on either leg: dropped and counted, nothing latched.
        let attacker = at([198, 51, 100, 66], 5000);
        assert_eq!(s.route(Side::A, Channel::Rtp, &rtp(0), attacker, now), Route::Drop(DropReason::WrongSource));
        assert_eq!(s.route(Side::B, Channel::Rtp, &rtp(0), attacker, now), Route::Drop(DropReason::WrongSource));
        assert_eq!(s.route(Side::B, Channel::Rtcp, &[0x80, 201, 0, 1, 0, 0, 0, 1], attacker, now), Route::Drop(DropReason::WrongSource));
        let st = s.stats(now);
        assert_eq!((st.a.foreign, st.b.foreign, st.a.latched_rtp, st.b.latched_rtp), (1, 2, None, None));
        // The real parties.
        let phone = at([203, 0, 113, 7], 61_000);
        assert!(matches!(s.route(Side::B, Channel::Rtp, &rtp(0), phone, now), Route::Forward { to, .. } if to == at([192, 0, 2, 10], 4000)));
        assert!(matches!(s.route(Side::A, Channel::Rtp, &rtp(0), at([192, 0, 2, 10], 4000), now), Route::Forward { to, .. } if to == phone));
        // Latched: even the phone's own IP on another port is foreign now.
        assert_eq!(s.route(Side::B, Channel::Rtp, &rtp(0), at([203, 0, 113, 7], 61_002), now), Route::Drop(DropReason::WrongSource));
        // A re-INVITE (hold) without a signalling address keeps the learnt IP.
        s.set_remote(Side::B, RemoteMedia::at(at([10, 0, 0, 5], 5000)));
        assert!(matches!(s.route(Side::B, Channel::Rtp, &rtp(0), phone, now), Route::Forward { .. }));
    }

    #[test]
    fn rtcp_goes_to_rtcp_port_or_muxed() {
        let now = Instant::now();
        let rr = [0x80, 201, 0, 1, 0, 0, 0, 1];
        let mut s = Session::new(now);
        s.set_remote(Side::A, RemoteMedia::at(addr(4000)));
        s.set_remote(Side::B, RemoteMedia { rtcp_mux: true, ..RemoteMedia::at(addr(5000)) });
        let r = s.route(Side::A, Channel::Rtcp, &rr, addr(4001), now);
        assert_eq!(r, Route::Forward { side: Side::B, channel: Channel::Rtp, to: addr(5000), rewrite: Rewrite::Unchanged });
        // Muxed RTCP from B, on its RTP port, goes to A's RTCP port.
        let r = s.route(Side::B, Channel::Rtp, &rr, addr(5000), now);
        assert_eq!(r, Route::Forward { side: Side::A, channel: Channel::Rtcp, to: addr(4001), rewrite: Rewrite::Unchanged });
        assert_eq!(s.stats(now).b.rtcp_packets, 1);
    }

    #[test]
    fn plans_transcoding_and_event_renumbering() {
        let now = Instant::now();
        let mut s = Session::new(now);
        s.set_remote(Side::A, media(4000, PT_PCMU, Some(101)));
        s.set_remote(Side::B, media(5000, PT_PCMA, Some(96)));
        let rewrite = |s: &mut Session, side, pt, src| match s.route(side, Channel::Rtp, &rtp(pt), addr(src), now) {
            Route::Forward { rewrite, .. } => rewrite,
            other => panic!("{other:?}"),
        };
        assert_eq!(rewrite(&mut s, Side::A, 0, 4000), Rewrite::UlawToAlaw { payload_type: 8 });
        assert_eq!(rewrite(&mut s, Side::B, 8, 5000), Rewrite::AlawToUlaw { payload_type: 0 });
        assert_eq!(rewrite(&mut s, Side::A, 101, 4000), Rewrite::PayloadType(96));
        assert_eq!(rewrite(&mut s, Side::B, 96, 5000), Rewrite::PayloadType(101));
        // Comfort noise (PT 13) is neither: it passes as it is.
        assert_eq!(rewrite(&mut s, Side::A, 13, 4000), Rewrite::Unchanged);
        s.set_remote(Side::B, media(5000, PT_PCMU, Some(101)));
        assert_eq!(rewrite(&mut s, Side::A, 0, 4000), Rewrite::Unchanged);
        assert_eq!(rewrite(&mut s, Side::A, 101, 4000), Rewrite::Unchanged);
    }

    #[test]
    fn counts_the_gaps_in_what_a_leg_took_not_in_what_strangers_sent() {
        let now = Instant::now();
        let mut s = Session::new(now);
        s.set_remote(Side::A, RemoteMedia::at(addr(4000)));
        s.set_remote(Side::B, RemoteMedia::at(addr(5000)));
        let numbered = |seq: u16| RtpPacketBuilder::new().payload_type(0).ssrc(9).sequence(Seq::from(seq)).payload(&[0xFF; 160]).build().unwrap();
        for seq in [1, 2, 3, 6, 7] {
            s.route(Side::A, Channel::Rtp, &numbered(seq), addr(4000), now);
        }
        // A stranger's numbers do not fill the gap, nor open new ones.
        s.route(Side::A, Channel::Rtp, &numbered(4), SocketAddr::from(([127, 0, 0, 2], 4000)), now);
        s.route(Side::A, Channel::Rtp, &numbered(900), SocketAddr::from(([127, 0, 0, 2], 4000)), now);
        let st = s.stats(now);
        assert_eq!((st.a.lost, st.a.foreign, st.b.lost), (2, 2, 0));
    }

    #[test]
    fn counts_idle_time() {
        let t0 = Instant::now();
        let mut s = Session::new(t0);
        s.set_remote(Side::A, RemoteMedia::at(addr(4000)));
        s.set_remote(Side::B, RemoteMedia::at(addr(5000)));
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(s.stats(t1).idle, Duration::from_secs(5));
        s.route(Side::A, Channel::Rtp, &rtp(0), addr(4000), t1);
        assert_eq!(s.stats(t1 + Duration::from_secs(2)).idle, Duration::from_secs(2));
        // Malformed packets do not count as activity.
        s.route(Side::A, Channel::Rtp, &[1, 2, 3], addr(4000), t1 + Duration::from_secs(3));
        assert_eq!(s.stats(t1 + Duration::from_secs(3)).idle, Duration::from_secs(3));
    }

    #[test]
    fn an_srtp_leg_takes_only_authentic_fresh_packets_and_the_plain_leg_sees_them_decrypted() {
        use crate::srtp::{MasterKey, Suite};
        let now = Instant::now();
        let suite = Suite::AesCm128HmacSha1_80;
        let (phone_key, relay_key) = (MasterKey::random(suite), MasterKey::random(suite));
        // The phone on A encrypts with its key and decrypts with ours.
        let mut phone = LegCrypto::new(LegKeys { inbound: relay_key.clone(), outbound: phone_key.clone() });
        let mut stranger = LegCrypto::new(LegKeys { inbound: MasterKey::random(suite), outbound: MasterKey::random(suite) });
        let mut s = Session::new(now);
        s.set_remote(Side::A, RemoteMedia::at(addr(4000)));
        s.set_remote(Side::B, RemoteMedia::at(addr(5000)));
        s.set_crypto(Side::A, Some(LegKeys { inbound: phone_key, outbound: relay_key }));
        let kind = PacketKind::Rtp { payload_type: 0 };
        // A forgery sent first latches nothing.
        let forged = stranger.protect(kind, &rtp(0)).unwrap();
        assert_eq!(s.receive(Side::A, Channel::Rtp, &forged, addr(6666), now), (Route::Drop(DropReason::Srtp(Refusal::Auth)), None));
        assert_eq!(s.stats(now).a.latched_rtp, None);
        let sealed = phone.protect(kind, &rtp(0)).unwrap();
        let (route, plain) = s.receive(Side::A, Channel::Rtp, &sealed, addr(4000), now);
        assert_eq!(route, Route::Forward { side: Side::B, channel: Channel::Rtp, to: addr(5000), rewrite: Rewrite::Unchanged });
        assert_eq!(plain.as_deref(), Some(rtp(0).as_slice()));
        assert_eq!(s.route(Side::A, Channel::Rtp, &sealed, addr(4000), now), Route::Drop(DropReason::Srtp(Refusal::Replay)));
        // A forgery of the next packet, from the phone's own address (on the path).
        let mut next = rtp(0);
        next[3] = 2;
        let forged = stranger.protect(kind, &next).unwrap();
        assert_eq!(s.route(Side::A, Channel::Rtp, &forged, addr(4000), now), Route::Drop(DropReason::Srtp(Refusal::Auth)));
        let st = s.stats(now).a;
        assert_eq!((st.forwarded, st.dropped, st.srtp_auth_failed, st.srtp_replayed), (1, 3, 2, 1));
        // B's plain RTP goes to A encrypted under our key; B itself gets plain.
        assert!(matches!(s.route(Side::B, Channel::Rtp, &rtp(0), addr(5000), now), Route::Forward { side: Side::A, .. }));
        let out = s.protect(Side::A, &rtp(0)).unwrap().unwrap();
        assert_eq!(phone.unprotect(kind, &out).unwrap().as_ref(), rtp(0).as_slice());
        assert_eq!(s.protect(Side::B, &rtp(0)), None);
        // Keys taken away (a re-INVITE to RTP/AVP): plain again.
        s.set_crypto(Side::A, None);
        assert_eq!(s.protect(Side::A, &rtp(0)), None);
    }
}
