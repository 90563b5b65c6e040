//! The tokio edge of the SIP side: the SIP transport, one RTP socket per B-channel and the
//! running trunk meet the sans-IO call layer (`sip::Calls`) and the RTP streams here, on one task.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use log::{debug, info, warn};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::sleep_until;

use holdfast_sip::transport::{Incoming, Transport, TransportError, TransportHandle};

use crate::dahdi::Law;
use crate::pri::PriEvent;
use crate::q931::Layout;
use crate::rtp::{Codec, Packetizer, SendDelays};
use crate::sip::{Action, Calls, Outbound, SipConfig};
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
        Ok(Edge { config, transport, incoming, rtp, rtp_rx })
    }

    pub fn sip_addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    /// Runs until the trunk stops or `shutdown` completes.
    pub async fn run(mut self, mut trunk: TrunkHandle, shutdown: impl Future<Output = ()>) -> Result<(), EdgeError> {
        let mut rtp_addrs = HashMap::new();
        for (channel, socket) in &self.rtp {
            rtp_addrs.insert(*channel, socket.local_addr().map_err(EdgeError::Rtp)?);
        }
        let mut calls = Calls::new(SipConfig {
            local: self.transport.local_addr(),
            mediation: self.config.mediation,
            law: self.config.law,
            rtp: rtp_addrs,
        }, holdfast_sip::Ids::from_os());
        // The RTP coming in for each B-channel in a call: its peer and codec.
        let mut streams: HashMap<u8, (SocketAddr, Codec)> = HashMap::new();
        tokio::pin!(shutdown);
        loop {
            let deadline = calls.next_timeout().map(tokio::time::Instant::from_std);
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                event = trunk.recv() => match event {
                    None => return Ok(()),
                    Some(event) => {
                        if let PriEvent::InService(up) = event {
                            info!("trunk {}", if up { "in service" } else { "unavailable" });
                        }
                        calls.on_pri(event, Instant::now());
                    }
                },
                msg = self.incoming.recv() => match msg {
                    Some(Incoming { msg, source }) => calls.on_message(msg, source, Instant::now()),
                    None => return Err(EdgeError::TransportStopped),
                },
                Some((channel, datagram, from)) = self.rtp_rx.recv() => {
                    // Only the peer the SDP named feeds the B-channel.
                    let samples = match streams.get(&channel) {
                        Some((remote, codec)) if *remote == from => codec.depacketize(&datagram),
                        _ => continue,
                    };
                    match samples {
                        // Never waits: a stalled B-channel must not hold up signalling.
                        Ok(samples) => {
                            if !trunk.offer_audio(channel, samples)? {
                                debug!("B-channel {channel}: trunk busy, RTP frame dropped");
                            }
                        }
                        Err(e) => debug!("RTP from {from} on B-channel {channel} dropped: {e}"),
                    }
                }
                _ = async { if let Some(d) = deadline { sleep_until(d).await } }, if deadline.is_some() => {
                    calls.handle_timeout(Instant::now());
                }
            }
            self.flush(&mut calls, &trunk, &mut streams).await?;
        }
    }

    async fn flush(
        &self,
        calls: &mut Calls,
        trunk: &TrunkHandle,
        streams: &mut HashMap<u8, (SocketAddr, Codec)>,
    ) -> Result<(), EdgeError> {
        // Placing a call feeds the layer again; each round drains what it queued. Bounded: a
        // round without output ends it, and each action is consumed once.
        for _ in 0..1000 {
            let mut busy = false;
            while let Some(out) = calls.poll_outbound() {
                busy = true;
                let result = match &out {
                    Outbound::Transaction(t) => self.transport.transmit(t).await,
                    Outbound::Request { request, dest } => {
                        let msg = holdfast_sip::message::Message::Request(request.clone());
                        self.transport.send_to(&msg, *dest, holdfast_sip::transport::Protocol::Udp).await
                    }
                    Outbound::Response(r) => self.transport.send_response(r).await,
                };
                if let Err(e) = result {
                    warn!("SIP send failed: {e}");
                    if let Outbound::Transaction(t) = out {
                        calls.on_transport_error(t.id(), Instant::now());
                    }
                }
            }
            while let Some(action) = calls.poll_action() {
                busy = true;
                match action {
                    Action::Place { leg, request } => {
                        let placed = trunk.place_call(request).await?;
                        calls.on_placed(leg, placed, Instant::now());
                    }
                    Action::Alert(call) => log_refused(call, "ALERTING", trunk.alert(call).await)?,
                    Action::Answer(call) => log_refused(call, "CONNECT", trunk.answer(call).await)?,
                    Action::Hangup { call, cause } => log_refused(call, "DISCONNECT", trunk.hangup(call, cause).await)?,
                    Action::MediaStart { channel, remote, payload_type } => {
                        let codec = Codec::new(payload_type, self.config.law);
                        streams.insert(channel, (remote, codec));
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
                        if streams.remove(&channel).is_some() {
                            trunk.connect_audio(channel, None).await?;
                        }
                    }
                }
            }
            if !busy {
                return Ok(());
            }
        }
        warn!("SIP side: output did not settle");
        Ok(())
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
