//! The pool of RTP/RTCP port pairs: an even RTP port and the odd port above
//! it for RTCP (RFC 3550 §11). Released pairs go to the back of the queue so
//! a port is not reused while late packets of the old call may still arrive;
//! a pair is taken at random from the older half, so the next call's port
//! cannot be guessed from the last one's.
//! A released pair may carry what it was bound with (`T`), for the next
//! call that takes it.

use std::collections::VecDeque;
use std::ops::RangeInclusive;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortPoolError {
    #[error("port range {start}-{end} holds no even/odd pair")]
    EmptyRange { start: u16, end: u16 },
}

#[derive(Debug)]
pub struct PortPool<T> {
    range: RangeInclusive<u16>,
    free: VecDeque<(u16, Option<T>)>,
}

impl<T> PortPool<T> {
    /// A pool of every pair (even, even + 1) inside `range`.
    pub fn new(range: RangeInclusive<u16>) -> Result<Self, PortPoolError> {
        let first_even = range.start().saturating_add(range.start() % 2);
        let free: VecDeque<(u16, Option<T>)> = (u32::from(first_even)..u32::from(*range.end()))
            .step_by(2)
            .filter_map(|p| Some((u16::try_from(p).ok()?, None)))
            .collect();
        if free.is_empty() || first_even == 0 {
            return Err(PortPoolError::EmptyRange {
                start: *range.start(),
                end: *range.end(),
            });
        }
        Ok(PortPool { range, free })
    }

    /// Takes a free pair: its (even) RTP port, and what it kept from its last use. `pick` is a
    /// random number (randomness is an input): it chooses among the older half of the free
    /// pairs.
    pub fn take(&mut self, pick: u64) -> Option<(u16, Option<T>)> {
        let older = u64::try_from(self.free.len().div_ceil(2)).ok().filter(|n| *n > 0)?;
        self.free.remove(usize::try_from(pick % older).ok()?)
    }

    /// Returns a pair taken with [`PortPool::take`], with what the next user may reuse.
    pub fn give_back(&mut self, rtp_port: u16, kept: Option<T>) {
        debug_assert!(self.range.contains(&rtp_port) && rtp_port.is_multiple_of(2));
        self.free.push_back((rtp_port, kept));
    }

    pub fn available(&self) -> usize {
        self.free.len()
    }

    pub fn range(&self) -> RangeInclusive<u16> {
        self.range.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_even_and_inside_the_range() {
        let mut pool = PortPool::<()>::new(30001..=30010).unwrap();
        assert_eq!(pool.available(), 4); // 30002, 30004, 30006, 30008 (30010 has no odd mate)
        let mut ports: Vec<u16> = std::iter::from_fn(|| pool.take(0)).map(|(p, _)| p).collect();
        ports.sort_unstable();
        assert_eq!(ports, [30002, 30004, 30006, 30008]);
        assert_eq!(pool.take(7), None);
        pool.give_back(30004, None);
        assert_eq!(pool.take(7), Some((30004, None)));
    }

    #[test]
    fn released_ports_go_last_with_what_they_kept() {
        let mut pool = PortPool::new(40000..=40005).unwrap();
        let (first, kept) = pool.take(0).unwrap();
        assert_eq!(kept, None, "a pair never used keeps nothing");
        pool.give_back(first, Some("its sockets"));
        // Three free, the older half is two: the pair just released is out of reach.
        assert_eq!(pool.take(1), Some((40004, None)));
        assert_eq!(pool.take(1), Some((40002, None)));
        assert_eq!(pool.take(1), Some((first, Some("its sockets"))));
    }

    #[test]
    fn empty_ranges_are_refused() {
        assert!(PortPool::<()>::new(40001..=40001).is_err());
        assert!(PortPool::<()>::new(40002..=40002).is_err());
        assert!(PortPool::<()>::new(0..=1).is_err());
        assert!(PortPool::<()>::new(65534..=65535).is_ok());
    }
}

#[cfg(test)]
mod random_tests {
    use super::PortPool;

    #[test]
    fn the_pick_spreads_over_the_older_half() {
        let mut pool = PortPool::<()>::new(30000..=30199).unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..50 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let (port, _) = pool.take(x).unwrap();
            seen.insert(port);
            pool.give_back(port, None);
        }
        assert!(seen.len() > 30, "{} distinct ports in 50 calls", seen.len());
    }
}
