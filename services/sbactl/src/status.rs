//! `sbactl status [--json]`: sba-registrar's mode, WAN state and counters, which it rewrites into
//! `<db>.status.json` on every WAN change and every few seconds. Its Unix times are shown as UTC
//! and how long ago; `--json` keeps each beside itself in RFC 3339 (`since_rfc3339`).
use anyhow::{Context, Result};
use holdfast_store::cdr_text::iso;
use std::path::Path;

/// The status file's Unix-seconds fields.
const TIMES: [&str; 2] = ["since", "started"];

pub fn show(db: &Path, json: bool) -> Result<()> {
    let path = holdfast_status::path_of::<holdfast_status::snapshot::RegistrarStatus>(db);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (is sba-registrar running on this database?)", path.display()))?;
    let mut v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if json {
        for key in TIMES {
            if let Some(secs) = v[key].as_i64() {
                v[format!("{key}_rfc3339")] = iso(secs * 1000).into();
            }
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let now = holdfast_runtime::unix_secs();
    let when = |key: &str| v[key].as_i64().map_or("?".to_string(), |secs| format!("{} ({})", iso(secs * 1000), ago(now - secs)));
    println!("mode:      {}", v["mode"].as_str().unwrap_or("?"));
    println!("wan:       {} since {}", v["wan"].as_str().unwrap_or("?"), when("since"));
    println!("started:   {}", when("started"));
    println!("bindings:  {}", v["bindings"]);
    println!("forged WAN probe answers: {}", v["forged_probe_answers"]);
    if let Some(c) = v["wan_counters"].as_object() {
        println!(
            "probes:    {} sent, {} answered, {} failed; {} WAN state changes",
            c["probes_sent"], c["successes"], c["failures"], c["transitions"]
        );
    }
    Ok(())
}

/// A span of seconds as a person says it: `just now`, `45 s ago`, `3 min ago`, `2 h 5 min ago`,
/// `3 days 4 h ago`.
fn ago(secs: i64) -> String {
    let s = secs.max(0);
    let text = match s {
        0 => return "just now".to_string(),
        1..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s / 60 % 60),
        _ => format!("{} days {} h", s / 86_400, s / 3600 % 24),
    };
    format!("{text} ago")
}

#[cfg(test)]
mod tests {
    use super::ago;

    #[test]
    fn spans_read_as_people_say_them() {
        assert_eq!(ago(0), "just now");
        assert_eq!(ago(-3), "just now", "a clock stepped back is no future");
        assert_eq!(ago(45), "45 s ago");
        assert_eq!(ago(3 * 60 + 20), "3 min ago");
        assert_eq!(ago(2 * 3600 + 5 * 60), "2 h 5 min ago");
        assert_eq!(ago(3 * 86_400 + 4 * 3600 + 7), "3 days 4 h ago");
    }
}
