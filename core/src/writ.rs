//! Writ natively: the state one instance of the rules holds — trust bundles, the attestation
//! cache, policies, settings — and the operations on it (the same ones the component exports
//! and `writ_host::Writ` calls). Time, crypto and the ledger are arguments.

use crate::approval::{APPROVAL_REFUSED, Approval, Approvers};
use crate::authz::{PolicyStore, RequestEnv};
use crate::bounded::BoundedMap;
use crate::bundle::Bundle;
use crate::credential::{MAX_CACHED_TOKENS, Verified};
use crate::crypto::Crypto;
use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::ledger::Ledger;
use crate::limits::{MAX_CACHED_CHAINS, MAX_TRUST_DOMAINS};
use crate::spiffe_id;
use crate::{Decision, Intent};
use crate::{jwt, x509};
use std::collections::HashMap;
use std::hash::BuildHasher;

/// The control settings (the WIT `control` interface), with closed defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Clock skew allowed on JWT-SVID `exp`/`nbf`, seconds. Default 0.
    pub leeway_secs: u64,
    /// Seed of the attestation cache's hasher. Core has no randomness of its own: callers
    /// pass entropy here (the guest takes it from the host) so attackers cannot aim
    /// collisions at the cache.
    pub hash_seed: u64,
    /// Lifetime granted when no determining policy has a `@ttl`, and the cap on any `@ttl`,
    /// seconds. Default 3600.
    pub ttl_cap_secs: u32,
    /// The `iss` of issued credentials, and the only one accepted. Default `writ`.
    pub issuer: String,
    /// Delegation hops a credential may be from its original subject. Default 2.
    pub max_delegation_depth: u32,
    /// Answer a request identical to one already decided under the same policies from memory
    /// (see [`crate::memo`]). Default on.
    pub decision_memo: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            leeway_secs: 0,
            hash_seed: 0,
            ttl_cap_secs: 3600,
            issuer: "writ".into(),
            max_delegation_depth: 2,
            decision_memo: true,
        }
    }
}

#[derive(Debug, Clone)]
struct Cached {
    identity: Identity,
    not_before: u64,
}

type Seeded = foldhash::quality::FixedState;

/// One Writ instance's state.
#[derive(Debug)]
pub struct Writ {
    bundles: HashMap<String, Bundle>,
    /// Verified chains, keyed by their exact bytes, so a hit is an equality match, not a hash
    /// match. Looked up by `&[Vec<u8>]` (no key is built on a hit).
    x509_cache: BoundedMap<Vec<Vec<u8>>, Cached, Seeded>,
    policies: Option<PolicyStore>,
    /// Verified credentials (signature, header and claims checked), found by a seeded hash of
    /// their text and matched on the exact text (word-wise: see [`crate::exact`]). A hash
    /// collision only replaces an entry; it never answers for another token.
    tokens: BoundedMap<u64, (Box<str>, Verified), Seeded>,
    token_hasher: Seeded,
    /// Keys break-glass approvals are verified with (none: every approval is refused).
    approvers: Approvers,
    oidc: crate::oidc::Issuers,
    settings: Settings,
}

impl Default for Writ {
    fn default() -> Self {
        Writ::new(Settings::default())
    }
}

impl Writ {
    pub fn new(settings: Settings) -> Self {
        Writ {
            bundles: HashMap::new(),
            x509_cache: BoundedMap::with_hasher(MAX_CACHED_CHAINS, Seeded::with_seed(settings.hash_seed)),
            policies: None,
            tokens: BoundedMap::with_hasher(
                MAX_CACHED_TOKENS,
                Seeded::with_seed(settings.hash_seed ^ 0x746f_6b65_6e73),
            ),
            token_hasher: Seeded::with_seed(settings.hash_seed ^ 0x7465_7874),
            approvers: Approvers::default(),
            oidc: crate::oidc::Issuers::default(),
            settings,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The lifetime cap applied to decisions (default 3600 s).
    pub fn set_ttl_cap(&mut self, secs: u32) {
        self.settings.ttl_cap_secs = secs;
    }

    /// The `iss` of credentials issued and accepted from now on.
    pub fn set_issuer(&mut self, issuer: &str) {
        self.settings.issuer = issuer.to_string();
        self.tokens.clear();
    }

    pub fn set_max_delegation_depth(&mut self, depth: u32) {
        self.settings.max_delegation_depth = depth;
    }

    pub(crate) fn cached_credential(&self, token: &str) -> Option<Verified> {
        let (text, verified) = self.tokens.get(&self.token_hasher.hash_one(token))?;
        crate::exact::same_text(text, token).then(|| verified.clone())
    }

    pub(crate) fn remember_credential(&mut self, token: &str, verified: Verified, now: u64) {
        let key = self.token_hasher.hash_one(token);
        self.tokens.insert_pruning(key, (token.into(), verified), |_, (_, v)| v.claims.exp > now);
    }

    /// How many verified credentials are cached.
    pub fn cached_credentials(&self) -> usize {
        self.tokens.len()
    }

    pub fn set_leeway(&mut self, secs: u64) {
        self.settings.leeway_secs = secs;
    }

    /// Install (replace) the bundle of `trust_domain`. Cached attestations of that domain are
    /// dropped. A bad bundle leaves the previous one in force.
    pub fn set_bundle(&mut self, trust_domain: &str, bytes: &[u8]) -> Result<()> {
        let td = spiffe_id::trust_domain(trust_domain).map_err(Error::Malformed)?;
        let bundle = Bundle::parse(bytes)?;
        if !self.bundles.contains_key(&td) && self.bundles.len() >= MAX_TRUST_DOMAINS {
            return Err(Error::Limit(format!("already {MAX_TRUST_DOMAINS} trust domains")));
        }
        self.x509_cache.retain(|_, c| c.identity.trust_domain != td);
        self.bundles.insert(td, bundle);
        Ok(())
    }

    pub fn remove_bundle(&mut self, trust_domain: &str) -> bool {
        self.x509_cache.retain(|_, c| c.identity.trust_domain != trust_domain);
        self.bundles.remove(trust_domain).is_some()
    }

    pub fn trust_domains(&self) -> impl Iterator<Item = &str> {
        self.bundles.keys().map(String::as_str)
    }

    fn bundle(&self, td: &str) -> Result<&Bundle> {
        self.bundles.get(td).ok_or_else(|| Error::Untrusted(format!("no bundle for trust domain `{td}`")))
    }

    /// Attest an X.509-SVID chain (leaf first, DER) at `now`.
    pub fn attest_x509(&mut self, chain: &[Vec<u8>], now: u64, crypto: &dyn Crypto) -> Result<Identity> {
        x509::check_limits(chain)?;
        if let Some(hit) = self.x509_cache.get(chain)
            && hit.not_before <= now
            && now <= hit.identity.expires_at
        {
            return Ok(hit.identity.clone());
        }
        let parsed = x509::structural(chain, now)?;
        let bundle = self.bundle(&parsed.trust_domain)?;
        x509::validate_path(chain, bundle, now, crypto)?;
        let not_before = parsed.not_before;
        let identity = x509::identity(parsed, chain);
        self.remember(chain.to_vec(), Cached { identity: identity.clone(), not_before }, now);
        Ok(identity)
    }

    fn remember(&mut self, key: Vec<Vec<u8>>, entry: Cached, now: u64) {
        self.x509_cache.insert_pruning(key, entry, |_, c| c.identity.expires_at >= now);
    }

    /// How many verified chains are cached.
    pub fn cached_chains(&self) -> usize {
        self.x509_cache.len()
    }

    /// Attest a JWT-SVID for `audience` at `now`.
    pub fn attest_jwt(&self, token: &str, audience: &str, now: u64, crypto: &dyn Crypto) -> Result<Identity> {
        let tok = jwt::split(token)?;
        let id = jwt::subject(&tok.claims)?;
        let bundle = self.bundle(&id.1)?;
        let at = jwt::Check { audience, now, leeway: self.settings.leeway_secs };
        jwt::verify(token, tok, id, bundle, &at, crypto)
    }

    /// An identity the host names without a proof Writ can check (proof `asserted`): a SPIFFE
    /// ID and when the host's word for it ends (not before `now`). Decisions take it; credentials
    /// and tasks never do (see [`Proof::Asserted`](crate::Proof::Asserted)).
    pub fn assert_identity(&self, spiffe_id: &str, expires_at: u64, now: u64) -> Result<Identity> {
        let (_, trust_domain) = spiffe_id::parse(spiffe_id).map_err(Error::Malformed)?;
        if expires_at < now {
            return Err(Error::Expired(format!(
                "the assertion of `{}` ends at {expires_at}",
                spiffe_id::clip(spiffe_id)
            )));
        }
        Ok(Identity {
            spiffe_id: spiffe_id.to_string(),
            trust_domain,
            expires_at,
            thumbprint: String::new(),
            proof: crate::Proof::Asserted,
            claims: Default::default(),
        })
    }

    /// Configure the OIDC issuers whose workload tokens attest (see [`crate::oidc`]); replaces
    /// the previous set (a bad one leaves it in force). Returns how many.
    pub fn set_oidc_issuers(&mut self, config: &str) -> Result<u32> {
        self.oidc = crate::oidc::Issuers::parse(config)?;
        Ok(u32::try_from(self.oidc.len()).unwrap_or(u32::MAX))
    }

    /// Attest an OIDC workload token for `audience` at `now` (from issuer `expected`, by name
    /// or `iss`, when given).
    pub fn attest_oidc(
        &self,
        token: &str,
        expected: Option<&str>,
        audience: &str,
        now: u64,
        crypto: &dyn Crypto,
    ) -> Result<Identity> {
        self.oidc.verify(token, expected, audience, now, crypto)
    }

    /// Attest a bearer identity token for `audience`, whichever kind it is: a token whose `iss`
    /// is a configured OIDC issuer's is verified as that issuer's workload token, any other as
    /// a JWT-SVID.
    pub fn attest_token(&self, token: &str, audience: &str, now: u64, crypto: &dyn Crypto) -> Result<Identity> {
        if self.oidc.claims_issuer(token) {
            self.attest_oidc(token, None, audience, now, crypto)
        } else {
            self.attest_jwt(token, audience, now, crypto)
        }
    }

    /// Load Cedar policies, with an optional schema (then policies and requests are
    /// validated) and entities. Atomic: a bad set leaves the previous one in force.
    /// Returns how many policies are loaded.
    pub fn set_policies(&mut self, policies: &str, schema: Option<&str>, entities: Option<&str>) -> Result<u32> {
        let store = PolicyStore::load_with(policies, schema, entities, self.memo_seed())?;
        let n = u32::try_from(store.len()).unwrap_or(u32::MAX);
        self.policies = Some(store);
        Ok(n)
    }

    fn memo_seed(&self) -> Option<u64> {
        self.settings.decision_memo.then_some(self.settings.hash_seed ^ 0x6465_6369_7369_6f6e)
    }

    /// Turn the decision memo on or off (it starts empty either way).
    pub fn set_decision_memo(&mut self, on: bool) {
        self.settings.decision_memo = on;
        let seed = self.memo_seed();
        if let Some(p) = self.policies.as_mut() {
            p.set_memo(seed);
        }
    }

    pub fn policies(&self) -> Option<&PolicyStore> {
        self.policies.as_ref()
    }

    /// Install the approver keys (a JWKS) break-glass approvals are verified with; returns how
    /// many. A bad set leaves the previous one in force.
    pub fn set_approvers(&mut self, jwks: &str) -> Result<u32> {
        self.approvers = Approvers::parse(jwks)?;
        Ok(u32::try_from(self.approvers.len()).unwrap_or(u32::MAX))
    }

    /// Authorize an intent in `env` (Writ's clock, the depth, what Writ verified). Never
    /// fails: with no policies, or on any problem, the answer is deny.
    pub fn check_in(&self, who: &Identity, what: &Intent, env: &RequestEnv<'_>) -> Decision {
        match &self.policies {
            None => Decision::error("no policies are loaded"),
            Some(p) => p.check(who, what, env, self.settings.ttl_cap_secs),
        }
    }

    /// Authorize an intent now, for a caller `delegation_depth` hops from the original
    /// holder, with nothing verified about its task (no `context.task`). Never fails.
    pub fn check_at_depth(&self, who: &Identity, what: &Intent, now: u64, delegation_depth: u32) -> Decision {
        self.check_in(who, what, &RequestEnv::at(now, delegation_depth))
    }

    /// Every door's decision about an attested caller, against the ledger: a cut-off agent, and
    /// an identity past its expiry (`writ:identity-expired`), are denied before any policy is
    /// read; `context.task` is Writ's record of the intent's task
    /// while it is open; a break-glass approval in the caller's context is verified (signed by
    /// an approver key, naming this agent and task, unexpired, unused) and becomes
    /// `context.approval` — or the request is denied `writ:approval-refused` — and is used up
    /// by the decision it allows.
    pub fn decide(
        &self,
        who: &Identity,
        what: &Intent,
        now: u64,
        delegation_depth: u32,
        ledger: &dyn Ledger,
        crypto: &dyn Crypto,
    ) -> Decision {
        self.decide_with_approval(who, what, now, delegation_depth, ledger, crypto).0
    }

    /// [`decide`](Self::decide), with the approval the decision rested on when the caller
    /// claimed one and it verified (for the audit trail of break-glass, and for a credential
    /// issued under it). Every decision this makes that allows under a permit with
    /// `@max_calls` spends one of that permit's calls in the intent's task (see
    /// [`Writ::spend_budgets`]).
    pub fn decide_with_approval(
        &self,
        who: &Identity,
        what: &Intent,
        now: u64,
        delegation_depth: u32,
        ledger: &dyn Ledger,
        crypto: &dyn Crypto,
    ) -> (Decision, Option<Approval>) {
        self.decide_spending(who, what, now, delegation_depth, ledger, crypto, None, true)
    }

    /// [`decide_with_approval`](Self::decide_with_approval) for a presented credential:
    /// `granted` is an approval it carries (verified and used up when it was issued, it stands
    /// when the caller claims none), and `@max_calls` budgets are spent only when `spend` — a
    /// presented credential's use is not a new call, its issue was.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decide_spending(
        &self,
        who: &Identity,
        what: &Intent,
        now: u64,
        delegation_depth: u32,
        ledger: &dyn Ledger,
        crypto: &dyn Crypto,
        granted: Option<&Approval>,
        spend: bool,
    ) -> (Decision, Option<Approval>) {
        if let Some(d) = crate::ledger::cut_off_denial(ledger, &who.spiffe_id, now) {
            return (d, None);
        }
        if let Some(d) = self.expired_denial(who, now) {
            return (d, None);
        }
        let task = if what.task_id.is_empty() { None } else { ledger.task(&what.task_id, now) };
        let task = task.filter(|t| t.is_open(now));
        let approval = match self.claimed_approval(who, what, now, crypto) {
            Ok(a) => a,
            Err(e) => return (refused(e.message()), None),
        };
        let standing = granted.filter(|g| approval.is_none() && g.expires_at > now);
        let env = RequestEnv { now, delegation_depth, task: task.as_deref(), approval: approval.as_ref().or(standing) };
        let d = self.check_in(who, what, &env);
        if let Some(a) = &approval
            && d.allow
            && !ledger.use_approval(&a.jti, a.expires_at, now)
        {
            return (refused(format!("approval `{}` was already used", spiffe_id::clip(&a.jti))), approval);
        }
        if !spend {
            return (d, approval);
        }
        (self.spend_budgets(d, task.as_deref(), ledger, now), approval)
    }

    /// An allow whose determining permits carry `@max_calls` budgets spends one call of each
    /// in the task (shared through the ledger by every replica); when one is spent — or the
    /// request is in no open task to count it in — the decision becomes a deny
    /// ([`MAX_CALLS_SPENT`](writ_types::MAX_CALLS_SPENT)). Any other decision is returned as is.
    pub fn spend_budgets(&self, d: Decision, task: Option<&crate::Task>, ledger: &dyn Ledger, now: u64) -> Decision {
        let Some(policies) = self.policies.as_ref().filter(|_| d.allow) else {
            return d;
        };
        let budgeted: Vec<(&str, u32)> =
            d.reasons.iter().filter_map(|id| policies.max_calls(id).map(|n| (id.as_str(), n))).collect();
        if budgeted.is_empty() {
            return d;
        }
        let spent = |error: String| Decision {
            allow: false,
            reasons: vec![writ_types::MAX_CALLS_SPENT.to_string()],
            errors: vec![error],
            max_ttl_secs: 0,
        };
        if !ledger.counts_calls() {
            let (id, n) = budgeted[0];
            return spent(format!(
                "policy `{}` allows {n} calls per task (`@max_calls`), which only a decider sharing the state store can count (not a proxy filter)",
                spiffe_id::clip(id)
            ));
        }
        let Some(task) = task else {
            let (id, n) = budgeted[0];
            return spent(format!(
                "policy `{}` allows {n} calls per task (`@max_calls`), and this request is in no open task to count them in",
                spiffe_id::clip(id)
            ));
        };
        for (id, n) in budgeted {
            if !ledger.spend_call(&task.id, id, n, task.deadline, now) {
                return spent(format!(
                    "policy `{}` allowed its {n} calls in task `{}` (`@max_calls`)",
                    spiffe_id::clip(id),
                    spiffe_id::clip(&task.id)
                ));
            }
        }
        d
    }

    /// A deny for an identity past its expiry (a JWT-SVID's within the configured leeway, as
    /// when it was attested): an attested identity held longer than it lives decides nothing.
    fn expired_denial(&self, who: &Identity, now: u64) -> Option<Decision> {
        let leeway = if who.proof == crate::Proof::JwtSvid { self.settings.leeway_secs } else { 0 };
        (now > who.expires_at.saturating_add(leeway)).then(|| Decision {
            allow: false,
            reasons: vec![writ_types::IDENTITY_EXPIRED.to_string()],
            errors: vec![format!(
                "the identity of `{}` expired at {}",
                spiffe_id::clip(&who.spiffe_id),
                who.expires_at
            )],
            max_ttl_secs: 0,
        })
    }

    /// The approval the caller's context carries, verified; `None` when it carries none.
    fn claimed_approval(
        &self,
        who: &Identity,
        what: &Intent,
        now: u64,
        crypto: &dyn Crypto,
    ) -> Result<Option<Approval>> {
        let Some(token) = crate::approval::claimed(&what.context) else { return Ok(None) };
        let leeway = self.settings.leeway_secs;
        self.approvers.verify(&token, &who.spiffe_id, &what.task_id, now, leeway, crypto).map(Some)
    }

    /// Decide a general (AuthZEN-shaped) evaluation: any principal type, properties overlaid
    /// on the loaded entities, at time 0 with nothing verified. Never fails: with no
    /// policies, or on any problem, deny.
    pub fn evaluate(&self, e: &crate::Evaluation) -> Decision {
        self.evaluate_in(e, &RequestEnv::default())
    }

    /// [`evaluate`](Self::evaluate) at `env.now` (Writ's clock: AuthZEN callers cannot choose
    /// the time a policy sees), with `env.task` Writ's record of the task the context names.
    pub fn evaluate_in(&self, e: &crate::Evaluation, env: &RequestEnv<'_>) -> Decision {
        match &self.policies {
            None => Decision::error("no policies are loaded"),
            Some(p) => p.evaluate_in(e, self.settings.ttl_cap_secs, env),
        }
    }

    /// A general evaluation against the ledger: a subject that is a cut-off agent is denied
    /// before any policy is read; `context.task` is Writ's record of the task the request's
    /// context names while it is open.
    pub fn decide_evaluation(&self, e: &crate::Evaluation, now: u64, ledger: &dyn Ledger) -> Decision {
        if let Some(d) = crate::ledger::cut_off_denial(ledger, &e.subject.id, now) {
            return d;
        }
        let task = crate::authz::task_named(&e.context).and_then(|id| ledger.task(&id, now)).filter(|t| t.is_open(now));
        let d = self.evaluate_in(e, &RequestEnv { now, delegation_depth: 0, task: task.as_deref(), approval: None });
        self.spend_budgets(d, task.as_deref(), ledger, now)
    }

    /// Whether an attested caller could be allowed `what` with some input (see
    /// [`PolicyStore::listable`](crate::authz::PolicyStore::listable)): what a tool list shows
    /// it. A cut-off or expired caller may call nothing.
    pub fn listable(&self, who: &Identity, what: &Intent, now: u64, ledger: &dyn Ledger) -> Decision {
        if let Some(d) = crate::ledger::cut_off_denial(ledger, &who.spiffe_id, now) {
            return d;
        }
        if let Some(d) = self.expired_denial(who, now) {
            return d;
        }
        let task = if what.task_id.is_empty() { None } else { ledger.task(&what.task_id, now) };
        let task = task.filter(|t| t.is_open(now));
        let env = RequestEnv { now, delegation_depth: 0, task: task.as_deref(), approval: None };
        match &self.policies {
            None => Decision::error("no policies are loaded"),
            Some(p) => p.listable(who, what, &env, self.settings.ttl_cap_secs),
        }
    }

    /// Authorize an intent of a directly attested caller (delegation depth 0), with nothing
    /// verified about its task.
    pub fn check(&self, who: &Identity, what: &Intent, now: u64) -> Decision {
        self.check_at_depth(who, what, now, 0)
    }
}

/// A deny naming a refused approval.
fn refused(message: String) -> Decision {
    Decision { allow: false, reasons: vec![APPROVAL_REFUSED.to_string()], errors: vec![message], max_ttl_secs: 0 }
}
