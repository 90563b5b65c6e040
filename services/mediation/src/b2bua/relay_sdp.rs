//! What the relay does to the descriptions the B2BUA passes on: each side is told the relay's
//! port for it, an offer lists both G.711 laws (the relay transcodes), an answer is fitted to
//! what its offerer offered, and each side gets the SRTP keys of its own leg (`keys`: none,
//! plain RTP/AVP), never the other side's. A body that is no usable SDP passes as it came.
use holdfast_media::RemoteMedia;
use holdfast_sip::message::{HeaderName, NameAddr, Request, Response, Via};
use holdfast_telephony::sdp::{Crypto, SessionDescription};
use std::net::{IpAddr, SocketAddr};

/// The audio stream a body describes, for the relay; None without one, or while it is held by
/// the address 0.0.0.0 or disabled (the relay keeps what it had).
pub(super) fn remote(body: &[u8]) -> Option<RemoteMedia> {
    media(&SessionDescription::parse(body).ok()?)
}

/// `remote` of a description already read.
pub(super) fn media(sd: &SessionDescription) -> Option<RemoteMedia> {
    sd.audio(None).ok()?.remote_media()
}

/// The IP a call's originator sent its INVITE from, as the first proxy saw it: the bottom Via's
/// `received`, else its host. A phone behind NAT sends its media from there too, whatever its
/// SDP says: the relay may learn its port from that IP (strict source otherwise).
pub(super) fn originator_ip(invite: &Request) -> Option<IpAddr> {
    let bottom = invite.headers.get_all(&HeaderName::Via).last()?.rsplit(',').next()?;
    let via = Via::parse(bottom.trim()).ok()?;
    let received = via.params.value("received").and_then(|r| r.parse().ok());
    received.or(via.host.ip())
}

/// The IP of the UA that answered (its Contact): behind a proxy (the registrar) mediation never
/// sees where a phone signals from, and a phone whose SDP names another of its addresses (or a
/// private one) sends its media from the address it signals with.
pub(super) fn answerer_ip(response: &Response) -> Option<IpAddr> {
    let contact = response.headers.get(&HeaderName::Contact)?.split(',').next()?;
    NameAddr::parse(contact.trim()).ok()?.uri.as_sip()?.host.ip()
}

/// An offer for the other side: both G.711 laws listed, pointed at `relay` (the relay's port
/// that side sends to) with that side's `keys`; `sendrecv` drops a hold the description had
/// (a transfer's new peer).
pub(super) fn offer(body: &[u8], relay: Option<SocketAddr>, keys: &[Crypto], sendrecv: bool) -> Vec<u8> {
    let Ok(mut sd) = SessionDescription::parse(body) else { return body.to_vec() };
    if sendrecv {
        sd.sendrecv();
    }
    if let Some(relay) = relay {
        sd.offer_both_g711();
        if point_at(&mut sd, relay, keys).is_err() {
            return body.to_vec();
        }
    }
    sd.to_bytes()
}

fn point_at(sd: &mut SessionDescription, relay: SocketAddr, keys: &[Crypto]) -> Result<(), ()> {
    sd.point_at(relay).map_err(|_| ())?;
    if let Some(audio) = sd.audio_mut() {
        audio.set_crypto(keys);
    }
    Ok(())
}

/// An answer for the side that offered `offered`: only formats it offered (the other G.711 law
/// standing in for the one it did not), pointed at `relay` with that side's `keys`. Also the
/// payload type that side will send; None for a body that is no usable SDP.
pub(super) fn answer(body: &[u8], offered: &[u8], relay: SocketAddr, keys: &[Crypto]) -> (Vec<u8>, Option<u8>) {
    let Ok(mut sd) = SessionDescription::parse(body) else { return (body.to_vec(), None) };
    let pt = sd.answer_for(offered);
    match point_at(&mut sd, relay, keys) {
        Ok(()) => (sd.to_bytes(), pt),
        Err(()) => (body.to_vec(), pt),
    }
}

/// A mid-call description pointed at `relay` with the receiving side's `keys`, nothing else
/// changed.
pub(super) fn point(body: &[u8], relay: SocketAddr, keys: &[Crypto]) -> Vec<u8> {
    let Ok(mut sd) = SessionDescription::parse(body) else { return body.to_vec() };
    match point_at(&mut sd, relay, keys) {
        Ok(()) => sd.to_bytes(),
        Err(()) => body.to_vec(),
    }
}
