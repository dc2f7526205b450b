//! Issuing credentials: every scope intent authorized by policy now, the lifetime the least of
//! what was asked, each intent's `@ttl`, the identity's expiry and the cap; delegation hands a
//! narrower part of a credential to another agent, never wider or longer than its parent.

use super::{
    Actor, Claims, Confirmation, Env, Issued, MAX_FIELD_BYTES, MAX_SCOPE, OUTSIDE_SCOPE, ScopeItem, TOKEN_TYPE,
};
use crate::crypto::Crypto;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::ledger::{GrantRecord, MAX_TTL_SECS};
use crate::spiffe_id::clip;
use crate::writ::Writ;
use crate::{Decision, Grant, Intent};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn field(name: &str, v: &str) -> Result<()> {
    if v.is_empty() {
        return Err(Error::Malformed(format!("{name} is empty")));
    }
    if v.len() > MAX_FIELD_BYTES {
        return Err(Error::Limit(format!("{name} is {} bytes, over the cap of {MAX_FIELD_BYTES}", v.len())));
    }
    Ok(())
}

/// Scope items from intents: checked, de-duplicated, in order.
fn scope_items(scope: &[Intent]) -> Result<Vec<ScopeItem>> {
    if scope.is_empty() {
        return Err(Error::Malformed("the scope is empty".into()));
    }
    if scope.len() > MAX_SCOPE {
        return Err(Error::Limit(format!("the scope has {} intents, over the cap of {MAX_SCOPE}", scope.len())));
    }
    let mut out: Vec<ScopeItem> = Vec::with_capacity(scope.len());
    for i in scope {
        field("a scope action", &i.action)?;
        field("a scope resource", &i.resource)?;
        let input_s256 = super::claims::input_digest(&i.input)?;
        let item = ScopeItem { action: i.action.clone(), resource: i.resource.clone(), input_s256 };
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(out)
}

fn describe(i: &ScopeItem) -> String {
    format!("`{} {}`", clip(&i.action), clip(&i.resource))
}

impl Writ {
    /// Authorize every scope intent for `who` (at `depth`, in `task`, against the ledger);
    /// the smallest `max-ttl-secs` among them and the break-glass approval an intent rested
    /// on (used up), or a denial naming each refused intent.
    pub(super) fn authorize_scope(
        &self,
        who: &Identity,
        task: &str,
        scope: &[Intent],
        depth: u32,
        env: &Env<'_>,
    ) -> Result<(u32, Option<crate::approval::Approval>)> {
        let mut cap = u32::MAX;
        let mut approved = None;
        let mut refused = Decision { allow: false, reasons: Vec::new(), errors: Vec::new(), max_ttl_secs: 0 };
        for i in scope {
            let what = Intent { task_id: task.to_string(), ..i.clone() };
            let (d, approval) = self.decide_with_approval(who, &what, env.now, depth, env.ledger, env.crypto);
            if d.allow {
                cap = cap.min(d.max_ttl_secs);
                approved = approved.or(approval);
            } else {
                let why = if d.reasons.is_empty() {
                    "no policy permits it".to_string()
                } else {
                    format!("denied by {}", d.reasons.join(", "))
                };
                refused.errors.push(format!(
                    "`{} {}` is not allowed for `{}`: {why}",
                    clip(&i.action),
                    clip(&i.resource),
                    who.spiffe_id
                ));
                refused.errors.extend(d.errors);
                for r in d.reasons {
                    if !refused.reasons.contains(&r) {
                        refused.reasons.push(r);
                    }
                }
            }
        }
        if refused.errors.is_empty() { Ok((cap, approved)) } else { Err(Error::Denied(refused)) }
    }

    /// An identity a credential may be issued to, delegated by or to, or presented by, or a
    /// task opened by: proven (an asserted identity never is) and unexpired. Its life left.
    pub(super) fn live_identity(who: &Identity, now: u64) -> Result<u64> {
        if who.proof == crate::Proof::Asserted {
            return Err(Error::Untrusted(format!(
                "`{}` is asserted, not proven: credentials and tasks need an attested X.509-SVID or JWT-SVID",
                crate::spiffe_id::clip(&who.spiffe_id)
            )));
        }
        if who.expires_at <= now {
            return Err(Error::Expired(format!("the identity of `{}` expired at {}", who.spiffe_id, who.expires_at)));
        }
        Ok(who.expires_at - now)
    }

    fn sign_claims(&self, claims: &Claims, crypto: &dyn Crypto) -> Result<String> {
        let payload = serde_json::to_vec(claims).map_err(|e| Error::Malformed(format!("claims: {e}")))?;
        super::jws::sign(TOKEN_TYPE, &payload, crypto)
    }

    /// Issue a credential to `who` for `task_id`: the task open and `who` one of its members,
    /// every scope intent allowed now; the lifetime is the least of `ttl_secs`, each intent's
    /// policy TTL, the identity's own remaining life, the task's deadline and the cap.
    pub fn issue(
        &self,
        who: &Identity,
        task_id: &str,
        scope: &[Intent],
        ttl_secs: u32,
        audience: &str,
        env: &Env<'_>,
    ) -> Result<Issued> {
        field("the task id", task_id)?;
        field("the audience", audience)?;
        let items = scope_items(scope)?;
        if ttl_secs == 0 {
            return Err(Error::Malformed("the requested lifetime is 0 seconds".into()));
        }
        let identity_left = Self::live_identity(who, env.now)?;
        refused_by_ledger(env, task_id, vec![who.spiffe_id.clone()])?;
        let task = super::task::open_task_for(env, task_id, &who.spiffe_id)?;
        let (policy_cap, approval) = self.authorize_scope(who, task_id, scope, 0, env)?;
        // A credential issued under an approval lives no longer than the approval.
        let approval_left = approval.as_ref().map_or(u64::MAX, |a| a.expires_at.saturating_sub(env.now));
        let life = self.lifetime(&[
            u64::from(ttl_secs),
            u64::from(policy_cap),
            identity_left,
            task.deadline - env.now,
            approval_left,
        ]);
        let claims = Claims {
            iss: self.settings().issuer.clone(),
            aud: audience.to_string(),
            sub: who.spiffe_id.clone(),
            iat: env.now,
            exp: env.now + life,
            jti: URL_SAFE_NO_PAD.encode(env.entropy),
            txn: task_id.to_string(),
            scope: items,
            cnf: Confirmation::of(who),
            act: None,
            apr: approval,
        };
        self.finish(claims, env)
    }

    fn lifetime(&self, limits: &[u64]) -> u64 {
        let cap = u64::from(self.settings().ttl_cap_secs.min(MAX_TTL_SECS));
        limits.iter().copied().fold(cap, u64::min)
    }

    fn finish(&self, claims: Claims, env: &Env<'_>) -> Result<Issued> {
        let token = self.sign_claims(&claims, env.crypto)?;
        env.ledger.record(&claims.record());
        Ok(Issued { grant: Grant { token, jti: claims.jti.clone(), expires_at: claims.exp }, claims })
    }

    /// Delegate part of `parent` from its holder to `to`: a subset of its scope, for no longer
    /// than it has left, within the depth limit, the delegation itself allowed (action
    /// `delegate` on `Agent::"<to>"`) and every intent allowed for `to`.
    pub fn delegate(
        &mut self,
        parent: &str,
        holder: &Identity,
        to: &Identity,
        scope: &[Intent],
        ttl_secs: u32,
        env: &Env<'_>,
    ) -> Result<Issued> {
        let now = env.now;
        let verified = self.verify_credential(parent, now, env.crypto)?;
        Self::usable(&verified, None, now, env.ledger)?;
        let claims = &verified.claims;
        Self::check_holder(claims, holder)?;
        Self::live_identity(holder, now)?;
        let items = scope_items(scope)?;
        if ttl_secs == 0 {
            return Err(Error::Malformed("the requested lifetime is 0 seconds".into()));
        }
        let depth = claims.depth() + 1;
        let limit = self.settings().max_delegation_depth;
        if depth > limit {
            return Err(Error::Limit(format!("delegation would be {depth} hops deep, over the limit of {limit}")));
        }
        let wider: Vec<String> = items.iter().filter(|i| !claims.scope.contains(i)).map(describe).collect();
        if !wider.is_empty() {
            return Err(Error::Denied(Decision {
                allow: false,
                reasons: vec![OUTSIDE_SCOPE.into()],
                errors: vec![format!(
                    "delegation would widen the scope: {} not in the parent credential",
                    wider.join(", ")
                )],
                max_ttl_secs: 0,
            }));
        }
        let to_left = Self::live_identity(to, now)?;
        let mut agents = verified.record.agents.clone();
        agents.push(to.spiffe_id.clone());
        refused_by_ledger(env, &claims.txn, agents)?;
        let task = super::task::open_task_for(env, &claims.txn, &to.spiffe_id)?;
        let hop = Intent {
            action: "delegate".into(),
            resource: format!("Agent::{:?}", to.spiffe_id),
            task_id: claims.txn.clone(),
            context: String::new(),
            input: String::new(),
        };
        let d = self.decide(holder, &hop, now, claims.depth(), env.ledger, env.crypto);
        if !d.allow {
            return Err(Error::Denied(d));
        }
        // A delegated credential carries no approval: break-glass is not handed on.
        let (policy_cap, _) = self.authorize_scope(to, &claims.txn, scope, depth, env)?;
        let parent_left = claims.exp.saturating_sub(now);
        let life = self.lifetime(&[
            u64::from(ttl_secs),
            u64::from(policy_cap),
            u64::from(d.max_ttl_secs),
            to_left,
            parent_left,
            task.deadline - now,
        ]);
        let act = Actor { sub: to.spiffe_id.clone(), act: claims.act.clone().map(Box::new) };
        let child = Claims {
            iss: claims.iss.clone(),
            aud: claims.aud.clone(),
            sub: claims.sub.clone(),
            iat: now,
            exp: now + life,
            jti: URL_SAFE_NO_PAD.encode(env.entropy),
            txn: claims.txn.clone(),
            scope: items,
            cnf: Confirmation::of(to),
            act: Some(act),
            apr: None,
        };
        self.finish(child, env)
    }
}

/// A grant about to be made for `task` to `agents` is refused while the task has ended or
/// one of the agents is cut off.
fn refused_by_ledger(env: &Env<'_>, task: &str, agents: Vec<String>) -> Result<()> {
    let probe =
        GrantRecord { jti: String::new(), task_id: task.to_string(), agents, issued_at: env.now, expires_at: env.now };
    match env.ledger.revoked(&probe, env.now) {
        Some(why) => Err(Error::Revoked(why)),
        None => Ok(()),
    }
}
