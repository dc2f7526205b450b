//! Writ's rules as plain Rust: SPIFFE attestation, authorization and credentials.
//!
//! No I/O, no clock, no global randomness: time, entropy and crypto are arguments or traits.
//! Compiles natively and for `wasm32-wasip2` (the component in `guest/`).

pub mod authz;
pub mod bundle;
pub mod credential;
pub mod crypto;
pub mod decision;
pub mod engine;
pub mod error;
pub mod identity;
pub mod jwk;
pub mod jwt;
pub mod ledger;
pub mod limits;
pub mod memo;
pub mod route;
pub mod spiffe_id;
mod webpki_algs;
pub mod x509;

pub use credential::{Claims, Env, Grant, Presented};
pub use crypto::{Algorithm, Crypto};
pub use decision::{Decision, Intent};
pub use engine::{Config, Engine};
pub use error::{Error, Result};
pub use identity::{Identity, Proof};
pub use ledger::{Ledger, MemoryLedger};
