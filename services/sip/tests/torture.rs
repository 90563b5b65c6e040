//! The RFC 4475 torture corpus, every file of it: the 13 valid messages parsed right field by
//! field, the 19 invalid ones refused with the right status and a reason naming the fault,
//! invalid responses dropped, and the rest parsed or refused without a panic.
use holdfast_sip::message::{Header, HeaderName, Host, Message, Method, NameAddr, Request, Response, Uri, Via};
use holdfast_sip::wire::{self, StreamDecoder, StreamItem, WireError};

mod common;

fn request(name: &str) -> Request {
    match wire::parse(&common::message("valid", name)) {
        Ok(Message::Request(r)) => r,
        other => panic!("{name}: {other:?}"),
    }
}

fn response(name: &str) -> Response {
    match wire::parse(&common::message("valid", name)) {
        Ok(Message::Response(r)) => r,
        other => panic!("{name}: {other:?}"),
    }
}

fn other(name: &str) -> HeaderName {
    HeaderName::Other(name.to_string())
}

fn sip_user(uri: &Uri) -> Option<&str> {
    match uri {
        Uri::Sip(u) => u.user.as_deref(),
        _ => None,
    }
}

fn addr(r: &Request, name: HeaderName) -> NameAddr {
    NameAddr::parse(r.headers.get(&name).unwrap()).unwrap()
}

/// A checkout that rewrote line ends (CRLF) or 8-bit bytes would test other messages than RFC 4475's.
#[test]
fn the_corpus_is_byte_exact() {
    use sha2::{Digest, Sha256};
    let sums = std::fs::read_to_string(common::corpus_dir().join("SHA256SUMS")).unwrap();
    let mut checked = 0;
    for line in sums.lines() {
        let (sum, path) = line.split_once("  ").unwrap();
        let bytes = std::fs::read(common::corpus_dir().join(path)).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), sum, "{path}");
        checked += 1;
    }
    assert_eq!(checked, 50);
}

#[test]
fn every_valid_message_is_accepted_and_round_trips() {
    let valid = common::messages("valid");
    assert_eq!(valid.len(), 13);
    for (name, bytes) in &valid {
        let m = wire::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = wire::parse(&m.to_bytes().unwrap_or_else(|e| panic!("{name}: {e}"))).unwrap_or_else(|e| panic!("{name} round trip: {e}"));
        assert_eq!(again, m, "{name} round trip");
        // Every typed header of every valid message parses.
        for h in m.headers().iter() {
            match h.name {
                HeaderName::Via => drop(Via::parse(&h.value).unwrap()),
                HeaderName::From | HeaderName::To | HeaderName::Route | HeaderName::Contact => {
                    drop(NameAddr::parse(&h.value).unwrap())
                }
                _ => {}
            }
        }
    }
}

#[test]
fn wsinv_whitespace_and_folding() {
    let r = request("wsinv");
    assert_eq!(r.method, Method::INVITE);
    assert_eq!(r.uri.to_string(), "sip:vivekg@chair-dnrc.example.com;unknownparam");
    let to = r.to_header().unwrap();
    assert_eq!(to.tag(), Some("1918181833n"));
    let from = r.from_header().unwrap();
    assert_eq!(from.display.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(r.headers.get(&HeaderName::MaxForwards), Some("0068"));
    let cseq = r.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (9, Method::INVITE));
    let vias: Vec<_> = r.headers.get_all(&HeaderName::Via).map(|v| Via::parse(v).unwrap()).collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].transport.as_str(), vias[0].host.to_string(), vias[0].branch()),
        ("UDP", "192.0.2.2".into(), Some("390skdjuw"))
    );
    assert_eq!((vias[1].transport.as_str(), vias[1].branch()), ("TCP", Some("z9hG4bK9ikj8")));
    assert_eq!(vias[1].host, Host::Domain("spindle.example.com".into()));
    assert_eq!((vias[2].host.to_string(), vias[2].branch()), ("192.168.255.111".into(), Some("z9hG4bK30239")));
    assert_eq!(r.headers.get(&HeaderName::Subject), Some(""));
    assert_eq!(r.headers.get(&other("NewFangledHeader")), Some("newfangled value continued newfangled value"));
    assert_eq!(r.headers.get(&other("UnknownHeaderWithUnusualValue")), Some(";;,,;;,;"));
    let route = addr(&r, HeaderName::Route);
    let Uri::Sip(route_uri) = &route.uri else { panic!() };
    assert!(route_uri.params.contains("lr"));
    assert_eq!(route_uri.params.value("unknownwith"), Some("value"));
    let contact = addr(&r, HeaderName::Contact);
    assert_eq!(contact.display.as_deref(), Some("Quoted string \"\""));
    assert_eq!(contact.params.value("newparam"), Some("newvalue"));
    assert!(contact.params.contains("secondparam"));
    assert_eq!(contact.params.value("q"), Some("0.33"));
    assert_eq!(r.body.len(), 150);
}

#[test]
fn intmeth_extension_method_and_unusual_uri() {
    let r = request("intmeth");
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(r.method, Method::Extension(method.into()));
    assert_eq!(r.cseq().unwrap().method, r.method);
    let Uri::Sip(uri) = &r.uri else { panic!() };
    assert_eq!(uri.user.as_deref(), Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"));
    assert_eq!(uri.password.as_deref(), Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"));
    assert_eq!(uri.host, Host::Domain("example.com".into()));
    assert_eq!(r.to_header().unwrap().display.as_deref(), Some("BEL:\x07 NUL:\0 DEL:\x7f"));
    let from = r.from_header().unwrap();
    assert_eq!(from.display.as_deref(), Some("token1~` token2'+_ token3*%!.-"));
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(from.params.value("fromParam''~+*_!.-%"), Some("\"работающий\""));
    assert_eq!(r.call_id().unwrap(), "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{");
    assert_eq!(r.headers.get(&other("extensionHeader-!.%*+_`'~")), Some("\u{feff}\u{5927}\u{505c}\u{96fb}"));
    assert_eq!(r.top_via().unwrap().branch(), Some("z9hG4bK-.!%66*_+`'~"));
}

#[test]
fn esc01_escapes_decoded() {
    let r = request("esc01");
    assert_eq!(sip_user(&r.uri), Some("sips:user@example.com"));
    assert_eq!(r.uri.as_sip().unwrap().host, Host::Domain("example.net".into()));
    assert_eq!(sip_user(&r.to_header().unwrap().uri), Some("user"));
    assert_eq!(sip_user(&r.from_header().unwrap().uri), Some("I have spaces"));
    assert_eq!(r.headers.get(&HeaderName::ContentType), Some("application/sdp"));
    let contact = addr(&r, HeaderName::Contact);
    let Uri::Sip(c) = &contact.uri else { panic!() };
    assert_eq!(c.user.as_deref(), Some("caller"));
    assert!(c.params.contains("lr"));
    assert_eq!(c.params.value("name"), Some("value%41"));
}

#[test]
fn escnull_nul_in_user_part() {
    let r = request("escnull");
    assert_eq!(sip_user(&r.to_header().unwrap().uri), Some("null-\0-null"));
    let users: Vec<_> = r
        .headers
        .get_all(&HeaderName::Contact)
        .map(|c| sip_user(&NameAddr::parse(c).unwrap().uri).unwrap().to_string())
        .collect();
    assert_eq!(users, ["\0", "\0\0"]);
    assert!(r.body.is_empty());
}

#[test]
fn esc02_escapes_in_method_and_header_name_are_not_decoded() {
    let r = request("esc02");
    assert_eq!(r.method, Method::Extension("RE%47IST%45R".into()));
    assert_eq!(r.headers.count(&HeaderName::Contact), 2);
    assert_eq!(r.headers.get(&other("C%6Fntact")), Some("<sip:alias2@host2.example.com>"));
    assert_eq!(r.to_header().unwrap().display.as_deref(), Some("%Z%45"));
    assert_eq!(r.top_via().unwrap().branch(), Some("z9hG4bK209%fzsnel234"));
}

#[test]
fn lwsdisp_display_name_without_space() {
    let r = request("lwsdisp");
    assert_eq!(r.method, Method::OPTIONS);
    let from = r.from_header().unwrap();
    assert_eq!(from.display.as_deref(), Some("caller"));
    assert_eq!(from.tag(), Some("323"));
}

#[test]
fn longreq_long_values_and_many_vias() {
    let r = request("longreq");
    assert_eq!(r.headers.count(&HeaderName::Via), 34);
    let vias: Vec<_> = r.headers.get_all(&HeaderName::Via).map(|v| Via::parse(v).unwrap()).collect();
    assert_eq!(vias[0].host, Host::Domain("sip33.example.com".into()));
    assert_eq!(vias[33].params.value("received"), Some("192.0.2.5"));
    assert!(vias[33].branch().unwrap().starts_with("verylong") && vias[33].branch().unwrap().len() > 200);
    let to = r.to_header().unwrap();
    assert!(to.display.unwrap().contains("extremeextreme"));
    let Uri::Sip(to_uri) = &to.uri else { panic!() };
    assert_eq!(to_uri.port, Some(6000));
    assert_eq!(to_uri.params.0.len(), 3);
    let from = r.from_header().unwrap();
    assert!(from.tag().unwrap().starts_with("12982982"));
    assert_eq!(from.params.0.len(), 3);
    assert!(r.call_id().unwrap().ends_with("longcallid"));
    assert!(r
        .headers
        .iter()
        .any(|h| h.name.as_str().starts_with("Unknown-LongLong") && h.value.ends_with("-parameter-value")));
    assert_eq!(r.body.len(), 150);
}

#[test]
fn dblreq_datagram_holds_one_request() {
    let r = request("dblreq");
    assert_eq!(r.method, Method::REGISTER);
    assert_eq!(r.call_id().unwrap(), "dblreq.0ha0isndaksdj99sdfafnl3lk233412");
    assert!(r.body.is_empty());
}

#[test]
fn semiuri_semicolon_in_user_part() {
    let r = request("semiuri");
    let Uri::Sip(uri) = &r.uri else { panic!() };
    assert_eq!(uri.user.as_deref(), Some("user;par=u@example.net"));
    assert_eq!(uri.host, Host::Domain("example.com".into()));
    assert!(uri.params.0.is_empty());
    let accept: Vec<_> = r.headers.get_all(&HeaderName::Accept).collect();
    assert_eq!(
        accept,
        [
            "application/sdp",
            "application/pkcs7-mime",
            "multipart/mixed",
            "multipart/signed",
            "message/sip",
            "message/sipfrag"
        ]
    );
}

#[test]
fn transports_all_vias_kept() {
    let r = request("transports");
    let transports: Vec<_> = r.headers.get_all(&HeaderName::Via).map(|v| Via::parse(v).unwrap().transport).collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    assert_eq!(r.call_id().unwrap(), "transports.kijh4akdnaqjkwendsasfdj");
}

#[test]
fn mpart01_binary_body() {
    let r = request("mpart01");
    assert_eq!((r.method.as_str(), r.method.as_rsip().is_some()), ("MESSAGE", true));
    assert_eq!(r.body.len(), 553);
    assert!(r.body.contains(&0));
    assert!(r.headers.get(&HeaderName::ContentType).unwrap().starts_with("multipart/mixed"));
    assert_eq!(r.top_via().unwrap().params.get("rport"), Some(None));
}

#[test]
fn unreason_and_noreason_responses() {
    let r = response("unreason");
    assert_eq!(r.status, 200);
    assert_eq!(r.reason, "= 2**3 * 5**2 \u{043d}\u{043e} \u{0441}\u{0442}\u{043e} \u{0434}\u{0435}\u{0432}\u{044f}\u{043d}\u{043e}\u{0441}\u{0442}\u{043e} \u{0434}\u{0435}\u{0432}\u{044f}\u{0442}\u{044c} - \u{043f}\u{0440}\u{043e}\u{0441}\u{0442}\u{043e}\u{0435}");
    assert_eq!(r.body.len(), 154);
    let r = response("noreason");
    assert_eq!((r.status, r.reason.as_str()), (100, ""));
    assert_eq!(r.cseq().unwrap().seq, 35);
}

/// (file, status, words the reason must hold); None: an invalid response, to be dropped.
const INVALID: [(&str, Option<u16>, &str); 19] = [
    ("badaspec", Some(400), "To header"),
    ("baddate", Some(400), "Date header"),
    ("baddn", Some(400), "From header: display name"),
    ("badinv01", Some(400), "Via header"),
    ("badvers", Some(505), "SIP/7.0"),
    ("bigcode", None, "status code"),
    ("clerr", Some(400), "Content-Length"),
    ("escruri", Some(400), "Request-URI"),
    ("ltgtruri", Some(400), "Request-URI"),
    ("lwsruri", Some(400), "request line"),
    ("lwsstart", Some(400), "request line"),
    ("mismatch01", Some(400), "CSeq method"),
    ("mismatch02", Some(400), "CSeq method"),
    ("ncl", Some(400), "Content-Length"),
    ("quotbal", Some(400), "To header: unbalanced quote"),
    ("regbadct", Some(400), "Contact header"),
    ("scalar02", Some(400), "CSeq header"),
    ("scalarlg", None, "CSeq header"),
    ("trws", Some(400), "request line"),
];

#[test]
fn every_invalid_message_is_refused_with_the_fault_named() {
    let invalid = common::messages("invalid");
    assert_eq!(invalid.len(), INVALID.len());
    for (name, bytes) in &invalid {
        let (_, status, words) =
            INVALID.iter().find(|(n, _, _)| n == name).unwrap_or_else(|| panic!("unexpected file {name}"));
        let error = match wire::parse(bytes) {
            Ok(m) => panic!("{name} accepted: {m:?}"),
            Err(e) => e,
        };
        assert!(error.reason().contains(words), "{name}: {error}");
        let answer = wire::error_response(bytes, &error);
        match status {
            None => assert!(answer.is_none(), "{name}: an invalid response must be dropped"),
            Some(status) => {
                assert_eq!(error.status(), *status, "{name}");
                let answer = answer.unwrap_or_else(|| panic!("{name}: no answer"));
                assert_eq!(answer.status, *status, "{name}");
                assert_eq!(answer.reason, error.reason());
                // The answer carries what the request had for the transaction to match on
                // (copied as sent, so a faulty To stays faulty) and a status line as given.
                assert!(answer.top_via().is_ok(), "{name}");
                let request_call_id = String::from_utf8_lossy(bytes)
                    .lines()
                    .find_map(|l| l.strip_prefix("Call-ID: ").map(str::to_string));
                assert_eq!(answer.call_id().ok().map(str::to_string), request_call_id, "{name}");
                assert!(answer.to_header().map(|t| t.tag().is_some()).unwrap_or(true), "{name}: To tag");
                let status_line = format!("SIP/2.0 {status} {}\r\n", error.reason());
                assert!(answer.to_bytes().unwrap().starts_with(status_line.as_bytes()), "{name}");
            }
        }
    }
}

#[test]
fn badinv01_answer_routes_to_the_salvaged_via() {
    let bytes = common::message("invalid", "badinv01");
    let answer = wire::error_response(&bytes, &wire::parse(&bytes).unwrap_err()).unwrap();
    let via = answer.top_via().unwrap();
    assert_eq!((via.transport.as_str(), via.host.to_string()), ("UDP", "192.0.2.15".to_string()));
}

#[test]
fn semantic_and_extra_files_parse_or_fail_without_panic() {
    let mut seen = 0;
    for kind in ["semantic", "extra"] {
        for (name, bytes) in common::messages(kind) {
            seen += 1;
            match wire::parse(&bytes) {
                Ok(m) => assert_eq!(wire::parse(&m.to_bytes().unwrap()).as_ref(), Ok(&m), "{name}"),
                Err(e) => {
                    let _ = wire::error_response(&bytes, &e);
                }
            }
        }
    }
    assert_eq!(seen, 18);
    // RFC 4475 §3.3: these carry duplicate singleton headers or lack mandatory ones.
    for name in ["insuf", "multi01", "mcl01"] {
        assert!(
            matches!(wire::parse(&common::message("semantic", name)), Err(WireError::Header(_) | WireError::Duplicate(_))),
            "{name}"
        );
    }
}

#[test]
fn valid_messages_framed_on_a_stream() {
    for (name, bytes) in common::messages("valid").into_iter().filter(|(n, _)| n != "dblreq") {
        let mut decoder = StreamDecoder::new();
        // Two copies in odd-sized pieces with a pong between them.
        let stream = [&bytes[..], b"\r\n", &bytes[..]].concat();
        let mut got = Vec::new();
        for piece in stream.chunks(7) {
            decoder.push(piece);
            got.extend(decoder.by_ref());
        }
        let want = wire::parse(&bytes).unwrap();
        let messages: Vec<_> = got
            .iter()
            .filter_map(|i| match i {
                Ok(StreamItem::Message(m)) => Some(m),
                _ => None,
            })
            .collect();
        assert_eq!(messages, [&want, &want], "{name}: {got:?}");
    }
}

#[test]
fn header_helpers_still_work_on_parsed_messages() {
    let mut r = request("lwsdisp");
    r.headers.push_front(Header::new(HeaderName::Via, "SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKnew"));
    assert_eq!(r.top_via().unwrap().branch(), Some("z9hG4bKnew"));
    let resp = r.response(200);
    let parsed = wire::parse(&resp.to_bytes().unwrap()).unwrap();
    assert_eq!(parsed.headers().count(&HeaderName::Via), 2);
}
