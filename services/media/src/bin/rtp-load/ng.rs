//! A minimal client of rtpengine's ng control protocol: `<cookie> <bencode>`
//! over UDP, offer/answer to allocate a call's ports, delete to free them.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};

use crate::bencode::{decode, Value};
use holdfast_media::srtp::{MasterKey, Suite};

pub struct NgClient {
    socket: UdpSocket,
    cookie: u64,
}

impl NgClient {
    pub fn connect(server: SocketAddr) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind(("127.0.0.1", 0))?;
        socket.connect(server)?;
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(NgClient { socket, cookie: 0 })
    }

    fn request(&mut self, entries: Vec<(&str, Value)>) -> anyhow::Result<Value> {
        self.cookie += 1;
        let cookie = format!("hf{}", self.cookie);
        let mut msg = format!("{cookie} ").into_bytes();
        Value::Dict(entries.into_iter().map(|(k, v)| (k.as_bytes().to_vec(), v)).collect()).encode(&mut msg);
        self.socket.send(&msg)?;
        let mut buf = vec![0u8; 65_536];
        loop {
            let n = self.socket.recv(&mut buf).context("no reply from rtpengine")?;
            let reply = &buf[..n];
            let Some(rest) = reply.strip_prefix(format!("{cookie} ").as_bytes()) else { continue };
            let value = decode(rest)?;
            match value.get("result").and_then(Value::as_text) {
                Some("ok") => return Ok(value),
                other => bail!("rtpengine answered {other:?}: {:?}", value.get("error-reason").and_then(Value::as_text)),
            }
        }
    }

    /// Offer (caller's SDP) then answer (callee's SDP). Returns the relay ports facing the
    /// caller and the callee. With `srtp_key` (SDES, RFC 4568), both sides send RTP/SAVP under
    /// that key: the caller offers it as `CALLER_SUITE`, the callee answers it as
    /// `CALLEE_SUITE`, under the tag rtpengine's offer gave that suite. The suites differ so that
    /// rtpengine decrypts what each side sends and encrypts it again for the other, as
    /// Holdfast's relay does: where both sides' crypto parameters are alike, rtpengine forwards
    /// SRTP untouched (its crypto_params_cmp). Also the keys rtpengine encrypts with towards
    /// the caller (in its answer) and the callee (in its offer), so what they hear is checked.
    pub fn allocate(&mut self, call_id: &str, caller: SocketAddr, callee: SocketAddr, srtp_key: Option<&str>) -> anyhow::Result<Allocated> {
        let crypto = |tag: &str, suite: Suite| srtp_key.map(|key| format!("a=crypto:{tag} {suite} inline:{key}\r\n")).unwrap_or_default();
        let offer = self.request(vec![
            ("command", Value::str("offer")),
            ("call-id", Value::str(call_id)),
            ("from-tag", Value::str("caller")),
            ("sdp", Value::str(&sdp(caller, &crypto("1", CALLER_SUITE)))),
        ])?;
        let to_callee = media_port(&offer)?;
        let for_callee = match srtp_key {
            Some(_) => Some(crypto_line(&offer, CALLEE_SUITE)?),
            None => None,
        };
        let tag = for_callee.as_ref().map(|(tag, _)| tag.as_str()).unwrap_or_default();
        let answer = self.request(vec![
            ("command", Value::str("answer")),
            ("call-id", Value::str(call_id)),
            ("from-tag", Value::str("caller")),
            ("to-tag", Value::str("callee")),
            ("sdp", Value::str(&sdp(callee, &crypto(tag, CALLEE_SUITE)))),
        ])?;
        let heard = match for_callee {
            Some((_, callee_hears)) => {
                let (_, caller_hears) = crypto_line(&answer, CALLER_SUITE)?;
                Some((caller_hears, callee_hears))
            }
            None => None,
        };
        Ok(Allocated { ports: (media_port(&answer)?, to_callee), heard })
    }

    pub fn delete(&mut self, call_id: &str) -> anyhow::Result<()> {
        self.request(vec![
            ("command", Value::str("delete")),
            ("call-id", Value::str(call_id)),
            ("from-tag", Value::str("caller")),
        ])
        .map(drop)
    }
}

/// One call's relay ports (facing the caller, facing the callee) and, with SRTP, the keys
/// rtpengine encrypts with towards each.
pub struct Allocated {
    pub ports: (u16, u16),
    pub heard: Option<(MasterKey, MasterKey)>,
}

pub const CALLER_SUITE: Suite = Suite::AesCm128HmacSha1_80;
pub const CALLEE_SUITE: Suite = Suite::AesCm128HmacSha1_32;

/// A description of one PCMU stream at `at`; RTP/SAVP with a `crypto` line, RTP/AVP without.
fn sdp(at: SocketAddr, crypto: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=bench\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} {profile} 0\r\na=rtpmap:0 PCMU/8000\r\n{crypto}a=sendrecv\r\n",
        ip = at.ip(),
        port = at.port(),
        profile = if crypto.is_empty() { "RTP/AVP" } else { "RTP/SAVP" }
    )
}

/// The tag and key of `suite`'s a=crypto line in a description rtpengine wrote.
fn crypto_line(reply: &Value, suite: Suite) -> anyhow::Result<(String, MasterKey)> {
    let sdp = reply.get("sdp").and_then(Value::as_text).ok_or(anyhow!("reply without SDP"))?;
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=crypto:"))
        .find_map(|rest| {
            let mut f = rest.split(' ');
            let tag = f.next()?;
            (f.next()? == suite.name()).then_some(())?;
            let key = f.next()?.strip_prefix("inline:")?.split('|').next()?;
            Some((tag.to_string(), MasterKey::from_base64(suite, key).ok()?))
        })
        .ok_or(anyhow!("rtpengine gave no usable {suite} key: {sdp:?}"))
}

fn media_port(reply: &Value) -> anyhow::Result<u16> {
    let sdp = reply.get("sdp").and_then(Value::as_text).ok_or(anyhow!("reply without SDP"))?;
    sdp.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .ok_or(anyhow!("no m=audio port in {sdp:?}"))
}
