//! Login throttling. Per source address: three failures are free, then each further one shuts
//! that address out for twice as long as the last (1 s, 2 s, ... 15 min); a success or 15 quiet
//! minutes forget it. Overall: at most `PER_SECOND` password checks a second whoever asks, so a
//! crowd of addresses cannot keep the CPU busy with Argon2 either. Addresses remembered are
//! bounded: when the table is full the one quiet longest is forgotten.
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const FREE_FAILURES: u32 = 3;
const MAX_BLOCK: Duration = Duration::from_secs(15 * 60);
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
const MAX_ADDRESSES: usize = 4096;
const PER_SECOND: u32 = 5;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Instant,
}

pub struct LoginThrottle {
    by_ip: HashMap<IpAddr, Failures>,
    /// Checks in the current second, and when it started.
    window: (Instant, u32),
}

impl LoginThrottle {
    pub fn new(now: Instant) -> LoginThrottle {
        LoginThrottle { by_ip: HashMap::new(), window: (now, 0) }
    }

    /// May `ip` try a password now? Err(how long until it may).
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if let Some(f) = self.by_ip.get(&ip) {
            if f.blocked_until > now {
                return Err(f.blocked_until - now);
            }
        }
        if now.duration_since(self.window.0) >= Duration::from_secs(1) {
            self.window = (now, 0);
        }
        if self.window.1 >= PER_SECOND {
            return Err(Duration::from_secs(1).saturating_sub(now.duration_since(self.window.0)));
        }
        self.window.1 += 1;
        Ok(())
    }

    pub fn failed(&mut self, ip: IpAddr, now: Instant) {
        if !self.by_ip.contains_key(&ip) && self.by_ip.len() >= MAX_ADDRESSES {
            self.by_ip.retain(|_, f| now.duration_since(f.last) < FORGET_AFTER);
            if self.by_ip.len() >= MAX_ADDRESSES {
                if let Some(quietest) = self.by_ip.iter().min_by_key(|(_, f)| f.last).map(|(ip, _)| *ip) {
                    self.by_ip.remove(&quietest);
                }
            }
        }
        let f = self.by_ip.entry(ip).or_insert(Failures { count: 0, last: now, blocked_until: now });
        if now.duration_since(f.last) >= FORGET_AFTER {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        if f.count > FREE_FAILURES {
            let doublings = (f.count - FREE_FAILURES - 1).min(10);
            f.blocked_until = now + (Duration::from_secs(1) * 2u32.pow(doublings)).min(MAX_BLOCK);
        }
    }

    pub fn succeeded(&mut self, ip: IpAddr) {
        self.by_ip.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_lock_out_the_address_for_longer_and_longer() {
        let t0 = Instant::now();
        let mut th = LoginThrottle::new(t0);
        let attacker: IpAddr = "127.0.0.2".parse().unwrap();
        let admin: IpAddr = "127.0.0.1".parse().unwrap();
        let mut now = t0;
        for _ in 0..FREE_FAILURES {
            now += Duration::from_secs(2);
            assert!(th.admit(attacker, now).is_ok());
            th.failed(attacker, now);
        }
        now += Duration::from_secs(2);
        assert!(th.admit(attacker, now).is_ok());
        th.failed(attacker, now);
        assert_eq!(th.admit(attacker, now), Err(Duration::from_secs(1)));
        now += Duration::from_secs(1);
        th.failed(attacker, now);
        assert_eq!(th.admit(attacker, now), Err(Duration::from_secs(2)));
        // The admin at another address is not held up.
        assert!(th.admit(admin, now).is_ok());
        for _ in 0..20 {
            th.failed(attacker, now);
        }
        assert_eq!(th.admit(attacker, now), Err(MAX_BLOCK));
        th.succeeded(attacker);
        assert!(th.admit(attacker, now + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn password_checks_are_bounded_overall_and_addresses_too() {
        let t0 = Instant::now();
        let mut th = LoginThrottle::new(t0);
        for i in 0..PER_SECOND {
            assert!(th.admit(IpAddr::from([10, 0, 0, i as u8]), t0).is_ok());
        }
        assert!(th.admit("10.0.1.1".parse().unwrap(), t0).is_err());
        assert!(th.admit("10.0.1.1".parse().unwrap(), t0 + Duration::from_secs(1)).is_ok());
        for i in 0..(MAX_ADDRESSES as u32 + 100) {
            th.failed(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(th.by_ip.len() <= MAX_ADDRESSES);
    }
}
