//! The host side of the `ledger` import: an ordered log of opaque entries shared by every
//! instance of one `Writ`, optionally mirrored to a JSON-lines file so separate processes
//! (CLI invocations) see each other's grants and revocations. The component writes and reads
//! the entries and keeps the rules; this only stores them and forgets expired ones.

use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    seq: u64,
    until: u64,
    data: String,
}

#[derive(Default)]
struct Log {
    entries: Vec<Entry>,
    next: u64,
    /// Length after the last sweep of expired entries.
    swept_at_len: usize,
}

/// The shared ledger log.
pub struct LedgerLog {
    log: Mutex<Log>,
    file: Option<PathBuf>,
}

impl LedgerLog {
    /// In memory only.
    pub fn memory() -> LedgerLog {
        LedgerLog { log: Mutex::new(Log { next: 1, ..Log::default() }), file: None }
    }

    /// Backed by `path`: entries still relevant at `now` are loaded (the file is rewritten
    /// without the others), and every new entry is appended.
    pub fn open(path: &Path, now: u64) -> Result<LedgerLog, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut log = Log { next: 1, ..Log::default() };
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let e: Entry = serde_json::from_str(line).map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))?;
            if e.until > now {
                log.entries.push(Entry { seq: log.next, ..e });
                log.next += 1;
            }
        }
        let mut compacted = String::new();
        for e in &log.entries {
            compacted.push_str(&serde_json::to_string(e).map_err(|e| e.to_string())?);
            compacted.push('\n');
        }
        std::fs::write(path, compacted).map_err(|e| format!("{}: {e}", path.display()))?;
        log.swept_at_len = log.entries.len();
        Ok(LedgerLog { log: Mutex::new(log), file: Some(path.to_path_buf()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append an entry relevant until `until`. A file write failure is reported; the entry
    /// is kept in memory either way.
    pub fn append(&self, data: String, until: u64, now: u64) -> Result<(), String> {
        let mut log = self.lock();
        if log.entries.len() >= (log.swept_at_len * 2).max(1024) {
            log.entries.retain(|e| e.until > now);
            log.swept_at_len = log.entries.len();
        }
        let entry = Entry { seq: log.next, until, data };
        log.next += 1;
        let line = serde_json::to_string(&entry).map_err(|e| e.to_string());
        log.entries.push(entry);
        if let Some(path) = &self.file {
            let line = line?;
            let mut f = std::fs::OpenOptions::new().append(true).create(true).open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            writeln!(f, "{line}").map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Entries after `seq`, in order.
    pub fn since(&self, seq: u64) -> Vec<(u64, String)> {
        let log = self.lock();
        let start = log.entries.partition_point(|e| e.seq <= seq);
        log.entries[start..].iter().map(|e| (e.seq, e.data.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_returns_later_entries_in_order_and_files_persist_the_relevant_ones() {
        let dir = std::env::temp_dir().join(format!("writ-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("l.jsonl");
        let _ = std::fs::remove_file(&path);
        let log = LedgerLog::open(&path, 100).unwrap();
        log.append("a".into(), 150, 100).unwrap();
        log.append("b".into(), 500, 100).unwrap();
        assert_eq!(log.since(0), vec![(1, "a".to_string()), (2, "b".to_string())]);
        assert_eq!(log.since(1), vec![(2, "b".to_string())]);
        assert!(log.since(2).is_empty());
        // Reopened later: the expired entry is gone, the other kept.
        let again = LedgerLog::open(&path, 200).unwrap();
        assert_eq!(again.since(0), vec![(1, "b".to_string())]);
        std::fs::write(&path, "not json\n").unwrap();
        assert!(LedgerLog::open(&path, 200).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
