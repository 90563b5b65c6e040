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
use holdfast_sip::message::{reason_phrase, Response};
use holdfast_telephony::{cause, reason};

/// The trunks a call (or a transfer) tried, for its record: each trunk tried after the first is
/// one failover; a dead trunk skipped was not tried and counts for nothing.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Tried(u32);

impl Tried {
    /// A trunk is tried now (its INVITE sent, or failing to go).
    pub(super) fn one_more(&mut self, failovers: &mut u32) {
        if self.0 > 0 {
            *failovers += 1;
        }
        self.0 += 1;
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
