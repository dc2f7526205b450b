//! The MCP gateway's added latency: the same `tools/call` sent straight to an upstream and
//! through `writ serve`'s gateway (attest the agent's JWT-SVID, decide on the arguments, mint a
//! credential for the call, forward), in one run, at a fixed rate and at saturation. The
//! upstream is a minimal MCP endpoint in this process (it answers every `tools/call` at once),
//! so what differs between the two paths is the gateway alone.
//!
//! `cargo run --release -p writ-server --example mcp_load -- [RATE] [SECONDS] [THREADS] [notask]`
//!
//! `notask`: the calls name no task, so no credential is minted for them.
//!
//! A plain forwarding proxy (no attestation, no decision) runs beside them: what one proxy hop
//! costs on this machine, so the gateway's own share can be told from the hop's.
//!
//! Prints, per path: calls, calls/s, p50/p90/p99 in µs, errors; then the added p50 and p99.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Bytes;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use writ_tests::NOW;
use writ_tests::jwt::{JwsAlg, Signer, claims, spiffe_bundle};
use writ_tests::pki::{KeyAlg, Pki};

/// The upstream: every POST answered with a tool result for its id.
fn start_upstream() -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/mcp",
                axum::routing::post(|body: Bytes| async move {
                    let id = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("id").cloned());
                    axum::Json(json!({ "jsonrpc": "2.0", "id": id,
                        "result": { "content": [{ "type": "text", "text": "paid" }], "isError": false } }))
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// A plain forwarding proxy in front of `upstream`, on a runtime like the server's (two
/// workers): the request's body forwarded with reqwest, the answer's returned. No attestation,
/// no decision, no credential: what any proxy hop costs on this machine, the gateway's floor.
fn start_proxy(upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            let target = format!("http://{upstream}/mcp");
            let app = axum::Router::new().route(
                "/mcp",
                axum::routing::post(move |headers: axum::http::HeaderMap, body: Bytes| {
                    let (client, target) = (client.clone(), target.clone());
                    async move {
                        let mut req = client.post(&target).body(body);
                        for name in ["content-type", "accept"] {
                            if let Some(v) = headers.get(name) {
                                req = req.header(name, v);
                            }
                        }
                        let answer = req.send().await.unwrap();
                        let status = answer.status().as_u16();
                        let bytes = answer.bytes().await.unwrap();
                        (axum::http::StatusCode::from_u16(status).unwrap(), bytes)
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

struct Run {
    latencies_us: Vec<f64>,
    errors: u64,
    elapsed: Duration,
}

/// `threads` clients for `seconds`; each sends at `rate / threads` calls/s (0: as fast as it can).
fn run(url: &str, headers: &[(&str, String)], rate: u64, seconds: u64, threads: u64) -> Run {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": "pay", "arguments": { "amount": 50, "to": "acme" } } })
    .to_string();
    let started = Instant::now();
    let per_thread: Vec<(Vec<f64>, u64)> = std::thread::scope(|s| {
        (0..threads)
            .map(|_| {
                let body = body.clone();
                s.spawn(move || {
                    let client = reqwest::blocking::Client::builder().build().unwrap();
                    let (mut lat, mut errors) = (Vec::new(), 0u64);
                    let interval = (rate > 0).then(|| Duration::from_secs_f64(threads as f64 / rate as f64));
                    let t0 = Instant::now();
                    let mut n = 0u32;
                    while t0.elapsed() < Duration::from_secs(seconds) {
                        let due = interval.map(|i| t0 + i * n);
                        if let Some(due) = due {
                            let now = Instant::now();
                            if due > now {
                                std::thread::sleep(due - now);
                            }
                        }
                        n += 1;
                        // At a fixed rate, latency counts from when the call was due.
                        let from = due.unwrap_or_else(Instant::now);
                        let mut req = client
                            .post(url)
                            .header("content-type", "application/json")
                            .header("accept", "application/json, text/event-stream")
                            .body(body.clone());
                        for (k, v) in headers {
                            req = req.header(*k, v);
                        }
                        match req.send().and_then(|r| r.error_for_status()).and_then(|r| r.bytes()) {
                            Ok(b) if !b.windows(7).any(|w| w == b"\"error\"") => {
                                lat.push(from.elapsed().as_secs_f64() * 1e6)
                            }
                            _ => errors += 1,
                        }
                    }
                    (lat, errors)
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect()
    });
    let mut latencies_us: Vec<f64> = per_thread.iter().flat_map(|(l, _)| l.iter().copied()).collect();
    latencies_us.sort_by(f64::total_cmp);
    Run { latencies_us, errors: per_thread.iter().map(|(_, e)| e).sum(), elapsed: started.elapsed() }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let rate: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let seconds: u64 = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let threads: u64 = std::env::args().nth(3).and_then(|a| a.parse().ok()).unwrap_or(2);
    let dir = std::env::temp_dir().join(format!("writ-mcp-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pki = Pki::new("acme.example", KeyAlg::P256);
    let key = Signer::new("agents-1", JwsAlg::ES256);
    std::fs::write(dir.join("bundle.json"), spiffe_bundle(&[&key], &[&pki.root.der])).unwrap();
    std::fs::write(
        dir.join("p.cedar"),
        r#"permit(principal, action == Action::"pay", resource == McpServer::"payments") when { context.input.amount <= 100 };
           permit(principal, action == Action::"open_task", resource);"#,
    )
    .unwrap();
    let upstream = start_upstream();
    let mut config = writ_server::Config {
        audit: "off".into(),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        bundles: [("acme.example".to_string(), dir.join("bundle.json"))].into(),
        policies: Some(dir.join("p.cedar")),
        state: Some("memory".into()),
        ..writ_server::Config::default()
    };
    config.mcp.upstreams = vec![writ_server::config::McpUpstream {
        name: "payments".into(),
        url: format!("http://{upstream}/mcp"),
        audience: None,
    }];
    let running = writ_server::start(config).unwrap();
    running.writ().set_time(Some(NOW));
    let token = key.token(&claims("spiffe://acme.example/agent/payroll", "writ"));
    let agent = running.writ().attest_token(&token, "writ").unwrap();
    running.writ().open_task(&agent, "run-1", std::slice::from_ref(&agent.spiffe_id), "load", NOW + 3600).unwrap();
    let direct = format!("http://{upstream}/mcp");
    let proxy = format!("http://{}/mcp", start_proxy(upstream));
    let gateway = format!("http://{}/mcp/payments", running.http.unwrap());
    let mut agent_headers = vec![("authorization", format!("Bearer {token}"))];
    if std::env::args().nth(4).as_deref() != Some("notask") {
        agent_headers.push(("x-writ-task", "run-1".to_string()));
    }
    println!("mcp_load: tools/call, {seconds} s per row, {threads} client threads, upstream in process");
    println!(
        "{:<28} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "path", "calls", "calls/s", "p50 µs", "p90 µs", "p99 µs", "errors"
    );
    let mut rows = Vec::new();
    for (label, r) in [(format!("at {rate}/s"), rate), ("at saturation".to_string(), 0)] {
        let paths = [
            ("direct", &direct, vec![]),
            ("plain proxy", &proxy, vec![]),
            ("gateway", &gateway, agent_headers.clone()),
        ];
        for (path, url, headers) in paths {
            // A second to warm up (connections, caches) before each measured row.
            run(url, &headers, r, 1, threads);
            let out = run(url, &headers, r, seconds, threads);
            let l = &out.latencies_us;
            let name = format!("{path} {label}");
            println!(
                "{name:<28} {:>8} {:>9.0} {:>9.1} {:>9.1} {:>9.1} {:>7}",
                l.len(),
                l.len() as f64 / out.elapsed.as_secs_f64(),
                pct(l, 0.5),
                pct(l, 0.9),
                pct(l, 0.99),
                out.errors
            );
            rows.push((label.clone(), path, pct(l, 0.5), pct(l, 0.99)));
        }
    }
    for three in rows.chunks(3) {
        if let [(label, _, d50, d99), (_, _, p50, p99), (_, _, g50, g99)] = three {
            println!("added by a plain proxy {label}: p50 {:.1} µs, p99 {:.1} µs", p50 - d50, p99 - d99);
            println!("added by the gateway {label}: p50 {:.1} µs, p99 {:.1} µs", g50 - d50, g99 - d99);
            println!("the gateway over a plain proxy {label}: p50 {:.1} µs, p99 {:.1} µs", g50 - p50, g99 - p99);
        }
    }
    running.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
