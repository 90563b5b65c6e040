//! What a server writes into the top Via of a request it receives (RFC 3261 §18.2.1, RFC 3581
//! §4), so that the response finds its way back through NATs.
use crate::message::uri::RawHost;
use crate::message::via::RawVia;
use crate::message::{ip_text, Header, HeaderError, HeaderName, Request, Via};
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

/// Adds `received=` when the packet's source IP differs from the sent-by host (or the host is a
/// name), and fills `rport` with the source port when the client asked for it; RFC 3581 then
/// wants `received=` even when the address is the same.
pub fn stamp_via(request: &mut Request, source: SocketAddr) -> Result<(), HeaderError> {
    let value = request.headers.get(&HeaderName::Via).ok_or(HeaderError::Missing("Via"))?;
    let raw = RawVia::scan(value)?;
    let ip = source.ip().to_canonical();
    let [rport, received] = raw.params(["rport", "received"]);
    let same_host = match (raw.host, ip) {
        (RawHost::V4(host), IpAddr::V4(ip)) => host == ip,
        (RawHost::V6(host), IpAddr::V6(ip)) => host == ip,
        _ => false,
    };
    if same_host && rport.is_none() {
        return Ok(());
    }
    let plain = matches!((received, rport), (None, None | Some(None))) && is_plain(value);
    let stamped = match plain.then(|| appended(value, &raw, ip, source.port())).flatten() {
        Some(text) => text,
        None => rewritten(value, ip, source.port())?,
    };
    // The top Via keeps its place: `set` rewrites a lone Via where it stands, and `push_front`
    // puts it back before the Vias that follow it.
    if request.headers.count(&HeaderName::Via) == 1 {
        request.headers.set(HeaderName::Via, stamped);
    } else {
        request.headers.remove_first(&HeaderName::Via);
        request.headers.push_front(Header::new(HeaderName::Via, stamped));
    }
    Ok(())
}

/// A Via written the usual way (one space, after the sent-protocol) can be stamped as text.
fn is_plain(value: &str) -> bool {
    value.bytes().filter(|b| b.is_ascii_whitespace()).count() == 1 && !value.ends_with(char::is_whitespace)
}

/// The Via as it stands, a valueless `rport` given the port and `received=` added: what
/// `rewritten` writes for such a Via, without building and writing a whole `Via` (a REGISTER's
/// two requests spent 7% of the registrar's instructions there).
fn appended(value: &str, raw: &RawVia, ip: IpAddr, port: u16) -> Option<String> {
    // The parameters end a plain Via.
    let head = value.strip_suffix(raw.params_text())?;
    let mut out = String::with_capacity(value.len() + 40);
    out.push_str(head);
    raw.each_param(|name, v| {
        out.push(';');
        out.push_str(name);
        match v {
            Some(v) => {
                out.push('=');
                out.push_str(v);
            }
            // Writing into a String cannot fail.
            None if name.eq_ignore_ascii_case("rport") => {
                let _ = write!(out, "={port}");
            }
            None => {}
        }
    });
    out.push_str(";received=");
    out.push_str(&ip_text(ip));
    Some(out)
}

/// Any Via: parsed, the two parameters set, written anew.
fn rewritten(value: &str, ip: IpAddr, port: u16) -> Result<String, HeaderError> {
    let mut via = Via::parse(value)?;
    let wants_rport = via.params.contains("rport");
    via.params.set("received", Some(ip_text(ip)));
    if wants_rport {
        via.params.set("rport", Some(port.to_string()));
    }
    Ok(via.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Method, Uri};

    fn request(vias: &[&str]) -> Request {
        let mut r = Request::new(Method::OPTIONS, Uri::parse("sip:a@example.com").unwrap());
        for via in vias {
            r.headers.add(HeaderName::Via, *via);
        }
        r
    }

    fn vias(r: &Request) -> Vec<&str> {
        r.headers.get_all(&HeaderName::Via).collect()
    }

    #[test]
    fn the_top_via_keeps_its_place() {
        for count in [1, 2] {
            let mut r = request(&[]);
            r.headers.add(HeaderName::CallId, "c");
            for n in 0..count {
                r.headers.add(HeaderName::Via, format!("SIP/2.0/UDP 10.0.0.{n};branch=z9hG4bK{n}"));
            }
            r.headers.add(HeaderName::CSeq, "1 OPTIONS");
            stamp_via(&mut r, "192.0.2.7:5060".parse().unwrap()).unwrap();
            let names: Vec<_> = r.headers.iter().map(|h| h.name.as_str()).collect();
            let mut expected = vec!["Call-ID"];
            expected.extend(std::iter::repeat_n("Via", count));
            expected.push("CSeq");
            assert_eq!(names, expected);
            assert!(vias(&r)[0].ends_with(";received=192.0.2.7"));
        }
    }

    #[test]
    fn same_address_without_rport_is_left_alone() {
        let mut r = request(&["SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1"]);
        stamp_via(&mut r, "192.0.2.1:40000".parse().unwrap()).unwrap();
        assert_eq!(vias(&r), ["SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1"]);
    }

    #[test]
    fn other_address_or_a_name_gets_received() {
        let mut r = request(&["SIP/2.0/UDP phone.example.com;branch=z9hG4bK1", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0"]);
        stamp_via(&mut r, "192.0.2.7:5060".parse().unwrap()).unwrap();
        assert_eq!(vias(&r), [
            "SIP/2.0/UDP phone.example.com;branch=z9hG4bK1;received=192.0.2.7",
            "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK0"
        ]);
    }

    #[test]
    fn rport_is_filled_and_received_always_added() {
        let mut r = request(&["SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bK1"]);
        stamp_via(&mut r, "192.0.2.1:41234".parse().unwrap()).unwrap();
        assert_eq!(vias(&r), ["SIP/2.0/UDP 192.0.2.1:5060;rport=41234;branch=z9hG4bK1;received=192.0.2.1"]);
    }

    #[test]
    fn text_stamping_writes_what_rewriting_writes() {
        let source: SocketAddr = "198.51.100.9:40001".parse().unwrap();
        for via in [
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport",
            "SIP/2.0/UDP 192.0.2.1;rport;branch=z9hG4bK1;x=\"a;b\"",
            "SIP/2.0/TCP phone.example.com:5061;branch=z9hG4bK2",
            "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK3;RPORT",
        ] {
            assert!(is_plain(via), "{via}");
            let raw = RawVia::scan(via).unwrap();
            let ip = source.ip();
            assert_eq!(appended(via, &raw, ip, source.port()), rewritten(via, ip, source.port()).ok(), "{via}");
        }
        // Odd spacing, or received already there: the Via is written anew.
        let mut r = request(&["SIP / 2.0 / UDP 192.0.2.1 ;branch=z9hG4bK4;rport"]);
        stamp_via(&mut r, source).unwrap();
        assert_eq!(vias(&r), ["SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK4;rport=40001;received=198.51.100.9"]);
        let mut r = request(&["SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK5;received=10.0.0.1;rport"]);
        stamp_via(&mut r, source).unwrap();
        assert_eq!(vias(&r), ["SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK5;received=198.51.100.9;rport=40001"]);
    }

    #[test]
    fn ipv6_and_v4_mapped_sources() {
        let mut r = request(&["SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;rport"]);
        stamp_via(&mut r, "[2001:db8::2]:5062".parse().unwrap()).unwrap();
        assert_eq!(vias(&r), ["SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1;rport=5062;received=2001:db8::2"]);
        // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
        let mut r = request(&["SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1"]);
        stamp_via(&mut r, "[::ffff:192.0.2.1]:5060".parse().unwrap()).unwrap();
        assert_eq!(vias(&r), ["SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1"]);
    }
}
