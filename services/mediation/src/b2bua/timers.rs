//! Session timers (RFC 4028) on both dialogs, so a call whose far end vanished is reaped even
//! when media is bypassed. On B we offer `SESSION_EXPIRES` and refresh with UPDATE when the
//! answer makes us the refresher; on A the caller refreshes when it asked for a timer. A side
//! that does not refresh in time loses the call: BYE both ways.
use super::{Attempt, B2bua, Media};
use holdfast_media::Side;
use holdfast_sip::message::{HeaderName, Headers, Method, Request, Response};
use holdfast_sip::transaction::{Transactions, TxId};
use holdfast_sip::Ids;
use std::time::{Duration, Instant};

/// What we offer the B side, in seconds (RFC 4028's recommended 1800).
pub(super) const SESSION_EXPIRES: u32 = 1800;
/// The smallest interval we accept (RFC 4028 Min-SE floor): below it an INVITE gets 422.
pub(super) const MIN_SE: u32 = 90;
/// INVITEs sent again after a 422, per trunk attempt: each must ask for more than the last.
const MAX_422_RETRIES: u8 = 2;

#[derive(Debug, Clone, Copy)]
pub(super) struct SessionTimer {
    interval: Duration,
    /// We refresh (UPDATE at half the interval); else the peer must, before `at`.
    we_refresh: bool,
    at: Instant,
}

impl SessionTimer {
    /// For a dialog where `refresher_is_us` says who refreshes, starting `now`.
    fn new(secs: u32, we_refresh: bool, now: Instant) -> SessionTimer {
        let interval = Duration::from_secs(secs.max(MIN_SE).into());
        SessionTimer { interval, we_refresh, at: now + deadline(interval, we_refresh) }
    }

    pub(super) fn at(&self) -> Instant {
        self.at
    }

    /// A refresh was seen (either way): the clock starts again.
    pub(super) fn refreshed(&mut self, now: Instant) {
        self.at = now + deadline(self.interval, self.we_refresh);
    }
}

/// When to act: half the interval for our refresh; for the peer's, the interval less
/// min(32 s, a third) (RFC 4028 §10).
fn deadline(interval: Duration, we_refresh: bool) -> Duration {
    if we_refresh {
        interval / 2
    } else {
        interval - (interval / 3).min(Duration::from_secs(32))
    }
}

/// `Session-Expires: 1800;refresher=uac`: the interval and the refresher, if named.
pub(super) fn session_expires(headers: &Headers) -> Option<(u32, Option<String>)> {
    let v = headers.get(&HeaderName::SessionExpires)?;
    let mut parts = v.split(';');
    let secs = parts.next()?.trim().parse().ok()?;
    let refresher = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("refresher"))
        .map(|(_, v)| v.trim().to_ascii_lowercase());
    Some((secs, refresher))
}

/// The 422 for an INVITE whose Session-Expires is below our Min-SE (RFC 4028 §8.1), or None.
pub(super) fn too_small(invite: &Request) -> Option<Response> {
    let (secs, _) = session_expires(&invite.headers)?;
    if secs >= MIN_SE {
        return None;
    }
    let mut r = invite.response(422);
    r.headers.add(HeaderName::MinSe, MIN_SE.to_string());
    Some(r)
}

/// `Min-SE: 1800` (parameters ignored).
fn min_se(headers: &Headers) -> Option<u32> {
    headers.get(&HeaderName::MinSe)?.split(';').next()?.trim().parse().ok()
}

impl Attempt {
    /// A 422 from the far side (RFC 4028 §7.4): the INVITE again, with its Min-SE as our
    /// Session-Expires and Min-SE, the next CSeq and a new branch. Returns the old and new
    /// client transactions, or None when the 422 is final (no larger Min-SE, retries spent).
    pub(super) fn retry_422(&mut self, txns: &mut Transactions, r: &Response, now: Instant, ids: &mut Ids) -> Option<(TxId, TxId)> {
        let wanted = min_se(&r.headers)?;
        let asked = session_expires(&self.invite.headers).map_or(0, |(s, _)| s);
        if wanted <= asked || self.session_retries >= MAX_422_RETRIES {
            return None;
        }
        let mut invite = self.invite.clone();
        let seq = invite.cseq().ok()?.seq + 1;
        let via = invite.headers.get(&HeaderName::Via)?;
        let sent_by = via.split(';').next()?.to_string();
        invite.headers.set(HeaderName::Via, format!("{sent_by};branch={};rport", ids.branch()));
        invite.headers.set(HeaderName::CSeq, format!("{seq} INVITE"));
        invite.headers.set(HeaderName::SessionExpires, wanted.to_string());
        invite.headers.set(HeaderName::MinSe, wanted.to_string());
        let client = match txns.send_request(invite.clone(), self.target.dest, self.target.transport, now) {
            Ok(id) => id,
            Err(e) => {
                log::debug!("INVITE after 422 not sent: {e}");
                return None;
            }
        };
        log::info!("trunk {}: 422, INVITE again with Session-Expires {wanted}", self.target.hop);
        let old = std::mem::replace(&mut self.client, client);
        self.invite = invite;
        self.session_retries += 1;
        self.provisional = false;
        Some((old, client))
    }
}

/// The timer of the A dialog: A asked for one in its INVITE; A (the UAC) refreshes.
pub(super) fn a_timer(invite: &Headers, now: Instant) -> Option<SessionTimer> {
    session_expires(invite).map(|(secs, _)| SessionTimer::new(secs, false, now))
}

/// The timer of the B dialog from its 2xx: we are the UAC, so `refresher=uac` is us.
pub(super) fn b_timer(answer: &Headers, now: Instant) -> Option<SessionTimer> {
    session_expires(answer).map(|(secs, refresher)| SessionTimer::new(secs, refresher.as_deref() != Some("uas"), now))
}

impl<M: Media> B2bua<M> {
    /// Refreshes due on B, and calls whose peer let its session expire.
    pub(super) fn session_timers_due(&mut self, txns: &mut Transactions, now: Instant) {
        let local = self.config.local;
        let mut expired = Vec::new();
        for (key, call) in self.calls.iter_mut() {
            for side in [Side::A, Side::B] {
                let Some(mut t) = call.timer(side).filter(|t| t.at <= now) else { continue };
                if !t.we_refresh {
                    expired.push(*key);
                    break;
                }
                t.refreshed(now);
                *call.timer(side) = Some(t);
                let secs = t.interval.as_secs();
                let Some(d) = call.dialog(side).as_mut() else { continue };
                let mut update = d.request(Method::parse("UPDATE"), local, &mut self.ids);
                update.headers.add(HeaderName::Supported, "timer");
                // We are the UAC of the dialogs we refresh.
                update.headers.add(HeaderName::SessionExpires, format!("{secs};refresher=uac"));
                match txns.send_request(update, d.dest, d.transport, now) {
                    Ok(id) => {
                        self.by_client.insert(id, *key);
                        call.refresh = Some((id, side));
                    }
                    Err(e) => log::debug!("session refresh not sent: {e}"),
                }
            }
        }
        for key in expired {
            if let Some(call) = self.calls.get(&key) {
                log::warn!("call {}: session timer expired, ended", call.cdr.call_id);
            }
            self.bye_both(txns, key, holdfast_telephony::cause::RECOVERY_ON_TIMER_EXPIRY, "session timer expired", now);
        }
    }

    /// A mid-call request from `side` refreshes that side's session.
    pub(super) fn session_refreshed(&mut self, key: u64, side: Side, now: Instant) {
        if let Some(call) = self.calls.get_mut(&key) {
            let timer = if side == Side::A { call.a_timer.as_mut() } else { call.b_timer.as_mut() };
            if let Some(t) = timer {
                t.refreshed(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_refreshers() {
        let now = Instant::now();
        let mut h = Headers::default();
        h.add(HeaderName::SessionExpires, "600 ; refresher=UAS");
        assert_eq!(session_expires(&h), Some((600, Some("uas".into()))));
        let b = b_timer(&h, now).unwrap();
        assert!(!b.we_refresh);
        assert_eq!(b.at(), now + Duration::from_secs(600 - 32));
        let mut h = Headers::default();
        h.add(HeaderName::SessionExpires, "60");
        // Below Min-SE: 90 s; nobody named, so we (the UAC) refresh, at half.
        let b = b_timer(&h, now).unwrap();
        assert!(b.we_refresh);
        assert_eq!(b.at(), now + Duration::from_secs(45));
        assert!(a_timer(&Headers::default(), now).is_none());
    }
}
