//! `name-addr / addr-spec` with header parameters: From, To, Contact, Route, Record-Route, Path.
use super::params::scan_header_params;
use super::syntax::{is_token_byte, is_ws, quoted_len, take_until, trim_start_ws, trim_ws, unquote, write_quoted};
use super::uri::RawUri;
use super::{HeaderError, Params, Uri};
use std::fmt::{self, Write};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name without quotes, unescaped.
    pub display: Option<String>,
    pub uri: Uri,
    /// Header parameters (after `>`; for an addr-spec without `<>` every `;param` is a header param).
    pub params: Params,
}

impl NameAddr {
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }
}

impl NameAddr {
    /// Parses `[display-name] <URI> *(;param)` or a bare `URI *(;param)`. The header name in
    /// errors is "address": the caller knows which header it parsed.
    pub fn parse(value: &str) -> Result<Self, HeaderError> {
        let raw = RawNameAddr::scan(value)?;
        let display = match raw.display {
            None => None,
            Some(RawDisplay::Quoted(q)) => Some(unquote(q).ok_or_else(|| bad("unbalanced quote in display name"))?.0),
            Some(RawDisplay::Words(w)) => {
                Some(w.split([' ', '\t']).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" "))
            }
        };
        let uri = raw.uri.to_uri()?;
        let params = Params::parse_header_params(raw.params).map_err(bad)?;
        Ok(NameAddr { display, uri, params })
    }
}

impl NameAddr {
    /// The tag parameter of the address `value`, as `parse(value)?.tag()` reads it, without
    /// copying the URI and parameters out: dialog matching reads the From and To tags of every
    /// in-dialog request. `scan` is what can fail in `parse` (what it lets through unquotes and
    /// unescapes), so the same values are refused.
    pub fn tag_of(value: &str) -> Result<Option<&str>, HeaderError> {
        let raw = RawNameAddr::scan(value)?;
        let mut tag = None;
        scan_header_params(raw.params, |name, value| {
            if tag.is_none() && name.eq_ignore_ascii_case("tag") {
                tag = Some(value);
            }
        })
        .map_err(bad)?;
        Ok(tag.flatten())
    }
}

fn bad(why: &str) -> HeaderError {
    HeaderError::malformed("address", why)
}

/// A checked address still pointing into its text (see `RawUri`).
pub(crate) struct RawNameAddr<'a> {
    display: Option<RawDisplay<'a>>,
    uri: RawUri<'a>,
    /// The header parameters, checked.
    params: &'a str,
}

enum RawDisplay<'a> {
    /// With its quotes and escapes.
    Quoted(&'a str),
    /// `*(token LWS)`, trimmed.
    Words(&'a str),
}

impl<'a> RawNameAddr<'a> {
    pub(crate) fn scan(value: &'a str) -> Result<Self, HeaderError> {
        let s = trim_ws(value);
        let (display, s) = if s.starts_with('"') {
            let len = quoted_len(s.as_bytes()).ok_or_else(|| bad("unbalanced quote in display name"))?;
            let rest = trim_start_ws(&s[len..]);
            if !rest.starts_with('<') {
                return Err(bad("quoted display name without <URI>"));
            }
            (Some(RawDisplay::Quoted(&s[..len])), rest)
        } else if let Some(lt) = s.find('<') {
            let words = trim_ws(&s[..lt]);
            // An unquoted display name is `*(token LWS)`: a comma or quote in it (RFC 4475 baddn)
            // needs quoting. UTF-8 is let through unquoted: phones send it and it is unambiguous.
            if !words.bytes().all(|b| is_token_byte(b) || is_ws(b) || b >= 0x80) {
                return Err(bad("display name must be quoted"));
            }
            ((!words.is_empty()).then_some(RawDisplay::Words(words)), &s[lt..])
        } else {
            // addr-spec: RFC 3261 §20.10 says a URI holding `,` `;` or `?` must be in <>, so the
            // first `;` starts the header parameters.
            let (uri, params) = take_until(s, |b| b == b';' || is_ws(b));
            if uri.contains([',', '?']) {
                return Err(bad("URI with ',' or '?' must be enclosed in <>"));
            }
            let uri = RawUri::scan(uri)?;
            scan_header_params(params, |_, _| {}).map_err(bad)?;
            return Ok(RawNameAddr { display: None, uri, params });
        };
        let inner = s.strip_prefix('<').ok_or_else(|| bad("expected <"))?;
        let (uri, params) = inner.split_once('>').ok_or_else(|| bad("unclosed <"))?;
        if uri.starts_with([' ', '\t']) || uri.ends_with([' ', '\t']) {
            return Err(bad("whitespace inside <>"));
        }
        let uri = RawUri::scan(uri)?;
        scan_header_params(params, |_, _| {}).map_err(bad)?;
        Ok(RawNameAddr { display, uri, params })
    }
}

/// Writes `"display" <uri>;params`; the URI is always enclosed in `<>`, which is never wrong.
impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(display) = &self.display {
            write_quoted(f, display)?;
            f.write_char(' ')?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Host;

    #[test]
    fn quoted_display_and_spread_params() {
        let n = NameAddr::parse(
            "\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =      newvalue ;  secondparam ; q = 0.33",
        )
        .unwrap();
        assert_eq!(n.display.as_deref(), Some("Quoted string \"\""));
        assert_eq!(n.params.value("newparam"), Some("newvalue"));
        assert!(n.params.contains("secondparam"));
        assert_eq!(n.params.value("q"), Some("0.33"));
        assert_eq!(NameAddr::parse(&n.to_string()).unwrap(), n);
    }

    #[test]
    fn addr_spec_params_belong_to_the_header() {
        let n = NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(n.display, None);
        assert_eq!(n.tag(), Some("1918181833n"));
        let Uri::Sip(u) = &n.uri else { panic!() };
        assert_eq!(u.host, Host::Domain("chair-dnrc.example.com".into()));
        assert!(u.params.0.is_empty());
        assert_eq!(n.to_string(), "<sip:vivekg@chair-dnrc.example.com>;tag=1918181833n");
    }

    #[test]
    fn token_display_names() {
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        let n = NameAddr::parse("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>").unwrap();
        assert_eq!(n.display.as_deref(), Some("token1~` token2'+_ token3*%!.-"));
        let n = NameAddr::parse("Jürgen Groß <sip:j@example.com>").unwrap();
        assert_eq!(n.display.as_deref(), Some("Jürgen Groß"));
    }

    #[test]
    fn tag_of_reads_what_parse_reads() {
        for value in [
            "<sip:a@example.com>;tag=1",
            "\"A \\\"B\\\"\" <sip:a@example.com;tag=uri-param>;TAG=2;tag=3",
            "sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n",
            "<sip:a@example.com>;tag",
            "<sip:a@example.com>;x=\"tag=4\"",
            "<sip:%61@example.com>",
            "<sip:%6@example.com>;tag=5",
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "\"Joe\" <sip:joe@example.org>;;;;",
            "<sip:joe@example.org",
            "",
        ] {
            let parsed = NameAddr::parse(value).map(|n| n.tag().map(str::to_owned));
            assert_eq!(NameAddr::tag_of(value).map(|t| t.map(str::to_owned)).ok(), parsed.ok(), "{value}");
        }
        assert_eq!(NameAddr::tag_of("<sip:a@example.com;tag=u>;TAG=2;tag=3").unwrap(), Some("2"));
    }

    #[test]
    fn rejects_rfc4475_invalid_addresses() {
        for bad in [
            "\"Watson, Thomas\" < sip:t.watson@example.org >",
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "\"Mr. J. User <sip:j.user@example.com>",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "\"Joe\" <sip:joe@example.org>;;;;",
            "<sip:joe@example.org",
            "",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
    }
}
