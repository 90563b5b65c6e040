//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), IPv6 references included.
use super::syntax::{is_escaped_text, is_unreserved, take_until, unescape, write_escaped};
use super::{HeaderError, Params};
use std::fmt::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Domain(String),
    V4(Ipv4Addr),
    /// Written as `[addr]` on the wire.
    V6(Ipv6Addr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    pub secure: bool,
    /// The user part with escapes decoded (`;` is legal in it, RFC 4475 semiuri).
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
    /// `?name=value&...` URI headers, undecoded.
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelUri {
    pub number: String,
    pub params: Params,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    Tel(TelUri),
    /// Any other absolute URI (RFC 3261 allows them in Request-URI and To/From), kept verbatim.
    Other(String),
}

/// `user-unreserved` and `unreserved`: what a user part may carry unescaped (`;` included).
fn is_user_byte(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}

/// A user part as a URI carries it: anything outside the user characters escaped, so text
/// decoded from one URI (`%0D%0A`, `>`, `@`) cannot end a header or the URI when written into
/// another.
pub fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    // Writing into a String cannot fail.
    let _ = write_escaped(&mut out, user, is_user_byte);
    out
}

fn is_password_byte(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'&' | b'=' | b'+' | b'$' | b',')
}

fn is_param_byte(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}

fn is_header_byte(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

/// What an absolute URI of an unknown scheme may hold: visible ASCII except the delimiters that
/// would end it in a header.
fn is_opaque_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"')
}

fn is_tel_byte(b: u8) -> bool {
    b.is_ascii_hexdigit() || matches!(b, b'+' | b'*' | b'#' | b'-' | b'.' | b'(' | b')' | b'p' | b'P' | b'w' | b'W')
}

fn bad(why: &str) -> HeaderError {
    HeaderError::malformed("URI", why)
}

impl Uri {
    /// Parses an absolute URI as it appears in a Request-URI or between `<` and `>`.
    pub fn parse(value: &str) -> Result<Self, HeaderError> {
        RawUri::scan(value)?.to_uri()
    }

    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// The socket address a SIP URI names, when its host is an IP (no DNS at the branch); the
    /// port defaults to 5060.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let sip = self.as_sip()?;
        Some(SocketAddr::new(sip.host.ip()?, sip.port.unwrap_or(5060)))
    }
}

impl Host {
    /// The address, when the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::V4(a) => Some((*a).into()),
            Host::V6(a) => Some((*a).into()),
            Host::Domain(_) => None,
        }
    }
}

/// A checked URI still pointing into the text it came from: the wire layer validates every
/// address of a message with it and allocates nothing.
pub(crate) enum RawUri<'a> {
    Sip(RawSipUri<'a>),
    /// The number and the raw `;params`.
    Tel(&'a str, &'a str),
    Other(&'a str),
}

pub(crate) struct RawSipUri<'a> {
    secure: bool,
    /// Still escaped.
    user: Option<&'a str>,
    password: Option<&'a str>,
    host: RawHost<'a>,
    port: Option<u16>,
    /// `;name=value...`, checked, still escaped.
    params: &'a str,
    /// What follows `?`, checked.
    headers: Option<&'a str>,
}

#[derive(Clone, Copy)]
pub(crate) enum RawHost<'a> {
    Domain(&'a str),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl RawHost<'_> {
    pub(crate) fn to_host(self) -> Host {
        match self {
            RawHost::Domain(d) => Host::Domain(d.to_string()),
            RawHost::V4(a) => Host::V4(a),
            RawHost::V6(a) => Host::V6(a),
        }
    }
}

impl<'a> RawUri<'a> {
    pub(crate) fn scan(value: &'a str) -> Result<Self, HeaderError> {
        let (scheme, rest) = value.split_once(':').ok_or_else(|| bad("no scheme"))?;
        let scheme_ok = scheme.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(bad("malformed scheme"));
        }
        if scheme.eq_ignore_ascii_case("sip") {
            RawSipUri::scan(rest, false).map(RawUri::Sip)
        } else if scheme.eq_ignore_ascii_case("sips") {
            RawSipUri::scan(rest, true).map(RawUri::Sip)
        } else if scheme.eq_ignore_ascii_case("tel") {
            scan_tel(rest)
        } else if !rest.is_empty() && rest.bytes().all(is_opaque_byte) {
            Ok(RawUri::Other(value))
        } else {
            Err(bad("malformed URI"))
        }
    }

    pub(crate) fn to_uri(&self) -> Result<Uri, HeaderError> {
        Ok(match self {
            RawUri::Sip(u) => Uri::Sip(u.to_sip_uri()?),
            RawUri::Tel(number, params) => Uri::Tel(TelUri {
                number: number.to_string(),
                params: Params(tel_params(params).map(|(n, v)| (n.to_string(), v.map(str::to_string))).collect()),
            }),
            RawUri::Other(s) => Uri::Other(s.to_string()),
        })
    }
}

/// The `name[=value]` pieces of a URI's raw `;params`.
fn uri_params(raw: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    raw.split(';').skip(1).map(|param| match param.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (param, None),
    })
}

fn tel_params(raw: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    uri_params(raw)
}

impl<'a> RawSipUri<'a> {
    /// Checks what follows `sip:` / `sips:`.
    fn scan(rest: &'a str, secure: bool) -> Result<Self, HeaderError> {
        // userinfo cannot hold an unescaped `@` and nothing after the host may either, so the
        // first `@` ends the user part even when the user part holds `;` or `?` (RFC 4475 semiuri).
        let (user, password, hostpart) = match rest.split_once('@') {
            None => (None, None, rest),
            Some((userinfo, hostpart)) => {
                let (user, password) = match userinfo.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (userinfo, None),
                };
                if user.is_empty() || !is_escaped_text(user, is_user_byte) {
                    return Err(bad("bad character in user part"));
                }
                if password.is_some_and(|p| !is_escaped_text(p, is_password_byte)) {
                    return Err(bad("bad character in password"));
                }
                (Some(user), password, hostpart)
            }
        };
        let (host, port, rest) = parse_hostport(hostpart).ok_or_else(|| bad("malformed host"))?;
        let (params, rest) = take_until(rest, |b| b == b'?');
        if !params.is_empty() && !params.starts_with(';') {
            return Err(bad("unexpected text after host"));
        }
        for (name, value) in uri_params(params) {
            if name.is_empty()
                || !is_escaped_text(name, is_param_byte)
                || !value.is_none_or(|v| is_escaped_text(v, is_param_byte))
            {
                return Err(bad("malformed URI parameter"));
            }
        }
        let headers = rest.strip_prefix('?');
        for pair in headers.into_iter().flat_map(|h| h.split('&')) {
            let (name, value) = pair.split_once('=').ok_or_else(|| bad("URI header without '='"))?;
            if name.is_empty() || !is_escaped_text(name, is_header_byte) || !is_escaped_text(value, is_header_byte) {
                return Err(bad("malformed URI header"));
            }
        }
        Ok(RawSipUri { secure, user, password, host, port, params, headers })
    }

    fn to_sip_uri(&self) -> Result<SipUri, HeaderError> {
        let decode = |s: &str, allowed| unescape(s, allowed).ok_or_else(|| bad("bad escape"));
        let mut params = Vec::new();
        for (name, value) in uri_params(self.params) {
            params.push((decode(name, is_param_byte)?, value.map(|v| decode(v, is_param_byte)).transpose()?));
        }
        Ok(SipUri {
            secure: self.secure,
            user: self.user.map(|u| decode(u, is_user_byte)).transpose()?,
            password: self.password.map(|p| decode(p, is_password_byte)).transpose()?,
            host: self.host.to_host(),
            port: self.port,
            params: Params(params),
            headers: self
                .headers
                .into_iter()
                .flat_map(|h| h.split('&'))
                .filter_map(|pair| pair.split_once('='))
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        })
    }
}

fn scan_tel(rest: &str) -> Result<RawUri<'_>, HeaderError> {
    let (number, params) = take_until(rest, |b| b == b';');
    if number.is_empty() || !number.bytes().all(is_tel_byte) {
        return Err(bad("malformed telephone number"));
    }
    for (name, value) in tel_params(params) {
        if name.is_empty()
            || !is_escaped_text(name, is_param_byte)
            || !value.is_none_or(|v| is_escaped_text(v, is_param_byte))
        {
            return Err(bad("malformed tel URI parameter"));
        }
    }
    Ok(RawUri::Tel(number, params))
}

/// Parses `host [":" port]` at the start of `s`; returns what follows it.
fn parse_hostport(s: &str) -> Option<(RawHost<'_>, Option<u16>, &str)> {
    let (host, rest) = parse_host(s)?;
    match rest.strip_prefix(':') {
        Some(after) => {
            let (digits, rest) = take_until(after, |b| !b.is_ascii_digit());
            Some((host, Some(digits.parse().ok()?), rest))
        }
        None => Some((host, None, rest)),
    }
}

/// Parses the host at the start of `s`: `[v6]`, dotted IPv4, or a hostname.
pub(crate) fn parse_host(s: &str) -> Option<(RawHost<'_>, &str)> {
    if let Some(after) = s.strip_prefix('[') {
        let (addr, rest) = after.split_once(']')?;
        return Some((RawHost::V6(addr.parse().ok()?), rest));
    }
    let (name, rest) = take_until(s, |b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')));
    if name.is_empty() || name.starts_with(['.', '-']) || name.contains("..") {
        return None;
    }
    if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Some((RawHost::V4(name.parse().ok()?), rest));
    }
    Some((RawHost::Domain(name), rest))
}

/// A dotted quad written by hand into a stack buffer: std's Display for Ipv4Addr goes through the
/// formatting machinery octet by octet, and a REGISTER writes addresses several times (received=,
/// Via, the binding's source): it showed at 2% of the registrar's CPU.
struct DottedQuad {
    buf: [u8; 15],
    len: usize,
}

impl DottedQuad {
    fn new(ip: Ipv4Addr) -> DottedQuad {
        let mut d = DottedQuad { buf: [0; 15], len: 0 };
        for (i, octet) in ip.octets().into_iter().enumerate() {
            if i > 0 {
                d.push(b'.');
            }
            if octet >= 100 {
                d.push(b'0' + octet / 100);
            }
            if octet >= 10 {
                d.push(b'0' + octet / 10 % 10);
            }
            d.push(b'0' + octet % 10);
        }
        d
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

/// An IP address as text (IPv6 without brackets), the fast way for IPv4.
pub fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => DottedQuad::new(a).as_str().to_string(),
        IpAddr::V6(a) => a.to_string(),
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::V4(a) => f.write_str(DottedQuad::new(*a).as_str()),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            write_escaped(f, user, is_user_byte)?;
            if let Some(password) = &self.password {
                f.write_char(':')?;
                write_escaped(f, password, is_password_byte)?;
            }
            f.write_char('@')?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        for (name, value) in &self.params.0 {
            f.write_char(';')?;
            write_escaped(f, name, is_param_byte)?;
            if let Some(v) = value {
                f.write_char('=')?;
                write_escaped(f, v, is_param_byte)?;
            }
        }
        for (i, (name, value)) in self.headers.iter().enumerate() {
            f.write_char(if i == 0 { '?' } else { '&' })?;
            write!(f, "{name}={value}")?;
        }
        Ok(())
    }
}

impl fmt::Display for TelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tel:{}{}", self.number, self.params)
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(u) => u.fmt(f),
            Uri::Other(s) => f.write_str(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_quads_are_written_as_std_writes_them() {
        for ip in ["0.0.0.0", "255.255.255.255", "10.0.9.100", "192.168.1.1", "1.20.200.9"] {
            let a: Ipv4Addr = ip.parse().unwrap();
            assert_eq!(Host::V4(a).to_string(), ip);
            assert_eq!(ip_text(IpAddr::V4(a)), ip);
        }
        assert_eq!(ip_text("2001:db8::1".parse().unwrap()), "2001:db8::1");
    }

    fn sip(s: &str) -> SipUri {
        match Uri::parse(s).unwrap() {
            Uri::Sip(u) => u,
            other => panic!("not a SIP URI: {other:?}"),
        }
    }

    #[test]
    fn escaped_user_and_params_are_decoded() {
        let u = sip("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
        assert_eq!(u.user.as_deref(), Some("caller"));
        assert!(u.params.contains("lr"));
        assert_eq!(u.params.value("name"), Some("value%41"));
        assert_eq!(u.to_string(), "sip:caller@host5.example.net;lr;name=value%2541");
    }

    #[test]
    fn semicolon_in_user_part() {
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user.as_deref(), Some("user;par=u@example.net"));
        assert_eq!(u.host, Host::Domain("example.com".into()));
        assert!(u.params.0.is_empty());
        assert_eq!(Uri::parse(&u.to_string()).unwrap(), Uri::Sip(u));
    }

    #[test]
    fn hosts_ports_and_headers() {
        let u = sip("sips:alice:secret@[2001:db8::1]:5061;transport=tcp?Route=%3Csip:x%3E&Subject=hi");
        assert!(u.secure);
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(u.host, Host::V6("2001:db8::1".parse().unwrap()));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.headers, vec![("Route".into(), "%3Csip:x%3E".into()), ("Subject".into(), "hi".into())]);
        assert_eq!(u.to_string(), "sips:alice:secret@[2001:db8::1]:5061;transport=tcp?Route=%3Csip:x%3E&Subject=hi");
        assert_eq!(sip("sip:192.0.2.1:5060").host, Host::V4("192.0.2.1".parse().unwrap()));
        for bad in
            ["sip:", "sip:@host", "sip:host:99999", "sip:host;;x", "sip:[::1", "sip:a b", "sip:999.1.1.1", "<sip:x>"]
        {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escapes_that_are_not_utf8_survive_display() {
        // Found by the fuzzer: %be alone is no UTF-8; it decodes to U+FFFD, written escaped.
        let u = sip("sip:to-%be!sure@example.com");
        assert_eq!(u.user.as_deref(), Some("to-\u{fffd}!sure"));
        assert_eq!(u.to_string(), "sip:to-%EF%BF%BD!sure@example.com");
        assert_eq!(Uri::parse(&u.to_string()).unwrap(), Uri::Sip(u));
    }

    #[test]
    fn tel_and_other_schemes() {
        let t = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap();
        let Uri::Tel(tel) = &t else { panic!("{t:?}") };
        assert_eq!(tel.number, "+1-201-555-0123");
        assert_eq!(tel.params.value("phone-context"), Some("example.com"));
        assert_eq!(t.to_string(), "tel:+1-201-555-0123;phone-context=example.com");
        assert_eq!(
            Uri::parse("soap.beep://192.0.2.103:3002").unwrap(),
            Uri::Other("soap.beep://192.0.2.103:3002".into())
        );
        assert!(Uri::parse("1abc:x").is_err());
    }
}
