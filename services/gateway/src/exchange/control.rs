//! What `sbactl pstn call` asks the simulated exchange, one line each way over its Unix socket
//! (`[gateway] exchange_control`): `call NUMBER from NUMBER [hangup-after SECS]`, answered by
//! `calling ...` or `refused: ...`.

use std::fmt;
use std::time::Duration;

/// The longest request line read; anything longer is refused unread.
pub const MAX_LINE: usize = 256;

/// A call the exchange places towards the branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    /// Digits, `+` first for an international (E.164) number.
    pub called: String,
    pub calling: String,
    pub hangup_after: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("expected `call NUMBER from NUMBER [hangup-after SECS]`")]
    Syntax,
    #[error("{0:?} is not a number (digits, `+` first for E.164)")]
    Number(String),
    #[error("hangup-after {0:?} is not a whole number of seconds")]
    Seconds(String),
}

fn number(text: &str) -> Result<String, RequestError> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    let ok = (1..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| text.to_string()).ok_or_else(|| RequestError::Number(text.to_string()))
}

impl CallRequest {
    pub fn new(called: &str, calling: &str, hangup_after: Option<Duration>) -> Result<CallRequest, RequestError> {
        Ok(CallRequest { called: number(called)?, calling: number(calling)?, hangup_after })
    }

    pub fn parse(line: &str) -> Result<CallRequest, RequestError> {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        let hangup_after = match words.as_slice() {
            ["call", _, "from", _] => None,
            ["call", _, "from", _, "hangup-after", secs] => {
                Some(Duration::from_secs(secs.parse().map_err(|_| RequestError::Seconds(secs.to_string()))?))
            }
            _ => return Err(RequestError::Syntax),
        };
        CallRequest::new(words[1], words[3], hangup_after)
    }
}

impl fmt::Display for CallRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call {} from {}", self.called, self.calling)?;
        if let Some(after) = self.hangup_after {
            write!(f, " hangup-after {}", after.as_secs())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_hostile_ones_are_refused() {
        let r = CallRequest::new("+15559873001", "2125550123", Some(Duration::from_secs(30))).unwrap();
        assert_eq!(r.to_string(), "call +15559873001 from 2125550123 hangup-after 30");
        assert_eq!(CallRequest::parse(&r.to_string()), Ok(r));
        assert_eq!(CallRequest::parse("call 3001 from 2125550123\n").unwrap().hangup_after, None);
        assert_eq!(CallRequest::parse("call 3001"), Err(RequestError::Syntax));
        assert_eq!(CallRequest::parse("call 30a1 from 1"), Err(RequestError::Number("30a1".into())));
        assert_eq!(CallRequest::parse("call ++1 from 1"), Err(RequestError::Number("++1".into())));
        assert_eq!(CallRequest::parse("call 1 from 1 hangup-after -3"), Err(RequestError::Seconds("-3".into())));
        assert!(CallRequest::parse(&format!("call {} from 1", "1".repeat(21))).is_err());
    }
}
