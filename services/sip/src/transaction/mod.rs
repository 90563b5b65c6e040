//! RFC 3261 §17 transactions as sans-IO state machines: messages and the current time go in,
//! messages to send (`poll_transmit`) and what the TU must know (`poll_event`) come out, and
//! `next_timeout`/`handle_timeout` let the caller drive the timers. `Transactions` matches
//! incoming messages to the machines and aggregates their timers.
mod client_invite;
mod client_non_invite;
mod derived_request;
mod error;
mod event;
mod key;
mod retransmit;
mod server_invite;
mod server_non_invite;
mod table;
mod timer;

pub use client_invite::{ClientInvite, ClientInviteState};
pub use client_non_invite::{ClientNonInvite, ClientNonInviteState};
pub use derived_request::cancel_for;
pub use error::TxError;
pub use event::TxEvent;
pub use key::MAGIC_COOKIE;
pub use server_invite::{ServerInvite, ServerInviteState};
pub use server_non_invite::{ServerNonInvite, ServerNonInviteState};
pub use table::{Event, Inbound, Transactions, Transmit, TxId};
pub use timer::{Timer, TimerConfig};
