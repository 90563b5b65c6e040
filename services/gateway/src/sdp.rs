//! SDP for the gateway's calls (RFC 4566, offer/answer per RFC 3264): one audio stream, G.711
//! only. The offer lists the span's law first, so a peer that takes the first codec needs no
//! conversion; the answer picks the span's law when offered, the other G.711 law otherwise.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};

use holdfast_media::g711::{PT_PCMA, PT_PCMU};

use crate::dahdi::Law;

/// The audio stream a peer described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAudio {
    /// Where to send RTP; None when the stream is on hold (c= 0.0.0.0) or the port is 0.
    pub addr: Option<SocketAddr>,
    pub payload_types: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP is not UTF-8")]
    NotText,
    #[error("no audio stream over RTP/AVP")]
    NoAudio,
    #[error("no connection address for the audio stream")]
    NoConnection,
    #[error("malformed {0} line")]
    Malformed(&'static str),
}

/// The payload type of the span's law.
pub fn payload_type(law: Law) -> u8 {
    match law {
        Law::Mulaw => PT_PCMU,
        Law::Alaw => PT_PCMA,
    }
}

/// The law of a G.711 payload type.
pub fn law_of(payload_type: u8) -> Option<Law> {
    match payload_type {
        PT_PCMU => Some(Law::Mulaw),
        PT_PCMA => Some(Law::Alaw),
        _ => None,
    }
}

/// Our offer: PCMU and PCMA, the span's law first, 20 ms packets.
pub fn offer(session: u64, local: SocketAddr, law: Law) -> String {
    let first = payload_type(law);
    let second = if first == PT_PCMU { PT_PCMA } else { PT_PCMU };
    describe(session, local, &[first, second])
}

/// Our answer with the one payload type chosen from the offer.
pub fn answer(session: u64, local: SocketAddr, payload_type: u8) -> String {
    describe(session, local, &[payload_type])
}

fn describe(session: u64, local: SocketAddr, payload_types: &[u8]) -> String {
    let ip = match local.ip() {
        IpAddr::V4(a) => format!("IP4 {a}"),
        IpAddr::V6(a) => format!("IP6 {a}"),
    };
    let mut s = format!("v=0\r\no=sba-gateway {session} {session} IN {ip}\r\ns=-\r\nc=IN {ip}\r\nt=0 0\r\n");
    let list: Vec<String> = payload_types.iter().map(u8::to_string).collect();
    let _ = write!(s, "m=audio {} RTP/AVP {}\r\n", local.port(), list.join(" "));
    for pt in payload_types {
        let name = if *pt == PT_PCMU { "PCMU" } else { "PCMA" };
        let _ = write!(s, "a=rtpmap:{pt} {name}/8000\r\n");
    }
    s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    s
}

/// The codec to answer `offered` with: the span's law if offered, else the other G.711 law.
pub fn choose(offered: &[u8], law: Law) -> Option<u8> {
    let ours = payload_type(law);
    if offered.contains(&ours) {
        return Some(ours);
    }
    offered.iter().copied().find(|pt| law_of(*pt).is_some())
}

/// The first RTP/AVP audio stream of `body`, its address from the media-level c= line or the
/// session-level one.
pub fn parse(body: &[u8]) -> Result<RemoteAudio, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
    let mut session_ip = None;
    let mut audio: Option<(u16, Vec<u8>, Option<IpAddr>)> = None;
    let mut in_audio = false;
    for line in text.lines().map(str::trim_end) {
        if let Some(c) = line.strip_prefix("c=") {
            let ip = connection(c)?;
            match (&mut audio, in_audio) {
                (Some(a), true) => a.2 = Some(ip),
                (None, _) => session_ip = Some(ip),
                _ => {}
            }
        } else if let Some(m) = line.strip_prefix("m=") {
            in_audio = false;
            if audio.is_some() {
                continue;
            }
            let fields: Vec<&str> = m.split_whitespace().collect();
            if fields.len() < 3 {
                return Err(SdpError::Malformed("m="));
            }
            if fields[0] == "audio" && fields[2] == "RTP/AVP" {
                let port = fields[1].split('/').next().and_then(|p| p.parse().ok()).ok_or(SdpError::Malformed("m="))?;
                let pts = fields[3..].iter().filter_map(|f| f.parse().ok()).collect();
                audio = Some((port, pts, None));
                in_audio = true;
            }
        }
    }
    let (port, payload_types, media_ip) = audio.ok_or(SdpError::NoAudio)?;
    let ip = media_ip.or(session_ip).ok_or(SdpError::NoConnection)?;
    let addr = (port != 0 && !ip.is_unspecified()).then_some(SocketAddr::new(ip, port));
    Ok(RemoteAudio { addr, payload_types })
}

fn connection(value: &str) -> Result<IpAddr, SdpError> {
    let mut fields = value.split_whitespace();
    let (Some("IN"), Some(_), Some(addr)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(SdpError::Malformed("c="));
    };
    // A multicast address may carry /ttl; the gateway only uses the address.
    addr.split('/').next().and_then(|a| a.parse().ok()).ok_or(SdpError::Malformed("c="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_lists_the_span_law_first_and_parses_back() {
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let sdp = offer(7, local, Law::Alaw);
        assert!(sdp.contains("m=audio 40000 RTP/AVP 8 0\r\n"), "{sdp}");
        assert!(sdp.contains("a=ptime:20"));
        let remote = parse(sdp.as_bytes()).unwrap();
        assert_eq!(remote, RemoteAudio { addr: Some(local), payload_types: vec![8, 0] });
    }

    #[test]
    fn answer_prefers_the_span_law_and_refuses_without_g711() {
        assert_eq!(choose(&[18, 0, 8], Law::Alaw), Some(8));
        assert_eq!(choose(&[18, 0], Law::Alaw), Some(0));
        assert_eq!(choose(&[18, 101], Law::Mulaw), None);
        let sdp = answer(1, "[::1]:5004".parse().unwrap(), 0);
        assert!(sdp.contains("c=IN IP6 ::1\r\n") && sdp.contains("m=audio 5004 RTP/AVP 0\r\n"), "{sdp}");
    }

    #[test]
    fn media_level_connection_wins_and_hold_has_no_address() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                   m=video 5000 RTP/AVP 96\r\nc=IN IP4 10.0.0.9\r\n\
                   m=audio 6000 RTP/AVP 0 101\r\nc=IN IP4 10.0.0.2\r\n";
        assert_eq!(parse(sdp.as_bytes()).unwrap().addr, Some("10.0.0.2:6000".parse().unwrap()));
        let hold = "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 6000 RTP/AVP 0\r\n";
        assert_eq!(parse(hold.as_bytes()).unwrap().addr, None);
    }

    #[test]
    fn broken_descriptions_are_errors() {
        assert_eq!(parse(b"v=0\r\nm=video 1 RTP/AVP 96\r\n"), Err(SdpError::NoAudio));
        assert_eq!(parse(b"v=0\r\nm=audio 1 RTP/AVP 0\r\n"), Err(SdpError::NoConnection));
        assert_eq!(parse(b"c=IN IP4 nonsense\r\nm=audio 1 RTP/AVP 0\r\n"), Err(SdpError::Malformed("c=")));
        assert_eq!(parse(b"c=IN IP4 1.2.3.4\r\nm=audio x RTP/AVP 0\r\n"), Err(SdpError::Malformed("m=")));
        assert_eq!(parse(&[0xff, 0xfe]), Err(SdpError::NotText));
    }
}
