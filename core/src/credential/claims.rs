//! What a credential carries: its claims (`iss aud sub iat exp jti txn scope cnf act`), and
//! what issuing and presenting hand back.

use crate::crypto::Crypto;
use crate::exact::same_text;
use crate::ledger::{GrantRecord, Ledger};
use crate::{Decision, Grant, Intent};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One intent a credential allows: an action on a resource (context is checked per use) —
/// and, when issued for one call's input (an MCP tool call's arguments), only that input:
/// `input#S256` is the SHA-256 (base64url) of its canonical JSON ([`input_digest`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeItem {
    pub action: String,
    pub resource: String,
    #[serde(rename = "input#S256", default, skip_serializing_if = "Option::is_none")]
    pub input_s256: Option<String>,
}

impl ScopeItem {
    /// Whether this item allows `what`: its action and resource, and its input when bound to one.
    pub fn allows(&self, what: &Intent) -> bool {
        same_text(&self.action, &what.action)
            && same_text(&self.resource, &what.resource)
            && match &self.input_s256 {
                None => true,
                Some(d) => input_digest(&what.input).is_ok_and(|got| got.as_deref() == Some(d.as_str())),
            }
    }
}

pub use writ_types::input::input_digest;

/// RFC 8693 actor: `sub` acts, `act` are the actors before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

/// RFC 7800 confirmation: what the holder proved, and so what its presenter must prove again —
/// exactly one member. `x5t#S256`: the SHA-256 thumbprint of its X.509-SVID (RFC 8705), a
/// key it holds. `bearer#S256`: the SHA-256 of the bearer identity token it attested with (a
/// JWT-SVID or an OIDC token) — possession of that token only, no key: whoever holds the token
/// holds the credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    #[serde(rename = "x5t#S256", default, skip_serializing_if = "Option::is_none")]
    pub x5t_s256: Option<String>,
    #[serde(rename = "bearer#S256", default, skip_serializing_if = "Option::is_none")]
    pub bearer_s256: Option<String>,
}

impl Confirmation {
    /// The confirmation of `holder`: its certificate's thumbprint, or its bearer token's digest.
    pub fn of(holder: &crate::Identity) -> Confirmation {
        match holder.proof {
            crate::Proof::X509Svid => Confirmation { x5t_s256: Some(holder.thumbprint.clone()), bearer_s256: None },
            _ => Confirmation { x5t_s256: None, bearer_s256: Some(holder.thumbprint.clone()) },
        }
    }

    /// Exactly one member, and `presenter` proved what it binds (the same kind of proof).
    pub fn binds(&self, presenter: &crate::Identity) -> bool {
        match (&self.x5t_s256, &self.bearer_s256) {
            (Some(x5t), None) => presenter.proof == crate::Proof::X509Svid && same_text(x5t, &presenter.thumbprint),
            (None, Some(bearer)) => {
                matches!(presenter.proof, crate::Proof::JwtSvid | crate::Proof::Oidc)
                    && same_text(bearer, &presenter.thumbprint)
            }
            _ => false,
        }
    }
}

/// A credential's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The SPIFFE ID the task was granted to.
    pub sub: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
    /// The task.
    pub txn: String,
    pub scope: Vec<ScopeItem>,
    pub cnf: Confirmation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// The break-glass approval the credential was issued under (verified then, and used up
    /// by the issue): presenting the credential decides with it as `context.approval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apr: Option<crate::approval::Approval>,
}

impl Claims {
    /// The SPIFFE IDs from the current holder back to the original subject.
    pub fn chain(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut a = self.act.as_ref();
        while let Some(actor) = a {
            out.push(actor.sub.clone());
            a = actor.act.as_deref();
        }
        out.push(self.sub.clone());
        out
    }

    /// Who holds the credential: the current actor, or the subject when not delegated.
    pub fn holder(&self) -> &str {
        self.act.as_ref().map_or(&self.sub, |a| &a.sub)
    }

    /// Delegation hops from the original subject.
    pub fn depth(&self) -> u32 {
        std::iter::successors(self.act.as_ref(), |a| a.act.as_deref()).fold(0, |n, _| n.saturating_add(1))
    }

    pub(super) fn record(&self) -> GrantRecord {
        let mut agents = self.chain();
        agents.reverse();
        GrantRecord {
            jti: self.jti.clone(),
            task_id: self.txn.clone(),
            agents,
            issued_at: self.iat,
            expires_at: self.exp,
        }
    }

    pub(super) fn allows(&self, what: &Intent) -> bool {
        self.scope.iter().any(|s| s.allows(what))
    }
}

/// A credential whose signature, header and times were checked: its claims, and the grant
/// record revocation is checked against on every use (built once, kept with the claims).
#[derive(Debug, Clone)]
pub struct Verified {
    pub claims: Arc<Claims>,
    pub record: Arc<GrantRecord>,
}

impl Verified {
    pub fn new(claims: Claims) -> Verified {
        let record = Arc::new(claims.record());
        Verified { claims: Arc::new(claims), record }
    }
}

/// An issued credential, with the claims it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub grant: Grant,
    pub claims: Claims,
}

/// What a presentation decided, with the credential it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    pub decision: Decision,
    pub claims: Arc<Claims>,
}

/// What the caller supplies besides the engine's state: time, crypto, the ledger and fresh
/// entropy for `jti` (core has no randomness of its own).
pub struct Env<'a> {
    pub now: u64,
    pub crypto: &'a dyn Crypto,
    pub ledger: &'a dyn Ledger,
    pub entropy: [u8; 16],
}
