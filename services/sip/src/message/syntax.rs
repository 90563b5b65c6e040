//! Character classes and small scanners of the RFC 3261 §25.1 grammar, shared by the typed
//! header parsers and the wire layer.

/// `token` characters: alphanum and `-.!%*_+`'~` (a table: this runs for every byte of a name).
pub(crate) fn is_token_byte(b: u8) -> bool {
    const TABLE: [bool; 256] = {
        let mut t = [false; 256];
        let mut i = 0;
        while i < 256 {
            let b = i as u8;
            t[i] = b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~');
            i += 1;
        }
        t
    };
    TABLE[usize::from(b)]
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

/// `unreserved`: alphanum and the marks `-_.!~*'()`.
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')')
}

pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) fn trim_ws(s: &str) -> &str {
    let end = s.bytes().rposition(|b| !is_ws(b)).map_or(0, |i| i + 1);
    trim_start_ws(&s[..end])
}

pub(crate) fn trim_start_ws(s: &str) -> &str {
    let start = s.bytes().position(|b| !is_ws(b)).unwrap_or(s.len());
    &s[start..]
}

/// Splits `s` at the first byte for which `stop` holds.
pub(crate) fn take_until(s: &str, stop: impl Fn(u8) -> bool) -> (&str, &str) {
    let at = s.bytes().position(stop).unwrap_or(s.len());
    s.split_at(at)
}

/// The byte length of the quoted string that opens `s` (quotes included), honouring
/// `\`-escapes; None when it is not closed.
pub(crate) fn quoted_len(s: &[u8]) -> Option<usize> {
    if s.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Unescapes the quoted string that opens `s`; returns its content and what follows it.
pub(crate) fn unquote(s: &str) -> Option<(String, &str)> {
    let len = quoted_len(s.as_bytes())?;
    let inner = s.get(1..len - 1)?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(chars.next()?);
        } else {
            out.push(c);
        }
    }
    Some((out, &s[len..]))
}

/// Writes `s` as a quoted string, escaping what `quoted-pair` must carry.
pub(crate) fn write_quoted(f: &mut impl std::fmt::Write, s: &str) -> std::fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        if c == '"' || c == '\\' || (c.is_ascii_control() && c != '\t') {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes, refusing any unescaped byte that `allowed` rejects. Decoded bytes that
/// are not UTF-8 are replaced: the model holds text, and such URIs are vanishingly rare.
pub(crate) fn unescape(s: &str, allowed: fn(u8) -> bool) -> Option<String> {
    let bytes = s.as_bytes();
    if !bytes.contains(&b'%') {
        return bytes.iter().all(|&b| allowed(b)).then(|| s.to_string());
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else if allowed(b) {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    Some(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Checks that `s` is made of `allowed` bytes and well-formed `%XX` escapes.
pub(crate) fn is_escaped_text(s: &str, allowed: fn(u8) -> bool) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.get(i + 1).and_then(|&b| hex_value(b)).is_some()
                && bytes.get(i + 2).and_then(|&b| hex_value(b)).is_some();
            if !ok {
                return false;
            }
            i += 3;
        } else if allowed(bytes[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Writes `s`, escaping every byte that `allowed` rejects (and `%` itself).
pub(crate) fn write_escaped(f: &mut impl std::fmt::Write, s: &str, allowed: fn(u8) -> bool) -> std::fmt::Result {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        if b != b'%' && allowed(b) {
            continue;
        }
        // Escaped bytes of one multi-byte character sit back to back: the run between them is
        // empty and must not be sliced at a non-boundary.
        f.write_str(s.get(start..i).unwrap_or_default())?;
        f.write_char('%')?;
        f.write_char(HEX[usize::from(b >> 4)] as char)?;
        f.write_char(HEX[usize::from(b & 15)] as char)?;
        start = i + 1;
    }
    f.write_str(s.get(start..).unwrap_or_default())
}

/// Any CR or LF, or a NUL other than the quoted-pair `\NUL` inside a quoted string, which RFC
/// 3261 §25.1 allows (RFC 4475's intmeth carries one in a display name).
pub(crate) fn breaks_line(text: &[u8]) -> bool {
    // Every header of every message passes here, parsed and again written: a fold with no early
    // exit is vectorized (a third of an `any` over the three bytes, which cost a call ~2.5% of
    // its instructions). CR, LF and NUL are all below 0x0E; a TAB takes the exact walk below.
    if !text.iter().fold(false, |low, &b| low | (b < 0x0e)) {
        return false;
    }
    let (mut quoted, mut escaped) = (false, false);
    for &b in text {
        match b {
            b'\r' | b'\n' => return true,
            0 if !escaped => return true,
            b'\\' if quoted && !escaped => {
                escaped = true;
                continue;
            }
            b'"' if !escaped => quoted = !quoted,
            _ => {}
        }
        escaped = false;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_honour_escapes() {
        assert_eq!(quoted_len(br#""a\"b" rest"#), Some(6));
        assert_eq!(quoted_len(br#""open"#), None);
        let (s, rest) = unquote(r#""J Rosenberg \\\"" <x>"#).unwrap();
        assert_eq!(s, r#"J Rosenberg \""#);
        assert_eq!(rest, " <x>");
        let mut out = String::new();
        write_quoted(&mut out, &s).unwrap();
        assert_eq!(out, r#""J Rosenberg \\\"""#);
    }

    #[test]
    fn escapes_round_trip() {
        let user = unescape("sips%3Auser%40example.com", is_unreserved).unwrap();
        assert_eq!(user, "sips:user@example.com");
        let mut out = String::new();
        write_escaped(&mut out, &user, is_unreserved).unwrap();
        assert_eq!(out, "sips%3Auser%40example.com");
        assert_eq!(unescape("null-%00-null", is_unreserved).unwrap(), "null-\0-null");
        assert!(unescape("%Z1", is_unreserved).is_none());
        assert!(unescape("a b", is_unreserved).is_none());
        let mut out = String::new();
        write_escaped(&mut out, "é-ü", is_unreserved).unwrap();
        assert_eq!(out, "%C3%A9-%C3%BC");
    }
}
