//! The branch's stateful proxy (RFC 3261 §16) as a sans-IO layer over the transaction table:
//! the caller decides where a request goes (the targets), the proxy forks it to all of them in
//! parallel, relays provisional responses, forwards the first 2xx and cancels the other
//! branches, and otherwise answers with the best final response — or tries a fallback target
//! (voicemail) when nobody answered. Time comes in as `now`; `next_timeout`/`handle_timeout`
//! drive the no-answer timer.
mod best;
mod forward;
mod path;
mod target;

pub use forward::{is_loop, route_uri, route_value, sent_by};
pub use path::PathStamp;
pub use target::{binding_hop, Side, Target};

use crate::trust::RouteStamp;
use best::{keep_best, upstream_status};
use holdfast_sip::message::{HeaderName, Method, Request, Response};
use holdfast_sip::transaction::{Event, Transactions, TxEvent, TxId};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// How long an INVITE rings before the branches are cancelled (and the fallback tried).
    pub no_answer: Duration,
    /// Signs our Record-Route.
    pub stamp: RouteStamp,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Leg {
    /// Sent; no provisional response yet, so a CANCEL must wait (§9.1).
    Calling { cancel_when_provisional: bool },
    Proceeding,
    Done,
}

#[derive(Debug)]
struct Branch {
    client: TxId,
    leg: Leg,
    dest: SocketAddr,
}

#[derive(Debug)]
struct Context {
    request: Request,
    /// Where the request came in: our address, port and the transport.
    inbound: Side,
    hash: u64,
    branches: Vec<Branch>,
    best: Option<Response>,
    final_sent: bool,
    /// The caller cancelled: no fallback, the answer is 487.
    cancelled: bool,
    /// Nobody answered in time: the fallback is tried, else 480.
    unanswered: bool,
    fallback: Option<Target>,
    ring_until: Option<Instant>,
}

impl Context {
    fn pending(&self) -> impl Iterator<Item = &Branch> {
        self.branches.iter().filter(|b| b.leg != Leg::Done)
    }
}

pub struct Proxy {
    config: ProxyConfig,
    /// By server transaction.
    contexts: HashMap<TxId, Context>,
    /// Client transaction -> server transaction.
    clients: HashMap<TxId, TxId>,
    /// The INVITEs ringing, by when they ring too long (each context's `ring_until`): the next
    /// timeout without a walk over every request in progress.
    ringing: BTreeSet<(Instant, TxId)>,
    serial: u64,
}

impl Proxy {
    pub fn new(config: ProxyConfig) -> Proxy {
        Proxy { config, contexts: HashMap::new(), clients: HashMap::new(), ringing: BTreeSet::new(), serial: 0 }
    }

    /// Number of requests being proxied.
    pub fn len(&self) -> usize {
        self.contexts.len()
    }

    /// Forks `request` (received in server transaction `server`) to every target; `fallback` is
    /// tried when none answers. With no target at all, the fallback or 480 answers.
    pub fn forward(
        &mut self,
        txns: &mut Transactions,
        server: TxId,
        request: Request,
        inbound: Side,
        targets: Vec<Target>,
        fallback: Option<Target>,
        now: Instant,
    ) {
        let ring_until = (request.method == Method::INVITE).then(|| now + self.config.no_answer);
        if let Some(t) = ring_until {
            self.ringing.insert((t, server));
        }
        let context = Context {
            hash: forward::loop_hash(&request),
            request,
            inbound,
            branches: Vec::new(),
            best: None,
            final_sent: false,
            cancelled: false,
            unanswered: false,
            fallback,
            ring_until,
        };
        self.contexts.insert(server, context);
        for target in &targets {
            self.start_branch(txns, server, target, now);
        }
        if targets.is_empty() {
            if let Some(c) = self.contexts.get_mut(&server) {
                c.unanswered = true;
            }
        }
        self.settle(txns, server, now);
    }

    /// A stateless copy of an ACK for a 2xx (it has no transaction) towards `target`.
    pub fn ack_request(&mut self, ack: &Request, inbound: Side, target: &Target) -> Request {
        self.serial += 1;
        let branch = forward::branch(forward::loop_hash(ack), self.serial);
        forward::branch_request(ack, target, inbound, &branch, &self.config.stamp)
    }

    fn start_branch(&mut self, txns: &mut Transactions, server: TxId, target: &Target, now: Instant) {
        let Some(ctx) = self.contexts.get_mut(&server) else { return };
        self.serial += 1;
        let branch = forward::branch(ctx.hash, self.serial);
        let req = forward::branch_request(&ctx.request, target, ctx.inbound, &branch, &self.config.stamp);
        match txns.send_request(req, target.dest, target.transport, now) {
            Ok(client) => {
                let leg = Leg::Calling { cancel_when_provisional: false };
                ctx.branches.push(Branch { client, leg, dest: target.dest });
                self.clients.insert(client, server);
            }
            Err(e) => {
                log::warn!("branch to {} not started: {e}", target.dest);
                keep_best(&mut ctx.best, ctx.request.response(503));
            }
        }
    }

    /// Hands a transaction event to the proxy; false if it is not about one of its branches.
    pub fn on_event(&mut self, txns: &mut Transactions, event: &Event, now: Instant) -> bool {
        let Some(&server) = self.clients.get(&event.id) else { return false };
        match &event.event {
            TxEvent::Response(r) => self.on_response(txns, server, event.id, without_our_via(r), now),
            TxEvent::TimedOut(r) => self.branch_done(txns, server, event.id, without_our_via(r), now),
            TxEvent::TransportError => {
                let r = self.contexts.get(&server).map(|c| c.request.response(503));
                if let Some(r) = r {
                    self.branch_done(txns, server, event.id, r, now);
                }
            }
            TxEvent::Terminated => {
                self.clients.remove(&event.id);
                self.forget_if_finished(server);
            }
            TxEvent::AckTimedOut => {}
        }
        true
    }

    fn on_response(&mut self, txns: &mut Transactions, server: TxId, client: TxId, r: Response, now: Instant) {
        match r.status {
            100 => self.provisional(txns, server, client, None, now),
            101..=199 => self.provisional(txns, server, client, Some(r), now),
            200..=299 => {
                let Some(ctx) = self.contexts.get_mut(&server) else { return };
                if let Some(b) = ctx.branches.iter_mut().find(|b| b.client == client) {
                    b.leg = Leg::Done;
                }
                let first = !ctx.final_sent;
                ctx.final_sent = true;
                stop_ringing(&mut self.ringing, server, ctx);
                send_upstream(txns, server, r, now);
                if first && ctx.request.method == Method::INVITE {
                    cancel_pending(txns, ctx, now);
                }
            }
            _ => self.branch_done(txns, server, client, r, now),
        }
    }

    fn provisional(&mut self, txns: &mut Transactions, server: TxId, client: TxId, r: Option<Response>, now: Instant) {
        let Some(ctx) = self.contexts.get_mut(&server) else { return };
        if let Some(b) = ctx.branches.iter_mut().find(|b| b.client == client) {
            if let Leg::Calling { cancel_when_provisional } = b.leg {
                b.leg = Leg::Proceeding;
                if cancel_when_provisional {
                    cancel(txns, b, now);
                }
            }
        }
        if let Some(r) = r {
            if !ctx.final_sent {
                send_upstream(txns, server, r, now);
            }
        }
    }

    fn branch_done(&mut self, txns: &mut Transactions, server: TxId, client: TxId, r: Response, now: Instant) {
        let Some(ctx) = self.contexts.get_mut(&server) else { return };
        if let Some(b) = ctx.branches.iter_mut().find(|b| b.client == client) {
            b.leg = Leg::Done;
        }
        let six = r.status >= 600;
        keep_best(&mut ctx.best, r);
        if six && !ctx.final_sent {
            // A 6xx ends the search (§16.7 step 5).
            ctx.fallback = None;
            cancel_pending(txns, ctx, now);
        }
        self.settle(txns, server, now);
    }

    /// Once every branch has ended: the fallback, or the best response.
    fn settle(&mut self, txns: &mut Transactions, server: TxId, now: Instant) {
        let Some(ctx) = self.contexts.get_mut(&server) else { return };
        if ctx.final_sent || ctx.pending().next().is_some() {
            return;
        }
        let nobody = ctx.unanswered
            || ctx.best.as_ref().is_none_or(|b| matches!(b.status, 408 | 480 | 486 | 487 | 500..=599));
        if !ctx.cancelled && nobody {
            if let Some(fallback) = ctx.fallback.take() {
                ctx.unanswered = false;
                ctx.best = None;
                stop_ringing(&mut self.ringing, server, ctx);
                self.start_branch(txns, server, &fallback, now);
                return self.settle(txns, server, now);
            }
        }
        let response = match (&ctx.best, ctx.cancelled, ctx.unanswered) {
            (_, true, _) => ctx.request.response(487),
            (_, false, true) => ctx.request.response(480),
            (Some(best), _, _) => upstream_status(best.clone()),
            (None, _, _) => ctx.request.response(408),
        };
        ctx.final_sent = true;
        stop_ringing(&mut self.ringing, server, ctx);
        send_upstream(txns, server, response, now);
        self.forget_if_finished(server);
    }

    /// Requests not yet answered at all (no final response sent) whose every pending branch goes
    /// to one of `dests`, with the request as received: what a dead WAN strands.
    pub fn stranded(&self, dests: &[SocketAddr]) -> Vec<(TxId, Request)> {
        self.contexts
            .iter()
            .filter(|(_, c)| !c.final_sent && c.pending().next().is_some() && c.pending().all(|b| dests.contains(&b.dest)))
            .map(|(id, c)| (*id, c.request.clone()))
            .collect()
    }

    /// Abandons the pending branches of `server` (their answers are no longer awaited) and forks
    /// anew to `targets`, with `fallback` as before.
    pub fn reroute(
        &mut self,
        txns: &mut Transactions,
        server: TxId,
        targets: Vec<Target>,
        fallback: Option<Target>,
        now: Instant,
    ) {
        self.abandon_branches(txns, server, now);
        let Some(ctx) = self.contexts.get_mut(&server) else { return };
        ctx.best = None;
        ctx.fallback = fallback;
        ctx.unanswered = targets.is_empty();
        for target in &targets {
            self.start_branch(txns, server, target, now);
        }
        self.settle(txns, server, now);
    }

    /// Abandons the pending branches of `server` and answers it with `response`.
    pub fn give_up(&mut self, txns: &mut Transactions, server: TxId, response: Response, now: Instant) {
        self.abandon_branches(txns, server, now);
        if let Some(ctx) = self.contexts.get_mut(&server) {
            ctx.final_sent = true;
            stop_ringing(&mut self.ringing, server, ctx);
        }
        send_upstream(txns, server, response, now);
        self.forget_if_finished(server);
    }

    fn abandon_branches(&mut self, txns: &mut Transactions, server: TxId, now: Instant) {
        let Some(ctx) = self.contexts.get_mut(&server) else { return };
        for b in ctx.branches.iter_mut().filter(|b| b.leg != Leg::Done) {
            if b.leg == Leg::Proceeding {
                cancel(txns, b, now);
            }
            b.leg = Leg::Done;
            self.clients.remove(&b.client);
        }
    }

    /// The caller sent CANCEL for the INVITE of server transaction `server` (§16.10).
    pub fn on_cancel(&mut self, txns: &mut Transactions, server: TxId, now: Instant) -> bool {
        let Some(ctx) = self.contexts.get_mut(&server) else { return false };
        ctx.cancelled = true;
        ctx.fallback = None;
        cancel_pending(txns, ctx, now);
        true
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.ringing.first().map(|(t, _)| *t)
    }

    /// Rang too long: cancel the ringing branches; the fallback (or 480) follows when they end.
    /// A branch that never even answered 100 cannot be cancelled (§9.1) and is not waited for.
    pub fn handle_timeout(&mut self, txns: &mut Transactions, now: Instant) {
        let mut due = Vec::new();
        while let Some(&(t, server)) = self.ringing.first() {
            if t > now {
                break;
            }
            self.ringing.pop_first();
            due.push(server);
        }
        for server in due {
            if let Some(ctx) = self.contexts.get_mut(&server) {
                ctx.ring_until = None;
                ctx.unanswered = true;
                for b in ctx.branches.iter_mut().filter(|b| matches!(b.leg, Leg::Calling { .. })) {
                    b.leg = Leg::Done;
                    self.clients.remove(&b.client);
                }
                cancel_pending(txns, ctx, now);
            }
            self.settle(txns, server, now);
        }
    }

    fn forget_if_finished(&mut self, server: TxId) {
        let finished = self
            .contexts
            .get(&server)
            .is_some_and(|c| c.final_sent && c.branches.iter().all(|b| !self.clients.contains_key(&b.client)));
        if finished {
            if let Some(mut ctx) = self.contexts.remove(&server) {
                stop_ringing(&mut self.ringing, server, &mut ctx);
            }
        }
    }
}

fn stop_ringing(ringing: &mut BTreeSet<(Instant, TxId)>, server: TxId, ctx: &mut Context) {
    if let Some(t) = ctx.ring_until.take() {
        ringing.remove(&(t, server));
    }
}

fn cancel_pending(txns: &mut Transactions, ctx: &mut Context, now: Instant) {
    for b in ctx.branches.iter_mut() {
        match b.leg {
            Leg::Calling { .. } => b.leg = Leg::Calling { cancel_when_provisional: true },
            Leg::Proceeding => cancel(txns, b, now),
            Leg::Done => {}
        }
    }
}

fn cancel(txns: &mut Transactions, b: &mut Branch, now: Instant) {
    if let Err(e) = txns.cancel(b.client, now) {
        log::debug!("CANCEL not sent: {e}");
    }
}

/// A branch's response as the upstream must see it: our Via off (§16.7 step 3).
fn without_our_via(r: &Response) -> Response {
    let mut r = r.clone();
    r.headers.remove_first(&HeaderName::Via);
    r
}

fn send_upstream(txns: &mut Transactions, server: TxId, r: Response, now: Instant) {
    if let Err(e) = txns.send_response(server, r, now) {
        log::debug!("response not relayed: {e}");
    }
}

#[cfg(test)]
mod tests;
