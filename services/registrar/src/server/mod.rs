//! The registrar's event loop: the one place where sockets, the store and time meet the sans-IO
//! parts (transactions, authentication, the binding core). It runs on one task; the only
//! awaits that take long (store commits, throttle delays) run beside it and report back.
use crate::auth::{Authenticator, Check};
use crate::registrar::{aor_of, Change, Decision, Registrar, Undo};
use holdfast_runtime::Notifier;
use holdfast_sip::message::{HeaderName, Message, Method, Request, Response, Uri};
use holdfast_sip::transaction::{Inbound, Transactions, Transmit, TxId};
use holdfast_sip::transport::{Incoming, Source, TransportHandle};
use holdfast_store::{BindingOp, BindingWriter, Store};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Methods a registrar answers; anything else known gets 405 (RFC 3261 §8.2.1).
const ALLOW: &str = "REGISTER, OPTIONS";
/// How often expired bindings are swept.
const EXPIRY_SWEEP: Duration = Duration::from_secs(2);
/// How soon `sbactl user add/remove` takes effect.
const USERS_POLL: Duration = Duration::from_millis(250);

/// Work that finished beside the loop.
enum Done {
    Committed { id: TxId, response: Response, undo: Undo, result: Result<(), holdfast_store::StoreError> },
    Delayed { id: TxId, response: Response },
}

pub struct Server {
    pub registrar: Registrar,
    pub auth: Option<Authenticator>,
    pub txns: Transactions,
    pub transport: TransportHandle,
    pub store: Store,
    pub writer: BindingWriter,
    pub notifier: Notifier,
    /// The store's users_version the loaded users belong to.
    pub users_version: i64,
}

impl Server {
    pub async fn run(mut self, mut incoming: mpsc::Receiver<Incoming>) -> anyhow::Result<()> {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut sweep = tokio::time::interval(EXPIRY_SWEEP);
        let mut users_poll = tokio::time::interval(USERS_POLL);
        let mut watchdog = tokio::time::interval(self.notifier.watchdog_interval().unwrap_or(Duration::from_secs(3600)));
        loop {
            let timer = self.txns.next_timeout();
            tokio::select! {
                Some(done) = done_rx.recv() => self.finish(done),
                msg = incoming.recv() => match msg {
                    Some(msg) => self.on_incoming(msg, &done_tx),
                    None => anyhow::bail!("the transport stopped"),
                },
                _ = sleep_until(timer), if timer.is_some() => self.txns.handle_timeout(Instant::now()),
                _ = sweep.tick() => self.sweep(),
                _ = users_poll.tick() => self.reload_users().await,
                _ = watchdog.tick() => self.notifier.notify("WATCHDOG=1"),
            }
            self.flush().await;
        }
    }

    fn on_incoming(&mut self, Incoming { msg, source }: Incoming, done: &mpsc::UnboundedSender<Done>) {
        let now = Instant::now();
        let request = match msg {
            Message::Request(r) => r,
            Message::Response(r) => {
                // No client transactions yet: a stray response is dropped (§18.1.2).
                let _ = self.txns.on_response(r, now);
                return;
            }
        };
        let (id, request) = match self.txns.on_request(request, source.transport, now) {
            Ok(Inbound::Request { id, request }) => (id, request),
            Ok(Inbound::Cancel { id, request, .. }) => {
                // Nothing here is cancellable: REGISTER and OPTIONS are answered at once.
                self.respond(id, request.response(481));
                return;
            }
            Ok(Inbound::Ack(_)) | Ok(Inbound::Absorbed) => return,
            Err(e) => {
                log::debug!("request from {} refused by the transaction layer: {e}", source.addr);
                return;
            }
        };
        if !matches!(request.uri, Uri::Sip(_)) {
            let r = request.response(416);
            self.respond(id, r);
            return;
        }
        match &request.method {
            m if *m == Method::REGISTER => self.on_register(id, request, source, done),
            m if *m == Method::OPTIONS => {
                let mut r = request.response(200);
                r.headers.add(HeaderName::Allow, ALLOW);
                r.headers.add(HeaderName::Accept, "application/sdp");
                r.headers.add(HeaderName::Supported, "path, outbound");
                self.respond(id, r);
            }
            Method::Known(_) => {
                let mut r = request.response(405);
                r.headers.add(HeaderName::Allow, ALLOW);
                self.respond(id, r);
            }
            Method::Extension(_) => {
                let mut r = request.response(501);
                r.headers.add(HeaderName::Allow, ALLOW);
                self.respond(id, r);
            }
        }
    }

    fn on_register(&mut self, id: TxId, req: Request, source: Source, done: &mpsc::UnboundedSender<Done>) {
        let to = match req.to_header() {
            Ok(to) => to,
            Err(e) => return self.respond(id, bad(&req, &e.to_string())),
        };
        let Some(aor) = aor_of(&to.uri) else {
            return self.respond(id, bad(&req, "To is not a sip: address of record"));
        };
        if let Some(auth) = &mut self.auth {
            let (user, domain) = split_aor(&aor);
            match auth.check(&req, user, domain, source.addr.ip(), Instant::now()) {
                Check::Pass => {}
                Check::Refuse(r) => return self.respond(id, r),
                Check::RefuseLater(response, delay) => {
                    let done = done.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = done.send(Done::Delayed { id, response });
                    });
                    return;
                }
            }
        }
        match self.registrar.register(&req, &aor, source, unix_now()) {
            Decision::Reply(r) => self.respond(id, r),
            Decision::Commit { changes, response, undo } => {
                let ops = changes.into_iter().map(op).collect();
                let writer = self.writer.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    let result = writer.apply(ops).await;
                    let _ = done.send(Done::Committed { id, response, undo, result });
                });
            }
        }
    }

    fn finish(&mut self, done: Done) {
        match done {
            Done::Committed { id, response, result: Ok(()), .. } => self.respond(id, response),
            Done::Committed { id, undo, result: Err(e), response } => {
                log::error!("binding not stored: {e}");
                self.registrar.undo(undo);
                let mut r = response;
                r.status = 500;
                r.reason = format!("Server Internal Error ({e})");
                r.headers.remove_all(&HeaderName::Contact);
                r.headers.add(HeaderName::parse("Retry-After"), "5");
                self.respond(id, r);
            }
            Done::Delayed { id, response } => self.respond(id, response),
        }
    }

    fn respond(&mut self, id: TxId, response: Response) {
        if let Err(e) = self.txns.send_response(id, response, Instant::now()) {
            log::debug!("response for ended transaction dropped: {e}");
        }
    }

    async fn flush(&mut self) {
        while let Some(t) = self.txns.poll_transmit() {
            match t {
                Transmit::Response { id, response } => {
                    if let Err(e) = self.transport.send_response(&response).await {
                        log::debug!("sending {} failed: {e}", response.status);
                        self.txns.on_transport_error(id);
                    }
                }
                Transmit::Request { id, request, dest, transport } => {
                    if let Err(e) = self.transport.send_to(&Message::Request(request), dest, transport).await {
                        log::debug!("sending to {dest} failed: {e}");
                        self.txns.on_transport_error(id);
                    }
                }
            }
        }
        while self.txns.poll_event().is_some() {}
    }

    fn sweep(&mut self) {
        let gone = self.registrar.expire(unix_now());
        if gone.is_empty() {
            return;
        }
        log::debug!("{} bindings expired", gone.len());
        let writer = self.writer.clone();
        let ops: Vec<BindingOp> = gone.into_iter().map(op).collect();
        tokio::spawn(async move {
            if let Err(e) = writer.apply(ops).await {
                log::warn!("expired bindings not removed from the store: {e}");
            }
        });
    }

    async fn reload_users(&mut self) {
        let Some(auth) = &mut self.auth else { return };
        let version = match self.store.users_version().await {
            Ok(v) if v == self.users_version => return,
            Ok(v) => v,
            Err(e) => return log::warn!("checking users: {e}"),
        };
        match self.store.load_users().await {
            Ok(users) => {
                auth.set_users(users);
                self.users_version = version;
                log::info!("users reloaded: {}", auth.user_count());
            }
            Err(e) => log::warn!("reloading users: {e}"),
        }
    }
}

fn op(change: Change) -> BindingOp {
    match change {
        Change::Upsert(b) => BindingOp::Upsert(b),
        Change::Remove { aor, contact } => BindingOp::Delete { aor, contact },
    }
}

fn split_aor(aor: &str) -> (&str, &str) {
    let rest = aor.strip_prefix("sip:").unwrap_or(aor);
    rest.rsplit_once('@').unwrap_or((rest, ""))
}

fn bad(req: &Request, why: &str) -> Response {
    let mut r = req.response(400);
    r.reason = format!("Bad Request ({why})");
    r
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}
