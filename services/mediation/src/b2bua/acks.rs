//! ACKs outside transactions, both ways (RFC 3261 §13.2.2.4, §13.3.1.4): A's ACK for our 2xx
//! (which `AckWait` sends again until it comes), and ours again for a 2xx B sent again.
use super::srtp::OfferAnswer;
use super::{ix, relay_sdp, Answered, B2bua, Leg, Media, Named, Output, State};
use holdfast_media::Side;
use holdfast_sip::message::{HeaderName, Method, Request, Response};
use holdfast_sip::transaction::Transactions;
use holdfast_sip::transport::Protocol;
use holdfast_telephony::ack_wait::AckDue;
use holdfast_telephony::cause;
use std::net::SocketAddr;
use std::time::Instant;

impl<M: Media> B2bua<M> {
    /// An ACK outside any transaction: for the 2xx of one of our A dialogs, it stops the
    /// retransmissions; after a late offer it carries A's answer, which B's ACK takes on. A
    /// mandatory SRTP leg that answers our keys with none of them has no media: the call ends
    /// (B acknowledged first, then BYE both ways).
    /// An ACK from another than A's peer is dropped (`trust::speaks_for`).
    pub fn on_ack(&mut self, txns: &mut Transactions, ack: &Request, source: SocketAddr, transport: Protocol, now: Instant) {
        let Named::Leg(key, Side::A) = self.named_leg(ack, source, transport) else { return };
        let Some(call) = self.calls.get_mut(&key) else { return };
        call.acked();
        call.set_sdp(Side::A, &ack.body);
        let State::Answered(Answered { late_ack, .. }) = &mut call.state else { return };
        let Some((Output::Send { mut request, dest, transport }, b_offered)) = late_ack.take() else { return };
        let a_keys = call.srtp[ix(Side::A)].answer_to_offer(&ack.body);
        if !ack.body.is_empty() {
            request.headers.add(HeaderName::ContentType, "application/sdp");
            request.body = match (call.media, b_offered) {
                (Some((id, _, b_port)), Some(offered)) => {
                    // Through the relay: A's keys, then its media (nothing reaches A before
                    // it is keyed), its answer in a law B offered (the relay transcodes),
                    // pointed at the relay's B port.
                    if let OfferAnswer::Keyed(keys) = &a_keys {
                        self.media.set_crypto(id, Side::A, Some(keys.clone()));
                    }
                    if let Some(a) = relay_sdp::remote(&ack.body).filter(|_| a_keys != OfferAnswer::Unkeyed) {
                        self.media.set_remote(id, Side::A, a);
                    }
                    let (for_b, b_pt) = relay_sdp::answer(&ack.body, &offered, b_port, call.srtp[ix(Side::B)].lines());
                    if let Some(mut b) = relay_sdp::remote(&call.sdp[ix(Side::B)]) {
                        b.audio_pt = b_pt;
                        self.media.set_remote(id, Side::B, b);
                    }
                    for_b
                }
                _ => ack.body.clone(),
            };
        }
        self.outputs.push_back(Output::Send { request, dest, transport });
        if a_keys == OfferAnswer::Unkeyed {
            log::info!("call {}: the caller answered our SRTP offer without a key of ours (srtp = mandatory)", call.cdr.call_id);
            self.bye_both(txns, key, cause::for_sip_status(488), "caller answered without SRTP (srtp = mandatory)", now);
        }
    }

    /// A response no transaction claims: a 2xx to an INVITE of ours retransmitted because our
    /// ACK was lost is acknowledged again (§13.2.2.4).
    pub fn on_stray_response(&mut self, r: &Response) {
        let is_invite_2xx = (200..300).contains(&r.status) && r.cseq().is_ok_and(|c| c.method == Method::INVITE);
        if !is_invite_2xx {
            return;
        }
        let tag = r.from_header().ok().and_then(|f| f.tag().map(str::to_string)).unwrap_or_default();
        let call_id = r.call_id().unwrap_or_default().to_string();
        let Some(&Leg { call: key, side, .. }) = self.by_dialog.get(&(call_id, tag)) else { return };
        let Some(call) = self.calls.get(&key) else { return };
        let Some(d) = (if side == Side::A { call.a_dialog.as_ref() } else { call.b_dialog.as_ref() }) else { return };
        let seq = r.cseq().map(|c| c.seq).unwrap_or(1);
        let ack = Output::Send { request: d.ack(seq, self.config.local, &mut self.ids), dest: d.dest, transport: d.transport };
        self.outputs.push_back(ack);
    }

    /// Retransmits due 2xx responses (T1 doubling up to T2); ends calls never acknowledged.
    pub(super) fn retransmit_due(&mut self, txns: &mut Transactions, now: Instant) {
        let mut lost = Vec::new();
        for (key, call) in self.calls.iter_mut() {
            let State::Answered(Answered { unacked: Some(wait), .. }) = &mut call.state else { continue };
            match wait.handle_timeout(now) {
                AckDue::Nothing => {}
                AckDue::Retransmit(ok) => self.outputs.push_back(Output::Respond(ok.clone())),
                AckDue::GaveUp => lost.push(*key),
            }
        }
        for key in lost {
            log::warn!("call {key}: no ACK for our 2xx, ended");
            if let Some(call) = self.calls.get_mut(&key) {
                call.acked();
                call.cdr.end_cause = "no ACK from caller".into();
            }
            self.hang_up(txns, key, Side::B, now);
        }
    }
}
