#![doc = include_str!("../README.md")]

mod attestations;
mod attested;
mod audit;
mod bindings;
mod builder;
mod cache;
mod convert;
pub mod crypto;
mod https_get;
mod imports;
pub mod oidc;
pub mod pack;
mod pool;
pub mod remote;
mod settings;
pub mod state;
mod writ;

pub use attested::Attested;
pub use audit::AuditSink;
pub use builder::Builder;
pub use cache::{Source as CacheSource, default_dir as default_cache_dir};
pub use crypto::{IssuerAlg, IssuerKey};
pub use https_get::{error_chain, web_tls_config};
pub use settings::CryptoProvider;
pub use writ::Writ;
/// The vocabulary (`writ-types`), re-exported: this API speaks it.
pub use writ_types::{AuditEvent, Decision, EntityRef, Error, Evaluation, Grant, Identity, Intent, Proof, Task};

/// The component this host was built with (`writ-guest`, a WASI preview-2 component).
pub const COMPONENT: &[u8] = include_bytes!(env!("WRIT_COMPONENT_PATH"));
