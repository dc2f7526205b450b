//! The simulator on hand-computable scenarios, determinism, the two engines, and invariants
//! on the same event stream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use writ_sim::decide::{Component, Native};
use writ_sim::scenario::Scenario;
use writ_sim::sim::{self, Design, Stream};

/// Two agents of the shipped pack; the payroll agent needs one payroll record, the world has
/// four (resource, action) pairs. Every copy is exposed, nobody is hijacked, the attacker
/// uses what leaks at once.
fn tiny(rate: f64, ttl: u64, hijack: f64) -> Scenario {
    Scenario::parse(
        &format!(
            r#"
name = "tiny"
horizon_hours = 1
[breach]
duplication_rate = 0.0
exposure_rate = 1.0
time_to_exploit_s = 0
hijack_rate = {hijack}
hijack_duration_s = 3600
[design]
ttl_s = {ttl}
rotation_period_s = 86400
[[agent]]
id = "spiffe://acme.example/agent/payroll"
[[agent]]
id = "spiffe://acme.example/agent/browser"
[[resource]]
uid = 'PayrollRecord::"run-42/emp-7"'
sensitivity = 3
records = 10
actions = ["read", "write"]
[[resource]]
uid = 'Dataset::"sales-summary"'
sensitivity = 1
records = 5
actions = ["read", "send"]
[[workflow]]
name = "payroll"
rate_per_hour = {rate}
task = "run-42"
[[workflow.step]]
at = 0
agent = "spiffe://acme.example/agent/payroll"
action = "read"
resource = 'PayrollRecord::"run-42/emp-7"'
[[workflow.step]]
at = 600
agent = "spiffe://acme.example/agent/payroll"
action = "read"
resource = 'PayrollRecord::"run-42/emp-7"'
"#
        ),
        "tiny.toml",
    )
    .unwrap()
}

#[test]
fn hand_computed_metrics_with_no_tasks() {
    // No task runs: per-task designs hold nothing; long-lived ones leak at their one exposure.
    let s = tiny(0.0, 900, 0.0);
    let stream = Stream::draw(&s, 7);
    let mut d = Native::new().unwrap();
    for design in Design::ALL {
        let m = sim::run(&s, &stream, design, &mut d);
        let (radius, weighted, records, leaks) = match design {
            // Everything: 2 pairs × (3+1) + 2 pairs × (1+1); 10 + 10 + 5 + 5 records.
            Design::Static | Design::RotationOnly | Design::Vaulted => (4, 12, 30, 2),
            // The payroll agent needs `read` of its record; the browser agent needs nothing.
            Design::LeastPrivilege => (1, 4, 10, 2),
            Design::Jit | Design::Writ => (0, 0, 0, 0),
        };
        assert_eq!((m.blast_radius, m.blast_radius_weighted, m.records_touched, m.leaks), (radius, weighted, records, leaks), "{design:?}");
        assert_eq!(m.credentials_issued, if matches!(design, Design::Jit | Design::Writ) { 0 } else { 2 }, "{design:?}");
        assert_eq!((m.tasks, m.failed_tasks, m.policy_decisions, m.rotations), (0, 0, 0, 0), "{design:?}");
        if leaks > 0 {
            // Never-expiring secrets stay usable from exposure to the end of the horizon.
            assert!(m.exposure_window_s > 0.0 && m.exposure_window_s <= 3600.0, "{design:?}: {}", m.exposure_window_s);
        }
    }
}

#[test]
fn short_ttls_fail_tasks_and_policy_decides_writ() {
    // A 300 s TTL: the step at 600 s finds its credential expired — every task fails in the
    // per-task designs and none in the long-lived ones.
    let s = tiny(6.0, 300, 0.0);
    let stream = Stream::draw(&s, 3);
    let mut d = Native::new().unwrap();
    let jit = sim::run(&s, &stream, Design::Jit, &mut d);
    assert!(jit.tasks > 0);
    assert_eq!(jit.failed_tasks, jit.tasks);
    assert_eq!(jit.credentials_issued, jit.tasks);
    assert_eq!(sim::run(&s, &stream, Design::Static, &mut d).failed_tasks, 0);
    // Writ: one decision per scope intent at issuance and one per step; the pack allows them.
    let s = tiny(6.0, 900, 0.0);
    let stream = Stream::draw(&s, 3);
    let w = sim::run(&s, &stream, Design::Writ, &mut d);
    assert_eq!(w.failed_tasks, 0);
    assert_eq!(w.policy_decisions, w.tasks * 3);
}

#[test]
fn a_hijacked_agent_under_writ_reaches_only_what_policy_allows_its_tasks() {
    // Every agent hijacked for the whole hour; exfiltration to an external destination.
    let s = tiny(6.0, 900, 1.0);
    let stream = Stream::draw(&s, 11);
    let mut d = Native::new().unwrap();
    let jit = sim::run(&s, &stream, Design::Jit, &mut d);
    let writ = sim::run(&s, &stream, Design::Writ, &mut d);
    // JIT: the payroll record's `read`, through the hijacked agent's task credential.
    assert_eq!(jit.blast_radius, 1);
    // Writ: the same intent with an external destination is a restricted record leaving the
    // organisation — the pack's `no-high-sensitivity-external` denies it.
    assert_eq!(writ.blast_radius, 0);
    assert_eq!(sim::run(&s, &stream, Design::Static, &mut d).blast_radius, 4);
}

fn shipped() -> Vec<Scenario> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.iter().map(|f| Scenario::load(f).unwrap()).collect()
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_engines_agree() {
    let scenarios = shipped();
    let mut native = Native::new().unwrap();
    let a = writ_sim::compare(&scenarios, 5, 3, &mut native);
    let b = writ_sim::compare(&scenarios, 5, 3, &mut native);
    assert_eq!(writ_sim::csv(&a), writ_sim::csv(&b));
    assert_ne!(writ_sim::csv(&a), writ_sim::csv(&writ_sim::compare(&scenarios, 6, 3, &mut native)));
    let mut component = Component::new().unwrap();
    let c = writ_sim::compare(&scenarios, 5, 3, &mut component);
    assert_eq!(writ_sim::csv(&a), writ_sim::csv(&c), "native and component engines decide identically");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// On the same event stream: Writ ≤ JIT ≤ least-privilege ≤ static, and a longer TTL
    /// never shrinks JIT's blast radius.
    #[test]
    fn designs_order_and_ttl_monotonic(seed in any::<u64>(), which in 0usize..2, ttl in 60u64..3600) {
        let mut s = shipped().swap_remove(which);
        let mut d = Native::new().unwrap();
        let stream = Stream::draw(&s, seed);
        let r = |design, s: &Scenario, d: &mut Native| sim::run(s, &stream, design, d).blast_radius;
        let (writ, jit, lp, st) = (r(Design::Writ, &s, &mut d), r(Design::Jit, &s, &mut d), r(Design::LeastPrivilege, &s, &mut d), r(Design::Static, &s, &mut d));
        prop_assert!(writ <= jit && jit <= lp && lp <= st, "writ {writ} jit {jit} lp {lp} static {st}");
        s.design.ttl_s = ttl;
        let short = r(Design::Jit, &s, &mut d);
        s.design.ttl_s = ttl * 2;
        let long = r(Design::Jit, &s, &mut d);
        prop_assert!(short <= long, "ttl {ttl}: {short} > {long}");
    }
}

#[test]
fn offboarded_credentials_stay_live_only_when_forgotten() {
    let with = |live: f64| {
        let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/offboarded.toml")).unwrap();
        let mut s = Scenario::parse(&text, "offboarded.toml").unwrap();
        s.breach.offboarded_live_rate = live;
        s.breach.exposure_rate = 1.0;
        s.breach.duplication_rate = 0.0;
        s.breach.hijack_rate = 0.0;
        s.breach.time_to_exploit_s = 0.0;
        s
    };
    let mut d = Native::new().unwrap();
    // Over many seeds, some exposures of the CI agent fall after its offboarding (6 h of 24):
    // a forgotten secret leaks there, a revoked one does not. Least-privilege scopes keep the
    // agents' reaches apart (CI: deploy staging; browser: read the sales summary).
    let (mut forgotten, mut revoked, mut writ) = ((0, 0), (0, 0), 0);
    for seed in 0..40 {
        let (live, dead) = (with(1.0), with(0.0));
        let f = sim::run(&live, &Stream::draw(&live, seed), Design::LeastPrivilege, &mut d);
        let r = sim::run(&dead, &Stream::draw(&dead, seed), Design::LeastPrivilege, &mut d);
        forgotten = (forgotten.0 + f.leaks, forgotten.1 + f.blast_radius);
        revoked = (revoked.0 + r.leaks, revoked.1 + r.blast_radius);
        writ += sim::run(&live, &Stream::draw(&live, seed), Design::Writ, &mut d).blast_radius;
    }
    assert!(forgotten.0 > revoked.0 && forgotten.1 > revoked.1, "a forgotten secret leaks and reaches more: {forgotten:?} vs {revoked:?}");
    assert!(writ < revoked.1, "per-task, bound credentials reach less than even a revoked static secret: {writ} vs {revoked:?}");
}

#[test]
fn detection_ends_what_a_leak_can_do() {
    let mut s = tiny(0.0, 900, 0.0);
    s.breach.time_to_exploit_s = 1e9; // the attacker is slow…
    s.breach.detection_dwell_s = 60; // …and detection is fast
    let stream = Stream::draw(&s, 9);
    let mut d = Native::new().unwrap();
    let st = sim::run(&s, &stream, Design::Static, &mut d);
    assert_eq!(st.blast_radius, 0, "detected and replaced before first use");
    assert!(st.exposure_window_s <= 60.0, "{}", st.exposure_window_s);
    let rot = sim::run(&s, &stream, Design::RotationOnly, &mut d);
    // Rotation designs keep the old secret working for the grace period (1 h) after rotating.
    assert!(rot.exposure_window_s > 60.0, "{}", rot.exposure_window_s);
}

#[test]
fn the_report_states_each_claim_with_its_numbers() {
    let scenarios = shipped();
    let mut d = Native::new().unwrap();
    let rows = writ_sim::compare(&scenarios, 1, 4, &mut d);
    let report = writ_sim::report(&scenarios, &rows, 1, 4, &mut d);
    assert_eq!(report, writ_sim::report(&scenarios, &rows, 1, 4, &mut d), "deterministic");
    for s in &scenarios {
        assert!(report.contains(&format!("### {}", s.name)));
    }
    let verdicts = report.matches("**holds**").count() + report.matches("**does not hold** in this run").count();
    assert_eq!(verdicts, 3 * scenarios.len());
    assert_eq!(report.matches("```").count(), 2, "one fenced table block");
    // The payroll run: a 60 s TTL fails tasks whose second step comes at 120 s.
    assert!(report.contains("at a 60 s TTL"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Sensitivity on one stream: halving the rotation period never lengthens the
    /// rotation-only exposure window; a higher duplication rate never shrinks its blast radius.
    #[test]
    fn rotation_and_duplication_sensitivity(seed in any::<u64>(), which in 0usize..3, hours in 1u64..12, dup in 0.0f64..1.0) {
        let mut s = shipped().swap_remove(which);
        s.breach.detection_dwell_s = u64::MAX / 4;
        let mut d = Native::new().unwrap();
        s.design.rotation_period_s = hours * 7200;
        let stream = Stream::draw(&s, seed);
        let long = sim::run(&s, &stream, Design::RotationOnly, &mut d).exposure_window_s;
        s.design.rotation_period_s = hours * 3600;
        let short = sim::run(&s, &stream, Design::RotationOnly, &mut d).exposure_window_s;
        prop_assert!(short <= long + 1e-9, "period {}h: {short} > {long}", hours);
        s.breach.duplication_rate = dup;
        let low = sim::run(&s, &Stream::draw(&s, seed), Design::RotationOnly, &mut d).blast_radius;
        s.breach.duplication_rate = (dup + 0.3).min(1.0);
        let high = sim::run(&s, &Stream::draw(&s, seed), Design::RotationOnly, &mut d).blast_radius;
        prop_assert!(low <= high, "duplication {dup}: {low} > {high}");
    }
}
