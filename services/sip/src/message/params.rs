//! `;name=value` parameter lists of URIs and header values. Names compare case-insensitively.
use super::syntax::{is_token_byte, is_ws, quoted_len, take_until, trim_start_ws};
use std::fmt::{self, Write};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_deref())
    }

    /// The value of `name`, if present with a value.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).flatten()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn set(&mut self, name: &str, value: Option<String>) {
        match self.0.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

impl Params {
    /// Parses header parameters, `*( SEMI generic-param )` with the optional whitespace RFC 3261
    /// allows around `;` and `=`. A quoted-string value keeps its quotes, so writing it back is
    /// lossless and `+sip.instance="<urn:...>"` compares as sent.
    pub(crate) fn parse_header_params(s: &str) -> Result<Params, &'static str> {
        let mut params = Vec::new();
        scan_header_params(s, |name, value| params.push((name.to_string(), value.map(str::to_string))))?;
        Ok(Params(params))
    }
}

/// Checks header parameters without allocating, handing each name and raw value to `each`.
pub(crate) fn scan_header_params<'a>(
    mut s: &'a str,
    mut each: impl FnMut(&'a str, Option<&'a str>),
) -> Result<(), &'static str> {
    loop {
        s = trim_start_ws(s);
        if s.is_empty() {
            return Ok(());
        }
        s = s.strip_prefix(';').ok_or("unexpected text before a parameter")?;
        s = trim_start_ws(s);
        let (name, rest) = take_until(s, |b| !is_token_byte(b));
        if name.is_empty() {
            return Err("empty parameter");
        }
        s = trim_start_ws(rest);
        let value = match s.strip_prefix('=') {
            None => None,
            Some(rest) => {
                let rest = trim_start_ws(rest);
                let len = if rest.starts_with('"') {
                    quoted_len(rest.as_bytes()).ok_or("unbalanced quote in a parameter")?
                } else {
                    let len = rest.bytes().position(|b| is_ws(b) || b == b';').unwrap_or(rest.len());
                    if len == 0 || !rest.bytes().take(len).all(is_gen_value_byte) {
                        return Err("malformed parameter value");
                    }
                    len
                };
                s = &rest[len..];
                Some(&rest[..len])
            }
        };
        each(name, value);
    }
}

/// `gen-value = token / host / quoted-string`: the unquoted forms are token or host characters.
fn is_gen_value_byte(b: u8) -> bool {
    is_token_byte(b) || matches!(b, b':' | b'[' | b']')
}

/// Writes header parameters as `;name=value` (values are written as stored).
impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.0 {
            f.write_char(';')?;
            f.write_str(name)?;
            if let Some(v) = value {
                f.write_char('=')?;
                f.write_str(v)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_params_allow_whitespace_and_quotes() {
        let p = Params::parse_header_params(" ;   tag    = 1918181833n ; lr;q = 0.33;x=\"a;b\"").unwrap();
        assert_eq!(p.value("tag"), Some("1918181833n"));
        assert!(p.contains("LR"));
        assert_eq!(p.value("q"), Some("0.33"));
        assert_eq!(p.value("x"), Some("\"a;b\""));
        assert_eq!(p.to_string(), ";tag=1918181833n;lr;q=0.33;x=\"a;b\"");
        assert!(Params::parse_header_params(";;").is_err());
        assert!(Params::parse_header_params(";a=").is_err());
        assert!(Params::parse_header_params(" junk").is_err());
        assert_eq!(
            Params::parse_header_params(";received=2001:db8::1").unwrap().value("received"),
            Some("2001:db8::1")
        );
    }
}
