//! Errors of the transaction layer.
use super::TxId;
use crate::message::HeaderError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("the top Via has no branch parameter")]
    NoBranch,
    #[error("branch {0:?} lacks the RFC 3261 magic cookie z9hG4bK")]
    NoMagicCookie(String),
    #[error("an ACK starts no client transaction")]
    AckStartsNoTransaction,
    #[error("a transaction with this branch and method already exists")]
    Duplicate,
    #[error("no transaction {0:?}")]
    Unknown(TxId),
    #[error("{0:?} is not a server transaction")]
    NotServer(TxId),
    #[error("{0:?} is not a client INVITE transaction")]
    NotClientInvite(TxId),
    #[error("status {0} is outside 100..=699")]
    BadStatus(u16),
    #[error("cannot send a response in state {0}")]
    ResponseInState(&'static str),
}
