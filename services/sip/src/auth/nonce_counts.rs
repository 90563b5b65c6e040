//! The highest nonce-count seen per nonce, so a replayed request is refused. Entries live only as
//! long as their nonce; when the table is full the oldest nonces (lowest serials: serials are
//! issued in order) are forgotten and from then on treated as stale, so memory stays bounded
//! without ever accepting a replay.
use std::collections::HashMap;

use super::nonce::NonceId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NcVerdict {
    Fresh,
    Replay,
    /// The nonce was forgotten to bound memory; the client must get a new one.
    Forgotten,
}

pub(crate) struct NonceCounts {
    lifetime: u64,
    capacity: usize,
    seen: HashMap<u128, u32>,
    /// Nonces with a lower serial are no longer tracked.
    floor: u64,
    next_sweep: u64,
}

impl NonceCounts {
    pub(crate) fn new(lifetime: u64, capacity: usize) -> Self {
        NonceCounts {
            lifetime,
            capacity: capacity.max(1),
            seen: HashMap::new(),
            floor: 0,
            next_sweep: 0,
        }
    }

    /// Records `nc` for a nonce that is known valid and unexpired at `now`.
    pub(crate) fn observe(&mut self, id: NonceId, nc: u32, now: u64) -> NcVerdict {
        if id.serial < self.floor {
            return NcVerdict::Forgotten;
        }
        if now >= self.next_sweep {
            self.sweep(now);
        }
        let key = id.key();
        if let Some(last) = self.seen.get_mut(&key) {
            if nc <= *last {
                return NcVerdict::Replay;
            }
            *last = nc;
            return NcVerdict::Fresh;
        }
        if self.seen.len() >= self.capacity {
            self.sweep(now);
            if self.seen.len() >= self.capacity {
                self.forget_oldest_quarter();
                if id.serial < self.floor {
                    return NcVerdict::Forgotten;
                }
            }
        }
        self.seen.insert(key, nc);
        NcVerdict::Fresh
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }

    fn sweep(&mut self, now: u64) {
        let cutoff = now.saturating_sub(self.lifetime);
        // A nonce issued exactly `lifetime` ago is still usable, so keep issued >= cutoff.
        self.seen.retain(|&key, _| (key >> 64) as u64 >= cutoff);
        self.next_sweep = now + (self.lifetime / 4).max(1);
    }

    fn forget_oldest_quarter(&mut self) {
        let mut serials: Vec<u64> = self.seen.keys().map(|&k| k as u64).collect();
        let index = serials.len() / 4;
        let (_, &mut cutoff, _) = serials.select_nth_unstable(index);
        self.floor = self.floor.max(cutoff.saturating_add(1));
        let floor = self.floor;
        self.seen.retain(|&key, _| key as u64 >= floor);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(issued: u64, serial: u64) -> NonceId {
        NonceId { issued, serial }
    }

    #[test]
    fn nc_must_increase_per_nonce() {
        let mut t = NonceCounts::new(300, 100);
        assert_eq!(t.observe(id(10, 1), 1, 10), NcVerdict::Fresh);
        assert_eq!(t.observe(id(10, 1), 1, 11), NcVerdict::Replay);
        assert_eq!(t.observe(id(10, 1), 3, 11), NcVerdict::Fresh);
        assert_eq!(t.observe(id(10, 1), 2, 11), NcVerdict::Replay);
        // Another nonce has its own count.
        assert_eq!(t.observe(id(10, 2), 1, 12), NcVerdict::Fresh);
    }

    #[test]
    fn expired_nonces_are_swept() {
        let mut t = NonceCounts::new(300, 100);
        for serial in 0..50 {
            t.observe(id(0, serial), 1, 0);
        }
        assert_eq!(t.len(), 50);
        t.observe(id(400, 1), 1, 400);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn full_table_forgets_oldest_and_refuses_them_afterwards() {
        let mut t = NonceCounts::new(300, 8);
        // All issued in the same second: only the serial orders them.
        for serial in 0..8 {
            assert_eq!(t.observe(id(5, serial), 1, 5), NcVerdict::Fresh);
        }
        assert_eq!(t.observe(id(5, 8), 1, 5), NcVerdict::Fresh);
        assert!(t.len() <= 8);
        // The oldest nonce was forgotten: replaying it must not pass as fresh.
        assert_eq!(t.observe(id(5, 0), 1, 6), NcVerdict::Forgotten);
        assert_eq!(t.observe(id(5, 0), 2, 6), NcVerdict::Forgotten);
        assert_eq!(t.observe(id(5, 7), 1, 6), NcVerdict::Replay);
    }
}
