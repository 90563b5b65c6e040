//! Blind transfer toward the PSTN (RFC 3515 REFER): either party of an answered call may refer
//! the other (the transferee) to a number. The new call goes out through the same
//! normalization, voice policy and routes as a branch call, under the policy of the call's
//! branch user (toll-fraud guard: a refused number is answered 403 to the REFER itself). The
//! referrer hears how it goes by NOTIFY (message/sipfrag); once the target answers it takes the
//! referrer's place (its dialog slot and its side of the relay), the transferee is re-INVITEd
//! towards it and the referrer's dialog ends. The transfer has its own call record.
use super::messages::{new_invite, user_of};
use super::session::Relayed;
use super::failover::{self, Failure, Hunt};
use super::{cancel, relay_sdp, respond, send_in_dialog, srtp, timers, Attempt, B2bua, Direction, Leg, Media, Output, SrtpPolicy};
use holdfast_media::Side;
use holdfast_sip::message::{HeaderName, Method, NameAddr, Request, Response, Uri};
use holdfast_sip::transaction::{Transactions, TxEvent, TxId};
use holdfast_store::Cdr;
use holdfast_telephony::dialog::Dialog;
use holdfast_telephony::{cause, privacy, reason};
use std::time::Instant;

#[derive(Debug)]
pub(super) struct Transfer {
    referrer: Side,
    /// The REFER's CSeq: the id of its implicit subscription (RFC 3515 §2.4.6).
    event_id: u32,
    /// False when the REFER said `Refer-Sub: false` (RFC 4488): no NOTIFYs.
    notify: bool,
    hunt: Hunt,
    cdr: Cdr,
}

impl Transfer {
    pub(super) fn attempt(&self) -> Option<&Attempt> {
        self.hunt.attempt.as_ref()
    }

    pub(super) fn attempt_mut(&mut self) -> Option<&mut Attempt> {
        self.hunt.attempt.as_mut()
    }
}

/// The number a REFER's Refer-To names, or the status refusing it.
fn refer_target(refer: &Request) -> Result<String, (u16, &'static str)> {
    let value = refer.headers.get(&HeaderName::ReferTo).ok_or((400, "Bad Request (no Refer-To)"))?;
    let uri = NameAddr::parse(value).map(|n| n.uri).map_err(|_| (400, "Bad Request (Refer-To)"))?;
    if let Uri::Sip(sip) = &uri {
        if sip.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("replaces")) {
            return Err((501, "Not Implemented (attended transfer)"));
        }
    }
    user_of(&uri).filter(|u| !u.is_empty()).ok_or((400, "Bad Request (Refer-To names no number)"))
}

impl<M: Media> B2bua<M> {
    /// A REFER from side `referrer` of call `key`, in server transaction `id`.
    pub(super) fn on_refer(&mut self, txns: &mut Transactions, key: u64, referrer: Side, id: TxId, refer: Request, now: Instant) {
        let wall = self.wall(now);
        let Some(call) = self.calls.get(&key) else { return };
        if !call.is_answered() || call.transfer.is_some() {
            return respond(txns, id, refer.response(491), now);
        }
        let number = match refer_target(&refer) {
            Ok(n) => n,
            Err((status, reason)) => {
                let mut r = refer.response(status);
                r.reason = reason.into();
                return respond(txns, id, r, now);
            }
        };
        // A transfer places a call under the branch user's voice policy (crate::trust).
        let trunk = match referrer {
            // The registrar first, as on_request decides: a trunk may share its IP.
            Side::A if call.source == self.config.registrar => None,
            Side::A => self.plan.trunk_from(call.source),
            Side::B => self.plan.trunks.iter().find(|t| t.name == call.cdr.trunk),
        };
        let user = match crate::trust::may_transfer(trunk, call.branch_user.as_deref()) {
            Ok(user) => user.to_string(),
            Err(reason) => {
                let mut r = refer.response(403);
                r.reason = reason;
                return respond(txns, id, r, now);
            }
        };
        if call.sdp[super::ix(referrer.other())].is_empty() {
            return respond(txns, id, refer.response(488), now);
        }
        let by = refer.from_header().ok().and_then(|f| user_of(&f.uri)).unwrap_or_default();
        // A withheld call stays withheld: the target will talk to whoever hid their identity in
        // it, so the transfer shows no number either (a trunk still gets it asserted).
        let withheld = privacy::withheld(&call.invite) || privacy::withheld(&refer);
        let mut cdr = Cdr {
            call_id: call.cdr.call_id.clone(),
            direction: Direction::Outbound.as_str().into(),
            setup_at: wall,
            caller: user.clone(),
            callee_dialled: number.clone(),
            referred_by: Some(by),
            transfer_of: Some(call.cdr.call_id.clone()),
            ..Cdr::default()
        };
        let mut targets = match self.outbound_targets(&user, &user, &number, &mut cdr) {
            Ok(t) => t,
            Err(refusal) => {
                log::info!("call {}: transfer to {number} refused: {}", cdr.call_id, refusal.reason);
                return self.refuse(txns, id, &refer, &refusal, cdr, "transfer refused", now);
            }
        };
        for t in &mut targets {
            t.withheld = withheld;
        }
        let notify = !refer.headers.get(&HeaderName::Other("Refer-Sub".into())).is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
        let mut accepted = refer.response(202);
        if !notify {
            accepted.headers.add(HeaderName::Other("Refer-Sub".into()), "false");
        }
        respond(txns, id, accepted, now);
        let event_id = refer.cseq().map(|c| c.seq).unwrap_or(1);
        if let Some(call) = self.calls.get_mut(&key) {
            call.transfer = Some(Transfer { referrer, event_id, notify, hunt: Hunt::new(targets), cdr });
        }
        self.notify(txns, key, "SIP/2.0 100 Trying", false, now);
        self.transfer_next(txns, key, now);
    }

    /// Tells the referrer how its transfer goes: `sipfrag` is a status line; `last` ends the
    /// implicit subscription.
    fn notify(&mut self, txns: &mut Transactions, key: u64, sipfrag: &str, last: bool, now: Instant) {
        let local = self.config.local;
        let Some(call) = self.calls.get_mut(&key) else { return };
        let Some(t) = call.transfer.as_ref().filter(|t| t.notify) else { return };
        let (referrer, event_id) = (t.referrer, t.event_id);
        let Some(d) = call.dialog(referrer).as_mut() else { return };
        let mut n = d.request(Method::parse("NOTIFY"), local, &mut self.ids);
        n.headers.add(HeaderName::Contact, self.config.contact(d.transport));
        n.headers.add(HeaderName::Event, format!("refer;id={event_id}"));
        let state = if last { "terminated;reason=noresource" } else { "active;expires=60" };
        n.headers.add(HeaderName::Other("Subscription-State".into()), state);
        n.headers.add(HeaderName::ContentType, "message/sipfrag;version=2.0");
        n.body = format!("{sipfrag}\r\n").into_bytes();
        let d = d.clone();
        send_in_dialog(txns, &mut self.by_client, key, n, &d, now);
    }

    /// Calls the transfer's next live target, or fails the transfer when none is left.
    fn transfer_next(&mut self, txns: &mut Transactions, key: u64, now: Instant) {
        let local = self.config.local;
        let Some(call) = self.calls.get_mut(&key) else { return };
        let Some(t) = call.transfer.as_mut() else { return };
        let transferee = t.referrer.other();
        let relay = call.media.map(|(_, a, b)| if t.referrer == Side::A { a } else { b });
        // The transferee's last SDP, sendrecv again (the referrer usually held it first). Through
        // the relay the target is offered SRTP with fresh keys of ours when its leg is
        // mandatory, plain RTP otherwise; its leg's keys (in the referrer's place) go to the
        // relay when it answers.
        let transferee_sdp = &call.sdp[super::ix(transferee)];
        let (config, ids, plan) = (&self.config, &mut self.ids, &self.plan);
        let called = t.hunt.call_next(txns, &self.dead, &mut t.cdr, now + config.no_answer, now, |target| {
            let keys = if relay.is_some() { srtp::offer(target.srtp, plan.srtp_suites(target.hop.trunk()), ids) } else { Vec::new() };
            let offer = relay_sdp::offer(transferee_sdp, relay, &keys, true);
            (new_invite(target, local, &config.contact(target.transport), 70, offer, ids), keys)
        });
        match called {
            Ok(client) => {
                // The transfer's record is its own call's.
                t.cdr.call_id = t.hunt.attempt.as_ref().and_then(|a| a.invite.call_id().ok()).unwrap_or_default().to_string();
                self.by_client.insert(client, key);
            }
            Err((status, reason, why)) => self.transfer_failed(txns, key, status, &reason, None, &why, now),
        }
    }

    /// An event of the transfer's INVITE.
    pub(super) fn transfer_event(&mut self, txns: &mut Transactions, key: u64, event: &TxEvent, now: Instant) {
        match event {
            TxEvent::Response(r) => self.transfer_response(txns, key, r.clone(), now),
            TxEvent::TimedOut(r) => self.transfer_trunk_failed(txns, key, r.status, "Request Timeout", "timeout", now),
            TxEvent::TransportError => self.transfer_trunk_failed(txns, key, 503, "Service Unavailable", "transport error", now),
            _ => {}
        }
    }

    fn transfer_response(&mut self, txns: &mut Transactions, key: u64, mut r: Response, now: Instant) {
        failover::callee_cause(&mut r);
        if r.status == 422 {
            let retried = self.calls.get_mut(&key).and_then(|c| c.transfer.as_mut()?.hunt.attempt.as_mut()).and_then(|a| a.retry_422(txns, &r, now, &mut self.ids));
            if let Some((old, new)) = retried {
                self.by_client.remove(&old);
                self.by_client.insert(new, key);
                return;
            }
        }
        let Some(attempt) = self.calls.get_mut(&key).and_then(|c| c.transfer.as_mut()?.hunt.attempt.as_mut()) else { return };
        match r.status {
            100..=199 => attempt.provisional(txns, now),
            200..=299 => self.transfer_answered(txns, key, r, now),
            _ => match failover::failure(&r, attempt.no_answer) {
                Failure::Trunk => self.transfer_trunk_failed(txns, key, r.status, &r.reason, "failed", now),
                Failure::Callee { status, reason: phrase, cause } => {
                    let trunk = &attempt.target.hop;
                    let why = if attempt.no_answer { format!("trunk {trunk}: no answer") } else { format!("trunk {trunk}: {status} {phrase}") };
                    self.transfer_failed(txns, key, status, &phrase, Some(cause), &why, now);
                }
            },
        }
    }

    /// The target's trunk failed: the next one.
    fn transfer_trunk_failed(&mut self, txns: &mut Transactions, key: u64, status: u16, reason: &str, what: &str, now: Instant) {
        let Some(t) = self.calls.get_mut(&key).and_then(|c| c.transfer.as_mut()) else { return };
        let Some(attempt) = t.hunt.trunk_failed(status, reason) else { return };
        self.by_client.remove(&attempt.client);
        log::info!("transfer {}: trunk {} {what} ({status}), trying the next", t.cdr.call_id, attempt.target.hop);
        self.transfer_next(txns, key, now);
    }

    /// The transfer failed: the referrer hears it and the call goes on, unless the referrer has
    /// left already, when the transferee is hung up.
    #[allow(clippy::too_many_arguments)]
    fn transfer_failed(&mut self, txns: &mut Transactions, key: u64, status: u16, reason: &str, cause: Option<u8>, why: &str, now: Instant) {
        self.notify(txns, key, &format!("SIP/2.0 {status} {reason}"), true, now);
        let wall = self.wall(now);
        let Some(call) = self.calls.get_mut(&key) else { return };
        let Some(mut t) = call.transfer.take() else { return };
        if let Some(a) = t.hunt.attempt.take() {
            self.by_client.remove(&a.client);
        }
        t.cdr.status = status;
        t.cdr.q850 = Some(cause.unwrap_or_else(|| cause::for_sip_status(status)));
        t.cdr.end_cause = why.to_string();
        t.cdr.ended_at = wall;
        log::info!("call {}: transfer to {} failed: {why}", call.cdr.call_id, t.cdr.callee_dialled);
        let referrer_left = call.dialog(t.referrer).is_none();
        self.outputs.push_back(Output::Cdr(t.cdr));
        if referrer_left {
            call.cdr.end_cause = "transfer failed after the referrer left".into();
            self.hang_up(txns, key, t.referrer.other(), now);
        }
    }

    /// The target answered: it takes the referrer's place.
    fn transfer_answered(&mut self, txns: &mut Transactions, key: u64, r: Response, now: Instant) {
        let local = self.config.local;
        let wall = self.wall(now);
        let Some(attempt) = self.calls.get_mut(&key).and_then(|c| c.transfer.as_mut()?.hunt.attempt.take()) else { return };
        let Some(target) = Dialog::as_uac(&attempt.invite, &r, attempt.target.dest, attempt.target.transport) else {
            log::warn!("transfer: 2xx without a usable To/Contact");
            return self.transfer_failed(txns, key, 502, "Bad Gateway", None, "target's 2xx unusable", now);
        };
        let seq = attempt.invite.cseq().map(|c| c.seq).unwrap_or(1);
        self.outputs.push_back(Output::Send { request: target.ack(seq, local, &mut self.ids), dest: target.dest, transport: target.transport });
        let keyed = srtp::answered(&attempt.keys, &r.body);
        let relayed = self.calls.get(&key).is_some_and(|c| c.media.is_some());
        if attempt.target.srtp == SrtpPolicy::Mandatory && relayed && keyed.is_none() {
            // A target whose leg must have SRTP answered without a key of ours: no media to
            // have; the target is hung up and the call goes on as it was.
            let mut target = target;
            let bye = target.request(Method::BYE, local, &mut self.ids);
            send_in_dialog(txns, &mut self.by_client, key, bye, &target, now);
            return self.transfer_failed(txns, key, 488, "Not Acceptable Here", None, "target answered without SRTP (srtp = mandatory)", now);
        }
        self.notify(txns, key, &format!("SIP/2.0 {} {}", r.status, r.reason), true, now);
        let Some(call) = self.calls.get_mut(&key) else { return };
        let Some(t) = call.transfer.take() else { return };
        let (referrer, transferee) = (t.referrer, t.referrer.other());
        // The referrer's dialog ends; the target's takes its slot.
        if let Some(mut d) = call.dialog(referrer).take() {
            let mut bye = d.request(Method::BYE, local, &mut self.ids);
            bye.headers.add(HeaderName::Reason, reason::q850(cause::NORMAL_CLEARING, Some("call transferred")));
            send_in_dialog(txns, &mut self.by_client, key, bye, &d, now);
            self.by_dialog.remove(&(d.call_id, d.local_tag));
        }
        let leg = Leg { call: key, side: referrer, peer: attempt.target.hop.peer() };
        self.by_dialog.insert((target.call_id.clone(), target.local_tag.clone()), leg);
        *call.dialog(referrer) = Some(target);
        *call.timer(referrer) = timers::b_timer(&r.headers, now);
        call.callee_side = referrer;
        if referrer == Side::A {
            call.acked();
        }
        call.set_sdp(referrer, &r.body);
        // The target's media on the referrer's side of the relay; the transferee is offered
        // the target's answer (on its own relay port, or end to end when media bypasses).
        let offer = match call.media {
            Some((id, a_port, b_port)) => {
                // Keys before the address: nothing goes to the target unencrypted.
                let leg = match keyed {
                    Some((ours, keys)) => srtp::LegSrtp::new(attempt.target.srtp, ours, keys),
                    None => srtp::LegSrtp::plain(attempt.target.srtp),
                };
                self.media.set_crypto(id, referrer, leg.keys.clone());
                call.srtp[super::ix(referrer)] = leg;
                if let Some(remote) = relay_sdp::remote(&r.body) {
                    self.media.set_remote(id, referrer, remote);
                }
                let port = if transferee == Side::A { a_port } else { b_port };
                relay_sdp::offer(&r.body, Some(port), call.srtp[super::ix(transferee)].lines(), true)
            }
            None => relay_sdp::offer(&r.body, None, &[], true),
        };
        if call.relayed.is_none() {
            if let Some(d) = call.dialog(transferee).as_mut() {
                let mut reinvite = d.request(Method::INVITE, local, &mut self.ids);
                reinvite.headers.add(HeaderName::Contact, self.config.contact(d.transport));
                if !offer.is_empty() {
                    reinvite.headers.add(HeaderName::ContentType, "application/sdp");
                    reinvite.body = offer;
                }
                let seq = d.local_cseq;
                match txns.send_request(reinvite.clone(), d.dest, d.transport, now) {
                    Ok(client) => {
                        self.by_client.insert(client, key);
                        call.relayed = Some(Relayed { server: None, from: referrer, request: reinvite, client, seq, rekey: None });
                    }
                    Err(e) => log::warn!("call {}: transferee not re-INVITEd: {e}", call.cdr.call_id),
                }
            }
        } else {
            log::warn!("call {}: an offer is in progress; the transferee keeps its media as negotiated", call.cdr.call_id);
        }
        let mut record = t.cdr;
        record.answered_at = Some(wall);
        record.status = r.status;
        let mut before = std::mem::replace(&mut call.cdr, record);
        before.ended_at = wall;
        before.q850 = Some(16);
        before.end_cause = format!(
            "transferred to {} by {}",
            call.cdr.callee_dialled,
            call.cdr.referred_by.as_deref().unwrap_or_default()
        );
        log::info!("call {}: transferred to {} ({})", before.call_id, call.cdr.callee, call.cdr.call_id);
        self.outputs.push_back(Output::Cdr(before));
    }

    /// The referrer hung up during its transfer: the transferee stays for the target. True when
    /// that is what a BYE from `side` means.
    pub(super) fn referrer_leaves(&mut self, key: u64, side: Side) -> bool {
        let Some(call) = self.calls.get_mut(&key) else { return false };
        if !call.transfer.as_ref().is_some_and(|t| t.referrer == side) {
            return false;
        }
        if let Some(d) = call.dialog(side).take() {
            self.by_dialog.remove(&(d.call_id, d.local_tag));
        }
        *call.timer(side) = None;
        true
    }

    /// The call ended with its transfer in progress: the target is cancelled, the record kept.
    pub(super) fn abandon_transfer(&mut self, txns: &mut Transactions, mut t: Transfer, wall: i64, now: Instant) {
        if let Some(a) = t.hunt.attempt.take() {
            cancel(txns, a.client, now);
            self.by_client.remove(&a.client);
        }
        t.cdr.status = 487;
        t.cdr.q850 = Some(cause::for_sip_status(487));
        t.cdr.end_cause = "the call ended before the transfer completed".into();
        t.cdr.ended_at = wall;
        self.outputs.push_back(Output::Cdr(t.cdr));
    }
}
