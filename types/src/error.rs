//! The one error type of every fallible Writ operation: the rules' (the WIT `error` variant)
//! and the runtime's own two (`trap`, `runtime`), which only a host running the component
//! produces.

use crate::decision::Decision;

/// Why an operation failed. Messages are lowercase; user input appears in backticks.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input could not be parsed (bad DER, PEM, JSON, JWT…).
    #[error("malformed: {0}")]
    Malformed(String),
    /// Well-formed, but not trusted: unknown issuer, bad signature, a SPIFFE rule broken.
    #[error("untrusted: {0}")]
    Untrusted(String),
    #[error("expired: {0}")]
    Expired(String),
    #[error("not yet valid: {0}")]
    NotYetValid(String),
    /// A policy could not be loaded or evaluated.
    #[error("policy: {0}")]
    Policy(String),
    #[error("denied: {}", .0.reasons.join(", "))]
    Denied(Decision),
    #[error("revoked: {0}")]
    Revoked(String),
    /// A size, count or resource limit was exceeded.
    #[error("limit: {0}")]
    Limit(String),
    /// Declared in the contract, not built yet.
    #[error("unimplemented: {0}")]
    Unimplemented(String),
    /// The component trapped (host only). Its instance was discarded; the next call gets a
    /// fresh one.
    #[error("trap: {0}")]
    Trap(String),
    /// The runtime could not compile or instantiate the component (host only).
    #[error("runtime: {0}")]
    Runtime(String),
    /// The state store (grants, revocations) could not be written or read (host only): the
    /// operation was not done. Nothing was lost: a revocation is acknowledged only once stored.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl Error {
    /// The stable kind name used on the wire (`malformed`, `untrusted`, `not-yet-valid`…).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Malformed(_) => "malformed",
            Error::Untrusted(_) => "untrusted",
            Error::Expired(_) => "expired",
            Error::NotYetValid(_) => "not-yet-valid",
            Error::Policy(_) => "policy",
            Error::Denied(_) => "denied",
            Error::Revoked(_) => "revoked",
            Error::Limit(_) => "limit",
            Error::Unimplemented(_) => "unimplemented",
            Error::Trap(_) => "trap",
            Error::Runtime(_) => "runtime",
            Error::Unavailable(_) => "unavailable",
        }
    }

    /// The message without the kind prefix.
    pub fn message(&self) -> String {
        match self {
            Error::Malformed(m)
            | Error::Untrusted(m)
            | Error::Expired(m)
            | Error::NotYetValid(m)
            | Error::Policy(m)
            | Error::Revoked(m)
            | Error::Limit(m)
            | Error::Unimplemented(m)
            | Error::Trap(m)
            | Error::Runtime(m)
            | Error::Unavailable(m) => m.clone(),
            Error::Denied(d) => format!("denied by {}", d.reasons.join(", ")),
        }
    }
}

pub type Result<T, E = Error> = core::result::Result<T, E>;
