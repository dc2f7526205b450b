#![doc = include_str!("../README.md")]
#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]

mod convert;

/// Generated bindings: the only place with `unsafe` (the canonical ABI glue wit-bindgen writes).
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        world: "policy-module",
        path: "../wit",
    });
    // The exports' symbols (`writ:agent/attest@0.1.0#x509-svid`…) exist only in the Wasm
    // build: a native shared library cannot export such names (the native build only checks
    // that the adapter compiles).
    #[cfg(target_family = "wasm")]
    use super::Component;
    #[cfg(target_family = "wasm")]
    export!(Component);
}

use bindings::exports::writ::agent::{attest, authorize, control, issue};
use bindings::writ;
use std::cell::{Cell, RefCell};
use writ::agent::types::{Decision, Error, Intent};
use writ_core::crypto::{Crypto, RustCrypto};
use writ_core::ledger::{GrantRecord, Ledger, LedgerEvent, MemoryLedger};

/// Signature checks and issuer signing by the host's `crypto` import.
struct HostCrypto;

impl Crypto for HostCrypto {
    fn verify(&self, alg: writ_core::Algorithm, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        writ::agent::crypto::verify(convert::alg_to_wit(alg), public_key, message, signature)
    }
    fn signing_key(&self) -> Result<writ_core::crypto::SigningKey, String> {
        let k = writ::agent::crypto::signing_key()?;
        Ok(writ_core::crypto::SigningKey { kid: k.kid, alg: convert::alg_from_wit(k.alg) })
    }
    fn sign(&self, kid: &str, message: &[u8]) -> Result<Vec<u8>, String> {
        writ::agent::crypto::sign(kid, message)
    }
    fn public_keys(&self) -> String {
        writ::agent::crypto::public_keys()
    }
}

/// Pure-Rust verification inside the component; issuer keys stay in the host, so signing and
/// the public keys still come from the `crypto` import.
struct Builtin(RustCrypto);

impl Crypto for Builtin {
    fn verify(&self, alg: writ_core::Algorithm, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        self.0.verify(alg, public_key, message, signature)
    }
    fn signing_key(&self) -> Result<writ_core::crypto::SigningKey, String> {
        HostCrypto.signing_key()
    }
    fn sign(&self, kid: &str, message: &[u8]) -> Result<Vec<u8>, String> {
        HostCrypto.sign(kid, message)
    }
    fn public_keys(&self) -> String {
        HostCrypto.public_keys()
    }
}

/// This instance's view of the host's ledger: revocations are replicated here (every
/// operation first applies the ones other instances appended since), grants are registered
/// with the host and found again there by task or agent when a revocation counts them.
struct SyncedLedger<'a> {
    replica: &'a MemoryLedger,
    seq: &'a Cell<u64>,
    /// The first revocation this build could not read: while one is held, nothing it might
    /// revoke can be ruled out, so every credential is refused (closed, not skipped).
    unreadable: &'a Cell<Option<u64>>,
    /// Whether this call already read what other instances appended: one host call per
    /// exported call (a decision asks about the cut-off, the task, maybe an approval).
    synced: Cell<bool>,
}

impl SyncedLedger<'_> {
    fn sync(&self, at: u64) {
        if self.synced.replace(true) {
            return;
        }
        for entry in writ::agent::ledger::since(self.seq.get()).unwrap_or_default() {
            self.seq.set(entry.seq);
            // Entries are written by this component; one that does not parse (damaged state,
            // or written by a newer Writ) cannot be applied, and what it revokes is unknown.
            match serde_json::from_str::<LedgerEvent>(&entry.data) {
                Ok(event) => {
                    self.replica.apply(event, at);
                }
                Err(_) => {
                    if self.unreadable.get().is_none() {
                        self.unreadable.set(Some(entry.seq));
                    }
                }
            }
        }
    }

    /// Read what was appended since, even when this call read before (after an append of its
    /// own, to see where the shared log put it).
    fn catch_up(&self, at: u64) {
        self.synced.set(false);
        self.sync(at);
    }

    /// Claim something in the shared log under a fresh claim id (the event `event` makes of
    /// it), then read the log up to the claim, so this replica's view holds it where the log
    /// put it among everyone else's: the claim id, or `None` when it could not be written. A
    /// claim this replica's view does not show (a store that lags) wins nothing.
    fn claim(&self, event: impl FnOnce(String) -> LedgerEvent, now: u64) -> Option<String> {
        let claim = entropy().iter().map(|b| format!("{b:02x}")).collect::<String>();
        let event = event(claim.clone());
        let data = serde_json::to_string(&event).ok()?;
        writ::agent::ledger::append(&data, event.relevant_until());
        self.catch_up(now);
        Some(claim)
    }

    /// Revoke: count the live, not yet revoked grants under `key`, then record the event
    /// here and for every other instance. It is remembered until every grant the ledger
    /// knows under `key` has expired, and at least the horizon (the lifetime cap).
    fn revoke(&self, key: &str, event: impl FnOnce(u64) -> LedgerEvent, now: u64) -> u32 {
        self.sync(now);
        let found = writ::agent::ledger::find(key);
        let grants: Vec<GrantRecord> = found.iter().filter_map(|g| serde_json::from_str(g).ok()).collect();
        let live = self.replica.live_among(&grants, now);
        let mut until = self.replica.revocation_covering(&grants, now);
        if grants.len() < found.len() {
            // A grant this build cannot read may live as long as any credential can.
            until = until.max(now.saturating_add(u64::from(writ_core::ledger::MAX_TTL_SECS)));
        }
        let event = event(until);
        if let Ok(data) = serde_json::to_string(&event) {
            writ::agent::ledger::append(&data, event.relevant_until());
        }
        self.replica.apply(event, now);
        live
    }
}

fn task_key(task: &str) -> String {
    format!("task:{task}")
}

fn agent_key(spiffe_id: &str) -> String {
    format!("agent:{spiffe_id}")
}

impl Ledger for SyncedLedger<'_> {
    fn record(&self, grant: &GrantRecord) {
        if let Ok(data) = serde_json::to_string(grant) {
            let mut keys = vec![task_key(&grant.task_id)];
            keys.extend(grant.agents.iter().map(|a| agent_key(a)));
            writ::agent::ledger::register(&data, grant.expires_at, &keys);
        }
    }
    fn revoked(&self, grant: &GrantRecord, now: u64) -> Option<String> {
        self.sync(now);
        if let Some(seq) = self.unreadable.get() {
            return Some(format!(
                "the state holds a revocation this build cannot read (sequence number {seq}): every credential is refused"
            ));
        }
        self.replica.revoked(grant, now)
    }
    fn end_task(&self, task_id: &str, now: u64) -> u32 {
        self.revoke(
            &task_key(task_id),
            |until| LedgerEvent::EndTask { task_id: task_id.to_string(), at: now, until },
            now,
        )
    }
    fn cut_off(&self, spiffe_id: &str, now: u64) -> u32 {
        // In force until restored, whatever the grants it covers.
        self.revoke(
            &agent_key(spiffe_id),
            |_| LedgerEvent::CutOff {
                spiffe_id: spiffe_id.to_string(),
                at: now,
                until: writ_core::ledger::UNTIL_RESTORED,
            },
            now,
        )
    }
    fn cut_off_since(&self, spiffe_id: &str, now: u64) -> Option<u64> {
        self.sync(now);
        self.replica.cut_off_since(spiffe_id, now)
    }
    fn task(&self, id: &str, now: u64) -> Option<std::sync::Arc<writ_core::Task>> {
        self.sync(now);
        self.replica.task(id, now)
    }
    fn open_task(&self, task: &writ_core::Task, now: u64) -> writ_core::Result<()> {
        self.sync(now);
        self.replica.admit_task(task, now)?;
        let event = LedgerEvent::OpenTask(task.clone());
        if let Ok(data) = serde_json::to_string(&event) {
            writ::agent::ledger::append(&data, event.relevant_until());
        }
        self.replica.apply(event, now);
        Ok(())
    }
    fn use_approval(&self, jti: &str, until: u64, now: u64) -> bool {
        self.sync(now);
        if self.replica.approval_used(jti, now) {
            return false;
        }
        // When replicas race for one approval, every one of them sees the same first claim.
        let claimed = self.claim(|claim| LedgerEvent::UseApproval { jti: jti.to_string(), at: now, until, claim }, now);
        claimed.is_some_and(|claim| self.replica.approval_claim(jti, now).is_some_and(|first| first == claim))
    }
    fn spend_call(&self, task_id: &str, policy: &str, budget: u32, until: u64, now: u64) -> bool {
        self.sync(now);
        let budget = budget as usize;
        if until <= now || self.replica.calls_spent(task_id, policy, now) >= budget {
            return false;
        }
        // Every replica sees the same order, so the claims within the budget are the same for all.
        let event = |claim| LedgerEvent::SpendCall {
            task_id: task_id.to_string(),
            policy: policy.to_string(),
            claim,
            at: now,
            until,
        };
        self.claim(event, now).is_some_and(|claim| {
            self.replica.call_rank(task_id, policy, &claim, now).is_some_and(|rank| rank <= budget)
        })
    }
    fn restore(&self, spiffe_id: &str, now: u64) -> bool {
        self.sync(now);
        if self.replica.cut_off_since(spiffe_id, now).is_none() {
            return false;
        }
        // Remembered while any credential issued before it can live.
        self.revoke(
            &agent_key(spiffe_id),
            |until| LedgerEvent::Restore { spiffe_id: spiffe_id.to_string(), at: now, until },
            now,
        );
        true
    }
}

struct State {
    engine: writ_core::Writ,
    builtin: Option<Builtin>,
    replica: MemoryLedger,
    seq: Cell<u64>,
    unreadable: Cell<Option<u64>>,
}

/// Entropy for core's hash seeds, from the host (std's `RandomState` reads WASI random).
fn seed() -> u64 {
    use std::hash::BuildHasher as _;
    std::hash::RandomState::new().hash_one(0x5772_6974u32)
}

/// 16 fresh bytes for a credential id: each `RandomState` is keyed from WASI randomness
/// (advanced per state), so successive outputs differ and are not guessable.
fn entropy() -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&seed().to_le_bytes());
    out[8..].copy_from_slice(&seed().to_le_bytes());
    out
}

thread_local! {
    /// Whether the host listens for audit events: apart from [`STATE`], so an event can be
    /// emitted while the engine is borrowed (a batch audits each item as it is decided).
    static AUDIT: Cell<bool> = const { Cell::new(true) };
    static STATE: RefCell<State> = RefCell::new(State {
        engine: writ_core::Writ::new(writ_core::Settings { hash_seed: seed(), ..writ_core::Settings::default() }),
        builtin: None,
        replica: {
            let l = MemoryLedger::new();
            l.set_horizon(u64::from(writ_core::Settings::default().ttl_cap_secs));
            l
        },
        seq: Cell::new(0),
        unreadable: Cell::new(None),
    });
}

fn with_state<R>(f: impl FnOnce(&mut writ_core::Writ, &dyn Crypto) -> R) -> R {
    with_all(|e, c, _| f(e, c))
}

/// The engine, the crypto provider in force and the synced ledger.
fn with_all<R>(f: impl FnOnce(&mut writ_core::Writ, &dyn Crypto, &SyncedLedger<'_>) -> R) -> R {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let State { engine, builtin, replica, seq, unreadable, .. } = &mut *s;
        let ledger = SyncedLedger { replica, seq, unreadable, synced: Cell::new(false) };
        match builtin {
            Some(b) => f(engine, b, &ledger),
            None => f(engine, &HostCrypto, &ledger),
        }
    })
}

fn now() -> u64 {
    writ::agent::clock::now()
}

/// Hand an event to the host's audit sink, unless the host said it has none.
fn emit(event: impl FnOnce() -> writ::agent::audit::Event) {
    if AUDIT.with(Cell::get) {
        writ::agent::audit::emit(&event());
    }
}

/// An attestation's audit event; `by` names who vouched for an asserted identity.
fn audit_attest(proof: &str, by: Option<&str>, result: &Result<writ_core::Identity, writ_core::Error>) {
    emit(|| {
        let (spiffe_id, allow, reasons) = match result {
            Ok(id) => (Some(id.spiffe_id.clone()), true, vec![proof.to_string()]),
            Err(e) => (None, false, vec![format!("{}: {}", e.kind(), e.message())]),
        };
        writ::agent::audit::Event {
            kind: "attest".into(),
            time: now(),
            spiffe_id,
            task_id: None,
            action: None,
            resource: None,
            allow,
            reasons,
            jti: None,
            act_chain: Vec::new(),
            detail: Some(match by {
                Some(by) => format!("{proof} by {}", writ_core::spiffe_id::clip(by)),
                None => proof.into(),
            }),
        }
    });
}

struct Component;

impl control::Guest for Component {
    fn set_bundle(trust_domain: String, bundle: Vec<u8>) -> Result<(), Error> {
        with_state(|e, _| e.set_bundle(&trust_domain, &bundle)).map_err(convert::error)
    }
    fn remove_bundle(trust_domain: String) -> bool {
        with_state(|e, _| e.remove_bundle(&trust_domain))
    }
    fn set_leeway(secs: u32) {
        with_state(|e, _| e.set_leeway(u64::from(secs)));
    }
    fn set_crypto_provider(provider: control::CryptoProvider) {
        STATE.with(|s| {
            s.borrow_mut().builtin = match provider {
                control::CryptoProvider::Host => None,
                control::CryptoProvider::Builtin => Some(Builtin(RustCrypto::new())),
            }
        });
    }
    fn set_ttl_cap(secs: u32) {
        // Revocations are remembered as long as a credential issued before them can live.
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            s.engine.set_ttl_cap(secs);
            s.replica.set_horizon(u64::from(secs));
        });
    }
    fn set_decision_memo(on: bool) {
        with_state(|e, _| e.set_decision_memo(on));
    }
    fn set_audit(enabled: bool) {
        AUDIT.with(|a| a.set(enabled));
    }
    fn set_policies(policies: String, schema: Option<String>, entities: Option<String>) -> Result<u32, Error> {
        with_state(|e, _| e.set_policies(&policies, schema.as_deref(), entities.as_deref())).map_err(convert::error)
    }
    fn set_oidc_issuers(config: String) -> Result<u32, Error> {
        with_state(|e, _| e.set_oidc_issuers(&config)).map_err(convert::error)
    }
    fn set_approvers(jwks: String) -> Result<u32, Error> {
        with_state(|e, _| e.set_approvers(&jwks)).map_err(convert::error)
    }
    fn set_issuer(name: String) {
        with_state(|e, _| e.set_issuer(&name));
    }
    fn set_max_delegation_depth(depth: u32) {
        with_state(|e, _| e.set_max_delegation_depth(depth));
    }
    fn jwks() -> String {
        HostCrypto.public_keys()
    }
}

/// An identity this instance established: what `attest` hands the host, and the only way an
/// identity reaches a decision or a credential. The host holds a handle; the identity stays here.
pub struct Attested(writ_core::Identity);

impl attest::GuestAttested for Attested {
    fn identity(&self) -> writ::agent::types::Identity {
        convert::identity_to_wit(&self.0)
    }
}

/// The identity behind a handle the host passed.
fn held<'a>(handle: &'a attest::AttestedBorrow<'_>) -> &'a writ_core::Identity {
    &handle.get::<Attested>().0
}

fn attested(
    proof: &str,
    by: Option<&str>,
    result: Result<writ_core::Identity, writ_core::Error>,
) -> Result<attest::Attested, Error> {
    audit_attest(proof, by, &result);
    result.map(|id| attest::Attested::new(Attested(id))).map_err(convert::error)
}

impl attest::Guest for Component {
    type Attested = Attested;

    fn x509_svid(chain: Vec<Vec<u8>>) -> Result<attest::Attested, Error> {
        let at = now();
        attested("x509-svid", None, with_state(|e, c| e.attest_x509(&chain, at, c)))
    }
    fn x509_svid_holding(
        chain: Vec<Vec<u8>>,
        challenge: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<attest::Attested, Error> {
        let at = now();
        let result = with_state(|e, c| {
            let id = e.attest_x509(&chain, at, c)?;
            let leaf = chain.first().map(Vec::as_slice).unwrap_or_default();
            writ_core::possession::verify(leaf, &challenge, &signature, c).map(|()| id)
        });
        attested("x509-svid-holding", None, result)
    }
    fn jwt_svid(token: String, audience: String) -> Result<attest::Attested, Error> {
        let at = now();
        attested("jwt-svid", None, with_state(|e, c| e.attest_jwt(&token, &audience, at, c)))
    }
    fn token(token: String, audience: String) -> Result<attest::Attested, Error> {
        let at = now();
        let result = with_state(|e, c| e.attest_token(&token, &audience, at, c));
        let proof = result.as_ref().map_or("token", |id| id.proof.as_str());
        attested(proof, None, result)
    }
    fn oidc(token: String, issuer: Option<String>, audience: String) -> Result<attest::Attested, Error> {
        let at = now();
        attested("oidc", None, with_state(|e, c| e.attest_oidc(&token, issuer.as_deref(), &audience, at, c)))
    }
    fn asserted(spiffe_id: String, expires_at: u64, by: String) -> Result<attest::Attested, Error> {
        let at = now();
        let result = with_state(|e, _| e.assert_identity(&spiffe_id, expires_at, at));
        attested("asserted", Some(&by), result)
    }
}

impl authorize::Guest for Component {
    fn mcp_schema(base: String, upstream: String, tools: String) -> Result<authorize::ToolSchema, Error> {
        writ_core::authz::mcp_schema(&base, &upstream, &tools)
            .map(|m| authorize::ToolSchema {
                schema: m.schema,
                changed: m.changed,
                starter: m.starter,
                untyped: m.untyped,
            })
            .map_err(convert::error)
    }

    fn listable(who: attest::AttestedBorrow<'_>, what: Intent) -> Decision {
        let at = now();
        let (who, what) = (held(&who), convert::intent_from_wit(what));
        convert::decision_to_wit(with_all(|e, _, ledger| e.listable(who, &what, at, ledger)))
    }

    fn check(who: attest::AttestedBorrow<'_>, what: Intent) -> Decision {
        let at = now();
        let who = held(&who);
        with_all(|e, crypto, ledger| check_one(e, crypto, ledger, who, convert::intent_from_wit(what), at))
    }

    fn check_many(who: attest::AttestedBorrow<'_>, what: Vec<Intent>) -> Vec<Decision> {
        let at = now();
        let who = held(&who);
        // One clock read and one ledger sync for the batch: the items are decided at one instant.
        with_all(|e, crypto, ledger| {
            what.into_iter().map(|w| check_one(e, crypto, ledger, who, convert::intent_from_wit(w), at)).collect()
        })
    }

    fn evaluate(request: writ::agent::types::Evaluation) -> Decision {
        let at = now();
        with_all(|engine, _, ledger| evaluate_one(engine, ledger, request, at))
    }

    fn evaluate_many(
        requests: Vec<writ::agent::types::Evaluation>,
        semantic: writ::agent::types::EvaluationsSemantic,
    ) -> Vec<Decision> {
        use writ::agent::types::EvaluationsSemantic as S;
        let at = now();
        with_all(|engine, _, ledger| {
            let mut out = Vec::with_capacity(requests.len());
            for request in requests {
                let d = evaluate_one(engine, ledger, request, at);
                let stop = match semantic {
                    S::ExecuteAll => false,
                    S::DenyOnFirstDeny => !d.allow,
                    S::PermitOnFirstPermit => d.allow,
                };
                out.push(d);
                if stop {
                    break;
                }
            }
            out
        })
    }
}

/// One plain decision (`check`), audited; a cut-off agent is denied before any policy is read.
fn check_one(
    e: &mut writ_core::Writ,
    crypto: &dyn Crypto,
    ledger: &SyncedLedger<'_>,
    who: &writ_core::Identity,
    what: writ_core::Intent,
    at: u64,
) -> Decision {
    let (d, approval) = e.decide_with_approval(who, &what, at, 0, ledger, crypto);
    // A request that claims a break-glass approval is audited apart too (its own kind),
    // whether the approval verified (approver, ticket, reason) or was refused.
    if approval.is_some() || writ_core::approval::claimed(&what.context).is_some() {
        emit(|| {
            let mut e = decision_event(
                "approval",
                at,
                who.spiffe_id.clone(),
                Some(what.task_id.clone()),
                what.action.clone(),
                what.resource.clone(),
                &d,
            );
            if let Some(a) = &approval {
                e.jti = Some(a.jti.clone());
                e.detail = Some(format!(
                    "approver={} ticket={} reason={}{}",
                    a.approver,
                    a.ticket,
                    a.reason,
                    e.detail.as_ref().map(|d| format!("; {d}")).unwrap_or_default()
                ));
            }
            e
        });
    }
    // Every decision is audited (when the host listens).
    emit(|| decision_event("authorize", at, who.spiffe_id.clone(), Some(what.task_id), what.action, what.resource, &d));
    convert::decision_to_wit(d)
}

/// One general evaluation, audited; a subject that is a cut-off agent is denied before any
/// policy is read.
fn evaluate_one(
    engine: &mut writ_core::Writ,
    ledger: &SyncedLedger<'_>,
    request: writ::agent::types::Evaluation,
    at: u64,
) -> Decision {
    let e = convert::evaluation_from_wit(request);
    let d = engine.decide_evaluation(&e, at, ledger);
    let uid = |r: &writ_core::EntityRef| format!("{}::{}", r.type_name, serde_json::Value::from(r.id.as_str()));
    emit(|| decision_event("evaluate", at, uid(&e.subject), None, e.action.clone(), uid(&e.resource), &d));
    convert::decision_to_wit(d)
}

/// An audit event about a policy decision (no credential involved).
fn decision_event(
    kind: &str,
    at: u64,
    principal: String,
    task_id: Option<String>,
    action: String,
    resource: String,
    d: &writ_core::Decision,
) -> writ::agent::audit::Event {
    writ::agent::audit::Event {
        kind: kind.into(),
        time: at,
        spiffe_id: Some(principal),
        task_id,
        action: Some(action),
        resource: Some(resource),
        allow: d.allow,
        reasons: d.reasons.clone(),
        jti: None,
        act_chain: Vec::new(),
        detail: (!d.errors.is_empty()).then(|| d.errors.join("; ")),
    }
}

/// An audit event about a credential.
fn credential_event(
    kind: &str,
    at: u64,
    spiffe_id: &str,
    claims: Option<&writ_core::Claims>,
) -> writ::agent::audit::Event {
    writ::agent::audit::Event {
        kind: kind.into(),
        time: at,
        spiffe_id: Some(spiffe_id.to_string()),
        task_id: claims.map(|c| c.txn.clone()),
        action: None,
        resource: None,
        allow: false,
        reasons: Vec::new(),
        jti: claims.map(|c| c.jti.clone()),
        act_chain: claims.map(writ_core::Claims::chain).unwrap_or_default(),
        detail: None,
    }
}

fn failed(mut e: writ::agent::audit::Event, err: &writ_core::Error) -> writ::agent::audit::Event {
    e.reasons = match err {
        writ_core::Error::Denied(d) => d.reasons.clone(),
        other => vec![other.kind().to_string()],
    };
    e.detail = Some(err.to_string());
    e
}

fn granted(kind: &str, at: u64, result: &Result<writ_core::Issued, writ_core::Error>, who: &str, task: &str) {
    emit(|| match result {
        Ok(g) => writ::agent::audit::Event {
            allow: true,
            detail: Some(format!("scope {} intents, expires at {}", g.claims.scope.len(), g.grant.expires_at)),
            ..credential_event(kind, at, who, Some(&g.claims))
        },
        Err(err) => failed(
            writ::agent::audit::Event {
                task_id: (!task.is_empty()).then(|| task.to_string()),
                ..credential_event(kind, at, who, None)
            },
            err,
        ),
    });
}

fn task_to_wit(t: writ_core::Task) -> issue::Task {
    issue::Task {
        id: t.id,
        opener: t.opener,
        members: t.members,
        purpose: t.purpose,
        opened_at: t.opened_at,
        deadline: t.deadline,
        ended_at: t.ended_at,
    }
}

fn grant_to_wit(issued: writ_core::Issued) -> issue::Grant {
    let g = issued.grant;
    issue::Grant { token: g.token, jti: g.jti, expires_at: g.expires_at }
}

impl issue::Guest for Component {
    fn sign_feed_page(page: String) -> Result<String, Error> {
        let page: writ_core::feed::Page = serde_json::from_str(&page)
            .map_err(|e| convert::error(writ_core::Error::Malformed(format!("feed page: {e}"))))?;
        with_state(|_, crypto| writ_core::feed::sign(&page, crypto)).map_err(convert::error)
    }
    fn issue(
        who: attest::AttestedBorrow<'_>,
        task_id: String,
        scope: Vec<Intent>,
        ttl: u32,
        audience: String,
    ) -> Result<issue::Grant, Error> {
        let at = now();
        let who = held(&who);
        let scope: Vec<writ_core::Intent> = scope.into_iter().map(convert::intent_from_wit).collect();
        let result = with_all(|e, crypto, ledger| {
            let env = writ_core::Env { now: at, crypto, ledger, entropy: entropy() };
            e.issue(who, &task_id, &scope, ttl, &audience, &env)
        });
        granted("issue", at, &result, &who.spiffe_id, &task_id);
        result.map(grant_to_wit).map_err(convert::error)
    }

    fn delegate(
        parent: String,
        holder: attest::AttestedBorrow<'_>,
        to: attest::AttestedBorrow<'_>,
        scope: Vec<Intent>,
        ttl: u32,
    ) -> Result<issue::Grant, Error> {
        let at = now();
        let (holder, to) = (held(&holder), held(&to));
        let scope: Vec<writ_core::Intent> = scope.into_iter().map(convert::intent_from_wit).collect();
        let result = with_all(|e, crypto, ledger| {
            let env = writ_core::Env { now: at, crypto, ledger, entropy: entropy() };
            e.delegate(&parent, holder, to, &scope, ttl, &env)
        });
        granted("delegate", at, &result, &holder.spiffe_id, "");
        result.map(grant_to_wit).map_err(convert::error)
    }

    fn present(
        token: String,
        presenter: attest::AttestedBorrow<'_>,
        what: Intent,
        audience: String,
    ) -> Result<Decision, Error> {
        let at = now();
        let (presenter, what) = (held(&presenter), convert::intent_from_wit(what));
        let result = with_all(|e, crypto, ledger| e.present(&token, presenter, &what, &audience, at, crypto, ledger));
        emit(|| {
            let mut ev = match &result {
                Ok(p) => writ::agent::audit::Event {
                    allow: p.decision.allow,
                    reasons: p.decision.reasons.clone(),
                    detail: (!p.decision.errors.is_empty()).then(|| p.decision.errors.join("; ")),
                    ..credential_event("present", at, &presenter.spiffe_id, Some(&p.claims))
                },
                Err(err) => failed(credential_event("present", at, &presenter.spiffe_id, None), err),
            };
            ev.action = Some(what.action.clone());
            ev.resource = Some(what.resource.clone());
            ev
        });
        result.map(|p| convert::decision_to_wit(p.decision)).map_err(convert::error)
    }

    fn open_task(
        opener: attest::AttestedBorrow<'_>,
        id: String,
        members: Vec<String>,
        purpose: String,
        deadline: u64,
    ) -> Result<issue::Task, Error> {
        let at = now();
        let opener = held(&opener);
        let result = with_all(|e, crypto, ledger| {
            let env = writ_core::Env { now: at, crypto, ledger, entropy: entropy() };
            e.open_task(opener, &id, &members, &purpose, deadline, &env)
        });
        emit(|| {
            let ev = writ::agent::audit::Event {
                kind: "open-task".into(),
                task_id: Some(id.clone()),
                spiffe_id: Some(opener.spiffe_id.clone()),
                allow: result.is_ok(),
                reasons: vec!["open-task".into()],
                detail: result
                    .as_ref()
                    .ok()
                    .map(|t| format!("members {}; deadline {}", t.members.join(" "), t.deadline)),
                ..revoke_event(at, "open-task", 0)
            };
            match &result {
                Ok(_) => ev,
                Err(err) => failed(ev, err),
            }
        });
        result.map(task_to_wit).map_err(convert::error)
    }

    fn find_task(id: String) -> Option<issue::Task> {
        let at = now();
        with_all(|_, _, ledger| ledger.task(&id, at)).map(|t| task_to_wit(writ_core::Task::clone(&t)))
    }

    fn end_task(task_id: String) -> Result<u32, Error> {
        let at = now();
        let n = with_all(|_, _, ledger| {
            if ledger.task(&task_id, at).is_none() {
                return Err(writ_core::Error::Malformed(format!(
                    "task `{}` was never opened",
                    writ_core::spiffe_id::clip(&task_id)
                )));
            }
            Ok(ledger.end_task(&task_id, at))
        })
        .map_err(convert::error)?;
        emit(|| writ::agent::audit::Event { task_id: Some(task_id.clone()), ..revoke_event(at, "end-task", n) });
        Ok(n)
    }

    fn cut_off(spiffe_id: String) -> u32 {
        let at = now();
        let n = with_all(|_, _, ledger| ledger.cut_off(&spiffe_id, at));
        emit(|| writ::agent::audit::Event { spiffe_id: Some(spiffe_id.clone()), ..revoke_event(at, "cut-off", n) });
        n
    }

    fn restore(spiffe_id: String) -> bool {
        let at = now();
        let restored = with_all(|_, _, ledger| ledger.restore(&spiffe_id, at));
        emit(|| writ::agent::audit::Event {
            kind: "restore".into(),
            spiffe_id: Some(spiffe_id.clone()),
            allow: restored,
            reasons: vec![if restored { "restored" } else { "not-cut-off" }.into()],
            detail: None,
            ..revoke_event(at, "restore", 0)
        });
        restored
    }
}

/// A revocation's audit event: how it was revoked and how many live grants it covered.
fn revoke_event(at: u64, how: &str, revoked: u32) -> writ::agent::audit::Event {
    writ::agent::audit::Event {
        kind: "revoke".into(),
        time: at,
        spiffe_id: None,
        task_id: None,
        action: None,
        resource: None,
        allow: false,
        reasons: vec![how.into()],
        jti: None,
        act_chain: Vec::new(),
        detail: Some(format!("{revoked} live grants revoked")),
    }
}

/// The component's heap. Every request allocates (the lowered arguments, Cedar's request
/// and evaluation, the decision), and talc serves wasm32 faster than std's dlmalloc; it grows
/// linear memory the same way, so the host's memory limit still refuses growth (an allocation
/// failure traps, and the host reports it as a limit).
#[cfg(all(not(target_feature = "atomics"), target_family = "wasm"))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();
