//! Session descriptions (SDP, RFC 4566) and the offer/answer rules of RFC 3264 the appliance
//! follows. A body is parsed into a `SessionDescription`: the lines the services act on are typed
//! (origin, connection, direction, rtpmap, fmtp, rtcp, rtcp-mux), every other line is kept as it
//! came, so a description that crosses the B2BUA keeps what its two ends negotiate with each
//! other. Written back, every line ends in CRLF.
//!
//! Hold (RFC 3264 §8.4) is a direction attribute (sendonly, inactive) or, from older phones, the
//! connection address 0.0.0.0; a stream with port 0 is disabled (declined in an answer). The
//! transport profile is kept per stream (`Profile`); an RTP/SAVP stream carries its SRTP keys in
//! SDES a=crypto lines (`crypto`), typed like the rest.
use holdfast_media::g711::{PT_PCMA, PT_PCMU};
use holdfast_media::RemoteMedia;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, SocketAddr};

pub mod crypto;
pub use crypto::{Crypto, UnusableCrypto};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP is not UTF-8")]
    NotText,
    #[error("SDP has no audio stream")]
    NoAudio,
    #[error("SDP audio stream has no connection address")]
    NoConnection,
    #[error("malformed {0} line in SDP")]
    Malformed(&'static str),
}

/// A media stream's transport protocol (the m= line's third field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Profile {
    /// RTP/AVP: plain RTP (RFC 3551).
    Avp,
    /// RTP/SAVP: SRTP (RFC 3711).
    Savp,
    /// RTP/AVPF: RTP with RTCP feedback (RFC 4585).
    Avpf,
    /// RTP/SAVPF.
    Savpf,
    Other(String),
}

impl Profile {
    fn parse(s: &str) -> Profile {
        match s {
            "RTP/AVP" => Profile::Avp,
            "RTP/SAVP" => Profile::Savp,
            "RTP/AVPF" => Profile::Avpf,
            "RTP/SAVPF" => Profile::Savpf,
            other => Profile::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Profile::Avp => "RTP/AVP",
            Profile::Savp => "RTP/SAVP",
            Profile::Avpf => "RTP/AVPF",
            Profile::Savpf => "RTP/SAVPF",
            Profile::Other(s) => s,
        }
    }

    /// Whether `body` may hold an SRTP stream: false when it holds no "RTP/SAVP" (the secure
    /// profiles are that, or that with F, matched exactly), so a caller that only needs SRTP's
    /// streams skips the parse (a plain call's description is read once, not for each check).
    pub fn may_hold_secure(body: &[u8]) -> bool {
        const SECURE: &[u8] = b"RTP/SAVP";
        body.iter().enumerate().any(|(i, &b)| b == b'/' && body[..i].ends_with(&SECURE[..3]) && body[i..].starts_with(&SECURE[3..]))
    }
}

/// The direction attribute (RFC 3264 §5.1); none written means sendrecv.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn parse(attribute: &str) -> Option<Direction> {
        match attribute {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// o=: who made the description. The address is text (it may be a name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: String,
    pub version: String,
    /// IP4 or IP6.
    pub address_type: String,
    pub address: String,
}

/// c=IN IP4|IP6 address: where media goes. A name instead of an address is refused (the branch
/// resolves no names for media).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub addr: IpAddr,
    /// A multicast address's `/ttl[/count]`, as written.
    pub suffix: String,
}

impl Connection {
    pub fn new(addr: IpAddr) -> Connection {
        Connection { addr, suffix: String::new() }
    }
}

/// One line of a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Origin(Origin),
    Connection(Connection),
    Direction(Direction),
    /// a=rtpmap:PT encoding/clock[/channels]
    RtpMap { pt: u8, encoding: String },
    /// a=fmtp:PT parameters
    Fmtp { pt: u8, params: String },
    /// a=rtcp:port [address] (RFC 3605)
    Rtcp { port: u16, rest: String },
    /// a=rtcp-mux (RFC 5761)
    RtcpMux,
    /// a=crypto (RFC 4568) the relay can use.
    Crypto(Crypto),
    /// a=crypto it cannot (another suite, MKI, session parameters), as written.
    UnusableCrypto(UnusableCrypto),
    /// Any other line, as written (v=, s=, t=, b=, a=ptime, a=ice-*, ...).
    Other(String),
}

impl Line {
    fn parse(line: &str) -> Result<Line, SdpError> {
        if let Some(o) = line.strip_prefix("o=") {
            let f: Vec<&str> = o.split_whitespace().collect();
            let [username, session_id, version, _, address_type, address] = f[..] else {
                return Err(SdpError::Malformed("o="));
            };
            let text = |s: &str| s.to_string();
            return Ok(Line::Origin(Origin {
                username: text(username),
                session_id: text(session_id),
                version: text(version),
                address_type: text(address_type),
                address: text(address),
            }));
        }
        if let Some(c) = line.strip_prefix("c=") {
            let mut f = c.split_whitespace();
            let (Some("IN"), Some(_), Some(address)) = (f.next(), f.next(), f.next()) else {
                return Err(SdpError::Malformed("c="));
            };
            let (addr, suffix) = address.split_once('/').map_or((address, ""), |(a, s)| (a, s));
            let addr = addr.parse().map_err(|_| SdpError::Malformed("c="))?;
            let suffix = if suffix.is_empty() { String::new() } else { format!("/{suffix}") };
            return Ok(Line::Connection(Connection { addr, suffix }));
        }
        let Some(attribute) = line.strip_prefix("a=") else { return Ok(Line::Other(line.to_string())) };
        if let Some(d) = Direction::parse(attribute) {
            return Ok(Line::Direction(d));
        }
        if attribute == "rtcp-mux" {
            return Ok(Line::RtcpMux);
        }
        let numbered = |value: &str| -> Option<(u8, String)> {
            let (pt, rest) = value.split_once(' ').unwrap_or((value, ""));
            Some((pt.parse().ok()?, rest.trim().to_string()))
        };
        let typed = if let Some(map) = attribute.strip_prefix("rtpmap:") {
            numbered(map).map(|(pt, encoding)| Line::RtpMap { pt, encoding })
        } else if let Some(fmtp) = attribute.strip_prefix("fmtp:") {
            numbered(fmtp).map(|(pt, params)| Line::Fmtp { pt, params })
        } else if let Some(value) = attribute.strip_prefix("crypto:") {
            return Ok(match crypto::parse(value)? {
                Ok(c) => Line::Crypto(c),
                Err(unusable) => Line::UnusableCrypto(unusable),
            });
        } else if let Some(rtcp) = attribute.strip_prefix("rtcp:") {
            let (port, rest) = rtcp.split_once(' ').unwrap_or((rtcp, ""));
            port.parse().ok().map(|port| Line::Rtcp { port, rest: rest.trim().to_string() })
        } else {
            None
        };
        Ok(typed.unwrap_or_else(|| Line::Other(line.to_string())))
    }

    /// The rtpmap line of a G.711 payload type.
    pub fn g711_rtpmap(pt: u8) -> Line {
        let name = if pt == PT_PCMU { "PCMU" } else { "PCMA" };
        Line::RtpMap { pt, encoding: format!("{name}/8000") }
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Line::Origin(o) => write!(f, "o={} {} {} IN {} {}", o.username, o.session_id, o.version, o.address_type, o.address),
            Line::Connection(c) => write!(f, "c=IN {} {}{}", family(c.addr), c.addr, c.suffix),
            Line::Direction(d) => write!(f, "a={}", d.as_str()),
            Line::RtpMap { pt, encoding } => write!(f, "a=rtpmap:{pt} {encoding}"),
            Line::Fmtp { pt, params } => write!(f, "a=fmtp:{pt} {params}"),
            Line::Rtcp { port, rest } if rest.is_empty() => write!(f, "a=rtcp:{port}"),
            Line::Rtcp { port, rest } => write!(f, "a=rtcp:{port} {rest}"),
            Line::RtcpMux => f.write_str("a=rtcp-mux"),
            Line::Crypto(c) => c.fmt(f),
            Line::UnusableCrypto(c) => f.write_str(c.as_str()),
            Line::Other(s) => f.write_str(s),
        }
    }
}

fn family(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "IP4"
    } else {
        "IP6"
    }
}

/// One m= section: the stream and its own lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// audio, video, application, ...
    pub kind: String,
    /// 0: the stream is disabled (RFC 3264 §5.1), or declined in an answer (§6).
    pub port: u16,
    /// `m=audio 49170/2`: the number of ports, as written.
    pub port_count: Option<u16>,
    pub profile: Profile,
    /// The formats as written: RTP payload types for RTP profiles.
    pub formats: Vec<String>,
    pub lines: Vec<Line>,
}

impl MediaDescription {
    fn parse(m: &str) -> Result<MediaDescription, SdpError> {
        let mut f = m.split_whitespace();
        let (Some(kind), Some(port), Some(profile)) = (f.next(), f.next(), f.next()) else {
            return Err(SdpError::Malformed("m="));
        };
        let (port, count) = port.split_once('/').map_or((port, None), |(p, n)| (p, Some(n)));
        let port = port.parse().map_err(|_| SdpError::Malformed("m="))?;
        let port_count = count.map(|n| n.parse().map_err(|_| SdpError::Malformed("m="))).transpose()?;
        Ok(MediaDescription {
            kind: kind.to_string(),
            port,
            port_count,
            profile: Profile::parse(profile),
            formats: f.map(str::to_string).collect(),
            lines: Vec::new(),
        })
    }

    /// The RTP payload types, most preferred first.
    pub fn payload_types(&self) -> Vec<u8> {
        self.formats.iter().filter_map(|f| f.parse().ok()).collect()
    }

    pub fn set_payload_types(&mut self, pts: &[u8]) {
        self.formats = pts.iter().map(u8::to_string).collect();
    }

    /// The payload type mapped to telephone-event (RFC 4733), if any.
    pub fn telephone_event(&self) -> Option<u8> {
        self.lines.iter().find_map(|l| match l {
            Line::RtpMap { pt, encoding } if encoding.to_ascii_lowercase().starts_with("telephone-event/") => Some(*pt),
            _ => None,
        })
    }

    /// The SDES keys offered (or the one answered) that the relay can use, in the order written
    /// (the offerer's preference).
    pub fn crypto(&self) -> impl Iterator<Item = &Crypto> {
        self.lines.iter().filter_map(|l| if let Line::Crypto(c) = l { Some(c) } else { None })
    }

    /// Every a=crypto line replaced by `crypto`, and the profile made to match: RTP/SAVP(F)
    /// with keys, RTP/AVP(F) without.
    pub fn set_crypto(&mut self, crypto: &[Crypto]) {
        self.lines.retain(|l| !matches!(l, Line::Crypto(_) | Line::UnusableCrypto(_)));
        self.lines.extend(crypto.iter().cloned().map(Line::Crypto));
        self.profile = match (&self.profile, crypto.is_empty()) {
            (Profile::Savp, true) => Profile::Avp,
            (Profile::Savpf, true) => Profile::Avpf,
            (Profile::Avp, false) => Profile::Savp,
            (Profile::Avpf, false) => Profile::Savpf,
            (other, _) => other.clone(),
        };
    }

    /// Whether the stream is SRTP (RTP/SAVP or RTP/SAVPF).
    pub fn is_secure(&self) -> bool {
        matches!(self.profile, Profile::Savp | Profile::Savpf)
    }

    fn connection(&self) -> Option<IpAddr> {
        self.lines.iter().find_map(|l| if let Line::Connection(c) = l { Some(c.addr) } else { None })
    }

    fn direction(&self) -> Option<Direction> {
        self.lines.iter().find_map(|l| if let Line::Direction(d) = l { Some(*d) } else { None })
    }
}

/// A whole description: the session-level lines, then each stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub session: Vec<Line>,
    pub media: Vec<MediaDescription>,
}

/// The first audio stream of a description, with what it inherits from the session level.
#[derive(Debug, Clone, Copy)]
pub struct Audio<'a> {
    pub media: &'a MediaDescription,
    /// The stream's c= address, else the session's.
    pub connection: Option<IpAddr>,
    /// The stream's direction attribute, else the session's, else sendrecv.
    pub direction: Direction,
}

impl Audio<'_> {
    /// Where to send the stream's RTP; None when it is disabled (port 0) or held by the
    /// connection address 0.0.0.0 (RFC 3264 §8.4).
    pub fn address(&self) -> Option<SocketAddr> {
        let ip = self.connection?;
        (self.media.port != 0 && !ip.is_unspecified()).then_some(SocketAddr::new(ip, self.media.port))
    }

    /// The stream as the relay needs it; None while it has no address (see `address`).
    pub fn remote_media(&self) -> Option<RemoteMedia> {
        let rtp = self.address()?;
        let rtcp = self.media.lines.iter().find_map(|l| match l {
            Line::Rtcp { port, .. } => Some(SocketAddr::new(rtp.ip(), *port)),
            _ => None,
        });
        let telephone_event = self.media.telephone_event();
        Some(RemoteMedia {
            rtp,
            rtcp,
            rtcp_mux: self.media.lines.contains(&Line::RtcpMux),
            // The first format listed is the one in use (RFC 3264 §5.1: most preferred first).
            audio_pt: self.media.payload_types().into_iter().find(|pt| Some(*pt) != telephone_event),
            telephone_event_pt: telephone_event,
            learn_from: None,
        })
    }
}

impl SessionDescription {
    pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
        let mut sd = SessionDescription { session: Vec::new(), media: Vec::new() };
        for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
            if let Some(m) = line.strip_prefix("m=") {
                sd.media.push(MediaDescription::parse(m)?);
                continue;
            }
            let line = Line::parse(line)?;
            match sd.media.last_mut() {
                Some(m) => m.lines.push(line),
                None => sd.session.push(line),
            }
        }
        Ok(sd)
    }

    /// A description of one audio stream of ours at `local`, offering (or answering with)
    /// `payload_types` (G.711), in 20 ms packets, sendrecv.
    pub fn g711(origin: &str, session_id: u64, local: SocketAddr, payload_types: &[u8]) -> SessionDescription {
        let id = session_id.to_string();
        let origin = Origin {
            username: origin.to_string(),
            session_id: id.clone(),
            version: id,
            address_type: family(local.ip()).into(),
            address: local.ip().to_string(),
        };
        let mut audio = MediaDescription {
            kind: "audio".into(),
            port: local.port(),
            port_count: None,
            profile: Profile::Avp,
            formats: Vec::new(),
            lines: payload_types.iter().map(|pt| Line::g711_rtpmap(*pt)).collect(),
        };
        audio.set_payload_types(payload_types);
        audio.lines.push(Line::Other("a=ptime:20".into()));
        audio.lines.push(Line::Direction(Direction::SendRecv));
        SessionDescription {
            session: vec![
                Line::Other("v=0".into()),
                Line::Origin(origin),
                Line::Other("s=-".into()),
                Line::Connection(Connection::new(local.ip())),
                Line::Other("t=0 0".into()),
            ],
            media: vec![audio],
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }

    fn session_connection(&self) -> Option<IpAddr> {
        self.session.iter().find_map(|l| if let Line::Connection(c) = l { Some(c.addr) } else { None })
    }

    fn first_audio_index(&self, profile: Option<&Profile>) -> Option<usize> {
        self.media.iter().position(|m| m.kind == "audio" && profile.is_none_or(|p| &m.profile == p))
    }

    /// The first audio stream, of `profile` when one is named.
    pub fn audio(&self, profile: Option<&Profile>) -> Result<Audio<'_>, SdpError> {
        let media = &self.media[self.first_audio_index(profile).ok_or(SdpError::NoAudio)?];
        let connection = media.connection().or(self.session_connection());
        connection.ok_or(SdpError::NoConnection)?;
        let session_direction = self.session.iter().find_map(|l| if let Line::Direction(d) = l { Some(*d) } else { None });
        let direction = media.direction().or(session_direction).unwrap_or(Direction::SendRecv);
        Ok(Audio { media, connection, direction })
    }

    /// The first audio stream, to change.
    pub fn audio_mut(&mut self) -> Option<&mut MediaDescription> {
        let i = self.first_audio_index(None)?;
        Some(&mut self.media[i])
    }

    /// The payload types of the first audio stream, most preferred first (none without one).
    pub fn audio_formats(&self) -> Vec<u8> {
        self.first_audio_index(None).map(|i| self.media[i].payload_types()).unwrap_or_default()
    }

    /// An offer that also lists the other G.711 law when it has only one (least preferred), so
    /// the far side may pick either: the relay transcodes µ-law <-> A-law between the two.
    pub fn offer_both_g711(&mut self) {
        let Some(i) = self.first_audio_index(None) else { return };
        let audio = &mut self.media[i];
        let formats = audio.payload_types();
        let extra = match (formats.contains(&PT_PCMU), formats.contains(&PT_PCMA)) {
            (true, false) => PT_PCMA,
            (false, true) => PT_PCMU,
            _ => return,
        };
        audio.formats.push(extra.to_string());
        audio.lines.insert(0, Line::g711_rtpmap(extra));
    }

    /// Fits an answer to what its offerer offered (RFC 3264 §6.1: only formats it offered):
    /// formats it did not offer are left out, and when the answerer chose the G.711 law the
    /// offerer did not offer, the other law (which it did) stands in its place; the relay
    /// transcodes. Returns the payload type the offerer will send.
    pub fn answer_for(&mut self, offered: &[u8]) -> Option<u8> {
        let i = self.first_audio_index(None)?;
        let audio = &mut self.media[i];
        let formats = audio.payload_types();
        let swap = match formats.first().copied() {
            Some(c @ (PT_PCMU | PT_PCMA)) if !offered.contains(&c) => {
                let other = if c == PT_PCMU { PT_PCMA } else { PT_PCMU };
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
            return formats.first().copied();
        }
        audio.set_payload_types(&kept);
        audio.lines.retain_mut(|line| {
            let (&mut Line::RtpMap { pt, .. } | &mut Line::Fmtp { pt, .. }) = line else { return true };
            match swap {
                Some((from, to)) if pt == from && matches!(line, Line::RtpMap { .. }) => {
                    *line = Line::g711_rtpmap(to);
                    true
                }
                _ => kept.contains(&pt) && swap.is_none_or(|(from, _)| pt != from),
            }
        });
        kept.first().copied()
    }

    /// Every direction attribute removed: sendrecv, the default (RFC 3264 §5.1). A held party's
    /// last description offered to a new peer must not keep the hold.
    pub fn sendrecv(&mut self) {
        let not_direction = |l: &Line| !matches!(l, Line::Direction(_));
        self.session.retain(not_direction);
        for m in &mut self.media {
            m.lines.retain(not_direction);
        }
    }

    /// Points the description at a relay: every connection address (and the origin's) becomes
    /// `relay.ip()`, the first audio stream's port `relay.port()` with RTCP on the next port
    /// (its a=rtcp lines dropped). Other streams are declined (port 0): the relay carries audio.
    /// Every SDES key goes: the relay ends SRTP on each leg, and a leg's keys are its own (the
    /// caller sets ours with `MediaDescription::set_crypto`).
    pub fn point_at(&mut self, relay: SocketAddr) -> Result<(), SdpError> {
        let audio = self.first_audio_index(None).ok_or(SdpError::NoAudio)?;
        let readdress = |line: &mut Line| match line {
            Line::Connection(c) => *c = Connection::new(relay.ip()),
            Line::Origin(o) => {
                o.address_type = family(relay.ip()).into();
                o.address = relay.ip().to_string();
            }
            _ => {}
        };
        self.session.retain(|l| !matches!(l, Line::Crypto(_) | Line::UnusableCrypto(_)));
        self.session.iter_mut().for_each(readdress);
        for (i, m) in self.media.iter_mut().enumerate() {
            m.lines.iter_mut().for_each(readdress);
            m.port_count = None;
            m.lines.retain(|l| !matches!(l, Line::Crypto(_) | Line::UnusableCrypto(_)));
            if i == audio {
                m.port = relay.port();
                m.lines.retain(|l| !matches!(l, Line::Rtcp { .. }));
            } else {
                m.port = 0;
            }
        }
        Ok(())
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.session {
            write!(f, "{line}\r\n")?;
        }
        for m in &self.media {
            write!(f, "m={} {}", m.kind, m.port)?;
            if let Some(n) = m.port_count {
                write!(f, "/{n}")?;
            }
            write!(f, " {}", m.profile.as_str())?;
            for format in &m.formats {
                f.write_char(' ')?;
                f.write_str(format)?;
            }
            f.write_str("\r\n")?;
            for line in &m.lines {
                write!(f, "{line}\r\n")?;
            }
        }
        Ok(())
    }
}

/// The G.711 law to answer `offered` with: `preferred` if offered, else the other law.
pub fn choose_g711(offered: &[u8], preferred: u8) -> Option<u8> {
    if offered.contains(&preferred) {
        return Some(preferred);
    }
    offered.iter().copied().find(|pt| matches!(*pt, PT_PCMU | PT_PCMA))
}

#[cfg(test)]
mod tests;
