//! The evidence a REGISTER needs while the WAN is down. Over UDP a source address is one forged
//! header away, so it proves nothing by itself: a REGISTER may refresh a binding exactly as it
//! is (the same contact, instance, reg-id, Path, source address and port, transport), which
//! gains an attacker nothing. Over TCP or TLS that is a refresh on the connection the binding
//! was registered (and the central site authenticated it) on, or one from the very same address
//! (the handshake proves it): the RFC 5626 flow vouches for the binding as it stands, never for
//! a change. Anything that adds, moves or removes a binding needs the user's password (digest
//! against the HA1 on the box), and without an HA1 it is refused.
use crate::registrar::{binding_key, contact_key, unquote_instance};
use holdfast_sip::message::{HeaderName, NameAddr, Request};
use holdfast_sip::transport::Source;
use holdfast_store::Binding;

/// What a survival REGISTER may do without more evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurvivalRegister {
    /// Every contact refreshes its binding unchanged: serve it from the cache.
    Refresh,
    /// A change (or a query): the user must prove the password.
    Challenge,
    /// A change, and nothing on the box can check a password for this user.
    Refuse(&'static str),
}

/// Decides a REGISTER for an AOR whose live bindings are `live`, from `source`; `has_ha1`: the
/// user's credentials are on the box.
pub fn survival_register(req: &Request, source: &Source, live: &[&Binding], has_ha1: bool) -> SurvivalRegister {
    if refreshes_unchanged(req, source, live) {
        return SurvivalRegister::Refresh;
    }
    if has_ha1 {
        return SurvivalRegister::Challenge;
    }
    let contacts: Vec<&str> = req.headers.get_all(&HeaderName::Contact).collect();
    let why = if contacts.is_empty() {
        "Forbidden (no credentials here to show bindings during the WAN outage)"
    } else if contacts.iter().any(|c| c.trim() == "*") {
        "Forbidden (no credentials here to remove bindings during the WAN outage)"
    } else if live.is_empty() {
        "Forbidden (unknown device during WAN outage)"
    } else {
        "Forbidden (no credentials here to change a binding during the WAN outage)"
    };
    SurvivalRegister::Refuse(why)
}

/// Whether every contact of `req` names a live binding exactly as it stands, and none asks to
/// be removed.
fn refreshes_unchanged(req: &Request, source: &Source, live: &[&Binding]) -> bool {
    let header_expires = req.headers.get(&HeaderName::Expires).map(str::trim);
    let path: Vec<&str> = req.headers.get_all(&HeaderName::Path).collect();
    let transport = source.transport.param();
    let mut contacts = req.headers.get_all(&HeaderName::Contact).peekable();
    contacts.peek().is_some()
        && contacts.all(|value| {
            let Ok(contact) = NameAddr::parse(value) else { return false };
            let removal = contact.params.value("expires").or(header_expires).is_some_and(|e| e == "0");
            let instance = contact.params.value("+sip.instance").map(unquote_instance);
            let reg_id = match contact.params.value("reg-id").map(str::parse::<u32>) {
                None => None,
                Some(Ok(r)) => Some(r),
                Some(Err(_)) => return false,
            };
            let key = contact_key(&contact.uri);
            !removal
                && live.iter().any(|b| {
                    binding_key(b) == key
                        && b.instance == instance
                        && b.reg_id == reg_id
                        && b.path.iter().map(String::as_str).eq(path.iter().copied())
                        && b.source.parse() == Ok(source.addr)
                        && b.transport == transport
                })
        })
}
