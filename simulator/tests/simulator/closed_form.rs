//! Tiny scenarios whose expected leaks, exposure windows and uses can be computed by hand,
//! checked within statistical tolerance over replications; and monotonicity on the same draws.

use proptest::prelude::*;
use writ_simulator::decide::Native;
use writ_simulator::design::Design;
use writ_simulator::events::{self, Trace};
use writ_simulator::scenario::{Scenario, YEAR_S};
use writ_simulator::stream::Stream;

use crate::shipped::compressed;

/// Detection and remediation never come; one agent with its secret in one place; nobody is
/// hijacked. `{…}` fields are filled in by each test.
const ONE_AGENT: &str = r#"
name = "one-agent"
horizon_hours = {horizon}
warmup_hours = {warmup}
[breach]
duplication_rate = 0.0
exposures_per_year = {exposures}
time_to_exploit_s = {exploit}
hijacks_per_year = 0
remediations_per_day = 0
detection_dwell_s = 4000000000000000000
[design]
rotation_period_s = {period}
rotation_grace_s = {grace}
ttl_s = {ttl}
[[agent]]
id = "spiffe://acme.example/agent/payroll"
[[resource]]
uid = 'Doc::"d"'
sensitivity = 1
actions = ["read"]
[[workflow]]
name = "w"
rate_per_hour = {tasks}
[[workflow.step]]
at = 0
agent = "spiffe://acme.example/agent/payroll"
action = "read"
resource = 'Doc::"d"'
[[workflow.step]]
at = 600
agent = "spiffe://acme.example/agent/payroll"
action = "read"
resource = 'Doc::"d"'
"#;

fn one_agent(fields: &[(&str, f64)]) -> Scenario {
    let mut text = ONE_AGENT.to_string();
    for (k, v) in fields {
        text = text.replace(&format!("{{{k}}}"), &format!("{v}"));
    }
    Scenario::parse(&text, "one-agent.toml").unwrap()
}

/// Mean and standard error of `v`.
fn mean_se(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// `got` is within four standard errors (plus `slack` of `want`, for whole-second rounding)
/// of `want`.
fn close(what: &str, v: &[f64], want: f64, slack: f64) {
    let (mean, se) = mean_se(v);
    assert!((mean - want).abs() <= 4.0 * se + slack * want.abs(), "{what}: {mean} ± {se} (SE), expected {want}");
}

#[test]
fn a_rotated_secret_leaks_and_stays_usable_as_computed_by_hand() {
    // 60 days, 2 of warm-up; a secret rotated daily with an hour of grace, exposed 2000 times
    // a year in its one place.
    let (horizon, warmup, period, grace, rate) = (60.0 * 24.0, 48.0, 86_400.0, 3600.0, 2000.0);
    let s = one_agent(&[
        ("horizon", horizon),
        ("warmup", warmup),
        ("exposures", rate),
        ("exploit", 0.0),
        ("period", period),
        ("grace", grace),
        ("ttl", 900.0),
        ("tasks", 0.0),
    ]);
    let attacked = (horizon - warmup) * 3600.0;
    let mut d = Native::new().unwrap();
    let (mut exposures, mut rot_leaks, mut rot_window, mut static_window) = (vec![], vec![], vec![], vec![]);
    for seed in 0..20 {
        let stream = Stream::draw(&s, seed);
        exposures.push(stream.exposure_times().len() as f64);
        assert!(stream.exposure_times().iter().all(|x| x.2 as f64 >= warmup * 3600.0), "nothing in the warm-up");
        let rot = events::run(&s, &stream, Design::RotationOnly, &mut d);
        rot_leaks.push(rot.leaks as f64 / exposures[exposures.len() - 1]);
        rot_window.push(rot.exposure_window_s);
        static_window.push(events::run(&s, &stream, Design::Static, &mut d).exposure_window_s);
    }
    // A Poisson process: rate × time exposures.
    close("exposures", &exposures, rate * attacked / YEAR_S, 0.0);
    // An exposure finds the current secret, and the one before it while in its grace.
    close("leaks per exposure", &rot_leaks, 1.0 + grace / period, 0.0);
    // Uniform within the rotation period: half a period to the next rotation, then the grace.
    close("rotation-only window", &rot_window, period / 2.0 + grace, 0.01);
    // Never replaced: usable to the end of the horizon, half the attacked time on average.
    close("static window", &static_window, attacked / 2.0, 0.01);
}

#[test]
fn a_task_credential_leaks_and_is_used_as_computed_by_hand() {
    // Tasks arrive 6 an hour, each holding a credential for min(TTL, task) = 300 s; working
    // memory is exposed 100 000 times a year; the attacker needs 120 s on average.
    let (rho, ttl, mu, rate, horizon) = (6.0 / 3600.0, 300.0, 120.0, 100_000.0, 200.0);
    let s = one_agent(&[
        ("horizon", horizon),
        ("warmup", 0.0),
        ("exposures", rate),
        ("exploit", mu),
        ("period", 86_400.0),
        ("grace", 0.0),
        ("ttl", ttl),
        ("tasks", 6.0),
    ]);
    let mut d = Native::new().unwrap();
    let (mut leaks, mut uses) = (vec![], vec![]);
    for seed in 0..20 {
        let stream = Stream::draw(&s, seed);
        let n = stream.exposure_times().len() as f64;
        let mut trace = Trace::default();
        let m = events::run_traced(&s, &stream, Design::Jit, &mut d, Some(&mut trace));
        leaks.push(m.leaks as f64 / n);
        uses.push(trace.uses.len() as f64 / n);
    }
    // Campbell: the credentials live at a random moment are Poisson with mean ρ × lifetime.
    close("leaks per exposure", &leaks, rho * ttl, 0.0);
    // A leak at age x of the lifetime L works if the exponential delay is below L − x:
    // ρ ∫₀ᴸ (1 − e^{−(L−x)/μ}) dx = ρ (L − μ (1 − e^{−L/μ})). Delays are whole seconds (1%).
    close("uses per exposure", &uses, rho * (ttl - mu * (1.0 - (-ttl / mu).exp())), 0.01);
}

#[test]
fn a_static_secret_is_reached_with_the_poisson_probability_of_an_exposure() {
    // Two exposures a year over 58 attacked days: reached with probability 1 − e^{−2·58/365}.
    let s = one_agent(&[
        ("horizon", 60.0 * 24.0),
        ("warmup", 48.0),
        ("exposures", 2.0),
        ("exploit", 0.0),
        ("period", 86_400.0),
        ("grace", 0.0),
        ("ttl", 900.0),
        ("tasks", 0.0),
    ]);
    let mut d = Native::new().unwrap();
    let reached: Vec<f64> = (0..1000)
        .map(|seed| events::run(&s, &Stream::draw(&s, seed), Design::Static, &mut d).blast_radius as f64)
        .collect();
    close("P(reached)", &reached, 1.0 - (-2.0 * 58.0 / 365.0f64).exp(), 0.0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// On the same draws, with detection and remediation off (a detection replaces or cuts
    /// off what other breaches obtained, so more breaches can end an attacker's use sooner):
    /// higher exposure and hijack rates never shrink any design's blast radius or leaks.
    #[test]
    fn higher_breach_rates_never_shrink_the_blast_radius(seed in any::<u64>(), which in 0usize..6, more in 1.0f64..4.0) {
        let mut s = compressed().swap_remove(which);
        s.breach.detection_dwell_s = u64::MAX / 4;
        s.breach.remediations_per_day = 0.0;
        let mut d = Native::new().unwrap();
        let low_stream = Stream::draw(&s, seed);
        let mut high = s.clone();
        high.breach.exposures_per_year *= more;
        high.breach.hijacks_per_year *= more;
        let high_stream = Stream::draw(&high, seed);
        // The higher rates keep every event of the lower ones.
        let (lo, hi) = (low_stream.exposure_times(), high_stream.exposure_times());
        prop_assert!(lo.iter().all(|x| hi.contains(x)), "exposures are a superset");
        prop_assert!(low_stream.hijack_times().iter().all(|x| high_stream.hijack_times().contains(x)));
        for design in [Design::Static, Design::RotationOnly, Design::Vaulted, Design::LeastPrivilege, Design::Jit] {
            let a = events::run(&s, &low_stream, design, &mut d);
            let b = events::run(&high, &high_stream, design, &mut d);
            prop_assert!(a.blast_radius <= b.blast_radius && a.leaks <= b.leaks, "{design:?}: {a:?} vs {b:?}");
        }
    }
}
