//! Mid-call offers (re-INVITE and UPDATE: hold, resume, codec changes) relayed from one dialog
//! to the other, the SDP pointed at the relay both ways as at call setup.
use super::srtp::{LegSrtp, Rekey};
use super::{relay_sdp, respond, send_in_dialog, B2bua, Media, Output};
use holdfast_media::srtp::LegKeys;
use holdfast_media::Side;
use holdfast_sip::message::{HeaderName, Method, Request, Response};
use holdfast_sip::transaction::{Transactions, TxEvent, TxId};
use std::time::Instant;

/// A mid-call request waiting for the other side's answer.
#[derive(Debug)]
pub(super) struct Relayed {
    /// Its server transaction on the side that sent it; none for our own offer (the
    /// transferee re-INVITEd towards a transfer's target), whose answer stays here.
    pub(super) server: Option<TxId>,
    pub(super) from: Side,
    pub(super) request: Request,
    /// Our client transaction on the other side, and its CSeq.
    pub(super) client: TxId,
    pub(super) seq: u32,
    /// The offerer's SRTP as its offer makes it (a new key, RFC 4568 §7.1.4): taken when the
    /// offer is accepted (2xx), dropped when it is not.
    pub(super) rekey: Option<(LegSrtp, LegKeys)>,
}

impl Relayed {
    pub(super) fn client(&self) -> TxId {
        self.client
    }
}

impl<M: Media> B2bua<M> {
    /// The SDP for side `to` of a body side `from` sent: `from`'s media noted for the relay, the
    /// audio pointed at the relay port `to` sends to.
    fn mid_call_sdp(&mut self, key: u64, from: Side, body: &[u8]) -> Vec<u8> {
        let Some(call) = self.calls.get_mut(&key) else { return body.to_vec() };
        call.set_sdp(from, body);
        let Some((id, a_port, b_port)) = call.media else { return body.to_vec() };
        if body.is_empty() {
            return Vec::new();
        }
        if let Some(remote) = relay_sdp::remote(body) {
            self.media.set_remote(id, from, remote);
        }
        let port = match from {
            Side::A => b_port,
            Side::B => a_port,
        };
        relay_sdp::point(body, port, call.srtp[super::ix(from.other())].lines())
    }

    /// A re-INVITE or UPDATE from side `from` of call `key`, in server transaction `id`.
    pub(super) fn relay_offer(&mut self, txns: &mut Transactions, key: u64, from: Side, id: TxId, request: Request, now: Instant) {
        let busy = self.calls.get(&key).is_some_and(|c| c.relayed.is_some());
        if busy {
            // RFC 3261 §14.2: one offer at a time.
            return respond(txns, id, request.response(491), now);
        }
        let Some(call) = self.calls.get_mut(&key) else { return };
        let mut leg = call.srtp[super::ix(from)].clone();
        let reoffer = if request.body.is_empty() { Rekey::Unchanged } else { leg.reoffered(&request.body, &mut self.ids) };
        let rekey = match reoffer {
            Rekey::Unchanged => None,
            Rekey::Rekeyed(keys) => Some((leg, keys)),
            Rekey::Refused => {
                log::info!("call {}: a mid-call offer without a key its SRTP leg can use, refused 488", call.cdr.call_id);
                return respond(txns, id, request.response(488), now);
            }
        };
        let body = self.mid_call_sdp(key, from, &request.body);
        let local = self.config.local;
        let Some(call) = self.calls.get_mut(&key) else { return };
        let sips = call.sips();
        let other = match from {
            Side::A => call.b_dialog.as_mut(),
            Side::B => call.a_dialog.as_mut(),
        };
        let Some(dialog) = other else { return respond(txns, id, request.response(491), now) };
        let mut out = dialog.request(request.method.clone(), local, &mut self.ids);
        out.headers.add(HeaderName::Contact, self.config.contact_of(dialog.transport, sips));
        if !body.is_empty() {
            out.headers.add(HeaderName::ContentType, "application/sdp");
            out.body = body;
        }
        let seq = dialog.local_cseq;
        let (dest, transport) = (dialog.dest, dialog.transport);
        match txns.send_request(out, dest, transport, now) {
            Ok(client) => {
                self.by_client.insert(client, key);
                call.relayed = Some(Relayed { server: Some(id), from, request, client, seq, rekey });
            }
            Err(e) => {
                log::debug!("mid-call {} not relayed: {e}", request.method);
                respond(txns, id, request.response(500), now);
            }
        }
    }

    /// The other side's answer to a relayed offer.
    pub(super) fn relayed_event(&mut self, txns: &mut Transactions, key: u64, event: &TxEvent, now: Instant) {
        let response = match event {
            TxEvent::Response(r) if r.status >= 200 => r.clone(),
            TxEvent::TimedOut(r) => r.clone(),
            TxEvent::TransportError => Response::new(503),
            _ => return,
        };
        let Some(relayed) = self.calls.get_mut(&key).and_then(|c| c.relayed.take()) else { return };
        let answerer = match relayed.from {
            Side::A => Side::B,
            Side::B => Side::A,
        };
        let local = self.config.local;
        if (200..300).contains(&response.status) && relayed.request.method == Method::INVITE {
            let call = self.calls.get(&key);
            let dialog = call.and_then(|c| if answerer == Side::B { c.b_dialog.as_ref() } else { c.a_dialog.as_ref() });
            if let Some(d) = dialog {
                self.outputs.push_back(Output::Send { request: d.ack(relayed.seq, local, &mut self.ids), dest: d.dest, transport: d.transport });
            }
        }
        if (200..300).contains(&response.status) {
            self.rekey(key, relayed.from, relayed.rekey);
            let leg = self.calls.get_mut(&key).map(|c| c.srtp[super::ix(answerer)].reanswered(&response.body));
            if let Some(Rekey::Rekeyed(keys)) = leg {
                self.rekey_relay(key, answerer, keys);
            }
        }
        let body = self.mid_call_sdp(key, answerer, &response.body);
        let mut out = relayed.request.response(response.status);
        out.reason = response.reason.clone();
        if (200..300).contains(&response.status) {
            let call = self.calls.get(&key);
            let requester = call.and_then(|c| if relayed.from == Side::A { c.a_dialog.as_ref() } else { c.b_dialog.as_ref() });
            if let Some(d) = requester {
                out.headers.add(HeaderName::Contact, self.config.contact_of(d.transport, call.is_some_and(|c| c.sips())));
            }
        }
        if !body.is_empty() {
            out.headers.add(HeaderName::ContentType, "application/sdp");
            out.body = body;
        }
        if let Some(server) = relayed.server {
            respond(txns, server, out, now);
        }
        // A 481 or 408 to a mid-call request ends the dialog (RFC 5057): end the call.
        if matches!(response.status, 408 | 481) {
            self.hang_up(txns, key, relayed.from, now);
        }
    }

    /// Side `side` of call `key` takes the SRTP its accepted offer made.
    fn rekey(&mut self, key: u64, side: Side, rekey: Option<(LegSrtp, LegKeys)>) {
        let (Some(call), Some((leg, keys))) = (self.calls.get_mut(&key), rekey) else { return };
        call.srtp[super::ix(side)] = leg;
        self.rekey_relay(key, side, keys);
    }

    fn rekey_relay(&mut self, key: u64, side: Side, keys: LegKeys) {
        if let Some((id, ..)) = self.calls.get(&key).and_then(|c| c.media) {
            self.media.set_crypto(id, side, Some(keys));
        }
    }

    /// Ends an answered call from our side: BYE to side `to`.
    pub(super) fn hang_up(&mut self, txns: &mut Transactions, key: u64, to: Side, now: Instant) {
        let local = self.config.local;
        let Some(call) = self.calls.get_mut(&key) else { return };
        let dialog = if to == Side::A { call.a_dialog.as_mut() } else { call.b_dialog.as_mut() };
        if let Some(d) = dialog {
            let bye = d.request(Method::BYE, local, &mut self.ids);
            let d = d.clone();
            send_in_dialog(txns, &mut self.by_client, key, bye, &d, now);
        }
        if call.cdr.end_cause.is_empty() {
            call.cdr.end_cause = "dialog lost on a mid-call request".into();
        }
        self.end(txns, key, now);
    }
}
