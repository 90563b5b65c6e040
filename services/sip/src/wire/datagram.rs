//! Bytes to `Message`: the start line, unfolded and split headers, Content-Length framing.
use super::error::WireError;
use super::head::{find_head_end, head_text, skip_leading_crlf, split_list, start_line};
use super::validate::Seen;
use crate::message::syntax::is_token;
use crate::message::{HeaderName, Headers, Message, Method, Request, Response, Uri};

/// Parses one message. On a datagram a missing Content-Length means "the rest of the datagram";
/// a Content-Length shorter than what follows cuts the body (RFC 4475 dblreq), a longer one is
/// an error. Content-Length is not kept among the headers: the body's length is the truth.
pub fn parse(bytes: &[u8]) -> Result<Message, WireError> {
    let bytes = skip_leading_crlf(bytes);
    if bytes.is_empty() {
        return Err(WireError::Empty);
    }
    let (head, body) = match find_head_end(bytes, 0) {
        Some((head_end, body_start)) => (&bytes[..head_end], &bytes[body_start..]),
        None => (bytes, &[][..]),
    };
    let head = head_text(head);
    let (first, lines) = start_line(&head);
    let start = parse_start_line(first)?;

    let mut headers = Headers::with_capacity(16);
    let mut seen = Seen::default();
    for line in lines {
        let line = line.map_err(|()| WireError::HeaderLine)?;
        let name = HeaderName::parse(line.name);
        if name.is_list() && !line.value.is_empty() {
            for item in split_list(&line.value) {
                if item.is_empty() {
                    if must_not_be_empty(&name) {
                        return Err(WireError::malformed(static_name(&name), "empty list element"));
                    }
                    continue;
                }
                seen.check(&name, item)?;
                headers.add(name.clone(), item);
            }
        } else {
            seen.check(&name, &line.value)?;
            if name != HeaderName::ContentLength {
                headers.add(name, line.value.into_owned());
            }
        }
    }
    seen.check_mandatory()?;

    let body = match seen.content_length {
        Some(n) => body.get(..n).ok_or(WireError::Truncated)?,
        None => body,
    };
    match start {
        StartLine::Request(method, uri) => {
            if seen.cseq.as_ref().is_some_and(|c| c.method != method) {
                return Err(WireError::CSeqMethod);
            }
            Ok(Message::Request(Request { method, uri, headers, body: body.to_vec() }))
        }
        StartLine::Response(status, reason) => {
            Ok(Message::Response(Response { status, reason, headers, body: body.to_vec() }))
        }
    }
}

enum StartLine {
    Request(Method, Uri),
    Response(u16, String),
}

pub(crate) fn is_status_line(line: &[u8]) -> bool {
    line.get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
}

fn parse_start_line(line: &str) -> Result<StartLine, WireError> {
    if is_status_line(line.as_bytes()) {
        return parse_status_line(line);
    }
    // Request-Line = Method SP Request-URI SP SIP-Version: exactly one space each, no more
    // (RFC 4475 lwsstart, trws, lwsruri).
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(WireError::StartLine("request line"));
    };
    if !is_token(method) {
        return Err(WireError::StartLine("request line: method"));
    }
    check_version(version, "request line")?;
    let uri = Uri::parse(uri).map_err(|_| WireError::StartLine("Request-URI"))?;
    if uri.as_sip().is_some_and(|u| !u.headers.is_empty()) {
        return Err(WireError::UriHeaders);
    }
    Ok(StartLine::Request(Method::parse(method), uri))
}

fn parse_status_line(line: &str) -> Result<StartLine, WireError> {
    let (version, rest) = line.split_once(' ').ok_or(WireError::StartLine("status line"))?;
    check_version(version, "status line")?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let status = match code.as_bytes() {
        [a @ b'1'..=b'6', b, c] if b.is_ascii_digit() && c.is_ascii_digit() => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err(WireError::StartLine("status line: status code")),
    };
    // The phrase is relayed and copied into records: no control characters (RFC 3261 §25.1).
    if reason.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
        return Err(WireError::StartLine("status line: reason phrase"));
    }
    Ok(StartLine::Response(status, reason.to_string()))
}

fn check_version(version: &str, line: &'static str) -> Result<(), WireError> {
    if version.eq_ignore_ascii_case("SIP/2.0") {
        Ok(())
    } else if is_status_line(version.as_bytes()) {
        let shown: String = version.chars().filter(|c| c.is_ascii_graphic()).take(16).collect();
        Err(WireError::Version(shown))
    } else {
        Err(WireError::StartLine(line))
    }
}

/// List headers whose elements are addresses or hops, where an empty element is a fault
/// (RFC 4475 badinv01); elsewhere `Allow: INVITE,,ACK` is merely untidy.
fn must_not_be_empty(name: &HeaderName) -> bool {
    matches!(
        name,
        HeaderName::Via | HeaderName::Contact | HeaderName::Route | HeaderName::RecordRoute | HeaderName::Path
    )
}

fn static_name(name: &HeaderName) -> &'static str {
    match name {
        HeaderName::Via => "Via",
        HeaderName::Contact => "Contact",
        HeaderName::Route => "Route",
        HeaderName::RecordRoute => "Record-Route",
        HeaderName::Path => "Path",
        _ => "list",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Header;

    const REGISTER: &str = "REGISTER sip:example.com SIP/2.0\r\n\
        v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1, SIP/2.0/TCP [2001:db8::1];branch=z9hG4bK0\r\n\
        f: <sip:alice@example.com>;tag=1\r\n\
        t: <sip:alice@example.com>\r\n\
        i: abc@192.0.2.1\r\n\
        CSeq: 2 REGISTER\r\n\
        m: \"A, B\" <sip:alice@192.0.2.1;transport=udp>;expires=60, <tel:+15551234>\r\n\
        k: path, outbound\r\n\
        l: 4\r\n\
        \r\n\
        bodyEXTRA";

    fn request(bytes: &[u8]) -> Request {
        match parse(bytes).unwrap() {
            Message::Request(r) => r,
            Message::Response(r) => panic!("response {r:?}"),
        }
    }

    #[test]
    fn compact_forms_lists_and_body() {
        let r = request(REGISTER.as_bytes());
        assert_eq!(r.method, Method::REGISTER);
        assert_eq!(r.headers.count(&HeaderName::Via), 2);
        assert_eq!(r.top_via().unwrap().branch(), Some("z9hG4bK1"));
        assert_eq!(
            r.headers.get_all(&HeaderName::Contact).collect::<Vec<_>>(),
            ["\"A, B\" <sip:alice@192.0.2.1;transport=udp>;expires=60", "<tel:+15551234>"]
        );
        assert_eq!(r.headers.count(&HeaderName::Supported), 2);
        assert_eq!(r.call_id().unwrap(), "abc@192.0.2.1");
        assert_eq!(r.body, b"body");
        assert_eq!(r.headers.get(&HeaderName::ContentLength), None);
    }

    #[test]
    fn missing_content_length_takes_the_datagram() {
        let text = REGISTER.replace("l: 4\r\n", "");
        assert_eq!(request(text.as_bytes()).body, b"bodyEXTRA");
        let text = REGISTER.replace("l: 4", "l: 40");
        assert_eq!(parse(text.as_bytes()), Err(WireError::Truncated));
    }

    #[test]
    fn faults_are_named() {
        let cases: &[(&str, &str, WireError)] = &[
            (
                "REGISTER sip:example.com SIP/2.0",
                "REGISTER  sip:example.com SIP/2.0",
                WireError::StartLine("request line"),
            ),
            ("SIP/2.0\r\n", "SIP/3.0\r\n", WireError::Version("SIP/3.0".into())),
            ("CSeq: 2 REGISTER", "CSeq: 2 INVITE", WireError::CSeqMethod),
            ("i: abc@192.0.2.1\r\n", "", WireError::Header(crate::message::HeaderError::Missing("Call-ID"))),
            ("l: 4", "l: 4\r\nContent-Length: 4", WireError::Duplicate("Content-Length")),
            ("k: path", "Bad Line", WireError::HeaderLine),
        ];
        for (from, to, want) in cases {
            let text = REGISTER.replacen(from, to, 1);
            assert_eq!(parse(text.as_bytes()).as_ref(), Err(want), "{to}");
        }
    }

    #[test]
    fn responses() {
        let text = "SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n";
        let Message::Response(r) = parse(text.as_bytes()).unwrap() else { panic!() };
        assert_eq!((r.status, r.reason.as_str()), (486, "Busy Here"));
        assert!(parse(text.replace("486", "4860").as_bytes()).is_err());
        assert!(parse(text.replace("486", "086").as_bytes()).is_err());
        assert_eq!(
            parse(text.replace("Busy Here", "Busy\rHere").as_bytes()),
            Err(WireError::StartLine("status line: reason phrase"))
        );
    }

    #[test]
    fn extension_method_and_other_headers() {
        let text = REGISTER.replace("REGISTER", "PING").replace("X-Foo", "");
        let mut r = request(text.as_bytes());
        assert_eq!(r.method, Method::Extension("PING".into()));
        r.headers.push(Header::new(HeaderName::parse("X-Foo"), "a, b"));
        assert_eq!(r.headers.get(&HeaderName::Other("X-Foo".into())), Some("a, b"));
    }
}
