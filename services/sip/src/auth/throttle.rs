//! Slows down sources that keep failing authentication, sans-IO: the caller asks before
//! answering, then reports the outcome.
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Failures allowed before any delay.
    pub free_failures: u32,
    /// A source's count is forgotten this long after its last failure.
    pub window: Duration,
    /// Delay after the first failure beyond `free_failures`, doubled for each further one.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Failures (within the window) after which the source is blocked outright.
    pub block_after: u32,
    pub block_for: Duration,
    /// Upper bound of sources remembered.
    pub max_sources: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            free_failures: 5,
            window: Duration::from_secs(60),
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            block_after: 20,
            block_for: Duration::from_secs(300),
            max_sources: 65_536,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Answer, but only after this delay.
    Delay(Duration),
    /// Do not process requests from this source until then.
    Blocked(Instant),
}

#[derive(Debug, Clone, Copy)]
struct Source {
    failures: u32,
    last_failure: Instant,
    blocked_until: Option<Instant>,
}

pub struct FailureThrottle {
    config: ThrottleConfig,
    sources: HashMap<IpAddr, Source>,
}

impl FailureThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        FailureThrottle {
            config,
            sources: HashMap::new(),
        }
    }

    pub fn check(&self, ip: IpAddr, now: Instant) -> Verdict {
        let Some(source) = self.sources.get(&source_key(ip)) else {
            return Verdict::Allowed;
        };
        if let Some(until) = source.blocked_until {
            if now < until {
                return Verdict::Blocked(until);
            }
        }
        if self.expired(source, now) {
            return Verdict::Allowed;
        }
        self.delay_for(source.failures)
            .map_or(Verdict::Allowed, Verdict::Delay)
    }

    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) {
        let key = source_key(ip);
        if !self.sources.contains_key(&key) {
            let mut sources = std::mem::take(&mut self.sources);
            crate::bounded::make_room(&mut sources, self.config.max_sources, |s| self.expired(s, now), |s| s.last_failure);
            self.sources = sources;
        }
        let fresh = Source {
            failures: 0,
            last_failure: now,
            blocked_until: None,
        };
        let mut source = self.sources.get(&key).copied().unwrap_or(fresh);
        if self.expired(&source, now) {
            source = fresh;
        }
        source.failures = source.failures.saturating_add(1);
        source.last_failure = now;
        if source.failures >= self.config.block_after {
            source.blocked_until = Some(now + self.config.block_for);
            log::warn!(
                "blocking {ip} for {:?} after {} authentication failures",
                self.config.block_for,
                source.failures
            );
        }
        self.sources.insert(key, source);
    }

    pub fn record_success(&mut self, ip: IpAddr) {
        self.sources.remove(&source_key(ip));
    }

    /// Sources currently remembered.
    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    fn expired(&self, source: &Source, now: Instant) -> bool {
        let block_over = source.blocked_until.is_none_or(|until| now >= until);
        block_over && now.saturating_duration_since(source.last_failure) > self.config.window
    }

    fn delay_for(&self, failures: u32) -> Option<Duration> {
        let over = failures
            .checked_sub(self.config.free_failures)?
            .checked_sub(1);
        let over = over.map_or(0, |o| o.min(16));
        (failures > self.config.free_failures)
            .then(|| (self.config.base_delay * 2u32.pow(over)).min(self.config.max_delay))
    }
}

/// IPv6 sources are counted per /64: one subscriber usually holds a whole /64.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}
