//! Transaction matching keys (RFC 3261 §17.1.3 and §17.2.3).
use super::TxError;
use crate::message::{Host, Method, Request, Response, Uri};
use std::hash::{Hash, Hasher};

/// Marks a branch as RFC 3261-unique (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// A client transaction is found by the branch of the top Via plus the CSeq method (§17.1.3):
/// a CANCEL shares its INVITE's branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientKey {
    branch: String,
    method: Method,
}

// Method has no Hash; hashing the branch alone is consistent with Eq.
impl Hash for ClientKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.branch.hash(state);
    }
}

impl ClientKey {
    pub(crate) fn for_request(request: &Request) -> Result<ClientKey, TxError> {
        let via = request.top_via_raw()?;
        let branch = via.branch().ok_or(TxError::NoBranch)?;
        if !branch.starts_with(MAGIC_COOKIE) {
            return Err(TxError::NoMagicCookie(branch.to_string()));
        }
        Ok(ClientKey { branch: branch.to_string(), method: request.method.clone() })
    }

    /// None when the response cannot belong to any client transaction of ours.
    pub(crate) fn for_response(response: &Response) -> Option<ClientKey> {
        let via = response.top_via_raw().ok()?;
        let branch = via.branch()?.to_string();
        Some(ClientKey { branch, method: response.cseq().ok()?.method })
    }
}

/// A server transaction is found by branch, sent-by and method when the branch carries the magic
/// cookie, else by the RFC 2543 fields (§17.2.3). An ACK is keyed as the INVITE it acknowledges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServerKey {
    Branch { branch: String, host: Host, port: Option<u16>, method: Method },
    /// The To tag is left out: the ACK for a non-2xx carries the tag of our response, the INVITE
    /// none, and both must find the same transaction.
    Legacy { uri: Uri, call_id: String, from_tag: Option<String>, seq: u32, via: String, method: Method },
}

impl Hash for ServerKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            ServerKey::Branch { branch, .. } => branch.hash(state),
            ServerKey::Legacy { call_id, seq, .. } => {
                call_id.hash(state);
                seq.hash(state);
            }
        }
    }
}

impl ServerKey {
    pub(crate) fn for_request(request: &Request) -> Result<ServerKey, TxError> {
        let method = if request.method == Method::ACK { Method::INVITE } else { request.method.clone() };
        let via = request.top_via_raw()?;
        match via.branch() {
            Some(branch) if branch.starts_with(MAGIC_COOKIE) => Ok(ServerKey::Branch {
                branch: branch.to_string(),
                host: via.host.to_host(),
                port: via.port,
                method,
            }),
            _ => Ok(ServerKey::Legacy {
                uri: request.uri.clone(),
                call_id: request.call_id()?.to_string(),
                from_tag: request.from_header()?.tag().map(str::to_string),
                seq: request.cseq()?.seq,
                via: request.headers.get(&crate::message::HeaderName::Via).unwrap_or_default().trim().to_string(),
                method,
            }),
        }
    }

    /// The key of the INVITE transaction a CANCEL with this key cancels (§9.2).
    pub(crate) fn cancelled_invite(&self) -> ServerKey {
        let mut key = self.clone();
        match &mut key {
            ServerKey::Branch { method, .. } | ServerKey::Legacy { method, .. } => *method = Method::INVITE,
        }
        key
    }
}
