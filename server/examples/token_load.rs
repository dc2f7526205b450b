//! Load on `POST /token` over mTLS (wrk cannot present client certificates): starts a server
//! in this process on loopback, then `THREADS` clients (each its own SVID and keep-alive TLS
//! connection) exchange for `SECONDS`. Prints requests/s, p50/p99 and errors.
//!
//! `cargo run --release -p writ-server --example token_load -- [THREADS] [SECONDS] [STATE]`
//!
//! `STATE`: `memory` (default), `dir` (an embedded state store in a fresh directory: every
//! exchange registers its grant there, durably) or `nats` (a `nats-server` with JetStream
//! started for the run: every exchange waits for JetStream's acknowledgements).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};
use writ_tests::NOW;
use writ_tests::pki::{KeyAlg, Pki, pem_cert};

fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let seconds: u64 = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let state_kind = std::env::args().nth(3).unwrap_or_else(|| "memory".into());
    let dir = std::env::temp_dir().join(format!("writ-token-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Pki::new("acme.example", KeyAlg::P256);
    std::fs::write(dir.join("bundle.pem"), pki.bundle_pem()).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("server.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    let nats = (state_kind == "nats").then(writ_tests::nats_server::NatsServer::start);
    let config = writ_server::Config {
        audit: "off".into(),
        listen: None,
        tls_listen: Some("127.0.0.1:0".parse().unwrap()),
        tls_cert: Some(dir.join("server.pem")),
        tls_key: Some(dir.join("server.key")),
        bundles: [("acme.example".to_string(), dir.join("bundle.pem"))].into(),
        state: Some(match state_kind.as_str() {
            "memory" => "memory".to_string(),
            "dir" => dir.join("state").display().to_string(),
            "nats" => nats.as_ref().map(|n| n.url()).unwrap_or_default(),
            other => panic!("STATE is `memory`, `dir` or `nats`, not `{other}`"),
        }),
        ..writ_server::Config::default()
    };
    let running = writ_server::start(config).unwrap();
    running.writ().set_time(Some(NOW));
    let url = format!("https://{}/token", running.https.unwrap());
    let started = Instant::now();
    let results: Vec<(Vec<f64>, u64)> = std::thread::scope(|s| {
        (0..threads)
            .map(|_| {
                let (chain, key) = pki.svid("/agent/payroll", KeyAlg::P256);
                let pem = chain.iter().map(|c| pem_cert(c)).collect::<String>() + &key;
                let client = reqwest::blocking::Client::builder()
                    .use_rustls_tls()
                    .add_root_certificate(reqwest::Certificate::from_pem(ca_cert.pem().as_bytes()).unwrap())
                    .identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap())
                    .build()
                    .unwrap();
                let url = url.clone();
                s.spawn(move || {
                    let form = [
                        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
                        ("scope", "read"),
                        ("resource", r#"PayrollRecord::"run-42/emp-7""#),
                        ("task", "run-42"),
                        ("ttl", "300"),
                    ];
                    let (mut lat, mut errors) = (Vec::new(), 0);
                    while started.elapsed() < Duration::from_secs(seconds) {
                        let t = Instant::now();
                        match client.post(&url).form(&form).send() {
                            Ok(r) if r.status() == 200 => drop(r.bytes()),
                            _ => errors += 1,
                        }
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    (lat, errors)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let mut lat: Vec<f64> = results.iter().flat_map(|(l, _)| l.iter().copied()).collect();
    let errors: u64 = results.iter().map(|(_, e)| e).sum();
    lat.sort_by(f64::total_cmp);
    let p = |q: f64| lat[((q * (lat.len() - 1) as f64) as usize).min(lat.len() - 1)];
    println!(
        "POST /token over mTLS, state {state_kind}, {threads} clients, {seconds} s: {} requests, {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, errors {errors}",
        lat.len(),
        lat.len() as f64 / wall,
        p(0.5),
        p(0.99)
    );
    running.shutdown();
}
