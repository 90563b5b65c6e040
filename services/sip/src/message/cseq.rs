use super::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// RFC 3261 §8.1.1.5: less than 2**31.
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(_value: &str) -> Result<Self, super::HeaderError> {
        todo!("wire helper: parse CSeq")
    }
}
