//! Revocation propagation between two replicas over NATS JetStream on loopback: a
//! `nats-server` with JetStream is started for the run; replicas A and B (each its own `Writ`
//! and issuer key) share it. For each of `N` tasks, A issues a credential; then B ends the
//! task and A is asked to present the credential until it refuses it as revoked. Prints the
//! time from the start of B's `end_task` to A's first refusal (p50/p90/p99/max), and how long
//! B took to acknowledge (JetStream stored the revocation).
//!
//! `cargo run --release -p writ-server --example nats_propagation -- [N]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};
use writ_host::state::StateLocation;
use writ_host::{Error, Intent, Writ};
use writ_tests::NOW;
use writ_tests::nats_server::NatsServer;
use writ_tests::pack;
use writ_tests::pki::{KeyAlg, Pki};

fn percentiles(name: &str, mut xs: Vec<Duration>) {
    xs.sort();
    let at = |q: f64| xs[((xs.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3;
    println!(
        "{name:<34} p50 {:>7.2} ms   p90 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    let nats = NatsServer::start();
    let location = StateLocation::parse(&format!("{}/propagation", nats.url())).unwrap();
    let pki = Pki::new("acme.example", KeyAlg::P256);
    let replica = || {
        let w = Writ::builder().time(NOW).state(location.clone()).build().unwrap();
        w.set_bundle("acme.example", &pki.bundle_pem()).unwrap();
        w.set_policies(&pack::policies(), Some(&pack::schema()), Some(&pack::entities())).unwrap();
        w
    };
    let (a, b) = (replica(), replica());
    let broker = a.attest_x509(&pki.chain3("/agent/broker", KeyAlg::P256)).unwrap();
    let read = Intent {
        action: "read".into(),
        resource: r#"Dataset::"sales-summary""#.into(),
        task_id: String::new(),
        context: String::new(),
        input: String::new(),
    };
    let tokens: Vec<String> = (0..n)
        .map(|i| a.issue(&broker, &format!("pipeline-{i}"), std::slice::from_ref(&read), 600, "bi").unwrap().token)
        .collect();
    for t in &tokens {
        assert!(a.present(t, &broker, &read, "bi").unwrap().allow);
    }
    let (mut propagation, mut acknowledged) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for (i, t) in tokens.iter().enumerate() {
        let started = Instant::now();
        assert_eq!(b.end_task(&format!("pipeline-{i}")).unwrap(), 1);
        acknowledged.push(started.elapsed());
        loop {
            match a.present(t, &broker, &read, "bi") {
                Err(Error::Revoked(_)) => break,
                Ok(d) if d.allow => std::thread::sleep(Duration::from_micros(50)),
                other => panic!("{other:?}"),
            }
        }
        propagation.push(started.elapsed());
    }
    println!("{n} revocations, replica B to replica A over NATS JetStream (loopback)");
    percentiles("B's end_task acknowledged", acknowledged);
    percentiles("refused by A (from B's start)", propagation);
}
