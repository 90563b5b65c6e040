//! Two in-process spans wired back to back, the "simulated" span. What one sends on its
//! D-channel or a B-channel arrives at the other; a line alarm reaches both and cuts the line.

use log::info;
use tokio::sync::{mpsc, watch};

use super::{AudioSink, Span, SpanError, SpanEvent};
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
    sinks: std::collections::HashMap<u8, Box<dyn AudioSink>>,
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
            sinks: std::collections::HashMap::new(),
        };
        (make("a", a_tx, a_rx), make("b", b_tx, b_rx), SimulatedLine { alarms })
    }

    fn line_up(&self) -> bool {
        self.alarms.borrow().in_service()
    }

    /// What arrives of `wire`: nothing while the line is down (frames in flight when it failed
    /// are lost, as on a real line); audio goes to the sink of its channel while it is open.
    fn deliver(&mut self, wire: Wire) -> Option<SpanEvent> {
        if !self.line_up() {
            return None;
        }
        match wire {
            Wire::DFrame(frame) => Some(SpanEvent::DFrame(frame)),
            Wire::Audio(channel, samples) => {
                let open = self.open.get(usize::from(channel)).copied().unwrap_or(false);
                if let Some(sink) = self.sinks.get_mut(&channel).filter(|_| open) {
                    sink.block(&samples, std::time::Instant::now());
                }
                None
            }
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

    fn connect_audio(&mut self, channel: u8, sink: Option<Box<dyn AudioSink>>) -> Result<(), SpanError> {
        if !self.layout.is_bchannel(channel) {
            return Err(SpanError::NotBChannel(channel));
        }
        match sink {
            Some(sink) => self.sinks.insert(channel, sink),
            None => self.sinks.remove(&channel),
        };
        Ok(())
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
        // Audio goes to the channel's sink, and only while b has the channel open.
        let (sink, mut heard) = mpsc::unbounded_channel();
        b.connect_audio(5, Some(Box::new(sink))).unwrap();
        a.send_audio(5, &[0xD5; 160]).await.unwrap();
        a.send_dframe(&[4]).await.unwrap();
        assert_eq!(b.recv().await.unwrap(), SpanEvent::DFrame(vec![4]));
        assert!(heard.try_recv().is_err(), "audio of a channel not open was delivered");
        b.open_bchannel(5).unwrap();
        a.send_audio(5, &[0x55; 160]).await.unwrap();
        a.send_dframe(&[5]).await.unwrap();
        assert_eq!(b.recv().await.unwrap(), SpanEvent::DFrame(vec![5]));
        assert_eq!(heard.try_recv().unwrap(), [0x55; 160]);
        assert!(matches!(a.send_audio(24, &[0]).await, Err(SpanError::NotBChannel(24))));
        assert!(matches!(b.connect_audio(24, None), Err(SpanError::NotBChannel(24))));
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
