#![doc = include_str!("../README.md")]

pub mod approval;
pub mod authz;
pub mod bounded;
pub mod bundle;
pub mod credential;
pub mod crypto;
pub mod exact;
pub mod feed;
pub mod jwk;
pub mod jwt;
pub mod ledger;
pub mod limits;
pub mod memo;
pub mod oidc;
pub mod possession;
pub mod spiffe_id;
mod webpki_algs;
pub mod writ;
pub mod x509;

pub use credential::{Claims, Env, Issued, Presented};
pub use crypto::{Algorithm, Crypto};
pub use ledger::{Ledger, MemoryLedger};
pub use writ::{Settings, Writ};
/// The vocabulary (`writ-types`), re-exported: the rules speak it.
pub use writ_types::{
    AuditEvent, Decision, EntityRef, Error, Evaluation, Grant, Identity, Intent, Proof, Result, Task, audit, authzen,
    decision, error, evaluation, grant, identity, intent, pack, route, task, xfcc,
};
