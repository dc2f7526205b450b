//! The host's public types: plain Rust mirrors of the WIT types, with serde for the CLI.

use crate::bindings::writ::agent::types as wit;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proof {
    X509Svid,
    JwtSvid,
}

/// A proven workload identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    pub spiffe_id: String,
    pub trust_domain: String,
    pub expires_at: u64,
    pub thumbprint: String,
    pub proof: Proof,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub action: String,
    pub resource: String,
    pub task_id: String,
    pub context: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allow: bool,
    pub reasons: Vec<String>,
    pub errors: Vec<String>,
    pub max_ttl_secs: u32,
}

/// Everything a call can fail with: the component's typed errors, plus the runtime's own.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("untrusted: {0}")]
    Untrusted(String),
    #[error("expired: {0}")]
    Expired(String),
    #[error("not yet valid: {0}")]
    NotYetValid(String),
    #[error("policy: {0}")]
    Policy(String),
    #[error("denied: {}", .0.reasons.join(", "))]
    Denied(Decision),
    #[error("revoked: {0}")]
    Revoked(String),
    #[error("limit: {0}")]
    Limit(String),
    #[error("unimplemented: {0}")]
    Unimplemented(String),
    /// The guest trapped. Its instance was discarded; the next call gets a fresh one.
    #[error("trap: {0}")]
    Trap(String),
    /// The runtime could not compile or instantiate the component.
    #[error("runtime: {0}")]
    Runtime(String),
}

impl Error {
    /// The stable kind name (`malformed`, `untrusted`, `not-yet-valid`, `trap`…).
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
        }
    }

    /// The message without the kind.
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
            | Error::Runtime(m) => m.clone(),
            Error::Denied(d) => format!("denied by {}", d.reasons.join(", ")),
        }
    }
}

impl From<wit::Decision> for Decision {
    fn from(d: wit::Decision) -> Self {
        Decision { allow: d.allow, reasons: d.reasons, errors: d.errors, max_ttl_secs: d.max_ttl_secs }
    }
}

impl From<wit::Error> for Error {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::Malformed(m) => Error::Malformed(m),
            wit::Error::Untrusted(m) => Error::Untrusted(m),
            wit::Error::Expired(m) => Error::Expired(m),
            wit::Error::NotYetValid(m) => Error::NotYetValid(m),
            wit::Error::Policy(m) => Error::Policy(m),
            wit::Error::Denied(d) => Error::Denied(d.into()),
            wit::Error::Revoked(m) => Error::Revoked(m),
            wit::Error::Limit(m) => Error::Limit(m),
            wit::Error::Unimplemented(m) => Error::Unimplemented(m),
        }
    }
}

impl From<wit::Identity> for Identity {
    fn from(i: wit::Identity) -> Self {
        Identity {
            spiffe_id: i.spiffe_id,
            trust_domain: i.trust_domain,
            expires_at: i.expires_at,
            thumbprint: i.thumbprint,
            proof: match i.proof {
                wit::Proof::X509Svid => Proof::X509Svid,
                wit::Proof::JwtSvid => Proof::JwtSvid,
            },
        }
    }
}

impl From<&Identity> for wit::Identity {
    fn from(i: &Identity) -> Self {
        wit::Identity {
            spiffe_id: i.spiffe_id.clone(),
            trust_domain: i.trust_domain.clone(),
            expires_at: i.expires_at,
            thumbprint: i.thumbprint.clone(),
            proof: match i.proof {
                Proof::X509Svid => wit::Proof::X509Svid,
                Proof::JwtSvid => wit::Proof::JwtSvid,
            },
        }
    }
}

impl From<&Intent> for wit::Intent {
    fn from(i: &Intent) -> Self {
        wit::Intent {
            action: i.action.clone(),
            resource: i.resource.clone(),
            task_id: i.task_id.clone(),
            context: i.context.clone(),
        }
    }
}

/// An entity as an AuthZEN request names it: a Cedar entity type, an id, and attributes (a
/// JSON object, or empty) overlaying the loaded entity's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRef {
    #[serde(rename = "type")]
    pub type_name: String,
    pub id: String,
    #[serde(default)]
    pub properties: String,
}

/// A general (AuthZEN-shaped) evaluation; see [`crate::Writ::evaluate`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    pub subject: EntityRef,
    pub action: String,
    /// A JSON object, or empty: when present, the Cedar context's `action` key.
    #[serde(default)]
    pub action_properties: String,
    pub resource: EntityRef,
    /// A JSON object, or empty.
    #[serde(default)]
    pub context: String,
}

impl From<&EntityRef> for wit::EntityRef {
    fn from(r: &EntityRef) -> Self {
        wit::EntityRef { type_: r.type_name.clone(), id: r.id.clone(), properties: r.properties.clone() }
    }
}

impl From<&Evaluation> for wit::Evaluation {
    fn from(e: &Evaluation) -> Self {
        wit::Evaluation {
            subject: (&e.subject).into(),
            action: e.action.clone(),
            action_properties: e.action_properties.clone(),
            resource: (&e.resource).into(),
            context: e.context.clone(),
        }
    }
}

/// An issued task credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Compact JWS (`typ` `txntoken+jwt`).
    pub token: String,
    pub jti: String,
    pub expires_at: u64,
}

impl From<crate::bindings::exports::writ::agent::issue::Grant> for Grant {
    fn from(g: crate::bindings::exports::writ::agent::issue::Grant) -> Self {
        Grant { token: g.token, jti: g.jti, expires_at: g.expires_at }
    }
}
