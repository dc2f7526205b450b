#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Authorization figures: `check` with an attested identity, for the shipped pack and for
//! generated sets of 10/100/1000 policies, natively and through the component, same run —
//! each evaluated (decision memo off: Cedar runs every time) and repeated (memo on: the same
//! request answered from memory). Criterion gives the means; under `cargo bench` a percentile
//! pass also prints p50/p99 and the component/native ratio.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use writ_host::Writ;
use writ_tests::NOW;
use writ_tests::timing::percentiles;
use writ_tests::attester::{host_identity, host_intent};
use writ_tests::pack::{self, identity, intent};

/// `n` single-principal policies; the request matches exactly one of them.
fn generated(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "@id(\"p{i}\") permit(principal == Agent::\"spiffe://acme.example/agent/{i}\", action == Action::\"read\", resource == Dataset::\"d{i}\");\n"
            )
        })
        .collect()
}

struct Setup {
    name: String,
    native: writ_core::Engine,
    component: Writ,
    /// The same with the decision memo off.
    native_eval: writ_core::Engine,
    component_eval: Writ,
    who: writ_core::Identity,
    what: writ_core::Intent,
}

fn setups() -> Vec<Setup> {
    let mut out = Vec::new();
    let mut add = |name: String, p: &str, s: Option<&str>, e: Option<&str>, who: &str, what: writ_core::Intent| {
        let mut native = writ_core::Engine::default();
        native.set_policies(p, s, e).unwrap();
        let component = Writ::builder().time(NOW).build().unwrap();
        component.set_policies(p, s, e).unwrap();
        let mut native_eval = writ_core::Engine::default();
        native_eval.set_decision_memo(false);
        native_eval.set_policies(p, s, e).unwrap();
        let component_eval = component.fork();
        component_eval.set_decision_memo(false).unwrap();
        component_eval.set_policies(p, s, e).unwrap();
        let who = identity(who, NOW + 3600);
        assert!(native.check(&who, &what, NOW).allow, "{name}: the benchmark request must be allowed");
        assert!(native_eval.check(&who, &what, NOW).allow);
        out.push(Setup { name, native, component, native_eval, component_eval, who, what });
    };
    add(
        "shipped_pack".into(),
        &pack::policies(),
        Some(&pack::schema()),
        Some(&pack::entities()),
        "spiffe://acme.example/agent/payroll",
        intent("read", r#"PayrollRecord::"run-42/emp-7""#, "run-42", ""),
    );
    for n in [10, 100, 1000] {
        add(format!("generated_{n}"), &generated(n), None, None, "spiffe://acme.example/agent/0", intent("read", r#"Dataset::"d0""#, "t", ""));
    }
    out
}

fn criterion_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("authorize");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for s in setups() {
        let (who, what) = (host_identity(&s.who), host_intent(&s.what));
        g.bench_function(format!("{}/evaluated/native", s.name), |b| b.iter(|| black_box(s.native_eval.check(&s.who, &s.what, NOW))));
        g.bench_function(format!("{}/evaluated/component", s.name), |b| b.iter(|| black_box(s.component_eval.check(&who, &what).unwrap())));
        g.bench_function(format!("{}/repeated/native", s.name), |b| b.iter(|| black_box(s.native.check(&s.who, &s.what, NOW))));
        g.bench_function(format!("{}/repeated/component", s.name), |b| b.iter(|| black_box(s.component.check(&who, &what).unwrap())));
    }
    g.finish();
}

fn percentile_table(_: &mut Criterion) {
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --benches`: criterion runs each bench once; skip the long pass.
    }
    println!("\nauthorize percentiles (µs, 20000 calls each)");
    println!("{:<24} {:>11} {:>11} {:>14} {:>14} {:>9}", "policies", "native p50", "native p99", "component p50", "component p99", "ratio p50");
    for s in setups() {
        let (who, what) = (host_identity(&s.who), host_intent(&s.what));
        for (mode, native, component) in [("evaluated", &s.native_eval, &s.component_eval), ("repeated", &s.native, &s.component)] {
            let (np50, np99) = percentiles(|| drop(black_box(native.check(&s.who, &s.what, NOW))), 20_000);
            let (cp50, cp99) = percentiles(|| drop(black_box(component.check(&who, &what))), 20_000);
            println!("{:<24} {np50:>11.2} {np99:>11.2} {cp50:>14.2} {cp99:>14.2} {:>9.2}", format!("{} {mode}", s.name), cp50 / np50);
        }
    }
}

criterion_group!(benches, criterion_benches, percentile_table);
criterion_main!(benches);
