//! The host side of the `ledger` import, shared by every instance of one `Writ` and
//! optionally mirrored to a JSON-lines file so separate processes (CLI invocations) see each
//! other's grants and revocations. Two stores of opaque entries: an ordered log of
//! revocations (each instance replays it) and grants indexed by the keys the component gives
//! (found again when a revocation counts them). The component writes and reads the entries
//! and keeps the rules; this only stores them and forgets expired ones.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One line of the ledger file: a revocation (no `keys`) or a grant (with its keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Line {
    until: u64,
    data: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keys: Option<Vec<String>>,
}

struct Grant {
    until: u64,
    data: String,
}

#[derive(Default)]
struct Store {
    /// Revocations: (seq, until, data), in order.
    log: Vec<(u64, u64, String)>,
    next: u64,
    grants: HashMap<String, Vec<Arc<Grant>>>,
    grant_count: usize,
    /// Sizes after the last sweep (sweeps are amortized).
    swept_log: usize,
    swept_grants: usize,
}

impl Store {
    fn push_revocation(&mut self, until: u64, data: String, now: u64) {
        if self.log.len() >= (self.swept_log * 2).max(1024) {
            self.log.retain(|(_, u, _)| *u > now);
            self.swept_log = self.log.len();
        }
        self.next += 1;
        self.log.push((self.next, until, data));
    }

    fn push_grant(&mut self, until: u64, data: String, keys: &[String], now: u64) {
        if self.grant_count >= (self.swept_grants * 2).max(1024) {
            self.grants.retain(|_, v| {
                v.retain(|g| g.until > now);
                !v.is_empty()
            });
            self.grant_count = self.grants.values().map(Vec::len).sum();
            self.swept_grants = self.grant_count;
        }
        let g = Arc::new(Grant { until, data });
        for k in keys {
            self.grants.entry(k.clone()).or_default().push(g.clone());
            self.grant_count += 1;
        }
    }
}

/// The shared ledger.
pub struct LedgerLog {
    store: Mutex<Store>,
    file: Option<PathBuf>,
}

impl LedgerLog {
    /// In memory only.
    pub fn memory() -> LedgerLog {
        LedgerLog { store: Mutex::new(Store::default()), file: None }
    }

    /// Backed by `path`: entries still relevant at `now` are loaded (the file is rewritten
    /// without the others), and every new entry is appended.
    pub fn open(path: &Path, now: u64) -> Result<LedgerLog, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut store = Store::default();
        let mut kept = String::new();
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let l: Line = serde_json::from_str(line).map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?;
            if l.until <= now {
                continue;
            }
            kept.push_str(line);
            kept.push('\n');
            match l.keys {
                Some(keys) => store.push_grant(l.until, l.data, &keys, now),
                None => store.push_revocation(l.until, l.data, now),
            }
        }
        std::fs::write(path, kept).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(LedgerLog { store: Mutex::new(store), file: Some(path.to_path_buf()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist(&self, line: &Line) -> Result<(), String> {
        let Some(path) = &self.file else { return Ok(()) };
        let text = serde_json::to_string(line).map_err(|e| e.to_string())?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        writeln!(f, "{text}").map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Append a revocation relevant until `until`. A file write failure is reported; the
    /// entry is in force in memory either way.
    pub fn append(&self, data: String, until: u64, now: u64) -> Result<(), String> {
        let line = Line { until, data, keys: None };
        let persisted = self.persist(&line);
        self.lock().push_revocation(until, line.data, now);
        persisted
    }

    /// Revocations after `seq`, in order.
    pub fn since(&self, seq: u64) -> Vec<(u64, String)> {
        let s = self.lock();
        let start = s.log.partition_point(|(n, _, _)| *n <= seq);
        s.log[start..].iter().map(|(n, _, d)| (*n, d.clone())).collect()
    }

    /// Register a grant under `keys`.
    pub fn register(&self, data: String, until: u64, keys: Vec<String>, now: u64) -> Result<(), String> {
        let line = Line { until, data, keys: Some(keys) };
        let persisted = self.persist(&line);
        let keys = line.keys.unwrap_or_default();
        self.lock().push_grant(until, line.data, &keys, now);
        persisted
    }

    /// Live grants under `key`.
    pub fn find(&self, key: &str, now: u64) -> Vec<String> {
        let s = self.lock();
        s.grants
            .get(key)
            .map(|v| v.iter().filter(|g| g.until > now).map(|g| g.data.clone()).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_in_order_grants_by_key_and_files_keep_the_relevant_ones() {
        let dir = std::env::temp_dir().join(format!("writ-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("l.jsonl");
        let _ = std::fs::remove_file(&path);
        let log = LedgerLog::open(&path, 100).unwrap();
        log.append("a".into(), 150, 100).unwrap();
        log.append("b".into(), 500, 100).unwrap();
        log.register("g1".into(), 300, vec!["task:t".into(), "agent:x".into()], 100).unwrap();
        log.register("g2".into(), 120, vec!["task:t".into()], 100).unwrap();
        assert_eq!(log.since(0), vec![(1, "a".to_string()), (2, "b".to_string())]);
        assert_eq!(log.since(1), vec![(2, "b".to_string())]);
        assert!(log.since(2).is_empty());
        assert_eq!(log.find("task:t", 110), vec!["g1".to_string(), "g2".to_string()]);
        assert_eq!(log.find("task:t", 130), vec!["g1".to_string()], "g2 expired");
        assert_eq!(log.find("agent:x", 110), vec!["g1".to_string()]);
        assert!(log.find("agent:y", 110).is_empty());
        // Reopened later: expired entries are gone, the others kept.
        let again = LedgerLog::open(&path, 200).unwrap();
        assert_eq!(again.since(0), vec![(1, "b".to_string())]);
        assert_eq!(again.find("agent:x", 200), vec!["g1".to_string()]);
        std::fs::write(&path, "not json\n").unwrap();
        assert!(LedgerLog::open(&path, 200).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
