#![doc = include_str!("../README.md")]

mod attacker;
pub mod claims;
mod credentials;
pub mod decide;
pub mod design;
pub mod events;
pub mod metrics;
mod model;
pub mod opengraph;
pub mod otel;
pub mod paired;
pub mod params;
pub mod plot;
pub mod report;
pub mod run;
pub mod scenario;
pub mod sensitivity;
pub mod stream;
mod svids;

pub use report::{SHORT_TTL_S, csv, mean_ci, report, report_with, stat, summary, sweep_summary, sweep_table, table};
pub use run::{Row, Runner, compare, replication_seed};
