//! The configuration page: the last check of sba.toml and the errors it found.
use super::{esc, utc};
use crate::config_check::Check;
use std::fmt::Write;

pub fn config_page(check: Option<&Check>) -> String {
    let Some(c) = check else {
        return "<p>sba-web runs on its embedded default configuration (image/run-local): there is no sba.toml to check.</p>".into();
    };
    let mut out = format!(
        "<p>{} checked {} UTC{}.</p>",
        esc(&c.file.display().to_string()),
        utc(c.checked_at_ms),
        c.modified.map_or(String::new(), |_| " (checked again whenever it changes)".into())
    );
    if c.errors.is_empty() {
        out.push_str("<p id=\"config-ok\" class=\"good big\">No errors.</p>");
        return out;
    }
    out.push_str("<table id=\"config-errors\"><thead><tr><th>found by</th><th>error</th></tr></thead><tbody>");
    for (who, e) in &c.errors {
        let _ = write!(out, "<tr><td>{who}</td><td class=\"bad\">{}</td></tr>", esc(e));
    }
    out.push_str("</tbody></table><p>A service refuses to start on a file with errors in its sections; \
        the one running keeps its configuration until it is restarted.</p>");
    out
}
