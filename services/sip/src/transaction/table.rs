//! The transaction layer: routes messages to their transaction (RFC 3261 §17.1.3, §17.2.3),
//! starts new ones, and keeps every timer in one heap so `next_timeout` stays O(1) with hundreds
//! of thousands of live transactions (a REGISTER's server transaction lives 64*T1 on UDP).
use super::key::{ClientKey, ServerKey};
use super::{
    cancel_for, ClientInvite, ClientNonInvite, ServerInvite, ServerNonInvite, TimerConfig, TxError, TxEvent,
};
use crate::message::{Method, Request, Response};
use crate::transport::Protocol;
use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Names one transaction for the life of a `Transactions` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(u64);

/// A message the transport must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// A request of a client transaction (first send, retransmission, ACK or CANCEL), shared
    /// with the transaction that keeps it for retransmission.
    Request { id: TxId, request: Arc<Request>, dest: SocketAddr, transport: Protocol },
    /// A response of a server transaction, routed by its Via (RFC 3261 §18.2.2), shared likewise.
    Response { id: TxId, response: Arc<Response> },
}

impl Transmit {
    /// The transaction to tell when sending fails.
    pub fn id(&self) -> TxId {
        match self {
            Transmit::Request { id, .. } | Transmit::Response { id, .. } => *id,
        }
    }
}

/// What a transaction tells its TU, with the transaction it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: TxId,
    pub event: TxEvent,
}

/// What became of an incoming request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A new server transaction; the TU answers through `Transactions::send_response(id, ..)`.
    Request { id: TxId, request: Request },
    /// A CANCEL, in a server transaction of its own, with the INVITE transaction it matches
    /// (§9.2); None means the TU answers 481.
    Cancel { id: TxId, request: Request, invite: Option<TxId> },
    /// An ACK that matched no transaction: the ACK for a 2xx, which belongs to the dialog.
    Ack(Request),
    /// A retransmission or the ACK for a non-2xx, handled by its transaction.
    Absorbed,
}

/// Where a client transaction sends its requests.
#[derive(Debug, Clone, Copy)]
struct Target {
    dest: SocketAddr,
    transport: Protocol,
}

/// Client machines hold their request and are boxed, so that the many server transactions of
/// a registrar do not each take a client's room in the map.
#[derive(Debug)]
enum Machine {
    InviteClient(Box<ClientInvite>, Target),
    NonInviteClient(Box<ClientNonInvite>, Target),
    InviteServer(ServerInvite),
    NonInviteServer(ServerNonInvite),
}

impl Machine {
    fn handle_timeout(&mut self, now: Instant) {
        match self {
            Machine::InviteClient(m, _) => m.handle_timeout(now),
            Machine::NonInviteClient(m, _) => m.handle_timeout(now),
            Machine::InviteServer(m) => m.handle_timeout(now),
            Machine::NonInviteServer(m) => m.handle_timeout(now),
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        match self {
            Machine::InviteClient(m, _) => m.next_timeout(),
            Machine::NonInviteClient(m, _) => m.next_timeout(),
            Machine::InviteServer(m) => m.next_timeout(),
            Machine::NonInviteServer(m) => m.next_timeout(),
        }
    }

    fn on_transport_error(&mut self) {
        match self {
            Machine::InviteClient(m, _) => m.on_transport_error(),
            Machine::NonInviteClient(m, _) => m.on_transport_error(),
            Machine::InviteServer(m) => m.on_transport_error(),
            Machine::NonInviteServer(m) => m.on_transport_error(),
        }
    }

    fn poll_event(&mut self) -> Option<TxEvent> {
        match self {
            Machine::InviteClient(m, _) => m.poll_event(),
            Machine::NonInviteClient(m, _) => m.poll_event(),
            Machine::InviteServer(m) => m.poll_event(),
            Machine::NonInviteServer(m) => m.poll_event(),
        }
    }

    fn poll_transmit(&mut self, id: TxId) -> Option<Transmit> {
        let request = |request, t: &Target| Transmit::Request { id, request, dest: t.dest, transport: t.transport };
        let response = |response| Transmit::Response { id, response };
        match self {
            Machine::InviteClient(m, t) => m.poll_transmit().map(|r| request(r, t)),
            Machine::NonInviteClient(m, t) => m.poll_transmit().map(|r| request(r, t)),
            Machine::InviteServer(m) => m.poll_transmit().map(response),
            Machine::NonInviteServer(m) => m.poll_transmit().map(response),
        }
    }
}

#[derive(Debug)]
enum Key {
    Client(Hashed<Box<ClientKey>>),
    Server(Hashed<Box<ServerKey>>),
}

/// A key with its hash, computed once (keyed by the table's RandomState, so that no peer can
/// aim branches at one bucket). When a map doubles it moves the stored hashes instead of hashing
/// every live transaction's branch again: at 57,000 live transactions that rehash held the
/// event loop for 40 ms.
#[derive(Debug, Clone)]
struct Hashed<K> {
    hash: u64,
    key: K,
}

impl<K: Hash> Hashed<K> {
    fn new(key: K, state: &RandomState) -> Self {
        Hashed { hash: state.hash_one(&key), key }
    }
}

impl<K> Hash for Hashed<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl<K: PartialEq> PartialEq for Hashed<K> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.key == other.key
    }
}

impl<K: Eq> Eq for Hashed<K> {}

/// For keys that are already hashes (`Hashed`) or our own sequential ids (`TxId`): one multiply
/// spreads them over the bits hashbrown looks at.
#[derive(Default)]
struct Spread(u64);

impl Hasher for Spread {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Spreading = BuildHasherDefault<Spread>;

#[derive(Debug)]
struct Entry {
    machine: Machine,
    key: Key,
    /// The deadline this entry has in the heap; heap items that disagree are stale.
    deadline: Option<Instant>,
    /// Set once the machine has reported Terminated.
    terminated: bool,
}

/// Every live transaction. After each call the caller drains `poll_transmit` (to the
/// transport) and `poll_event` (to the TU), and sleeps until `next_timeout`.
#[derive(Debug, Default)]
pub struct Transactions {
    config: TimerConfig,
    next_id: u64,
    /// Boxed: a doubling map moves pointers, not machines.
    entries: HashMap<TxId, Box<Entry>, Spreading>,
    /// Keys boxed too: a server key holds a whole URI in its RFC 2543 form.
    clients: HashMap<Hashed<Box<ClientKey>>, TxId, Spreading>,
    servers: HashMap<Hashed<Box<ServerKey>>, TxId, Spreading>,
    keys: RandomState,
    deadlines: BinaryHeap<Reverse<(Instant, TxId)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl Transactions {
    pub fn new(config: TimerConfig) -> Self {
        Transactions { config, ..Default::default() }
    }

    /// The timers (T1, T2, ...) the table runs with, for the TU's own waits on them.
    pub fn timers(&self) -> TimerConfig {
        self.config
    }

    /// Live transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `request` belongs to a live server transaction (a retransmission, or the ACK
    /// of a non-2xx): what a cap on live transactions must still let in.
    pub fn matches(&self, request: &Request) -> bool {
        ServerKey::for_request(request)
            .is_ok_and(|key| self.servers.contains_key(&Hashed::new(Box::new(key), &self.keys)))
    }

    /// A request from the transport, over `transport`.
    pub fn on_request(&mut self, request: Request, transport: Protocol, now: Instant) -> Result<Inbound, TxError> {
        let key = Hashed::new(Box::new(ServerKey::for_request(&request)?), &self.keys);
        if let Some(&id) = self.servers.get(&key) {
            if let Some(entry) = self.entries.get_mut(&id) {
                match &mut entry.machine {
                    Machine::InviteServer(m) => m.on_request(&request, now),
                    Machine::NonInviteServer(m) => m.on_request(),
                    Machine::InviteClient(..) | Machine::NonInviteClient(..) => {}
                }
                self.sync(id);
            }
            return Ok(Inbound::Absorbed);
        }
        if request.method == Method::ACK {
            return Ok(Inbound::Ack(request));
        }
        let machine = if request.method == Method::INVITE {
            Machine::InviteServer(ServerInvite::new(&request, transport, self.config, now))
        } else {
            Machine::NonInviteServer(ServerNonInvite::new(transport, self.config))
        };
        let invite = match request.method == Method::CANCEL {
            true => Some(self.servers.get(&Hashed::new(Box::new(key.key.cancelled_invite()), &self.keys)).copied()),
            false => None,
        };
        let id = self.insert(machine, Key::Server(key.clone()));
        self.servers.insert(key, id);
        self.sync(id);
        Ok(match invite {
            Some(invite) => Inbound::Cancel { id, request, invite },
            None => Inbound::Request { id, request },
        })
    }

    /// A response from the transport. Returns it when no client transaction matches (a 2xx
    /// retransmitted after its INVITE transaction ended goes to the dialog layer that way).
    pub fn on_response(&mut self, response: Response, now: Instant) -> Option<Response> {
        let key = ClientKey::for_response(&response).map(|key| Hashed::new(Box::new(key), &self.keys));
        let Some(id) = key.and_then(|key| self.clients.get(&key).copied()) else {
            return Some(response);
        };
        match self.entries.get_mut(&id).map(|e| &mut e.machine) {
            Some(Machine::InviteClient(m, _)) => m.on_response(response, now),
            Some(Machine::NonInviteClient(m, _)) => m.on_response(response, now),
            _ => return Some(response),
        }
        self.sync(id);
        None
    }

    /// Starts a client transaction for `request`, whose top Via must carry a fresh RFC 3261
    /// branch (`Ids::branch`). ACKs for 2xx are sent by the TU without a transaction.
    pub fn send_request(
        &mut self,
        request: Request,
        dest: SocketAddr,
        transport: Protocol,
        now: Instant,
    ) -> Result<TxId, TxError> {
        if request.method == Method::ACK {
            return Err(TxError::AckStartsNoTransaction);
        }
        let key = Hashed::new(Box::new(ClientKey::for_request(&request)?), &self.keys);
        if self.clients.contains_key(&key) {
            return Err(TxError::Duplicate);
        }
        let target = Target { dest, transport };
        let machine = if request.method == Method::INVITE {
            Machine::InviteClient(Box::new(ClientInvite::new(request, transport, self.config, now)?), target)
        } else {
            Machine::NonInviteClient(Box::new(ClientNonInvite::new(request, transport, self.config, now)), target)
        };
        let id = self.insert(machine, Key::Client(key.clone()));
        self.clients.insert(key, id);
        self.sync(id);
        Ok(id)
    }

    /// Cancels the client INVITE transaction `invite` (§9.1): starts the CANCEL's own client
    /// transaction towards the INVITE's destination, and gives the INVITE 64*T1 more for its
    /// final response.
    pub fn cancel(&mut self, invite: TxId, now: Instant) -> Result<TxId, TxError> {
        let entry = self.entries.get_mut(&invite).ok_or(TxError::Unknown(invite))?;
        let Machine::InviteClient(m, target) = &mut entry.machine else {
            return Err(TxError::NotClientInvite(invite));
        };
        let (request, target) = (cancel_for(m.request())?, *target);
        m.on_cancel_sent(now);
        self.sync(invite);
        self.send_request(request, target.dest, target.transport, now)
    }

    /// The TU's response for server transaction `id`.
    pub fn send_response(&mut self, id: TxId, response: Response, now: Instant) -> Result<(), TxError> {
        match self.entries.get_mut(&id).map(|e| &mut e.machine) {
            Some(Machine::InviteServer(m)) => m.send_response(response, now)?,
            Some(Machine::NonInviteServer(m)) => m.send_response(response, now)?,
            Some(_) => return Err(TxError::NotServer(id)),
            None => return Err(TxError::Unknown(id)),
        }
        self.sync(id);
        Ok(())
    }

    /// The transport failed to send a message of `id` (ignored once `id` has ended).
    pub fn on_transport_error(&mut self, id: TxId) {
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.machine.on_transport_error();
            self.sync(id);
        }
    }

    /// The earliest deadline of any transaction. It may lie before the true one (stale heap
    /// items are discarded lazily); `handle_timeout` then simply finds nothing due.
    /// The next deadline of a live transaction. Deadlines left stale (a transaction answered
    /// or ended before its timer) are dropped here, so the caller is not woken for nothing: every
    /// INVITE's 100 (Trying) timer goes stale when its TU answers in time.
    pub fn next_timeout(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if self.entries.get(&id).is_some_and(|e| e.deadline == Some(at)) {
                return Some(at);
            }
            self.deadlines.pop();
        }
        None
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, id))) = self.deadlines.peek() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let Some(entry) = self.entries.get_mut(&id) else { continue };
            if entry.deadline != Some(at) {
                continue;
            }
            entry.deadline = None;
            entry.machine.handle_timeout(now);
            self.sync(id);
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn insert(&mut self, machine: Machine, key: Key) -> TxId {
        let id = TxId(self.next_id);
        self.next_id += 1;
        self.entries.insert(id, Box::new(Entry { machine, key, deadline: None, terminated: false }));
        id
    }

    /// Moves what machine `id` produced into the table's queues, reschedules its timer and
    /// forgets it once terminated.
    fn sync(&mut self, id: TxId) {
        let Some(entry) = self.entries.get_mut(&id) else { return };
        while let Some(transmit) = entry.machine.poll_transmit(id) {
            self.transmits.push_back(transmit);
        }
        while let Some(event) = entry.machine.poll_event() {
            entry.terminated |= event == TxEvent::Terminated;
            self.events.push_back(Event { id, event });
        }
        if entry.terminated {
            match &entry.key {
                Key::Client(key) => {
                    self.clients.remove(key);
                }
                Key::Server(key) => {
                    self.servers.remove(key);
                }
            }
            self.entries.remove(&id);
            return;
        }
        let next = entry.machine.next_timeout();
        if next != entry.deadline {
            entry.deadline = next;
            if let Some(at) = next {
                self.deadlines.push(Reverse((at, id)));
            }
        }
    }
}
