#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Credential figures: issue, present (cold: a token never seen; cached: the same token
//! again), delegate — natively (`writ-core` with `ring` and the host's issuer key) and through
//! the component, in the same run, for EdDSA and ES256 issuer keys. Under `cargo bench` a
//! percentile pass also prints p50/p99 and the component/native ratio.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use writ_core::{Env, MemoryLedger};
use writ_host::{IssuerAlg, IssuerKey, Writ};
use writ_tests::NOW;
use writ_tests::pack::{self, identity, intent};
use writ_tests::ring_crypto::RingIssuer;
use writ_tests::timing::{percentiles, percentiles_over};

const RECORD: &str = r#"PayrollRecord::"run-42/emp-7""#;
const SALES: &str = r#"Dataset::"sales-summary""#;

struct Native {
    engine: std::cell::RefCell<writ_core::Writ>,
    crypto: RingIssuer,
    ledger: MemoryLedger,
    n: std::cell::Cell<u64>,
}

impl Native {
    fn new(alg: IssuerAlg) -> Native {
        let mut engine = writ_core::Writ::default();
        engine.set_policies(&pack::policies(), Some(&pack::schema()), Some(&pack::entities())).unwrap();
        let ledger = MemoryLedger::new();
        for task in BENCH_TASKS {
            writ_tests::register_task(&ledger, task, &[], NOW);
        }
        Native {
            engine: engine.into(),
            crypto: RingIssuer::new(IssuerKey::generate_for(alg).unwrap(), NOW),
            ledger,
            n: Default::default(),
        }
    }

    fn env(&self) -> Env<'_> {
        self.n.set(self.n.get() + 1);
        let mut entropy = [0u8; 16];
        entropy[..8].copy_from_slice(&self.n.get().to_le_bytes());
        Env { now: NOW, crypto: &self.crypto, ledger: &self.ledger, entropy }
    }
}

/// The agents and intents every benchmark uses, natively and in the host's types.
struct Fixture {
    payroll: writ_core::Identity,
    broker: writ_core::Identity,
    browser: writ_core::Identity,
    /// The same agents attested from SVIDs of the pack's PKI (every component here trusts it).
    hpayroll: writ_host::Attested,
    hbroker: writ_host::Attested,
    hbrowser: writ_host::Attested,
    /// Reading the payroll record: the payroll agent's scope and its one intent.
    scope: [writ_core::Intent; 1],
    read: writ_core::Intent,
    hscope: Vec<writ_host::Intent>,
    hread: writ_host::Intent,
    /// Reading the sales summary: the broker's scope, delegated to the browser agent.
    sales: [writ_core::Intent; 1],
    hsales: Vec<writ_host::Intent>,
}

fn fixture() -> Fixture {
    let who = |s: &str| writ_core::Identity {
        thumbprint: format!("thumb-{s}"),
        ..identity(&format!("spiffe://acme.example/agent/{s}"), NOW + 7200)
    };
    let (payroll, broker, browser) = (who("payroll"), who("broker"), who("browser"));
    let attester = Writ::builder().time(NOW).build().unwrap();
    writ_tests::trust_pack_pki(&attester);
    let attest = |s: &str| {
        let chain = writ_tests::pack_pki().chain3(&format!("/agent/{s}"), writ_tests::pki::KeyAlg::P256);
        attester.attest_x509(&chain).unwrap()
    };
    let read = intent("read", RECORD, "", "");
    let sales = [intent("read", SALES, "", "")];
    Fixture {
        hpayroll: attest("payroll"),
        hbroker: attest("broker"),
        hbrowser: attest("browser"),
        payroll,
        broker,
        browser,
        scope: [read.clone()],
        hscope: vec![read.clone()],
        hread: read.clone(),
        read,
        hsales: sales.to_vec(),
        sales,
    }
}

/// The tasks the benchmarks issue credentials of (open, the pack's agents members).
const BENCH_TASKS: [&str; 3] = ["run-42", "p", "pipeline-1"];

fn component(alg: IssuerAlg) -> Writ {
    let writ = Writ::builder().time(NOW).issuer(IssuerKey::generate_for(alg).unwrap()).build().unwrap();
    writ_tests::trust_pack_pki(&writ);
    writ.set_policies(&pack::policies(), Some(&pack::schema()), Some(&pack::entities())).unwrap();
    writ_tests::open_pack_tasks(&writ, &BENCH_TASKS);
    writ
}

fn alg_name(alg: IssuerAlg) -> &'static str {
    match alg {
        IssuerAlg::EdDsa => "eddsa",
        IssuerAlg::Es256 => "es256",
    }
}

fn criterion_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("credentials");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    let Fixture { payroll, broker, browser, scope, read, hscope, hread, hpayroll, hbroker, hbrowser, sales, hsales } =
        fixture();
    for alg in [IssuerAlg::EdDsa, IssuerAlg::Es256] {
        let name = alg_name(alg);
        let n = Native::new(alg);
        let w = component(alg);

        g.bench_function(format!("issue/{name}/native"), |b| {
            b.iter(|| black_box(n.engine.borrow().issue(&payroll, "run-42", &scope, 600, "api", &n.env()).unwrap()))
        });
        g.bench_function(format!("issue/{name}/component"), |b| {
            b.iter(|| black_box(w.issue(&hpayroll, "run-42", &hscope, 600, "api").unwrap()))
        });

        g.bench_function(format!("present_cold/{name}/native"), |b| {
            b.iter_batched(
                || n.engine.borrow().issue(&payroll, "run-42", &scope, 600, "api", &n.env()).unwrap().grant.token,
                |t| {
                    black_box(
                        n.engine.borrow_mut().present(&t, &payroll, &read, "api", NOW, &n.crypto, &n.ledger).unwrap(),
                    )
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function(format!("present_cold/{name}/component"), |b| {
            b.iter_batched(
                || w.issue(&hpayroll, "run-42", &hscope, 600, "api").unwrap().token,
                |t| black_box(w.present(&t, &hpayroll, &hread, "api").unwrap()),
                BatchSize::SmallInput,
            )
        });

        let token = n.engine.borrow().issue(&payroll, "run-42", &scope, 600, "api", &n.env()).unwrap().grant.token;
        g.bench_function(format!("present_cached/{name}/native"), |b| {
            b.iter(|| {
                black_box(
                    n.engine.borrow_mut().present(&token, &payroll, &read, "api", NOW, &n.crypto, &n.ledger).unwrap(),
                )
            })
        });
        let htoken = w.issue(&hpayroll, "run-42", &hscope, 600, "api").unwrap().token;
        g.bench_function(format!("present_cached/{name}/component"), |b| {
            b.iter(|| black_box(w.present(&htoken, &hpayroll, &hread, "api").unwrap()))
        });

        let parent = n.engine.borrow().issue(&broker, "p", &sales, 600, "bi", &n.env()).unwrap().grant.token;
        g.bench_function(format!("delegate/{name}/native"), |b| {
            b.iter(|| {
                black_box(n.engine.borrow_mut().delegate(&parent, &broker, &browser, &sales, 300, &n.env()).unwrap())
            })
        });
        let hparent = w.issue(&hbroker, "p", &hsales, 600, "bi").unwrap().token;
        g.bench_function(format!("delegate/{name}/component"), |b| {
            b.iter(|| black_box(w.delegate(&hparent, &hbroker, &hbrowser, &hsales, 300).unwrap()))
        });
    }
    // The same through the embedded state store (a SQLite state directory): every issue
    // registers its grant durably, every present reads the revocations committed since.
    let dir = std::env::temp_dir().join(format!("writ-bench-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let w = Writ::builder().time(NOW).state(writ_host::state::StateLocation::Dir(dir.clone())).build().unwrap();
    writ_tests::trust_pack_pki(&w);
    w.set_policies(&pack::policies(), Some(&pack::schema()), Some(&pack::entities())).unwrap();
    writ_tests::open_pack_tasks(&w, &BENCH_TASKS);
    g.bench_function("issue/eddsa/component-sqlite", |b| {
        b.iter(|| black_box(w.issue(&hpayroll, "run-42", &hscope, 600, "api").unwrap()))
    });
    let htoken = w.issue(&hpayroll, "run-42", &hscope, 600, "api").unwrap().token;
    g.bench_function("present_cached/eddsa/component-sqlite", |b| {
        b.iter(|| black_box(w.present(&htoken, &hpayroll, &hread, "api").unwrap()))
    });
    // And through NATS JetStream (a real nats-server on loopback): an issue waits for
    // JetStream's acknowledgements of its grant's index entries; a present reads this
    // process's view of the revocation stream (no round trip).
    let nats = writ_tests::nats_server::NatsServer::start();
    let location = writ_host::state::StateLocation::parse(&format!("{}/bench", nats.url())).unwrap();
    let w = Writ::builder().time(NOW).state(location).build().unwrap();
    writ_tests::trust_pack_pki(&w);
    w.set_policies(&pack::policies(), Some(&pack::schema()), Some(&pack::entities())).unwrap();
    writ_tests::open_pack_tasks(&w, &BENCH_TASKS);
    g.bench_function("issue/eddsa/component-nats", |b| {
        b.iter(|| black_box(w.issue(&hpayroll, "run-42", &hscope, 600, "api").unwrap()))
    });
    let htoken = w.issue(&hpayroll, "run-42", &hscope, 600, "api").unwrap().token;
    g.bench_function("present_cached/eddsa/component-nats", |b| {
        b.iter(|| black_box(w.present(&htoken, &hpayroll, &hread, "api").unwrap()))
    });
    g.finish();
    drop(w);
    drop(nats);
    let _ = std::fs::remove_dir_all(&dir);
}

fn percentile_table(_: &mut Criterion) {
    if !writ_tests::timing::percentile_pass() {
        return; // `cargo test --benches`: skip the long pass.
    }
    const N: usize = 4000;
    println!("\ncredential percentiles (µs, {N} calls each)");
    println!(
        "{:<22} {:>11} {:>11} {:>14} {:>14} {:>9}",
        "operation", "native p50", "native p99", "component p50", "component p99", "ratio p50"
    );
    let Fixture { payroll, broker, browser, scope, read, hscope, hread, hpayroll, hbroker, hbrowser, sales, hsales } =
        fixture();
    let row = |op: String, (np50, np99): (f64, f64), (cp50, cp99): (f64, f64)| {
        println!("{op:<22} {np50:>11.2} {np99:>11.2} {cp50:>14.2} {cp99:>14.2} {:>9.2}", cp50 / np50);
    };
    for alg in [IssuerAlg::EdDsa, IssuerAlg::Es256] {
        let name = alg_name(alg);
        let n = Native::new(alg);
        let w = component(alg);
        row(
            format!("issue {name}"),
            percentiles(
                || drop(black_box(n.engine.borrow().issue(&payroll, "run-42", &scope, 600, "api", &n.env()))),
                N,
            ),
            percentiles(|| drop(black_box(w.issue(&hpayroll, "run-42", &hscope, 600, "api"))), N),
        );
        let tokens: Vec<String> = (0..N)
            .map(|_| n.engine.borrow().issue(&payroll, "run-42", &scope, 600, "api", &n.env()).unwrap().grant.token)
            .collect();
        let htokens: Vec<String> =
            (0..N).map(|_| w.issue(&hpayroll, "run-42", &hscope, 600, "api").unwrap().token).collect();
        let native_cold = percentiles_over(tokens.clone(), |t| {
            drop(black_box(n.engine.borrow_mut().present(&t, &payroll, &read, "api", NOW, &n.crypto, &n.ledger)))
        });
        let component_cold =
            percentiles_over(htokens.clone(), |t| drop(black_box(w.present(&t, &hpayroll, &hread, "api"))));
        row(format!("present cold {name}"), native_cold, component_cold);
        row(
            format!("present cached {name}"),
            percentiles(
                || {
                    drop(black_box(
                        n.engine.borrow_mut().present(&tokens[0], &payroll, &read, "api", NOW, &n.crypto, &n.ledger),
                    ))
                },
                N,
            ),
            percentiles(|| drop(black_box(w.present(&htokens[0], &hpayroll, &hread, "api"))), N),
        );
        let parent = n.engine.borrow().issue(&broker, "p", &sales, 600, "bi", &n.env()).unwrap().grant.token;
        let hparent = w.issue(&hbroker, "p", &hsales, 600, "bi").unwrap().token;
        row(
            format!("delegate {name}"),
            percentiles(
                || drop(black_box(n.engine.borrow_mut().delegate(&parent, &broker, &browser, &sales, 300, &n.env()))),
                N,
            ),
            percentiles(|| drop(black_box(w.delegate(&hparent, &hbroker, &hbrowser, &hsales, 300))), N),
        );
    }
}

criterion_group!(benches, criterion_benches, percentile_table);
criterion_main!(benches);
