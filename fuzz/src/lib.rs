#![doc = include_str!("../README.md")]
// A fuzz target states its invariants by panicking.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

pub mod fixtures;
pub mod targets;

/// A fuzz target: one input in, an answer or a panic (a found bug) out.
pub type Target = fn(&[u8]);

/// Every target by name (the names cargo-fuzz and `fuzz/regressions/` use).
pub const TARGETS: [(&str, Target); 8] = [
    ("attest_x509", targets::attest_x509::run),
    ("attest_jwt", targets::attest_jwt::run),
    ("present", targets::present::run),
    ("policy_load", targets::policy_load::run),
    ("context", targets::context::run),
    ("authzen_decode", targets::authzen_decode::run),
    ("filter_request", targets::filter_request::run),
    ("mcp_schema", targets::mcp_schema::run),
];

/// The target named `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}
