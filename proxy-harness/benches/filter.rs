//! Per-request time of `writ-proxy.wasm` in the proxy-wasm harness: one whole HTTP stream as
//! Envoy drives it (context create, request headers, done, log, delete), identity cached.
//! `cargo bench -p writ-proxy-harness --bench filter`; BENCHMARKS.md quotes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use std::hint::black_box;
use writ_proxy_harness::FilterModule;

fn filter(c: &mut Criterion) {
    let module = FilterModule::built().unwrap();
    let w = writ_tests::filter_world::World::new();
    let payroll = w.workload("/agent/payroll");
    let mut g = c.benchmark_group("filter");

    // Allow over mTLS (Envoy's connection properties), audit line on.
    let mut vm = w.vm(&module, json!({}));
    let req = payroll.over_mtls("GET", "/payroll/run-42/emp-7");
    assert!(vm.request(&req).unwrap().continued());
    g.bench_function("allow/mtls", |b| {
        b.iter(|| {
            let r = vm.request(black_box(&req)).unwrap();
            vm.take_logs();
            r
        })
    });

    let mut quiet = w.vm(&module, json!({ "audit": false }));
    g.bench_function("allow/mtls-no-audit", |b| b.iter(|| quiet.request(black_box(&req)).unwrap()));

    let deny = payroll.over_mtls("GET", "/datasets/customer-pii");
    assert!(!vm.request(&deny).unwrap().continued());
    g.bench_function("deny/mtls", |b| {
        b.iter(|| {
            let r = vm.request(black_box(&deny)).unwrap();
            vm.take_logs();
            r
        })
    });

    // A forwarded chain, attested once and then from the cache.
    let mut xfcc_vm = w.vm(&module, json!({ "identity_sources": ["xfcc"] }));
    let xreq = writ_proxy_harness::HttpRequest::new("GET", "/payroll/run-42/emp-7")
        .header("x-forwarded-client-cert", &payroll.xfcc());
    assert!(xfcc_vm.request(&xreq).unwrap().continued());
    g.bench_function("allow/xfcc-chain-cached", |b| {
        b.iter(|| {
            let r = xfcc_vm.request(black_box(&xreq)).unwrap();
            xfcc_vm.take_logs();
            r
        })
    });

    // A presented credential, verified once and then from the cache.
    let token = w.credential(&payroll, "run-42", &[("read", r#"PayrollRecord::"run-42/emp-7""#)], 120);
    let preq = payroll.over_mtls("GET", "/payroll/run-42/emp-7").header("authorization", &format!("Bearer {token}"));
    assert!(vm.request(&preq).unwrap().continued());
    g.bench_function("allow/present-cached", |b| {
        b.iter(|| {
            let r = vm.request(black_box(&preq)).unwrap();
            vm.take_logs();
            r
        })
    });
    g.finish();

    // Percentiles (criterion reports means): 20 000 streams each, in test mode 100.
    let n = if std::env::args().any(|a| a == "--bench") { 20_000 } else { 100 };
    let row = |name: &str, vm: &mut writ_proxy_harness::Vm, req: &writ_proxy_harness::HttpRequest| {
        let (p50, p99) = writ_tests::timing::percentiles(
            || {
                black_box(vm.request(req).unwrap());
                vm.take_logs();
            },
            n,
        );
        println!("filter percentiles {name}: p50 {p50:.2} µs, p99 {p99:.2} µs");
    };
    row("allow/mtls", &mut vm, &req);
    row("deny/mtls", &mut vm, &deny);
    row("allow/xfcc-chain-cached", &mut xfcc_vm, &xreq);
    row("allow/present-cached", &mut vm, &preq);
}

criterion_group!(benches, filter);
criterion_main!(benches);
