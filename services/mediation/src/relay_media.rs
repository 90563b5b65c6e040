//! holdfast-media's relay as the B2BUA's `Media`.
use crate::b2bua::Media;
use holdfast_media::{Relay, RemoteMedia, SessionId, Side};
use std::net::SocketAddr;
use std::time::Duration;

pub struct RelayMedia(pub Relay);

impl Media for RelayMedia {
    type Id = SessionId;

    fn allocate(&mut self) -> Result<(SessionId, SocketAddr, SocketAddr), String> {
        let a = self.0.allocate().map_err(|e| e.to_string())?;
        Ok((a.id, a.a.rtp, a.b.rtp))
    }

    fn set_remote(&mut self, id: SessionId, side: Side, remote: RemoteMedia) {
        if let Err(e) = self.0.set_remote(id, side, remote) {
            log::warn!("media session {id:?}: {e}");
        }
    }

    fn release(&mut self, id: SessionId) {
        match self.0.release(id) {
            Ok(stats) => log::debug!("media session {id:?} released: {stats:?}"),
            Err(e) => log::warn!("media session {id:?}: {e}"),
        }
    }

    fn idle(&self, idle_for: Duration) -> Vec<SessionId> {
        self.0.idle_sessions(idle_for)
    }
}
