//! `name-addr / addr-spec` with header parameters: From, To, Contact, Route, Record-Route, Path.
use super::{Params, Uri};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name without quotes, unescaped.
    pub display: Option<String>,
    pub uri: Uri,
    /// Header parameters (after `>`; for an addr-spec without `<>` every `;param` is a header param).
    pub params: Params,
}

impl NameAddr {
    pub fn tag(&self) -> Option<&str> {
        self.params.value("tag")
    }
}

impl NameAddr {
    pub fn parse(_value: &str) -> Result<Self, super::HeaderError> {
        todo!("wire helper: parse NameAddr")
    }
}
