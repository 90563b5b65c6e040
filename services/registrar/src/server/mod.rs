//! The registrar's event loop: the one place where sockets, the store and time meet the sans-IO
//! parts (transactions, authentication, the binding core, the proxy, the WAN monitor). It runs
//! on one task; the only awaits that take long (store commits, throttle delays) run beside it
//! and report back.
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
use crate::config::{Central, Survival};
use crate::directory::Directory;
use crate::proxy::Proxy;
use crate::registrar::{Registrar, Undo};
use crate::routing::Mode;
use crate::trust::{Admit, Evidence, Flows, Guard, Trust, TrustCounters};
use crate::wan::{WanMonitor, WanState};
use holdfast_runtime::Notifier;
use holdfast_sip::message::{HeaderName, Message, Method, Request, Response};
use holdfast_sip::transaction::{Inbound, Transactions, Transmit, TxId};
use holdfast_sip::transport::{Incoming, Protocol, Source, TransportHandle};
use holdfast_store::{BindingOp, BindingWriter, Store, StoreError, UserRecord};
use register::Relay;
use std::collections::HashMap;
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
    pub addresses: Addresses,
    pub domain: String,
    pub site: String,
    pub directory: Directory,
    pub central: Option<Central>,
    pub survival: Survival,
    pub wan: Option<WanMonitor>,
    pub status: StatusFile,
    /// REGISTERs passed to the central site, by their client transaction.
    pub relays: HashMap<TxId, Relay>,
    /// Responses sent without a transaction, waiting for `flush`.
    pub stateless: Vec<Response>,
    /// Requests sent without a transaction (ACKs for 2xx), waiting for `flush`.
    pub stateless_requests: Vec<(Request, SocketAddr, Protocol)>,
    pub trust: Trust,
    /// TCP connections the central site authenticated registrations on.
    pub flows: Flows,
    pub counters: TrustCounters,
    /// The per-source request rate guard.
    pub guard: Guard,
    /// Responses the digest failure throttle holds back.
    pub delayed: Delayed,
    /// Live transactions beyond which new requests get a stateless 503.
    pub max_transactions: usize,
    /// Where work finished beside the loop reports; set by `run`.
    pub done: Option<mpsc::UnboundedSender<Done>>,
}

impl Server {
    pub fn mode(&self) -> Mode {
        match &self.wan {
            None => Mode::Standalone,
            Some(w) if w.state() == WanState::Up => Mode::Normal,
            Some(_) => Mode::Survival,
        }
    }

    pub async fn run(mut self, mut incoming: mpsc::Receiver<Incoming>) -> anyhow::Result<()> {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        self.done = Some(done_tx);
        let mut sweep = tokio::time::interval(EXPIRY_SWEEP);
        let (users_tx, mut users_rx) = mpsc::channel(1);
        if self.auth.is_some() {
            tokio::spawn(watch_users(self.store.clone(), self.users_version, users_tx));
        }
        let mut status_tick = tokio::time::interval(STATUS_EVERY);
        let mut watchdog =
            tokio::time::interval(self.notifier.watchdog_interval().unwrap_or(Duration::from_secs(3600)));
        self.write_status();
        loop {
            let timer = [
                self.txns.next_timeout(),
                self.proxy.next_timeout(),
                self.wan.as_ref().and_then(|w| w.next_timeout()),
                self.delayed.next_timeout(),
            ]
                .into_iter()
                .flatten()
                .min();
            tokio::select! {
                Some(done) = done_rx.recv() => {
                    // A group commit answers hundreds at once: one pass of the loop for all.
                    self.finish(done);
                    while let Ok(done) = done_rx.try_recv() {
                        self.finish(done);
                    }
                }
                msg = incoming.recv() => match msg {
                    Some(msg) => self.on_incoming(msg),
                    None => anyhow::bail!("the transport stopped"),
                },
                _ = sleep_until(timer), if timer.is_some() => self.on_timer(Instant::now()),
                _ = sweep.tick() => self.sweep(),
                Some(users) = users_rx.recv() => {
                    if let Some(auth) = &mut self.auth {
                        auth.set_users(users);
                        log::info!("users reloaded: {}", auth.user_count());
                    }
                }
                _ = status_tick.tick() => self.write_status(),
                _ = watchdog.tick() => self.notifier.notify("WATCHDOG=1"),
            }
            self.flush().await;
        }
    }

    fn on_timer(&mut self, now: Instant) {
        self.txns.handle_timeout(now);
        self.proxy.handle_timeout(&mut self.txns, now);
        self.wan_timeout(now);
        for (id, response) in self.delayed.take_due(now) {
            self.respond(id, response);
        }
    }

    fn on_incoming(&mut self, Incoming { msg, source }: Incoming) {
        let now = Instant::now();
        let request = match msg {
            Message::Request(r) => r,
            Message::Response(r) => return self.on_response(r, source.addr, now),
        };
        if !self.admit(&request, &source, now) {
            return;
        }
        if let Some(challenge) = self.stateless_challenge(&request, &source, now) {
            return self.stateless.push(challenge);
        }
        if self.txns.len() >= self.max_transactions && self.over_transactions(&request, &source) {
            self.counters.over_transactions += 1;
            let mut r = refuse(&request, 503, "Service Unavailable (too many requests in progress)");
            r.headers.add(HeaderName::parse("Retry-After"), "5");
            return self.stateless.push(r);
        }
        let inbound = self.addresses.local_for(source.addr.ip());
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

    /// The per-source guard's say on a request (peers and our own addresses are not counted, nor
    /// UDP sources holding a binding: their address may be forged); a banned source's REGISTER
    /// may be answered with a challenge bound to its address.
    fn admit(&mut self, request: &Request, source: &Source, now: Instant) -> bool {
        let ip = source.addr.ip();
        let udp = source.transport == Protocol::Udp;
        if self.trust.is_peer(ip) || self.addresses.is_ours(source.addr) || (udp && self.registrar.holds_source(ip)) {
            return true;
        }
        if !self.guard.count(ip, now) {
            return true;
        }
        let evidence = if !udp {
            Evidence::Connection
        } else if self.auth.as_ref().is_some_and(|a| a.proves_address(request, ip)) {
            Evidence::Nonce
        } else {
            Evidence::None
        };
        match self.guard.banned(ip, evidence, request.method == Method::REGISTER, now) {
            Admit::Pass => true,
            Admit::Drop => false,
            Admit::Challenge => {
                if let Some(challenge) = self.bound_challenge(request, ip, now) {
                    self.stateless.push(challenge);
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
            self.stateless.push(r);
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
        }
    }

    fn respond(&mut self, id: TxId, response: Response) {
        if let Err(e) = self.txns.send_response(id, response, Instant::now()) {
            log::debug!("response for ended transaction dropped: {e}");
        }
    }

    /// Sends what the transactions queued and hands their events to whoever owns them.
    async fn flush(&mut self) {
        let now = Instant::now();
        loop {
            let mut busy = false;
            while let Some(event) = self.txns.poll_event() {
                busy = true;
                if self.relays.contains_key(&event.id) {
                    self.on_relay_event(event, now);
                } else {
                    self.proxy.on_event(&mut self.txns, &event, now);
                }
            }
            while let Some(t) = self.txns.poll_transmit() {
                busy = true;
                let id = match &t {
                    Transmit::Request { id, .. } | Transmit::Response { id, .. } => *id,
                };
                if let Err(e) = self.transport.transmit(&t).await {
                    log::debug!("sending failed: {e}");
                    self.txns.on_transport_error(id);
                }
            }
            for response in std::mem::take(&mut self.stateless) {
                busy = true;
                if let Err(e) = self.transport.send_response(&response).await {
                    log::debug!("stateless response not sent: {e}");
                }
            }
            for (request, dest, protocol) in std::mem::take(&mut self.stateless_requests) {
                busy = true;
                if let Err(e) = self.transport.send_to(&Message::Request(request), dest, protocol).await {
                    log::debug!("stateless request to {dest} not sent: {e}");
                }
            }
            self.send_probes(now).await;
            if !busy {
                break;
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
        let registrar = &self.registrar;
        self.flows.retain(|aor| !registrar.lookup(aor, now).is_empty());
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
async fn watch_users(store: Store, mut version: i64, users: mpsc::Sender<Vec<UserRecord>>) {
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
                if users.send(loaded).await.is_err() {
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

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}
