//! [`BoundedMap`]: the one shape of every cache in core — a map that never holds more than its
//! cap, and starts over rather than grow.
//!
//! Each cache trades memory for time on repeats of inputs a caller chooses (chains, tokens,
//! resource texts, contexts), so none may grow with what a caller sends. Starting over when
//! full needs no per-entry bookkeeping on the hit path, and a miss only costs the work the
//! cache saves.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};

/// A map of at most `cap` entries. Inserting a new key into a full map first drops what
/// [`insert_pruning`](Self::insert_pruning)'s predicate lets go (e.g. expired entries), and
/// clears the map when that is not enough.
#[derive(Debug, Clone)]
pub struct BoundedMap<K, V, S = RandomState> {
    map: HashMap<K, V, S>,
    cap: usize,
}

impl<K: Eq + Hash, V> BoundedMap<K, V, RandomState> {
    /// An empty map that holds at most `cap` entries (at least one).
    pub fn new(cap: usize) -> Self {
        BoundedMap { map: HashMap::new(), cap: cap.max(1) }
    }
}

impl<K: Eq + Hash, V, S: BuildHasher> BoundedMap<K, V, S> {
    /// An empty map of at most `cap` entries, hashing with `hasher` (seed it when callers
    /// choose the keys).
    pub fn with_hasher(cap: usize, hasher: S) -> Self {
        BoundedMap { map: HashMap::with_hasher(hasher), cap: cap.max(1) }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key)
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_mut(key)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.contains_key(key)
    }

    /// Insert, clearing the map first when it is full and `key` is new.
    pub fn insert(&mut self, key: K, value: V) {
        self.insert_pruning(key, value, |_, _| false);
    }

    /// Insert; when the map is full and `key` is new, first keep only the entries `keep`
    /// accepts, and clear the map if that frees nothing.
    pub fn insert_pruning(&mut self, key: K, value: V, mut keep: impl FnMut(&K, &V) -> bool) {
        if self.map.len() >= self.cap && !self.map.contains_key(&key) {
            self.map.retain(|k, v| keep(k, v));
            if self.map.len() >= self.cap {
                self.map.clear();
            }
        }
        self.map.insert(key, value);
    }

    /// The value of `key`, inserted from `make` when missing (clearing a full map first).
    pub fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        if self.map.len() >= self.cap && !self.map.contains_key(&key) {
            self.map.clear();
        }
        self.map.entry(key).or_insert_with(make)
    }

    /// Keep only the entries `keep` accepts.
    pub fn retain(&mut self, keep: impl FnMut(&K, &mut V) -> bool) {
        self.map.retain(keep);
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.map.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_holds_more_than_its_cap() {
        let mut m = BoundedMap::new(3);
        for i in 0..10 {
            m.insert(i, i);
            assert!(m.len() <= 3);
            assert_eq!(m.get(&i), Some(&i));
        }
        // Replacing a key of a full map keeps the others.
        let mut m = BoundedMap::new(2);
        m.insert("a", 1);
        m.insert("b", 2);
        m.insert("a", 3);
        assert_eq!((m.get("a"), m.get("b")), (Some(&3), Some(&2)));
    }

    #[test]
    fn pruning_frees_room_before_clearing() {
        let mut m = BoundedMap::new(3);
        m.insert(1, "expired");
        m.insert(2, "live");
        m.insert(3, "expired");
        m.insert_pruning(4, "live", |_, v| *v == "live");
        assert_eq!(m.len(), 2);
        assert!(m.contains_key(&2) && m.contains_key(&4));
        // Nothing to prune: the map starts over.
        m.insert(5, "live");
        m.insert_pruning(6, "live", |_, v| *v == "live");
        assert_eq!(m.len(), 1);
        assert_eq!(m.get(&6), Some(&"live"));
        let v = m.get_or_insert_with(7, || "made");
        assert_eq!(*v, "made");
    }
}
