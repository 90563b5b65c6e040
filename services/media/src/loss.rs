//! RTP packets lost before they reached the relay, from the sequence numbers a leg's far end
//! sent (RFC 3550 A.1 and A.3): the packets expected from the first to the highest extended
//! sequence number, less those received. A new SSRC, or a jump beyond what reordering explains,
//! starts a new count; the counts of the streams before it are kept.

/// A jump forward beyond this is the sender restarting, not loss (RFC 3550 A.1's MAX_DROPOUT).
const MAX_DROPOUT: u64 = 3000;
/// A packet this far behind the highest is late or duplicated (RFC 3550 A.1's MAX_MISORDER);
/// further behind, the sender restarted.
const MAX_MISORDER: u64 = 100;

#[derive(Debug, Default, Clone, Copy)]
pub struct SequenceGaps {
    stream: Option<Stream>,
    /// Lost in the streams before this one.
    earlier: u64,
}

#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    /// Extended sequence numbers (cycles of 2^16 above the 16 bits on the wire).
    first: u64,
    highest: u64,
    received: u64,
}

impl Stream {
    fn starting(ssrc: u32, seq: u16) -> Stream {
        // One cycle up, so that a packet just before the first one stays above zero.
        let first = (1 << 16) | u64::from(seq);
        Stream { ssrc, first, highest: first, received: 1 }
    }

    fn lost(&self) -> u64 {
        (self.highest - self.first + 1).saturating_sub(self.received)
    }
}

impl SequenceGaps {
    /// An RTP packet the leg took.
    pub fn record(&mut self, ssrc: u32, seq: u16) {
        let Some(s) = self.stream.as_mut().filter(|s| s.ssrc == ssrc) else {
            return self.restart(ssrc, seq);
        };
        // The extended number nearest the highest so far.
        let candidates = [s.highest >> 16, (s.highest >> 16) + 1, (s.highest >> 16).saturating_sub(1)].map(|c| c << 16 | u64::from(seq));
        let Some(ext) = candidates.into_iter().min_by_key(|c| c.abs_diff(s.highest)) else { return };
        if ext > s.highest + MAX_DROPOUT || ext + MAX_MISORDER < s.highest {
            return self.restart(ssrc, seq);
        }
        s.highest = s.highest.max(ext);
        s.received += 1;
    }

    fn restart(&mut self, ssrc: u32, seq: u16) {
        self.earlier += self.stream.map_or(0, |s| s.lost());
        self.stream = Some(Stream::starting(ssrc, seq));
    }

    pub fn lost(&self) -> u64 {
        self.earlier + self.stream.map_or(0, |s| s.lost())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fed(packets: impl IntoIterator<Item = (u32, u16)>) -> u64 {
        let mut gaps = SequenceGaps::default();
        for (ssrc, seq) in packets {
            gaps.record(ssrc, seq);
        }
        gaps.lost()
    }

    #[test]
    fn in_order_loses_nothing_across_the_wrap() {
        assert_eq!(fed((0..70_000u32).map(|i| (7, (65_000 + i) as u16))), 0);
    }

    #[test]
    fn gaps_count_and_late_packets_fill_them() {
        assert_eq!(fed([1, 2, 5, 6, 9].map(|s| (7, s))), 4);
        assert_eq!(fed([1, 2, 5, 3, 4, 6].map(|s| (7, s))), 0, "reordered, all there");
        assert_eq!(fed([65_534, 1, 65_535, 0, 3].map(|s| (7, s))), 1, "reordered over the wrap; 2 lost");
        assert_eq!(fed([10, 9, 8, 11].map(|s| (7, s))), 0, "late ones before the first");
    }

    #[test]
    fn duplicates_do_not_make_loss_negative() {
        assert_eq!(fed([1, 1, 1, 2, 2, 3].map(|s| (7, s))), 0);
    }

    #[test]
    fn a_new_ssrc_or_a_restart_starts_a_new_count_and_keeps_the_old_one() {
        assert_eq!(fed([(7, 1), (7, 3), (8, 40_000), (8, 40_001), (8, 40_003)]), 2);
        assert_eq!(fed([(7, 1), (7, 3), (7, 30_000), (7, 30_001)]), 1, "a jump of 30,000 is a restart, not loss");
        assert_eq!(fed([(7, 5_000), (7, 5_002), (7, 100), (7, 101)]), 1, "far behind: a restart");
    }
}
