//! holdfast-media's relay as the B2BUA's `Media`, keeping the RTP counts of released sessions.
use crate::b2bua::Media;
use holdfast_media::srtp::LegKeys;
use holdfast_media::{Relay, RemoteMedia, SessionId, SessionStats, Side};
use holdfast_status::snapshot::RtpCounters;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub struct RelayMedia {
    relay: Relay,
    /// Packets of the sessions released so far.
    released: RtpCounters,
}

impl RelayMedia {
    pub fn new(relay: Relay) -> RelayMedia {
        RelayMedia { relay, released: RtpCounters::default() }
    }

    /// RTP relayed and dropped since the start: calls that ended, and `live` in progress.
    pub fn counters(&self, live: &[SessionId], now: Instant) -> RtpCounters {
        let mut total = self.released;
        for id in live {
            if let Ok(stats) = self.relay.stats(*id, now) {
                add(&mut total, &stats);
            }
        }
        total
    }

    fn count(&mut self, stats: &SessionStats) {
        add(&mut self.released, stats);
    }
}

fn add(total: &mut RtpCounters, stats: &SessionStats) {
    for leg in [stats.a, stats.b] {
        total.relayed += leg.forwarded;
        total.dropped += leg.dropped;
        total.srtp_auth_failed += leg.srtp_auth_failed;
        total.srtp_replayed += leg.srtp_replayed;
        total.dropped_foreign += leg.foreign;
        total.lost += leg.lost;
    }
}

impl Media for RelayMedia {
    type Id = SessionId;

    fn allocate(&mut self, now: Instant) -> Result<(SessionId, SocketAddr, SocketAddr), String> {
        let a = self.relay.allocate(now).map_err(|e| e.to_string())?;
        Ok((a.id, a.a.rtp, a.b.rtp))
    }

    fn set_remote(&mut self, id: SessionId, side: Side, remote: RemoteMedia) {
        if let Err(e) = self.relay.set_remote(id, side, remote) {
            log::warn!("media session {id:?}: {e}");
        }
    }

    fn set_crypto(&mut self, id: SessionId, side: Side, keys: Option<LegKeys>) {
        if let Err(e) = self.relay.set_crypto(id, side, keys) {
            log::warn!("media session {id:?}: {e}");
        }
    }

    fn release(&mut self, id: SessionId, now: Instant) {
        match self.relay.release(id, now) {
            Ok(stats) => {
                log::debug!("media session {id:?} released: {stats:?}");
                self.count(&stats);
            }
            Err(e) => log::warn!("media session {id:?}: {e}"),
        }
    }

    fn idle(&self, idle_for: Duration, now: Instant) -> Vec<SessionId> {
        self.relay.idle_sessions(idle_for, now)
    }
}
