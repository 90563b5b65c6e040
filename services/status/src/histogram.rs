//! A fixed-bucket latency histogram, filled with atomics from any thread (a store's commit
//! task, a service's loop) and copied into a snapshot for the Prometheus exposition.
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds in seconds, Prometheus-style (`le`); above the last is counted in `+Inf`.
/// From 250 µs (an idle SQLite commit) to 5 s (a probe that nearly timed out).
pub const BOUNDS: [f64; 14] =
    [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Debug, Default)]
pub struct Histogram {
    /// Non-cumulative: `counts[i]` holds observations in (BOUNDS[i-1], BOUNDS[i]]; the last
    /// holds those above every bound.
    counts: [AtomicU64; BOUNDS.len() + 1],
    sum_micros: AtomicU64,
}

/// A copy of a histogram: cumulative counts per bound, as Prometheus exposes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramSnapshot {
    /// (upper bound in seconds, observations at or below it), bounds ascending.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BOUNDS.iter().position(|b| secs <= *b).unwrap_or(BOUNDS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let mut buckets = Vec::with_capacity(BOUNDS.len());
        for (bound, count) in BOUNDS.iter().zip(&self.counts) {
            running += count.load(Ordering::Relaxed);
            buckets.push((*bound, running));
        }
        let count = running + self.counts[BOUNDS.len()].load(Ordering::Relaxed);
        // Microseconds to seconds: exact enough for a mean latency.
        let sum_seconds = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        HistogramSnapshot { buckets, count, sum_seconds }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inf_holds_the_rest() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(100));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_millis(30));
        h.observe(Duration::from_secs(9));
        let s = h.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets[0], (0.00025, 1));
        // 1 ms sits in the 1 ms bucket (le is inclusive).
        assert_eq!(s.buckets[2], (0.001, 2));
        assert_eq!(s.buckets[6], (0.025, 2));
        assert_eq!(s.buckets[7], (0.05, 3));
        assert_eq!(s.buckets.last(), Some(&(5.0, 3)));
        assert!((s.sum_seconds - 9.0311).abs() < 1e-9);
    }
}
