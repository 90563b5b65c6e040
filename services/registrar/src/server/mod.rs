//! The registrar as one core (transactions, authentication, the binding core, the proxy, the WAN
//! monitor, its periodic duties) that holdfast-sip's `Driver` runs over the sockets and time on
//! one task; the only awaits that take long (store commits, throttle delays, reloading users)
//! run beside it and report back as its inputs.
mod addresses;
mod calls;
mod delayed;
mod register;
mod status;
mod wan;

pub use addresses::Addresses;
pub use delayed::Delayed;
pub use status::StatusFile;

use crate::auth::Authenticator;
use crate::central::CentralLinks;
use crate::config::{Central, Survival};
use crate::directory::Directory;
use crate::proxy::{Proxy, Side};
use crate::registrar::{Registrar, Undo};
use crate::routing::Mode;
use crate::trust::{Admit, Ask, Counted, Evidence, Guard, Trust, TrustCounters};
use crate::wan::{WanMonitor, WanState};
use holdfast_runtime::Notifier;
use holdfast_sip::driver::{Core, Driver, Outbound, Periodic};
use holdfast_sip::message::{HeaderName, Message, Method, Request, Response};
use holdfast_sip::transaction::{Inbound, Transactions, TxId};
use holdfast_sip::transport::{Incoming, Protocol, Source, TransportError, TransportHandle};
use holdfast_store::{BindingOp, BindingWriter, Store, StoreError, UserRecord};
use register::Relay;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How often expired bindings are swept.
const EXPIRY_SWEEP: Duration = Duration::from_secs(2);
/// How soon `sbactl user add/remove` takes effect.
const USERS_POLL: Duration = Duration::from_millis(250);
/// How often the status file is rewritten when nothing changed.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// Work that finished beside the loop.
pub enum Done {
    Committed { id: TxId, response: Response, undo: Undo, result: Result<(), StoreError> },
    /// The store's users changed: the new set.
    Users(Vec<UserRecord>),
}

/// The loop's own periodic duties.
#[derive(Debug, Clone, Copy)]
pub enum Tick {
    Sweep,
    Status,
    Watchdog,
}

/// The periodic duties, from `now`.
pub fn ticks(watchdog: Option<Duration>, now: Instant) -> Periodic<Tick> {
    let watchdog = watchdog.unwrap_or(Duration::from_secs(3600));
    Periodic::new([(Tick::Sweep, EXPIRY_SWEEP), (Tick::Status, STATUS_EVERY), (Tick::Watchdog, watchdog)], now)
}

pub struct Server {
    pub registrar: Registrar,
    pub auth: Option<Authenticator>,
    pub txns: Transactions,
    pub ids: holdfast_sip::Ids,
    pub transport: TransportHandle,
    pub store: Store,
    pub writer: BindingWriter,
    pub notifier: Notifier,
    /// The store's users_version the loaded users belong to.
    pub users_version: i64,
    pub proxy: Proxy,
    /// Signs the flow tokens in the Path of outbound phones' REGISTERs to the central site.
    pub path: crate::proxy::PathStamp,
    pub addresses: Addresses,
    pub domain: String,
    pub site: String,
    pub directory: Directory,
    pub central: Option<Central>,
    pub survival: Survival,
    pub wan: Option<WanMonitor>,
    /// The connections the probes go on (over TCP or TLS).
    pub links: CentralLinks,
    pub status: StatusFile,
    /// REGISTERs passed to the central site, by their client transaction.
    pub relays: HashMap<TxId, Relay>,
    /// What goes out without a transaction (stateless answers, forwarded ACKs and 2xx, WAN
    /// probes), waiting for the driver.
    pub outbox: VecDeque<Outbound>,
    pub trust: Trust,
    pub counters: TrustCounters,
    /// The per-source request rate guard.
    pub guard: Guard,
    /// Responses the digest failure throttle holds back.
    pub delayed: Delayed,
    /// Live transactions beyond which new requests get a stateless 503.
    pub max_transactions: usize,
    /// Where work finished beside the loop reports; set by `run`.
    pub done: Option<mpsc::UnboundedSender<Done>>,
    pub ticks: Periodic<Tick>,
}

impl Server {
    pub fn mode(&self) -> Mode {
        match &self.wan {
            None => Mode::Standalone,
            Some(w) if w.state() == WanState::Up => Mode::Normal,
            Some(_) => Mode::Survival,
        }
    }

    pub async fn run(mut self, incoming: mpsc::Receiver<Incoming>) -> anyhow::Result<()> {
        // Unbounded: a commit's answer must reach its transaction; there are never more than
        // the live transactions' worth (their table is capped) and one set of users.
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        if self.auth.is_some() {
            tokio::spawn(watch_users(self.store.clone(), self.users_version, done_tx.clone()));
        }
        self.done = Some(done_tx);
        self.write_status();
        let mut driver = Driver::new(self.transport.clone(), incoming);
        // The loop holds a sender of its own inputs: they never end, and nothing shuts it down
        // but the process's end.
        driver.run(&mut self, &mut done_rx, std::future::pending()).await?;
        Ok(())
    }

    fn on_incoming(&mut self, Incoming { msg, source }: Incoming, now: Instant) {
        let request = match msg {
            Message::Request(r) => r,
            Message::Response(r) => return self.on_response(r, source.addr, now),
        };
        if !self.admit(&request, &source, now) {
            return;
        }
        if let Some(challenge) = self.stateless_challenge(&request, &source, now) {
            return self.outbox.push_back(Outbound::Response(challenge));
        }
        if self.txns.len() >= self.max_transactions && self.over_transactions(&request, &source) {
            self.counters.over_transactions += 1;
            let mut r = refuse(&request, 503, "Service Unavailable (too many requests in progress)");
            r.headers.add(HeaderName::parse("Retry-After"), "5");
            return self.outbox.push_back(Outbound::Response(r));
        }
        let inbound = Side {
            addr: self.addresses.facing(source.addr.ip(), source.transport),
            transport: source.transport,
            flow: self.phone_flow(&source),
        };
        match self.txns.on_request(request, source.transport, now) {
            Ok(Inbound::Request { id, request }) => self.on_request(id, request, source, inbound, now),
            Ok(Inbound::Cancel { id, request, invite }) => {
                let cancelled = invite.is_some_and(|inv| self.proxy.on_cancel(&mut self.txns, inv, now));
                self.respond(id, request.response(if cancelled { 200 } else { 481 }));
            }
            Ok(Inbound::Ack(ack)) => self.forward_ack(ack, inbound),
            Ok(Inbound::Absorbed) => {}
            Err(e) => log::debug!("request from {} refused by the transaction layer: {e}", source.addr),
        }
    }

    /// Whether a new request would hold a transaction beyond the cap: strangers get
    /// `max_transactions`, the branch's own devices and peers a reserve as large again.
    fn over_transactions(&self, request: &Request, source: &Source) -> bool {
        if request.method == Method::ACK || self.txns.matches(request) {
            return false;
        }
        let ip = source.addr.ip();
        let known = self.trust.is_peer(ip) || self.addresses.is_ours(source.addr) || self.registrar.holds_source(ip);
        let cap = if known { self.max_transactions.saturating_mul(2) } else { self.max_transactions };
        self.txns.len() >= cap
    }

    /// The per-source guard's say on a request (peers and our own addresses are not counted; a
    /// UDP address bindings were registered from has a budget of its own, since a flood may forge
    /// it). A banned or shedding source's request passes on what it proves about its address, and
    /// one proving nothing may be answered with a challenge bound to the address.
    fn admit(&mut self, request: &Request, source: &Source, now: Instant) -> bool {
        let ip = source.addr.ip();
        let udp = source.transport == Protocol::Udp;
        if self.trust.is_peer(ip) || self.addresses.is_ours(source.addr) {
            return true;
        }
        let bindings = if udp { self.registrar.udp_bindings_from(source.addr) } else { 0 };
        let counted = if bindings > 0 {
            Counted::Registered { addr: source.addr, bindings }
        } else if udp && self.registrar.holds_source(ip) {
            Counted::PhoneIp(ip)
        } else {
            Counted::Ip(ip)
        };
        if !self.guard.count(counted, now) {
            return true;
        }
        let evidence = if !udp {
            Evidence::Connection
        } else if self.auth.as_ref().is_some_and(|a| a.proves_address(request, ip)) {
            Evidence::Nonce
        } else if self.txns.matches(request) {
            Evidence::Transaction
        } else if self.trust.proves_dialog(request, |a| self.addresses.is_ours(a)) {
            Evidence::Dialog
        } else {
            Evidence::None
        };
        let ask = match request.method {
            Method::REGISTER => Ask::Register,
            Method::ACK | Method::CANCEL => Ask::Nothing,
            _ => Ask::Request,
        };
        match self.guard.banned(counted, evidence, ask, now) {
            Admit::Pass => true,
            Admit::Drop => false,
            Admit::Challenge => {
                if let Some(challenge) = self.bound_challenge(request, ip, now) {
                    self.outbox.push_back(Outbound::Response(challenge));
                }
                false
            }
        }
    }

    /// Responses no transaction of ours claims: a WAN probe's answer, or a retransmitted 2xx of a
    /// call we proxied (its INVITE transaction has ended), which goes on statelessly.
    fn on_response(&mut self, r: Response, from: SocketAddr, now: Instant) {
        let Some(r) = self.txns.on_response(r, now) else { return };
        if let Some(answer) = crate::wan::probe_answer(&r) {
            if let Some(w) = &mut self.wan {
                let forged = w.counters().forged;
                w.on_response(&answer, from, r.status, now);
                if w.counters().forged == forged && r.status >= 200 {
                    self.status.probe_answered(answer.id, now);
                }
            }
            return;
        }
        let ours = r
            .top_via()
            .ok()
            .and_then(|v| crate::proxy::sent_by(&v))
            .is_some_and(|a| self.addresses.is_ours(a));
        if ours && (200..300).contains(&r.status) {
            let mut r = r;
            r.headers.remove_first(&HeaderName::Via);
            self.outbox.push_back(Outbound::Response(r));
        }
    }

    fn finish(&mut self, done: Done) {
        match done {
            Done::Committed { id, response, result: Ok(()), .. } => self.respond(id, response),
            Done::Committed { id, undo, result: Err(e), response } => {
                self.registrar.undo(undo);
                let mut r = response;
                if let StoreError::Busy = e {
                    self.counters.store_busy += 1;
                    r.status = 503;
                    r.reason = "Service Unavailable (the disk is behind)".to_string();
                } else {
                    log::error!("binding not stored: {e}");
                    r.status = 500;
                    r.reason = format!("Server Internal Error ({e})");
                }
                r.headers.remove_all(&HeaderName::Contact);
                r.headers.add(HeaderName::parse("Retry-After"), "5");
                self.respond(id, r);
            }
            Done::Users(users) => {
                if let Some(auth) = &mut self.auth {
                    auth.set_users(users);
                    log::info!("users reloaded: {}", auth.user_count());
                }
            }
        }
    }

    fn respond(&mut self, id: TxId, response: Response) {
        if let Err(e) = self.txns.send_response(id, response, Instant::now()) {
            log::debug!("response for ended transaction dropped: {e}");
        }
    }

    /// Hands the transactions' events to whoever owns them.
    fn dispatch(&mut self, now: Instant) {
        while let Some(event) = self.txns.poll_event() {
            if self.relays.contains_key(&event.id) {
                self.on_relay_event(event, now);
            } else {
                self.proxy.on_event(&mut self.txns, &event, now);
            }
        }
    }

    /// Commits `ops`, then answers `id` with `response`; `undo` if the disk says no.
    fn commit_then_respond(&mut self, id: TxId, ops: Vec<BindingOp>, response: Response, undo: Undo) {
        let Some(done) = self.done.clone() else { return };
        self.writer.apply_then(ops, move |result| {
            let _ = done.send(Done::Committed { id, response, undo, result });
        });
    }

    /// Holds `response` back for `delay` on the loop's timer; with too many held, answers at
    /// once with 503 instead (never sooner with the real answer: that would reward the flood).
    fn respond_later(&mut self, id: TxId, response: Response, delay: Duration) {
        self.counters.throttled += 1;
        if let Err((id, mut r)) = self.delayed.hold(id, response, Instant::now() + delay) {
            self.counters.delayed_full += 1;
            r.status = 503;
            r.reason = "Service Unavailable (too many failed attempts)".to_string();
            r.headers.remove_all(&HeaderName::WwwAuthenticate);
            r.headers.add(HeaderName::parse("Retry-After"), delay.as_secs().max(1).to_string());
            self.respond(id, r);
        }
    }

    fn sweep(&mut self) {
        let now = unix_now();
        let gone = self.registrar.expire(now);
        if gone.is_empty() {
            return;
        }
        log::debug!("{} bindings expired", gone.len());
        let ops: Vec<BindingOp> = gone.into_iter().map(register::op).collect();
        self.writer.apply_then(ops, |result| {
            if let Err(e) = result {
                log::warn!("expired bindings not removed from the store: {e}");
            }
        });
    }
}

/// Watches the store for user changes beside the loop (a query awaited in the loop would hold up
/// every REGISTER behind it) and sends each new set of users.
async fn watch_users(store: Store, mut version: i64, users: mpsc::UnboundedSender<Done>) {
    let mut poll = tokio::time::interval(USERS_POLL);
    loop {
        poll.tick().await;
        let now = match store.users_version().await {
            Ok(v) if v == version => continue,
            Ok(v) => v,
            Err(e) => {
                log::warn!("checking users: {e}");
                continue;
            }
        };
        match store.load_users().await {
            Ok(loaded) => {
                version = now;
                if users.send(Done::Users(loaded)).is_err() {
                    return;
                }
            }
            Err(e) => log::warn!("reloading users: {e}"),
        }
    }
}

fn bad(req: &Request, why: &str) -> Response {
    let mut r = req.response(400);
    r.reason = format!("Bad Request ({why})");
    r
}

fn refuse(req: &Request, status: u16, reason: &str) -> Response {
    let mut r = req.response(status);
    r.reason = reason.to_string();
    r
}

/// Unix seconds, what bindings expire by.
pub fn unix_now() -> u64 {
    holdfast_runtime::unix_now().as_secs()
}

impl Core for Server {
    type Input = Done;
    type Error = std::convert::Infallible;
    // One message a turn: a relayed ACK (outbox) must not be overtaken by the BYE after it
    // (a transaction). A group commit's answers all in one turn.
    const INPUT_BURST: usize = 1024;

    fn next_timeout(&mut self) -> Option<Instant> {
        let wan = self.wan.as_ref().and_then(|w| w.next_timeout());
        [self.txns.next_timeout(), self.proxy.next_timeout(), wan, self.delayed.next_timeout(), self.ticks.next_timeout()].into_iter().flatten().min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.txns.handle_timeout(now);
        self.proxy.handle_timeout(&mut self.txns, now);
        self.wan_timeout(now);
        for (id, response) in self.delayed.take_due(now) {
            self.respond(id, response);
        }
        for tick in self.ticks.expired(now) {
            match tick {
                Tick::Sweep => self.sweep(),
                Tick::Status => self.write_status(),
                Tick::Watchdog => self.notifier.notify("WATCHDOG=1"),
            }
        }
    }

    fn on_message(&mut self, incoming: Incoming, now: Instant) {
        self.on_incoming(incoming, now);
    }

    fn on_input(&mut self, done: Done, _now: Instant) -> Result<(), Self::Error> {
        self.finish(done);
        Ok(())
    }

    fn poll_transmit(&mut self, now: Instant) -> Option<Outbound> {
        // A second pass after the WAN monitor's turn: a verdict can start transactions.
        for pass in 0..2 {
            self.dispatch(now);
            if let Some(t) = self.txns.poll_transmit() {
                return Some(Outbound::Transaction(t));
            }
            if let Some(out) = self.outbox.pop_front() {
                return Some(out);
            }
            if pass == 0 {
                self.queue_probes(now);
            }
        }
        None
    }

    fn on_send_error(&mut self, failed: Outbound, error: TransportError, now: Instant) {
        match failed {
            Outbound::Transaction(t) => {
                log::debug!("sending failed: {error}");
                self.txns.on_transport_error(t.id());
            }
            Outbound::Request { request, dest, .. } => match crate::wan::probe_of(&request) {
                Some(probe) => {
                    log::debug!("WAN probe to {dest} not sent: {error}");
                    if let Some(wan) = &mut self.wan {
                        wan.on_transport_error(probe.id, now);
                    }
                    self.wan_events();
                }
                None => log::debug!("stateless {} to {dest} not sent: {error}", request.method),
            },
            Outbound::Response(r) => log::debug!("stateless {} response not sent: {error}", r.status),
        }
    }
}
