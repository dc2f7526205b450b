//! One interface over both implementations of attestation, so each test table runs twice.

use writ_core::crypto::RustCrypto;

/// What an attestation produced, comparable across implementations: the identity's
/// fields, or the error's kind and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok {
        spiffe_id: String,
        trust_domain: String,
        expires_at: u64,
        thumbprint: String,
        proof: String,
        claims: std::collections::BTreeMap<String, String>,
    },
    Err {
        kind: String,
        message: String,
    },
}

impl Outcome {
    pub fn kind(&self) -> &str {
        match self {
            Outcome::Ok { .. } => "ok",
            Outcome::Err { kind, .. } => kind,
        }
    }
    pub fn message(&self) -> &str {
        match self {
            Outcome::Ok { spiffe_id, .. } => spiffe_id,
            Outcome::Err { message, .. } => message,
        }
    }
}

impl From<Result<writ_host::Attested, writ_types::Error>> for Outcome {
    fn from(r: Result<writ_host::Attested, writ_types::Error>) -> Self {
        r.map(|a| a.identity().clone()).into()
    }
}

impl From<Result<writ_types::Identity, writ_types::Error>> for Outcome {
    fn from(r: Result<writ_types::Identity, writ_types::Error>) -> Self {
        match r {
            Ok(i) => Outcome::Ok {
                spiffe_id: i.spiffe_id,
                trust_domain: i.trust_domain,
                expires_at: i.expires_at,
                thumbprint: i.thumbprint,
                proof: i.proof.as_str().into(),
                claims: i.claims,
            },
            Err(e) => Outcome::Err { kind: e.kind().into(), message: e.message() },
        }
    }
}

/// A decision, comparable across implementations (both answer the vocabulary's `Decision`).
pub type Verdict = writ_types::Decision;

/// Attestation and authorization, whichever implementation runs them.
pub trait Attester {
    fn name(&self) -> &'static str;
    fn set_bundle(&mut self, td: &str, bundle: &[u8]) -> Result<(), String>;
    fn set_leeway(&mut self, secs: u32);
    fn x509(&mut self, chain: &[Vec<u8>], now: u64) -> Outcome;
    fn jwt(&mut self, token: &str, audience: &str, now: u64) -> Outcome;
    /// Load policies; `Ok(count)` or the error as `kind: message`.
    fn set_policies(&mut self, policies: &str, schema: Option<&str>, entities: Option<&str>) -> Result<u32, String>;
    /// Decide as every door does: against the ledger (cut-offs, the task record).
    fn check(&mut self, who: &writ_core::Identity, what: &writ_core::Intent, now: u64) -> Verdict;
    /// Open task `id` for `members` at `now` (a day long), as the pack's broker would.
    fn open_task(&mut self, id: &str, members: &[&str], now: u64);
}

/// `writ-core` called natively, with RustCrypto.
pub struct Native {
    pub engine: writ_core::Writ,
    pub crypto: RustCrypto,
    pub ledger: writ_core::MemoryLedger,
}

impl Default for Native {
    fn default() -> Self {
        Native { engine: writ_core::Writ::default(), crypto: RustCrypto::new(), ledger: writ_core::MemoryLedger::new() }
    }
}

impl Attester for Native {
    fn name(&self) -> &'static str {
        "native"
    }
    fn set_bundle(&mut self, td: &str, bundle: &[u8]) -> Result<(), String> {
        self.engine.set_bundle(td, bundle).map_err(|e| format!("{}: {}", e.kind(), e.message()))
    }
    fn set_leeway(&mut self, secs: u32) {
        self.engine.set_leeway(u64::from(secs));
    }
    fn x509(&mut self, chain: &[Vec<u8>], now: u64) -> Outcome {
        self.engine.attest_x509(chain, now, &self.crypto).into()
    }
    fn jwt(&mut self, token: &str, audience: &str, now: u64) -> Outcome {
        self.engine.attest_jwt(token, audience, now, &self.crypto).into()
    }
    fn set_policies(&mut self, policies: &str, schema: Option<&str>, entities: Option<&str>) -> Result<u32, String> {
        self.engine.set_policies(policies, schema, entities).map_err(|e| format!("{}: {}", e.kind(), e.message()))
    }
    fn check(&mut self, who: &writ_core::Identity, what: &writ_core::Intent, now: u64) -> Verdict {
        self.engine.decide(who, what, now, 0, &self.ledger, &self.crypto)
    }
    fn open_task(&mut self, id: &str, members: &[&str], now: u64) {
        let task = writ_core::Task {
            id: id.into(),
            opener: "spiffe://acme.example/agent/broker".into(),
            members: members.iter().map(|m| m.to_string()).collect(),
            purpose: "test".into(),
            opened_at: now,
            deadline: now + 86_400,
            ended_at: None,
        };
        writ_core::Ledger::open_task(&self.ledger, &task, now).unwrap();
    }
}

/// The component through `writ-host` (host crypto by default).
pub struct Component {
    pub writ: writ_host::Writ,
}

/// One compiled component per test binary (a shared `OnceLock`); each caller gets a fork
/// with its own bundles, settings and clock.
pub fn writ() -> writ_host::Writ {
    static WRIT: std::sync::OnceLock<writ_host::Writ> = std::sync::OnceLock::new();
    let writ = WRIT.get_or_init(|| writ_host::Writ::builder().build().expect("the component loads")).fork();
    crate::trust_pack_pki(&writ);
    writ
}

/// Audit events collected by a callback sink.
pub type Events = std::sync::Arc<std::sync::Mutex<Vec<writ_host::AuditEvent>>>;

/// A `Writ` at `now` whose audit events are collected (a new engine: the callback is fixed at
/// build time).
pub fn audited_writ(now: u64) -> (writ_host::Writ, Events) {
    let events = Events::default();
    let sink = events.clone();
    let writ = writ_host::Writ::builder()
        .time(now)
        .audit(writ_host::AuditSink::callback(move |e| sink.lock().unwrap_or_else(|p| p.into_inner()).push(e.clone())))
        .build()
        .expect("the component loads");
    crate::trust_pack_pki(&writ);
    (writ, events)
}

impl Component {
    pub fn new() -> Component {
        Component { writ: writ() }
    }
}

impl Default for Component {
    fn default() -> Self {
        Self::new()
    }
}

impl Attester for Component {
    fn name(&self) -> &'static str {
        "component"
    }
    fn set_bundle(&mut self, td: &str, bundle: &[u8]) -> Result<(), String> {
        self.writ.set_bundle(td, bundle).map_err(|e| format!("{}: {}", e.kind(), e.message()))
    }
    fn set_leeway(&mut self, secs: u32) {
        self.writ.set_leeway(secs).unwrap();
    }
    fn x509(&mut self, chain: &[Vec<u8>], now: u64) -> Outcome {
        self.writ.set_time(Some(now));
        self.writ.attest_x509(chain).into()
    }
    fn jwt(&mut self, token: &str, audience: &str, now: u64) -> Outcome {
        self.writ.set_time(Some(now));
        self.writ.attest_jwt(token, audience).into()
    }
    fn set_policies(&mut self, policies: &str, schema: Option<&str>, entities: Option<&str>) -> Result<u32, String> {
        self.writ.set_policies(policies, schema, entities).map_err(|e| format!("{}: {}", e.kind(), e.message()))
    }
    fn check(&mut self, who: &writ_core::Identity, what: &writ_core::Intent, now: u64) -> Verdict {
        self.writ.set_time(Some(now));
        match self.writ.assert_identity(&who.spiffe_id, who.expires_at, "test") {
            Ok(who) => self.writ.check(&who, what).expect("check never fails"),
            // Asserted past its expiry: what the component decides of an expired identity.
            Err(e) => Verdict {
                allow: false,
                reasons: vec![writ_types::IDENTITY_EXPIRED.into()],
                errors: vec![e.message()],
                max_ttl_secs: 0,
            },
        }
    }
    fn open_task(&mut self, id: &str, members: &[&str], now: u64) {
        self.writ.set_time(Some(now));
        let members: Vec<String> = members.iter().map(|m| m.to_string()).collect();
        self.writ.open_task(&crate::pack_broker(&self.writ), id, &members, "test", now + 86_400).unwrap();
    }
}
