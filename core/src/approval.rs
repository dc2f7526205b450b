//! Break-glass approvals: a compact JWS signed by an approver key from a configured JWKS,
//! naming the agent (`sub`), the task (`txn`), the reason and the ticket, short-lived and
//! single-use. The caller hands it in its context as `approval` (a string, so the claimed
//! context holds it as the caller's word); Writ verifies it and only then sets its own
//! `context.approval` record, which is the only thing the shipped break-glass policy reads.
//! An approval that does not verify, names another agent or task, or was used before, is a
//! deny (`writ:approval-refused`) before any policy is read.

use crate::crypto::Crypto;
use crate::error::{Error, Result};
use crate::jwk::{JwkSet, JwtKey};
use crate::jwt;
use crate::limits::{MAX_BUNDLE_BYTES, MAX_BUNDLE_ENTRIES};
use crate::spiffe_id::clip;
use serde_json::{Map, Value};

/// The reason a decision names when an approval is refused.
pub const APPROVAL_REFUSED: &str = "writ:approval-refused";
/// The `aud` every approval must carry: a token signed by the same key for anything else is
/// not an approval.
pub const APPROVAL_AUDIENCE: &str = "writ-approval";
/// The longest an approval may be valid (`exp - iat`), seconds.
pub const MAX_APPROVAL_SECS: u64 = 3600;

/// The approver keys (a JWKS) approvals are verified with.
#[derive(Debug, Clone, Default)]
pub struct Approvers {
    keys: Vec<JwtKey>,
}

/// A verified approval: what Writ puts in `context.approval`, and what a credential issued
/// under it carries (`apr`), so presenting that credential needs no second approval.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The approver (`iss`).
    pub approver: String,
    pub ticket: String,
    pub reason: String,
    /// Its id: used once, then refused.
    pub jti: String,
    pub expires_at: u64,
}

impl Approvers {
    /// Parse a JWKS (`{"keys":[…]}`) of approver keys: RSA or EC keys with a `kid`.
    pub fn parse(jwks: &str) -> Result<Approvers> {
        if jwks.len() > MAX_BUNDLE_BYTES {
            return Err(Error::Limit(format!(
                "approver JWKS is {} bytes, over the cap of {MAX_BUNDLE_BYTES}",
                jwks.len()
            )));
        }
        let set: JwkSet = serde_json::from_str(jwks).map_err(|e| Error::Malformed(format!("approver JWKS: {e}")))?;
        if set.keys.len() > MAX_BUNDLE_ENTRIES {
            return Err(Error::Limit(format!("approver JWKS holds more than {MAX_BUNDLE_ENTRIES} keys")));
        }
        let keys = set.keys.iter().map(JwtKey::from_jwk).collect::<Result<Vec<_>>>()?;
        Ok(Approvers { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verify `token` as an approval for `agent` in task `task_id` at `now` (with `leeway`
    /// seconds of clock skew). Whether it was used before is the ledger's to say.
    pub fn verify(
        &self,
        token: &str,
        agent: &str,
        task_id: &str,
        now: u64,
        leeway: u64,
        crypto: &dyn Crypto,
    ) -> Result<Approval> {
        let bad = |m: String| Error::Untrusted(format!("approval: {m}"));
        if self.keys.is_empty() {
            return Err(bad("no approver keys are configured".into()));
        }
        let tok = jwt::split(token).map_err(|e| bad(e.message()))?;
        let key = self
            .keys
            .iter()
            .find(|k| k.kid == tok.kid)
            .ok_or_else(|| bad(format!("`kid` `{}` is not an approver key", clip(&tok.kid))))?;
        if !jwt::key_admits(key, tok.alg) {
            return Err(bad(format!(
                "`alg` `{}` does not fit key `{}`",
                tok.alg.jws_name().unwrap_or("?"),
                clip(&key.kid)
            )));
        }
        if !crypto.verify(tok.alg, &key.public_key, tok.signing_input, &tok.signature) {
            return Err(bad("the signature does not verify".into()));
        }
        let c = &tok.claims;
        if text(c, "aud")? != APPROVAL_AUDIENCE {
            return Err(bad(format!("`aud` is not `{APPROVAL_AUDIENCE}`")));
        }
        let (iat, exp) = (date(c, "iat")?, date(c, "exp")?);
        if exp <= iat || exp - iat > MAX_APPROVAL_SECS {
            return Err(bad(format!("valid for {} s; at most {MAX_APPROVAL_SECS} s", exp.saturating_sub(iat))));
        }
        if now >= exp.saturating_add(leeway) {
            return Err(Error::Expired(format!("approval expired at {exp}, now is {now}")));
        }
        if now.saturating_add(leeway) < iat {
            return Err(Error::NotYetValid(format!("approval is issued at {iat}, now is {now}")));
        }
        let sub = text(c, "sub")?;
        if sub != agent {
            return Err(bad(format!("it approves `{}`, not `{}`", clip(sub), clip(agent))));
        }
        let txn = text(c, "txn")?;
        if txn != task_id {
            return Err(bad(format!("it approves task `{}`, not `{}`", clip(txn), clip(task_id))));
        }
        let approval = Approval {
            approver: text(c, "iss")?.to_string(),
            ticket: text(c, "ticket")?.to_string(),
            reason: text(c, "reason")?.to_string(),
            jti: text(c, "jti")?.to_string(),
            expires_at: exp,
        };
        Ok(approval)
    }
}

/// A non-empty string claim.
fn text<'c>(claims: &'c Map<String, Value>, name: &str) -> Result<&'c str> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(Error::Untrusted(format!("approval: `{name}` is empty"))),
        Some(_) => Err(Error::Malformed(format!("approval: `{name}` is not a string"))),
        None => Err(Error::Untrusted(format!("approval: no `{name}`"))),
    }
}

/// A whole-seconds date claim.
fn date(claims: &Map<String, Value>, name: &str) -> Result<u64> {
    match claims.get(name) {
        Some(Value::Number(n)) => {
            n.as_u64().ok_or_else(|| Error::Malformed(format!("approval: `{name}` is not a whole number of seconds")))
        }
        Some(_) => Err(Error::Malformed(format!("approval: `{name}` is not a number"))),
        None => Err(Error::Untrusted(format!("approval: no `{name}`"))),
    }
}

/// The approval a caller's context carries (its `approval` key, a string), if any. A context
/// that is not a JSON object carries none (the policy path reports it).
pub fn claimed(context: &str) -> Option<String> {
    if !context.contains("\"approval\"") {
        return None;
    }
    match serde_json::from_str::<Value>(context).ok()? {
        Value::Object(mut o) => match o.remove("approval")? {
            Value::String(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}
