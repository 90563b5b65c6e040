//! The service as one sans-IO core (transactions, the B2BUA, the health checks, the trunk
//! registrations, its periodic duties) that holdfast-sip's `Driver` runs over the sockets and
//! time on one task; call records go to the store's group-commit writer beside it. SIGTERM (or SIGINT) ends the calls
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
use holdfast_sip::driver::{Core, DriveError, Driver, NoInputs, Outbound, Periodic};
use holdfast_sip::transport::{Incoming, Transport, TransportError, TransportHandle};
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
    #[error("media_ip \"auto\": neither a default route nor an interface that is up with an IPv4 address within {wait}s ({0}); set media_ip to the branch LAN address", wait = ROUTE_WAIT.as_secs())]
    MediaIp(std::io::Error),
    #[error("the SIP transport stopped")]
    TransportStopped,
    #[error("installing the signal handlers: {0}")]
    Signals(std::io::Error),
}

/// How long `media_ip = "auto"` waits at start for an address (systemd's start timeout is 30 s).
const ROUTE_WAIT: Duration = Duration::from_secs(20);
/// How often the status snapshot is rewritten.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// How often answered calls are checked for media.
const REAP_EVERY: Duration = Duration::from_secs(5);
/// How often call records beyond their retention are deleted (and once at the start).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The loop's own periodic duties.
#[derive(Debug, Clone, Copy)]
enum Tick {
    Reap,
    Status,
    Watchdog,
    Prune,
}

pub struct Server {
    media_timeout: Duration,
    /// Call records are kept this long, and at most this many.
    cdr_keep: (Duration, u32),
    /// The next settle deletes the records beyond `cdr_keep`.
    prune_due: bool,
    txns: Transactions,
    transport: TransportHandle,
    b2bua: B2bua<RelayMedia>,
    health: Health,
    registrations: Registrations,
    store: Store,
    cdrs: CdrWriter,
    notifier: Notifier,
    status: StatusFile,
    ticks: Periodic<Tick>,
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
        let media_ip = match config.media_ip {
            Some(ip) => ip,
            None => {
                let found = crate::media_ip::auto(ROUTE_WAIT).await.map_err(ServerError::MediaIp)?;
                log::info!("media_ip \"auto\": {found}");
                found.ip()
            }
        };
        let relay = Relay::start(RelayConfig { bind_ip: media_ip, ports: config.media_ports.clone() })?;
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
        let cdr_keep = (config.cdr_keep, config.cdr_keep_rows);
        let tls_local = transport.tls_addr().map(|tls| std::net::SocketAddr::new(config.advertise, tls.port()));
        let b2b = B2buaConfig { local, tls_local, registrar: config.registrar, no_answer: config.no_answer, srtp: config.srtp, max_calls: config.max_calls };
        let b2bua = B2bua::new(b2b, config.plan, RelayMedia::new(relay), WallClock::read(), Ids::from_os());
        let txns = Transactions::new(TimerConfig::default());
        let status = StatusFile::beside(&config.db);
        let watchdog = notifier.watchdog_interval().unwrap_or(Duration::from_secs(3600));
        let ticks = Periodic::new(
            [(Tick::Reap, REAP_EVERY), (Tick::Status, STATUS_EVERY), (Tick::Watchdog, watchdog), (Tick::Prune, PRUNE_EVERY)],
            now,
        );
        let server = Server { media_timeout, cdr_keep, prune_due: false, txns, transport, b2bua, health, registrations, store, cdrs, notifier, status, ticks };
        Ok((server, incoming))
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.transport.local_addr()
    }

    pub async fn run(mut self, incoming: mpsc::Receiver<Incoming>) -> Result<(), ServerError> {
        let mut sigterm = signal(SignalKind::terminate()).map_err(ServerError::Signals)?;
        let mut sigint = signal(SignalKind::interrupt()).map_err(ServerError::Signals)?;
        let stop = async {
            tokio::select! {
                _ = sigterm.recv() => {}
                _ = sigint.recv() => {}
            }
        };
        let mut driver = Driver::new(self.transport.clone(), incoming);
        self.notifier.ready(&format!("listening on {}", self.transport.local_addr()));
        match driver.run(&mut self, &mut NoInputs::default(), stop).await {
            Ok(_) => {}
            Err(DriveError::TransportStopped) => return Err(ServerError::TransportStopped),
            Err(DriveError::Core(never)) => match never {},
        }
        self.notifier.notify("STOPPING=1");
        log::info!("stopping: {} calls in progress ended", self.b2bua.len());
        self.b2bua.shutdown(&mut self.txns, Instant::now());
        let Ok(()) = driver.flush(&mut self).await;
        let stats = self.cdrs.close().await;
        log::info!("call records: {} stored in {} commits, {} refused", stats.records, stats.commits, stats.lost);
        self.store.close().await;
        Ok(())
    }

    /// Deletes call records older than the retention, and the oldest beyond its row count.
    async fn prune_cdrs(&self) {
        let (age, rows) = self.cdr_keep;
        let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        let before = i64::try_from(holdfast_runtime::unix_ms()).unwrap_or(i64::MAX).saturating_sub(age_ms);
        match self.store.prune_cdrs(before, rows).await {
            Ok(0) => {}
            Ok(n) => log::info!("call records: {n} beyond the retention ({} days, {rows} rows) deleted", age.as_secs() / 86_400),
            Err(e) => log::warn!("call records not pruned: {e}"),
        }
    }

    fn on_incoming(&mut self, Incoming { msg, source }: Incoming, now: Instant) {
        let request: Request = match msg {
            Message::Request(r) => r,
            Message::Response(r) => {
                if !self.b2bua.hears_response(source.addr, source.transport) {
                    return;
                }
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
                let status = invite.map_or(481, |inv| self.b2bua.on_cancel(&mut self.txns, inv, source.addr, source.transport, now));
                if let Err(e) = self.txns.send_response(id, request.response(status), now) {
                    log::debug!("CANCEL answer not sent: {e}");
                }
            }
            // The ACK for our 2xx ends A's part of the handshake; nothing to relay (B was
            // acknowledged when it answered).
            Ok(Inbound::Ack(ack)) => self.b2bua.on_ack(&mut self.txns, &ack, source.addr, source.transport, now),
            Ok(Inbound::Absorbed) => {}
            Err(e) => log::debug!("request from {} refused by the transaction layer: {e}", source.addr),
        }
    }

    /// Hands the transactions' events and the trunks' changes on.
    fn dispatch(&mut self, now: Instant) {
        while let Some(event) = self.txns.poll_event() {
            if !self.health.on_event(&event) && !self.registrations.on_event(&mut self.txns, &event, now) {
                self.b2bua.on_event(&mut self.txns, &event, now);
            }
        }
        while let Some((trunk, alive)) = self.health.poll_change() {
            self.b2bua.set_trunk_alive(&trunk, alive);
        }
    }
}

impl Core for Server {
    type Input = std::convert::Infallible;
    type Error = std::convert::Infallible;
    // A B2BUA's output outside transactions (ACKs, 2xx retransmissions) is per dialog and
    // never races its own transactions': the burst is safe, and it is what carries the load.
    const BURST: usize = 64;

    fn next_timeout(&mut self) -> Option<Instant> {
        [
            self.txns.next_timeout(),
            self.b2bua.next_timeout(),
            self.health.next_timeout(),
            self.registrations.next_timeout(),
            self.ticks.next_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.txns.handle_timeout(now);
        self.b2bua.handle_timeout(&mut self.txns, now);
        self.health.handle_timeout(&mut self.txns, now);
        self.registrations.handle_timeout(&mut self.txns, now);
        for tick in self.ticks.expired(now) {
            match tick {
                Tick::Reap => self.b2bua.reap_idle(&mut self.txns, self.media_timeout, now),
                Tick::Status => self.status.write(&self.b2bua, &self.health, &self.cdrs, now),
                Tick::Watchdog => self.notifier.notify("WATCHDOG=1"),
                Tick::Prune => self.prune_due = true,
            }
        }
    }

    fn on_message(&mut self, incoming: Incoming, now: Instant) {
        self.on_incoming(incoming, now);
    }

    fn on_input(&mut self, input: Self::Input, _now: Instant) -> Result<(), Self::Error> {
        match input {}
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Outbound> {
        loop {
            self.dispatch(now);
            if let Some(t) = self.txns.poll_transmit() {
                return Some(Outbound::Transaction(t));
            }
            match self.b2bua.poll_output()? {
                Output::Send { request, dest, transport } => return Some(Outbound::Request { request, dest, transport }),
                Output::Respond(response) => return Some(Outbound::Response(response)),
                Output::Cdr(cdr) => {
                    self.status.on_cdr(&cdr);
                    if let Err(e) = self.cdrs.write(cdr) {
                        log::error!("{e}");
                    }
                }
            }
        }
    }

    /// The pruning of call records, a database statement awaited on the loop (hourly).
    async fn settle(&mut self, _now: Instant) -> Result<bool, Self::Error> {
        if !std::mem::take(&mut self.prune_due) {
            return Ok(false);
        }
        self.prune_cdrs().await;
        Ok(true)
    }

    fn on_send_error(&mut self, failed: Outbound, error: TransportError, _now: Instant) {
        match failed {
            Outbound::Transaction(t) => {
                log::debug!("sending failed: {error}");
                self.txns.on_transport_error(t.id());
            }
            Outbound::Request { .. } => log::debug!("ACK not sent: {error}"),
            Outbound::Response(_) => log::debug!("2xx retransmission not sent: {error}"),
        }
    }
}
