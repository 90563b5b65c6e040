//! Server-rendered pages. Every value from the store or a snapshot (phone-supplied contacts and
//! user agents among them) goes through `esc`. Each page is a `<main>` inside `layout`; the
//! script in static/app.js fetches the same page with `X-Refresh: 1` every two seconds and
//! swaps the `<main>` in, so the page follows the appliance without reloading.
mod calls;
mod config_check;
mod login;
mod overview;
mod registrations;
mod trunks;

pub use calls::{calls, cdr_csv, cdrs};
pub use config_check::config_page;
pub use login::login;
pub use overview::overview;
pub use registrations::registrations;
pub use trunks::{span, trunks};

/// The pages, in the navigation's order: (path, title).
const NAV: [(&str, &str); 7] = [
    ("/", "Overview"),
    ("/registrations", "Registrations"),
    ("/trunks", "Trunks"),
    ("/span", "PRI span"),
    ("/calls", "Calls"),
    ("/cdrs", "Call records"),
    ("/config", "Configuration"),
];

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The whole document around a page's `<main>` content.
pub fn layout(path: &str, main: &str, csrf: &str) -> String {
    let title = NAV.iter().find(|(p, _)| *p == path).map_or("Holdfast", |(_, t)| t);
    let nav: String = NAV
        .iter()
        .map(|(p, t)| {
            let current = if *p == path { " aria-current=\"page\"" } else { "" };
            format!("<a href=\"{p}\"{current}>{t}</a>")
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Holdfast</title><link rel=\"stylesheet\" href=\"/static/style.css\">\
         <script src=\"/static/app.js\" defer></script></head>\
         <body><header><span class=\"brand\">Holdfast</span><nav>{nav}</nav>\
         <form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\">Log out</button></form></header>\
         <main id=\"main\">{main}</main></body></html>\n",
        esc(csrf)
    )
}

/// Unix milliseconds as UTC "YYYY-MM-DD HH:MM:SS".
pub fn utc(ms: u64) -> String {
    let iso = holdfast_store::cdr_text::iso(i64::try_from(ms).unwrap_or(i64::MAX));
    iso.get(..19).unwrap_or(&iso).replacen('T', " ", 1)
}

/// "3 s", "4 min", "2 h 5 min" ago.
pub fn ago(ms: u64) -> String {
    let secs = holdfast_runtime::unix_ms().saturating_sub(ms) / 1000;
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// A notice that a service has written no current status.
pub fn missing(service: &str) -> String {
    format!("<p class=\"warn\">No current status from {service}: is it running on this database?</p>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_dates() {
        assert_eq!(esc("<sip:a@b>;\"x\"&'\n"), "&lt;sip:a@b&gt;;&quot;x&quot;&amp;&#39;\u{FFFD}");
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_709_210_096_000), "2024-02-29 12:34:56");
    }
}
