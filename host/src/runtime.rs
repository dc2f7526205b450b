//! Engine, instances and the call path.
//!
//! One `Writ` owns a wasmtime `Engine` (pooling allocator), the compiled component (from the
//! on-disk cache when possible), an `InstancePre`, and a pool of ready instances. Control
//! state (bundles, leeway, crypto provider) is kept as a log with a generation number: an
//! instance whose generation is stale is discarded, and fresh instances replay the log. A
//! trap discards its instance; the next call gets a fresh one.

use crate::audit::{AuditEvent, AuditSink};
use crate::bindings::exports::writ::agent::control::CryptoProvider as WitProvider;
use crate::bindings::writ::agent;
use crate::bindings::{PolicyModule, PolicyModulePre};
use crate::cache::{self, Source};
use crate::crypto::{HostCrypto, IssuerKey};
use crate::ledger::LedgerLog;
use crate::types::{Decision, Error, Evaluation, Grant, Identity, Intent};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store, StoreLimits,
    StoreLimitsBuilder, Trap,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Which implementation checks signatures inside the component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CryptoProvider {
    /// The host's `crypto` import (`ring`, native). Default.
    #[default]
    Host,
    /// Pure Rust (RustCrypto) compiled into the component.
    Builtin,
}

impl CryptoProvider {
    fn to_wit(self) -> WitProvider {
        match self {
            CryptoProvider::Host => WitProvider::Host,
            CryptoProvider::Builtin => WitProvider::Builtin,
        }
    }
}

const SYSTEM_TIME: u64 = u64::MAX;

/// What all instances of one `Writ` share.
struct Shared {
    /// Unix seconds, or `SYSTEM_TIME` for the real clock.
    clock: AtomicU64,
    crypto: Arc<HostCrypto>,
    audit: AuditSink,
    ledger: Arc<LedgerLog>,
}

/// The time a clock setting stands for: the system clock or the fixed time.
fn clock_now(setting: u64) -> u64 {
    match setting {
        SYSTEM_TIME => {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
        }
        t => t,
    }
}

impl Shared {
    fn now(&self) -> u64 {
        clock_now(self.clock.load(Ordering::Relaxed))
    }
}

/// A store's data: an empty WASI context (no files, env, sockets), limits, and the shared
/// host state behind the world's imports.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limiter,
    shared: Arc<Shared>,
}

/// The instance's memory and table limits, remembering whether a growth was refused (so a
/// trap that follows is reported as the limit it is).
struct Limiter {
    inner: StoreLimits,
    refused: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let ok = self.inner.memory_growing(current, desired, maximum)?;
        self.refused |= !ok;
        Ok(ok)
    }
    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let ok = self.inner.table_growing(current, desired, maximum)?;
        self.refused |= !ok;
        Ok(ok)
    }
    fn instances(&self) -> usize {
        self.inner.instances()
    }
    fn tables(&self) -> usize {
        self.inner.tables()
    }
    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl agent::types::Host for HostState {}

impl agent::clock::Host for HostState {
    fn now(&mut self) -> u64 {
        self.shared.now()
    }
}

impl agent::crypto::Host for HostState {
    fn verify(
        &mut self,
        alg: agent::crypto::Algorithm,
        public_key: Vec<u8>,
        message: Vec<u8>,
        signature: Vec<u8>,
    ) -> bool {
        self.shared.crypto.verify(alg, &public_key, &message, &signature)
    }
    fn signing_key(&mut self) -> Result<agent::crypto::IssuerKey, String> {
        let (kid, alg) = self.shared.crypto.signing_key();
        Ok(agent::crypto::IssuerKey { kid, alg })
    }
    fn sign(&mut self, kid: String, message: Vec<u8>) -> Result<Vec<u8>, String> {
        self.shared.crypto.sign(&kid, &message)
    }
    fn public_keys(&mut self) -> String {
        self.shared.crypto.public_keys(self.shared.now())
    }
}

impl HostState {
    /// A ledger file write failed: the entry is in force in memory, but losing it on disk must
    /// not pass silently.
    fn ledger_failed(&self, e: Result<(), String>) {
        if let Err(e) = e {
            self.shared.audit.emit(AuditEvent {
                kind: "ledger".into(),
                time: self.shared.now(),
                spiffe_id: None,
                task_id: None,
                action: None,
                resource: None,
                allow: false,
                reasons: vec!["write-failed".into()],
                jti: None,
                act_chain: Vec::new(),
                detail: Some(e),
            });
        }
    }
}

impl agent::ledger::Host for HostState {
    fn append(&mut self, data: String, until: u64) {
        let r = self.shared.ledger.append(data, until, self.shared.now());
        self.ledger_failed(r);
    }
    fn since(&mut self, seq: u64) -> Vec<agent::ledger::Entry> {
        self.shared.ledger.since(seq).into_iter().map(|(seq, data)| agent::ledger::Entry { seq, data }).collect()
    }
    fn register(&mut self, data: String, until: u64, keys: Vec<String>) {
        let r = self.shared.ledger.register(data, until, keys, self.shared.now());
        self.ledger_failed(r);
    }
    fn find(&mut self, key: String) -> Vec<String> {
        self.shared.ledger.find(&key, self.shared.now())
    }
}

impl agent::audit::Host for HostState {
    fn emit(&mut self, e: agent::audit::Event) {
        self.shared.audit.emit(AuditEvent {
            kind: e.kind,
            time: e.time,
            spiffe_id: e.spiffe_id,
            task_id: e.task_id,
            action: e.action,
            resource: e.resource,
            allow: e.allow,
            reasons: e.reasons,
            jti: e.jti,
            act_chain: e.act_chain,
            detail: e.detail,
        });
    }
}

/// Control calls replayed into every fresh instance.
#[derive(Default)]
struct ControlLog {
    generation: u64,
    bundles: BTreeMap<String, Vec<u8>>,
    /// Policies, schema, entities.
    policies: Option<(String, Option<String>, Option<String>)>,
    leeway: u32,
    ttl_cap: Option<u32>,
    provider: CryptoProvider,
    issuer_name: Option<String>,
    max_delegation_depth: Option<u32>,
    decision_memo: Option<bool>,
}

struct Instance {
    store: Store<HostState>,
    module: PolicyModule,
    generation: u64,
}

/// The compiled component and how to instantiate it; shared by forks.
struct Compiled {
    engine: Engine,
    pre: PolicyModulePre<HostState>,
    max_idle: usize,
    memory_limit: usize,
    /// Per call: the CPU budget, and the same in epoch ticks (at least the budget).
    cpu_limit: Duration,
    deadline_ticks: u64,
    source: Source,
    /// Stops the epoch ticker when the last handle is dropped.
    ticker: Arc<AtomicBool>,
}

impl Drop for Compiled {
    fn drop(&mut self) {
        self.ticker.store(true, Ordering::Relaxed);
    }
}

/// How often the epoch advances: the granularity of the per-call CPU bound.
const EPOCH_TICK: Duration = Duration::from_millis(1);

struct Inner {
    compiled: Arc<Compiled>,
    shared: Arc<Shared>,
    pool: Mutex<Vec<Instance>>,
    control: Mutex<ControlLog>,
}

/// A handle to the Writ component. Cheap to clone; safe to share between threads (each
/// concurrent call runs on its own instance).
#[derive(Clone)]
pub struct Writ {
    inner: Arc<Inner>,
}

/// Configures a [`Writ`].
pub struct Builder {
    component: Option<Vec<u8>>,
    cache_dir: Option<PathBuf>,
    use_cache: bool,
    max_instances: u32,
    memory_limit: usize,
    cpu_limit: Duration,
    audit: AuditSink,
    issuer: Option<IssuerKey>,
    time: Option<u64>,
    ledger_file: Option<PathBuf>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            component: None,
            cache_dir: None,
            use_cache: true,
            max_instances: 32,
            memory_limit: 64 << 20,
            cpu_limit: Duration::from_secs(2),
            audit: AuditSink::Discard,
            issuer: None,
            time: None,
            ledger_file: None,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A guest trap (or any failure of a call into the guest).
fn trap(e: wasmtime::Error) -> Error {
    Error::Trap(format!("{e:#}"))
}

fn runtime_err(e: impl std::fmt::Display) -> Error {
    Error::Runtime(format!("{e:#}"))
}

impl Builder {
    /// Run this component instead of the embedded one.
    pub fn component(mut self, wasm: Vec<u8>) -> Self {
        self.component = Some(wasm);
        self
    }
    /// Where compiled components are cached (default: see `WRIT_CACHE_DIR`).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }
    /// Compile in memory every time; never touch the disk.
    pub fn no_cache(mut self) -> Self {
        self.use_cache = false;
        self
    }
    /// Instances the pooling allocator can hold at once (also the concurrency bound).
    pub fn max_instances(mut self, n: u32) -> Self {
        self.max_instances = n.max(1);
        self
    }
    /// Linear memory an instance may grow to, bytes (default 64 MiB). A call that needs more
    /// fails with [`Error::Limit`] and its instance is replaced.
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }
    /// CPU time one call may run inside the component (default 2 s; measured in 1 ms epoch
    /// ticks, so a call gets at least this). A call that runs longer is interrupted with
    /// [`Error::Limit`] and its instance is replaced.
    pub fn cpu_limit(mut self, limit: Duration) -> Self {
        self.cpu_limit = limit.max(EPOCH_TICK);
        self
    }
    pub fn audit(mut self, sink: AuditSink) -> Self {
        self.audit = sink;
        self
    }
    /// The issuer signing key (default: a fresh Ed25519 key).
    pub fn issuer(mut self, key: IssuerKey) -> Self {
        self.issuer = Some(key);
        self
    }
    /// Keep the credential ledger (grants, ended tasks, cut-off agents) in this JSON-lines
    /// file as well as in memory, so separate processes share revocations. Default: memory.
    pub fn ledger_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ledger_file = Some(path.into());
        self
    }
    /// Start with the clock fixed at `unix_secs` instead of the system clock.
    pub fn time(mut self, unix_secs: u64) -> Self {
        self.time = Some(unix_secs);
        self
    }

    pub fn build(self) -> Result<Writ, Error> {
        let n = self.max_instances;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n * 8)
            .max_core_instances_per_component(16)
            .total_memories(n * 2)
            .max_memories_per_component(2)
            .total_tables(n * 8)
            .max_tables_per_component(8)
            .max_memory_size(self.memory_limit);
        let mut config = Config::new();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // The per-call CPU bound: wasm checks the epoch at function entries and loop headers.
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(runtime_err)?;
        let ticker = Arc::new(AtomicBool::new(false));
        {
            let (engine, stop) = (engine.clone(), ticker.clone());
            std::thread::Builder::new()
                .name("writ-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(runtime_err)?;
        }
        let ticks =
            u64::try_from(self.cpu_limit.as_micros().div_ceil(EPOCH_TICK.as_micros())).unwrap_or(u64::MAX / 2) + 1;

        let wasm = self.component.as_deref().unwrap_or(crate::COMPONENT);
        let dir = if self.use_cache { self.cache_dir.or_else(cache::default_dir) } else { None };
        let (component, source) = cache::load(&engine, wasm, dir.as_deref()).map_err(runtime_err)?;

        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(runtime_err)?;
        PolicyModule::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s).map_err(runtime_err)?;
        let pre =
            PolicyModulePre::new(linker.instantiate_pre(&component).map_err(runtime_err)?).map_err(runtime_err)?;

        let issuer = match self.issuer {
            Some(k) => k,
            None => IssuerKey::generate().map_err(Error::Runtime)?,
        };
        let clock = AtomicU64::new(self.time.unwrap_or(SYSTEM_TIME));
        let ledger = match &self.ledger_file {
            None => LedgerLog::memory(),
            Some(path) => LedgerLog::open(path, clock_now(clock.load(Ordering::Relaxed))).map_err(Error::Runtime)?,
        };
        let shared = Arc::new(Shared {
            clock,
            crypto: Arc::new(HostCrypto::new(issuer)),
            audit: self.audit,
            ledger: Arc::new(ledger),
        });
        let compiled = Arc::new(Compiled {
            engine,
            pre,
            max_idle: n as usize,
            memory_limit: self.memory_limit,
            cpu_limit: self.cpu_limit,
            deadline_ticks: ticks,
            source,
            ticker,
        });
        Ok(Writ::with(compiled, shared))
    }
}

impl Writ {
    pub fn builder() -> Builder {
        Builder::default()
    }

    fn with(compiled: Arc<Compiled>, shared: Arc<Shared>) -> Writ {
        Writ {
            inner: Arc::new(Inner {
                compiled,
                shared,
                pool: Mutex::new(Vec::new()),
                control: Mutex::new(ControlLog::default()),
            }),
        }
    }

    /// A new `Writ` that shares this one's compiled component, issuer key and audit sink,
    /// but has its own control state (bundles, settings), instances, credential ledger and
    /// clock (starting at this one's setting). Cheap: nothing is compiled.
    pub fn fork(&self) -> Writ {
        let shared = Arc::new(Shared {
            clock: AtomicU64::new(self.inner.shared.clock.load(Ordering::Relaxed)),
            crypto: self.inner.shared.crypto.clone(),
            audit: self.inner.shared.audit.clone(),
            ledger: Arc::new(LedgerLog::memory()),
        });
        Writ::with(self.inner.compiled.clone(), shared)
    }

    /// Whether the compiled component came from the on-disk cache.
    pub fn cache_source(&self) -> Source {
        self.inner.compiled.source
    }

    /// Fix the clock at `unix_secs`, or return to the system clock with `None`.
    pub fn set_time(&self, unix_secs: Option<u64>) {
        let t = unix_secs.map_or(SYSTEM_TIME, |t| t.min(SYSTEM_TIME - 1));
        self.inner.shared.clock.store(t, Ordering::Relaxed);
    }

    /// The time the component sees now.
    pub fn now(&self) -> u64 {
        self.inner.shared.now()
    }

    /// Instances ready in the pool (idle between calls).
    pub fn idle_instances(&self) -> usize {
        lock(&self.inner.pool).len()
    }

    /// A new instance straight from the `InstancePre`, with no control state replayed
    /// (what instantiation costs; used by benchmarks).
    pub fn instantiate_bare(&self) -> Result<(), Error> {
        self.new_instance(0).map(drop)
    }

    fn new_instance(&self, generation: u64) -> Result<Instance, Error> {
        let state = HostState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: Limiter {
                inner: StoreLimitsBuilder::new()
                    .memory_size(self.inner.compiled.memory_limit)
                    .instances(16)
                    .trap_on_grow_failure(false)
                    .build(),
                refused: false,
            },
            shared: self.inner.shared.clone(),
        };
        let mut store = Store::new(&self.inner.compiled.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(self.inner.compiled.deadline_ticks);
        let module = self.inner.compiled.pre.instantiate(&mut store).map_err(runtime_err)?;
        Ok(Instance { store, module, generation })
    }

    /// A fresh instance with the control log replayed into it.
    fn replayed_instance(&self, log: &ControlLog) -> Result<Instance, Error> {
        let mut inst = self.new_instance(log.generation)?;
        let provider = log.provider.to_wit();
        let audit = !matches!(self.inner.shared.audit, AuditSink::Discard);
        self.guarded(&mut inst, |i| i.module.writ_agent_control().call_set_crypto_provider(&mut i.store, provider))?;
        self.guarded(&mut inst, |i| i.module.writ_agent_control().call_set_leeway(&mut i.store, log.leeway))?;
        if let Some(cap) = log.ttl_cap {
            self.guarded(&mut inst, |i| i.module.writ_agent_control().call_set_ttl_cap(&mut i.store, cap))?;
        }
        if let Some(name) = &log.issuer_name {
            self.guarded(&mut inst, |i| i.module.writ_agent_control().call_set_issuer(&mut i.store, name))?;
        }
        if let Some(depth) = log.max_delegation_depth {
            self.guarded(&mut inst, |i| {
                i.module.writ_agent_control().call_set_max_delegation_depth(&mut i.store, depth)
            })?;
        }
        if let Some(on) = log.decision_memo {
            self.guarded(&mut inst, |i| i.module.writ_agent_control().call_set_decision_memo(&mut i.store, on))?;
        }
        self.guarded(&mut inst, |i| i.module.writ_agent_control().call_set_audit(&mut i.store, audit))?;
        for (td, bytes) in &log.bundles {
            self.guarded(&mut inst, |i| i.module.writ_agent_control().call_set_bundle(&mut i.store, td, bytes))??;
        }
        if let Some((p, s, e)) = &log.policies {
            self.guarded(&mut inst, |i| {
                i.module.writ_agent_control().call_set_policies(&mut i.store, p, s.as_deref(), e.as_deref())
            })??;
        }
        Ok(inst)
    }

    /// One call into `inst` under the per-call CPU budget; a failure is classified: the CPU
    /// budget, the memory limit or the wasm stack → [`Error::Limit`], anything else
    /// [`Error::Trap`]. Either way the caller drops the instance.
    fn guarded<R>(
        &self,
        inst: &mut Instance,
        f: impl FnOnce(&mut Instance) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        inst.store.set_epoch_deadline(self.inner.compiled.deadline_ticks);
        inst.store.data_mut().limits.refused = false;
        f(inst).map_err(|e| {
            let refused = inst.store.data().limits.refused;
            match e.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => Error::Limit(format!(
                    "the call ran past its CPU budget of {} ms",
                    self.inner.compiled.cpu_limit.as_millis()
                )),
                Some(Trap::StackOverflow) => Error::Limit("the call exhausted the component's stack".into()),
                _ if refused => Error::Limit(format!(
                    "the call needed more than the instance's memory limit of {} bytes",
                    self.inner.compiled.memory_limit
                )),
                _ => trap(e),
            }
        })
    }

    /// Run `f` on an up-to-date instance. A trap discards the instance.
    fn with_instance<R>(&self, f: impl FnOnce(&mut Instance) -> wasmtime::Result<R>) -> Result<R, Error> {
        let generation = {
            let mut control = lock(&self.inner.control);
            if self.inner.shared.crypto.retire_due(|| self.now()) {
                control.generation += 1;
            }
            control.generation
        };
        let pooled = lock(&self.inner.pool).pop().filter(|i| i.generation == generation);
        let mut inst = match pooled {
            Some(i) => i,
            None => {
                let log = lock(&self.inner.control);
                self.replayed_instance(&log)?
            }
        };
        let r = self.guarded(&mut inst, f)?;
        let mut pool = lock(&self.inner.pool);
        if pool.len() < self.inner.compiled.max_idle {
            pool.push(inst);
        }
        Ok(r)
    }

    /// Apply a control change: run it on an up-to-date instance, and only if it succeeds
    /// record it (so a bad bundle leaves the previous state in force everywhere).
    fn control<R>(
        &self,
        call: impl FnOnce(&mut Instance) -> wasmtime::Result<Result<R, Error>>,
        record: impl FnOnce(&mut ControlLog),
    ) -> Result<R, Error> {
        let mut log = lock(&self.inner.control);
        let mut inst = self.replayed_instance(&log)?;
        let result = self.guarded(&mut inst, call)??;
        record(&mut log);
        log.generation += 1;
        inst.generation = log.generation;
        let mut pool = lock(&self.inner.pool);
        pool.clear();
        pool.push(inst);
        Ok(result)
    }

    /// Install (replace) the trust bundle of `trust_domain`: PEM/DER CA certificates or a
    /// SPIFFE bundle (JWKS).
    pub fn set_bundle(&self, trust_domain: &str, bundle: &[u8]) -> Result<(), Error> {
        let td = trust_domain.to_string();
        self.control(
            |i| {
                Ok(i.module
                    .writ_agent_control()
                    .call_set_bundle(&mut i.store, trust_domain, bundle)?
                    .map_err(Error::from))
            },
            |log| {
                log.bundles.insert(td, bundle.to_vec());
            },
        )
    }

    /// Forget a trust domain. Returns whether it had a bundle.
    pub fn remove_bundle(&self, trust_domain: &str) -> Result<bool, Error> {
        self.control(
            |i| Ok(Ok(i.module.writ_agent_control().call_remove_bundle(&mut i.store, trust_domain)?)),
            |log| {
                log.bundles.remove(trust_domain);
            },
        )
    }

    /// Clock skew allowed on JWT-SVID `exp`/`nbf` (default 0).
    pub fn set_leeway(&self, secs: u32) -> Result<(), Error> {
        self.control(
            |i| Ok(Ok(i.module.writ_agent_control().call_set_leeway(&mut i.store, secs)?)),
            |log| log.leeway = secs,
        )
    }

    /// The lifetime cap, seconds: a decision's `max_ttl_secs` when no determining policy has
    /// a `@ttl`, and the ceiling of any `@ttl` (default 3600).
    pub fn set_ttl_cap(&self, secs: u32) -> Result<(), Error> {
        self.control(
            |i| Ok(Ok(i.module.writ_agent_control().call_set_ttl_cap(&mut i.store, secs)?)),
            |log| log.ttl_cap = Some(secs),
        )
    }

    /// Whether a request identical to one already decided under the loaded policies is
    /// answered from memory (default on): the same caller, proof, action, resource, context
    /// text, and the same values of the Writ context keys some policy reads.
    pub fn set_decision_memo(&self, on: bool) -> Result<(), Error> {
        self.control(
            |i| Ok(Ok(i.module.writ_agent_control().call_set_decision_memo(&mut i.store, on)?)),
            |log| log.decision_memo = Some(on),
        )
    }

    /// Where signatures are checked inside the component.
    pub fn set_crypto_provider(&self, provider: CryptoProvider) -> Result<(), Error> {
        let p = provider.to_wit();
        self.control(
            |i| Ok(Ok(i.module.writ_agent_control().call_set_crypto_provider(&mut i.store, p)?)),
            |log| log.provider = provider,
        )
    }

    /// Load Cedar policies with an optional schema (Cedar or JSON syntax) and entities (Cedar
    /// entities JSON). Atomic and hot: calls already running finish on the old set, every
    /// later call sees the new one, and a bad set leaves the old one in force. Returns how
    /// many policies are loaded.
    pub fn set_policies(&self, policies: &str, schema: Option<&str>, entities: Option<&str>) -> Result<u32, Error> {
        let record = (policies.to_string(), schema.map(str::to_string), entities.map(str::to_string));
        self.control(
            |i| {
                Ok(i.module
                    .writ_agent_control()
                    .call_set_policies(&mut i.store, policies, schema, entities)?
                    .map_err(Error::from))
            },
            |log| log.policies = Some(record),
        )
    }

    /// The issuer's public keys (JWKS), as the component reports them.
    pub fn jwks(&self) -> Result<String, Error> {
        self.with_instance(|i| i.module.writ_agent_control().call_jwks(&mut i.store))
    }

    /// Attest an X.509-SVID chain, leaf first, DER.
    pub fn attest_x509(&self, chain: &[Vec<u8>]) -> Result<Identity, Error> {
        self.with_instance(|i| i.module.writ_agent_attest().call_x509_svid(&mut i.store, chain))?
            .map(Identity::from)
            .map_err(Error::from)
    }

    /// Attest a JWT-SVID for `audience`.
    pub fn attest_jwt(&self, token: &str, audience: &str) -> Result<Identity, Error> {
        self.with_instance(|i| i.module.writ_agent_attest().call_jwt_svid(&mut i.store, token, audience))?
            .map(Identity::from)
            .map_err(Error::from)
    }

    /// Authorize an intent for an identity.
    pub fn check(&self, who: &Identity, what: &Intent) -> Result<Decision, Error> {
        let (who, what) = (who.into(), what.into());
        self.with_instance(|i| i.module.writ_agent_authorize().call_check(&mut i.store, &who, &what))
            .map(Decision::from)
    }

    /// Decide a general (AuthZEN-shaped) evaluation: principal `<subject.type>::"<id>"` with
    /// the loaded entity's attributes overlaid by the subject's properties, action
    /// `Action::"<action>"`, resource likewise, context plus `action` (the action's
    /// properties). Audited; problems deny, listed in `errors`.
    pub fn evaluate(&self, request: &Evaluation) -> Result<Decision, Error> {
        let r = request.into();
        self.with_instance(|i| i.module.writ_agent_authorize().call_evaluate(&mut i.store, &r)).map(Decision::from)
    }

    /// The `iss` of credentials issued, and the only one accepted (default `writ`).
    pub fn set_issuer_name(&self, name: &str) -> Result<(), Error> {
        let n = name.to_string();
        self.control(
            |i| Ok(Ok(i.module.writ_agent_control().call_set_issuer(&mut i.store, name)?)),
            |log| log.issuer_name = Some(n),
        )
    }

    /// Delegation hops a credential may be from its original subject (default 2).
    pub fn set_max_delegation_depth(&self, depth: u32) -> Result<(), Error> {
        self.control(
            |i| Ok(Ok(i.module.writ_agent_control().call_set_max_delegation_depth(&mut i.store, depth)?)),
            |log| log.max_delegation_depth = Some(depth),
        )
    }

    /// Make `next` the issuer's signing key. The old key keeps verifying for `overlap_secs`
    /// (make it at least the TTL cap, so every credential it signed expires first).
    pub fn rotate_issuer(&self, next: IssuerKey, overlap_secs: u64) {
        let now = self.now();
        self.inner.shared.crypto.rotate(next, now.saturating_add(overlap_secs), now);
    }

    /// Issue a task credential to `who` (see the WIT `issue` interface).
    pub fn issue(
        &self,
        who: &Identity,
        task_id: &str,
        scope: &[Intent],
        ttl_secs: u32,
        audience: &str,
    ) -> Result<Grant, Error> {
        let who = who.into();
        let scope: Vec<agent::types::Intent> = scope.iter().map(Into::into).collect();
        self.with_instance(|i| {
            i.module.writ_agent_issue().call_issue(&mut i.store, &who, task_id, &scope, ttl_secs, audience)
        })?
        .map(Grant::from)
        .map_err(Error::from)
    }

    /// Delegate part of `parent` from its `holder` to `to`.
    pub fn delegate(
        &self,
        parent: &str,
        holder: &Identity,
        to: &Identity,
        scope: &[Intent],
        ttl_secs: u32,
    ) -> Result<Grant, Error> {
        let (holder, to) = (holder.into(), to.into());
        let scope: Vec<agent::types::Intent> = scope.iter().map(Into::into).collect();
        self.with_instance(|i| {
            i.module.writ_agent_issue().call_delegate(&mut i.store, parent, &holder, &to, &scope, ttl_secs)
        })?
        .map(Grant::from)
        .map_err(Error::from)
    }

    /// Present a credential for one intent at `audience`: an error for a bad, expired,
    /// revoked or stolen token, else the decision.
    pub fn present(&self, token: &str, presenter: &Identity, what: &Intent, audience: &str) -> Result<Decision, Error> {
        let (presenter, what) = (presenter.into(), what.into());
        self.with_instance(|i| {
            i.module.writ_agent_issue().call_present(&mut i.store, token, &presenter, &what, audience)
        })?
        .map(Decision::from)
        .map_err(Error::from)
    }

    /// The revocations (ended tasks, cut-off agents) recorded after sequence number `seq`, in
    /// order: `(seq, entry)`, the entry as the component wrote it (a JSON ledger event).
    /// What replicas outside this process (the proxy-wasm filter) poll to stay in step.
    pub fn revocations_since(&self, seq: u64) -> Vec<(u64, String)> {
        self.inner.shared.ledger.since(seq)
    }

    /// Revoke every grant of a task; returns how many were live.
    pub fn end_task(&self, task_id: &str) -> Result<u32, Error> {
        self.with_instance(|i| i.module.writ_agent_issue().call_end_task(&mut i.store, task_id))
    }

    /// Revoke every grant held by or delegated from an agent; returns how many were live.
    pub fn cut_off(&self, spiffe_id: &str) -> Result<u32, Error> {
        self.with_instance(|i| i.module.writ_agent_issue().call_cut_off(&mut i.store, spiffe_id))
    }
}
