//! One Via value: `SIP/2.0/UDP host:port;branch=...;rport;received=...`.
use super::params::scan_header_params;
use super::syntax::{is_token_byte, take_until, trim_start_ws, trim_ws};
use super::uri::{parse_host, RawHost};
use super::{HeaderError, Host, Params};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Upper-cased transport token: UDP, TCP, TLS, SCTP, WS, or an extension.
    pub transport: String,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn branch(&self) -> Option<&str> {
        self.params.value("branch")
    }
}

impl Via {
    /// Parses one via-parm; RFC 3261 allows whitespace around the `/` of the sent-protocol, around
    /// the `:` before the port and around `;` and `=` (RFC 4475 wsinv).
    pub fn parse(value: &str) -> Result<Self, HeaderError> {
        let raw = RawVia::scan(value)?;
        Ok(Via {
            transport: raw.transport.to_ascii_uppercase(),
            host: raw.host.to_host(),
            port: raw.port,
            params: Params::parse_header_params(raw.params).map_err(bad)?,
        })
    }
}

fn bad(why: &str) -> HeaderError {
    HeaderError::malformed("Via", why)
}

/// A checked via-parm still pointing into its text (see `RawUri`): what transaction matching
/// and response routing read from a top Via, without building a `Via` for each look.
pub(crate) struct RawVia<'a> {
    pub(crate) transport: &'a str,
    pub(crate) host: RawHost<'a>,
    pub(crate) port: Option<u16>,
    params: &'a str,
}

impl<'a> RawVia<'a> {
    /// The parameters `names`, in one walk: None when absent, Some(None) when without a value.
    pub(crate) fn params<const N: usize>(&self, names: [&str; N]) -> [Option<Option<&'a str>>; N] {
        let mut found = [None; N];
        self.each_param(|n, v| {
            if let Some(i) = names.iter().position(|name| n.eq_ignore_ascii_case(name)) {
                found[i].get_or_insert(v);
            }
        });
        found
    }

    /// Each parameter in order, with its value if it has one.
    pub(crate) fn each_param(&self, each: impl FnMut(&'a str, Option<&'a str>)) {
        // `scan` checked the parameters: this walk meets no error.
        let _ = scan_header_params(self.params, each);
    }

    /// The parameters as they stand in the value, from the first `;`.
    pub(crate) fn params_text(&self) -> &'a str {
        self.params
    }

    pub(crate) fn branch(&self) -> Option<&'a str> {
        let [branch] = self.params(["branch"]);
        branch.flatten()
    }

    pub(crate) fn scan(value: &'a str) -> Result<Self, HeaderError> {
        let s = trim_ws(value);
        let (name, s) = take_until(s, |b| !is_token_byte(b));
        if !name.eq_ignore_ascii_case("SIP") {
            return Err(bad("protocol is not SIP"));
        }
        let s = trim_start_ws(s).strip_prefix('/').ok_or_else(|| bad("malformed sent-protocol"))?;
        let (version, s) = take_until(trim_start_ws(s), |b| !is_token_byte(b));
        let s = trim_start_ws(s).strip_prefix('/').ok_or_else(|| bad("malformed sent-protocol"))?;
        let (transport, s) = take_until(trim_start_ws(s), |b| !is_token_byte(b));
        if version.is_empty() || transport.is_empty() {
            return Err(bad("malformed sent-protocol"));
        }
        let rest = trim_start_ws(s);
        if rest.len() == s.len() {
            return Err(bad("no space before sent-by"));
        }
        let (host, rest) = parse_host(rest).ok_or_else(|| bad("malformed sent-by host"))?;
        let rest = trim_start_ws(rest);
        let (port, params) = match rest.strip_prefix(':') {
            Some(after) => {
                let (digits, rest) = take_until(trim_start_ws(after), |b| !b.is_ascii_digit());
                (Some(digits.parse().map_err(|_| bad("malformed sent-by port"))?), rest)
            }
            None => (None, rest),
        };
        scan_header_params(params, |_, _| {}).map_err(bad)?;
        Ok(RawVia { transport, host, port, params })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_everywhere_rfc4475_wsinv() {
        let v = Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8").unwrap();
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.host, Host::Domain("spindle.example.com".into()));
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(v.to_string(), "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8");
    }

    #[test]
    fn ipv6_port_rport() {
        let v = Via::parse("SIP/2.0/udp [2001:db8::9]:5070;branch=z9hG4bK1;rport;received=2001:db8::1").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, Host::V6("2001:db8::9".parse().unwrap()));
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.params.get("rport"), Some(None));
        assert_eq!(Via::parse(&v.to_string()).unwrap(), v);
    }

    #[test]
    fn rejects_broken_vias() {
        for bad in [
            "",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP 192.0.2.15;;",
            "SIP/2.0UDP host",
            "HTTP/1.1/TCP host",
            "SIP/2.0/UDP host:x",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
    }
}
