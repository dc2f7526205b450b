//! Who decides intents in the Writ design: the real component through `writ-host` (default)
//! or the native `writ-core` crate — the same rules either way, under the simulated clock.

use writ_host::pack::Pack;

/// Unix time of simulated second 0.
pub const EPOCH: u64 = 1_800_000_000;

/// Who opens the simulated tasks in the Writ design: the shipped pack's broker (a pack must
/// let it `open_task` for its tasks to have records; otherwise in-task policies deny).
pub const OPENER: &str = "spiffe://acme.example/agent/broker";

/// Decides one intent of an agent at simulated time `at`.
pub trait Decider: Send {
    fn allow(&mut self, agent: &str, action: &str, resource: &str, task: &str, context: &str, at: u64) -> bool;
    /// Task `id` starts at `at` with `members`: opened by [`OPENER`] (for a week) unless it is
    /// open already (a workflow's fixed task id names one task its instances share). A task
    /// policy does not let open stays unopened.
    fn open_task(&mut self, id: &str, members: &[String], at: u64);
    /// An independent decider with the same rules for another thread (its own clock).
    fn fork(&self) -> Result<Box<dyn Decider>, String>;
}

/// The identity attestation would give the agent (its SVID outlives the simulation).
fn identity(agent: &str) -> writ_core::Identity {
    let td = agent.trim_start_matches("spiffe://").split('/').next().unwrap_or("").to_string();
    writ_core::Identity {
        spiffe_id: agent.into(),
        trust_domain: td,
        expires_at: EPOCH + 10 * 365 * 86_400,
        thumbprint: String::new(),
        proof: writ_core::Proof::X509Svid,
        claims: Default::default(),
    }
}

/// `writ-core` natively, with the shipped policy pack, deciding against its own ledger.
pub struct Native {
    engine: writ_core::Writ,
    ledger: writ_core::MemoryLedger,
    crypto: writ_core::crypto::RustCrypto,
    /// The agents' identities, built once each.
    identities: std::collections::HashMap<String, writ_core::Identity>,
    /// The intent being decided, its strings reused from call to call.
    scratch: writ_core::Intent,
    pack: Pack,
}

impl Native {
    /// With the shipped policy pack.
    pub fn new() -> Result<Native, String> {
        Native::with_pack(Pack::shipped())
    }

    pub fn with_pack(pack: Pack) -> Result<Native, String> {
        let mut engine = writ_core::Writ::default();
        engine
            .set_policies(&pack.policies, pack.schema.as_deref(), pack.entities.as_deref())
            .map_err(|e| format!("policies: {e}"))?;
        let scratch = writ_core::Intent {
            action: String::new(),
            resource: String::new(),
            task_id: String::new(),
            context: String::new(),
            input: String::new(),
        };
        Ok(Native {
            engine,
            ledger: writ_core::MemoryLedger::new(),
            crypto: writ_core::crypto::RustCrypto::new(),
            identities: std::collections::HashMap::new(),
            scratch,
            pack,
        })
    }
}

/// Overwrite `s` with `v`, keeping its allocation.
fn set(s: &mut String, v: &str) {
    s.clear();
    s.push_str(v);
}

impl Decider for Native {
    fn allow(&mut self, agent: &str, action: &str, resource: &str, task: &str, context: &str, at: u64) -> bool {
        let what = &mut self.scratch;
        set(&mut what.action, action);
        set(&mut what.resource, resource);
        set(&mut what.task_id, task);
        set(&mut what.context, context);
        if !self.identities.contains_key(agent) {
            self.identities.insert(agent.to_string(), identity(agent));
        }
        match self.identities.get(agent) {
            Some(who) => self.engine.decide(who, what, EPOCH + at, 0, &self.ledger, &self.crypto).allow,
            None => false,
        }
    }
    fn open_task(&mut self, id: &str, members: &[String], at: u64) {
        let now = EPOCH + at;
        if writ_core::Ledger::task(&self.ledger, id, now).is_some_and(|t| t.is_open(now)) {
            return;
        }
        let env = writ_core::Env { now, crypto: &self.crypto, ledger: &self.ledger, entropy: [0; 16] };
        let deadline = now + writ_core::ledger::MAX_TASK_SECS;
        // Refused by policy (or already remembered): the task stays unopened.
        let _ = self.engine.open_task(&identity(OPENER), id, members, "simulated task", deadline, &env);
    }
    fn fork(&self) -> Result<Box<dyn Decider>, String> {
        Native::with_pack(self.pack.clone()).map(|d| Box::new(d) as _)
    }
}

/// The Writ component through `writ-host`.
pub struct Component {
    writ: writ_host::Writ,
    pack: Pack,
    /// The broker's SVID (its CA is trusted), attested when it first opens a task.
    broker: std::sync::Arc<crate::broker_svid::BrokerSvid>,
    opener: Option<writ_host::Attested>,
    /// The agents, as the simulator asserts them (proof `asserted`: it has no SVIDs for them),
    /// each once: the component keeps a handle for each.
    agents: std::collections::HashMap<String, writ_host::Attested>,
}

impl Component {
    /// With the shipped policy pack.
    pub fn new() -> Result<Component, String> {
        Component::with_pack(Pack::shipped())
    }

    pub fn with_pack(pack: Pack) -> Result<Component, String> {
        let writ = writ_host::Writ::builder().time(EPOCH).build().map_err(|e| e.to_string())?;
        let broker = std::sync::Arc::new(crate::broker_svid::BrokerSvid::new(OPENER, EPOCH)?);
        Component::on(writ, pack, broker)
    }

    fn on(
        writ: writ_host::Writ,
        pack: Pack,
        broker: std::sync::Arc<crate::broker_svid::BrokerSvid>,
    ) -> Result<Component, String> {
        writ.set_policies(&pack.policies, pack.schema.as_deref(), pack.entities.as_deref())
            .map_err(|e| format!("policies: {e}"))?;
        writ.set_bundle(&broker.trust_domain, &broker.bundle).map_err(|e| format!("the broker's bundle: {e}"))?;
        Ok(Component { writ, pack, broker, opener: None, agents: std::collections::HashMap::new() })
    }

    fn agent(&mut self, agent: &str) -> Option<writ_host::Attested> {
        if let Some(a) = self.agents.get(agent) {
            return Some(a.clone());
        }
        let who = identity(agent);
        let a = self.writ.assert_identity(&who.spiffe_id, who.expires_at, "writ-sim").ok()?;
        self.agents.insert(agent.to_string(), a.clone());
        Some(a)
    }
}

impl Decider for Component {
    fn allow(&mut self, agent: &str, action: &str, resource: &str, task: &str, context: &str, at: u64) -> bool {
        let what = writ_host::Intent {
            action: action.into(),
            resource: resource.into(),
            task_id: task.into(),
            context: context.into(),
            input: String::new(),
        };
        self.writ.set_time(Some(EPOCH + at));
        // A runtime failure is a deny: closed by default.
        self.agent(agent).is_some_and(|who| self.writ.check(&who, &what).is_ok_and(|d| d.allow))
    }
    fn open_task(&mut self, id: &str, members: &[String], at: u64) {
        let now = EPOCH + at;
        self.writ.set_time(Some(now));
        if self.writ.task(id).ok().flatten().is_some_and(|t| t.is_open(now)) {
            return;
        }
        if self.opener.is_none() {
            self.opener = self.writ.attest_x509(&self.broker.chain).ok();
        }
        let Some(opener) = &self.opener else { return };
        let deadline = now + writ_core::ledger::MAX_TASK_SECS;
        // Refused by policy (or already remembered): the task stays unopened.
        let _ = self.writ.open_task(opener, id, members, "simulated task", deadline);
    }
    fn fork(&self) -> Result<Box<dyn Decider>, String> {
        // Shares the compiled component; its own clock, instances and state.
        let on = Component::on(self.writ.fork(), self.pack.clone(), self.broker.clone())?;
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

impl Decider for Counting {
    fn allow(&mut self, agent: &str, action: &str, resource: &str, task: &str, context: &str, at: u64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let start = std::time::Instant::now();
        let allow = self.inner.allow(agent, action, resource, task, context, at);
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.stats.0.0.fetch_add(1, Relaxed);
        self.stats.0.1.fetch_add(ns, Relaxed);
        allow
    }
    fn open_task(&mut self, id: &str, members: &[String], at: u64) {
        self.inner.open_task(id, members, at);
    }
    fn fork(&self) -> Result<Box<dyn Decider>, String> {
        Ok(Box::new(Counting { inner: self.inner.fork()?, stats: self.stats.clone() }))
    }
}
