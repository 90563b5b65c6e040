//! What the four transaction machines share (RFC 3261 §17): the armed timers, the
//! retransmission interval and its back-off, the queue of messages to send and of events for the
//! TU, and the three ways a transaction ends (completed, timed out, transport error). Each
//! machine keeps only its states and which timer means what.
use super::timer::{Timer, TimerConfig, TimerTable};
use super::TxEvent;
use crate::message::Request;
use crate::transport::Protocol;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the retransmission interval grows after each retransmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backoff {
    /// Timer A: doubles without a cap (Timer B ends it).
    Double,
    /// Timers E (Trying) and G: doubles up to T2.
    DoubleToT2,
    /// Timer E in Proceeding: every T2.
    T2,
}

/// One transaction's timers and queues. `M` is what it retransmits: a request (client) or a
/// response (server), shared with the transmit queue so a retransmission copies no message.
#[derive(Debug)]
pub(crate) struct Retransmit<M> {
    reliable: bool,
    config: TimerConfig,
    timers: TimerTable,
    /// The interval the retransmission timer was last armed with.
    interval: Duration,
    transmits: VecDeque<Arc<M>>,
    events: VecDeque<TxEvent>,
}

impl<M> Retransmit<M> {
    pub(crate) fn new(transport: Protocol, config: TimerConfig) -> Self {
        Retransmit {
            reliable: transport.is_reliable(),
            config,
            timers: TimerTable::default(),
            interval: config.t1(),
            transmits: VecDeque::with_capacity(2),
            events: VecDeque::new(),
        }
    }

    pub(crate) fn config(&self) -> &TimerConfig {
        &self.config
    }

    pub(crate) fn reliable(&self) -> bool {
        self.reliable
    }

    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.timers.set(timer, at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.timers.stop(timer);
    }

    pub(crate) fn send(&mut self, message: Arc<M>) {
        self.transmits.push_back(message);
    }

    pub(crate) fn emit(&mut self, event: TxEvent) {
        self.events.push_back(event);
    }

    /// Arms the retransmission `timer` at the current interval; reliable transports retransmit
    /// nothing (§17.1.1.2, §17.1.2.2, §17.2.1).
    pub(crate) fn arm(&mut self, timer: Timer, now: Instant) {
        if !self.reliable {
            self.timers.set(timer, now + self.interval);
        }
    }

    /// The retransmission `timer` fired: `message` goes out again and the timer is re-armed at
    /// the next interval.
    pub(crate) fn retransmit(&mut self, timer: Timer, message: &Arc<M>, backoff: Backoff, now: Instant) {
        self.transmits.push_back(Arc::clone(message));
        self.interval = match backoff {
            Backoff::Double => self.interval * 2,
            Backoff::DoubleToT2 => (self.interval * 2).min(self.config.t2()),
            Backoff::T2 => self.config.t2(),
        };
        self.timers.set(timer, now + self.interval);
    }

    /// The exchange is over (a final response, or the ACK for one): `running` timers stop, and
    /// the transaction lingers `wait` under `wait_timer` to absorb retransmissions, or ends now
    /// when `wait` is zero (reliable transports). True when it lingers.
    pub(crate) fn complete(&mut self, running: &[Timer], wait_timer: Timer, wait: Duration, now: Instant) -> bool {
        for &timer in running {
            self.timers.stop(timer);
        }
        if wait.is_zero() {
            self.terminate();
            return false;
        }
        self.timers.set(wait_timer, now + wait);
        true
    }

    /// The transport could not deliver a message of this transaction.
    pub(crate) fn transport_error(&mut self) {
        self.events.push_back(TxEvent::TransportError);
        self.terminate();
    }

    /// Stops every timer and tells the TU nothing more comes.
    pub(crate) fn terminate(&mut self) {
        self.timers.stop_all();
        self.events.push_back(TxEvent::Terminated);
    }

    /// Disarms and returns the earliest timer due at `now`; a machine fires them in order.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        self.timers.pop_expired(now)
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Arc<M>> {
        self.transmits.pop_front()
    }

    pub(crate) fn poll_event(&mut self) -> Option<TxEvent> {
        self.events.pop_front()
    }
}

impl Retransmit<Request> {
    /// A client transaction's first send: `request` is queued, the transaction `timeout` (B or
    /// F) armed at 64*T1 and the retransmission `timer` (A or E) at T1.
    pub(crate) fn start_client(&mut self, request: &Arc<Request>, timer: Timer, timeout: Timer, now: Instant) {
        self.send(Arc::clone(request));
        self.timers.set(timeout, now + self.config.transaction_timeout());
        self.arm(timer, now);
    }

    /// Timer B or F fired without a final response: the TU gets the 408 it treats as one
    /// (§8.1.3.1).
    pub(crate) fn time_out(&mut self, request: &Request) {
        self.events.push_back(TxEvent::TimedOut(request.response(408)));
        self.terminate();
    }
}

/// A machine's face to its driver, all from its `core`: when to call `handle_timeout`, what to
/// send, what to tell the TU.
macro_rules! polled_through_core {
    ($message:ty) => {
        /// When `handle_timeout` is next due.
        pub fn next_timeout(&self) -> Option<Instant> {
            self.core.next_timeout()
        }

        /// The next message for the transport.
        pub fn poll_transmit(&mut self) -> Option<Arc<$message>> {
            self.core.poll_transmit()
        }

        /// The next event for the TU.
        pub fn poll_event(&mut self) -> Option<TxEvent> {
            self.core.poll_event()
        }
    };
}
pub(crate) use polled_through_core;

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Fires the retransmission timer at each deadline until `count` retransmissions went out and
    /// returns the offsets from `start` at which they went.
    fn schedule(core: &mut Retransmit<()>, timer: Timer, backoff: Backoff, start: Instant, count: usize) -> Vec<Duration> {
        let message = Arc::new(());
        let mut sent_at = Vec::new();
        while sent_at.len() < count {
            let at = core.next_timeout().expect("the retransmission timer is armed");
            assert_eq!(core.pop_expired(at), Some(timer));
            core.retransmit(timer, &message, backoff, at);
            sent_at.push(at - start);
        }
        sent_at
    }

    #[test]
    fn timer_a_doubles_without_a_cap() {
        let now = Instant::now();
        let mut core = Retransmit::<()>::new(Protocol::Udp, TimerConfig::default());
        core.arm(Timer::A, now);
        let sent = schedule(&mut core, Timer::A, Backoff::Double, now, 5);
        assert_eq!(sent, [ms(500), ms(1500), ms(3500), ms(7500), ms(15500)]);
        assert_eq!(core.transmits.len(), 5);
    }

    #[test]
    fn timers_e_and_g_double_up_to_t2_then_stay_there() {
        let now = Instant::now();
        let mut core = Retransmit::<()>::new(Protocol::Udp, TimerConfig::default());
        core.arm(Timer::E, now);
        let sent = schedule(&mut core, Timer::E, Backoff::DoubleToT2, now, 6);
        assert_eq!(sent, [ms(500), ms(1500), ms(3500), ms(7500), ms(11500), ms(15500)]);
    }

    #[test]
    fn timer_e_in_proceeding_fires_every_t2() {
        let now = Instant::now();
        let mut core = Retransmit::<()>::new(Protocol::Udp, TimerConfig::default());
        core.arm(Timer::E, now);
        let sent = schedule(&mut core, Timer::E, Backoff::T2, now, 3);
        assert_eq!(sent, [ms(500), ms(4500), ms(8500)]);
    }

    #[test]
    fn reliable_transports_arm_no_retransmission() {
        let now = Instant::now();
        let mut core = Retransmit::<()>::new(Protocol::Tcp, TimerConfig::default());
        core.arm(Timer::A, now);
        assert_eq!(core.next_timeout(), None);
    }

    #[test]
    fn completing_lingers_on_unreliable_and_ends_at_once_on_reliable_transports() {
        let now = Instant::now();
        let mut udp = Retransmit::<()>::new(Protocol::Udp, TimerConfig::default());
        udp.arm(Timer::E, now);
        udp.set(Timer::F, now + ms(32_000));
        assert!(udp.complete(&[Timer::E, Timer::F], Timer::K, ms(5000), now));
        assert_eq!(udp.next_timeout(), Some(now + ms(5000)));
        assert_eq!(udp.pop_expired(now + ms(5000)), Some(Timer::K));
        assert_eq!(udp.poll_event(), None);

        let mut tcp = Retransmit::<()>::new(Protocol::Tcp, TimerConfig::default());
        tcp.set(Timer::F, now + ms(32_000));
        assert!(!tcp.complete(&[Timer::E, Timer::F], Timer::K, Duration::ZERO, now));
        assert_eq!(tcp.next_timeout(), None);
        assert_eq!(tcp.poll_event(), Some(TxEvent::Terminated));
    }

    #[test]
    fn a_transport_error_stops_every_timer_and_says_why_before_it_ends() {
        let now = Instant::now();
        let mut core = Retransmit::<()>::new(Protocol::Udp, TimerConfig::default());
        core.arm(Timer::G, now);
        core.set(Timer::H, now + ms(32_000));
        core.transport_error();
        assert_eq!(core.next_timeout(), None);
        assert_eq!(core.poll_event(), Some(TxEvent::TransportError));
        assert_eq!(core.poll_event(), Some(TxEvent::Terminated));
        assert_eq!(core.poll_event(), None);
    }
}
