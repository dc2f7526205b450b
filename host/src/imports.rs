//! The world's imports as the host serves them, and each store's data.
//!
//! Every instance of one [`crate::Writ`] shares [`Shared`]: the clock (real, or fixed by the
//! caller), `crypto` natively with `ring` (issuer keys stay here), the credential ledger and
//! the audit sink. Each store holds an empty WASI context (no files, environment or sockets)
//! and its limits.

use crate::audit::AuditSink;
use crate::bindings::writ::agent;
use crate::convert;
use crate::crypto::HostCrypto;
use crate::state::{MAX_CREDENTIAL_TTL_SECS, StateError, StateStore};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The clock setting that stands for the system clock.
pub(crate) const SYSTEM_TIME: u64 = u64::MAX;

/// What all instances of one `Writ` share.
pub(crate) struct Shared {
    /// Unix seconds, or [`SYSTEM_TIME`] for the real clock.
    pub(crate) clock: AtomicU64,
    pub(crate) crypto: Arc<HostCrypto>,
    pub(crate) audit: AuditSink,
    pub(crate) state: Arc<dyn StateStore>,
    /// Calls that failed because the state store did (for operators' metrics).
    pub(crate) state_errors: AtomicU64,
    /// Until when (unix seconds, this `Writ`'s clock) the signing key is published in the state.
    pub(crate) key_published_until: AtomicU64,
    /// Audit events that could not be written.
    pub(crate) audit_failures: AtomicU64,
}

/// The time a clock setting stands for: the system clock or the fixed time.
pub(crate) fn clock_now(setting: u64) -> u64 {
    match setting {
        SYSTEM_TIME => {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
        }
        t => t,
    }
}

impl Shared {
    pub(crate) fn new(crypto: Arc<HostCrypto>, audit: AuditSink, state: Arc<dyn StateStore>, clock: u64) -> Shared {
        Shared {
            clock: AtomicU64::new(clock),
            crypto,
            audit,
            state,
            state_errors: AtomicU64::new(0),
            key_published_until: AtomicU64::new(0),
            audit_failures: AtomicU64::new(0),
        }
    }

    /// Write an audit event, counting a failed write.
    pub(crate) fn audit_event(&self, event: writ_types::AuditEvent) {
        if !self.audit.emit(event) {
            self.audit_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn now(&self) -> u64 {
        clock_now(self.clock.load(Ordering::Relaxed))
    }

    /// Publish the signing key in the state when it would stop verifying sooner than a
    /// credential signed now could live (so every process on this state verifies what this
    /// one issues). Cheap when nothing is due: one atomic read.
    pub(crate) fn publish_signing_key(&self) -> Result<(), StateError> {
        let now = self.now();
        if self.key_published_until.load(Ordering::Relaxed) > now.saturating_add(MAX_CREDENTIAL_TTL_SECS) {
            return Ok(());
        }
        // An hour beyond the cap, so this happens about once an hour.
        let until = now.saturating_add(MAX_CREDENTIAL_TTL_SECS + 3600);
        let (kid, jwk) = self.crypto.current_jwk();
        self.state.publish_key(&kid, &jwk, until).inspect_err(|_| {
            self.state_errors.fetch_add(1, Ordering::Relaxed);
        })?;
        self.key_published_until.store(until, Ordering::Relaxed);
        Ok(())
    }
}

/// A store's data: an empty WASI context, limits, and the shared host state behind the
/// world's imports.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: Limiter,
    shared: Arc<Shared>,
    /// Reads of revocations fall back to what is known instead of failing (plain decisions).
    pub(crate) lenient_reads: bool,
}

impl HostState {
    /// Fresh store data whose memory may grow to `memory_limit` bytes.
    pub(crate) fn new(shared: Arc<Shared>, memory_limit: usize) -> HostState {
        HostState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: Limiter {
                inner: StoreLimitsBuilder::new()
                    .memory_size(memory_limit)
                    .instances(16)
                    .trap_on_grow_failure(false)
                    .build(),
                refused: false,
            },
            shared,
            lenient_reads: false,
        }
    }
}

/// The instance's memory and table limits, remembering whether a growth was refused (so a
/// trap that follows is reported as the limit it is).
pub(crate) struct Limiter {
    inner: StoreLimits,
    pub(crate) refused: bool,
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
    /// This issuer's keys and every other issuer's published in the state. When the state
    /// cannot be read, this issuer's own only (others' credentials are then refused).
    fn public_keys(&mut self) -> String {
        let published = self.shared.state.published_keys(self.shared.now()).unwrap_or_else(|_| {
            self.shared.state_errors.fetch_add(1, Ordering::Relaxed);
            Vec::new()
        });
        self.shared.crypto.public_keys_with(self.shared.now(), &published)
    }
}

/// Each returns the store's error as a trap (see `bindings.rs`): the call fails `unavailable`.
impl agent::ledger::Host for HostState {
    fn append(&mut self, data: String, until: u64) -> wasmtime::Result<()> {
        Ok(self.shared.state.append_revocation(&data, until)?)
    }
    fn since(&mut self, seq: u64) -> wasmtime::Result<Option<Vec<agent::ledger::Entry>>> {
        let entries = if self.lenient_reads {
            self.shared.state.revocations_known_since(seq).unwrap_or_else(|_| {
                self.shared.state_errors.fetch_add(1, Ordering::Relaxed);
                Vec::new()
            })
        } else {
            self.shared.state.revocations_since(seq)?
        };
        if entries.is_empty() {
            return Ok(None);
        }
        Ok(Some(entries.into_iter().map(|(seq, data)| agent::ledger::Entry { seq, data }).collect()))
    }
    fn register(&mut self, data: String, until: u64, keys: Vec<String>) -> wasmtime::Result<()> {
        Ok(self.shared.state.register_grant(&data, until, &keys)?)
    }
    fn find(&mut self, key: String) -> wasmtime::Result<Vec<String>> {
        Ok(self.shared.state.grants(&key, self.shared.now())?)
    }
}

impl agent::audit::Host for HostState {
    fn emit(&mut self, e: agent::audit::Event) {
        self.shared.audit_event(convert::audit_event(e));
    }
}
