//! Two in-process spans wired back to back, the "simulated" span. What one sends on its
//! D-channel or a B-channel arrives at the other; a line alarm reaches both and cuts the line.

use log::info;
use tokio::sync::{mpsc, watch};

use super::{Span, SpanError, SpanEvent};
use crate::alarms::Alarms;
use crate::q931::Layout;

enum Wire {
    DFrame(Vec<u8>),
    Audio(u8, Vec<u8>),
}

pub struct SimulatedSpan {
    name: String,
    layout: Layout,
    tx: mpsc::UnboundedSender<Wire>,
    rx: mpsc::UnboundedReceiver<Wire>,
    alarms: watch::Receiver<Alarms>,
    line_gone: bool,
    open: [bool; 32],
}

/// The line between the two simulated spans: raise or clear alarms on it.
#[derive(Clone)]
pub struct SimulatedLine {
    alarms: watch::Sender<Alarms>,
}

impl SimulatedLine {
    pub fn set_alarms(&self, alarms: Alarms) {
        info!("simulated span: line alarms now {alarms}");
        self.alarms.send_replace(alarms);
    }
}

impl SimulatedSpan {
    pub fn pair(layout: Layout) -> (SimulatedSpan, SimulatedSpan, SimulatedLine) {
        let (a_tx, b_rx) = mpsc::unbounded_channel();
        let (b_tx, a_rx) = mpsc::unbounded_channel();
        let (alarms, watch_rx) = watch::channel(Alarms::NONE);
        let make = |name: &str, tx, rx| SimulatedSpan {
            name: format!("simulated span {name}"),
            layout,
            tx,
            rx,
            alarms: watch_rx.clone(),
            line_gone: false,
            open: [false; 32],
        };
        (make("a", a_tx, a_rx), make("b", b_tx, b_rx), SimulatedLine { alarms })
    }

    fn line_up(&self) -> bool {
        self.alarms.borrow().in_service()
    }

    /// What arrives of `wire`: nothing while the line is down (frames in flight when it failed
    /// are lost, as on a real line) or for a B-channel not open.
    fn deliver(&self, wire: Wire) -> Option<SpanEvent> {
        if !self.line_up() {
            return None;
        }
        match wire {
            Wire::DFrame(frame) => Some(SpanEvent::DFrame(frame)),
            Wire::Audio(channel, samples) => self
                .open
                .get(usize::from(channel))
                .copied()
                .unwrap_or(false)
                .then(|| SpanEvent::Audio { channel, samples, read_at: std::time::Instant::now() }),
        }
    }
}

impl Span for SimulatedSpan {
    fn name(&self) -> &str {
        &self.name
    }

    fn layout(&self) -> Layout {
        self.layout
    }

    fn alarms(&self) -> Alarms {
        *self.alarms.borrow()
    }

    async fn send_dframe(&mut self, frame: &[u8]) -> Result<(), SpanError> {
        if self.line_up() {
            self.tx.send(Wire::DFrame(frame.to_vec())).map_err(|_| SpanError::Closed)?;
        }
        Ok(())
    }

    async fn send_audio(&mut self, channel: u8, samples: &[u8]) -> Result<(), SpanError> {
        if !self.layout.is_bchannel(channel) {
            return Err(SpanError::NotBChannel(channel));
        }
        if self.line_up() {
            self.tx.send(Wire::Audio(channel, samples.to_vec())).map_err(|_| SpanError::Closed)?;
        }
        Ok(())
    }

    fn open_bchannel(&mut self, channel: u8) -> Result<(), SpanError> {
        let slot = self
            .open
            .get_mut(usize::from(channel))
            .filter(|_| self.layout.is_bchannel(channel))
            .ok_or(SpanError::NotBChannel(channel))?;
        *slot = true;
        Ok(())
    }

    fn close_bchannel(&mut self, channel: u8) {
        if let Some(slot) = self.open.get_mut(usize::from(channel)) {
            *slot = false;
        }
    }

    async fn recv(&mut self) -> Result<SpanEvent, SpanError> {
        loop {
            tokio::select! {
                biased;
                changed = self.alarms.changed(), if !self.line_gone => match changed {
                    Ok(()) => return Ok(SpanEvent::Alarms(*self.alarms.borrow_and_update())),
                    Err(_) => self.line_gone = true,
                },
                wire = self.rx.recv() => match wire {
                    None => return Err(SpanError::Closed),
                    Some(wire) => if let Some(event) = self.deliver(wire) { return Ok(event) },
                },
            }
        }
    }

    fn try_recv(&mut self) -> Option<Result<SpanEvent, SpanError>> {
        // Alarm changes come first, as in recv, which reports them.
        if !self.line_gone && self.alarms.has_changed().unwrap_or(false) {
            return None;
        }
        loop {
            match self.rx.try_recv() {
                Ok(wire) => {
                    if let Some(event) = self.deliver(wire) {
                        return Some(Ok(event));
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => return None,
                Err(mpsc::error::TryRecvError::Disconnected) => return Some(Err(SpanError::Closed)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_and_audio_cross_and_alarms_cut_the_line() {
        let (mut a, mut b, line) = SimulatedSpan::pair(Layout::T1);
        assert!(a.name().contains("simulated"));
        a.send_dframe(&[1, 2, 3]).await.unwrap();
        assert_eq!(b.recv().await.unwrap(), SpanEvent::DFrame(vec![1, 2, 3]));
        // Audio for a channel b has not opened is not delivered.
        a.send_audio(5, &[0xD5; 160]).await.unwrap();
        a.send_dframe(&[4]).await.unwrap();
        assert_eq!(b.recv().await.unwrap(), SpanEvent::DFrame(vec![4]));
        b.open_bchannel(5).unwrap();
        a.send_audio(5, &[0x55; 160]).await.unwrap();
        assert!(matches!(b.recv().await.unwrap(), SpanEvent::Audio { channel: 5, samples, .. } if samples == [0x55; 160]));
        assert!(matches!(a.send_audio(24, &[0]).await, Err(SpanError::NotBChannel(24))));
        line.set_alarms(Alarms::RED);
        assert_eq!(a.recv().await.unwrap(), SpanEvent::Alarms(Alarms::RED));
        assert_eq!(b.recv().await.unwrap(), SpanEvent::Alarms(Alarms::RED));
        a.send_dframe(&[9]).await.unwrap();
        line.set_alarms(Alarms::NONE);
        assert_eq!(b.recv().await.unwrap(), SpanEvent::Alarms(Alarms::NONE));
        a.send_dframe(&[10]).await.unwrap();
        assert_eq!(b.recv().await.unwrap(), SpanEvent::DFrame(vec![10]), "the frame sent in alarm was lost");
    }
}
