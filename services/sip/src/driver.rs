//! The one event loop every service runs: a sans-IO core over the SIP transport, the core's own
//! timers and a queue of inputs from beside the loop (store commits, the PRI trunk, RTP).
//!
//! quinn's `Endpoint` beside quinn-proto is the model. The core says when it next wants the
//! time (`next_timeout`), is told it (`handle_timeout`), is handed what arrives (`on_message`,
//! `on_input`) and, after each turn, is drained of what it wants sent (`poll_transmit`) and of
//! work that must be awaited (`settle`). The core does no I/O and reads no clock; the driver
//! knows no protocol (a core without SIP, the gateway's simulated exchange, runs on a driver
//! `without_sip`). Periodic duties (a status snapshot, a sweep, the watchdog) are timers of
//! the core like any other: [`Periodic`] keeps them.
use crate::message::{Request, Response};
use crate::transaction::Transmit;
use crate::transport::{Incoming, Protocol, TransportError, TransportHandle};
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Rounds of draining per turn: sending can feed the core again (a placed call answers at once),
/// so a round without output ends the turn; this bounds a core that never settles.
const ROUNDS: usize = 1000;

/// What a core wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// Queued by the transaction table; a failure is that transaction's transport error.
    Transaction(Transmit),
    /// A request outside any transaction: the ACK for a 2xx, a keep-alive probe.
    Request { request: Request, dest: SocketAddr, transport: Protocol },
    /// A response outside any transaction: a stateless answer, a 2xx sent again until its ACK.
    Response(Response),
}

/// A sans-IO core the driver runs.
pub trait Core {
    /// What arrives from beside the loop.
    type Input;
    /// Why the core stops the driver.
    type Error;
    /// Messages handled per turn before what they caused is sent: more makes the timers looked
    /// at and the output drained once per burst rather than once per datagram, but lets a
    /// transaction's output overtake what an earlier message queued outside it (a proxy's ACK
    /// and the BYE after it must leave in the order they came).
    const BURST: usize = 1;
    /// Inputs handled per turn likewise (a group commit answers hundreds at once).
    const INPUT_BURST: usize = 1;
    fn next_timeout(&mut self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    fn on_message(&mut self, incoming: Incoming, now: Instant);
    fn on_input(&mut self, input: Self::Input, now: Instant) -> Result<(), Self::Error>;
    /// The next thing to send, after the core has handed on every event it has.
    fn poll_transmit(&mut self, now: Instant) -> Option<Outbound>;
    fn on_send_error(&mut self, failed: Outbound, error: TransportError, now: Instant);
    /// Work beyond SIP that is awaited (the gateway's commands to its trunk); whether there was any.
    fn settle(&mut self, _now: Instant) -> impl Future<Output = Result<bool, Self::Error>> {
        async { Ok(false) }
    }
}

/// Where a core's inputs come from; `None`: the source has ended, and so does the driver.
pub trait Inputs {
    type Item;
    fn recv(&mut self) -> impl Future<Output = Option<Self::Item>>;
    /// One that is already there.
    fn try_recv(&mut self) -> Option<Self::Item>;
}

impl<T> Inputs for mpsc::Receiver<T> {
    type Item = T;
    fn recv(&mut self) -> impl Future<Output = Option<T>> {
        mpsc::Receiver::recv(self)
    }
    fn try_recv(&mut self) -> Option<T> {
        mpsc::Receiver::try_recv(self).ok()
    }
}

impl<T> Inputs for mpsc::UnboundedReceiver<T> {
    type Item = T;
    fn recv(&mut self) -> impl Future<Output = Option<T>> {
        mpsc::UnboundedReceiver::recv(self)
    }
    fn try_recv(&mut self) -> Option<T> {
        mpsc::UnboundedReceiver::try_recv(self).ok()
    }
}

/// A core with nothing but SIP and time.
pub struct NoInputs<T>(std::marker::PhantomData<T>);

impl<T> Default for NoInputs<T> {
    fn default() -> Self {
        NoInputs(std::marker::PhantomData)
    }
}

impl<T> Inputs for NoInputs<T> {
    type Item = T;
    fn recv(&mut self) -> impl Future<Output = Option<T>> {
        std::future::pending()
    }
    fn try_recv(&mut self) -> Option<T> {
        None
    }
}

/// Why `run` returned without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The shutdown future completed.
    Shutdown,
    /// The inputs ended.
    InputsEnded,
}

#[derive(Debug, thiserror::Error)]
pub enum DriveError<E> {
    #[error("the SIP transport stopped")]
    TransportStopped,
    #[error(transparent)]
    Core(E),
}

/// Where a core's SIP comes from and goes.
pub trait Link {
    /// `None`: the transport has stopped.
    fn recv(&mut self) -> impl Future<Output = Option<Incoming>>;
    /// One that is already there.
    fn try_recv(&mut self) -> Option<Incoming>;
    fn send(&self, out: &Outbound) -> impl Future<Output = Result<(), TransportError>>;
}

/// The SIP transport and what it receives.
pub struct Sip {
    transport: TransportHandle,
    incoming: mpsc::Receiver<Incoming>,
}

impl Link for Sip {
    fn recv(&mut self) -> impl Future<Output = Option<Incoming>> {
        self.incoming.recv()
    }

    fn try_recv(&mut self) -> Option<Incoming> {
        self.incoming.try_recv().ok()
    }

    async fn send(&self, out: &Outbound) -> Result<(), TransportError> {
        match out {
            Outbound::Transaction(t) => self.transport.transmit(t).await,
            Outbound::Request { request, dest, transport } => self.transport.send_request(request, *dest, *transport).await,
            Outbound::Response(r) => self.transport.send_response(r).await,
        }
    }
}

/// No SIP: a core with inputs and time only (sba-gateway's simulated PSTN exchange).
pub struct NoSip;

impl Link for NoSip {
    fn recv(&mut self) -> impl Future<Output = Option<Incoming>> {
        std::future::pending()
    }

    fn try_recv(&mut self) -> Option<Incoming> {
        None
    }

    async fn send(&self, _out: &Outbound) -> Result<(), TransportError> {
        Err(TransportError::Unsupported("none: this driver has no SIP transport".into()))
    }
}

/// A core's link and the loop that runs it.
pub struct Driver<L = Sip> {
    link: L,
}

impl Driver<Sip> {
    pub fn new(transport: TransportHandle, incoming: mpsc::Receiver<Incoming>) -> Driver {
        Driver { link: Sip { transport, incoming } }
    }

    pub fn transport(&self) -> &TransportHandle {
        &self.link.transport
    }
}

impl Driver<NoSip> {
    pub fn without_sip() -> Driver<NoSip> {
        Driver { link: NoSip }
    }
}

impl<L: Link> Driver<L> {
    /// Runs `core` until `shutdown` completes, the inputs end, the transport stops or the core
    /// fails.
    pub async fn run<C: Core, I: Inputs<Item = C::Input>>(
        &mut self,
        core: &mut C,
        inputs: &mut I,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Stopped, DriveError<C::Error>> {
        tokio::pin!(shutdown);
        loop {
            let timer = core.next_timeout();
            tokio::select! {
                _ = &mut shutdown => return Ok(Stopped::Shutdown),
                msg = self.link.recv() => {
                    let Some(msg) = msg else { return Err(DriveError::TransportStopped) };
                    core.on_message(msg, Instant::now());
                    for _ in 1..C::BURST {
                        let Some(msg) = self.link.try_recv() else { break };
                        core.on_message(msg, Instant::now());
                    }
                }
                input = inputs.recv() => {
                    let Some(input) = input else { return Ok(Stopped::InputsEnded) };
                    core.on_input(input, Instant::now()).map_err(DriveError::Core)?;
                    for _ in 1..C::INPUT_BURST {
                        let Some(input) = inputs.try_recv() else { break };
                        core.on_input(input, Instant::now()).map_err(DriveError::Core)?;
                    }
                }
                _ = sleep_until(timer), if timer.is_some() => core.handle_timeout(Instant::now()),
            }
            self.flush(core).await.map_err(DriveError::Core)?;
        }
    }

    /// Sends what the core has to send and settles its other work, until it has none.
    pub async fn flush<C: Core>(&self, core: &mut C) -> Result<(), C::Error> {
        for _ in 0..ROUNDS {
            let now = Instant::now();
            let mut busy = false;
            while let Some(out) = core.poll_transmit(now) {
                busy = true;
                if let Err(e) = self.link.send(&out).await {
                    core.on_send_error(out, e, now);
                }
            }
            busy |= core.settle(now).await?;
            if !busy {
                return Ok(());
            }
        }
        log::warn!("the event loop's output did not settle in {ROUNDS} rounds");
        Ok(())
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// A core's periodic timers, one per kind of its own (`T`, an enum): each fires at once, then
/// every period after it last fired.
#[derive(Debug)]
pub struct Periodic<T> {
    timers: Vec<(T, Duration, Instant)>,
}

impl<T: Copy> Periodic<T> {
    pub fn new(every: impl IntoIterator<Item = (T, Duration)>, now: Instant) -> Periodic<T> {
        Periodic { timers: every.into_iter().map(|(kind, period)| (kind, period, now)).collect() }
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.iter().map(|t| t.2).min()
    }

    /// The kinds due at `now`, each rescheduled a period later.
    pub fn expired(&mut self, now: Instant) -> Vec<T> {
        let mut due = Vec::new();
        for (kind, period, at) in &mut self.timers {
            if *at <= now {
                due.push(*kind);
                *at = now + *period;
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Tick {
        Fast,
        Slow,
    }

    #[test]
    fn periodic_timers_fire_at_once_then_each_period() {
        let t0 = Instant::now();
        let mut p = Periodic::new([(Tick::Fast, Duration::from_secs(1)), (Tick::Slow, Duration::from_secs(5))], t0);
        assert_eq!(p.next_timeout(), Some(t0));
        assert_eq!(p.expired(t0), vec![Tick::Fast, Tick::Slow]);
        assert_eq!(p.next_timeout(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(p.expired(t0 + Duration::from_millis(500)), vec![]);
        assert_eq!(p.expired(t0 + Duration::from_secs(1)), vec![Tick::Fast]);
        assert_eq!(p.expired(t0 + Duration::from_secs(5)), vec![Tick::Fast, Tick::Slow]);
        assert_eq!(p.next_timeout(), Some(t0 + Duration::from_secs(6)));
    }
}
