//! Where a `Writ`'s state lives: what must outlive a process or be shared between processes —
//! revocations (ended tasks, cut-off agents), in order, and the grants issued, indexed by the
//! keys the component gives (its task, each agent of its chain). The component writes and
//! reads these entries through the `ledger` import and keeps every rule; a store only keeps
//! them, in order, and forgets an entry once its `until` has passed — by the real clock, never
//! by a clock a caller set (`writ present --at <future>` must not erase real revocations).
//!
//! Three stores: [`Memory`] (one process; the default of an embedded `Writ`), [`Sqlite`] (a
//! state directory several processes use at once: CLI invocations and running servers) and
//! [`Nats`] (NATS JetStream, shared by replicas on any number of machines).
//! Each also keeps the issuers' published public keys, so every process on one state verifies
//! the credentials every other one issued.
//! A failed write or read is an error the operation reports (`unavailable`), never a loss that
//! passes silently.

mod memory;
mod nats;
mod sqlite;

pub use memory::Memory;
pub use nats::{DEFAULT_MAX_LAG, Nats, NatsLocation};
pub use sqlite::Sqlite;

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest a credential can live (the component's cap, `writ_core::ledger::MAX_TTL_SECS`):
/// how long a key that signed one must stay published.
pub const MAX_CREDENTIAL_TTL_SECS: u64 = 86_400;

/// A state store failed: the operation that needed it cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StateError(pub String);

impl From<StateError> for writ_types::Error {
    fn from(e: StateError) -> Self {
        writ_types::Error::Unavailable(e.0)
    }
}

/// The state behind the `ledger` import. Entries are opaque JSON texts the component wrote.
pub trait StateStore: Send + Sync {
    /// Append a revocation, relevant until `until` (unix seconds). Returns once it is durable.
    fn append_revocation(&self, data: &str, until: u64) -> Result<(), StateError>;
    /// Revocations with a sequence number above `seq`, in order.
    fn revocations_since(&self, seq: u64) -> Result<Vec<(u64, String)>, StateError>;
    /// The same from what this process already knows, however old (a store that is a view of
    /// a remote one answers from the view past its staleness bound): for plain decisions,
    /// which keep answering while credentials are refused.
    fn revocations_known_since(&self, seq: u64) -> Result<Vec<(u64, String)>, StateError> {
        self.revocations_since(seq)
    }
    /// Register an issued grant under `keys`, relevant until `until`.
    fn register_grant(&self, data: &str, until: u64, keys: &[String]) -> Result<(), StateError>;
    /// The grants registered under `key` still relevant at `now`.
    fn grants(&self, key: &str, now: u64) -> Result<Vec<String>, StateError>;
    /// The newest revocation's sequence number (0 when none): cheap, and an answer means the
    /// store can be read.
    fn last_seq(&self) -> Result<u64, StateError>;
    /// What the store holds, for `writ state check`.
    fn summary(&self) -> Result<Summary, StateError>;
    /// Where the state is, for messages.
    fn location(&self) -> String;
    /// Publish an issuer's public key (a JWK with its `kid`), verifying credentials until
    /// `until` (unix seconds, by the publisher's clock — the real one outside tests).
    /// Publishing again replaces it.
    fn publish_key(&self, kid: &str, jwk: &serde_json::Value, until: u64) -> Result<(), StateError>;
    /// The published public keys that still verify at `now`: `(kid, JWK text)`.
    fn published_keys(&self, now: u64) -> Result<Vec<(String, String)>, StateError>;
    /// How old this process's view of the shared state is, where it is a view of a remote
    /// store (`None`: the store is read directly, or never caught up).
    fn view_age(&self) -> Option<Duration> {
        None
    }
}

/// What a store holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub location: String,
    /// Revocations held (including ones past their `until` not yet swept).
    pub revocations: u64,
    /// The newest revocation sequence number handed out (its revocation may have expired).
    pub last_seq: u64,
    /// Grants held.
    pub grants: u64,
}

/// The real time, unix seconds: the only clock that may expire stored state.
pub(crate) fn real_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The default state directory: `$WRIT_STATE_DIR`, else `$XDG_STATE_HOME/writ`, else
/// `$HOME/.local/state/writ`.
pub fn default_state_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("WRIT_STATE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
        return Some(PathBuf::from(d).join("writ"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state").join("writ"))
}

/// Where state is kept, as `--state` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// This process's memory only (`memory`).
    Memory,
    /// A state directory (an embedded database in it).
    Dir(PathBuf),
    /// NATS JetStream; credentials are refused while this process's view of revocations is
    /// older than `max_lag`.
    Nats { location: NatsLocation, max_lag: Duration },
}

impl StateLocation {
    /// `memory`, `nats://HOST:PORT[/PREFIX]`, or a directory path.
    pub fn parse(spec: &str) -> Result<StateLocation, String> {
        match spec {
            "" => Err("an empty state location: give a directory, `nats://HOST:PORT[/PREFIX]` or `memory`".into()),
            "memory" | "memory:" => Ok(StateLocation::Memory),
            s if s.starts_with("nats://") => {
                Ok(StateLocation::Nats { location: NatsLocation::parse(s)?, max_lag: DEFAULT_MAX_LAG })
            }
            s if s.contains("://") => {
                Err(format!("state location `{s}`: give a directory, `nats://HOST:PORT[/PREFIX]` or `memory`"))
            }
            s => Ok(StateLocation::Dir(PathBuf::from(s))),
        }
    }

    /// For NATS: refuse credentials once the view of revocations is older than `max_lag`.
    pub fn with_max_lag(self, max_lag: Duration) -> StateLocation {
        match self {
            StateLocation::Nats { location, .. } => StateLocation::Nats { location, max_lag },
            other => other,
        }
    }

    /// The default: the user's state directory, or memory when there is no home.
    pub fn default_location() -> StateLocation {
        default_state_dir().map_or(StateLocation::Memory, StateLocation::Dir)
    }

    /// Open the store.
    pub fn open(&self) -> Result<Box<dyn StateStore>, StateError> {
        match self {
            StateLocation::Memory => Ok(Box::new(Memory::new())),
            StateLocation::Dir(dir) => Ok(Box::new(Sqlite::open_dir(dir)?)),
            StateLocation::Nats { location, max_lag } => Ok(Box::new(Nats::connect(location, *max_lag)?)),
        }
    }
}

impl std::fmt::Display for StateLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateLocation::Memory => f.write_str("memory"),
            StateLocation::Dir(d) => write!(f, "{}", d.display()),
            StateLocation::Nats { location, .. } => write!(f, "{location}"),
        }
    }
}

/// The database file of a state directory.
pub fn database_path(dir: &Path) -> PathBuf {
    dir.join("writ.db")
}
