//! How a binding (holdfast_store::Binding, one registered contact of an address of record) is
//! listed in a 200 OK, and how contacts and AORs are compared.
use holdfast_sip::message::{Host, SipUri, Uri};
use holdfast_store::Binding;
use std::fmt::Write;

/// The Contact value listed in a 200 OK: the URI with its remaining expiry and the parameters
/// the phone registered with.
pub fn contact_value(b: &Binding, now: u64) -> String {
    let remaining = u64::try_from(b.expires_at).unwrap_or(0).saturating_sub(now);
    let mut v = format!("<{}>;expires={remaining}", b.contact);
    if let Some(q) = b.q {
        v.push_str(&format!(";q={q}"));
    }
    if let Some(i) = &b.instance {
        v.push_str(";+sip.instance=\"<");
        v.push_str(i);
        v.push_str(">\"");
    }
    if let Some(r) = b.reg_id {
        v.push_str(&format!(";reg-id={r}"));
    }
    v
}

/// A stored binding's contact as a key (see `contact_key`).
pub fn binding_key(b: &Binding) -> String {
    match Uri::parse(&b.contact) {
        Ok(uri) => contact_key(&uri),
        Err(_) => b.contact.clone(),
    }
}

/// A `+sip.instance` value without its quotes and angle brackets.
pub fn unquote_instance(v: &str) -> String {
    v.trim_matches('"').trim_start_matches('<').trim_end_matches('>').to_string()
}

/// RFC 3261 §19.1.4 equality, reduced to a key: scheme, user (case-sensitive), host
/// (case-insensitive), port as written, and the parameters that must match when present.
pub fn contact_key(uri: &Uri) -> String {
    match uri {
        Uri::Sip(SipUri { secure, user, host, port, params, .. }) => {
            let mut key = String::with_capacity(64);
            key.push_str(if *secure { "sips:" } else { "sip:" });
            if let Some(u) = user {
                key.push_str(u);
                key.push('@');
            }
            match host {
                Host::Domain(d) => key.push_str(&d.to_ascii_lowercase()),
                // Writing into a String cannot fail.
                Host::V4(_) | Host::V6(_) => {
                    let _ = write!(key, "{host}");
                }
            }
            if let Some(p) = port {
                let _ = write!(key, ":{p}");
            }
            for name in ["transport", "user", "method", "ttl", "maddr"] {
                if let Some(v) = params.get(name) {
                    key.push(';');
                    key.push_str(name);
                    if let Some(v) = v {
                        key.push('=');
                        key.push_str(&v.to_ascii_lowercase());
                    }
                }
            }
            key
        }
        other => other.to_string(),
    }
}

/// The address of record a To URI names: `sip:user@domain`, without port or parameters.
pub fn aor_of(uri: &Uri) -> Option<String> {
    match uri {
        Uri::Sip(SipUri { user: Some(user), host: Host::Domain(d), .. }) => {
            Some(format!("sip:{user}@{}", d.to_ascii_lowercase()))
        }
        Uri::Sip(SipUri { user: Some(user), host, .. }) => Some(format!("sip:{user}@{}", host_text(host))),
        _ => None,
    }
}

fn host_text(host: &Host) -> String {
    match host {
        Host::Domain(d) => d.to_ascii_lowercase(),
        Host::V4(_) | Host::V6(_) => host.to_string(),
    }
}
