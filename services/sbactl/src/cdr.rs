//! `sbactl cdr [--since T] [--csv]`: sba-mediation's call records.
use anyhow::{bail, Context, Result};
use holdfast_store::cdr_text::{csv_row, iso, CSV_HEADER};
use holdfast_store::{Cdr, Store};

pub async fn list(store: &Store, since: Option<&str>, csv: bool) -> Result<()> {
    let now = now_ms()?;
    let since = since.map(|t| parse_since(t, now)).transpose()?.unwrap_or(0);
    let cdrs = store.list_cdrs(since).await.context("reading call records")?;
    if csv {
        println!("{CSV_HEADER}");
        for c in &cdrs {
            println!("{}", csv_row(c));
        }
        return Ok(());
    }
    for c in &cdrs {
        println!("{}", line(c));
    }
    Ok(())
}

fn line(c: &Cdr) -> String {
    let answered = match c.answered_at {
        Some(a) => format!("answered +{:.1}s, {:.1}s talk", (a - c.setup_at) as f64 / 1000.0, (c.ended_at - a) as f64 / 1000.0),
        None => "not answered".to_string(),
    };
    // A call refused before any trunk was tried has nothing sent and no trunk: say so.
    let sent = match c.callee_sent.as_str() {
        "" => "not sent".to_string(),
        callee => format!("sent {callee} from {}", c.caller_sent),
    };
    let or_none = |field: &str| if field.is_empty() { "none".to_string() } else { field.to_string() };
    format!(
        "{}  {} {} -> {} = {} ({sent})  route {} trunk {} failovers {}  {}  {}{}  {}{}",
        iso(c.setup_at),
        c.direction,
        c.caller,
        c.callee_dialled,
        or_none(&c.callee),
        or_none(&c.route),
        or_none(&c.trunk),
        c.failovers,
        answered,
        c.status,
        c.q850.map(|q| format!(" (Q.850 {q})")).unwrap_or_default(),
        c.end_cause,
        match (&c.referred_by, &c.transfer_of) {
            (Some(by), Some(of)) => format!("  transferred by {by} from call {of}"),
            _ => String::new(),
        },
    )
}

fn now_ms() -> Result<i64> {
    Ok(i64::try_from(holdfast_runtime::unix_now().as_millis())?)
}

/// `--since`: Unix seconds, a UTC date or time (`2026-11-21`, `2026-11-21T12:30:00Z`), or a
/// span back from now (`90s`, `15m`, `2h`, `7d`). In Unix milliseconds.
pub fn parse_since(t: &str, now_ms: i64) -> Result<i64> {
    let t = t.trim();
    if let Ok(secs) = t.parse::<i64>() {
        return Ok(secs * 1000);
    }
    if let Some(unit) = t.chars().last().filter(|c| "smhd".contains(*c)) {
        if let Ok(n) = t[..t.len() - 1].parse::<i64>() {
            let secs = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                _ => 86_400,
            };
            return Ok(now_ms - n * secs * 1000);
        }
    }
    let t = t.strip_suffix('Z').unwrap_or(t);
    let (date, time) = t.split_once(['T', ' ']).unwrap_or((t, "00:00:00"));
    let num = |s: Option<&str>| -> Result<i64> { s.context("incomplete")?.parse::<i64>().context("not a number") };
    let parsed = (|| -> Result<i64> {
        let mut d = date.split('-');
        let (y, mo, da) = (num(d.next())?, num(d.next())?, num(d.next())?);
        let mut h = time.split(':');
        let (hh, mm, ss) = (num(h.next())?, num(h.next()).unwrap_or(0), num(h.next()).unwrap_or(0));
        if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || hh > 23 || mm > 59 || ss > 60 {
            bail!("out of range");
        }
        Ok(((days_from_civil(y, mo, da) * 24 + hh) * 60 + mm) * 60 + ss)
    })();
    match parsed {
        Ok(secs) => Ok(secs * 1000),
        Err(e) => bail!("--since {t:?}: {e}; use Unix seconds, 2026-11-21[T12:30[:00]Z] (UTC) or 15m/2h/7d"),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_forms() {
        let now = 1_763_728_200_000; // 2025-11-21T12:30:00Z
        assert_eq!(iso(now), "2025-11-21T12:30:00.000Z");
        assert_eq!(parse_since("1763728200", now).unwrap(), now);
        assert_eq!(parse_since("2025-11-21T12:30:00Z", now).unwrap(), now);
        assert_eq!(parse_since("2025-11-21T12:30", now).unwrap(), now);
        assert_eq!(parse_since("2025-11-21", now).unwrap(), now - (12 * 3600 + 1800) * 1000);
        assert_eq!(parse_since("15m", now).unwrap(), now - 900_000);
        assert_eq!(parse_since("2d", now).unwrap(), now - 2 * 86_400_000);
        assert!(parse_since("yesterday", now).is_err());
        assert!(parse_since("2025-13-01", now).is_err());
        assert_eq!(iso(951_825_600_250), "2000-02-29T12:00:00.250Z");
    }
}
