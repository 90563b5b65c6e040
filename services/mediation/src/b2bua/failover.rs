//! The trunk failover rule, for calls and transfers alike.
//!
//! Only a trunk's own failure moves a call to the next trunk: no response at all (Timer B, a
//! transport error: the client transaction reports those, never a response) or a 5xx of the
//! trunk's own (a 503 without a Reason naming the callee's cause: no circuit, out of service,
//! overloaded). Everything the callee said ends the call with it, for the caller to hear: busy
//! (486), unavailable (480), declined (603), not answering (408, which a gateway answers for Q.850
//! cause 18, no user responding), any other 3xx, 4xx or 6xx, a 5xx whose Reason carries a callee's
//! cause, and ringing for `no_answer_secs` (we cancel it: 480, cause 19). Trying the next trunk
//! then would ring the same person again.
use super::{Attempt, Target};
use holdfast_sip::message::{reason_phrase, Request, Response};
use holdfast_sip::transaction::{Transactions, TxId};
use holdfast_store::Cdr;
use holdfast_telephony::sdp::Crypto;
use holdfast_telephony::{cause, reason};
use std::collections::{HashSet, VecDeque};
use std::time::Instant;

/// The trunk hunt of a call or of a transfer: the targets not tried yet, the one being called,
/// how many were tried, and the last trunk failure, which the caller hears when none is left.
#[derive(Debug)]
pub(super) struct Hunt {
    targets: VecDeque<Target>,
    pub(super) attempt: Option<Attempt>,
    /// Trunks tried, for the record: each after the first is one failover; a dead trunk
    /// skipped was not tried and counts for nothing.
    tried: u32,
    last_failure: Option<(u16, String, String)>,
}

impl Hunt {
    pub(super) fn new(targets: Vec<Target>) -> Hunt {
        Hunt { targets: targets.into(), attempt: None, tried: 0, last_failure: None }
    }

    /// Calls the next live target with the INVITE `invite` makes for it (and the SRTP keys it
    /// offers): a dead trunk is skipped, so is one whose INVITE cannot be sent. The record
    /// names the trunk and the numbers sent. When no target is left: the failure to answer.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn call_next(
        &mut self,
        txns: &mut Transactions,
        dead: &HashSet<String>,
        cdr: &mut Cdr,
        ring_until: Instant,
        now: Instant,
        mut invite: impl FnMut(&Target) -> (Request, Vec<Crypto>),
    ) -> Result<TxId, (u16, String, String)> {
        while let Some(target) = self.targets.pop_front() {
            if target.hop.is_in(dead) {
                log::info!("call {}: trunk {} is dead, skipped", cdr.call_id, target.hop);
                self.last_failure.get_or_insert((503, "Service Unavailable".into(), format!("trunk {} dead", target.hop)));
                continue;
            }
            let (request, keys) = invite(&target);
            if self.tried > 0 {
                cdr.failovers += 1;
            }
            self.tried += 1;
            match txns.send_request(request.clone(), target.dest, target.transport, now) {
                Ok(client) => {
                    cdr.trunk = target.hop.to_string();
                    cdr.callee_sent = target.called.clone();
                    cdr.caller_sent = target.caller_sent();
                    let mut attempt = Attempt::new(client, request, target, ring_until);
                    attempt.keys = keys;
                    self.attempt = Some(attempt);
                    return Ok(client);
                }
                Err(e) => log::warn!("call {}: INVITE to {} not sent: {e}", cdr.call_id, target.hop),
            }
        }
        self.attempt = None;
        Err(self.last_failure.clone().unwrap_or((503, "Service Unavailable".into(), "no trunk available".into())))
    }

    /// The attempt's trunk failed (`Failure::Trunk`, no response, a transport error): it is
    /// given up and its failure kept for the caller.
    pub(super) fn trunk_failed(&mut self, status: u16, reason: &str) -> Option<Attempt> {
        let attempt = self.attempt.take()?;
        self.last_failure = Some((status, reason.to_string(), format!("trunk {}: {status} {reason}", attempt.target.hop)));
        Some(attempt)
    }
}

/// Whose failure a final response (3xx to 6xx) to an INVITE towards a trunk is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Failure {
    /// The trunk's: the next trunk is tried.
    Trunk,
    /// The callee's answer: the call ends with this status and Q.850 cause.
    Callee { status: u16, reason: String, cause: u8 },
}

/// A 5xx that carries the callee's own cause (busy, no such number...) becomes the status the
/// cause maps to (RFC 3398): it is the callee's answer, not the trunk's failure.
pub(super) fn callee_cause(r: &mut Response) {
    if (500..600).contains(&r.status) {
        if let Some(mapped) = reason::q850_cause(&r.headers).map(cause::sip_status).filter(|s| *s < 500) {
            r.status = mapped;
            r.reason = reason_phrase(mapped).to_string();
        }
    }
}

/// Whose failure `r` is; `rang_out` when we cancelled the attempt for ringing too long (the
/// 487 that follows is the callee's no answer).
pub(super) fn failure(r: &Response, rang_out: bool) -> Failure {
    match r.status {
        487 if rang_out => Failure::Callee {
            status: 480,
            reason: reason_phrase(480).to_string(),
            cause: cause::NO_ANSWER,
        },
        500..=599 => Failure::Trunk,
        status => Failure::Callee {
            status,
            reason: r.reason.clone(),
            cause: reason::q850_cause(&r.headers).unwrap_or_else(|| cause::for_sip_status(status)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_sip::message::HeaderName;

    fn response(status: u16, reason: Option<&str>) -> Response {
        let mut r = Response::new(status);
        if let Some(v) = reason {
            r.headers.add(HeaderName::Reason, v);
        }
        callee_cause(&mut r);
        r
    }

    #[test]
    fn the_trunk_s_own_failures_fail_over() {
        assert_eq!(failure(&response(503, None), false), Failure::Trunk);
        assert_eq!(failure(&response(503, Some("Q.850;cause=34")), false), Failure::Trunk, "no circuit");
        assert_eq!(failure(&response(500, None), false), Failure::Trunk);
    }

    #[test]
    fn the_callee_s_answers_end_the_call() {
        let callee = |status, cause| Failure::Callee { status, reason: reason_phrase(status).into(), cause };
        assert_eq!(failure(&response(408, Some("Q.850;cause=18")), false), callee(408, 18), "no user responding");
        assert_eq!(failure(&response(408, None), false), callee(408, 102));
        assert_eq!(failure(&response(480, None), false), callee(480, 18));
        assert_eq!(failure(&response(486, None), false), callee(486, 17));
        assert_eq!(failure(&response(603, None), false), callee(603, 21));
        assert_eq!(failure(&response(500, Some("Q.850;cause=17")), false), callee(486, 17), "busy behind a 500");
        assert_eq!(failure(&response(503, Some("Q.850;cause=18")), false), callee(408, 18));
        assert_eq!(failure(&response(487, None), true), callee(480, 19), "rang out");
    }
}
