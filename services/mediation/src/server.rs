//! The event loop: the one place where sockets, the store and time meet the sans-IO parts
//! (transactions, the B2BUA, the health checks, the trunk registrations). One task; call
//! records go to the store's group-commit writer beside it. SIGTERM (or SIGINT) ends the calls
//! in progress and drains the writer before the service exits.
use crate::b2bua::{B2bua, B2buaConfig, Output};
use crate::config::Config;
use crate::health::Health;
use crate::registration::Registrations;
use crate::relay_media::RelayMedia;
use crate::status::StatusFile;
use holdfast_media::{Relay, RelayConfig};
use holdfast_runtime::{Notifier, WallClock};
use holdfast_sip::message::{Message, Request};
use holdfast_sip::transaction::{Inbound, TimerConfig, Transactions};
use holdfast_sip::transport::{Incoming, Transport, TransportHandle};
use holdfast_sip::Ids;
use holdfast_store::{CdrWriter, Store};
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("SIP transport on {addr}: {source}")]
    Transport { addr: std::net::SocketAddr, source: holdfast_sip::transport::TransportError },
    #[error("media relay: {0}")]
    Relay(#[from] holdfast_media::RelayError),
    #[error("store: {0}")]
    Store(#[from] holdfast_store::StoreError),
    #[error("TLS: {0}")]
    Tls(#[from] holdfast_tls::TlsError),
    #[error("the SIP transport stopped")]
    TransportStopped,
    #[error("installing the signal handlers: {0}")]
    Signals(std::io::Error),
}

/// How often the status snapshot is rewritten.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How often answered calls are checked for media.
const REAP_EVERY: Duration = Duration::from_secs(5);
/// Datagrams handled per turn of the loop before what they caused is sent: under load the
/// timers are looked at and the queues drained once per burst, not once per datagram.
const BURST: usize = 64;

pub struct Server {
    media_timeout: Duration,
    txns: Transactions,
    transport: TransportHandle,
    b2bua: B2bua<RelayMedia>,
    health: Health,
    registrations: Registrations,
    store: Store,
    cdrs: CdrWriter,
    notifier: Notifier,
    status: StatusFile,
}

impl Server {
    /// Binds SIP, starts the relay, opens the store.
    pub async fn start(config: Config, notifier: Notifier) -> Result<(Server, mpsc::Receiver<Incoming>), ServerError> {
        let tls = crate::tls::setup(&config)?;
        let (transport, incoming) = Transport::bind_with_tls(config.listen, tls)
            .await
            .map_err(|source| ServerError::Transport { addr: config.listen, source })?;
        // Via and Contact carry the address peers reach us at, with the port bound.
        let local = std::net::SocketAddr::new(config.advertise, transport.local_addr().port());
        let relay = Relay::start(RelayConfig { bind_ip: config.media_ip, ports: config.media_ports.clone() })?;
        let store = Store::open(&config.db).await?;
        let cdrs = store.cdr_writer().await?;
        let now = Instant::now();
        let trunks = config.plan.trunks.iter().filter(|t| t.options).map(|t| (t.name.clone(), t.address, t.transport));
        let health = Health::new(trunks, config.options_interval, config.dead_after, local, Ids::from_os(), now);
        let registering = config
            .plan
            .trunks
            .iter()
            .filter_map(|t| Some((t.name.clone(), t.address, t.transport, t.registration.clone()?)));
        let registrations = Registrations::new(registering, local, Ids::from_os(), now);
        let media_timeout = config.media_timeout;
        let b2b = B2buaConfig { local, registrar: config.registrar, no_answer: config.no_answer };
        let b2bua = B2bua::new(b2b, config.plan, RelayMedia::new(relay), WallClock::read(), Ids::from_os());
        let txns = Transactions::new(TimerConfig::default());
        let status = StatusFile::beside(&config.db);
        Ok((Server { media_timeout, txns, transport, b2bua, health, registrations, store, cdrs, notifier, status }, incoming))
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.transport.local_addr()
    }

    pub async fn run(mut self, mut incoming: mpsc::Receiver<Incoming>) -> Result<(), ServerError> {
        let mut watchdog =
            tokio::time::interval(self.notifier.watchdog_interval().unwrap_or(Duration::from_secs(3600)));
        let mut reap = tokio::time::interval(REAP_EVERY);
        let mut status_tick = tokio::time::interval(STATUS_EVERY);
        let mut sigterm = signal(SignalKind::terminate()).map_err(ServerError::Signals)?;
        let mut sigint = signal(SignalKind::interrupt()).map_err(ServerError::Signals)?;
        self.notifier.ready(&format!("listening on {}", self.transport.local_addr()));
        loop {
            let timer = [
                self.txns.next_timeout(),
                self.b2bua.next_timeout(),
                self.health.next_timeout(),
                self.registrations.next_timeout(),
            ]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                msg = incoming.recv() => match msg {
                    Some(msg) => {
                        self.on_incoming(msg);
                        for _ in 1..BURST {
                            let Ok(msg) = incoming.try_recv() else { break };
                            self.on_incoming(msg);
                        }
                    }
                    None => return Err(ServerError::TransportStopped),
                },
                _ = sleep_until(timer), if timer.is_some() => {
                    let now = Instant::now();
                    self.txns.handle_timeout(now);
                    self.b2bua.handle_timeout(&mut self.txns, now);
                    self.health.handle_timeout(&mut self.txns, now);
                    self.registrations.handle_timeout(&mut self.txns, now);
                }
                _ = reap.tick() => self.b2bua.reap_idle(&mut self.txns, self.media_timeout, Instant::now()),
                _ = status_tick.tick() => self.status.write(&self.b2bua, &self.health, &self.cdrs),
                _ = watchdog.tick() => self.notifier.notify("WATCHDOG=1"),
                _ = sigterm.recv() => break,
                _ = sigint.recv() => break,
            }
            self.flush().await;
        }
        self.notifier.notify("STOPPING=1");
        log::info!("stopping: {} calls in progress ended", self.b2bua.len());
        self.b2bua.shutdown(&mut self.txns, Instant::now());
        self.flush().await;
        let stats = self.cdrs.close().await;
        log::info!("call records: {} stored in {} commits, {} refused", stats.records, stats.commits, stats.lost);
        self.store.close().await;
        Ok(())
    }

    fn on_incoming(&mut self, Incoming { msg, source }: Incoming) {
        let now = Instant::now();
        let request: Request = match msg {
            Message::Request(r) => r,
            Message::Response(r) => {
                // Unmatched: a retransmitted 2xx (our ACK was lost), or a late probe answer.
                if let Some(stray) = self.txns.on_response(r, now) {
                    self.b2bua.on_stray_response(&stray);
                }
                return;
            }
        };
        match self.txns.on_request(request, source.transport, now) {
            Ok(Inbound::Request { id, request }) => {
                self.b2bua.on_request(&mut self.txns, id, request, source.addr, source.transport, now)
            }
            Ok(Inbound::Cancel { id, request, invite }) => {
                let known = invite.is_some_and(|inv| self.b2bua.on_cancel(&mut self.txns, inv, now));
                if let Err(e) = self.txns.send_response(id, request.response(if known { 200 } else { 481 }), now) {
                    log::debug!("CANCEL answer not sent: {e}");
                }
            }
            // The ACK for our 2xx ends A's part of the handshake; nothing to relay (B was
            // acknowledged when it answered).
            Ok(Inbound::Ack(ack)) => self.b2bua.on_ack(&ack),
            Ok(Inbound::Absorbed) => {}
            Err(e) => log::debug!("request from {} refused by the transaction layer: {e}", source.addr),
        }
    }

    /// Sends what the transactions queued, hands their events on, stores call records.
    async fn flush(&mut self) {
        let now = Instant::now();
        for _ in 0..1000 {
            let mut busy = false;
            while let Some(event) = self.txns.poll_event() {
                busy = true;
                if !self.health.on_event(&event) && !self.registrations.on_event(&mut self.txns, &event, now) {
                    self.b2bua.on_event(&mut self.txns, &event, now);
                }
            }
            while let Some((trunk, alive)) = self.health.poll_change() {
                self.b2bua.set_trunk_alive(&trunk, alive);
            }
            while let Some(t) = self.txns.poll_transmit() {
                busy = true;
                if let Err(e) = self.transport.transmit(&t).await {
                    log::debug!("sending failed: {e}");
                    self.txns.on_transport_error(t.id());
                }
            }
            while let Some(out) = self.b2bua.poll_output() {
                busy = true;
                match out {
                    Output::Send { request, dest, transport } => {
                        if let Err(e) = self.transport.send_to(&Message::Request(request), dest, transport).await {
                            log::debug!("ACK not sent: {e}");
                        }
                    }
                    Output::Respond(response) => {
                        if let Err(e) = self.transport.send_response(&response).await {
                            log::debug!("2xx retransmission not sent: {e}");
                        }
                    }
                    Output::Cdr(cdr) => {
                        self.status.on_cdr(&cdr);
                        if let Err(e) = self.cdrs.write(cdr) {
                            log::error!("{e}");
                        }
                    }
                }
            }
            if !busy {
                return;
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}
