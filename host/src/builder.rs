//! Configuring and starting a [`Writ`]: the wasmtime engine (pooling allocator, epoch
//! interruption), the compiled component (from the on-disk cache when possible), the linker
//! with the world's imports, and the shared host state.

use crate::audit::AuditSink;
use crate::bindings::{PolicyModule, PolicyModulePre};
use crate::cache;
use crate::crypto::{HostCrypto, IssuerKey};
use crate::imports::{HostState, SYSTEM_TIME, Shared};
use crate::pool::{Compiled, EPOCH_TICK, runtime_err};
use crate::state::{StateLocation, StateStore};
use crate::writ::Writ;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use writ_types::Error;

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
    state: StateChoice,
}

/// Where a built `Writ` keeps grants and revocations.
enum StateChoice {
    /// Opened at build.
    Location(StateLocation),
    /// Given, possibly shared with other `Writ`s.
    Store(Arc<dyn StateStore>),
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
            state: StateChoice::Location(StateLocation::Memory),
        }
    }
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
    /// Where audit events go (default: discarded, and the component builds none).
    pub fn audit(mut self, sink: AuditSink) -> Self {
        self.audit = sink;
        self
    }
    /// The issuer signing key (default: a fresh Ed25519 key).
    pub fn issuer(mut self, key: IssuerKey) -> Self {
        self.issuer = Some(key);
        self
    }
    /// Keep grants and revocations in this state location (a directory several processes
    /// share, or memory). Default: memory. See [`crate::state`].
    pub fn state(mut self, location: StateLocation) -> Self {
        self.state = StateChoice::Location(location);
        self
    }
    /// Keep grants and revocations in this store (shared by every `Writ` given it).
    pub fn state_store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.state = StateChoice::Store(store);
        self
    }
    /// Start with the clock fixed at `unix_secs` instead of the system clock.
    pub fn time(mut self, unix_secs: u64) -> Self {
        self.time = Some(unix_secs);
        self
    }

    pub fn build(self) -> Result<Writ, Error> {
        let n = self.max_instances;
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(n)
            .total_core_instances(n * 8)
            .max_core_instances_per_component(16)
            .total_memories(n * 2)
            .max_memories_per_component(2)
            .total_tables(n * 8)
            .max_tables_per_component(8)
            .max_memory_size(self.memory_limit);
        let mut config = wasmtime::Config::new();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        // The per-call CPU bound: wasm checks the epoch at function entries and loop headers.
        config.epoch_interruption(true);
        // For profiling only: `WRIT_PERFMAP=1` writes /tmp/perf-<pid>.map so `perf report` names
        // the component's functions (see BENCHMARKS.md).
        if std::env::var_os("WRIT_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
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
        let state: Arc<dyn StateStore> = match self.state {
            StateChoice::Store(store) => store,
            StateChoice::Location(location) => Arc::from(location.open()?),
        };
        let shared = Arc::new(Shared::new(
            Arc::new(HostCrypto::new(issuer)),
            self.audit,
            state,
            self.time.unwrap_or(SYSTEM_TIME),
        ));
        // Published before the first credential, so every process on this state verifies it.
        shared.publish_signing_key()?;
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
        Ok(Writ::from_parts(compiled, shared))
    }
}
