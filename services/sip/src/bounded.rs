//! Tables the network fills, a row per source address (the registrar's per-source guard, the
//! digest failure throttle), stay within a bound: room for a new row is made by forgetting the
//! rows that are over, and when none are, the oldest quarter at once, so a flood of new
//! addresses costs one selection per quarter of the table rather than a scan per address.
use std::collections::HashMap;
use std::hash::Hash;

/// Makes room in `table` for one more row if it holds `max` or more: forgets the rows that
/// `over` says are done with, and if that is not enough, the oldest quarter by `age`.
pub fn make_room<K, V, T>(table: &mut HashMap<K, V>, max: usize, over: impl Fn(&V) -> bool, age: impl Fn(&V) -> T)
where
    K: Eq + Hash,
    T: Ord + Copy,
{
    if table.len() < max {
        return;
    }
    table.retain(|_, v| !over(v));
    if table.len() < max || table.is_empty() {
        return;
    }
    let mut ages: Vec<T> = table.values().map(&age).collect();
    let index = ages.len() / 4;
    let (_, &mut cutoff, _) = ages.select_nth_unstable(index);
    table.retain(|_, v| age(v) > cutoff);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows: key -> (age, over).
    fn table(n: u32) -> HashMap<u32, (u32, bool)> {
        (0..n).map(|k| (k, (k, false))).collect()
    }

    #[test]
    fn nothing_is_forgotten_below_the_bound() {
        let mut t = table(8);
        t.insert(100, (100, true));
        make_room(&mut t, 10, |v| v.1, |v| v.0);
        assert_eq!(t.len(), 9);
    }

    #[test]
    fn rows_that_are_over_go_first() {
        let mut t = table(8);
        t.insert(100, (100, true));
        t.insert(101, (101, true));
        make_room(&mut t, 10, |v| v.1, |v| v.0);
        assert_eq!(t.len(), 8, "the two rows that are over, and only them");
        assert!(!t.contains_key(&100) && !t.contains_key(&101));
    }

    #[test]
    fn else_the_oldest_quarter_goes() {
        let mut t = table(16);
        make_room(&mut t, 16, |v| v.1, |v| v.0);
        assert!(t.len() < 16 && t.len() >= 11, "{}", t.len());
        let oldest_kept = t.values().map(|v| v.0).min();
        let newest_forgotten = (0..16).filter(|k| !t.contains_key(k)).max();
        assert!(newest_forgotten < oldest_kept, "forgotten oldest first");
    }

    #[test]
    fn a_zero_bound_does_not_panic() {
        let mut t: HashMap<u32, (u32, bool)> = HashMap::new();
        make_room(&mut t, 0, |v| v.1, |v| v.0);
        assert!(t.is_empty());
    }
}
