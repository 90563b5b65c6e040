//! Waiting on a condition rather than a sleep: polls it every 100 ms and fails the test, naming
//! what it waited for, when it does not hold in time.
use std::time::{Duration, Instant};

pub fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what} (within {within:?})");
        std::thread::sleep(Duration::from_millis(100));
    }
}
