#![doc = include_str!("../README.md")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod approval;
pub mod attester;
pub mod filter_world;
pub mod fuzz_seeds;
pub mod https_server;
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

/// The shipped pack's trust domain (`acme.example`): one PKI per test process. The `Writ`s the
/// helpers here build trust it, so the pack's broker can be attested to open tasks; a test
/// with SVIDs of that trust domain takes them from here.
pub fn pack_pki() -> &'static pki::Pki {
    static PKI: std::sync::OnceLock<pki::Pki> = std::sync::OnceLock::new();
    PKI.get_or_init(|| pki::Pki::new("acme.example", pki::KeyAlg::P256))
}

/// Trust [`pack_pki`] for `acme.example` in `writ`.
pub fn trust_pack_pki(writ: &writ_host::Writ) {
    writ.set_bundle("acme.example", &pack_pki().bundle_pem()).expect("the pack PKI's bundle loads");
}

/// The broker of the shipped pack (which may open tasks), attested by `writ` from an SVID of
/// [`pack_pki`] valid for years around [`NOW`] (so at the real clock too): `writ` must trust it.
pub fn pack_broker(writ: &writ_host::Writ) -> writ_host::Attested {
    static CHAIN: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    let chain = CHAIN.get_or_init(|| {
        let pki = pack_pki();
        let mut params = pki::leaf_params(&pki.id("/agent/broker"));
        params.not_before = pki::at(NOW - 300 * 86_400);
        params.not_after = pki::at(NOW + 4 * 365 * 86_400);
        vec![pki.intermediate.sign(&params, pki::KeyAlg::P256), pki.intermediate.der.clone()]
    });
    writ.attest_x509(chain).expect("the Writ trusts writ_tests::pack_pki() for acme.example")
}

/// `who` as the host asserts it (proof `asserted`): a test deciding about a principal it has
/// no certificate for. Decisions take it; credentials never do.
pub fn asserted(writ: &writ_host::Writ, who: &writ_core::Identity) -> writ_host::Attested {
    writ.assert_identity(&who.spiffe_id, who.expires_at, "test").expect("an assertable identity")
}

/// Open `tasks` in `writ` for the shipped pack's agents (the broker opens them; a day long
/// from the `Writ`'s clock), those not opened already (by a replica on the same state): what
/// a test does before issuing credentials of them. `writ` must trust [`pack_pki`].
pub fn open_pack_tasks(writ: &writ_host::Writ, tasks: &[&str]) {
    let members: Vec<String> = PACK_AGENTS.iter().map(|a| a.to_string()).collect();
    let now = writ.now();
    let broker = pack_broker(writ);
    for t in tasks {
        if writ.task(t).unwrap().is_none() {
            writ.open_task(&broker, t, &members, "test", now + 86_400).unwrap();
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
