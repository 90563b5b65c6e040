//! Digest header values (`WWW-Authenticate`, `Authorization`, `Proxy-Authenticate`,
//! `Proxy-Authorization`): `Digest k=v, k="quoted, with commas"` in and out.
use super::digest::{Algorithm, Qop};
use super::error::AuthError;
use std::borrow::Cow;

/// The parameters of one `Digest` header value, unquoted, pointing into the header's text (a
/// value is copied only when it holds escapes): a REGISTER's credentials are parsed without a
/// dozen small allocations. Names compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DigestParams<'a> {
    params: Vec<(&'a str, Cow<'a, str>)>,
}

impl DigestParams<'_> {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

/// Parses `Digest` followed by a comma-separated list of auth-params (RFC 7235 §2.1).
pub fn parse_digest(value: &str) -> Result<DigestParams<'_>, AuthError> {
    let value = value.trim_start();
    let scheme_end = value.find([' ', '\t']).unwrap_or(value.len());
    if !value[..scheme_end].eq_ignore_ascii_case("Digest") {
        return Err(AuthError::Malformed("scheme is not Digest"));
    }
    let mut cursor = Cursor {
        rest: &value[scheme_end..],
    };
    let mut out = DigestParams::default();
    loop {
        cursor.skip_list_separators();
        if cursor.rest.is_empty() {
            break;
        }
        let name = cursor
            .name()
            .ok_or(AuthError::Malformed("parameter name"))?;
        cursor.skip_ws();
        if !cursor.eat('=') {
            return Err(AuthError::Malformed("parameter without '='"));
        }
        cursor.skip_ws();
        let val = if cursor.rest.starts_with('"') {
            cursor.quoted()?
        } else {
            Cow::Borrowed(cursor.value().ok_or(AuthError::Malformed("parameter value"))?)
        };
        if out.get(name).is_some() {
            return Err(AuthError::Malformed("duplicate parameter"));
        }
        out.params.push((name, val));
        cursor.skip_ws();
        if !cursor.rest.is_empty() && !cursor.rest.starts_with(',') {
            return Err(AuthError::Malformed("garbage after parameter"));
        }
    }
    if out.params.is_empty() {
        return Err(AuthError::Malformed("no parameters"));
    }
    Ok(out)
}

struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t', '\r', '\n']);
    }

    fn skip_list_separators(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t', '\r', '\n', ',']);
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// A parameter name: an RFC 7230 token.
    fn name(&mut self) -> Option<&'a str> {
        self.take_while(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
    }

    /// An unquoted value: a token, widened because nonces in the wild also carry `/`, `=`, `:`
    /// and `@` unquoted.
    fn value(&mut self) -> Option<&'a str> {
        self.take_while(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~/:=@".contains(c))
    }

    fn take_while(&mut self, accept: impl Fn(char) -> bool) -> Option<&'a str> {
        let end = self
            .rest
            .find(|c: char| !accept(c))
            .unwrap_or(self.rest.len());
        (end > 0).then(|| {
            let (tok, rest) = self.rest.split_at(end);
            self.rest = rest;
            tok
        })
    }

    /// A quoted string, unescaped; borrowed when it holds no escape.
    fn quoted(&mut self) -> Result<Cow<'a, str>, AuthError> {
        let body = &self.rest[1..];
        let end = body.find(['"', '\\']).ok_or(AuthError::Malformed("unterminated quoted string"))?;
        if body.as_bytes()[end] == b'"' {
            self.rest = &body[end + 1..];
            return Ok(Cow::Borrowed(&body[..end]));
        }
        let mut out = String::from(&body[..end]);
        let mut chars = body[end..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &body[end + i + 1..];
                    return Ok(Cow::Owned(out));
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) => out.push(escaped),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(AuthError::Malformed("unterminated quoted string"))
    }
}

/// A parsed `WWW-Authenticate`/`Proxy-Authenticate` digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    pub sess: bool,
    /// Whether `qop` offered `auth`; `None` when the challenge had no qop (RFC 2069 server).
    pub qop: Option<Qop>,
    pub stale: bool,
}

impl Challenge {
    pub fn parse(value: &str) -> Result<Challenge, AuthError> {
        let p = parse_digest(value)?;
        let (algorithm, sess) = algorithm_of(&p)?;
        let qop = match p.get("qop") {
            None => None,
            Some(list) => Some(
                list.split(',')
                    .map(str::trim)
                    .any(|q| q.eq_ignore_ascii_case("auth"))
                    .then_some(Qop::Auth)
                    .ok_or(AuthError::UnsupportedQop)?,
            ),
        };
        Ok(Challenge {
            realm: required(&p, "realm")?.to_owned(),
            nonce: required(&p, "nonce")?.to_owned(),
            opaque: p.get("opaque").map(str::to_owned),
            algorithm,
            sess,
            qop,
            stale: p
                .get("stale")
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The header value, `Digest realm="...", ...`.
    pub fn to_header_value(&self) -> String {
        let mut out = String::with_capacity(160);
        out.push_str("Digest ");
        push_quoted(&mut out, "realm", &self.realm);
        push_quoted(&mut out, "nonce", &self.nonce);
        if let Some(opaque) = &self.opaque {
            push_quoted(&mut out, "opaque", opaque);
        }
        push_token(&mut out, "algorithm", self.algorithm.name());
        if self.sess {
            out.push_str("-sess");
        }
        if let Some(qop) = self.qop {
            push_quoted(&mut out, "qop", qop.token());
        }
        if self.stale {
            push_token(&mut out, "stale", "true");
        }
        out
    }
}

/// A parsed `Authorization`/`Proxy-Authorization` digest response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    pub sess: bool,
    pub cnonce: Option<String>,
    pub nc: Option<u32>,
    pub qop: Option<Qop>,
    pub opaque: Option<String>,
}

impl Credentials {
    pub fn parse(value: &str) -> Result<Credentials, AuthError> {
        let p = parse_digest(value)?;
        if p.get("userhash")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(AuthError::Malformed("userhash is not supported"));
        }
        let (algorithm, sess) = algorithm_of(&p)?;
        let qop = match p.get("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => Some(Qop::Auth),
            Some(_) => return Err(AuthError::UnsupportedQop),
        };
        let nc = match p.get("nc") {
            None => None,
            Some(nc) if nc.len() == 8 => Some(
                u32::from_str_radix(nc, 16).map_err(|_| AuthError::Malformed("nc is not hex"))?,
            ),
            Some(_) => return Err(AuthError::Malformed("nc is not 8 hex digits")),
        };
        Ok(Credentials {
            username: required(&p, "username")?.to_owned(),
            realm: required(&p, "realm")?.to_owned(),
            nonce: required(&p, "nonce")?.to_owned(),
            uri: required(&p, "uri")?.to_owned(),
            response: required(&p, "response")?.to_owned(),
            algorithm,
            sess,
            cnonce: p.get("cnonce").map(str::to_owned),
            nc,
            qop,
            opaque: p.get("opaque").map(str::to_owned),
        })
    }

    /// The header value, `Digest username="...", ...`.
    pub fn to_header_value(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("Digest ");
        push_quoted(&mut out, "username", &self.username);
        push_quoted(&mut out, "realm", &self.realm);
        push_quoted(&mut out, "nonce", &self.nonce);
        push_quoted(&mut out, "uri", &self.uri);
        push_quoted(&mut out, "response", &self.response);
        push_token(&mut out, "algorithm", self.algorithm.name());
        if self.sess {
            out.push_str("-sess");
        }
        if let Some(cnonce) = &self.cnonce {
            push_quoted(&mut out, "cnonce", cnonce);
        }
        if let Some(opaque) = &self.opaque {
            push_quoted(&mut out, "opaque", opaque);
        }
        if let Some(qop) = self.qop {
            push_token(&mut out, "qop", qop.token());
        }
        if let Some(nc) = self.nc {
            push_token(&mut out, "nc", &format!("{nc:08x}"));
        }
        out
    }
}

fn algorithm_of(p: &DigestParams) -> Result<(Algorithm, bool), AuthError> {
    match p.get("algorithm") {
        // RFC 7616 §3.3: absent means MD5.
        None => Ok((Algorithm::Md5, false)),
        Some(a) => Algorithm::parse(a).ok_or_else(|| AuthError::UnsupportedAlgorithm(a.to_owned())),
    }
}

fn required<'p>(p: &'p DigestParams, name: &'static str) -> Result<&'p str, AuthError> {
    p.get(name).ok_or(AuthError::Malformed(name))
}

fn separator(out: &mut String) {
    if !out.ends_with(' ') {
        out.push_str(", ");
    }
}

fn push_quoted(out: &mut String, name: &str, value: &str) {
    separator(out);
    out.push_str(name);
    out.push_str("=\"");
    let mut rest = value;
    // Whole runs between the characters that need a backslash, not a push per character.
    while let Some(at) = rest.find(['"', '\\']) {
        out.push_str(&rest[..at]);
        out.push('\\');
        out.push_str(&rest[at..at + 1]);
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

fn push_token(out: &mut String, name: &str, value: &str) {
    separator(out);
    out.push_str(name);
    out.push('=');
    out.push_str(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_values_with_commas_and_escapes() {
        let p = parse_digest(
            r#"Digest realm="a, b", nonce=abc/+=, opaque="x\"y\\z" ,qop="auth,auth-int",,algorithm=MD5"#,
        )
        .unwrap();
        assert_eq!(p.get("realm"), Some("a, b"));
        assert_eq!(p.get("nonce"), Some("abc/+="));
        assert_eq!(p.get("opaque"), Some(r#"x"y\z"#));
        assert_eq!(p.get("QOP"), Some("auth,auth-int"));
        assert_eq!(p.get("algorithm"), Some("MD5"));
    }

    #[test]
    fn scheme_and_names_are_case_insensitive_with_spaces_around_equals() {
        let p = parse_digest("digest Realm = \"r\" , NONCE= n").unwrap();
        assert_eq!(p.get("realm"), Some("r"));
        assert_eq!(p.get("nonce"), Some("n"));
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "Basic realm=\"x\"",
            "Digest",
            "Digest realm",
            "Digest realm=\"unterminated",
            "Digest realm=\"x\" nonce=\"y\"",
            "Digest realm=a, realm=b",
            "Digest =x",
            "Digest realm=\"x\\",
        ] {
            assert!(parse_digest(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn challenge_round_trips() {
        let c = Challenge {
            realm: "branch \"1\"".into(),
            nonce: "n1".into(),
            opaque: Some("o".into()),
            algorithm: Algorithm::Sha256,
            sess: false,
            qop: Some(Qop::Auth),
            stale: true,
        };
        let v = c.to_header_value();
        assert!(
            v.starts_with("Digest realm=\"branch \\\"1\\\"\", nonce=\"n1\""),
            "{v}"
        );
        assert_eq!(Challenge::parse(&v).unwrap(), c);
    }

    #[test]
    fn credentials_round_trip() {
        let c = Credentials {
            username: "alice".into(),
            realm: "example.org".into(),
            nonce: "n".into(),
            uri: "sip:example.org".into(),
            response: "0123".into(),
            algorithm: Algorithm::Md5,
            sess: true,
            cnonce: Some("c, n".into()),
            nc: Some(0x1f),
            qop: Some(Qop::Auth),
            opaque: None,
        };
        let v = c.to_header_value();
        assert!(v.contains("nc=0000001f"), "{v}");
        assert_eq!(Credentials::parse(&v).unwrap(), c);
    }

    #[test]
    fn challenge_without_algorithm_is_md5_and_auth_int_only_is_refused() {
        let c = Challenge::parse("Digest realm=\"r\", nonce=\"n\"").unwrap();
        assert_eq!((c.algorithm, c.sess, c.qop), (Algorithm::Md5, false, None));
        assert_eq!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""),
            Err(AuthError::UnsupportedQop)
        );
    }

    #[test]
    fn credentials_nc_must_be_eight_hex_digits() {
        let base =
            "Digest username=u, realm=r, nonce=n, uri=\"sip:x\", response=r, qop=auth, cnonce=c";
        assert!(Credentials::parse(&format!("{base}, nc=00000001")).is_ok());
        assert!(Credentials::parse(&format!("{base}, nc=1")).is_err());
        assert!(Credentials::parse(&format!("{base}, nc=0000000g")).is_err());
    }
}
