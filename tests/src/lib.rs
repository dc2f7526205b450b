#![doc = include_str!("../README.md")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod attester;
pub mod filter_world;
pub mod fuzz_seeds;
pub mod jwt;
pub mod nats_server;
pub mod pack;
pub mod pki;
pub mod ring_crypto;
pub mod timing;

pub use attester::{Attester, Component, Native, Outcome, Verdict};

/// The fixed "now" of every fixture (2027-01-15T08:00:00Z).
pub const NOW: u64 = 1_800_000_000;
