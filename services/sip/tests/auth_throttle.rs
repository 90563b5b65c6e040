//! FailureThrottle with simulated time.
use std::net::IpAddr;
use std::time::{Duration, Instant};

use holdfast_sip::auth::{FailureThrottle, ThrottleConfig, Verdict};

fn config() -> ThrottleConfig {
    ThrottleConfig {
        free_failures: 3,
        window: Duration::from_secs(60),
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(500),
        block_after: 8,
        block_for: Duration::from_secs(120),
        max_sources: 100,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn delay_grows_then_source_is_blocked_then_forgiven() {
    let mut t = FailureThrottle::new(config());
    let t0 = Instant::now();
    let src = ip("192.0.2.7");
    let mut verdicts = Vec::new();
    for i in 0..8 {
        let now = t0 + Duration::from_secs(i);
        verdicts.push(t.check(src, now));
        t.record_failure(src, now);
    }
    let ms = Duration::from_millis;
    assert_eq!(
        verdicts,
        [
            Verdict::Allowed,
            Verdict::Allowed,
            Verdict::Allowed,
            Verdict::Allowed,
            Verdict::Delay(ms(100)),
            Verdict::Delay(ms(200)),
            Verdict::Delay(ms(400)),
            Verdict::Delay(ms(500)),
        ]
    );
    let blocked_at = t0 + Duration::from_secs(7);
    let until = blocked_at + Duration::from_secs(120);
    assert_eq!(t.check(src, blocked_at), Verdict::Blocked(until));
    assert_eq!(
        t.check(src, until - Duration::from_secs(1)),
        Verdict::Blocked(until)
    );
    // Others are not affected.
    assert_eq!(t.check(ip("192.0.2.8"), blocked_at), Verdict::Allowed);
    // Block over and the window since the last failure passed: a clean slate.
    assert_eq!(t.check(src, until), Verdict::Allowed);
    t.record_failure(src, until);
    assert_eq!(t.check(src, until), Verdict::Allowed);
}

#[test]
fn failures_spread_beyond_the_window_are_forgotten() {
    let mut t = FailureThrottle::new(config());
    let t0 = Instant::now();
    let src = ip("198.51.100.1");
    for i in 0..20 {
        let now = t0 + Duration::from_secs(61 * i);
        assert_eq!(t.check(src, now), Verdict::Allowed);
        t.record_failure(src, now);
    }
}

#[test]
fn success_clears_the_count() {
    let mut t = FailureThrottle::new(config());
    let now = Instant::now();
    let src = ip("203.0.113.9");
    for _ in 0..5 {
        t.record_failure(src, now);
    }
    assert!(matches!(t.check(src, now), Verdict::Delay(_)));
    t.record_success(src);
    assert_eq!(t.check(src, now), Verdict::Allowed);
    assert!(t.is_empty());
}

#[test]
fn ipv6_sources_count_per_64() {
    let mut t = FailureThrottle::new(config());
    let now = Instant::now();
    for i in 0..5 {
        t.record_failure(ip(&format!("2001:db8:1:2::{i:x}")), now);
    }
    assert!(matches!(
        t.check(ip("2001:db8:1:2:ffff::1"), now),
        Verdict::Delay(_)
    ));
    assert_eq!(t.check(ip("2001:db8:1:3::1"), now), Verdict::Allowed);
    // An IPv4-mapped address is the IPv4 source.
    for _ in 0..5 {
        t.record_failure(ip("192.0.2.1"), now);
    }
    assert!(matches!(
        t.check(ip("::ffff:192.0.2.1"), now),
        Verdict::Delay(_)
    ));
}

#[test]
fn memory_is_bounded_under_a_spray_of_sources() {
    let mut t = FailureThrottle::new(config());
    let t0 = Instant::now();
    for i in 0..10_000u32 {
        let now = t0 + Duration::from_millis(u64::from(i));
        t.record_failure(IpAddr::from(i.to_be_bytes()), now);
        assert!(t.len() <= 100);
    }
    // The most recent sources are still tracked.
    let last = IpAddr::from(9_999u32.to_be_bytes());
    for _ in 0..4 {
        t.record_failure(last, t0 + Duration::from_secs(10));
    }
    assert!(matches!(
        t.check(last, t0 + Duration::from_secs(10)),
        Verdict::Delay(_)
    ));
}
