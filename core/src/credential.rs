//! Task credentials: issued per task, scoped to the task's intents, bound to the workload that
//! proved its identity (`cnf`), short-lived, delegable only narrower, revocable.
//!
//! The token is a compact JWS shaped like an IETF Transaction Token: header
//! `{"alg":"EdDSA"|"ES256","kid","typ":"txntoken+jwt"}`, claims
//! `iss aud sub iat exp jti txn scope cnf act` (`act` only on delegated tokens, RFC 8693
//! nesting with the current actor outermost). Keys stay with the [`Crypto`] provider.

use crate::crypto::{Algorithm, Crypto};
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::jwk::{Jwk, JwtKey, KeyKind};
use crate::ledger::{GrantRecord, Ledger, MAX_TTL_SECS};
use crate::limits::MAX_TOKEN_BYTES;
use crate::spiffe_id::clip;
use crate::writ::Writ;
use crate::{Decision, Grant, Intent};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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

/// One intent a credential allows: an action on a resource (context is checked per use).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeItem {
    pub action: String,
    pub resource: String,
}

/// RFC 8693 actor: `sub` acts, `act` are the actors before it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

/// RFC 7800 confirmation: the holder's certificate (or JWT-SVID) thumbprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirmation {
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
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

    fn record(&self) -> GrantRecord {
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

    fn allows(&self, what: &Intent) -> bool {
        self.scope.iter().any(|s| s.action == what.action && s.resource == what.resource)
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
        let item = ScopeItem { action: i.action.clone(), resource: i.resource.clone() };
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(out)
}

fn describe(i: &ScopeItem) -> String {
    format!("`{} {}`", clip(&i.action), clip(&i.resource))
}

/// The JWS `alg` name of an issuer algorithm; only EdDSA and ES256 issue credentials.
fn issuer_alg(alg: Algorithm) -> Result<&'static str> {
    match alg {
        Algorithm::Ed25519 => Ok("EdDSA"),
        Algorithm::EcdsaP256Sha256Fixed => Ok("ES256"),
        other => Err(Error::Untrusted(format!("issuer keys sign with EdDSA or ES256, not {other:?}"))),
    }
}

impl Writ {
    /// Authorize every scope intent for `who` (at `depth`, in `task`); the smallest
    /// `max-ttl-secs` among them, or a denial naming each refused intent.
    fn authorize_scope(&self, who: &Identity, task: &str, scope: &[Intent], now: u64, depth: u32) -> Result<u32> {
        let mut cap = u32::MAX;
        let mut refused = Decision { allow: false, reasons: Vec::new(), errors: Vec::new(), max_ttl_secs: 0 };
        for i in scope {
            let what = Intent { task_id: task.to_string(), ..i.clone() };
            let d = self.check_at_depth(who, &what, now, depth);
            if d.allow {
                cap = cap.min(d.max_ttl_secs);
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
        if refused.errors.is_empty() { Ok(cap) } else { Err(Error::Denied(refused)) }
    }

    fn live_identity(who: &Identity, now: u64) -> Result<u64> {
        if who.expires_at <= now {
            return Err(Error::Expired(format!("the identity of `{}` expired at {}", who.spiffe_id, who.expires_at)));
        }
        Ok(who.expires_at - now)
    }

    fn sign_claims(&self, claims: &Claims, crypto: &dyn Crypto) -> Result<String> {
        let key = crypto.signing_key().map_err(Error::Untrusted)?;
        let header = serde_json::json!({ "alg": issuer_alg(key.alg)?, "kid": key.kid, "typ": TOKEN_TYPE });
        let payload = serde_json::to_vec(claims).map_err(|e| Error::Malformed(format!("claims: {e}")))?;
        let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let signature = crypto.sign(&key.kid, token.as_bytes()).map_err(Error::Untrusted)?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(token)
    }

    /// Issue a credential to `who` for `task_id`: every scope intent must be allowed now;
    /// the lifetime is the least of `ttl_secs`, each intent's policy TTL, the identity's own
    /// remaining life and the configured cap.
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
        let policy_cap = self.authorize_scope(who, task_id, scope, env.now, 0)?;
        let life = self.lifetime(&[u64::from(ttl_secs), u64::from(policy_cap), identity_left]);
        let claims = Claims {
            iss: self.settings().issuer.clone(),
            aud: audience.to_string(),
            sub: who.spiffe_id.clone(),
            iat: env.now,
            exp: env.now + life,
            jti: URL_SAFE_NO_PAD.encode(env.entropy),
            txn: task_id.to_string(),
            scope: items,
            cnf: Confirmation { x5t_s256: who.thumbprint.clone() },
            act: None,
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

    /// Check a credential's signature, header and times, remembering verified ones until
    /// they expire. Revocation, audience and holder are checked by the callers, every time.
    pub fn verify_credential(&mut self, token: &str, now: u64, crypto: &dyn Crypto) -> Result<Arc<Claims>> {
        let leeway = self.settings().leeway_secs;
        if let Some(c) = self.cached_credential(token) {
            if now >= c.exp.saturating_add(leeway) {
                return Err(Error::Expired(format!("credential expired at {}, now is {now}", c.exp)));
            }
            return Ok(c);
        }
        let claims = Arc::new(self.verify_uncached(token, now, crypto)?);
        self.remember_credential(token, claims.clone(), now);
        Ok(claims)
    }

    fn verify_uncached(&self, token: &str, now: u64, crypto: &dyn Crypto) -> Result<Claims> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Error::Limit(format!(
                "credential is {} bytes, over the cap of {MAX_TOKEN_BYTES}",
                token.len()
            )));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(Error::Malformed("a credential is a compact JWS of 3 parts".into()));
        };
        let decode = |name: &str, part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|e| Error::Malformed(format!("credential {name} is not base64url: {e}")))
        };
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Header {
            alg: String,
            kid: String,
            typ: String,
        }
        let header: Header = serde_json::from_slice(&decode("header", h)?)
            .map_err(|e| Error::Malformed(format!("credential header (alg, kid, typ and nothing else): {e}")))?;
        if header.typ != TOKEN_TYPE {
            return Err(Error::Untrusted(format!("credential `typ` is `{}`, not `{TOKEN_TYPE}`", clip(&header.typ))));
        }
        let alg = match header.alg.as_str() {
            "EdDSA" => Algorithm::Ed25519,
            "ES256" => Algorithm::EcdsaP256Sha256Fixed,
            other => {
                return Err(Error::Untrusted(format!(
                    "credential `alg` `{}` is not allowed (EdDSA, ES256)",
                    clip(other)
                )));
            }
        };
        let key = issuer_key(&crypto.public_keys(), &header.kid)?;
        let fits = matches!(
            (key.kind, alg),
            (KeyKind::Ed25519, Algorithm::Ed25519) | (KeyKind::EcP256, Algorithm::EcdsaP256Sha256Fixed)
        );
        if !fits || key.alg.as_deref().is_some_and(|a| a != header.alg) {
            return Err(Error::Untrusted(format!(
                "credential `alg` `{}` does not fit issuer key `{}`",
                header.alg,
                clip(&header.kid)
            )));
        }
        let signature = decode("signature", s)?;
        let signing_input = &token.as_bytes()[..h.len() + 1 + p.len()];
        if !crypto.verify(alg, &key.public_key, signing_input, &signature) {
            return Err(Error::Untrusted("credential signature does not verify".into()));
        }
        let claims: Claims = serde_json::from_slice(&decode("payload", p)?)
            .map_err(|e| Error::Malformed(format!("credential claims: {e}")))?;
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
    fn check_holder(claims: &Claims, presenter: &Identity) -> Result<()> {
        if presenter.thumbprint != claims.cnf.x5t_s256 || presenter.spiffe_id != claims.holder() {
            return Err(Error::Untrusted(format!(
                "credential is bound to `{}`; `{}` presented it with another key or identity",
                claims.holder(),
                presenter.spiffe_id
            )));
        }
        Ok(())
    }

    fn usable(claims: &Claims, audience: Option<&str>, now: u64, ledger: &dyn Ledger) -> Result<()> {
        if let Some(aud) = audience
            && claims.aud != aud
        {
            return Err(Error::Untrusted(format!(
                "credential is for audience `{}`, not `{}`",
                clip(&claims.aud),
                clip(aud)
            )));
        }
        if let Some(why) = ledger.revoked(&claims.record(), now) {
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
        let claims = self.verify_credential(token, now, crypto)?;
        Self::usable(&claims, Some(audience), now, ledger)?;
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
        let what = Intent { task_id: claims.txn.clone(), ..what.clone() };
        let mut decision = self.check_at_depth(presenter, &what, now, claims.depth());
        if decision.allow {
            decision.max_ttl_secs =
                decision.max_ttl_secs.min(u32::try_from(claims.exp.saturating_sub(now)).unwrap_or(u32::MAX));
        }
        Ok(Presented { decision, claims })
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
        let claims = self.verify_credential(parent, now, env.crypto)?;
        Self::usable(&claims, None, now, env.ledger)?;
        Self::check_holder(&claims, holder)?;
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
        let mut agents = claims.record().agents;
        agents.push(to.spiffe_id.clone());
        refused_by_ledger(env, &claims.txn, agents)?;
        let hop = Intent {
            action: "delegate".into(),
            resource: format!("Agent::{:?}", to.spiffe_id),
            task_id: claims.txn.clone(),
            context: String::new(),
        };
        let d = self.check_at_depth(holder, &hop, now, claims.depth());
        if !d.allow {
            return Err(Error::Denied(d));
        }
        let policy_cap = self.authorize_scope(to, &claims.txn, scope, now, depth)?;
        let parent_left = claims.exp.saturating_sub(now);
        let life = self.lifetime(&[
            u64::from(ttl_secs),
            u64::from(policy_cap),
            u64::from(d.max_ttl_secs),
            to_left,
            parent_left,
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
            cnf: Confirmation { x5t_s256: to.thumbprint.clone() },
            act: Some(act),
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

/// The issuer key `kid` from a JWKS document.
fn issuer_key(jwks: &str, kid: &str) -> Result<JwtKey> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<Jwk>,
    }
    let set: Set = serde_json::from_str(jwks).map_err(|e| Error::Malformed(format!("issuer JWKS: {e}")))?;
    let jwk = set
        .keys
        .iter()
        .find(|k| k.kid.as_deref() == Some(kid))
        .ok_or_else(|| Error::Untrusted(format!("credential `kid` `{}` is not an issuer key", clip(kid))))?;
    JwtKey::from_jwk(jwk)
}
