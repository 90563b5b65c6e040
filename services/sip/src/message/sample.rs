//! Requests as tests write them (the `sample` feature, for other crates' tests): the method and
//! Request-URI, then a header a line as `Name: value`, indented as the test's code is; a blank
//! line, then the body, if there is one. Header names are read as the wire layer reads them.
use super::{HeaderName, Method, Request, Uri};

/// The request `text` describes; panics (a test's mistake) on a line that is no header.
pub fn request(text: &str) -> Request {
    let mut lines = text.lines().map(str::trim);
    let start = lines.next().unwrap_or_default();
    let (method, uri) = start.split_once(' ').unwrap_or_else(|| panic!("no method and URI in {start:?}"));
    let uri = Uri::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
    let mut request = Request::new(Method::parse(method), uri);
    for line in lines.by_ref().take_while(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').unwrap_or_else(|| panic!("no header in {line:?}"));
        request.headers.add(HeaderName::parse(name.trim()), value.trim());
    }
    let body: Vec<&str> = lines.collect();
    if !body.is_empty() {
        request.body = body.iter().map(|l| format!("{l}\r\n")).collect::<String>().into_bytes();
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_the_request_its_lines_say() {
        let r = request(
            "INVITE sip:bob@branch.test
             Via: SIP/2.0/UDP 10.0.0.7:5060;branch=z9hG4bK-1
             From: <sip:alice@branch.test>;tag=a1
             CSeq: 1 INVITE

             v=0
             m=audio 4000 RTP/AVP 0",
        );
        assert_eq!(r.method, Method::INVITE);
        assert_eq!(r.uri.to_string(), "sip:bob@branch.test");
        let names: Vec<&str> = r.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["Via", "From", "CSeq"]);
        assert_eq!(r.headers.get(&HeaderName::From), Some("<sip:alice@branch.test>;tag=a1"));
        assert_eq!(r.body, b"v=0\r\nm=audio 4000 RTP/AVP 0\r\n");
    }
}
