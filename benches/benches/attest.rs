#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Attestation and instantiation figures, native and through the component, in one run.
//!
//! `cargo bench -p writ-benches --bench attest` — BENCHMARKS.md's attestation table comes from this.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use writ_core::crypto::RustCrypto;
use writ_host::{AuditSink, CryptoProvider, Writ};
use writ_tests::NOW;
use writ_tests::jwt::{JwsAlg, Signer, claims, spiffe_bundle};
use writ_tests::pki::{KeyAlg, Pki, leaf_params};
use writ_tests::ring_crypto::RingCrypto;

const TD: &str = "example.org";

/// `n` distinct 2-certificate P-256 chains (leaf + intermediate), so none is cached.
fn fresh_chains(pki: &Pki, n: u64) -> Vec<Vec<Vec<u8>>> {
    (0..n)
        .map(|i| {
            vec![
                pki.intermediate.sign(&leaf_params(&format!("spiffe://{TD}/w/{i}")), KeyAlg::P256),
                pki.intermediate.der.clone(),
            ]
        })
        .collect()
}

fn component(pki: &Pki, provider: CryptoProvider) -> Writ {
    let writ = Writ::builder().time(NOW).build().unwrap_or_else(|e| panic!("component: {e}"));
    writ.set_bundle(TD, &pki.bundle_pem()).unwrap_or_else(|e| panic!("{e}"));
    writ.set_crypto_provider(provider).unwrap_or_else(|e| panic!("{e}"));
    writ
}

fn native(pki: &Pki) -> writ_core::Writ {
    let mut e = writ_core::Writ::default();
    e.set_bundle(TD, &pki.bundle_pem()).unwrap_or_else(|e| panic!("{e}"));
    e
}

/// `n` distinct root→leaf chains (one certificate presented, one signature to check).
fn fresh_root_leaves(pki: &Pki, n: u64) -> Vec<Vec<Vec<u8>>> {
    (0..n).map(|i| vec![pki.root.sign(&leaf_params(&format!("spiffe://{TD}/r/{i}")), KeyAlg::P256)]).collect()
}

/// Time `iters` attestations of chains never seen before (generated outside the timing).
fn cold(iters: u64, pki: &Pki, attest: impl FnMut(&[Vec<u8>])) -> Duration {
    cold_of(fresh_chains(pki, iters), attest)
}

fn cold_of(chains: Vec<Vec<Vec<u8>>>, mut attest: impl FnMut(&[Vec<u8>])) -> Duration {
    let start = Instant::now();
    for c in &chains {
        attest(c);
    }
    start.elapsed()
}

fn x509(c: &mut Criterion) {
    let pki = Pki::new(TD, KeyAlg::P256);
    let chain = pki.chain3("/w", KeyAlg::P256);
    let mut g = c.benchmark_group("attest_x509_p256_2cert");
    g.sample_size(20).measurement_time(Duration::from_secs(4));

    let mut n = native(&pki);
    g.bench_function("cold/native_ring", |b| {
        b.iter_custom(|i| cold(i, &pki, |c| drop(black_box(n.attest_x509(c, NOW, &RingCrypto)))))
    });
    let mut n = native(&pki);
    g.bench_function("cold/native_rustcrypto", |b| {
        b.iter_custom(|i| cold(i, &pki, |c| drop(black_box(n.attest_x509(c, NOW, &RustCrypto::new())))))
    });
    let w = component(&pki, CryptoProvider::Host);
    g.bench_function("cold/component_host_crypto", |b| {
        b.iter_custom(|i| cold(i, &pki, |c| drop(black_box(w.attest_x509(c)))))
    });
    let w = component(&pki, CryptoProvider::Builtin);
    g.bench_function("cold/component_rustcrypto", |b| {
        b.iter_custom(|i| cold(i, &pki, |c| drop(black_box(w.attest_x509(c)))))
    });

    let mut n = native(&pki);
    g.bench_function("cached/native", |b| b.iter(|| black_box(n.attest_x509(&chain, NOW, &RingCrypto))));
    let w = component(&pki, CryptoProvider::Host);
    g.bench_function("cached/component", |b| b.iter(|| black_box(w.attest_x509(&chain))));
    let audited = Writ::builder()
        .time(NOW)
        .audit(AuditSink::callback(|e| {
            black_box(e);
        }))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    audited.set_bundle(TD, &pki.bundle_pem()).unwrap_or_else(|e| panic!("{e}"));
    g.bench_function("cached/component_audited", |b| b.iter(|| black_box(audited.attest_x509(&chain))));
    g.finish();

    let mut g = c.benchmark_group("attest_x509_p256_root_leaf");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    let mut n = native(&pki);
    g.bench_function("cold/native_ring", |b| {
        b.iter_custom(|i| cold_of(fresh_root_leaves(&pki, i), |c| drop(black_box(n.attest_x509(c, NOW, &RingCrypto)))))
    });
    let w = component(&pki, CryptoProvider::Host);
    g.bench_function("cold/component_host_crypto", |b| {
        b.iter_custom(|i| cold_of(fresh_root_leaves(&pki, i), |c| drop(black_box(w.attest_x509(c)))))
    });
    g.finish();
}

fn jwt(c: &mut Criterion) {
    let mut g = c.benchmark_group("attest_jwt");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for alg in [JwsAlg::ES256, JwsAlg::RS256] {
        let s = Signer::new("k", alg);
        let bundle = spiffe_bundle(&[&s], &[]);
        let token = s.token(&claims("spiffe://example.org/w", "writ"));
        let mut e = writ_core::Writ::default();
        e.set_bundle(TD, &bundle).unwrap_or_else(|e| panic!("{e}"));
        g.bench_function(format!("{}/native_ring", alg.name()), |b| {
            b.iter(|| black_box(e.attest_jwt(&token, "writ", NOW, &RingCrypto)))
        });
        let w = Writ::builder().time(NOW).build().unwrap_or_else(|e| panic!("{e}"));
        w.set_bundle(TD, &bundle).unwrap_or_else(|e| panic!("{e}"));
        g.bench_function(format!("{}/component_host_crypto", alg.name()), |b| {
            b.iter(|| black_box(w.attest_jwt(&token, "writ")))
        });
    }
    g.finish();
}

fn instantiate(c: &mut Criterion) {
    let w = Writ::builder().build().unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("instantiate");
    g.bench_function("pooled_from_precompiled_cache", |b| {
        b.iter(|| w.instantiate_bare().unwrap_or_else(|e| panic!("{e}")))
    });
    g.finish();
}

criterion_group!(benches, x509, jwt, instantiate);
criterion_main!(benches);
