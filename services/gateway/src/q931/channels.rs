//! B-channel numbering (E1 and T1) and the pool of B-channels shared by the calls of a span.

use super::call::CallId;

/// Frame structure of the span. Channel numbers are those of the channel identification IE,
/// which are also DAHDI's channel positions within the span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// 30 B-channels in timeslots 1-15 and 17-31, D-channel in timeslot 16.
    E1,
    /// 23 B-channels 1-23, D-channel 24.
    T1,
}

impl Layout {
    pub fn dchannel(self) -> u8 {
        match self {
            Layout::E1 => 16,
            Layout::T1 => 24,
        }
    }

    /// Channels on the span including the D-channel (DAHDI's numchans).
    pub fn total_channels(self) -> u8 {
        match self {
            Layout::E1 => 31,
            Layout::T1 => 24,
        }
    }

    pub fn is_bchannel(self, n: u8) -> bool {
        (1..=self.total_channels()).contains(&n) && n != self.dchannel()
    }

    pub fn bchannels(self) -> impl DoubleEndedIterator<Item = u8> {
        (1..=self.total_channels()).filter(move |&n| n != self.dchannel())
    }

    pub fn bchannel_count(self) -> usize {
        usize::from(self.total_channels()) - 1
    }
}

/// Hunting order. The two ends of a PRI hunt from opposite ends so that they rarely collide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hunt {
    Ascending,
    Descending,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("channel {0} is not a B-channel of this span")]
    NotBChannel(u8),
    #[error("channel {0} is in use")]
    Busy(u8),
}

#[derive(Debug)]
pub struct ChannelPool {
    layout: Layout,
    /// Indexed by channel number; index 0 and the D-channel stay empty.
    owners: [Option<CallId>; 32],
}

impl ChannelPool {
    pub fn new(layout: Layout) -> Self {
        ChannelPool { layout, owners: [None; 32] }
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    fn slot(&self, n: u8) -> Option<&Option<CallId>> {
        if self.layout.is_bchannel(n) {
            self.owners.get(usize::from(n))
        } else {
            None
        }
    }

    pub fn owner(&self, n: u8) -> Option<CallId> {
        self.slot(n).copied().flatten()
    }

    pub fn is_free(&self, n: u8) -> bool {
        matches!(self.slot(n), Some(None))
    }

    pub fn free_count(&self) -> usize {
        self.layout.bchannels().filter(|&n| self.is_free(n)).count()
    }

    pub fn reserve(&mut self, n: u8, call: CallId) -> Result<(), ChannelError> {
        if !self.layout.is_bchannel(n) {
            return Err(ChannelError::NotBChannel(n));
        }
        match self.owners.get_mut(usize::from(n)) {
            Some(slot @ None) => {
                *slot = Some(call);
                Ok(())
            }
            Some(Some(owner)) if *owner == call => Ok(()),
            _ => Err(ChannelError::Busy(n)),
        }
    }

    pub fn reserve_any(&mut self, call: CallId, hunt: Hunt) -> Option<u8> {
        let n = match hunt {
            Hunt::Ascending => self.layout.bchannels().find(|&n| self.is_free(n)),
            Hunt::Descending => self.layout.bchannels().rev().find(|&n| self.is_free(n)),
        }?;
        self.reserve(n, call).ok()?;
        Some(n)
    }

    /// Frees `n` if `call` holds it.
    pub fn release(&mut self, n: u8, call: CallId) {
        if let Some(slot) = self.owners.get_mut(usize::from(n)) {
            if *slot == Some(call) {
                *slot = None;
            }
        }
    }

    /// Hands `n` from whoever holds it to `call` (glare: the network side's choice wins).
    pub fn take_over(&mut self, n: u8, call: CallId) -> Result<Option<CallId>, ChannelError> {
        if !self.layout.is_bchannel(n) {
            return Err(ChannelError::NotBChannel(n));
        }
        match self.owners.get_mut(usize::from(n)) {
            Some(slot) => Ok(slot.replace(call)),
            None => Err(ChannelError::NotBChannel(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e1_has_30_b_channels_around_timeslot_16() {
        let e1: Vec<u8> = Layout::E1.bchannels().collect();
        assert_eq!(e1.len(), 30);
        assert_eq!(Layout::E1.bchannel_count(), 30);
        assert_eq!(e1.first(), Some(&1));
        assert_eq!(e1.get(14), Some(&15));
        assert_eq!(e1.get(15), Some(&17));
        assert_eq!(e1.last(), Some(&31));
        assert!(!Layout::E1.is_bchannel(16));
        assert!(!Layout::E1.is_bchannel(0));
        assert!(!Layout::E1.is_bchannel(32));
    }

    #[test]
    fn t1_has_23_b_channels_and_d_on_24() {
        let t1: Vec<u8> = Layout::T1.bchannels().collect();
        assert_eq!(t1, (1..=23).collect::<Vec<u8>>());
        assert!(!Layout::T1.is_bchannel(24));
        assert!(!Layout::T1.is_bchannel(25));
    }

    #[test]
    fn hunting_from_both_ends_until_full() {
        let mut pool = ChannelPool::new(Layout::T1);
        assert_eq!(pool.reserve_any(CallId(1), Hunt::Ascending), Some(1));
        assert_eq!(pool.reserve_any(CallId(2), Hunt::Descending), Some(23));
        assert_eq!(pool.reserve(23, CallId(3)), Err(ChannelError::Busy(23)));
        assert_eq!(pool.reserve(24, CallId(3)), Err(ChannelError::NotBChannel(24)));
        for i in 3..=23 {
            assert!(pool.reserve_any(CallId(i), Hunt::Ascending).is_some());
        }
        assert_eq!(pool.free_count(), 0);
        assert_eq!(pool.reserve_any(CallId(99), Hunt::Ascending), None);
        pool.release(1, CallId(2));
        assert_eq!(pool.owner(1), Some(CallId(1)), "only the holder frees a channel");
        pool.release(1, CallId(1));
        assert!(pool.is_free(1));
        assert_eq!(pool.take_over(23, CallId(50)), Ok(Some(CallId(2))));
        assert_eq!(pool.owner(23), Some(CallId(50)));
    }
}
