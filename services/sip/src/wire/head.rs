//! The header block: where it ends, and its header lines with folding undone.
use crate::message::syntax::{breaks_line, is_token, is_ws, trim_ws};
use std::borrow::Cow;

/// Skips the CRLFs RFC 3261 §7.5 says to ignore before a start line.
pub(crate) fn skip_leading_crlf(bytes: &[u8]) -> &[u8] {
    let at = bytes.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(bytes.len());
    &bytes[at..]
}

/// Finds the empty line that ends the header block, searching from `from`. Returns the end of
/// the last header line and the start of the body. Bare LF line ends are tolerated.
pub(crate) fn find_head_end(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i < bytes.len() {
        let lf = i + bytes.get(i..)?.iter().position(|&b| b == b'\n')?;
        let line_end = if lf > 0 && bytes[lf - 1] == b'\r' { lf - 1 } else { lf };
        match bytes.get(lf + 1) {
            Some(b'\n') => return Some((line_end, lf + 2)),
            Some(b'\r') if bytes.get(lf + 2) == Some(&b'\n') => return Some((line_end, lf + 3)),
            _ => i = lf + 1,
        }
    }
    None
}

/// Header text: SIP header values are UTF-8, but a stray Latin-1 byte should not cost the call.
pub(crate) fn head_text(head: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(head) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(head),
    }
}

/// Splits the header block into its start line and the logical header lines.
pub(crate) fn start_line(head: &str) -> (&str, HeaderLines<'_>) {
    let (first, rest) = match head.find('\n') {
        Some(at) => (&head[..at], &head[at + 1..]),
        None => (head, ""),
    };
    (first.strip_suffix('\r').unwrap_or(first), HeaderLines { rest })
}

/// Logical header lines; a line that starts with whitespace continues the one before
/// (RFC 3261 §7.3.1), and the fold becomes a single space.
pub(crate) struct HeaderLines<'a> {
    rest: &'a str,
}

/// One unfolded header line: its name as written and its trimmed value.
pub(crate) struct RawHeader<'a> {
    pub name: &'a str,
    pub value: Cow<'a, str>,
}

impl<'a> HeaderLines<'a> {
    fn physical(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match self.rest.find('\n') {
            Some(at) => (&self.rest[..at], &self.rest[at + 1..]),
            None => (self.rest, ""),
        };
        self.rest = rest;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }

    fn continues(&self) -> bool {
        self.rest.as_bytes().first().is_some_and(|&b| is_ws(b))
    }
}

impl<'a> Iterator for HeaderLines<'a> {
    /// Err: a line that is not `name: value`.
    type Item = Result<RawHeader<'a>, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        let line = self.physical()?;
        let Some((name, value)) = line.split_once(':') else {
            return Some(Err(()));
        };
        // RFC 3261 allows whitespace between the name and the colon (RFC 4475 wsinv).
        let name = &name[..name.bytes().rposition(|b| !is_ws(b)).map_or(0, |i| i + 1)];
        if !is_token(name) {
            return Some(Err(()));
        }
        let mut value = Cow::Borrowed(trim_ws(value));
        while self.continues() {
            let more = trim_ws(self.physical().unwrap_or_default());
            if more.is_empty() {
                continue;
            }
            let v = value.to_mut();
            if !v.is_empty() {
                v.push(' ');
            }
            v.push_str(more);
        }
        // A bare CR or a NUL left in a value would reach whatever copies it into a header.
        if breaks_line(value.as_bytes()) {
            return Some(Err(()));
        }
        Some(Ok(RawHeader { name, value }))
    }
}

/// Splits a list header's value at commas outside quoted strings and `<...>`.
pub(crate) fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let bytes = value.as_bytes();
    let mut start = 0;
    let mut i = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            match b {
                b'\\' if in_quotes => i += 1,
                b'"' if !in_angle => in_quotes = !in_quotes,
                b'<' if !in_quotes => in_angle = true,
                b'>' if !in_quotes => in_angle = false,
                b',' if !in_quotes && !in_angle => {
                    let item = trim_ws(&value[start..i - 1]);
                    start = i;
                    return Some(item);
                }
                _ => {}
            }
        }
        done = true;
        Some(trim_ws(value.get(start..).unwrap_or_default()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_is_undone() {
        let head = "INVITE sip:a@b SIP/2.0\r\nVia  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\ns :\r\nX: a\r\n\tb\r\n";
        let (start, lines) = start_line(head);
        assert_eq!(start, "INVITE sip:a@b SIP/2.0");
        let got: Vec<_> = lines.map(|h| h.map(|h| (h.name, h.value.into_owned()))).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            got,
            vec![
                ("Via", "SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw".to_string()),
                ("s", String::new()),
                ("X", "a b".to_string())
            ]
        );
    }

    #[test]
    fn lines_without_colon_or_token_name_are_errors() {
        let (_, mut lines) = start_line("X y z\r\nFoobar roobar\r\n");
        assert!(lines.next().unwrap().is_err());
        let (_, mut lines) = start_line("X\r\nBad Name: v\r\n");
        assert!(lines.next().unwrap().is_err());
        for bare in ["X\r\nY: a\r\r\n", "X\r\nY: a\rb\r\n", "X\r\nY: a\0b\r\n"] {
            let (_, mut lines) = start_line(bare);
            assert!(lines.next().unwrap().is_err(), "{bare:?}");
        }
    }

    #[test]
    fn head_end_with_crlf_or_lf() {
        assert_eq!(find_head_end(b"A\r\nB: c\r\n\r\nbody", 0), Some((7, 11)));
        assert_eq!(find_head_end(b"A\nB: c\n\nbody", 0), Some((6, 8)));
        assert_eq!(find_head_end(b"A\r\nB: c\r\n", 0), None);
    }

    #[test]
    fn list_split_respects_quotes_and_angles() {
        let v: Vec<_> = split_list("\"a, b\" <sip:x,y@h>;q=1 , <sip:z@h>,sip:w@h").collect();
        assert_eq!(v, ["\"a, b\" <sip:x,y@h>;q=1", "<sip:z@h>", "sip:w@h"]);
        let v: Vec<_> = split_list("SIP/2.0/UDP 192.0.2.15;;,;,,").collect();
        assert_eq!(v, ["SIP/2.0/UDP 192.0.2.15;;", ";", "", ""]);
        assert_eq!(split_list("").collect::<Vec<_>>(), [""]);
        assert_eq!(split_list("\"q\\\",\" x").collect::<Vec<_>>(), ["\"q\\\",\" x"]);
    }
}
