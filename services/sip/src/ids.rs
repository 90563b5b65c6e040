//! The identifiers a SIP element makes up (RFC 3261): the branch of each client transaction it
//! starts (§8.1.1.7, behind the magic cookie), its tags (§19.3) and Call-IDs (§8.1.1.4). They
//! come from an RNG the element's owner injects: the services seed it from the operating system,
//! a test from a number, and a core run under test then says the same thing run after run.
use crate::transaction::MAGIC_COOKIE;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use std::fmt::Display;

pub struct Ids {
    rng: StdRng,
}

impl std::fmt::Debug for Ids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ids(..)")
    }
}

impl Ids {
    pub fn new(rng: StdRng) -> Ids {
        Ids { rng }
    }

    /// Seeded from the operating system: what a running service uses.
    pub fn from_os() -> Ids {
        Ids::new(StdRng::from_os_rng())
    }

    /// Seeded with `seed`: the same identifiers every run.
    pub fn seeded(seed: u64) -> Ids {
        Ids::new(StdRng::seed_from_u64(seed))
    }

    /// A branch for a new client transaction: the magic cookie and 96 random bits.
    pub fn branch(&mut self) -> String {
        format!("{MAGIC_COOKIE}{:016x}{:08x}", self.rng.next_u64(), self.rng.next_u32())
    }

    /// A From or To tag: 64 random bits (§19.3 asks for 32 at least).
    pub fn tag(&mut self) -> String {
        format!("{:016x}", self.rng.next_u64())
    }

    /// A Call-ID: 128 random bits at `host`.
    pub fn call_id(&mut self, host: impl Display) -> String {
        format!("{:016x}{:016x}@{host}", self.rng.next_u64(), self.rng.next_u64())
    }

    pub fn next_u32(&mut self) -> u32 {
        self.rng.next_u32()
    }

    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_identifiers_and_they_have_their_form() {
        let (mut a, mut b) = (Ids::seeded(7), Ids::seeded(7));
        let first = (a.branch(), a.tag(), a.call_id("127.0.0.1"));
        assert_eq!(first, (b.branch(), b.tag(), b.call_id("127.0.0.1")));
        assert!(first.0.starts_with("z9hG4bK") && first.0.len() == 7 + 24, "{}", first.0);
        assert_eq!(first.1.len(), 16);
        assert!(first.2.ends_with("@127.0.0.1") && first.2.len() == 32 + 10, "{}", first.2);
        assert_ne!(a.tag(), first.1, "each call draws anew");
        assert_ne!(Ids::seeded(8).tag(), Ids::seeded(7).tag());
    }
}
