//! `writ-host`: the wasmtime runtime for the Writ component.
//!
//! It embeds `writ.wasm` (built by `build.rs`), compiles it once per engine configuration
//! (cached on disk), and runs calls on pooled instances. It implements the component's
//! imports: the clock (real or set by the caller), `crypto` natively with `ring` (issuer keys
//! stay here), the audit sink, and the credential ledger log shared by its instances. It never links `writ-core`: every rule runs in the component.
//!
//! ```no_run
//! let writ = writ_host::Writ::builder().build()?;
//! writ.set_bundle("example.org", &std::fs::read("bundle.pem")?)?;
//! let id = writ.attest_x509(&[std::fs::read("svid.der")?])?;
//! println!("{}", id.spiffe_id);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod audit;
mod bindings;
mod builder;
mod cache;
mod convert;
pub mod crypto;
mod imports;
mod ledger;
pub mod pack;
mod pool;
mod settings;
mod writ;

pub use audit::AuditSink;
pub use builder::Builder;
pub use cache::Source as CacheSource;
pub use crypto::{IssuerAlg, IssuerKey};
pub use settings::CryptoProvider;
pub use writ::Writ;
/// The vocabulary (`writ-types`), re-exported: this API speaks it.
pub use writ_types::{AuditEvent, Decision, EntityRef, Error, Evaluation, Grant, Identity, Intent, Proof};

/// The component this host was built with (`writ-guest`, a WASI preview-2 component).
pub const COMPONENT: &[u8] = include_bytes!(env!("WRIT_COMPONENT_PATH"));
