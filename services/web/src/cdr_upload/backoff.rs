//! Retry delays after failed posts: 1 s doubling to 60 s, each with up to a quarter of random
//! jitter so that branches coming back after one central outage do not post in step.
use std::time::Duration;

const FIRST: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(60);

pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff { next: FIRST }
    }

    /// The wait before the next try, after a failure; `jitter` in [0, 1) (random).
    pub fn next(&mut self, jitter: f64) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(MAX);
        base + base.mul_f64(jitter.clamp(0.0, 1.0) / 4.0)
    }

    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_a_minute_and_resets() {
        let mut b = Backoff::new();
        let waits: Vec<Duration> = (0..10).map(|i| b.next(f64::from(i) / 10.0)).collect();
        assert!(waits[0] >= FIRST && waits[0] <= FIRST.mul_f64(1.25));
        assert!(waits[1] >= 2 * FIRST);
        assert!(waits[9] >= MAX && waits[9] <= MAX.mul_f64(1.25));
        b.reset();
        assert_eq!(b.next(0.0), FIRST);
    }
}
