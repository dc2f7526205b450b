//! The embedded state store: SQLite (through `rusqlite`) in a state directory.
//!
//! Why SQLite and not `redb`: a state directory is used by several processes at once — `writ
//! revoke` invocations and running `writ serve` replicas — and SQLite in WAL mode lets any
//! number of processes read and write one database (writers take turns, waiting up to the busy
//! timeout), while redb lets one process open a database at a time. Every write is one
//! transaction, committed before the operation returns, so nothing acknowledged is lost when
//! the process is killed. A revocation is also synced to disk before it is acknowledged
//! (`synchronous = FULL`: it survives the machine losing power); a grant is not
//! (`synchronous = NORMAL`: in WAL mode, a kill loses nothing, a power loss may lose the last
//! grants — which only makes a later revocation's count of live credentials lower; the
//! revocation itself covers the task or agent, found or not). Measured: `/token` with FULL on
//! every grant ran at ~2 000 requests/s, with NORMAL — see BENCHMARKS.md.
//! Revocation sequence numbers are SQLite's AUTOINCREMENT row ids: writers are serialized, so
//! they appear in commit order and a reader never skips one.

use super::{StateError, StateStore, Summary, database_path, real_now};
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The schema this build writes; a database with a higher one was made by a newer Writ.
/// Version 2 added `issuer_keys` (the schema is all `IF NOT EXISTS`: opening a version-1
/// database adds it).
const SCHEMA_VERSION: i64 = 2;

/// How long a write waits for another process's write to finish before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes between sweeps of expired entries.
const SWEEP_EVERY: u64 = 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS revocations (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    data  TEXT    NOT NULL,
    until INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS grants (
    id    INTEGER PRIMARY KEY AUTOINCREMENT,
    data  TEXT    NOT NULL,
    until INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS grant_keys (
    key      TEXT    NOT NULL,
    grant_id INTEGER NOT NULL REFERENCES grants(id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS grant_keys_by_key ON grant_keys(key);
CREATE INDEX IF NOT EXISTS grants_by_until ON grants(until);
CREATE INDEX IF NOT EXISTS revocations_by_until ON revocations(until);
CREATE TABLE IF NOT EXISTS issuer_keys (
    kid   TEXT    PRIMARY KEY,
    jwk   TEXT    NOT NULL,
    until INTEGER NOT NULL
);
";

/// State in a SQLite database in a directory.
pub struct Sqlite {
    db: Mutex<Db>,
    path: PathBuf,
    writes: std::sync::atomic::AtomicU64,
}

/// The connection, and what its last read of the revocation log found: kept together, under
/// one lock, because the read is only as good as the connection's state it was made in.
struct Db {
    connection: Connection,
    read_log: Option<LogRead>,
}

impl std::ops::Deref for Db {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.connection
    }
}

impl std::ops::DerefMut for Db {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.connection
    }
}

/// A read of the revocation log: the connection's `PRAGMA data_version` before it, and the
/// newest sequence number it saw. `data_version` changes when any other connection (another
/// process, another store in this one) commits; this connection's own writes forget the read.
/// So while it is unchanged, a reader at or past `newest` has nothing new, and is told so
/// without reading the log: every decision asks, almost always to hear "nothing".
#[derive(Clone, Copy)]
struct LogRead {
    data_version: i64,
    newest: u64,
}

/// The error of a failed SQLite call, `what` failing at `path` (made only when one fails).
fn failed<'a>(path: &'a Path, what: &'a str) -> impl Fn(rusqlite::Error) -> StateError + 'a {
    move |e| StateError(format!("state `{}`: {what}: {e}", path.display()))
}

impl Sqlite {
    /// Open (creating when missing) the database of state directory `dir`.
    pub fn open_dir(dir: &Path) -> Result<Sqlite, StateError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StateError(format!("state directory `{}`: cannot create it: {e}", dir.display())))?;
        Sqlite::open(&database_path(dir))
    }

    /// Open (creating when missing) the database at `path`.
    pub fn open(path: &Path) -> Result<Sqlite, StateError> {
        let c = Connection::open(path).map_err(failed(path, "cannot open"))?;
        c.busy_timeout(BUSY_TIMEOUT).map_err(failed(path, "busy timeout"))?;
        // WAL: readers never block the writer, and several processes share the database.
        let mode: String = c
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(failed(path, "not a Writ state database"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StateError(format!(
                "state `{}`: the database cannot use write-ahead logging (journal mode `{mode}`)",
                path.display()
            )));
        }
        c.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;").map_err(failed(path, "settings"))?;
        let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(failed(path, "version"))?;
        if version > SCHEMA_VERSION {
            return Err(StateError(format!(
                "state `{}`: schema version {version} was written by a newer Writ (this one reads {SCHEMA_VERSION})",
                path.display()
            )));
        }
        if version < SCHEMA_VERSION {
            // Several processes may create it at once: one transaction, taken immediately.
            let mut c = c;
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(failed(path, "create"))?;
            tx.execute_batch(SCHEMA).map_err(failed(path, "create"))?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(failed(path, "create"))?;
            tx.commit().map_err(failed(path, "create"))?;
            return Ok(Sqlite::with(c, path));
        }
        // An existing database: check it has what this build reads.
        let tables: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('revocations', 'grants', 'grant_keys', 'issuer_keys')",
                [],
                |r| r.get(0),
            )
            .map_err(failed(path, "not a Writ state database"))?;
        if tables != 4 {
            return Err(StateError(format!("state `{}`: not a Writ state database (tables missing)", path.display())));
        }
        let store = Sqlite::with(c, path);
        store.sweep();
        Ok(store)
    }

    fn with(c: Connection, path: &Path) -> Sqlite {
        Sqlite { db: Mutex::new(Db { connection: c, read_log: None }), path: path.to_path_buf(), writes: 0.into() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forget entries whose `until` has passed by the real clock. Best effort: a read-only
    /// store still answers, and what was not swept is swept later.
    fn sweep(&self) {
        let now = seconds(real_now());
        let mut c = self.lock();
        c.read_log = None;
        // A transaction not committed rolls back when dropped.
        let _ = c.transaction_with_behavior(TransactionBehavior::Immediate).and_then(|tx| {
            tx.execute("DELETE FROM revocations WHERE until <= ?1", params![now])?;
            tx.execute("DELETE FROM grants WHERE until <= ?1", params![now])?;
            tx.execute("DELETE FROM issuer_keys WHERE until <= ?1", params![now])?;
            tx.commit()
        });
    }

    fn wrote(&self) {
        let n = self.writes.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if n.is_multiple_of(SWEEP_EVERY) {
            self.sweep();
        }
    }
}

fn seconds(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// The newest revocation sequence number handed out: the AUTOINCREMENT counter, which outlives
/// the revocation itself once it expires and is swept.
fn last_seq_of(c: &Connection) -> rusqlite::Result<u64> {
    let seq: Option<i64> =
        c.query_row("SELECT seq FROM sqlite_sequence WHERE name = 'revocations'", [], |r| r.get(0)).optional()?;
    Ok(seq.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
}

impl StateStore for Sqlite {
    fn append_revocation(&self, data: &str, until: u64) -> Result<(), StateError> {
        let write = failed(&self.path, "recording a revocation failed");
        {
            let mut c = self.lock();
            // This connection's own commit does not change its `data_version`.
            c.read_log = None;
            // Synced to disk before it is acknowledged; grants (far more frequent) are not.
            c.execute_batch("PRAGMA synchronous = FULL").map_err(&write)?;
            let inserted =
                c.execute("INSERT INTO revocations (data, until) VALUES (?1, ?2)", params![data, seconds(until)]);
            let restored = c.execute_batch("PRAGMA synchronous = NORMAL");
            inserted.map_err(&write)?;
            restored.map_err(&write)?;
        }
        self.wrote();
        Ok(())
    }

    fn revocations_since(&self, seq: u64) -> Result<Vec<(u64, String)>, StateError> {
        let mut c = self.lock();
        let read = failed(&self.path, "reading revocations failed");
        // Before the log is read: a commit after this point changes it, so a read that finds it
        // unchanged later knows nothing was committed since this read.
        let data_version: i64 =
            c.prepare_cached("PRAGMA data_version").and_then(|mut q| q.query_row([], |r| r.get(0))).map_err(&read)?;
        if let Some(known) = c.read_log
            && known.data_version == data_version
            && seq >= known.newest
        {
            return Ok(Vec::new());
        }
        let entries: Vec<(u64, String)> = {
            let mut q =
                c.prepare_cached("SELECT seq, data FROM revocations WHERE seq > ?1 ORDER BY seq").map_err(&read)?;
            let rows = q
                .query_map(params![seconds(seq)], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
                .map_err(&read)?;
            rows.map(|row| row.map(|(s, d)| (u64::try_from(s).unwrap_or(0), d)).map_err(&read))
                .collect::<Result<_, _>>()?
        };
        // Everything committed before `data_version` was read is in `entries` or at or below `seq`.
        let newest = entries.last().map_or(seq, |(s, _)| *s);
        c.read_log = Some(LogRead { data_version, newest });
        Ok(entries)
    }

    fn register_grant(&self, data: &str, until: u64, keys: &[String]) -> Result<(), StateError> {
        let write = failed(&self.path, "registering a grant failed");
        {
            let mut c = self.lock();
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&write)?;
            tx.execute("INSERT INTO grants (data, until) VALUES (?1, ?2)", params![data, seconds(until)])
                .map_err(&write)?;
            let id = tx.last_insert_rowid();
            for k in keys {
                tx.execute("INSERT INTO grant_keys (key, grant_id) VALUES (?1, ?2)", params![k, id]).map_err(&write)?;
            }
            tx.commit().map_err(&write)?;
        }
        self.wrote();
        Ok(())
    }

    fn grants(&self, key: &str, now: u64) -> Result<Vec<String>, StateError> {
        let c = self.lock();
        let read = failed(&self.path, "reading grants failed");
        let mut q = c
            .prepare_cached(
                "SELECT g.data FROM grant_keys k JOIN grants g ON g.id = k.grant_id WHERE k.key = ?1 AND g.until > ?2 ORDER BY g.id",
            )
            .map_err(&read)?;
        let rows = q.query_map(params![key, seconds(now)], |r| r.get::<_, String>(0)).map_err(&read)?;
        rows.map(|row| row.map_err(&read)).collect()
    }

    fn last_seq(&self) -> Result<u64, StateError> {
        last_seq_of(&self.lock()).map_err(failed(&self.path, "reading the sequence number failed"))
    }

    fn summary(&self) -> Result<Summary, StateError> {
        let c = self.lock();
        let read = failed(&self.path, "reading the summary failed");
        let check: String = c.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(&read)?;
        if check != "ok" {
            return Err(StateError(format!("state `{}`: the database is damaged: {check}", self.path.display())));
        }
        let count = |sql: &str| c.query_row(sql, [], |r| r.get::<_, Option<i64>>(0)).optional();
        let revocations = count("SELECT count(*) FROM revocations").map_err(&read)?.flatten().unwrap_or(0);
        let last_seq = last_seq_of(&c).map_err(&read)?;
        let grants = count("SELECT count(*) FROM grants").map_err(&read)?.flatten().unwrap_or(0);
        Ok(Summary {
            location: self.location(),
            revocations: u64::try_from(revocations).unwrap_or(0),
            last_seq,
            grants: u64::try_from(grants).unwrap_or(0),
        })
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn publish_key(&self, kid: &str, jwk: &serde_json::Value, until: u64) -> Result<(), StateError> {
        self.lock()
            .execute(
                "INSERT INTO issuer_keys (kid, jwk, until) VALUES (?1, ?2, ?3) ON CONFLICT(kid) DO UPDATE SET jwk = ?2, until = ?3",
                params![kid, jwk.to_string(), seconds(until)],
            )
            .map_err(failed(&self.path, "publishing an issuer key failed"))?;
        Ok(())
    }

    fn published_keys(&self, now: u64) -> Result<Vec<(String, String)>, StateError> {
        let c = self.lock();
        let read = failed(&self.path, "reading issuer keys failed");
        let mut q =
            c.prepare_cached("SELECT kid, jwk FROM issuer_keys WHERE until > ?1 ORDER BY kid").map_err(&read)?;
        let rows = q
            .query_map(params![seconds(now)], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(&read)?;
        rows.map(|row| row.map_err(&read)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_ordered_found_by_key_kept_across_opens_and_expired_by_the_real_clock_only() {
        let dir = std::env::temp_dir().join(format!("writ-sqlite-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = real_now();
        let store = Sqlite::open_dir(&dir).unwrap();
        store.append_revocation("a", now + 100).unwrap();
        store.append_revocation("b", now + 500).unwrap();
        // Already past by the real clock: swept at the next open, never by a caller's clock.
        store.append_revocation("old", now - 1).unwrap();
        store.register_grant("g1", now + 300, &["task:t".into(), "agent:x".into()]).unwrap();
        store.register_grant("g2", now + 120, &["task:t".into()]).unwrap();
        assert_eq!(store.revocations_since(0).unwrap(), vec![(1, "a".into()), (2, "b".into()), (3, "old".into())]);
        assert_eq!(store.revocations_since(1).unwrap(), vec![(2, "b".into()), (3, "old".into())]);
        assert_eq!(store.grants("task:t", now).unwrap(), vec!["g1".to_string(), "g2".to_string()]);
        assert_eq!(store.grants("task:t", now + 200).unwrap(), vec!["g1".to_string()], "g2 past its until");
        assert_eq!(store.grants("agent:x", now).unwrap(), vec!["g1".to_string()]);
        assert!(store.grants("agent:y", now).unwrap().is_empty());
        drop(store);

        let again = Sqlite::open_dir(&dir).unwrap();
        assert_eq!(again.revocations_since(0).unwrap(), vec![(1, "a".into()), (2, "b".into())]);
        again.append_revocation("c", now + 100).unwrap();
        assert_eq!(again.revocations_since(2).unwrap(), vec![(4, "c".into())], "sequence numbers never reused");
        let s = again.summary().unwrap();
        assert_eq!((s.revocations, s.last_seq, s.grants), (3, 4, 2));

        // Not a database: a typed error naming the file.
        std::fs::write(dir.join("other.db"), vec![7u8; 4096]).unwrap();
        let Err(e) = Sqlite::open(&dir.join("other.db")) else { panic!("a damaged file opened") };
        assert!(e.0.contains("other.db"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A reader told "nothing new" without reading the log still sees, on its next read, what
    /// another connection (another process) committed, what it appended itself, and what a
    /// sweep removed.
    #[test]
    fn a_reader_at_the_head_hears_of_every_later_revocation_whoever_commits_it() {
        let dir = std::env::temp_dir().join(format!("writ-sqlite-head-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = real_now();
        let (reader, other) = (Sqlite::open_dir(&dir).unwrap(), Sqlite::open_dir(&dir).unwrap());
        other.append_revocation("a", now + 100).unwrap();
        assert_eq!(reader.revocations_since(0).unwrap(), vec![(1, "a".into())]);
        for _ in 0..3 {
            assert!(reader.revocations_since(1).unwrap().is_empty(), "nothing after the head");
        }
        assert!(reader.lock().read_log.is_some_and(|r| r.newest == 1), "the read is remembered");
        // A reader behind the head is not told "nothing".
        assert_eq!(reader.revocations_since(0).unwrap(), vec![(1, "a".into())]);

        other.append_revocation("b", now + 100).unwrap();
        assert_eq!(reader.revocations_since(1).unwrap(), vec![(2, "b".into())], "another connection's commit");
        assert!(reader.revocations_since(2).unwrap().is_empty());

        reader.append_revocation("c", now + 100).unwrap();
        assert_eq!(reader.revocations_since(2).unwrap(), vec![(3, "c".into())], "its own append");
        assert_eq!(other.revocations_since(2).unwrap(), vec![(3, "c".into())]);

        // A commit that adds no revocation (a grant) only costs the next read a query.
        other.register_grant("g", now + 100, &["task:t".into()]).unwrap();
        assert!(reader.revocations_since(3).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
