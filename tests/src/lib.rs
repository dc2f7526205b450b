#![doc = include_str!("../README.md")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod approval;
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

/// The shipped pack's agents, as SPIFFE IDs.
pub const PACK_AGENTS: [&str; 5] = [
    "spiffe://acme.example/agent/payroll",
    "spiffe://acme.example/agent/browser",
    "spiffe://acme.example/agent/broker",
    "spiffe://acme.example/agent/ci",
    "spiffe://acme.example/agent/oncall",
];

/// The broker of the shipped pack (which may open tasks), as an attested identity would say.
pub fn pack_broker(now: u64) -> writ_host::Identity {
    writ_host::Identity {
        spiffe_id: "spiffe://acme.example/agent/broker".into(),
        trust_domain: "acme.example".into(),
        expires_at: now + 3600,
        thumbprint: "broker-thumbprint".into(),
        proof: writ_host::Proof::X509Svid,
    }
}

/// Open `tasks` in `writ` for the shipped pack's agents (the broker opens them; a day long
/// from the `Writ`'s clock), those not opened already (by a replica on the same state): what
/// a test does before issuing credentials of them.
pub fn open_pack_tasks(writ: &writ_host::Writ, tasks: &[&str]) {
    let members: Vec<String> = PACK_AGENTS.iter().map(|a| a.to_string()).collect();
    let now = writ.now();
    for t in tasks {
        if writ.task(t).unwrap().is_none() {
            writ.open_task(&pack_broker(now), t, &members, "test", now + 86_400).unwrap();
        }
    }
}

/// Register task `id` in a native ledger, open until `now` + a day with `members` and the
/// shipped pack's agents (what an opener policy allowed would have done): for fixtures that
/// issue natively.
pub fn register_task(ledger: &dyn writ_core::Ledger, id: &str, members: &[&str], now: u64) {
    let task = writ_core::Task {
        id: id.into(),
        opener: "spiffe://fixture/opener".into(),
        members: members.iter().chain(PACK_AGENTS.iter()).map(|m| m.to_string()).collect(),
        purpose: "fixture".into(),
        opened_at: now,
        deadline: now + 86_400,
        ended_at: None,
    };
    if ledger.task(id, now).is_none() {
        let _ = ledger.open_task(&task, now);
    }
}

/// Poll `f` until it is true, for up to `within` (every 5 ms): how long it took, or `None`.
pub fn eventually(within: std::time::Duration, mut f: impl FnMut() -> bool) -> Option<std::time::Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < within {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    None
}
