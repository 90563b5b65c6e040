//! Logged-in admins: a session lives `ttl` from its login, at most `MAX` at once (the oldest
//! goes first), and carries the CSRF token its forms must send back.
use super::token;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const MAX: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub csrf: String,
    pub expires: Instant,
}

pub struct Sessions {
    by_token: HashMap<String, Session>,
    ttl: Duration,
}

impl Sessions {
    pub fn new(ttl: Duration) -> Sessions {
        Sessions { by_token: HashMap::new(), ttl }
    }

    /// A new session: (its cookie token, the session).
    pub fn create(&mut self, now: Instant) -> (String, Session) {
        self.by_token.retain(|_, s| s.expires > now);
        if self.by_token.len() >= MAX {
            if let Some(oldest) = self.by_token.iter().min_by_key(|(_, s)| s.expires).map(|(t, _)| t.clone()) {
                self.by_token.remove(&oldest);
            }
        }
        let session = Session { csrf: token(), expires: now + self.ttl };
        let t = token();
        self.by_token.insert(t.clone(), session.clone());
        (t, session)
    }

    /// The live session of cookie token `t`.
    pub fn get(&self, t: &str, now: Instant) -> Option<&Session> {
        self.by_token.get(t).filter(|s| s.expires > now)
    }

    pub fn remove(&mut self, t: &str) {
        self.by_token.remove(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_are_bounded() {
        let now = Instant::now();
        let mut s = Sessions::new(Duration::from_secs(60));
        let (first, session) = s.create(now);
        assert_eq!(s.get(&first, now + Duration::from_secs(59)), Some(&session));
        assert_eq!(s.get(&first, now + Duration::from_secs(60)), None);
        assert_eq!(s.get("guess", now), None);
        for i in 0..MAX as u64 {
            s.create(now + Duration::from_millis(i + 1));
        }
        assert!(s.by_token.len() <= MAX);
        assert_eq!(s.get(&first, now), None, "the oldest went first");
        let (t, _) = s.create(now);
        s.remove(&t);
        assert_eq!(s.get(&t, now), None);
    }
}
