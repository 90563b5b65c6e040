//! The tokio edge of the SIP side: the SIP transport, one RTP socket per B-channel and the
//! running trunk meet the sans-IO call layer (`sip::Calls`) and the RTP streams here, on one task
//! that holdfast-sip's `Driver` runs: PRI events and RTP are its inputs, the trunk's commands the
//! work it awaits.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use log::{debug, info, warn};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use holdfast_sip::driver::{Core, DriveError, Driver, Inputs, Outbound};
use holdfast_sip::transport::{Incoming, Transport, TransportError, TransportHandle};

use crate::dahdi::Law;
use crate::pri::PriEvent;
use crate::q931::Layout;
use crate::rtp::{Codec, Packetizer, SendDelays};
use crate::sip::{Action, Calls, SipConfig};
use crate::span::AudioSink;
use crate::trunk::{TrunkError, TrunkHandle};

/// Datagrams from the RTP sockets waiting for the loop; beyond it the socket buffers hold them.
const RTP_QUEUE: usize = 256;
/// An RTP datagram larger than this is not G.711 at 20 ms.
const RTP_MAX: usize = 1500;

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("SIP transport: {0}")]
    Transport(#[from] TransportError),
    #[error("RTP socket: {0}")]
    Rtp(std::io::Error),
    #[error("trunk: {0}")]
    Trunk(#[from] TrunkError),
    #[error("the SIP transport stopped")]
    TransportStopped,
}

#[derive(Debug, Clone, Copy)]
pub struct EdgeConfig {
    /// Our SIP address; RTP sockets bind on its IP.
    pub listen: SocketAddr,
    pub mediation: SocketAddr,
    pub layout: Layout,
    pub law: Law,
}

/// The bound sockets, ready to run.
pub struct Edge {
    config: EdgeConfig,
    transport: TransportHandle,
    incoming: mpsc::Receiver<Incoming>,
    rtp: HashMap<u8, Arc<UdpSocket>>,
    rtp_rx: mpsc::Receiver<(u8, Vec<u8>, SocketAddr)>,
    strangers: Strangers,
}

/// How many SIP messages the call layer refused for not coming from mediation, read by the
/// status task beside the loop.
#[derive(Clone, Default)]
pub struct Strangers(Arc<AtomicU64>);

impl Strangers {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Edge {
    pub async fn bind(config: EdgeConfig) -> Result<Edge, EdgeError> {
        let (transport, incoming) = Transport::bind(config.listen).await?;
        let (rtp_tx, rtp_rx) = mpsc::channel(RTP_QUEUE);
        let mut rtp = HashMap::new();
        for channel in config.layout.bchannels() {
            let socket = Arc::new(UdpSocket::bind((config.listen.ip(), 0)).await.map_err(EdgeError::Rtp)?);
            tokio::spawn(read_rtp(channel, socket.clone(), rtp_tx.clone()));
            rtp.insert(channel, socket);
        }
        info!("SIP on {} (UDP and TCP), mediation at {}", transport.local_addr(), config.mediation);
        Ok(Edge { config, transport, incoming, rtp, rtp_rx, strangers: Strangers::default() })
    }

    pub fn sip_addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    pub fn strangers(&self) -> Strangers {
        self.strangers.clone()
    }

    /// Runs until the trunk stops or `shutdown` completes.
    pub async fn run(self, mut trunk: TrunkHandle, shutdown: impl Future<Output = ()>) -> Result<(), EdgeError> {
        let Edge { config, transport, incoming, rtp, rtp_rx, strangers } = self;
        let mut rtp_addrs = HashMap::new();
        for (channel, socket) in &rtp {
            rtp_addrs.insert(*channel, socket.local_addr().map_err(EdgeError::Rtp)?);
        }
        let calls = Calls::new(
            SipConfig { local: transport.local_addr(), mediation: config.mediation, law: config.law, rtp: rtp_addrs },
            holdfast_sip::Ids::from_os(),
        );
        let mut inputs = EdgeInputs { pri: trunk.take_events(), rtp: rtp_rx };
        let mut gateway = Gateway { calls, trunk, law: config.law, rtp, streams: HashMap::new(), strangers };
        let mut driver = Driver::new(transport, incoming);
        match driver.run(&mut gateway, &mut inputs, shutdown).await {
            Ok(_) => Ok(()),
            Err(DriveError::TransportStopped) => Err(EdgeError::TransportStopped),
            Err(DriveError::Core(e)) => Err(e),
        }
    }
}

/// What reaches the loop besides SIP.
enum EdgeInput {
    Pri(PriEvent),
    Rtp { channel: u8, datagram: Vec<u8>, from: SocketAddr },
}

struct EdgeInputs {
    pri: mpsc::UnboundedReceiver<PriEvent>,
    rtp: mpsc::Receiver<(u8, Vec<u8>, SocketAddr)>,
}

impl Inputs for EdgeInputs {
    type Item = EdgeInput;

    /// `None` once the trunk has stopped.
    async fn recv(&mut self) -> Option<EdgeInput> {
        tokio::select! {
            event = self.pri.recv() => event.map(EdgeInput::Pri),
            Some((channel, datagram, from)) = self.rtp.recv() => Some(EdgeInput::Rtp { channel, datagram, from }),
        }
    }

    fn try_recv(&mut self) -> Option<EdgeInput> {
        match self.pri.try_recv() {
            Ok(event) => Some(EdgeInput::Pri(event)),
            Err(_) => self.rtp.try_recv().ok().map(|(channel, datagram, from)| EdgeInput::Rtp { channel, datagram, from }),
        }
    }
}

/// The call layer with what it drives: the trunk, and the RTP of each B-channel in a call.
struct Gateway {
    calls: Calls,
    trunk: TrunkHandle,
    law: Law,
    rtp: HashMap<u8, Arc<UdpSocket>>,
    /// The RTP coming in for each B-channel in a call: its peer and codec.
    streams: HashMap<u8, (SocketAddr, Codec)>,
    strangers: Strangers,
}

impl Core for Gateway {
    type Input = EdgeInput;
    type Error = EdgeError;

    fn next_timeout(&mut self) -> Option<Instant> {
        self.calls.next_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.calls.handle_timeout(now);
    }

    fn on_message(&mut self, Incoming { msg, source }: Incoming, now: Instant) {
        self.calls.on_message(msg, source, now);
        self.strangers.0.store(self.calls.strangers(), Ordering::Relaxed);
    }

    fn on_input(&mut self, input: EdgeInput, now: Instant) -> Result<(), EdgeError> {
        match input {
            EdgeInput::Pri(event) => {
                if let PriEvent::InService(up) = event {
                    info!("trunk {}", if up { "in service" } else { "unavailable" });
                }
                self.calls.on_pri(event, now);
            }
            EdgeInput::Rtp { channel, datagram, from } => {
                // Only the peer the SDP named feeds the B-channel.
                let samples = match self.streams.get(&channel) {
                    Some((remote, codec)) if *remote == from => codec.depacketize(&datagram),
                    _ => return Ok(()),
                };
                match samples {
                    // Never waits: a stalled B-channel must not hold up signalling.
                    Ok(samples) => {
                        if !self.trunk.offer_audio(channel, samples)? {
                            debug!("B-channel {channel}: trunk busy, RTP frame dropped");
                        }
                    }
                    Err(e) => debug!("RTP from {from} on B-channel {channel} dropped: {e}"),
                }
            }
        }
        Ok(())
    }

    fn poll_transmit(&mut self, _now: Instant) -> Option<Outbound> {
        self.calls.poll_outbound()
    }

    fn on_send_error(&mut self, failed: Outbound, error: TransportError, now: Instant) {
        warn!("SIP send failed: {error}");
        if let Outbound::Transaction(t) = failed {
            self.calls.on_transport_error(t.id(), now);
        }
    }

    /// The trunk's part of what the calls decided.
    async fn settle(&mut self, _now: Instant) -> Result<bool, EdgeError> {
        let mut busy = false;
        while let Some(action) = self.calls.poll_action() {
            busy = true;
            let trunk = &self.trunk;
            match action {
                Action::Place { leg, request } => {
                    let placed = trunk.place_call(request).await?;
                    self.calls.on_placed(leg, placed, Instant::now());
                }
                Action::Alert(call) => log_refused(call, "ALERTING", trunk.alert(call).await)?,
                Action::Answer(call) => log_refused(call, "CONNECT", trunk.answer(call).await)?,
                Action::Hangup { call, cause } => log_refused(call, "DISCONNECT", trunk.hangup(call, cause).await)?,
                Action::MediaStart { channel, remote, payload_type } => {
                    let codec = Codec::new(payload_type, self.law);
                    self.streams.insert(channel, (remote, codec));
                    if let Some(socket) = self.rtp.get(&channel) {
                        let sender = RtpSender {
                            channel,
                            socket: socket.clone(),
                            remote,
                            packetizer: Packetizer::new(codec, rand::random()),
                            delays: SendDelays::default(),
                        };
                        trunk.connect_audio(channel, Some(Box::new(sender))).await?;
                    }
                }
                Action::MediaStop { channel } => {
                    if self.streams.remove(&channel).is_some() {
                        trunk.connect_audio(channel, None).await?;
                    }
                }
            }
        }
        Ok(busy)
    }
}

/// A B-channel's blocks to the call's RTP peer, each sent as soon as the span has read it, on the
/// span's reading task: nothing between the B-channel and the socket but the packetizing.
struct RtpSender {
    channel: u8,
    socket: Arc<UdpSocket>,
    remote: SocketAddr,
    packetizer: Packetizer,
    delays: SendDelays,
}

impl AudioSink for RtpSender {
    fn block(&mut self, samples: &[u8], read_at: Instant) {
        let packet = self.packetizer.packetize(samples);
        // Never waits: a full socket buffer loses this frame, not the next ones' timing.
        match self.socket.try_send_to(&packet, self.remote) {
            Ok(_) => self.delays.record(read_at.elapsed()),
            Err(e) => debug!("RTP to {} for B-channel {}: {e}", self.remote, self.channel),
        }
    }
}

/// The stream ends when the call's media stops: its figures go to the log.
impl Drop for RtpSender {
    fn drop(&mut self) {
        info!("B-channel {}: RTP sent, B-channel read to RTP send {}", self.channel, self.delays);
    }
}

/// A call request the stack refused (the call changed state meanwhile) is logged; a stopped
/// trunk is an error.
fn log_refused(call: crate::q931::CallId, what: &str, result: Result<(), TrunkError>) -> Result<(), EdgeError> {
    match result {
        Err(TrunkError::Call(e)) => {
            debug!("{call}: {what} not sent: {e}");
            Ok(())
        }
        other => Ok(other?),
    }
}

async fn read_rtp(channel: u8, socket: Arc<UdpSocket>, to_loop: mpsc::Sender<(u8, Vec<u8>, SocketAddr)>) {
    let mut buf = vec![0u8; RTP_MAX];
    loop {
        let received = tokio::select! {
            // The loop is gone: the socket closes with this task.
            _ = to_loop.closed() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        match received {
            Ok((n, from)) => {
                if to_loop.send((channel, buf[..n].to_vec(), from)).await.is_err() {
                    return;
                }
            }
            // ICMP port unreachable from a peer that went away shows up here on Linux; go on.
            Err(e) => debug!("RTP socket of B-channel {channel}: {e}"),
        }
    }
}
