//! Q.931 basic call control for ISDN PRI: messages and IEs, per-call state machines, B-channels.
//! Its Q.850 causes are holdfast-telephony's.

mod call;
mod channels;
pub mod dialplan;
pub mod ie;
mod message;
mod stack;
mod timer;

pub use call::{CallId, CallState};
pub use channels::{ChannelError, ChannelPool, Hunt, Layout};
pub use message::{CallRef, DecodeError, Message, MessageType};
pub use stack::{CallError, CallEvent, Outgoing, Stack};
pub use timer::{CallTimer, RESTART_ATTEMPTS, T316};

#[cfg(test)]
mod tests;
