//! How many connections sba-web holds, and how many of them one address may hold: a host that
//! opens connections and sends nothing keeps its share busy (until the handshake and header
//! timeouts), not everyone's, so the admin still gets in.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// What the slots are taken for: one entry per address holding any, so at most `total` entries.
#[derive(Debug)]
struct Held {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
pub struct Connections {
    held: Arc<Mutex<Held>>,
    max_total: usize,
    max_per_address: usize,
}

/// A connection's place, given back when it is dropped.
#[derive(Debug)]
pub struct Slot {
    held: Arc<Mutex<Held>>,
    address: IpAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0} connections open")]
    Full(usize),
    #[error("{0} connections open from this address")]
    AddressFull(usize),
}

impl Connections {
    pub fn new(max_total: usize, max_per_address: usize) -> Connections {
        Connections { held: Arc::new(Mutex::new(Held { total: 0, by_address: HashMap::new() })), max_total, max_per_address }
    }

    pub fn take(&self, address: IpAddr) -> Result<Slot, Refused> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if held.total >= self.max_total {
            return Err(Refused::Full(self.max_total));
        }
        let mine = held.by_address.entry(address).or_insert(0);
        if *mine >= self.max_per_address {
            return Err(Refused::AddressFull(self.max_per_address));
        }
        *mine += 1;
        held.total += 1;
        Ok(Slot { held: self.held.clone(), address })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.total = held.total.saturating_sub(1);
        if let Some(n) = held.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                held.by_address.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn one_address_holds_its_share_and_the_others_still_get_in() {
        let c = Connections::new(8, 3);
        let stranger: Vec<Slot> = (0..3).map(|_| c.take(ip(2)).expect("within its share")).collect();
        assert_eq!(c.take(ip(2)).unwrap_err(), Refused::AddressFull(3));
        let admin = c.take(ip(1)).expect("the admin gets in");
        drop(stranger);
        assert!(c.take(ip(2)).is_ok(), "a closed connection gives its place back");
        drop(admin);
        assert!(c.held.lock().expect("lock").by_address.len() <= 1);
    }

    #[test]
    fn the_total_is_bounded_and_addresses_are_forgotten_when_they_hold_nothing() {
        let c = Connections::new(4, 4);
        let held: Vec<Slot> = (1..=4).map(|i| c.take(ip(i)).expect("room")).collect();
        assert_eq!(c.take(ip(9)).unwrap_err(), Refused::Full(4));
        drop(held);
        let h = c.held.lock().expect("lock");
        assert_eq!((h.total, h.by_address.len()), (0, 0));
    }
}
