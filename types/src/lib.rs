#![doc = include_str!("../README.md")]

pub mod audit;
pub mod authzen;
pub mod decision;
pub mod error;
pub mod evaluation;
pub mod grant;
pub mod identity;
pub mod input;
pub mod intent;
pub mod mcp;
pub mod nesting;
pub mod pack;
pub mod possession;
pub mod route;
pub mod task;
pub mod xfcc;

pub use audit::AuditEvent;
pub use decision::{Decision, IDENTITY_EXPIRED, MAX_CALLS_SPENT, NOT_ATTESTED};
pub use error::{Error, Result};
pub use evaluation::{EntityRef, Evaluation};
pub use grant::Grant;
pub use identity::{Identity, Proof};
pub use intent::Intent;
pub use task::Task;
