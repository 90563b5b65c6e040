//! The simulated span's far end: a PSTN exchange, so that a laptop without a telephony card
//! (image/run-local) places and takes real PRI calls. Sans-IO: PRI events of the far trunk,
//! the audio it hears, requests and time go in; trunk actions come out.
//!
//! A call to the PSTN rings for `RING`, is answered, hears `TONE` of a 1 kHz tone and then its
//! own audio echoed back, and is cleared by the stack with the caller's cause when the caller
//! hangs up. A call placed towards the branch (`sbactl pstn call`) does the same once answered,
//! and is hung up with cause 16 after its `hangup_after`, if it has one.

pub mod control;
pub mod driver;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use log::info;

use crate::dahdi::Law;
use crate::pri::PriEvent;
use crate::q931::{CallEvent, CallId};
use holdfast_telephony::cause;

/// Ringing before a call to the PSTN is answered.
pub const RING: Duration = Duration::from_secs(1);
/// The tone an answered call hears first, before its echo.
pub const TONE: Duration = Duration::from_secs(1);
/// One B-channel block: 20 ms at 8 kHz.
const BLOCK: Duration = Duration::from_millis(20);
const BLOCK_SAMPLES: usize = 160;
/// 1 kHz at 8 kHz sampling: eight samples a period, so one block holds 20 whole periods.
const TONE_PERIOD: usize = 8;
/// About -12 dBm0: well above silence, well below clipping.
const TONE_AMPLITUDE: f64 = 8000.0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Alert(CallId),
    Answer(CallId),
    Hangup { call: CallId, cause: u8 },
    /// A block to send on a B-channel.
    Audio { channel: u8, samples: Vec<u8> },
    /// Start (true) or stop hearing what arrives on a B-channel.
    Listen { channel: u8, on: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A call from the branch, ringing until the instant it is answered.
    Ringing(Instant),
    /// A call we placed, not answered yet.
    Calling,
    /// Answered: the tone plays, its next block due at the instant, until `tone_end`.
    Tone { next: Instant, tone_end: Instant },
    Echo,
}

#[derive(Debug)]
struct Call {
    channel: Option<u8>,
    phase: Phase,
    /// For calls we placed: when we hang up once answered.
    hangup_after: Option<Duration>,
    hangup_at: Option<Instant>,
}

pub struct Exchange {
    tone: Vec<u8>,
    calls: BTreeMap<CallId, Call>,
    actions: VecDeque<Action>,
}

impl Exchange {
    pub fn new(law: Law) -> Exchange {
        let period: Vec<u8> = (0..TONE_PERIOD)
            .map(|n| {
                let sample = (TONE_AMPLITUDE * (std::f64::consts::TAU * n as f64 / TONE_PERIOD as f64).sin()) as i16;
                match law {
                    Law::Mulaw => holdfast_media::g711::linear_to_ulaw(sample),
                    Law::Alaw => holdfast_media::g711::linear_to_alaw(sample),
                }
            })
            .collect();
        let tone = period.iter().copied().cycle().take(BLOCK_SAMPLES).collect();
        Exchange { tone, calls: BTreeMap::new(), actions: VecDeque::new() }
    }

    /// A call we placed towards the branch (the trunk accepted its SETUP).
    pub fn placed(&mut self, call: CallId, hangup_after: Option<Duration>) {
        self.calls.insert(call, Call { channel: None, phase: Phase::Calling, hangup_after, hangup_at: None });
    }

    pub fn on_event(&mut self, event: &PriEvent, now: Instant) {
        let PriEvent::Call(event) = event else { return };
        match *event {
            CallEvent::Incoming { call, channel, ref called, ref calling } => {
                let number = |n: &Option<crate::q931::ie::PartyNumber>| n.as_ref().map_or("-".to_string(), |n| n.digits.clone());
                info!("simulated PSTN: {call} to {} from {} on B-channel {channel}: ringing", number(called), number(calling));
                let ringing = Call { channel: Some(channel), phase: Phase::Ringing(now + RING), hangup_after: None, hangup_at: None };
                self.calls.insert(call, ringing);
                self.actions.push_back(Action::Alert(call));
            }
            CallEvent::Proceeding { call, channel } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.channel = Some(channel);
                }
            }
            CallEvent::Alerting { .. } => {}
            // Also reported for a call we answered: only a call we placed starts here.
            CallEvent::Connected { call } if self.calls.get(&call).is_some_and(|c| c.phase == Phase::Calling) => {
                info!("simulated PSTN: {call} answered by the branch");
                self.start_tone(call, now);
            }
            CallEvent::Connected { .. } => {}
            CallEvent::Cleared { call, ref cause } => {
                if self.calls.contains_key(&call) {
                    info!("simulated PSTN: {call} cleared, cause {}", cause.value);
                    self.forget(call);
                }
            }
        }
    }

    /// A block heard on `channel`: echoed back once the call's tone has played.
    pub fn heard(&mut self, channel: u8, samples: &[u8]) {
        let echoing = self.calls.values().any(|c| c.channel == Some(channel) && c.phase == Phase::Echo);
        if echoing {
            self.actions.push_back(Action::Audio { channel, samples: samples.to_vec() });
        }
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.calls
            .values()
            .flat_map(|c| {
                let phase = match c.phase {
                    Phase::Ringing(at) => Some(at),
                    Phase::Tone { next, .. } => Some(next),
                    Phase::Calling | Phase::Echo => None,
                };
                phase.into_iter().chain(c.hangup_at)
            })
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        // The stack reports no end for a call we clear ourselves: it is forgotten here.
        let due: Vec<CallId> = self.calls.iter().filter(|(_, c)| c.hangup_at.is_some_and(|at| at <= now)).map(|(&id, _)| id).collect();
        for call in due {
            info!("simulated PSTN: {call} hung up");
            self.actions.push_back(Action::Hangup { call, cause: cause::NORMAL_CLEARING });
            self.forget(call);
        }
        let mut answer = Vec::new();
        for (&call, c) in &mut self.calls {
            match c.phase {
                Phase::Ringing(at) if at <= now => answer.push(call),
                Phase::Tone { next, tone_end } if next <= now => {
                    let Some(channel) = c.channel else { continue };
                    // Blocks due but late (a busy loop) are skipped, not sent in a burst.
                    let mut due = next;
                    while due <= now {
                        due += BLOCK;
                    }
                    self.actions.push_back(Action::Audio { channel, samples: self.tone.clone() });
                    c.phase = if due >= tone_end { Phase::Echo } else { Phase::Tone { next: due, tone_end } };
                }
                _ => {}
            }
        }
        for call in answer {
            info!("simulated PSTN: {call} answered");
            self.actions.push_back(Action::Answer(call));
            self.start_tone(call, now);
        }
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn forget(&mut self, call: CallId) {
        if let Some(c) = self.calls.remove(&call) {
            if let (Some(channel), Phase::Tone { .. } | Phase::Echo) = (c.channel, c.phase) {
                self.actions.push_back(Action::Listen { channel, on: false });
            }
        }
    }

    fn start_tone(&mut self, call: CallId, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(channel) = c.channel else { return };
        c.phase = Phase::Tone { next: now + BLOCK, tone_end: now + TONE };
        c.hangup_at = c.hangup_after.map(|after| now + after);
        self.actions.push_back(Action::Listen { channel, on: true });
        self.actions.push_back(Action::Audio { channel, samples: self.tone.clone() });
    }
}

#[cfg(test)]
mod tests;
