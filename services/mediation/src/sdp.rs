//! Just enough SDP (RFC 4566) for a media relay in the path (RFC 3264 offer/answer): read where
//! a side wants its audio, and rewrite the connection address and audio port to the relay's.
//! Everything else (codecs, direction attributes, telephone-event) passes through untouched, so
//! the two ends still negotiate with each other.
use holdfast_media::RemoteMedia;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP is not UTF-8")]
    NotText,
    #[error("SDP has no audio stream")]
    NoAudio,
    #[error("SDP audio stream has no usable connection address")]
    NoAddress,
    #[error("malformed SDP line {0:?}")]
    Malformed(String),
}

/// The audio stream of an SDP body, as the relay needs it.
pub fn remote_media(body: &[u8]) -> Result<RemoteMedia, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
    let mut session_addr: Option<IpAddr> = None;
    let mut audio: Option<(u16, Vec<u8>)> = None;
    let mut media_addr: Option<IpAddr> = None;
    let mut in_audio = false;
    let (mut rtcp_port, mut rtcp_mux, mut telephone_event) = (None, false, None);
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            in_audio = false;
            let mut f = m.split(' ');
            if f.next() == Some("audio") && audio.is_none() {
                let port = f.next().and_then(|p| p.split('/').next()?.parse().ok());
                let port = port.ok_or_else(|| SdpError::Malformed(line.to_string()))?;
                let pts = f.skip(1).filter_map(|p| p.parse().ok()).collect();
                audio = Some((port, pts));
                in_audio = true;
            }
        } else if let Some(c) = line.strip_prefix("c=") {
            let addr = c.split(' ').nth(2).and_then(|a| a.split('/').next()?.parse().ok());
            match (audio.is_some(), in_audio) {
                (false, _) => session_addr = addr,
                (true, true) => media_addr = addr,
                _ => {}
            }
        } else if in_audio {
            if let Some(a) = line.strip_prefix("a=rtcp:") {
                rtcp_port = a.split(' ').next().and_then(|p| p.parse::<u16>().ok());
            } else if line == "a=rtcp-mux" {
                rtcp_mux = true;
            } else if let Some(map) = line.strip_prefix("a=rtpmap:") {
                let (pt, enc) = map.split_once(' ').unwrap_or((map, ""));
                if enc.to_ascii_lowercase().starts_with("telephone-event/") {
                    telephone_event = pt.parse().ok();
                }
            }
        }
    }
    let (port, pts) = audio.ok_or(SdpError::NoAudio)?;
    let ip = media_addr.or(session_addr).ok_or(SdpError::NoAddress)?;
    let rtp = SocketAddr::new(ip, port);
    Ok(RemoteMedia {
        rtp,
        rtcp: rtcp_port.map(|p| SocketAddr::new(ip, p)),
        rtcp_mux,
        // The first format listed is the one in use (RFC 3264 §5.1: most preferred first).
        audio_pt: pts.iter().copied().find(|pt| Some(*pt) != telephone_event),
        telephone_event_pt: telephone_event,
    })
}

/// The payload formats of the first audio stream, most preferred first.
pub fn audio_formats(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().find_map(|l| l.trim_end().strip_prefix("m=audio "));
    line.map(|l| l.split(' ').skip(2).filter_map(|f| f.parse().ok()).collect()).unwrap_or_default()
}

const PCMU: u8 = 0;
const PCMA: u8 = 8;

fn rtpmap(pt: u8) -> &'static str {
    if pt == PCMU {
        "a=rtpmap:0 PCMU/8000"
    } else {
        "a=rtpmap:8 PCMA/8000"
    }
}

/// An offer that also lists the other G.711 law when it has only one (least preferred), so the
/// far side may pick either: the relay transcodes µ-law <-> A-law between the two.
pub fn offer_both_g711(body: &[u8]) -> Vec<u8> {
    let formats = audio_formats(body);
    let extra = match (formats.contains(&PCMU), formats.contains(&PCMA)) {
        (true, false) => PCMA,
        (false, true) => PCMU,
        _ => return body.to_vec(),
    };
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len() + 32);
    let mut done = false;
    for line in text.lines() {
        let line = line.trim_end();
        out.push_str(line);
        if !done && line.starts_with("m=audio ") {
            out.push_str(&format!(" {extra}\r\n{}", rtpmap(extra)));
            done = true;
        }
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// An answer as the side that offered `offered` must see it (RFC 3264 §6.1: only formats it
/// offered): formats it did not offer are left out, and when the answerer chose the G.711 law
/// that side did not offer, the other law (which it did) stands in its place; the relay
/// transcodes. Returns the body and the payload type that side will send.
pub fn answer_for(body: &[u8], offered: &[u8]) -> (Vec<u8>, Option<u8>) {
    let formats = audio_formats(body);
    let swap = match formats.first().copied() {
        Some(c @ (PCMU | PCMA)) if !offered.contains(&c) => {
            let other = if c == PCMU { PCMA } else { PCMU };
            offered.contains(&other).then_some((c, other))
        }
        _ => None,
    };
    let kept: Vec<u8> = formats
        .iter()
        .filter_map(|&f| match swap {
            Some((from, to)) if f == from => Some(to),
            Some((_, to)) if f == to => None,
            _ => offered.contains(&f).then_some(f),
        })
        .collect();
    if kept.is_empty() || kept == formats {
        return (body.to_vec(), formats.first().copied());
    }
    let attr_pt = |line: &str| -> Option<u8> {
        let rest = line.strip_prefix("a=rtpmap:").or_else(|| line.strip_prefix("a=fmtp:"))?;
        rest.split(' ').next()?.parse().ok()
    };
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len());
    let mut in_audio = false;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(m) = line.strip_prefix("m=") {
            in_audio = m.starts_with("audio ");
        }
        let rewritten = if let Some(m) = line.strip_prefix("m=audio ") {
            let mut f = m.split(' ');
            let (port, proto) = (f.next().unwrap_or_default(), f.next().unwrap_or_default());
            let list: Vec<String> = kept.iter().map(u8::to_string).collect();
            format!("m=audio {port} {proto} {}", list.join(" "))
        } else if let Some(pt) = attr_pt(line).filter(|_| in_audio) {
            match swap {
                Some((from, to)) if pt == from && line.starts_with("a=rtpmap:") => rtpmap(to).to_string(),
                _ if kept.contains(&pt) && swap.is_none_or(|(from, _)| pt != from) => line.to_string(),
                _ => continue,
            }
        } else {
            line.to_string()
        };
        out.push_str(&rewritten);
        out.push_str("\r\n");
    }
    (out.into_bytes(), kept.first().copied())
}

/// The body without direction attributes: sendrecv, the default (RFC 3264 §5.1). A held
/// party's last SDP offered to a new peer must not keep the hold.
pub fn sendrecv(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len());
    for line in text.lines().map(str::trim_end) {
        if !matches!(line, "a=sendonly" | "a=recvonly" | "a=inactive" | "a=sendrecv") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.into_bytes()
}

/// The body with every connection address (and the origin's) set to `relay.ip()` and the audio
/// port to `relay.port()`; RTCP goes to the next port (a=rtcp lines are dropped). Other streams
/// are declined.
pub fn rewrite(body: &[u8], relay: SocketAddr) -> Result<Vec<u8>, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
    let family = if relay.is_ipv4() { "IP4" } else { "IP6" };
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_audio = false;
    let mut seen_audio = false;
    for line in text.lines() {
        let line = line.trim_end();
        let rewritten = if let Some(m) = line.strip_prefix("m=") {
            in_audio = m.starts_with("audio ") && !seen_audio;
            seen_audio |= in_audio;
            let mut f = m.splitn(3, ' ');
            let (kind, rest) = (f.next().unwrap_or_default(), f.nth(1));
            let rest = rest.ok_or_else(|| SdpError::Malformed(line.to_string()))?;
            // Streams the relay does not carry are declined (port 0, RFC 3264 §6): their c=
            // now names the relay.
            let port = if in_audio { relay.port() } else { 0 };
            format!("m={kind} {port} {rest}")
        } else if line.starts_with("c=") {
            format!("c=IN {family} {}", relay.ip())
        } else if let Some(o) = line.strip_prefix("o=") {
            let f: Vec<&str> = o.split(' ').collect();
            if f.len() < 6 {
                return Err(SdpError::Malformed(line.to_string()));
            }
            format!("o={} {} {} IN {family} {}", f[0], f[1], f[2], relay.ip())
        } else if in_audio && line.starts_with("a=rtcp:") {
            continue;
        } else {
            line.to_string()
        };
        out.push_str(&rewritten);
        out.push_str("\r\n");
    }
    if !seen_audio {
        return Err(SdpError::NoAudio);
    }
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n\
        m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
        a=rtcp:40009\r\na=sendrecv\r\nm=video 40002 RTP/AVP 96\r\nc=IN IP4 192.0.2.6\r\n";

    #[test]
    fn reads_the_audio_stream() {
        let m = remote_media(OFFER.as_bytes()).unwrap();
        assert_eq!(m.rtp, "192.0.2.5:40000".parse().unwrap());
        assert_eq!(m.rtcp, Some("192.0.2.5:40009".parse().unwrap()));
        assert_eq!((m.audio_pt, m.telephone_event_pt, m.rtcp_mux), (Some(8), Some(101), false));
        let media_level = "v=0\nc=IN IP4 0.0.0.0\nm=audio 5004 RTP/AVP 0\nc=IN IP6 2001:db8::1\na=rtcp-mux\n";
        let m = remote_media(media_level.as_bytes()).unwrap();
        assert_eq!(m.rtp, "[2001:db8::1]:5004".parse().unwrap());
        assert!(m.rtcp_mux);
        assert_eq!(remote_media(b"v=0\nc=IN IP4 1.2.3.4\n"), Err(SdpError::NoAudio));
        assert_eq!(remote_media(b"v=0\nm=audio 1 RTP/AVP 0\n"), Err(SdpError::NoAddress));
    }

    #[test]
    fn g711_laws_are_offered_both_and_answered_in_the_offerer_s() {
        let alaw_only = "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n";
        let offer = String::from_utf8(offer_both_g711(alaw_only.as_bytes())).unwrap();
        assert!(offer.contains("m=audio 4000 RTP/AVP 8 101 0\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"), "{offer}");
        assert_eq!(offer_both_g711(OFFER.as_bytes()), OFFER.as_bytes(), "both laws offered already");
        // The far side picks µ-law: the A-law side is told A-law.
        let answer = "v=0\r\nc=IN IP4 192.0.2.2\r\nm=audio 5000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n";
        let (for_a, pt) = answer_for(answer.as_bytes(), &[8, 101]);
        let for_a = String::from_utf8(for_a).unwrap();
        assert_eq!(pt, Some(8));
        assert!(for_a.contains("m=audio 5000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"), "{for_a}");
        assert!(!for_a.contains("PCMU"), "{for_a}");
        let (same, pt) = answer_for(answer.as_bytes(), &[0, 8]);
        assert_eq!((same, pt), (answer.as_bytes().to_vec(), Some(0)));
        // Formats the offerer never offered are left out of its answer.
        let (only_mu, pt) = answer_for(answer.as_bytes(), &[0]);
        let only_mu = String::from_utf8(only_mu).unwrap();
        assert_eq!(pt, Some(0));
        assert!(only_mu.contains("m=audio 5000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n") && !only_mu.contains("PCMA"), "{only_mu}");
    }

    #[test]
    fn a_held_sdp_is_offered_sendrecv() {
        let held = format!("{OFFER}a=sendonly\r\n");
        let out = String::from_utf8(sendrecv(held.as_bytes())).unwrap();
        assert!(!out.contains("a=sendonly") && !out.contains("a=sendrecv"), "{out}");
        assert!(out.starts_with("v=0\r\no=- 1 2 IN IP4 192.0.2.5\r\n") && out.contains("a=rtpmap:101 telephone-event/8000\r\n"), "{out}");
    }

    #[test]
    fn rewrite_points_audio_at_the_relay_and_keeps_the_rest() {
        let out = rewrite(OFFER.as_bytes(), "127.0.0.1:30002".parse().unwrap()).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("o=- 1 2 IN IP4 127.0.0.1\r\n"), "{out}");
        assert!(out.contains("m=audio 30002 RTP/AVP 8 0 101\r\n"), "{out}");
        assert!(out.contains("a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"), "{out}");
        assert!(!out.contains("a=rtcp:"), "{out}");
        assert!(!out.contains("192.0.2."), "{out}");
        assert!(out.contains("m=video 0 RTP/AVP 96"), "{out}");
        let m = remote_media(out.as_bytes()).unwrap();
        assert_eq!(m.rtp, "127.0.0.1:30002".parse().unwrap());
        assert_eq!(m.audio_pt, Some(8));
    }
}
