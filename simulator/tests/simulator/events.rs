//! The simulator on hand-computable scenarios, determinism, the two engines, and invariants
//! on the same event stream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use writ_simulator::decide::{Component, Native};
use writ_simulator::design::Design;
use writ_simulator::events;
use writ_simulator::scenario::Scenario;
use writ_simulator::stream::Stream;

use crate::shipped::{compress, compressed};

/// Two agents of the shipped pack; the payroll agent needs one payroll record, the world has
/// four (resource, action) pairs. Every place is exposed dozens of times in the hour, the
/// attacker uses what leaks at once, rotation and remediation never come; `hijack` is
/// hijacks per agent a year (1e5: the first within minutes).
fn tiny(rate: f64, ttl: u64, hijack: f64) -> Scenario {
    Scenario::parse(
        &format!(
            r#"
name = "tiny"
horizon_hours = 1
warmup_hours = 0
[breach]
duplication_rate = 0.0
exposures_per_year = 20000
time_to_exploit_s = 0
hijacks_per_year = {hijack}
hijack_duration_s = 3600
remediations_per_day = 0
[design]
ttl_s = {ttl}
rotation_period_s = 315360000
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
    // No task runs: per-task designs hold nothing; long-lived ones leak their one secret at
    // each exposure.
    let s = tiny(0.0, 900, 0.0);
    let stream = Stream::draw(&s, 7);
    let exposures = stream.exposure_times();
    assert!((0..2).all(|a| exposures.iter().any(|x| x.0 == a)), "both agents exposed: {exposures:?}");
    assert!(exposures.iter().all(|x| x.1 == 0 && x.2 < 3600));
    let n = exposures.len() as u64;
    let mut d = Native::new().unwrap();
    for design in Design::ALL {
        let m = events::run(&s, &stream, design, &mut d);
        let (radius, weighted, records, leaks) = match design {
            // Everything: 2 pairs × (3+1) + 2 pairs × (1+1); 10 + 10 + 5 + 5 records.
            Design::Static | Design::RotationOnly | Design::Vaulted => (4, 12, 30, n),
            // The payroll agent needs `read` of its record; the browser agent needs nothing.
            Design::LeastPrivilege => (1, 4, 10, n),
            Design::Jit | Design::Writ => (0, 0, 0, 0),
        };
        assert_eq!(
            (m.blast_radius, m.blast_radius_weighted, m.records_touched, m.leaks),
            (radius, weighted, records, leaks),
            "{design:?}"
        );
        assert_eq!(
            m.credentials_issued,
            if matches!(design, Design::Jit | Design::Writ) { 0 } else { 2 },
            "{design:?}"
        );
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
    let jit = events::run(&s, &stream, Design::Jit, &mut d);
    assert!(jit.tasks > 0);
    assert_eq!(jit.failed_tasks, jit.tasks);
    assert_eq!(jit.credentials_issued, jit.tasks);
    assert_eq!(events::run(&s, &stream, Design::Static, &mut d).failed_tasks, 0);
    // Writ: one decision per scope intent at issuance and one per step; the pack allows them
    // (nothing leaks here, so the attacker presents nothing).
    let mut s = tiny(6.0, 900, 0.0);
    s.breach.exposures_per_year = 0.0;
    let stream = Stream::draw(&s, 3);
    let w = events::run(&s, &stream, Design::Writ, &mut d);
    assert_eq!(w.failed_tasks, 0);
    assert_eq!(w.policy_decisions, w.tasks * 3);
}

#[test]
fn a_hijacked_agent_under_writ_reaches_only_what_policy_allows_its_tasks() {
    // Every agent hijacked from its first minutes; it declares nothing, or lies.
    let s = tiny(6.0, 900, 1e5);
    let stream = Stream::draw(&s, 11);
    let mut d = Native::new().unwrap();
    let jit = events::run(&s, &stream, Design::Jit, &mut d);
    let writ = events::run(&s, &stream, Design::Writ, &mut d);
    // JIT: the payroll record's `read`, through the hijacked agent's task credential (and
    // what JIT's issuer hands it on asking: what its workflows use, the same read).
    assert_eq!(jit.blast_radius, 1);
    // Writ, shipped pack: a read inside the agent's own open task is allowed whatever the
    // caller claims about where the data goes; what else it asks for is refused.
    assert_eq!(writ.blast_radius, 1);
    // It asked (decisions beyond the tasks' own issue and two steps each) and was refused.
    assert!(writ.policy_decisions > 3 * writ.tasks, "{writ:?}");
    // A pack that refuses any intent naming a destination does not stop a hijacker that
    // names none…
    assert_eq!(events::run(&s, &stream, Design::Writ, &mut strict()).blast_radius, 1);
    // …only one that announces its exfiltration (the helpful adversary of a naive model).
    assert_eq!(events::run(&announcing(&s), &stream, Design::Writ, &mut strict()).blast_radius, 0);
    assert_eq!(events::run(&s, &stream, Design::Static, &mut d).blast_radius, 4);
}

/// `s` with an attacker that declares where it sends the data.
fn announcing(s: &Scenario) -> Scenario {
    let mut s = s.clone();
    s.breach.attacker_contexts = vec![r#"{"destination":"paste.attacker.example"}"#.into()];
    s
}

/// The shipped pack and a forbid on any intent whose caller names a destination.
fn strict() -> Native {
    let mut pack = writ_host::pack::Pack::shipped();
    pack.policies.push_str(
        "\n@id(\"no-destinations\") forbid(principal, action, resource) when { context has claimed && context.claimed has destination };\n",
    );
    Native::with_pack(pack).unwrap()
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_engines_agree() {
    let scenarios = compressed();
    let mut native = Native::new().unwrap();
    let a = writ_simulator::compare(&scenarios, 5, 3, &mut native);
    let b = writ_simulator::compare(&scenarios, 5, 3, &mut native);
    assert_eq!(writ_simulator::csv(&a), writ_simulator::csv(&b));
    assert_ne!(writ_simulator::csv(&a), writ_simulator::csv(&writ_simulator::compare(&scenarios, 6, 3, &mut native)));
    let mut component = Component::new().unwrap();
    let c = writ_simulator::compare(&scenarios, 5, 3, &mut component);
    assert_eq!(writ_simulator::csv(&a), writ_simulator::csv(&c), "native and component engines decide identically");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// On the same event stream: JIT ≤ least-privilege ≤ static and Writ ≤ static, and a
    /// longer TTL never shrinks JIT's blast radius. Writ is not held below JIT: a hijacked
    /// agent that asks gets what policy allows (the shipped pack allows more than the
    /// workflows use), and where instances share a task id Writ cannot revoke one instance's
    /// credentials without ending the task they share.
    #[test]
    fn designs_order_and_ttl_monotonic(seed in any::<u64>(), which in 0usize..6, ttl in 60u64..3600) {
        let mut s = compressed().swap_remove(which);
        let mut d = Native::new().unwrap();
        let stream = Stream::draw(&s, seed);
        let r = |design, s: &Scenario, d: &mut Native| events::run(s, &stream, design, d).blast_radius;
        let (writ, jit, lp, st) = (r(Design::Writ, &s, &mut d), r(Design::Jit, &s, &mut d), r(Design::LeastPrivilege, &s, &mut d), r(Design::Static, &s, &mut d));
        prop_assert!(writ <= st && jit <= lp && lp <= st, "writ {writ} jit {jit} lp {lp} static {st}");
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
        let text =
            std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/offboarded.toml"))
                .unwrap();
        let mut s = compress(Scenario::parse(&text, "offboarded.toml").unwrap());
        s.breach.offboarded_live_rate = live;
        s.breach.duplication_rate = 0.0;
        s.breach.hijacks_per_year = 0.0;
        s.breach.time_to_exploit_s = 0.0;
        s
    };
    let mut d = Native::new().unwrap();
    // Over many seeds, some exposures of the CI agent fall after its offboarding (12 h of 48):
    // a forgotten secret leaks there, a revoked one does not. Least-privilege scopes keep the
    // agents' reaches apart (CI: deploy staging; browser: read the sales summary).
    let (mut forgotten, mut revoked, mut writ) = ((0, 0), (0, 0), 0);
    for seed in 0..40 {
        let (live, dead) = (with(1.0), with(0.0));
        let f = events::run(&live, &Stream::draw(&live, seed), Design::LeastPrivilege, &mut d);
        let r = events::run(&dead, &Stream::draw(&dead, seed), Design::LeastPrivilege, &mut d);
        forgotten = (forgotten.0 + f.leaks, forgotten.1 + f.blast_radius);
        revoked = (revoked.0 + r.leaks, revoked.1 + r.blast_radius);
        writ += events::run(&live, &Stream::draw(&live, seed), Design::Writ, &mut d).blast_radius;
    }
    assert!(
        forgotten.0 > revoked.0 && forgotten.1 > revoked.1,
        "a forgotten secret leaks and reaches more: {forgotten:?} vs {revoked:?}"
    );
    assert!(
        writ < revoked.1,
        "per-task, bound credentials reach less than even a revoked static secret: {writ} vs {revoked:?}"
    );
}

#[test]
fn detection_ends_what_a_leak_can_do() {
    let mut s = tiny(0.0, 900, 0.0);
    s.breach.time_to_exploit_s = 1e9; // the attacker is slow…
    s.breach.detection_dwell_s = 60; // …and detection is fast (a median of a minute)
    let stream = Stream::draw(&s, 9);
    let mut d = Native::new().unwrap();
    let st = events::run(&s, &stream, Design::Static, &mut d);
    assert_eq!(st.blast_radius, 0, "detected and replaced before first use");
    // Each window ends at the latest with its own detection: a mean of 60/ln 2 ≈ 87 s.
    assert!(st.exposure_window_s < 300.0, "{}", st.exposure_window_s);
    let rot = events::run(&s, &stream, Design::RotationOnly, &mut d);
    // Rotation designs keep the old secret working for the grace period (1 h) after rotating.
    assert!(rot.exposure_window_s > 600.0, "{}", rot.exposure_window_s);
}

#[test]
fn the_report_states_each_claim_with_its_numbers() {
    let scenarios = compressed();
    let mut d = Native::new().unwrap();
    let rows = writ_simulator::compare(&scenarios, 1, 4, &mut d);
    let report = writ_simulator::report(&scenarios, &rows, 1, 4, &mut d);
    assert_eq!(report, writ_simulator::report(&scenarios, &rows, 1, 4, &mut d), "deterministic");
    for s in &scenarios {
        assert!(report.contains(&format!("### {}", s.name)));
    }
    let verdicts = report.matches("**holds**").count()
        + report.matches("**does not hold** in this run").count()
        + report.matches("**not testable here**").count();
    // Three claims, the second judged raw and within the workflows' need.
    assert_eq!(verdicts, 4 * scenarios.len());
    assert_eq!(report.matches("```").count(), 2, "one fenced table block");
    // Each scenario says how many replications its intervals need to clear zero.
    assert_eq!(report.matches("- Precision: replications for each interval to clear zero").count(), scenarios.len());
    // The payroll run: a 60 s TTL fails tasks whose second step comes at 120 s.
    assert!(report.contains("at a 60 s TTL"));
    let payroll = &report[report.find("### payroll").unwrap()..];
    assert!(payroll.split("###").nth(1).unwrap().contains("Very short TTLs raise failed tasks: **holds**"));
    // One-step tasks cannot outlive even a 60 s credential: said so, not counted as failing.
    let offboarded = &report[report.find("### offboarded").unwrap()..];
    assert!(
        offboarded.split("###").nth(1).unwrap().contains("Very short TTLs raise failed tasks: **not testable here**")
    );
}

#[test]
fn the_blast_radius_within_need_leaves_out_only_pairs_no_task_uses() {
    let mut d = Native::new().unwrap();
    for s in compressed() {
        for seed in 0..4 {
            let stream = Stream::draw(&s, seed);
            for design in Design::ALL {
                let m = events::run(&s, &stream, design, &mut d);
                assert!(m.blast_radius_in_need <= m.blast_radius, "{} {design:?}", s.name);
                // Least privilege holds exactly what tasks use: nothing to leave out (unless an
                // unmanaged secret found on the way opens more).
                if design == Design::LeastPrivilege && s.secrets.is_empty() {
                    assert_eq!(m.blast_radius_in_need, m.blast_radius, "{} seed {seed}", s.name);
                }
            }
        }
    }
}

#[test]
fn a_refresh_margin_past_the_short_ttl_of_the_report_keeps_its_share_of_the_lifetime() {
    // A valid margin (120 s before a 600 s TTL) is past the report's 60 s TTL: it used to
    // underflow there (a debug-build panic); the short run refreshes 12 s before expiry instead.
    let mut scenarios = compressed();
    scenarios.truncate(1);
    scenarios[0].design.ttl_s = 600;
    scenarios[0].design.refresh_before_s = 120;
    let mut d = Native::new().unwrap();
    let rows = writ_simulator::compare(&scenarios, 1, 2, &mut d);
    let report = writ_simulator::report(&scenarios, &rows, 1, 2, &mut d);
    assert!(report.contains("at a 60 s TTL"), "{report}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Sensitivity on one stream: dividing the rotation period never lengthens the
    /// rotation-only exposure window (each schedule is a lattice `offset + k × period`, so
    /// the divided one rotates at every moment the other does, and more); a higher duplication
    /// rate never shrinks its blast radius.
    #[test]
    fn rotation_and_duplication_sensitivity(seed in any::<u64>(), which in 0usize..6, hours in 1u64..12, by in 2u64..5, dup in 0.0f64..1.0) {
        let mut s = compressed().swap_remove(which);
        s.breach.detection_dwell_s = u64::MAX / 4;
        s.design.rotation_by_protocol.clear();
        let mut d = Native::new().unwrap();
        s.design.rotation_period_s = hours * 3600 * by;
        let stream = Stream::draw(&s, seed);
        let long = events::run(&s, &stream, Design::RotationOnly, &mut d).exposure_window_s;
        s.design.rotation_period_s = hours * 3600;
        let short = events::run(&s, &stream, Design::RotationOnly, &mut d).exposure_window_s;
        prop_assert!(short <= long + 1e-9, "period {}h vs {}h: {short} > {long}", hours, hours * by);
        s.breach.duplication_rate = dup;
        let low = events::run(&s, &Stream::draw(&s, seed), Design::RotationOnly, &mut d).blast_radius;
        s.breach.duplication_rate = (dup + 0.3).min(1.0);
        let high = events::run(&s, &Stream::draw(&s, seed), Design::RotationOnly, &mut d).blast_radius;
        prop_assert!(low <= high, "duplication {dup}: {low} > {high}");
    }
}

/// The payroll agent's secret is stored on the sales summary (a shared document); the
/// browser agent keeps its own secret nowhere else. Scenario text with placeholders.
const LATERAL: &str = r#"
name = "lateral"
horizon_hours = 2
warmup_hours = 0
[breach]
duplication_rate = 0.0
exposures_per_year = 20000
time_to_exploit_s = 0
hijacks_per_year = 0.0
remediations_per_day = 0
lateral_delay_s = 30
[[agent]]
id = "spiffe://acme.example/agent/browser"
[[agent]]
id = "spiffe://acme.example/agent/payroll"
copies = 0
[[resource]]
uid = 'Dataset::"sales-summary"'
sensitivity = 1
actions = ["read", "send"]
holds = ["spiffe://acme.example/agent/payroll"]
[[resource]]
uid = 'PayrollRecord::"run-42/emp-7"'
sensitivity = 3
records = 10
actions = ["read", "write"]
[[workflow]]
name = "report"
rate_per_hour = 0
[[workflow.step]]
at = 0
agent = "spiffe://acme.example/agent/browser"
action = "read"
resource = 'Dataset::"sales-summary"'
[[workflow]]
name = "payroll"
rate_per_hour = 0
task = "run-42"
[[workflow.step]]
at = 0
agent = "spiffe://acme.example/agent/payroll"
action = "read"
resource = 'PayrollRecord::"run-42/emp-7"'
"#;

#[test]
fn secrets_found_on_a_compromised_resource_are_the_next_hop() {
    let s = Scenario::parse(LATERAL, "lateral.toml").unwrap();
    let stream = Stream::draw(&s, 1);
    // Only the browser's one place is exposed (the payroll agent's secret has no copies).
    let n = stream.exposure_times().len() as u64;
    assert!(n > 0 && stream.exposure_times().iter().all(|x| x.0 == 0));
    let mut d = Native::new().unwrap();
    // Least privilege: the browser's secret reads the summary, where the payroll agent's
    // secret lies; that one reads the payroll record. Two pairs, one hop, a leak per exposure
    // and the secret found once.
    let lp = events::run(&s, &stream, Design::LeastPrivilege, &mut d);
    assert_eq!((lp.blast_radius, lp.lateral_hops, lp.leaks, lp.records_touched), (2, 1, n + 1, 11));
    // Static: everything through the first secret already; the hop adds a leak, no new pair.
    let st = events::run(&s, &stream, Design::Static, &mut d);
    assert_eq!((st.blast_radius, st.lateral_hops, st.leaks), (4, 1, n + 1));
    // Vaulted: nothing is stored at rest, so there is nothing to find.
    let v = events::run(&s, &stream, Design::Vaulted, &mut d);
    assert_eq!((v.blast_radius, v.lateral_hops, v.leaks), (4, 0, n));
    // Without the stored copy the hop disappears.
    let alone =
        Scenario::parse(&LATERAL.replace("holds = [\"spiffe://acme.example/agent/payroll\"]", ""), "alone.toml")
            .unwrap();
    let lp = events::run(&alone, &Stream::draw(&alone, 1), Design::LeastPrivilege, &mut d);
    assert_eq!((lp.blast_radius, lp.lateral_hops, lp.leaks), (1, 0, n));
}

#[test]
fn a_shared_account_pools_scopes_and_outlives_offboarding() {
    // Both agents run on one service account; the payroll agent leaves at once.
    let text = LATERAL.replace("holds = [\"spiffe://acme.example/agent/payroll\"]", "").replace(
        "id = \"spiffe://acme.example/agent/payroll\"\ncopies = 0",
        "id = \"spiffe://acme.example/agent/payroll\"\ncopies = 0\naccount = \"svc\"\noffboarded_at_hours = 0",
    );
    let text = text.replace(
        "id = \"spiffe://acme.example/agent/browser\"\n",
        "id = \"spiffe://acme.example/agent/browser\"\naccount = \"svc\"\n",
    );
    let mut s = Scenario::parse(&text, "shared.toml").unwrap();
    s.breach.offboarded_live_rate = 0.0; // the leaver's secret would be revoked…
    let stream = Stream::draw(&s, 1);
    let n = stream.exposure_times().len() as u64;
    let mut d = Native::new().unwrap();
    let lp = events::run(&s, &stream, Design::LeastPrivilege, &mut d);
    // …but it is the browser's secret too: still live, and it carries both agents' needs.
    assert_eq!((lp.blast_radius, lp.leaks, lp.credentials_issued), (2, n, 1));
    // Per-task designs give each agent its own credentials: nothing runs, nothing leaks.
    assert_eq!(events::run(&s, &stream, Design::Jit, &mut d).blast_radius, 0);
}

#[test]
fn each_protocol_rotates_on_its_own_period() {
    let mut s = tiny(0.0, 900, 0.0);
    s.horizon_hours = 24.0;
    s.resources[0].protocol = "db".into();
    s.design.rotation_period_s = 6 * 3600;
    s.design.rotation_by_protocol.insert("db".into(), 3600);
    s.design.rotation_grace_s = 600;
    s.breach.detection_dwell_s = u64::MAX;
    let stream = Stream::draw(&s, 4);
    let mut d = Native::new().unwrap();
    let m = events::run(&s, &stream, Design::RotationOnly, &mut d);
    // Per agent, each schedule at its own offset within its first period: db rotates 24 times
    // in the day, http 4 times; two agents.
    assert_eq!(m.rotations, 2 * (24 + 4));
    assert_eq!(m.credentials_issued, 2 * (2 + 24 + 4));
    // A leaked copy holds both protocol credentials; the http one lives longest. At most
    // one http period plus the grace.
    assert!(m.exposure_window_s > 0.0 && m.exposure_window_s <= (6 * 3600 + 600) as f64, "{}", m.exposure_window_s);
    // The same without the per-protocol period: only the http schedule, for everything.
    s.design.rotation_by_protocol.clear();
    let one = events::run(&s, &stream, Design::RotationOnly, &mut d);
    assert_eq!(one.rotations, 2 * (4 + 4));
}

#[test]
fn refreshing_before_expiry_trades_failed_tasks_for_issuance() {
    // TTL 300 s, steps at 0 and 600 s; nothing leaks.
    let mut s = tiny(6.0, 300, 0.0);
    s.breach.exposures_per_year = 0.0;
    let stream = Stream::draw(&s, 3);
    let mut d = Native::new().unwrap();
    let no = events::run(&s, &stream, Design::Writ, &mut d);
    assert_eq!(no.failed_tasks, no.tasks);
    s.design.refresh_before_s = 60;
    let yes = events::run(&s, &stream, Design::Writ, &mut d);
    // Refreshed at 240 s and 480 s: the token of 480 s covers the step at 600 s.
    assert!(yes.tasks > 0);
    assert_eq!((yes.failed_tasks, yes.refreshes, yes.credentials_issued), (0, 2 * yes.tasks, 3 * yes.tasks));
    // Each issuance is checked against policy: 3 issuances + 2 steps per task.
    assert_eq!(yes.policy_decisions, 5 * yes.tasks);
    // Latency per tool call: 3 issues and 2 presentations over 2 calls.
    let want = (3.0 * s.cost.issue_us + 2.0 * s.cost.present_us) / 2.0;
    assert!((yes.latency_per_call_us - want).abs() < 1e-9, "{} vs {want}", yes.latency_per_call_us);
}

#[test]
fn what_policy_or_time_stopped_counts_as_reachable_not_exercised() {
    let s = announcing(&tiny(6.0, 900, 1e5));
    let stream = Stream::draw(&s, 11);
    let mut d = Native::new().unwrap();
    let writ = events::run(&s, &stream, Design::Writ, &mut strict());
    assert_eq!((writ.blast_radius, writ.reachable_not_exercised), (0, 1), "the token's read was refused");
    assert_eq!(events::run(&s, &stream, Design::Jit, &mut d).reachable_not_exercised, 0);
    // A slow attacker and fast detection: the static secret was replaced before first use.
    let mut s = tiny(0.0, 900, 0.0);
    s.breach.time_to_exploit_s = 1e9;
    s.breach.detection_dwell_s = 60;
    let st = events::run(&s, &Stream::draw(&s, 9), Design::Static, &mut d);
    assert_eq!((st.blast_radius, st.reachable_not_exercised), (0, 4));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// No credential is used successfully at or after the moment it stopped working
    /// (expiry, task end, revocation, rotation grace, offboarding, detection), in any design.
    #[test]
    fn nothing_works_after_it_ended(seed in any::<u64>(), which in 0usize..6, dwell in 60u64..20_000, ttl in 60u64..1800) {
        let mut s = compressed().swap_remove(which);
        s.breach.detection_dwell_s = dwell;
        s.breach.hijacks_per_year = 2000.0;
        s.breach.time_to_exploit_s = 200.0;
        s.design.ttl_s = ttl;
        s.design.rotation_period_s = 7200;
        let stream = Stream::draw(&s, seed);
        let mut d = Native::new().unwrap();
        for design in Design::ALL {
            let mut t = events::Trace::default();
            events::run_traced(&s, &stream, design, &mut d, Some(&mut t));
            for &(c, at, seq) in &t.uses {
                for &(_, end, end_seq) in t.ends.iter().filter(|e| e.0 == c) {
                    let before = at < end || (at == end && end_seq != 0 && seq < end_seq);
                    prop_assert!(before, "{design:?}: credential {c} used at ({at}, {seq}) after it ended at ({end}, {end_seq})");
                }
            }
        }
    }
}

#[test]
fn threads_change_nothing_but_the_wall_clock() {
    let scenarios = compressed();
    let mut native = Native::new().unwrap();
    let one = writ_simulator::compare(&scenarios, 9, 4, &mut native);
    let runner = writ_simulator::Runner { threads: 3, progress: &|| {} };
    let three = writ_simulator::run::compare_with(&runner, &scenarios, 9, 4, &mut native).unwrap();
    assert_eq!(writ_simulator::csv(&one), writ_simulator::csv(&three));
    // The component forks (its own clock per thread) and still decides the same.
    let mut component = Component::new().unwrap();
    let forked = writ_simulator::run::compare_with(&runner, &scenarios[..2], 9, 4, &mut component).unwrap();
    assert_eq!(
        writ_simulator::csv(&forked),
        writ_simulator::csv(&writ_simulator::compare(&scenarios[..2], 9, 4, &mut native))
    );
    let count = std::sync::atomic::AtomicUsize::new(0);
    let tick = || {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    let counted = writ_simulator::Runner { threads: 2, progress: &tick };
    writ_simulator::run::compare_with(&counted, &scenarios, 9, 4, &mut native).unwrap();
    assert_eq!(count.into_inner(), scenarios.len() * 4, "one tick per replication");
}

#[test]
fn a_leaked_secret_is_remediated_at_the_cited_hazard() {
    // A week; the static secrets leak and are used; detection never comes.
    let mut s = tiny(0.0, 900, 0.0);
    s.horizon_hours = 7.0 * 24.0;
    s.breach.exposures_per_year = 50.0;
    s.breach.detection_dwell_s = u64::MAX / 4;
    let window = |s: &Scenario| {
        let mut d = Native::new().unwrap();
        (0..20).map(|seed| events::run(s, &Stream::draw(s, seed), Design::Static, &mut d).exposure_window_s).collect()
    };
    s.breach.remediations_per_day = 24.0; // an hour on average
    let fast: Vec<f64> = window(&s);
    s.breach.remediations_per_day = 0.0;
    let never: Vec<f64> = window(&s);
    // The same exposures, each replaced sooner or not at all.
    assert!(never.iter().zip(&fast).all(|(n, f)| n >= f) && never.iter().sum::<f64>() > fast.iter().sum::<f64>());
    let mean = fast.iter().sum::<f64>() / fast.len() as f64;
    assert!(mean < 4.0 * 3600.0, "a mean of an hour, at most the time to the next exposure's: {mean}");
    // The default is the cited figure: 90% still valid after five days.
    let d = writ_simulator::scenario::Breach::default();
    assert!(((-5.0 * d.remediations_per_day).exp() - 0.9).abs() < 1e-12);
    // Per-task credentials are not remediated: they are gone with their task anyway.
    s.breach.remediations_per_day = 24.0;
    let mut n = Native::new().unwrap();
    assert_eq!(events::run(&s, &Stream::draw(&s, 1), Design::Jit, &mut n).rotations, 0);
}

#[test]
fn a_sweep_runs_every_combination_on_the_same_draws() {
    let mut s = tiny(6.0, 900, 5000.0);
    // No detection: cutting a hijacked agent off would fail its tasks whatever the TTL.
    s.breach.detection_dwell_s = u64::MAX / 4;
    let params = [
        writ_simulator::params::parse("ttl=60,900").unwrap(),
        writ_simulator::params::parse("rotation=1h,1d").unwrap(),
    ];
    let grid = writ_simulator::params::grid(&params).unwrap();
    let mut d = Native::new().unwrap();
    let rows =
        writ_simulator::run::sweep(&writ_simulator::Runner::default(), std::slice::from_ref(&s), &grid, 3, 2, &mut d)
            .unwrap();
    assert_eq!(rows.len(), 4 * 6 * 2);
    let csv = writ_simulator::csv(&rows);
    assert!(csv.starts_with("scenario,design,ttl,rotation,seed,blast_radius,"), "{}", &csv[..80]);
    assert!(csv.contains("\ntiny,jit,60,3600,"));
    // Static ignores both parameters: the same draws give it the same numbers in every cell.
    let statics: Vec<_> = rows
        .iter()
        .filter(|r| r.design == Design::Static && r.seed == rows[0].seed)
        .map(|r| r.metrics.clone())
        .collect();
    assert_eq!(statics.len(), 4);
    assert!(statics.windows(2).all(|w| w[0] == w[1]));
    // A 60 s TTL fails the task whose second step comes at 600 s; 900 s does not.
    let failed = |ttl: f64| {
        rows.iter()
            .filter(|r| r.design == Design::Jit && r.params.get(writ_simulator::params::Param::Ttl) == Some(ttl))
            .map(|r| r.metrics.failed_tasks)
            .sum::<u64>()
    };
    assert!(failed(60.0) > 0 && failed(900.0) == 0, "{} {}", failed(60.0), failed(900.0));
    // Impossible values are refused with the reason before anything runs.
    let zero = writ_simulator::params::grid(&[writ_simulator::params::parse("ttl=0").unwrap()]).unwrap();
    let e = writ_simulator::run::sweep(&writ_simulator::Runner::default(), &[s], &zero, 3, 2, &mut d).unwrap_err();
    assert!(e.contains("`design.ttl_s` is 0") && e.contains("ttl=0"), "{e}");
    let table = writ_simulator::sweep_table(&rows);
    assert!(table.contains("ttl=60 rotation=3600") && table.contains("ttl=900 rotation=86400"));
    let summary = writ_simulator::sweep_summary(&rows);
    assert_eq!(summary.as_array().map(Vec::len), Some(4 * 6));
}

#[test]
fn plots_are_svg_with_every_design_and_the_frontier_is_the_undominated_points() {
    let scenarios = compressed();
    let mut d = Native::new().unwrap();
    let rows = writ_simulator::compare(&scenarios[..1], 2, 3, &mut d);
    let svg = writ_simulator::plot::compare(&rows, &scenarios[0].name, "seed 2").unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for design in Design::ALL {
        assert!(svg.contains(&format!(">\n{}\n</text>", design.name())), "{}", design.name());
    }
    use writ_simulator::plot::{Point, frontier};
    let p = |cost: f64, blast: f64| Point { design: Design::Jit, params: Default::default(), cost, blast };
    let f = frontier(&[p(1.0, 5.0), p(2.0, 2.0), p(3.0, 3.0), p(0.5, 9.0), p(2.0, 2.5)]);
    let got: Vec<(f64, f64)> = f.iter().map(|q| (q.cost, q.blast)).collect();
    assert_eq!(got, vec![(0.5, 9.0), (1.0, 5.0), (2.0, 2.0)]);
    let grid = writ_simulator::params::grid(&[writ_simulator::params::parse("ttl=60,900").unwrap()]).unwrap();
    let rows =
        writ_simulator::run::sweep(&writ_simulator::Runner::default(), &scenarios[..1], &grid, 2, 2, &mut d).unwrap();
    let pareto = writ_simulator::plot::pareto(&rows, &scenarios[0].name, "seed 2").unwrap();
    assert!(pareto.contains("failed tasks") && pareto.contains("credentials issued") && pareto.contains("ttl=60"));
}

#[test]
fn a_leaked_writ_credential_works_only_for_whoever_stole_its_holders_key() {
    // Every place exposed a few times a minute, tasks running; no hijacks.
    let mut s = tiny(6.0, 900, 0.0);
    s.breach.exposures_per_year = 1e6;
    s.breach.memory_theft_rate = 0.0;
    let stream = Stream::draw(&s, 5);
    let mut d = Native::new().unwrap();
    let jit = events::run(&s, &stream, Design::Jit, &mut d);
    assert_eq!(jit.blast_radius, 1, "a bearer token read the record it was issued for");
    // From the attacker's own workload the component refuses the token (`cnf`): nothing
    // exercised, and no exposure window.
    let mut t = events::Trace::default();
    let writ = events::run_traced(&s, &stream, Design::Writ, &mut d, Some(&mut t));
    assert!(writ.leaks > 0);
    assert_eq!((writ.blast_radius, writ.exposure_window_s), (0, 0.0));
    assert_eq!(writ.reachable_not_exercised, 1, "held, but refused");
    assert!(t.uses.is_empty());
    // Working memory stolen whole, the key with it: the thief presents as the holder, and
    // policy allows the read inside the agent's task.
    s.breach.memory_theft_rate = 1.0;
    let stream = Stream::draw(&s, 5);
    let mut t = events::Trace::default();
    let stolen = events::run_traced(&s, &stream, Design::Writ, &mut d, Some(&mut t));
    assert_eq!(stolen.blast_radius, 1);
    assert!(stolen.exposure_window_s > 0.0 && !t.uses.is_empty());
    // The component's answer agrees with the loop's books: no use after a credential ended.
    for &(c, at, _) in &t.uses {
        assert!(t.ends.iter().filter(|e| e.0 == c).all(|&(_, end, _)| at < end), "credential {c} at {at}");
    }
    // The same answers from the component as from the native engine.
    let mut component = Component::new().unwrap();
    assert_eq!(events::run(&s, &stream, Design::Writ, &mut component), stolen);
}

/// The browser agent invokes its browser tool (policy `tool-allow-list`, `@ttl("600")`) at the
/// start of each task and again 15 minutes in; the scenario's TTL asks for an hour.
const TOOL_TTL: &str = r#"
name = "tool-ttl"
horizon_hours = 4
warmup_hours = 0
[breach]
exposures_per_year = 0
hijacks_per_year = 0
[design]
ttl_s = 3600
[[agent]]
id = "spiffe://acme.example/agent/browser"
[[resource]]
uid = 'Tool::"browser"'
sensitivity = 1
actions = ["invoke"]
[[workflow]]
name = "browse"
rate_per_hour = 3
[[workflow.step]]
at = 0
agent = "spiffe://acme.example/agent/browser"
action = "invoke"
resource = 'Tool::"browser"'
[[workflow.step]]
at = 900
agent = "spiffe://acme.example/agent/browser"
action = "invoke"
resource = 'Tool::"browser"'
"#;

#[test]
fn the_policy_ttl_caps_what_writ_issues() {
    let s = Scenario::parse(TOOL_TTL, "tool-ttl.toml").unwrap();
    let stream = Stream::draw(&s, 2);
    let mut d = Native::new().unwrap();
    let jit = events::run(&s, &stream, Design::Jit, &mut d);
    assert!(jit.tasks > 0);
    assert_eq!(jit.failed_tasks, 0, "an hour's bearer token outlives the task");
    // The component caps the lifetime at the policy's 600 s: the step at 900 s finds it
    // expired.
    let writ = events::run(&s, &stream, Design::Writ, &mut d);
    assert_eq!(writ.failed_tasks, writ.tasks);
    // With a refresh before expiry the tasks finish.
    let mut refreshed = s.clone();
    refreshed.design.ttl_s = 600;
    refreshed.design.refresh_before_s = 60;
    let w = events::run(&refreshed, &Stream::draw(&refreshed, 2), Design::Writ, &mut d);
    assert_eq!((w.failed_tasks, w.refreshes), (0, w.tasks));
}

/// The broker reads the sales summary and hands the browser agent the read it needs.
const HANDED_ON: &str = r#"
name = "handed-on"
horizon_hours = 4
warmup_hours = 0
[breach]
exposures_per_year = 0
hijacks_per_year = 0
[[agent]]
id = "spiffe://acme.example/agent/broker"
[[agent]]
id = "spiffe://acme.example/agent/browser"
[[resource]]
uid = 'Dataset::"sales-summary"'
sensitivity = 1
actions = ["read"]
[[workflow]]
name = "summarise"
rate_per_hour = 3
[[workflow.step]]
at = 0
agent = "spiffe://acme.example/agent/broker"
action = "read"
resource = 'Dataset::"sales-summary"'
[[workflow.step]]
at = 60
agent = "spiffe://acme.example/agent/browser"
action = "read"
resource = 'Dataset::"sales-summary"'
"#;

#[test]
fn a_sub_agent_gets_its_slice_by_delegation_and_loses_it_with_its_delegator() {
    let s = Scenario::parse(HANDED_ON, "handed-on.toml").unwrap();
    let stream = Stream::draw(&s, 3);
    let mut d = Native::new().unwrap();
    let w = events::run(&s, &stream, Design::Writ, &mut d);
    assert!(w.tasks > 0);
    assert_eq!((w.failed_tasks, w.credentials_issued), (0, 2 * w.tasks));
    // Per task: the broker's issue (one intent), the delegation (the hop and the intent),
    // two presentations.
    assert_eq!(w.policy_decisions, 5 * w.tasks);
    // The broker is hijacked and detected within a minute of each task's start: cutting it
    // off revokes what it delegated, so the browser's step fails too.
    let mut cut = s.clone();
    cut.breach.hijacks_per_year = 1e6;
    cut.breach.detection_dwell_s = 1;
    let mut t = events::Trace::default();
    let m = events::run_traced(&cut, &Stream::draw(&cut, 3), Design::Writ, &mut d, Some(&mut t));
    assert!(m.failed_tasks > 0, "{m:?}");
    for &(c, at, seq) in &t.uses {
        for &(_, end, end_seq) in t.ends.iter().filter(|e| e.0 == c) {
            assert!(at < end || (at == end && end_seq != 0 && seq < end_seq), "credential {c} used after it ended");
        }
    }
}

#[test]
fn an_unmanaged_secret_on_a_reached_resource_is_the_next_hop_in_every_design() {
    // The payroll agent, hijacked, reads its record in its task; a database password lies on
    // that record's host and opens the customer data, whatever the design.
    let mut s = tiny(6.0, 900, 1e5);
    s.breach.exposures_per_year = 0.0;
    let text = s.to_toml().unwrap()
        + "\n[[resource]]\nuid = 'Dataset::\"customer-pii\"'\nsensitivity = 3\nactions = [\"read\"]\n\n[[secret]]\nname = \"db-password\"\nstored_on = ['PayrollRecord::\"run-42/emp-7\"']\ngrants = ['Dataset::\"customer-pii\"']\n";
    let s = Scenario::parse(&text, "secret.toml").unwrap();
    let stream = Stream::draw(&s, 11);
    let mut d = Native::new().unwrap();
    for design in Design::ALL {
        let m = events::run(&s, &stream, design, &mut d);
        assert_eq!(m.lateral_hops, 1, "{design:?}: {m:?}");
        assert!(m.blast_radius >= 2, "{design:?}: the record and the customer data: {m:?}");
    }
    // Without the password lying there, JIT and Writ stop at the record.
    let alone = Scenario::parse(
        &text.replace("stored_on = ['PayrollRecord::\"run-42/emp-7\"']", "stored_on = []"),
        "alone.toml",
    )
    .unwrap();
    for design in [Design::Jit, Design::Writ] {
        let m = events::run(&alone, &Stream::draw(&alone, 11), design, &mut d);
        assert_eq!((m.blast_radius, m.lateral_hops), (1, 0), "{design:?}");
    }
    // A secret naming an unknown resource is refused.
    let bad = text.replace("grants = ['Dataset::\"customer-pii\"']", "grants = ['Dataset::\"nowhere\"']");
    assert!(
        Scenario::parse(&bad, "bad.toml").unwrap_err().0.contains("secret `db-password` names `Dataset::\"nowhere\"`")
    );
}

#[test]
fn a_hijacked_broker_opens_a_task_of_its_own_where_a_plain_agent_cannot() {
    // Without tasks running, the hijacked agent can only ask for a task of its own: the
    // shipped pack lets brokers open tasks (and analysts read the summary in them), not others.
    let mut s = Scenario::parse(HANDED_ON, "handed-on.toml").unwrap();
    s.workflows[0].rate_per_hour = 0.0;
    s.breach.detection_dwell_s = u64::MAX / 4;
    s.breach.hijacks_per_year = 1e5;
    let mut d = Native::new().unwrap();
    let stream = Stream::draw(&s, 4);
    let hijacked: std::collections::BTreeSet<usize> = stream.hijack_times().iter().map(|h| h.0).collect();
    assert_eq!(hijacked.len(), 2, "both agents hijacked");
    let writ = events::run(&s, &stream, Design::Writ, &mut d);
    // Only the broker's hijacks yield credentials: one task each, the summary's read in it;
    // handing that credential on to the attacker's own workload is refused (the pack's
    // `delegate-same-domain` knows no such agent).
    let broker_hijacks = stream.hijack_times().iter().filter(|h| h.0 == 0).count() as u64;
    assert_eq!(writ.credentials_issued, broker_hijacks, "{writ:?}");
    assert_eq!(writ.blast_radius, 1);
}
