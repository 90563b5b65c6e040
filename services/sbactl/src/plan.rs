//! `sbactl plan`: sizing the PSTN side for a branch. Erlang B gives the ports (B-channels) that
//! carry the offered traffic at a blocking probability; the seeds' planning guidance gives a
//! rule of thumb by usage (one port per 15, 10 or 5 users for one, two, three or more PSTN calls
//! per user in the busy hour; between two and three, which the seeds leave open, the heavier
//! rule). Both are shown so the admin sees where the rule is generous or
//! short, with the E1/T1 spans the Erlang B figure takes and whether sba.toml's span does.
use holdfast_runtime::config::{ConfigError, Loaded};
use sba_gateway::config::Gateway;
use sba_gateway::q931::Layout;
use serde::Serialize;

/// B-channels of one ISDN PRI span: 30 on an E1 (30B+D), 23 on a T1 (23B+D).
pub const E1_BCHANNELS: u32 = 30;
pub const T1_BCHANNELS: u32 = 23;

/// No branch needs more: past it the loop below would only be counting an input mistake.
const MAX_PORTS: u32 = 100_000;

/// The traffic to plan for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traffic {
    pub users: u32,
    /// PSTN calls per user in the busy hour.
    pub calls_per_user_hour: f64,
    /// Mean holding time of a call, in seconds.
    pub hold_secs: f64,
    /// Acceptable share of calls finding every port busy (grade of service).
    pub blocking: f64,
}

impl Traffic {
    pub fn offered_erlangs(&self) -> f64 {
        f64::from(self.users) * self.calls_per_user_hour * self.hold_secs / 3600.0
    }
}

/// `sbactl plan --json` prints exactly these fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub offered_erlangs: f64,
    pub erlang_b_ports: u32,
    pub rule_of_thumb_ports: u32,
    pub e1_spans: u32,
    pub t1_spans: u32,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("--blocking must be above 0 and below 1 (0.01 is 1%), not {0}")]
    Blocking(f64),
    #[error("--calls-per-user-hour must be a positive number, not {0}")]
    Calls(f64),
    #[error("--hold-secs must be a positive number, not {0}")]
    Hold(f64),
    #[error("{0:.1} erlangs need more than {MAX_PORTS} ports: check the figures")]
    TooMuch(f64),
}

/// Erlang B blocking probability for `erlangs` offered to `ports` servers, by the recurrence
/// B(E, 0) = 1, B(E, m) = E·B(E, m−1) / (m + E·B(E, m−1)), which stays within [0, 1] (the
/// factorial formula overflows long before a large gateway).
pub fn erlang_b(erlangs: f64, ports: u32) -> f64 {
    (1..=ports).fold(1.0, |b, m| erlangs * b / (f64::from(m) + erlangs * b))
}

/// The fewest ports whose blocking is at most `blocking`.
pub fn erlang_b_ports(erlangs: f64, blocking: f64) -> Option<u32> {
    if erlangs <= 0.0 {
        return Some(0);
    }
    let mut b = 1.0;
    for m in 0..=MAX_PORTS {
        if m > 0 {
            b = erlangs * b / (f64::from(m) + erlangs * b);
        }
        if b <= blocking {
            return Some(m);
        }
    }
    None
}

/// The seeds' rule: one port per 15 users (light, one call per user per hour), 10 (moderate,
/// two) or 5 (heavy, three or more), rounded up.
pub fn rule_of_thumb_ports(users: u32, calls_per_user_hour: f64) -> u32 {
    let users_per_port = if calls_per_user_hour <= 1.0 {
        15
    } else if calls_per_user_hour <= 2.0 {
        10
    } else {
        5
    };
    users.div_ceil(users_per_port)
}

pub fn plan(t: Traffic) -> Result<Plan, PlanError> {
    if !(t.blocking > 0.0 && t.blocking < 1.0) {
        return Err(PlanError::Blocking(t.blocking));
    }
    if !(t.calls_per_user_hour.is_finite() && t.calls_per_user_hour > 0.0) {
        return Err(PlanError::Calls(t.calls_per_user_hour));
    }
    if !(t.hold_secs.is_finite() && t.hold_secs > 0.0) {
        return Err(PlanError::Hold(t.hold_secs));
    }
    let offered = t.offered_erlangs();
    let ports = erlang_b_ports(offered, t.blocking).ok_or(PlanError::TooMuch(offered))?;
    Ok(Plan {
        // Two decimals, as Erlang tables print them.
        offered_erlangs: (offered * 100.0).round() / 100.0,
        erlang_b_ports: ports,
        rule_of_thumb_ports: rule_of_thumb_ports(t.users, t.calls_per_user_hour),
        e1_spans: ports.div_ceil(E1_BCHANNELS),
        t1_spans: ports.div_ceil(T1_BCHANNELS),
    })
}

/// The span sba-gateway runs on `config` (sba.toml), read by its own parser: one span per
/// gateway, `[gateway].spantype` (T1 unless set, also without a `[gateway]` table): (kind,
/// B-channels).
pub fn configured_span(text: &str, file: &str) -> Result<(&'static str, u32), ConfigError> {
    Ok(match Gateway::parse(text, file)?.layout() {
        Layout::E1 => ("E1", E1_BCHANNELS),
        Layout::T1 => ("T1", T1_BCHANNELS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published Erlang B tables (traffic in erlangs carried by N circuits at a grade of
    /// service; e.g. the ITU-T/Bell tables reprinted in Cisco's and Avaya's traffic guides):
    /// (N, blocking, erlangs).
    const TABLE: &[(u32, f64, f64)] = &[
        (1, 0.01, 0.0101),
        (2, 0.01, 0.153),
        (5, 0.01, 1.36),
        (10, 0.01, 4.46),
        (10, 0.02, 5.08),
        (10, 0.001, 3.09),
        (20, 0.01, 12.03),
        (23, 0.01, 14.47),
        (30, 0.01, 20.34),
        (30, 0.05, 24.80),
        (50, 0.01, 37.90),
        (100, 0.01, 84.06),
    ];

    #[test]
    fn ports_match_published_erlang_b_tables() {
        for &(n, gos, erlangs) in TABLE {
            // The tables print the most traffic N circuits carry, rounded to the last digit
            // shown (at least two decimals): just under it takes N, a little more takes N + 1.
            assert_eq!(erlang_b_ports(erlangs - 0.005, gos), Some(n), "{erlangs} E at {gos}");
            assert_eq!(erlang_b_ports(erlangs * 1.01, gos), Some(n + 1), "{erlangs} E +1% at {gos}");
            let b = erlang_b(erlangs, n);
            assert!((b - gos).abs() / gos < 0.005, "B({erlangs}, {n}) = {b}, table {gos}");
        }
    }

    #[test]
    fn blocking_of_known_points() {
        // B(E, 1) = E / (1 + E); ten erlangs on ten circuits block 21.46% of calls.
        assert!((erlang_b(1.0, 1) - 0.5).abs() < 1e-12);
        assert!((erlang_b(10.0, 10) - 0.2146).abs() < 1e-4);
        assert_eq!(erlang_b(3.0, 0), 1.0);
        assert_eq!(erlang_b_ports(0.0, 0.01), Some(0));
    }

    #[test]
    fn rule_of_thumb_follows_the_seeds_examples() {
        // "if you have 20 users, you will require a gateway with two ports"
        assert_eq!(rule_of_thumb_ports(20, 1.0), 2);
        // "if you have 100 users, you will require a total of 10 ports"
        assert_eq!(rule_of_thumb_ports(100, 2.0), 10);
        // "if you have 47,000 users, you will require a total of 9,400 ports"
        assert_eq!(rule_of_thumb_ports(47_000, 3.0), 9_400);
        assert_eq!(rule_of_thumb_ports(47_000, 5.0), 9_400);
    }

    #[test]
    fn a_branch_of_200_moderate_users() {
        let p = plan(Traffic { users: 200, calls_per_user_hour: 2.0, hold_secs: 180.0, blocking: 0.01 }).unwrap();
        // 200 × 2 × 180 s / 3600 s = 20 E: 30 circuits at 1% (20.34 E in the table).
        assert_eq!(p, Plan { offered_erlangs: 20.0, erlang_b_ports: 30, rule_of_thumb_ports: 20, e1_spans: 1, t1_spans: 2 });
    }

    #[test]
    fn nonsense_is_refused() {
        let t = Traffic { users: 10, calls_per_user_hour: 1.0, hold_secs: 180.0, blocking: 0.01 };
        assert_eq!(plan(Traffic { blocking: 0.0, ..t }), Err(PlanError::Blocking(0.0)));
        assert_eq!(plan(Traffic { blocking: 1.0, ..t }), Err(PlanError::Blocking(1.0)));
        assert!(matches!(plan(Traffic { hold_secs: f64::NAN, ..t }), Err(PlanError::Hold(_))));
        assert_eq!(plan(Traffic { calls_per_user_hour: -1.0, ..t }), Err(PlanError::Calls(-1.0)));
        assert!(matches!(plan(Traffic { users: u32::MAX, calls_per_user_hour: 1e6, ..t }), Err(PlanError::TooMuch(_))));
    }

    #[test]
    fn the_span_is_read_as_sba_gateway_reads_it() {
        assert_eq!(configured_span("[gateway]\nspan = 1\nspantype = \"e1\"\n", "t").ok(), Some(("E1", 30)));
        // The gateway's default span is a T1, with or without a [gateway] table.
        assert_eq!(configured_span("[gateway]\nsimulated = true\n", "t").ok(), Some(("T1", 23)));
        assert_eq!(configured_span("[registrar]\n", "t").ok(), Some(("T1", 23)));
        assert!(configured_span("[gateway]\nspantype = \"j1\"\n", "t").is_err());
        assert_eq!(Layout::E1.bchannels().count(), E1_BCHANNELS as usize);
        assert_eq!(Layout::T1.bchannels().count(), T1_BCHANNELS as usize);
    }
}
