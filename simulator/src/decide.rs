//! Who decides intents in the Writ design: the real component through `writ-host` (default)
//! or the native `writ-core` crate — the same rules either way, under the simulated clock.

use crate::svids::Svids;
use writ_host::pack::Pack;

/// Unix time of simulated second 0.
pub const EPOCH: u64 = 1_800_000_000;

/// Who opens the simulated tasks in the Writ design: the shipped pack's broker (a pack must
/// let it `open_task` for its tasks to have records; otherwise in-task policies deny).
pub const OPENER: &str = "spiffe://acme.example/agent/broker";

/// The audience of every simulated credential (the tools the workflows call).
pub const AUDIENCE: &str = "writ-sim";

/// The attacker's own workload: an identity of the trust domain it controls, from which it
/// presents credentials it stole without their holder's key.
pub const ATTACKER: &str = "spiffe://acme.example/workload/attacker";

/// A credential issued in the Writ design: its token and when it expires (simulated seconds).
#[derive(Debug, Clone)]
pub struct Grant {
    pub token: String,
    pub expires_at: u64,
}

impl From<writ_host::Grant> for Grant {
    /// Its expiry moved from unix time to the simulation's clock.
    fn from(g: writ_host::Grant) -> Grant {
        Grant { token: g.token, expires_at: g.expires_at.saturating_sub(EPOCH) }
    }
}

/// A requested lifetime as the engine takes it (longer than `u32` asks for the longest).
fn ttl(ttl_s: u64) -> u32 {
    u32::try_from(ttl_s).unwrap_or(u32::MAX)
}

/// What the decider answered to a presented credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// The token itself was not accepted: malformed, expired, revoked, for another audience,
    /// or not presented by its holder.
    Refused,
    /// A valid token, but the intent is outside its scope or task, or policy denies it now.
    Denied,
    Allowed,
}

/// One intent: (action, resource) in a task, with the caller's context JSON.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub task: &'a str,
    pub context: &'a str,
}

impl Ask<'_> {
    fn intent(&self) -> writ_core::Intent {
        writ_core::Intent {
            action: self.action.into(),
            resource: self.resource.into(),
            task_id: self.task.into(),
            context: self.context.into(),
            input: String::new(),
        }
    }
}

/// What a credential is asked for: (action, resource) pairs in a task.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub task: &'a str,
    pub pairs: &'a [(&'a str, &'a str)],
}

/// The Writ design's rules at simulated time `at` (seconds after [`EPOCH`]): decisions, and
/// the whole credential lifecycle — tasks opened and ended, credentials issued, delegated and
/// presented by a holder, agents cut off. Every identity is attested from an SVID ([`Svids`]).
pub trait Decider: Send {
    /// Task `id` starts at `at` with `members`, open until `deadline`: opened by `opener`
    /// (the workflows' tasks by [`OPENER`]) unless it is open already (a workflow's fixed task
    /// id names one task its instances share). A task policy does not let open stays
    /// unopened; whether it is open now.
    fn open_task(&mut self, opener: &str, id: &str, members: &[String], deadline: u64, at: u64) -> bool;
    /// A credential for `agent` covering `scope`, asking for `ttl_s`; `None` when refused
    /// (policy, task, identity).
    fn issue(&mut self, agent: &str, scope: Scope<'_>, ttl_s: u64, at: u64) -> Option<Grant>;
    /// Part of `parent` (a credential of `scope.task`) handed from `holder` to `to`; `None`
    /// when refused.
    fn delegate(
        &mut self,
        parent: &str,
        holder: &str,
        to: &str,
        scope: Scope<'_>,
        ttl_s: u64,
        at: u64,
    ) -> Option<Grant>;
    /// `token` presented by `presenter` (attested from its SVID) for `ask`.
    fn present(&mut self, token: &str, presenter: &str, ask: Ask<'_>, at: u64) -> Presented;
    /// Task `id` ends: every credential of it is revoked.
    fn end_task(&mut self, id: &str, at: u64);
    /// `agent` is cut off: every credential it holds or delegated is revoked and nothing about
    /// it is allowed — until restored, which `restore` does at once (a response that revokes
    /// what it holds and lets a cleaned agent work again).
    fn cut_off(&mut self, agent: &str, restore: bool, at: u64);
    /// Forget every task, credential and cut-off: a replication starts from a clean state.
    /// One that cannot (a runtime failure) denies and refuses everything after: closed.
    fn reset(&mut self);
    /// An independent decider with the same rules for another thread (its own clock and
    /// state, the same CAs).
    fn fork(&self) -> Result<Box<dyn Decider>, String>;
}

/// The scope's intents.
fn scope_intents(scope: Scope<'_>) -> Vec<writ_core::Intent> {
    scope
        .pairs
        .iter()
        .map(|(action, resource)| Ask { action, resource, task: scope.task, context: "" }.intent())
        .collect()
}

/// `writ-core` natively, with the shipped policy pack, against its own ledger.
pub struct Native {
    engine: writ_core::Writ,
    ledger: writ_core::MemoryLedger,
    crypto: writ_core::crypto::RustCrypto,
    svids: Svids,
    /// Trust domains whose CA is set.
    trusted: std::collections::BTreeSet<String>,
    /// The attested identities, each once.
    identities: std::collections::HashMap<String, writ_core::Identity>,
    /// Credentials issued, for fresh `jti`s.
    issued: u64,
    pack: Pack,
}

impl Native {
    /// With the shipped policy pack.
    pub fn new() -> Result<Native, String> {
        Native::with_pack(Pack::shipped())
    }

    pub fn with_pack(pack: Pack) -> Result<Native, String> {
        Native::on(pack, Svids::new(EPOCH))
    }

    fn on(pack: Pack, svids: Svids) -> Result<Native, String> {
        let mut engine = writ_core::Writ::default();
        engine
            .set_policies(&pack.policies, pack.schema.as_deref(), pack.entities.as_deref())
            .map_err(|e| format!("policies: {e}"))?;
        Ok(Native {
            engine,
            ledger: writ_core::MemoryLedger::new(),
            // A fixed issuer key: runs are reproducible.
            crypto: writ_core::crypto::RustCrypto::with_ed25519_seed([7; 32]),
            svids,
            trusted: Default::default(),
            identities: std::collections::HashMap::new(),
            issued: 0,
            pack,
        })
    }

    /// `id` attested from its SVID (once).
    fn identity(&mut self, id: &str, now: u64) -> Option<writ_core::Identity> {
        if let Some(who) = self.identities.get(id) {
            return Some(who.clone());
        }
        let crate::svids::Svid { trust_domain: td, bundle, chain } = self.svids.of(id).ok()?;
        if self.trusted.insert(td.clone()) {
            self.engine.set_bundle(&td, &bundle).ok()?;
        }
        let who = self.engine.attest_x509(&chain, now, &self.crypto).ok()?;
        self.identities.insert(id.to_string(), who.clone());
        Some(who)
    }

    fn entropy(&mut self) -> [u8; 16] {
        self.issued += 1;
        u128::from(self.issued).to_le_bytes()
    }
}

impl Decider for Native {
    fn open_task(&mut self, opener: &str, id: &str, members: &[String], deadline: u64, at: u64) -> bool {
        let now = EPOCH + at;
        if writ_core::Ledger::task(&self.ledger, id, now).is_some_and(|t| t.is_open(now)) {
            return true;
        }
        let Some(opener) = self.identity(opener, now) else { return false };
        let env = writ_core::Env { now, crypto: &self.crypto, ledger: &self.ledger, entropy: [0; 16] };
        // Refused by policy (or already remembered): the task stays unopened.
        self.engine.open_task(&opener, id, members, "simulated task", EPOCH + deadline, &env).is_ok()
    }
    fn issue(&mut self, agent: &str, scope: Scope<'_>, ttl_s: u64, at: u64) -> Option<Grant> {
        let now = EPOCH + at;
        let who = self.identity(agent, now)?;
        let entropy = self.entropy();
        let env = writ_core::Env { now, crypto: &self.crypto, ledger: &self.ledger, entropy };
        let issued = self.engine.issue(&who, scope.task, &scope_intents(scope), ttl(ttl_s), AUDIENCE, &env).ok()?;
        Some(issued.grant.into())
    }
    fn delegate(
        &mut self,
        parent: &str,
        holder: &str,
        to: &str,
        scope: Scope<'_>,
        ttl_s: u64,
        at: u64,
    ) -> Option<Grant> {
        let now = EPOCH + at;
        let (holder, to) = (self.identity(holder, now)?, self.identity(to, now)?);
        let entropy = self.entropy();
        let env = writ_core::Env { now, crypto: &self.crypto, ledger: &self.ledger, entropy };
        let issued = self.engine.delegate(parent, &holder, &to, &scope_intents(scope), ttl(ttl_s), &env).ok()?;
        Some(issued.grant.into())
    }
    fn present(&mut self, token: &str, presenter: &str, ask: Ask<'_>, at: u64) -> Presented {
        let now = EPOCH + at;
        let Some(who) = self.identity(presenter, now) else { return Presented::Refused };
        match self.engine.present(token, &who, &ask.intent(), AUDIENCE, now, &self.crypto, &self.ledger) {
            Ok(p) if p.decision.allow => Presented::Allowed,
            Ok(_) => Presented::Denied,
            Err(_) => Presented::Refused,
        }
    }
    fn end_task(&mut self, id: &str, at: u64) {
        writ_core::Ledger::end_task(&self.ledger, id, EPOCH + at);
    }
    fn cut_off(&mut self, agent: &str, restore: bool, at: u64) {
        writ_core::Ledger::cut_off(&self.ledger, agent, EPOCH + at);
        if restore {
            writ_core::Ledger::restore(&self.ledger, agent, EPOCH + at);
        }
    }
    fn reset(&mut self) {
        // The rules and the attested identities stay; the ledger is new.
        self.ledger = writ_core::MemoryLedger::new();
        self.issued = 0;
    }
    fn fork(&self) -> Result<Box<dyn Decider>, String> {
        Native::on(self.pack.clone(), self.svids.clone()).map(|d| Box::new(d) as _)
    }
}

/// The Writ component through `writ-host`.
pub struct Component {
    writ: writ_host::Writ,
    pack: Pack,
    svids: Svids,
    /// Trust domains whose CA is set.
    trusted: std::collections::BTreeSet<String>,
    /// The attested workloads, each once: the component keeps a handle for each.
    attested: std::collections::HashMap<String, writ_host::Attested>,
    /// A reset failed: every answer is a deny (closed by default).
    broken: bool,
}

impl Component {
    /// With the shipped policy pack.
    pub fn new() -> Result<Component, String> {
        Component::with_pack(Pack::shipped())
    }

    pub fn with_pack(pack: Pack) -> Result<Component, String> {
        let writ = writ_host::Writ::builder().time(EPOCH).build().map_err(|e| e.to_string())?;
        Component::on(writ, pack, Svids::new(EPOCH))
    }

    fn on(writ: writ_host::Writ, pack: Pack, svids: Svids) -> Result<Component, String> {
        writ.set_policies(&pack.policies, pack.schema.as_deref(), pack.entities.as_deref())
            .map_err(|e| format!("policies: {e}"))?;
        let attested = std::collections::HashMap::new();
        Ok(Component { writ, pack, svids, trusted: Default::default(), attested, broken: false })
    }

    /// `id` attested from its SVID (once), with the component's clock at `at`.
    fn attested(&mut self, id: &str, at: u64) -> Option<writ_host::Attested> {
        if self.broken {
            return None;
        }
        self.writ.set_time(Some(EPOCH + at));
        if let Some(a) = self.attested.get(id) {
            return Some(a.clone());
        }
        let crate::svids::Svid { trust_domain: td, bundle, chain } = self.svids.of(id).ok()?;
        if self.trusted.insert(td.clone()) {
            self.writ.set_bundle(&td, &bundle).ok()?;
        }
        let a = self.writ.attest_x509(&chain).ok()?;
        self.attested.insert(id.to_string(), a.clone());
        Some(a)
    }
}

impl Decider for Component {
    fn open_task(&mut self, opener: &str, id: &str, members: &[String], deadline: u64, at: u64) -> bool {
        let Some(opener) = self.attested(opener, at) else { return false };
        let now = EPOCH + at;
        if self.writ.task(id).ok().flatten().is_some_and(|t| t.is_open(now)) {
            return true;
        }
        // Refused by policy (or already remembered): the task stays unopened.
        self.writ.open_task(&opener, id, members, "simulated task", EPOCH + deadline).is_ok()
    }
    fn issue(&mut self, agent: &str, scope: Scope<'_>, ttl_s: u64, at: u64) -> Option<Grant> {
        let who = self.attested(agent, at)?;
        self.writ.issue(&who, scope.task, &scope_intents(scope), ttl(ttl_s), AUDIENCE).ok().map(Grant::from)
    }
    fn delegate(
        &mut self,
        parent: &str,
        holder: &str,
        to: &str,
        scope: Scope<'_>,
        ttl_s: u64,
        at: u64,
    ) -> Option<Grant> {
        let (holder, to) = (self.attested(holder, at)?, self.attested(to, at)?);
        self.writ.delegate(parent, &holder, &to, &scope_intents(scope), ttl(ttl_s)).ok().map(Grant::from)
    }
    fn present(&mut self, token: &str, presenter: &str, ask: Ask<'_>, at: u64) -> Presented {
        let Some(who) = self.attested(presenter, at) else { return Presented::Refused };
        match self.writ.present(token, &who, &ask.intent(), AUDIENCE) {
            Ok(d) if d.allow => Presented::Allowed,
            Ok(_) => Presented::Denied,
            Err(_) => Presented::Refused,
        }
    }
    fn end_task(&mut self, id: &str, at: u64) {
        self.writ.set_time(Some(EPOCH + at));
        let _ = self.writ.end_task(id);
    }
    fn cut_off(&mut self, agent: &str, restore: bool, at: u64) {
        self.writ.set_time(Some(EPOCH + at));
        let _ = self.writ.cut_off(agent);
        if restore {
            let _ = self.writ.restore(agent);
        }
    }
    fn reset(&mut self) {
        match Component::on(self.writ.fork(), self.pack.clone(), self.svids.clone()) {
            Ok(fresh) => *self = fresh,
            Err(_) => self.broken = true,
        }
    }
    fn fork(&self) -> Result<Box<dyn Decider>, String> {
        // Shares the compiled component and the CAs; its own clock, instances and state.
        let on = Component::on(self.writ.fork(), self.pack.clone(), self.svids.clone())?;
        Ok(Box::new(on))
    }
}

/// Decisions made and time spent deciding, shared by a [`Counting`] decider and its forks.
#[derive(Debug, Clone, Default)]
pub struct Stats(std::sync::Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>);

impl Stats {
    /// (decisions, seconds spent in the deciders, summed over threads).
    pub fn totals(&self) -> (u64, f64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.0.0.load(Relaxed), self.0.1.load(Relaxed) as f64 / 1e9)
    }
}

/// A decider that counts its decisions and times them (for `writ-sim bench`).
pub struct Counting {
    inner: Box<dyn Decider>,
    stats: Stats,
}

impl Counting {
    pub fn new(inner: Box<dyn Decider>) -> (Counting, Stats) {
        let stats = Stats::default();
        (Counting { inner, stats: stats.clone() }, stats)
    }
}

impl Counting {
    fn timed<T>(&mut self, f: impl FnOnce(&mut dyn Decider) -> T) -> T {
        use std::sync::atomic::Ordering::Relaxed;
        let start = std::time::Instant::now();
        let out = f(self.inner.as_mut());
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.stats.0.0.fetch_add(1, Relaxed);
        self.stats.0.1.fetch_add(ns, Relaxed);
        out
    }
}

impl Decider for Counting {
    fn open_task(&mut self, opener: &str, id: &str, members: &[String], deadline: u64, at: u64) -> bool {
        self.inner.open_task(opener, id, members, deadline, at)
    }
    fn issue(&mut self, agent: &str, scope: Scope<'_>, ttl_s: u64, at: u64) -> Option<Grant> {
        self.timed(|d| d.issue(agent, scope, ttl_s, at))
    }
    fn delegate(
        &mut self,
        parent: &str,
        holder: &str,
        to: &str,
        scope: Scope<'_>,
        ttl_s: u64,
        at: u64,
    ) -> Option<Grant> {
        self.timed(|d| d.delegate(parent, holder, to, scope, ttl_s, at))
    }
    fn present(&mut self, token: &str, presenter: &str, ask: Ask<'_>, at: u64) -> Presented {
        self.timed(|d| d.present(token, presenter, ask, at))
    }
    fn end_task(&mut self, id: &str, at: u64) {
        self.inner.end_task(id, at);
    }
    fn cut_off(&mut self, agent: &str, restore: bool, at: u64) {
        self.inner.cut_off(agent, restore, at);
    }
    fn reset(&mut self) {
        self.inner.reset();
    }
    fn fork(&self) -> Result<Box<dyn Decider>, String> {
        Ok(Box::new(Counting { inner: self.inner.fork()?, stats: self.stats.clone() }))
    }
}
