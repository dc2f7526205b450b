//! [`Writ`]: the public handle to the component — its control settings, attestation,
//! authorization and credentials, each a call on a pooled instance.

use crate::attested::{Attested, Evidence};
use crate::builder::Builder;
use crate::cache::Source;
use crate::convert;
use crate::crypto::IssuerKey;
use crate::imports::{SYSTEM_TIME, Shared};
use crate::pool::{Compiled, Pool};
use crate::remote::{BundleEndpoint, Remote, SourceStatus};
use crate::settings::{Applied, CryptoProvider, Setting};
use crate::state::Memory;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use writ_types::authzen::Semantic;
use writ_types::{Decision, Error, Evaluation, Grant, Intent};

/// A handle to the Writ component. Cheap to clone; safe to share between threads (each
/// concurrent call runs on its own instance).
#[derive(Clone)]
pub struct Writ {
    pool: Arc<Pool>,
    /// What the host fetches for it (OIDC keys, bundles from bundle endpoints).
    remote: Arc<Remote>,
}

impl Writ {
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub(crate) fn from_parts(compiled: Arc<Compiled>, shared: Arc<Shared>) -> Writ {
        let pool = Arc::new(Pool::new(compiled, shared));
        let remote = Arc::new(Remote::new(Arc::downgrade(&pool)));
        Writ { pool, remote }
    }

    /// A new `Writ` that shares this one's compiled component, issuer key and audit sink,
    /// but has its own control settings, instances, credential ledger and clock (starting at
    /// this one's setting). Cheap: nothing is compiled.
    pub fn fork(&self) -> Writ {
        let shared = &self.pool.shared;
        let forked = Arc::new(Shared::new(
            shared.crypto.clone(),
            shared.audit.clone(),
            Arc::new(Memory::new()),
            shared.clock.load(Ordering::Relaxed),
        ));
        Writ::from_parts(self.pool.compiled.clone(), forked)
    }

    /// Whether the compiled component came from the on-disk cache.
    pub fn cache_source(&self) -> Source {
        self.pool.compiled.source
    }

    /// Fix the clock at `unix_secs`, or return to the system clock with `None`.
    pub fn set_time(&self, unix_secs: Option<u64>) {
        let t = unix_secs.map_or(SYSTEM_TIME, |t| t.min(SYSTEM_TIME - 1));
        self.pool.shared.clock.store(t, Ordering::Relaxed);
    }

    /// The time the component sees now.
    pub fn now(&self) -> u64 {
        self.pool.shared.now()
    }

    /// The state store's newest revocation sequence number: a cheap read that also tells
    /// whether the store answers (`/readyz`, `/metrics`). A probe: its failures are not
    /// counted in [`Writ::state_errors`] (a scrape would inflate them).
    pub fn state_last_seq(&self) -> Result<u64, Error> {
        self.pool.shared.state.last_seq().map_err(Error::from)
    }

    /// Audit events that could not be written (a full disk, a closed pipe), since this `Writ`
    /// was built.
    pub fn audit_failures(&self) -> u64 {
        self.pool.shared.audit_failures.load(Ordering::Relaxed)
    }

    /// Write an event of the host's own to the audit sink (a server's refusal before any
    /// decision: no route, no client certificate, an unreadable `x-forwarded-client-cert`).
    pub fn audit(&self, event: crate::AuditEvent) {
        self.pool.shared.audit_event(event);
    }

    /// Calls that failed because the state store did, since this `Writ` was built.
    pub fn state_errors(&self) -> u64 {
        self.pool.shared.state_errors.load(Ordering::Relaxed)
    }

    /// Where the state is kept, for messages.
    pub fn state_location(&self) -> String {
        self.pool.shared.state.location()
    }

    /// How old this process's view of a remote state (NATS) is; `None` for a local store
    /// (read directly) or a view never caught up.
    pub fn state_view_age(&self) -> Option<std::time::Duration> {
        self.pool.shared.state.view_age()
    }

    /// Instances ready in the pool (idle between calls).
    pub fn idle_instances(&self) -> usize {
        self.pool.idle()
    }

    /// Identity handles the idle instances hold (each instance keeps at most 16 384, those of
    /// dropped [`Attested`]s going first).
    pub fn held_identities(&self) -> usize {
        self.pool.idle_handles()
    }

    /// A new instance straight from the `InstancePre`, with no settings replayed (what
    /// instantiation costs; used by benchmarks).
    pub fn instantiate_bare(&self) -> Result<(), Error> {
        self.pool.new_instance(0).map(drop)
    }

    fn set(&self, setting: Setting) -> Result<(), Error> {
        self.pool.apply(setting).map(drop)
    }

    // ---- control settings ----

    /// Install (replace) the trust bundle of `trust_domain`: PEM/DER CA certificates or a
    /// SPIFFE bundle (JWKS).
    pub fn set_bundle(&self, trust_domain: &str, bundle: &[u8]) -> Result<(), Error> {
        self.set(Setting::Bundle { trust_domain: trust_domain.into(), bundle: bundle.to_vec() })
    }

    /// Forget a trust domain. Returns whether it had a bundle.
    pub fn remove_bundle(&self, trust_domain: &str) -> Result<bool, Error> {
        match self.pool.apply(Setting::RemoveBundle(trust_domain.into()))? {
            Applied::Removed(had) => Ok(had),
            _ => Ok(false),
        }
    }

    /// Clock skew allowed on JWT-SVID `exp`/`nbf` (default 0).
    pub fn set_leeway(&self, secs: u32) -> Result<(), Error> {
        self.set(Setting::Leeway(secs))
    }

    /// The lifetime cap, seconds: a decision's `max_ttl_secs` when no determining policy has
    /// a `@ttl`, and the ceiling of any `@ttl` (default 3600).
    pub fn set_ttl_cap(&self, secs: u32) -> Result<(), Error> {
        self.set(Setting::TtlCap(secs))
    }

    /// Whether a request identical to one already decided under the loaded policies is
    /// answered from memory (default on): the same caller, proof, action, resource, context
    /// text, and the same values of the Writ context keys some policy reads.
    pub fn set_decision_memo(&self, on: bool) -> Result<(), Error> {
        self.set(Setting::DecisionMemo(on))
    }

    /// Where signatures are checked inside the component.
    pub fn set_crypto_provider(&self, provider: CryptoProvider) -> Result<(), Error> {
        self.set(Setting::CryptoProvider(provider))
    }

    /// Load Cedar policies with an optional schema (Cedar or JSON syntax) and entities (Cedar
    /// entities JSON). Atomic and hot: calls already running finish on the old set, every
    /// later call sees the new one, and a bad set leaves the old one in force. Returns how
    /// many policies are loaded.
    pub fn set_policies(&self, policies: &str, schema: Option<&str>, entities: Option<&str>) -> Result<u32, Error> {
        let setting = Setting::Policies {
            policies: policies.into(),
            schema: schema.map(str::to_string),
            entities: entities.map(str::to_string),
        };
        self.load(setting)
    }

    /// Apply a setting that loads a set (policies, keys, issuers); how many it loaded.
    fn load(&self, setting: Setting) -> Result<u32, Error> {
        match self.pool.apply(setting)? {
            Applied::Loaded(n) => Ok(n),
            _ => Ok(0),
        }
    }

    /// The approver keys (a JWKS) break-glass approvals are verified with; returns how many.
    /// A bad set leaves the previous one in force.
    pub fn set_approvers(&self, jwks: &str) -> Result<u32, Error> {
        self.load(Setting::Approvers(jwks.into()))
    }

    /// The OIDC issuers whose workload tokens [`Writ::attest_oidc`] accepts (JSON, see the WIT
    /// `control.set-oidc-issuers`); returns how many. A bad set leaves the previous one in force.
    /// Issuers whose keys were fetched ([`Writ::load_oidc`]) are no longer.
    pub fn set_oidc_issuers(&self, config: &str) -> Result<u32, Error> {
        let template: serde_json::Value =
            serde_json::from_str(config).map_err(|e| Error::Malformed(format!("OIDC configuration: {e}")))?;
        self.remote.configure_oidc(template, Vec::new()).map(|(n, _)| n)
    }

    /// Load an OIDC configuration as [`crate::oidc::resolve`] made it: its issuers whose keys
    /// are fetched get them now (waiting for each fetch, bounded by its timeout) and keep them
    /// fresh on the host's fetching thread. A bad configuration leaves the previous one in
    /// force; an issuer whose keys cannot be fetched is loaded with none (its tokens are
    /// refused, and the fetch is tried again) and named in [`crate::oidc::Loaded::unfetched`].
    pub fn load_oidc(&self, resolved: crate::oidc::Resolved) -> Result<crate::oidc::Loaded, Error> {
        let (issuers, unfetched) = self.remote.configure_oidc(resolved.template, resolved.remote)?;
        Ok(crate::oidc::Loaded { issuers, unfetched })
    }

    /// Fetch trust domains' bundles from their SPIFFE bundle endpoints, now and whenever each
    /// bundle's `spiffe_refresh_hint` says, on the host's fetching thread; replaces the previous
    /// list. The bundle last fetched stays in force when a fetch fails (and over a bundle file
    /// set since). Returns, for each endpoint whose bundle could not be fetched now, why.
    pub fn set_bundle_endpoints(&self, endpoints: Vec<BundleEndpoint>) -> Result<Vec<String>, Error> {
        self.remote.configure_bundles(endpoints)
    }

    /// The sources the host fetches (OIDC keys, bundle endpoints) and how fetching them goes.
    pub fn fetched_sources(&self) -> Vec<SourceStatus> {
        self.remote.status()
    }

    /// The `iss` of credentials issued, and the only one accepted (default `writ`).
    pub fn set_issuer(&self, name: &str) -> Result<(), Error> {
        self.set(Setting::Issuer(name.into()))
    }

    /// Delegation hops a credential may be from its original subject (default 2).
    pub fn set_max_delegation_depth(&self, depth: u32) -> Result<(), Error> {
        self.set(Setting::MaxDelegationDepth(depth))
    }

    /// Make `next` the issuer's signing key. The old key keeps verifying for `overlap_secs`
    /// (make it at least the TTL cap, so every credential it signed expires first). Both are
    /// published in the state (the old one until its overlap ends), so every process on it
    /// follows the rotation; a store that fails the publication fails the call, and the
    /// rotation has then happened here only.
    pub fn rotate_issuer(&self, next: IssuerKey, overlap_secs: u64) -> Result<(), Error> {
        let shared = &self.pool.shared;
        let now = self.now();
        let (kid, jwk) = shared.crypto.rotate(next, now.saturating_add(overlap_secs), now);
        shared.key_published_until.store(0, Ordering::Relaxed);
        shared.state.publish_key(&kid, &jwk, now.saturating_add(overlap_secs)).map_err(|e| {
            shared.state_errors.fetch_add(1, Ordering::Relaxed);
            Error::from(e)
        })?;
        shared.publish_signing_key().map_err(Error::from)
    }

    /// The issuer's public keys (JWKS), as the component reports them.
    pub fn jwks(&self) -> Result<String, Error> {
        self.pool.with_instance(|i| i.module.writ_agent_control().call_jwks(&mut i.store))
    }

    // ---- attestation ----

    fn establish(&self, evidence: Evidence) -> Result<Attested, Error> {
        self.pool.with_instance(|i| i.attest(evidence))?
    }

    /// Attest an X.509-SVID chain, leaf first, DER. A chain attested before under the settings
    /// in force, and still valid, gives the same [`Attested`] without a call into the component
    /// (and without another `attest` audit event).
    pub fn attest_x509(&self, chain: &[Vec<u8>]) -> Result<Attested, Error> {
        self.remembered(chain, || self.establish(Evidence::X509 { chain: chain.to_vec() }))
    }

    /// Attest an X.509-SVID chain and that the caller holds its leaf's private key: `signature`
    /// is that key's signature over `challenge` (see the WIT `attest.x509-svid-holding`).
    pub fn attest_x509_holding(
        &self,
        chain: &[Vec<u8>],
        challenge: &[u8],
        signature: &[u8],
    ) -> Result<Attested, Error> {
        self.establish(Evidence::X509Holding {
            chain: chain.to_vec(),
            challenge: challenge.to_vec(),
            signature: signature.to_vec(),
        })
    }

    /// An attestation remembered under `key` (see [`Writ::attest_x509`]), or `establish`ed now
    /// and remembered.
    fn remembered(
        &self,
        key: &[Vec<u8>],
        establish: impl FnOnce() -> Result<Attested, Error>,
    ) -> Result<Attested, Error> {
        let now = self.now();
        if let Some(known) = self.pool.attestations.get(key, now) {
            return Ok(known);
        }
        let epoch = self.pool.attestations.epoch();
        let attested = establish()?;
        self.pool.attestations.remember(key, &attested, now, epoch);
        Ok(attested)
    }

    /// The key a bearer token's attestation is remembered under: never a certificate chain's
    /// (whose first element is DER, `0x30…`).
    fn token_key(kind: &str, token: &str, audience: &str, issuer: Option<&str>) -> Vec<Vec<u8>> {
        let mut key = vec![format!("writ-{kind}").into_bytes(), audience.as_bytes().to_vec()];
        if let Some(i) = issuer {
            key.push(i.as_bytes().to_vec());
        }
        key.push(token.as_bytes().to_vec());
        key
    }

    /// Attest a JWT-SVID for `audience`. A token attested before for the same audience under
    /// the settings in force, and unexpired, gives the same [`Attested`] without a call into
    /// the component (as [`Writ::attest_x509`] does for chains).
    pub fn attest_jwt(&self, token: &str, audience: &str) -> Result<Attested, Error> {
        self.remembered(&Self::token_key("jwt", token, audience, None), || {
            self.establish(Evidence::Jwt { token: token.into(), audience: audience.into() })
        })
    }

    /// Attest an OIDC workload token of a configured issuer (see [`Writ::set_oidc_issuers`]) for
    /// `audience`; with `issuer` (a name or `iss`), only that issuer's.
    pub fn attest_oidc(&self, token: &str, issuer: Option<&str>, audience: &str) -> Result<Attested, Error> {
        self.remembered(&Self::token_key("oidc", token, audience, Some(issuer.unwrap_or_default())), || {
            self.remote.before_attest(token);
            self.establish(Evidence::Oidc {
                token: token.into(),
                issuer: issuer.map(str::to_string),
                audience: audience.into(),
            })
        })
    }

    /// Attest a bearer identity token of either kind for `audience` (see the WIT
    /// `attest.token`): an OIDC workload token of a configured issuer, or a JWT-SVID.
    pub fn attest_token(&self, token: &str, audience: &str) -> Result<Attested, Error> {
        self.remembered(&Self::token_key("token", token, audience, None), || {
            self.remote.before_attest(token);
            self.establish(Evidence::Token { token: token.into(), audience: audience.into() })
        })
    }

    /// An identity this host vouches for without a proof the component can check (proof
    /// `asserted`, audited with `by`): a trusted proxy's word, a dry run naming a principal.
    /// Decisions take it until `expires_at`; credentials and tasks never do.
    pub fn assert_identity(&self, spiffe_id: &str, expires_at: u64, by: &str) -> Result<Attested, Error> {
        self.establish(Evidence::Asserted { spiffe_id: spiffe_id.into(), expires_at, by: by.into() })
    }

    // ---- authorization ----

    /// Authorize an intent for an attested identity. An identity this instance has to
    /// establish again and cannot (it expired, its bundle was removed) is denied.
    pub fn check(&self, who: &Attested, what: &Intent) -> Result<Decision, Error> {
        let what = convert::intent_to_wit(what);
        self.pool.with_handle(who, not_established, |i, who| {
            lenient(i, |i| i.module.writ_agent_authorize().call_check(&mut i.store, who, what)).map(Into::into)
        })
    }

    /// The identity `who` names, as this instance's component holds it: the cheapest call on
    /// the path [`Writ::check`] takes (an instance checked out of the pool, `who`'s handle
    /// lowered, a record lifted, no policy work): the benchmarks' call floor. The record is
    /// the one attestation established (read back, not checked again).
    pub fn identity_in_component(&self, who: &Attested) -> Result<writ_types::Identity, Error> {
        self.pool.with_handle(who, Err, |i, handle| {
            let record = i.module.writ_agent_attest().attested().call_identity(&mut i.store, handle)?;
            Ok(Ok(convert::identity(record)))
        })?
    }

    /// [`Writ::check`] for each intent of `who`, in order, in one call into the component: the
    /// decisions exactly as one `check` each would give them (each audited), decided at one
    /// instant. A batch runs under one call's CPU budget.
    pub fn check_many(&self, who: &Attested, what: &[Intent]) -> Result<Vec<Decision>, Error> {
        let what: Vec<_> = what.iter().map(convert::intent_to_wit).collect();
        let refused = |e| vec![not_established(e); what.len()];
        self.pool.with_handle(who, refused, |i, who| {
            lenient(i, |i| i.module.writ_agent_authorize().call_check_many(&mut i.store, who, &what))
                .map(|ds| ds.into_iter().map(Into::into).collect())
        })
    }

    /// Whether `who` could be allowed `what` with some input (see the WIT
    /// `authorize.listable`): what an MCP tool list shows it. Not audited.
    pub fn listable(&self, who: &Attested, what: &Intent) -> Result<Decision, Error> {
        let what = convert::intent_to_wit(what);
        self.pool.with_handle(who, not_established, |i, who| {
            lenient(i, |i| i.module.writ_agent_authorize().call_listable(&mut i.store, who, what)).map(Into::into)
        })
    }

    /// Decide a general (AuthZEN-shaped) evaluation: principal `<subject.type>::"<id>"` with
    /// the loaded entity's attributes overlaid by the subject's properties, action
    /// `Action::"<action>"`, resource likewise, context plus `action` (the action's
    /// properties). Audited; problems deny, listed in `errors`.
    pub fn evaluate(&self, request: &Evaluation) -> Result<Decision, Error> {
        let request = convert::evaluation_to_wit(request);
        self.pool
            .with_instance(|i| lenient(i, |i| i.module.writ_agent_authorize().call_evaluate(&mut i.store, request)))
            .map(Into::into)
    }

    /// [`Writ::evaluate`] for each request, in order, in one call into the component (AuthZEN's
    /// `evaluations`), stopping after the first deny or permit as `semantic` says (that one
    /// included). A batch runs under one call's CPU budget.
    pub fn evaluate_many(&self, requests: &[Evaluation], semantic: Semantic) -> Result<Vec<Decision>, Error> {
        let requests: Vec<_> = requests.iter().map(convert::evaluation_to_wit).collect();
        let semantic = convert::semantic_to_wit(semantic);
        self.pool
            .with_instance(|i| {
                lenient(i, |i| i.module.writ_agent_authorize().call_evaluate_many(&mut i.store, &requests, semantic))
            })
            .map(|ds| ds.into_iter().map(Into::into).collect())
    }

    /// A Cedar schema for an MCP upstream's `tools` (a saved `tools/list` result), merged into
    /// `base` (see the WIT `authorize.mcp-schema`). Pure: nothing is loaded.
    pub fn mcp_schema(&self, base: &str, upstream: &str, tools: &str) -> Result<writ_types::mcp::McpSchema, Error> {
        self.pool
            .with_instance(|i| i.module.writ_agent_authorize().call_mcp_schema(&mut i.store, base, upstream, tools))?
            .map(|m| writ_types::mcp::McpSchema {
                schema: m.schema,
                changed: m.changed,
                starter: m.starter,
                untyped: m.untyped,
            })
            .map_err(convert::error)
    }

    // ---- credentials ----

    /// Issue a task credential to `who` (see the WIT `issue` interface).
    pub fn issue(
        &self,
        who: &Attested,
        task_id: &str,
        scope: &[Intent],
        ttl_secs: u32,
        audience: &str,
    ) -> Result<Grant, Error> {
        self.pool.shared.publish_signing_key()?;
        let scope: Vec<_> = scope.iter().map(convert::intent_to_wit).collect();
        self.pool.with_handle(who, Err, |i, who| {
            let issued =
                i.module.writ_agent_issue().call_issue(&mut i.store, who, task_id, &scope, ttl_secs, audience)?;
            Ok(issued.map(convert::grant).map_err(convert::error))
        })?
    }

    /// Delegate part of `parent` from its `holder` to `to`.
    pub fn delegate(
        &self,
        parent: &str,
        holder: &Attested,
        to: &Attested,
        scope: &[Intent],
        ttl_secs: u32,
    ) -> Result<Grant, Error> {
        self.pool.shared.publish_signing_key()?;
        let scope: Vec<_> = scope.iter().map(convert::intent_to_wit).collect();
        self.pool.with_instance(|i| {
            let (holder, to) = match i.handle_pair(holder, to)? {
                Ok(h) => h,
                Err(e) => return Ok(Err(e)),
            };
            let issued =
                i.module.writ_agent_issue().call_delegate(&mut i.store, parent, holder, to, &scope, ttl_secs)?;
            Ok(issued.map(convert::grant).map_err(convert::error))
        })?
    }

    /// Present a credential for one intent at `audience`: an error for a bad, expired,
    /// revoked or stolen token, else the decision.
    pub fn present(&self, token: &str, presenter: &Attested, what: &Intent, audience: &str) -> Result<Decision, Error> {
        let what = convert::intent_to_wit(what);
        self.pool.with_handle(presenter, Err, |i, presenter| {
            let presented = i.module.writ_agent_issue().call_present(&mut i.store, token, presenter, what, audience)?;
            Ok(presented.map(Into::into).map_err(convert::error))
        })?
    }

    /// The revocations (ended tasks, cut-off agents) recorded after sequence number `seq`, in
    /// order: `(seq, entry)`, the entry as the component wrote it (a JSON ledger event).
    /// What replicas outside this process (the proxy-wasm filter) poll to stay in step.
    pub fn revocations_since(&self, seq: u64) -> Result<Vec<(u64, String)>, Error> {
        self.pool.shared.state.revocations_since(seq).map_err(Error::from)
    }

    /// What the state store holds (`writ state check`): it is read whole and its integrity
    /// checked.
    pub fn state_summary(&self) -> Result<crate::state::Summary, Error> {
        self.pool.shared.state.summary().map_err(Error::from)
    }

    /// A page of the revocation feed (JSON), signed with the issuer's key (see the WIT
    /// `issue.sign-feed-page`).
    pub fn sign_feed_page(&self, page: &str) -> Result<String, Error> {
        self.pool
            .with_instance(|i| i.module.writ_agent_issue().call_sign_feed_page(&mut i.store, page))?
            .map_err(convert::error)
    }

    /// Revoke every grant of a task; returns how many were live.
    pub fn end_task(&self, task_id: &str) -> Result<u32, Error> {
        self.pool
            .with_instance(|i| i.module.writ_agent_issue().call_end_task(&mut i.store, task_id))?
            .map_err(convert::error)
    }

    /// Open a task (see the WIT `issue.open-task`): `opener` allowed by policy, a new id, its
    /// members (SPIFFE IDs), purpose and deadline (unix seconds, at most a week ahead).
    pub fn open_task(
        &self,
        opener: &Attested,
        id: &str,
        members: &[String],
        purpose: &str,
        deadline: u64,
    ) -> Result<crate::Task, Error> {
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        self.pool.with_handle(opener, Err, |i, opener| {
            let opened =
                i.module.writ_agent_issue().call_open_task(&mut i.store, opener, id, &members, purpose, deadline)?;
            Ok(opened.map(convert::task).map_err(convert::error))
        })?
    }

    /// The task `id` as the registry knows it (`None`: never opened, or long forgotten).
    pub fn task(&self, id: &str) -> Result<Option<crate::Task>, Error> {
        self.pool
            .with_instance(|i| i.module.writ_agent_issue().call_find_task(&mut i.store, id))
            .map(|t| t.map(convert::task))
    }

    /// Lift an agent's cut-off: decisions and new credentials again; its credentials issued
    /// before stay revoked. False when it was not cut off.
    pub fn restore(&self, spiffe_id: &str) -> Result<bool, Error> {
        self.pool.with_instance(|i| i.module.writ_agent_issue().call_restore(&mut i.store, spiffe_id))
    }

    /// Revoke every grant held by or delegated from an agent, and deny every decision about
    /// it (reason `writ:cut-off`) until [`Writ::restore`]; returns how many grants were live.
    pub fn cut_off(&self, spiffe_id: &str) -> Result<u32, Error> {
        self.pool.with_instance(|i| i.module.writ_agent_issue().call_cut_off(&mut i.store, spiffe_id))
    }
}

/// The deny of a decision about an identity this instance could not establish again: expired
/// since (`writ:identity-expired`, as the component says of one it holds), or refused.
fn not_established(e: Error) -> Decision {
    let reason = if matches!(e, Error::Expired(_)) { writ_types::IDENTITY_EXPIRED } else { writ_types::NOT_ATTESTED };
    Decision {
        allow: false,
        reasons: vec![reason.into()],
        errors: vec![format!("{}: {}", e.kind(), e.message())],
        max_ttl_secs: 0,
    }
}

/// Run a plain decision with lenient state reads: when the state cannot be read (NATS
/// unreachable past the bound, a failing disk) the decision uses the revocations this process
/// already knows instead of failing — plain authorization keeps answering; the error is
/// counted. Credential operations never read leniently.
fn lenient<R>(
    i: &mut crate::pool::Instance,
    call: impl FnOnce(&mut crate::pool::Instance) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    i.store.data_mut().lenient_reads = true;
    let r = call(i);
    i.store.data_mut().lenient_reads = false;
    r
}
