//! Verifying and presenting credentials: signature, header and claims checked (and kept for
//! repeats), bound to the presenting workload (`cnf`), unexpired and unrevoked, the intent
//! inside the scope and task, and policy asked again now.

use super::{Claims, MAX_ACT_NESTING, MAX_SCOPE, OTHER_TASK, OUTSIDE_SCOPE, Presented, TOKEN_TYPE, Verified};
use crate::crypto::Crypto;
use crate::error::{Error, Result};
use crate::exact::same_text;
use crate::identity::Identity;
use crate::ledger::{Ledger, MAX_TTL_SECS};
use crate::limits::MAX_TOKEN_BYTES;
use crate::spiffe_id::clip;
use crate::writ::Writ;
use crate::{Decision, Intent};

impl Writ {
    /// Check a credential's signature, header and times, remembering verified ones until
    /// they expire. Revocation, audience and holder are checked by the callers, every time.
    pub fn verify_credential(&mut self, token: &str, now: u64, crypto: &dyn Crypto) -> Result<Verified> {
        let leeway = self.settings().leeway_secs;
        if let Some(v) = self.cached_credential(token) {
            if now >= v.claims.exp.saturating_add(leeway) {
                return Err(Error::Expired(format!("credential expired at {}, now is {now}", v.claims.exp)));
            }
            return Ok(v);
        }
        let verified = Verified::new(self.verify_uncached(token, now, crypto)?);
        self.remember_credential(token, verified.clone(), now);
        Ok(verified)
    }

    fn verify_uncached(&self, token: &str, now: u64, crypto: &dyn Crypto) -> Result<Claims> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::Limit(format!(
                "credential is {} bytes, over the cap of {MAX_TOKEN_BYTES}",
                token.len()
            )));
        }
        let payload = super::jws::verify(token, TOKEN_TYPE, "credential", MAX_TOKEN_BYTES, crypto)?;
        let claims: Claims =
            serde_json::from_slice(&payload).map_err(|e| Error::Malformed(format!("credential claims: {e}")))?;
        self.check_claims(&claims, now)?;
        Ok(claims)
    }

    fn check_claims(&self, c: &Claims, now: u64) -> Result<()> {
        let leeway = self.settings().leeway_secs;
        if c.iss != self.settings().issuer {
            return Err(Error::Untrusted(format!(
                "credential issuer `{}` is not `{}`",
                clip(&c.iss),
                self.settings().issuer
            )));
        }
        if now >= c.exp.saturating_add(leeway) {
            return Err(Error::Expired(format!("credential expired at {}, now is {now}", c.exp)));
        }
        if c.iat > now.saturating_add(leeway) {
            return Err(Error::NotYetValid(format!("credential is issued at {}, now is {now}", c.iat)));
        }
        if c.exp <= c.iat || c.exp - c.iat > u64::from(MAX_TTL_SECS) {
            return Err(Error::Untrusted(format!("credential lifetime {}..{} is impossible", c.iat, c.exp)));
        }
        if c.cnf.x5t_s256.is_some() == c.cnf.bearer_s256.is_some() {
            return Err(Error::Untrusted("credential `cnf` must hold exactly one of `x5t#S256`, `bearer#S256`".into()));
        }
        if c.scope.is_empty() || c.scope.len() > MAX_SCOPE {
            return Err(Error::Untrusted(format!("credential scope has {} intents", c.scope.len())));
        }
        if c.chain().len() > MAX_ACT_NESTING {
            return Err(Error::Limit(format!("credential `act` nests over {MAX_ACT_NESTING} deep")));
        }
        Ok(())
    }

    /// The credential's holder is presenting it: the presenter's key is the one `cnf` binds,
    /// and its SPIFFE ID is the current actor.
    pub(super) fn check_holder(claims: &Claims, presenter: &Identity) -> Result<()> {
        if !claims.cnf.binds(presenter) || !same_text(&presenter.spiffe_id, claims.holder()) {
            return Err(Error::Untrusted(format!(
                "credential is bound to `{}`; `{}` presented it with another key or identity",
                claims.holder(),
                presenter.spiffe_id
            )));
        }
        Ok(())
    }

    pub(super) fn usable(v: &Verified, audience: Option<&str>, now: u64, ledger: &dyn Ledger) -> Result<()> {
        let claims = &v.claims;
        if let Some(aud) = audience
            && !same_text(&claims.aud, aud)
        {
            return Err(Error::Untrusted(format!(
                "credential is for audience `{}`, not `{}`",
                clip(&claims.aud),
                clip(aud)
            )));
        }
        if let Some(why) = ledger.revoked(&v.record, now) {
            return Err(Error::Revoked(format!("credential `{}` is revoked: {why}", claims.jti)));
        }
        Ok(())
    }

    /// A credential presented for one intent: valid, for `audience`, not revoked, presented
    /// by its holder, the intent inside its scope and task, and policy allowing it now.
    /// Token problems are errors; an intent it does not cover is a deny decision.
    #[allow(clippy::too_many_arguments)]
    pub fn present(
        &mut self,
        token: &str,
        presenter: &Identity,
        what: &Intent,
        audience: &str,
        now: u64,
        crypto: &dyn Crypto,
        ledger: &dyn Ledger,
    ) -> Result<Presented> {
        let verified = self.verify_credential(token, now, crypto)?;
        Self::usable(&verified, Some(audience), now, ledger)?;
        let claims = verified.claims;
        Self::check_holder(&claims, presenter)?;
        Self::live_identity(presenter, now)?;
        let deny = |reason: &str, error: String| Decision {
            allow: false,
            reasons: vec![reason.to_string()],
            errors: vec![error],
            max_ttl_secs: 0,
        };
        if !what.task_id.is_empty() && what.task_id != claims.txn {
            let error = format!(
                "the intent is for task `{}`, the credential for task `{}`",
                clip(&what.task_id),
                clip(&claims.txn)
            );
            return Ok(Presented { decision: deny(OTHER_TASK, error), claims });
        }
        if !claims.allows(what) {
            let error = format!("`{} {}` is outside the credential's scope", clip(&what.action), clip(&what.resource));
            return Ok(Presented { decision: deny(OUTSIDE_SCOPE, error), claims });
        }
        // The intent's task is the credential's (checked above when it names one).
        let bound;
        let what = if what.task_id.is_empty() {
            bound = Intent { task_id: claims.txn.clone(), ..what.clone() };
            &bound
        } else {
            what
        };
        let (mut decision, _) =
            self.decide_spending(presenter, what, now, claims.depth(), ledger, crypto, claims.apr.as_ref(), false);
        if decision.allow {
            decision.max_ttl_secs =
                decision.max_ttl_secs.min(u32::try_from(claims.exp.saturating_sub(now)).unwrap_or(u32::MAX));
        }
        Ok(Presented { decision, claims })
    }
}
