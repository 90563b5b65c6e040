//! The 2xx a UAS core sends again until its ACK comes (RFC 3261 §13.3.1.4): the INVITE server
//! transaction ends with the 2xx, so the core retransmits it itself, at T1 doubling up to T2,
//! and gives the dialog up when no ACK came within 64*T1. The timers are the SIP core's.
use holdfast_sip::message::Response;
use holdfast_sip::transaction::TimerConfig;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct AckWait {
    response: Response,
    next_at: Instant,
    interval: Duration,
    t2: Duration,
    give_up_at: Instant,
}

/// What is due at a deadline.
#[derive(Debug, PartialEq)]
pub enum AckDue<'a> {
    Nothing,
    /// Send the 2xx again.
    Retransmit(&'a Response),
    /// No ACK in 64*T1: the dialog is lost.
    GaveUp,
}

impl AckWait {
    /// `response` was just sent, at `now`.
    pub fn new(response: Response, timers: &TimerConfig, now: Instant) -> AckWait {
        AckWait {
            response,
            next_at: now + timers.t1(),
            interval: timers.t1(),
            t2: timers.t2(),
            give_up_at: now + timers.transaction_timeout(),
        }
    }

    pub fn response(&self) -> &Response {
        &self.response
    }

    pub fn deadline(&self) -> Instant {
        self.next_at.min(self.give_up_at)
    }

    pub fn handle_timeout(&mut self, now: Instant) -> AckDue<'_> {
        if self.give_up_at <= now {
            return AckDue::GaveUp;
        }
        if self.next_at > now {
            return AckDue::Nothing;
        }
        self.interval = (self.interval * 2).min(self.t2);
        self.next_at = now + self.interval;
        AckDue::Retransmit(&self.response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t1_doubling_to_t2_then_given_up_at_64_t1() {
        let now = Instant::now();
        let mut w = AckWait::new(Response::new(200), &TimerConfig::default(), now);
        let mut sent = Vec::new();
        let at = loop {
            let at = w.deadline();
            match w.handle_timeout(at) {
                AckDue::Retransmit(_) => sent.push(at - now),
                AckDue::GaveUp => break at,
                AckDue::Nothing => unreachable!("woken for nothing"),
            }
        };
        let ms: Vec<u128> = sent.iter().map(Duration::as_millis).collect();
        assert_eq!(&ms[..5], [500, 1500, 3500, 7500, 11500]);
        assert_eq!(at - now, Duration::from_secs(32));
        assert_eq!(w.handle_timeout(at + Duration::from_secs(1)), AckDue::GaveUp, "given up stays so");
    }
}
