//! The in-memory state store: one process, gone with it.

use super::{StateError, StateStore, Summary, real_now};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

struct Grant {
    until: u64,
    data: String,
}

#[derive(Default)]
struct Held {
    /// Revocations: (seq, until, data), in order.
    log: Vec<(u64, u64, String)>,
    next: u64,
    grants: HashMap<String, Vec<Arc<Grant>>>,
    grant_count: usize,
    /// Sizes after the last sweep (sweeps are amortized).
    swept_log: usize,
    swept_grants: usize,
    /// Published issuer keys by kid: (until, JWK text).
    keys: HashMap<String, (u64, String)>,
}

/// State in this process's memory.
#[derive(Default)]
pub struct Memory {
    held: Mutex<Held>,
}

impl Memory {
    pub fn new() -> Memory {
        Memory::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StateStore for Memory {
    fn append_revocation(&self, data: &str, until: u64) -> Result<(), StateError> {
        let mut h = self.lock();
        if h.log.len() >= (h.swept_log * 2).max(1024) {
            let now = real_now();
            h.log.retain(|(_, u, _)| *u > now);
            h.swept_log = h.log.len();
        }
        h.next += 1;
        let seq = h.next;
        h.log.push((seq, until, data.to_string()));
        Ok(())
    }

    fn revocations_since(&self, seq: u64) -> Result<Vec<(u64, String)>, StateError> {
        let h = self.lock();
        let start = h.log.partition_point(|(n, _, _)| *n <= seq);
        Ok(h.log[start..].iter().map(|(n, _, d)| (*n, d.clone())).collect())
    }

    fn register_grant(&self, data: &str, until: u64, keys: &[String]) -> Result<(), StateError> {
        let mut h = self.lock();
        if h.grant_count >= (h.swept_grants * 2).max(1024) {
            let now = real_now();
            h.grants.retain(|_, v| {
                v.retain(|g| g.until > now);
                !v.is_empty()
            });
            h.grant_count = h.grants.values().map(Vec::len).sum();
            h.swept_grants = h.grant_count;
        }
        let g = Arc::new(Grant { until, data: data.to_string() });
        for k in keys {
            h.grants.entry(k.clone()).or_default().push(g.clone());
            h.grant_count += 1;
        }
        Ok(())
    }

    fn grants(&self, key: &str, now: u64) -> Result<Vec<String>, StateError> {
        let h = self.lock();
        Ok(h.grants
            .get(key)
            .map(|v| v.iter().filter(|g| g.until > now).map(|g| g.data.clone()).collect())
            .unwrap_or_default())
    }

    fn last_seq(&self) -> Result<u64, StateError> {
        Ok(self.lock().next)
    }

    fn summary(&self) -> Result<Summary, StateError> {
        let h = self.lock();
        let mut distinct: Vec<*const Grant> = h.grants.values().flatten().map(Arc::as_ptr).collect();
        distinct.sort_unstable();
        distinct.dedup();
        Ok(Summary {
            location: self.location(),
            revocations: h.log.len() as u64,
            last_seq: h.next,
            grants: distinct.len() as u64,
        })
    }

    fn location(&self) -> String {
        "memory".into()
    }

    fn publish_key(&self, kid: &str, jwk: &serde_json::Value, until: u64) -> Result<(), StateError> {
        let mut h = self.lock();
        let now = real_now();
        h.keys.retain(|_, (u, _)| *u > now);
        h.keys.insert(kid.to_string(), (until, jwk.to_string()));
        Ok(())
    }

    fn published_keys(&self, now: u64) -> Result<Vec<(String, String)>, StateError> {
        let h = self.lock();
        Ok(h.keys.iter().filter(|(_, (u, _))| *u > now).map(|(kid, (_, k))| (kid.clone(), k.clone())).collect())
    }
}
