//! What the status snapshot shows of the calls in progress (sba-web's calls page).
use super::{B2bua, Media};
use holdfast_status::snapshot::ActiveCall;

impl<M: Media> B2bua<M> {
    pub fn active_calls(&self) -> Vec<ActiveCall> {
        let mut calls: Vec<ActiveCall> = self
            .calls
            .values()
            .map(|c| ActiveCall {
                caller: c.cdr.caller.clone(),
                callee: c.cdr.callee.clone(),
                trunk: c.attempt().map_or_else(|| c.cdr.trunk.clone(), |a| a.target.hop.to_string()),
                answered: c.is_answered(),
                setup_at_ms: u64::try_from(c.cdr.setup_at).unwrap_or(0),
            })
            .collect();
        calls.sort_by_key(|c| c.setup_at_ms);
        calls
    }

    pub fn media(&self) -> &M {
        &self.media
    }

    /// The relay sessions of the calls in progress.
    pub fn media_sessions(&self) -> Vec<M::Id> {
        self.calls.values().filter_map(|c| c.media.as_ref().map(|(id, _, _)| *id)).collect()
    }
}
