//! Call records as text: the CSV that `sbactl cdr --csv` prints and sba-web downloads (one
//! format), and the UTC timestamps they use.
use crate::cdr::Cdr;

pub const CSV_HEADER: &str = "call_id,direction,setup,answer,end,caller,callee_dialled,callee,callee_sent,caller_sent,route,trunk,failovers,status,q850,end_cause,referred_by,transfer_of";

/// One record as a CSV line (no line ending).
pub fn csv_row(c: &Cdr) -> String {
    let fields = [
        c.call_id.clone(),
        c.direction.clone(),
        iso(c.setup_at),
        c.answered_at.map(iso).unwrap_or_default(),
        iso(c.ended_at),
        c.caller.clone(),
        c.callee_dialled.clone(),
        c.callee.clone(),
        c.callee_sent.clone(),
        c.caller_sent.clone(),
        c.route.clone(),
        c.trunk.clone(),
        c.failovers.to_string(),
        c.status.to_string(),
        c.q850.map(|q| q.to_string()).unwrap_or_default(),
        c.end_cause.clone(),
        c.referred_by.clone().unwrap_or_default(),
        c.transfer_of.clone().unwrap_or_default(),
    ];
    fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",")
}

/// Quotes a field when it holds a comma, quote or line break (RFC 4180). A field a spreadsheet
/// would run as a formula (=, @, or + and - not followed by a digit: numbers such as +4930...
/// stay numbers) is prefixed with a quote mark: call records carry what callers sent.
fn csv_field(f: &str) -> String {
    let formula = match f.as_bytes() {
        [b'=' | b'@' | b'\t' | b'\r', ..] => true,
        [b'+' | b'-', next, ..] => !next.is_ascii_digit(),
        _ => false,
    };
    let f = if formula { format!("'{f}") } else { f.to_string() };
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f
    }
}

/// Unix milliseconds as `2026-11-21T12:30:00.250Z`.
pub fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", s / 3600, s / 60 % 60, s % 60, ms.rem_euclid(1000))
}

/// A proleptic Gregorian date from days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("+4930123456"), "+4930123456");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-x"), "'-x");
        assert_eq!(iso(951_825_600_250), "2000-02-29T12:00:00.250Z");
    }
}
