//! `writ-sim`: replays multi-agent workflows under six credential designs, injects breaches
//! (exposed credential copies used after a delay, hijacked agents), and measures what an
//! attacker reaches and what each design costs. The Writ design decides every intent with the
//! real Writ component (or `writ-core` natively) under the simulated clock.
//!
//! The pipeline, one module each: [`scenario`] (TOML) → [`stream`] (a replication's draws) →
//! `model` (the scenario indexed) → [`events`] (the event loop, with `credentials` and
//! `attacker`) under a [`design`] → [`metrics`] → [`run`] (replications, sweeps over
//! [`params`]) → [`report`] and [`plot`]. [`decide`] is the one interface to Writ's rules: the
//! component, or writ-core natively.

mod attacker;
mod credentials;
pub mod decide;
pub mod design;
pub mod events;
pub mod metrics;
mod model;
pub mod params;
pub mod plot;
pub mod report;
pub mod run;
pub mod scenario;
pub mod stream;

pub use report::{SHORT_TTL_S, csv, mean_ci, report, report_with, stat, summary, sweep_summary, sweep_table, table};
pub use run::{Row, Runner, compare, replication_seed};
