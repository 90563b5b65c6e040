//! The LAPD data link (Q.921 §5, SDL of annex B) for one SAPI/TEI, as a sans-IO state machine:
//! frames and time go in, frames to send and layer-3 indications come out.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::frame::{Control, Frame, Side, Supervisory, Unnumbered, MODULUS};
use super::timer::{Timer, TimerTable};

#[derive(Debug, Clone)]
pub struct Config {
    pub t200: Duration,
    pub t203: Duration,
    pub n200: u8,
    /// Window size (outstanding I-frames): 7 on a PRI.
    pub k: u8,
    pub sapi: u8,
    pub tei: u8,
}

impl Default for Config {
    fn default() -> Self {
        // Q.921 defaults for SAPI 0 on a primary rate interface; TEI 0 is point-to-point.
        Config { t200: Duration::from_secs(1), t203: Duration::from_secs(10), n200: 3, k: 7, sapi: 0, tei: 0 }
    }
}

/// Q.921 states 4 to 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    TeiAssigned,
    AwaitingEstablishment,
    AwaitingRelease,
    Established,
    TimerRecovery,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// DL-ESTABLISH indication or confirmation.
    Established,
    /// DL-RELEASE indication or confirmation.
    Released,
    /// DL-DATA indication: one layer-3 message.
    Data(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("data link not established (state {0:?})")]
    NotEstablished(State),
}

pub struct Link {
    side: Side,
    config: Config,
    state: State,
    vs: u8,
    vr: u8,
    va: u8,
    rc: u8,
    peer_busy: bool,
    reject_exception: bool,
    ack_pending: bool,
    timers: TimerTable,
    /// I-frames waiting for the window.
    queue: VecDeque<Vec<u8>>,
    /// Sent and not acknowledged; the first has N(S) = V(A).
    unacked: VecDeque<Vec<u8>>,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<LinkEvent>,
}

fn seq_add(a: u8, b: u8) -> u8 {
    ((u16::from(a) + u16::from(b)) % u16::from(MODULUS)) as u8
}

fn seq_sub(a: u8, b: u8) -> u8 {
    ((u16::from(a) + u16::from(MODULUS) - u16::from(b)) % u16::from(MODULUS)) as u8
}

impl Link {
    pub fn new(side: Side, config: Config) -> Link {
        Link {
            side,
            config,
            state: State::TeiAssigned,
            vs: 0,
            vr: 0,
            va: 0,
            rc: 0,
            peer_busy: false,
            reject_exception: false,
            ack_pending: false,
            timers: TimerTable::default(),
            queue: VecDeque::new(),
            unacked: VecDeque::new(),
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn side(&self) -> Side {
        self.side
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established | State::TimerRecovery)
    }

    /// DL-ESTABLISH request.
    pub fn establish(&mut self, now: Instant) {
        match self.state {
            State::TeiAssigned | State::AwaitingRelease => self.establish_data_link(now),
            State::AwaitingEstablishment | State::Established | State::TimerRecovery => {}
        }
    }

    /// DL-RELEASE request.
    pub fn release(&mut self, now: Instant) {
        match self.state {
            State::Established | State::TimerRecovery => {
                self.discard_queues();
                self.rc = 0;
                self.send_u(Unnumbered::Disc, true, true);
                self.timers.stop(Timer::T203);
                self.restart_t200(now);
                self.state = State::AwaitingRelease;
            }
            State::AwaitingEstablishment => {
                self.discard_queues();
                self.timers.stop_all();
                self.enter_released();
            }
            State::TeiAssigned | State::AwaitingRelease => {}
        }
    }

    /// The physical layer went away (span alarm): everything stops, layer 3 is told.
    pub fn physical_down(&mut self) {
        self.discard_queues();
        self.timers.stop_all();
        if self.state != State::TeiAssigned {
            self.enter_released();
        }
    }

    /// DL-DATA request. Queued while establishment is in progress.
    pub fn send(&mut self, info: Vec<u8>, now: Instant) -> Result<(), LinkError> {
        match self.state {
            State::Established | State::TimerRecovery | State::AwaitingEstablishment => {
                self.queue.push_back(info);
                self.pump(now);
                Ok(())
            }
            state => Err(LinkError::NotEstablished(state)),
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for timer in Timer::VALUES {
            if self.timers.expire(timer, now) {
                match timer {
                    Timer::T200 => self.t200_expired(now),
                    Timer::T203 => self.t203_expired(now),
                }
            }
        }
        self.pump(now);
    }

    pub fn handle_frame(&mut self, bytes: &[u8], now: Instant) {
        let frame = match Frame::decode(bytes, self.side) {
            Ok(frame) => frame,
            Err(e) => {
                debug!("q921: dropping frame: {e}");
                return;
            }
        };
        if frame.sapi != self.config.sapi || frame.tei != self.config.tei {
            debug!("q921: ignoring frame for SAPI {} TEI {}", frame.sapi, frame.tei);
            return;
        }
        match frame.control {
            Control::U { kind, .. } => self.handle_unnumbered(kind, frame.command, frame.poll, now),
            Control::I { ns, nr, info } => self.handle_information(frame.command, frame.poll, ns, nr, info, now),
            Control::S { kind, nr } => self.handle_supervisory(kind, frame.command, frame.poll, nr, now),
        }
        self.pump(now);
    }

    fn handle_unnumbered(&mut self, kind: Unnumbered, command: bool, pf: bool, now: Instant) {
        match (kind, self.state) {
            (Unnumbered::Sabme, State::TeiAssigned | State::Established | State::TimerRecovery) => {
                self.send_u(Unnumbered::Ua, false, pf);
                if self.state != State::TeiAssigned {
                    warn!("q921: link re-established by the peer");
                    self.unacked.clear();
                }
                self.enter_established(now);
            }
            // Both ends sent SABME at once: answer and wait for our own UA.
            (Unnumbered::Sabme, State::AwaitingEstablishment) => self.send_u(Unnumbered::Ua, false, pf),
            (Unnumbered::Sabme, State::AwaitingRelease) => self.send_u(Unnumbered::Dm, false, pf),
            (Unnumbered::Disc, State::TeiAssigned | State::AwaitingEstablishment) => {
                self.send_u(Unnumbered::Dm, false, pf)
            }
            (Unnumbered::Disc, State::AwaitingRelease) => self.send_u(Unnumbered::Ua, false, pf),
            (Unnumbered::Disc, State::Established | State::TimerRecovery) => {
                self.discard_queues();
                self.send_u(Unnumbered::Ua, false, pf);
                self.timers.stop_all();
                self.enter_released();
            }
            (Unnumbered::Ua, State::AwaitingEstablishment) if pf && !command => {
                self.unacked.clear();
                self.enter_established(now);
            }
            (Unnumbered::Ua | Unnumbered::Dm, State::AwaitingRelease) if pf && !command => {
                self.timers.stop(Timer::T200);
                self.enter_released();
            }
            (Unnumbered::Dm, State::AwaitingEstablishment) if pf && !command => {
                self.discard_queues();
                self.timers.stop(Timer::T200);
                self.enter_released();
            }
            (Unnumbered::Dm, State::Established | State::TimerRecovery) if !pf => {
                warn!("q921: DM while established, re-establishing");
                self.establish_data_link(now);
            }
            (Unnumbered::Frmr, State::Established | State::TimerRecovery) => {
                warn!("q921: FRMR received, re-establishing");
                self.establish_data_link(now);
            }
            (kind, state) => debug!("q921: ignoring {kind:?} in {state:?}"),
        }
    }

    fn handle_information(&mut self, command: bool, p: bool, ns: u8, nr: u8, info: Vec<u8>, now: Instant) {
        if !self.is_established() {
            if command && p {
                self.send_u(Unnumbered::Dm, false, true);
            }
            return;
        }
        if !command {
            debug!("q921: I-frame sent as a response, ignored");
            return;
        }
        if ns == self.vr {
            self.vr = seq_add(self.vr, 1);
            self.reject_exception = false;
            self.events.push_back(LinkEvent::Data(info));
            if p {
                self.send_s(Supervisory::Rr, false, true);
                self.ack_pending = false;
            } else {
                self.ack_pending = true;
            }
        } else if self.reject_exception {
            if p {
                self.send_s(Supervisory::Rr, false, true);
            }
        } else {
            self.reject_exception = true;
            self.send_s(Supervisory::Rej, false, p);
            self.ack_pending = false;
        }
        if self.state == State::Established {
            self.acknowledge(nr, now);
        } else if self.nr_valid(nr) {
            self.drop_acked(nr);
        } else {
            self.nr_error(now);
        }
    }

    fn handle_supervisory(&mut self, kind: Supervisory, command: bool, pf: bool, nr: u8, now: Instant) {
        if !self.is_established() {
            if command && pf {
                self.send_u(Unnumbered::Dm, false, true);
            }
            return;
        }
        self.peer_busy = kind == Supervisory::Rnr;
        if command && pf {
            self.send_s(Supervisory::Rr, false, true);
            self.ack_pending = false;
        }
        if !self.nr_valid(nr) {
            self.nr_error(now);
            return;
        }
        if self.state == State::TimerRecovery {
            self.drop_acked(nr);
            if !command && pf {
                // The answer to our enquiry: resume from what the peer has.
                self.timers.stop(Timer::T200);
                self.start_t203(now);
                self.retransmit_unacked();
                self.state = State::Established;
            }
            return;
        }
        match kind {
            Supervisory::Rr => self.acknowledge(nr, now),
            Supervisory::Rej => {
                self.drop_acked(nr);
                self.timers.stop(Timer::T200);
                self.start_t203(now);
                self.retransmit_unacked();
            }
            Supervisory::Rnr => {
                self.drop_acked(nr);
                self.timers.stop(Timer::T203);
                self.restart_t200(now);
            }
        }
    }

    /// N(R) processing in the established state.
    fn acknowledge(&mut self, nr: u8, now: Instant) {
        if !self.nr_valid(nr) {
            self.nr_error(now);
            return;
        }
        if self.peer_busy {
            self.drop_acked(nr);
        } else if nr == self.vs {
            self.drop_acked(nr);
            self.timers.stop(Timer::T200);
            self.start_t203(now);
        } else if nr != self.va {
            self.drop_acked(nr);
            self.restart_t200(now);
        }
    }

    fn nr_valid(&self, nr: u8) -> bool {
        seq_sub(nr, self.va) <= seq_sub(self.vs, self.va)
    }

    fn nr_error(&mut self, now: Instant) {
        warn!("q921: N(R) error (V(A)={} V(S)={}), re-establishing", self.va, self.vs);
        self.establish_data_link(now);
    }

    fn drop_acked(&mut self, nr: u8) {
        for _ in 0..seq_sub(nr, self.va) {
            self.unacked.pop_front();
        }
        self.va = nr;
    }

    fn retransmit_unacked(&mut self) {
        while let Some(info) = self.unacked.pop_back() {
            self.queue.push_front(info);
        }
        self.vs = self.va;
    }

    fn t200_expired(&mut self, now: Instant) {
        match self.state {
            State::AwaitingEstablishment if self.rc >= self.config.n200 => {
                warn!("q921: no answer to SABME after {} tries", self.rc + 1);
                self.discard_queues();
                self.enter_released();
            }
            State::AwaitingEstablishment => {
                self.rc += 1;
                self.send_u(Unnumbered::Sabme, true, true);
                self.restart_t200(now);
            }
            State::AwaitingRelease if self.rc >= self.config.n200 => self.enter_released(),
            State::AwaitingRelease => {
                self.rc += 1;
                self.send_u(Unnumbered::Disc, true, true);
                self.restart_t200(now);
            }
            State::Established => {
                self.rc = 0;
                self.state = State::TimerRecovery;
                self.transmit_enquiry(now);
            }
            State::TimerRecovery if self.rc >= self.config.n200 => {
                warn!("q921: peer silent after {} enquiries, re-establishing", self.rc);
                self.establish_data_link(now);
            }
            State::TimerRecovery => self.transmit_enquiry(now),
            State::TeiAssigned => {}
        }
    }

    fn t203_expired(&mut self, now: Instant) {
        if self.state == State::Established {
            self.rc = 0;
            self.state = State::TimerRecovery;
            self.transmit_enquiry(now);
        }
    }

    fn transmit_enquiry(&mut self, now: Instant) {
        self.send_s(Supervisory::Rr, true, true);
        self.ack_pending = false;
        self.rc += 1;
        self.restart_t200(now);
    }

    fn establish_data_link(&mut self, now: Instant) {
        self.peer_busy = false;
        self.reject_exception = false;
        self.ack_pending = false;
        self.unacked.clear();
        self.rc = 0;
        self.send_u(Unnumbered::Sabme, true, true);
        self.timers.stop(Timer::T203);
        self.restart_t200(now);
        self.state = State::AwaitingEstablishment;
    }

    fn enter_established(&mut self, now: Instant) {
        self.peer_busy = false;
        self.reject_exception = false;
        self.ack_pending = false;
        self.vs = 0;
        self.vr = 0;
        self.va = 0;
        self.rc = 0;
        self.timers.stop(Timer::T200);
        self.start_t203(now);
        self.state = State::Established;
        info!("q921: data link established ({:?} side)", self.side);
        self.events.push_back(LinkEvent::Established);
    }

    fn enter_released(&mut self) {
        self.timers.stop_all();
        self.state = State::TeiAssigned;
        info!("q921: data link released ({:?} side)", self.side);
        self.events.push_back(LinkEvent::Released);
    }

    fn discard_queues(&mut self) {
        self.queue.clear();
        self.unacked.clear();
    }

    /// Sends queued I-frames inside the window, then any acknowledgement still owed.
    fn pump(&mut self, now: Instant) {
        if self.state == State::Established && !self.peer_busy {
            while self.unacked.len() < usize::from(self.config.k) {
                let Some(info) = self.queue.pop_front() else { break };
                let frame = Frame {
                    sapi: self.config.sapi,
                    tei: self.config.tei,
                    command: true,
                    poll: false,
                    control: Control::I { ns: self.vs, nr: self.vr, info: info.clone() },
                };
                self.transmit.push_back(frame.encode(self.side));
                self.unacked.push_back(info);
                self.vs = seq_add(self.vs, 1);
                self.ack_pending = false;
                if !self.timers.is_running(Timer::T200) {
                    self.timers.stop(Timer::T203);
                    self.restart_t200(now);
                }
            }
        }
        if self.ack_pending && self.is_established() {
            self.send_s(Supervisory::Rr, false, false);
            self.ack_pending = false;
        }
    }

    fn send_u(&mut self, kind: Unnumbered, command: bool, pf: bool) {
        let frame = Frame {
            sapi: self.config.sapi,
            tei: self.config.tei,
            command,
            poll: pf,
            control: Control::U { kind, info: Vec::new() },
        };
        self.transmit.push_back(frame.encode(self.side));
    }

    fn send_s(&mut self, kind: Supervisory, command: bool, pf: bool) {
        let frame = Frame {
            sapi: self.config.sapi,
            tei: self.config.tei,
            command,
            poll: pf,
            control: Control::S { kind, nr: self.vr },
        };
        self.transmit.push_back(frame.encode(self.side));
    }

    fn restart_t200(&mut self, now: Instant) {
        self.timers.set(Timer::T200, now + self.config.t200);
    }

    fn start_t203(&mut self, now: Instant) {
        self.timers.set(Timer::T203, now + self.config.t203);
    }
}
