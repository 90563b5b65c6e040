//! What a transaction tells its transaction user.
use crate::message::Response;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent {
    /// Client: a response for the TU (provisional or final; retransmissions are absorbed).
    Response(Response),
    /// Client: Timer B or F fired without a final response. Carries the 408 the TU treats as the
    /// final response (RFC 3261 §8.1.3.1).
    TimedOut(Response),
    /// Server INVITE: Timer H fired, the ACK for our non-2xx final response never came.
    AckTimedOut,
    /// The transport could not deliver a message of this transaction.
    TransportError,
    /// The transaction is over; nothing more comes from it.
    Terminated,
}
