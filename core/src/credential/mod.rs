//! Task credentials: issued per task, scoped to the task's intents, bound to the workload that
//! proved its identity (`cnf`), short-lived, delegable only narrower, revocable.
//!
//! The token is a compact JWS shaped like an IETF Transaction Token: header
//! `{"alg":"EdDSA"|"ES256","kid","typ":"txntoken+jwt"}`, claims
//! `iss aud sub iat exp jti txn scope cnf act` (`act` only on delegated tokens, RFC 8693
//! nesting with the current actor outermost). Keys stay with the [`Crypto`] provider.

mod claims;
mod issue;
pub(crate) mod jws;
mod task;
mod verify;

pub use claims::{Actor, Claims, Confirmation, Env, Issued, Presented, ScopeItem, Verified, input_digest};
pub use task::{MAX_MEMBERS, NOT_A_MEMBER, TASK_NOT_OPEN};

/// The `typ` of every Writ credential.
pub const TOKEN_TYPE: &str = "txntoken+jwt";
/// Intents in one credential's scope.
pub const MAX_SCOPE: usize = 64;
/// Bytes of a task id, audience or scope entry.
pub const MAX_FIELD_BYTES: usize = 1024;
/// Nesting of `act` a token may carry at all (the configured delegation limit is lower).
pub const MAX_ACT_NESTING: usize = 16;
/// Verified credentials remembered.
pub const MAX_CACHED_TOKENS: usize = 8192;
/// The reason a decision names when the intent is outside the credential's scope.
pub const OUTSIDE_SCOPE: &str = "writ:outside-scope";
/// The reason a decision names when the intent belongs to another task.
pub const OTHER_TASK: &str = "writ:other-task";
