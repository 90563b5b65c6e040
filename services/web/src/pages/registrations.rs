//! Registrations, with a search over AOR, contact, source address and user agent.
use super::esc;
use holdfast_store::Binding;
use std::fmt::Write;

pub fn registrations(bindings: &[Binding], query: &str) -> String {
    let q = query.trim().to_lowercase();
    let matches = |b: &Binding| {
        q.is_empty()
            || [b.aor.as_str(), b.contact.as_str(), b.source.as_str(), b.user_agent.as_deref().unwrap_or("")]
                .iter()
                .any(|f| f.to_lowercase().contains(&q))
    };
    let shown: Vec<&Binding> = bindings.iter().filter(|b| matches(b)).collect();
    let now = holdfast_runtime::unix_secs();
    let mut out = format!(
        "<form class=\"search\" method=\"get\" action=\"/registrations\"><input type=\"search\" name=\"q\" id=\"q\" \
         value=\"{}\" placeholder=\"user, contact, address, phone model\" autocomplete=\"off\"><button type=\"submit\">Search</button></form>\
         <p id=\"count\">{} of {} registrations</p><table id=\"bindings\"><thead><tr><th>AOR</th><th>contact</th><th>source</th>\
         <th>transport</th><th>expires in</th><th>origin</th><th>user agent</th></tr></thead><tbody>",
        esc(query),
        shown.len(),
        bindings.len()
    );
    for b in shown {
        let _ = write!(
            out,
            "<tr data-aor=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} s</td><td>{}</td><td>{}</td></tr>",
            esc(&b.aor),
            esc(&b.aor),
            esc(&b.contact),
            esc(&b.source),
            esc(&b.transport),
            b.expires_at.saturating_sub(now),
            b.origin.as_str(),
            esc(b.user_agent.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody></table>");
    out
}
