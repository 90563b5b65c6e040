//! Responses held back on purpose (the digest failure throttle's delays), due on the loop's own
//! timer: no task per throttled request, and a bound on how many wait.
use holdfast_sip::message::Response;
use holdfast_sip::transaction::TxId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

pub struct Delayed {
    max: usize,
    /// (due, sequence) -> the response; the sequence keeps equal deadlines in order.
    due: BinaryHeap<Reverse<(Instant, u64, Held)>>,
    sequence: u64,
}

struct Held(TxId, Response);

// Ordered by (due, sequence) alone, which are unique.
impl PartialEq for Held {
    fn eq(&self, _: &Held) -> bool {
        true
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Held) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, _: &Held) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl Delayed {
    pub fn new(max: usize) -> Delayed {
        Delayed { max, due: BinaryHeap::new(), sequence: 0 }
    }

    /// Holds `response` for `id` until `at`; when `max` already wait, gives it back.
    pub fn hold(&mut self, id: TxId, response: Response, at: Instant) -> Result<(), (TxId, Response)> {
        if self.due.len() >= self.max {
            return Err((id, response));
        }
        self.sequence += 1;
        self.due.push(Reverse((at, self.sequence, Held(id, response))));
        Ok(())
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.due.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The responses due by `now`, earliest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<(TxId, Response)> {
        let mut out = Vec::new();
        while self.due.peek().is_some_and(|Reverse((at, _, _))| *at <= now) {
            if let Some(Reverse((_, _, Held(id, r)))) = self.due.pop() {
                out.push((id, r));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdfast_sip::transaction::{Inbound, TimerConfig, Transactions};
    use std::time::Duration;

    fn held(txns: &mut Transactions, n: u32) -> (TxId, Response) {
        let raw = format!(
            "OPTIONS sip:b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bK{n}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b>\r\nCall-ID: {n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        let Ok(holdfast_sip::message::Message::Request(request)) = holdfast_sip::wire::parse(raw.as_bytes()) else {
            panic!("unparseable")
        };
        let Ok(Inbound::Request { id, request }) = txns.on_request(request, holdfast_sip::transport::Protocol::Udp, Instant::now()) else {
            panic!("no transaction")
        };
        (id, request.response(401))
    }

    #[test]
    fn responses_come_due_in_order_and_the_queue_is_bounded() {
        let mut txns = Transactions::new(TimerConfig::default());
        let mut d = Delayed::new(2);
        let t0 = Instant::now();
        let (a, ra) = held(&mut txns, 1);
        let (b, rb) = held(&mut txns, 2);
        let (c, rc) = held(&mut txns, 3);
        d.hold(b, rb, t0 + Duration::from_secs(2)).unwrap();
        d.hold(a, ra, t0 + Duration::from_secs(1)).unwrap();
        assert!(d.hold(c, rc, t0).is_err(), "full: the caller answers at once");
        assert_eq!(d.next_timeout(), Some(t0 + Duration::from_secs(1)));
        assert!(d.take_due(t0).is_empty());
        let due: Vec<TxId> = d.take_due(t0 + Duration::from_secs(5)).into_iter().map(|(id, _)| id).collect();
        assert_eq!(due, [a, b]);
        assert_eq!(d.next_timeout(), None);
    }
}
