//! The compiled component, its pool of ready instances, and the call path.
//!
//! Instances are checked out for one call and returned. Control settings are kept as one
//! list with a generation number ([`Settings`]): an instance of an older generation is
//! discarded, and a fresh one replays the list. Every call runs under a CPU budget (epoch
//! interruption) and a memory limit; a call that breaks either, or traps, loses its instance
//! and the next call gets a fresh one.

use crate::audit::AuditSink;
use crate::bindings::{PolicyModule, PolicyModulePre};
use crate::cache::Source;
use crate::imports::{HostState, Shared};
use crate::settings::{Applied, Setting, Settings};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use wasmtime::{Engine, Store, Trap};
use writ_types::Error;

/// How often the epoch advances: the granularity of the per-call CPU bound.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Further tries of an instantiation the kernel refused to seal the memory image for.
const MEMFD_SEAL_RETRIES: usize = 3;

/// The compiled component and how to instantiate it; shared by forks.
pub(crate) struct Compiled {
    pub(crate) engine: Engine,
    pub(crate) pre: PolicyModulePre<HostState>,
    /// Idle instances kept at most.
    pub(crate) max_idle: usize,
    pub(crate) memory_limit: usize,
    /// Per call: the CPU budget, and the same in epoch ticks (at least the budget).
    pub(crate) cpu_limit: Duration,
    pub(crate) deadline_ticks: u64,
    pub(crate) source: Source,
    /// Stops the epoch ticker when the last handle is dropped.
    pub(crate) ticker: Arc<AtomicBool>,
}

impl Drop for Compiled {
    fn drop(&mut self) {
        self.ticker.store(true, Ordering::Relaxed);
    }
}

/// One instance of the component in its store.
pub(crate) struct Instance {
    pub(crate) store: Store<HostState>,
    pub(crate) module: PolicyModule,
    /// The component's handles for the identities used here.
    pub(crate) handles: crate::attested::Handles,
    generation: u64,
}

/// The instances of one `Writ`, and the settings they run with.
pub(crate) struct Pool {
    pub(crate) compiled: Arc<Compiled>,
    pub(crate) shared: Arc<Shared>,
    /// Boxed: an instance holds every export's function (over a kilobyte), moved out of and
    /// back into this list on each call (boxing took the call floor's `memmove` from 8 % to
    /// 1 %; clippy's size threshold for this lint is 4 KiB).
    #[allow(clippy::vec_box)]
    idle: Mutex<Vec<Box<Instance>>>,
    settings: Mutex<Settings>,
    /// The chains attested under the settings in force.
    pub(crate) attestations: crate::attestations::Attestations,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn runtime_err(e: impl std::fmt::Display) -> Error {
    Error::Runtime(format!("{e:#}"))
}

impl Pool {
    pub(crate) fn new(compiled: Arc<Compiled>, shared: Arc<Shared>) -> Pool {
        Pool {
            compiled,
            shared,
            idle: Mutex::new(Vec::new()),
            settings: Mutex::new(Settings::default()),
            attestations: Default::default(),
        }
    }

    /// Instances ready between calls.
    pub(crate) fn idle(&self) -> usize {
        lock(&self.idle).len()
    }

    /// Identity handles the idle instances hold.
    pub(crate) fn idle_handles(&self) -> usize {
        lock(&self.idle).iter().map(|i| i.handle_count()).sum()
    }

    /// A new instance straight from the `InstancePre`, no settings replayed.
    pub(crate) fn new_instance(&self, generation: u64) -> Result<Box<Instance>, Error> {
        let mut tries = 0;
        loop {
            let state = HostState::new(self.shared.clone(), self.compiled.memory_limit);
            let mut store = Store::new(&self.compiled.engine, state);
            store.limiter(|s| &mut s.limits);
            store.set_epoch_deadline(self.compiled.deadline_ticks);
            match self.compiled.pre.instantiate(&mut store) {
                Ok(module) => return Ok(Box::new(Instance { store, module, handles: Default::default(), generation })),
                // The first instantiation builds the component's memory image in a sealed
                // memfd; Linux can refuse the write seal (EBUSY while it sees a page of the
                // memfd still pinned). Seen once in CI under heavy load; the exact cause was
                // not found. wasmtime does not keep the failure: a new store tries again.
                Err(e) if tries < MEMFD_SEAL_RETRIES && format!("{e:#}").contains("seals to the memfd") => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(runtime_err(e)),
            }
        }
    }

    /// A fresh instance with the settings replayed into it (audit on when there is a sink).
    fn replayed_instance(&self, settings: &Settings) -> Result<Box<Instance>, Error> {
        let mut inst = self.new_instance(settings.generation)?;
        let audit = Setting::Audit(!matches!(self.shared.audit, AuditSink::Discard));
        for setting in std::iter::once(&audit).chain(settings.replay()) {
            self.guarded(&mut inst, |i| setting.apply(&i.module, &mut i.store))??;
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
        inst.store.set_epoch_deadline(self.compiled.deadline_ticks);
        inst.store.data_mut().limits.refused = false;
        f(inst).map_err(|e| {
            let refused = inst.store.data().limits.refused;
            if let Some(state) = e.downcast_ref::<crate::state::StateError>() {
                self.shared.state_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Error::from(state.clone());
            }
            match e.downcast_ref::<Trap>() {
                Some(Trap::Interrupt) => Error::Limit(format!(
                    "the call ran past its CPU budget of {} ms",
                    self.compiled.cpu_limit.as_millis()
                )),
                Some(Trap::StackOverflow) => Error::Limit("the call exhausted the component's stack".into()),
                _ if refused => Error::Limit(format!(
                    "the call needed more than the instance's memory limit of {} bytes",
                    self.compiled.memory_limit
                )),
                _ => Error::Trap(format!("{e:#}")),
            }
        })
    }

    /// Run `call` on an up-to-date instance with its handle for `who`; `refused` answers
    /// instead when the instance cannot establish `who` now (the identity expired since, its
    /// bundle was removed).
    pub(crate) fn with_handle<R>(
        &self,
        who: &crate::Attested,
        refused: impl FnOnce(Error) -> R,
        call: impl FnOnce(&mut Instance, wasmtime::component::ResourceAny) -> wasmtime::Result<R>,
    ) -> Result<R, Error> {
        self.with_instance(|i| match i.handle(who)? {
            Ok(handle) => call(i, handle),
            Err(e) => Ok(refused(e)),
        })
    }

    /// Run `f` on an up-to-date instance. A trap discards the instance.
    pub(crate) fn with_instance<R>(&self, f: impl FnOnce(&mut Instance) -> wasmtime::Result<R>) -> Result<R, Error> {
        let generation = {
            let mut settings = lock(&self.settings);
            if self.shared.crypto.retire_due(|| self.shared.now()) {
                settings.generation += 1;
            }
            settings.generation
        };
        let pooled = lock(&self.idle).pop().filter(|i| i.generation == generation);
        let mut inst = match pooled {
            Some(i) => i,
            None => {
                let settings = lock(&self.settings);
                self.replayed_instance(&settings)?
            }
        };
        let r = self.guarded(&mut inst, f)?;
        let mut idle = lock(&self.idle);
        if idle.len() < self.compiled.max_idle {
            idle.push(inst);
        }
        Ok(r)
    }

    /// Apply a setting: run it on an up-to-date instance, and only if the component accepts
    /// it record it (so a bad bundle leaves the previous state in force everywhere).
    pub(crate) fn apply(&self, setting: Setting) -> Result<Applied, Error> {
        let mut settings = lock(&self.settings);
        let mut inst = self.replayed_instance(&settings)?;
        let applied = self.guarded(&mut inst, |i| setting.apply(&i.module, &mut i.store))??;
        settings.record(setting);
        settings.generation += 1;
        self.attestations.forget();
        inst.generation = settings.generation;
        let mut idle = lock(&self.idle);
        idle.clear();
        idle.push(inst);
        Ok(applied)
    }
}
