#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Authorization figures: `check` with an attested identity (an X.509-SVID attested once: the
//! component holds it behind a handle), for the shipped pack, for
//! generated sets of 10/100/1000 single-principal policies and for 1000 policies keyed by
//! resource, natively and through the component, same run — each evaluated (decision memo off:
//! the index and Cedar run every time) and repeated (memo on: the same request answered from
//! memory). Criterion gives the means; under `cargo bench` a percentile
//! pass also prints p50/p99 and the component/native ratio. Both also time the call floor:
//! the cheapest call into the component, which no `check` through it can undercut.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use writ_host::Writ;
use writ_tests::NOW;
use writ_tests::pack::{self, identity, intent};
use writ_tests::timing::percentiles;

/// `n` policies for any principal, one per resource; the request matches exactly one of them
/// (scope-only: the index decides them by the resource, however many there are).
fn generated_by_resource(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!("@id(\"p{i}\") permit(principal, action == Action::\"read\", resource == Dataset::\"d{i}\");\n")
        })
        .collect()
}

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
    /// Natively, decisions go through `decide` against a ledger (the task record, cut-offs),
    /// as the component's `check` does.
    ledger: writ_core::MemoryLedger,
    crypto: writ_core::crypto::RustCrypto,
    native: writ_core::Writ,
    component: Writ,
    /// The same with the decision memo off.
    native_eval: writ_core::Writ,
    component_eval: Writ,
    who: writ_core::Identity,
    /// `who`, attested by the component from an SVID of the pack's PKI.
    attested: writ_host::Attested,
    what: writ_core::Intent,
}

/// `spiffe_id` (of `acme.example`) attested by `writ` from an SVID of the pack's PKI.
fn attest(writ: &Writ, spiffe_id: &str) -> writ_host::Attested {
    let path = spiffe_id.strip_prefix("spiffe://acme.example").unwrap();
    writ.attest_x509(&writ_tests::pack_pki().chain3(path, writ_tests::pki::KeyAlg::P256)).unwrap()
}

/// A component at [`NOW`] that trusts the pack's PKI.
fn component_at_now() -> Writ {
    let w = Writ::builder().time(NOW).build().unwrap();
    writ_tests::trust_pack_pki(&w);
    w
}

fn setups() -> Vec<Setup> {
    let mut out = Vec::new();
    let mut add = |name: String, p: &str, s: Option<&str>, e: Option<&str>, who: &str, what: writ_core::Intent| {
        let mut native = writ_core::Writ::default();
        native.set_policies(p, s, e).unwrap();
        let component = component_at_now();
        component.set_policies(p, s, e).unwrap();
        let mut native_eval = writ_core::Writ::default();
        native_eval.set_decision_memo(false);
        native_eval.set_policies(p, s, e).unwrap();
        let component_eval = component.fork();
        writ_tests::trust_pack_pki(&component_eval);
        component_eval.set_decision_memo(false).unwrap();
        component_eval.set_policies(p, s, e).unwrap();
        let attested = attest(&component, who);
        let who = identity(who, NOW + 3600);
        let (ledger, crypto) = (writ_core::MemoryLedger::new(), writ_core::crypto::RustCrypto::new());
        writ_tests::register_task(&ledger, &what.task_id, &[], NOW);
        if name == "shipped_pack" {
            writ_tests::open_pack_tasks(&component, &[&what.task_id]);
        }
        assert!(native.decide(&who, &what, NOW, 0, &ledger, &crypto).allow, "{name}: the request must be allowed");
        assert!(native_eval.decide(&who, &what, NOW, 0, &ledger, &crypto).allow);
        assert!(component.check(&attested, &what).unwrap().allow);
        out.push(Setup { name, ledger, crypto, native, component, native_eval, component_eval, who, attested, what });
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
        add(
            format!("generated_{n}"),
            &generated(n),
            None,
            None,
            "spiffe://acme.example/agent/0",
            intent("read", r#"Dataset::"d0""#, "t", ""),
        );
    }
    add(
        "by_resource_1000".into(),
        &generated_by_resource(1000),
        None,
        None,
        "spiffe://acme.example/agent/0",
        intent("read", r#"Dataset::"d0""#, "t", ""),
    );
    out
}

fn criterion_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("authorize");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for s in setups() {
        let (who, what) = (s.attested.clone(), s.what.clone());
        g.bench_function(format!("{}/evaluated/native", s.name), |b| {
            b.iter(|| black_box(s.native_eval.decide(&s.who, &s.what, NOW, 0, &s.ledger, &s.crypto)))
        });
        g.bench_function(format!("{}/evaluated/component", s.name), |b| {
            b.iter(|| black_box(s.component_eval.check(&who, &what).unwrap()))
        });
        g.bench_function(format!("{}/repeated/native", s.name), |b| {
            b.iter(|| black_box(s.native.decide(&s.who, &s.what, NOW, 0, &s.ledger, &s.crypto)))
        });
        g.bench_function(format!("{}/repeated/component", s.name), |b| {
            b.iter(|| black_box(s.component.check(&who, &what).unwrap()))
        });
    }
    let floor = floor_component();
    let held = floor_identity(&floor);
    g.bench_function("call_floor/component", |b| b.iter(|| black_box(floor_call(&floor, &held))));
    g.bench_function("rejected_attestation/component", |b| b.iter(|| black_box(rejected_attestation(&floor))));
    g.finish();
}

/// The floor under any `check` through the component: the cheapest call on the path `check`
/// takes (an instance checked out of the pool, the caller's handle lowered, its identity
/// record lifted back; no policy work, no import called).
fn floor_component() -> Writ {
    Writ::builder().time(NOW).build().unwrap()
}

fn floor_identity(w: &Writ) -> writ_host::Attested {
    w.assert_identity("spiffe://example.org/agent/floor", NOW + 3600, "bench").unwrap()
}

fn floor_call(w: &Writ, who: &writ_host::Attested) -> writ_host::Identity {
    let id = w.identity_in_component(who).unwrap();
    assert_eq!(id.spiffe_id, who.identity().spiffe_id, "the floor call reads the identity back");
    id
}

/// A rejected attestation: a one-byte JWT-SVID that fails to parse (two one-byte strings
/// lowered, the clock read, an error formatted and lifted): the floor of a call that fails.
fn rejected_attestation(w: &Writ) -> writ_host::Error {
    let err = w.attest_jwt("x", "a").unwrap_err();
    assert_eq!(err.kind(), "malformed", "the call must fail in parsing: {err}");
    err
}

fn percentile_table(_: &mut Criterion) {
    if !writ_tests::timing::percentile_pass() {
        return; // `cargo test --benches`: criterion runs each bench once; skip the long pass.
    }
    println!("\nauthorize percentiles (µs, 20000 calls each)");
    println!(
        "{:<24} {:>11} {:>11} {:>14} {:>14} {:>9}",
        "policies", "native p50", "native p99", "component p50", "component p99", "ratio p50"
    );
    for s in setups() {
        let (who, what) = (s.attested.clone(), s.what.clone());
        for (mode, native, component) in
            [("evaluated", &s.native_eval, &s.component_eval), ("repeated", &s.native, &s.component)]
        {
            let (np50, np99) =
                percentiles(|| drop(black_box(native.decide(&s.who, &s.what, NOW, 0, &s.ledger, &s.crypto))), 20_000);
            let (cp50, cp99) = percentiles(|| drop(black_box(component.check(&who, &what))), 20_000);
            println!(
                "{:<24} {np50:>11.2} {np99:>11.2} {cp50:>14.2} {cp99:>14.2} {:>9.2}",
                format!("{} {mode}", s.name),
                cp50 / np50
            );
        }
    }
    let floor = floor_component();
    let held = floor_identity(&floor);
    let (fp50, fp99) = percentiles(|| drop(black_box(floor_call(&floor, &held))), 20_000);
    println!("{:<24} {:>11} {:>11} {fp50:>14.2} {fp99:>14.2}", "call floor (no policy)", "-", "-");
    let (rp50, rp99) = percentiles(|| drop(black_box(rejected_attestation(&floor))), 20_000);
    println!("{:<24} {:>11} {:>11} {rp50:>14.2} {rp99:>14.2}", "rejected attestation", "-", "-");
}

/// One request of the peer comparison, for each engine.
struct PeerRequest {
    who: writ_core::Identity,
    what: writ_core::Intent,
    host: (writ_host::Attested, writ_host::Intent),
    rego_input: regorus::Value,
}

/// The pack subset regorus runs too (`benches/peers/writ.rego` is its Rego), Writ on the same
/// subset (evaluated, no memo), and regorus — after checking they agree on every request.
struct Peers {
    native: writ_core::Writ,
    component: Writ,
    rego: regorus::Engine,
    requests: Vec<PeerRequest>,
    ledger: writ_core::MemoryLedger,
    crypto: writ_core::crypto::RustCrypto,
}

fn pack_file(name: &str) -> String {
    std::fs::read_to_string(pack::dir().join(name)).unwrap()
}

fn peers() -> Peers {
    let subset = [pack_file("data.cedar"), pack_file("payroll.cedar"), pack_file("tools.cedar")].join("\n");
    let (schema, entities) = (pack::schema(), pack::entities());
    let mut native = writ_core::Writ::default();
    native.set_decision_memo(false);
    assert_eq!(native.set_policies(&subset, Some(&schema), Some(&entities)).unwrap(), 5);
    let component = component_at_now();
    component.set_decision_memo(false).unwrap();
    // The payroll runs are open tasks (opened under the whole pack, which lets the broker).
    let tasks = ["run-42", "run-43"];
    component.set_policies(&pack::policies(), Some(&schema), Some(&entities)).unwrap();
    writ_tests::open_pack_tasks(&component, &tasks);
    component.set_policies(&subset, Some(&schema), Some(&entities)).unwrap();
    let ledger = writ_core::MemoryLedger::new();
    for t in tasks {
        writ_tests::register_task(&ledger, t, &[], NOW);
    }
    // The Rego data: each agent's roles and tools, each resource's type and attributes.
    let ents: serde_json::Value = serde_json::from_str(&entities).unwrap();
    let uid = |u: &serde_json::Value| {
        format!("{}::{}", u["type"].as_str().unwrap(), serde_json::Value::from(u["id"].as_str().unwrap()))
    };
    let (mut agents, mut resources) = (serde_json::Map::new(), serde_json::Map::new());
    for e in ents.as_array().unwrap() {
        let ty = e["uid"]["type"].as_str().unwrap();
        if ty == "Agent" {
            let roles: Vec<&str> = e["parents"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
            let tools: Vec<String> = e["attrs"]["tools"]
                .as_array()
                .map(|t| t.iter().map(|t| uid(&t["__entity"])).collect())
                .unwrap_or_default();
            agents
                .insert(e["uid"]["id"].as_str().unwrap().into(), serde_json::json!({ "roles": roles, "tools": tools }));
        } else if ty != "Role" {
            let mut attrs = e["attrs"].as_object().unwrap().clone();
            attrs.insert("type".into(), ty.into());
            resources.insert(uid(&e["uid"]), serde_json::Value::Object(attrs));
        }
    }
    let mut rego = regorus::Engine::new();
    rego.add_policy(
        "writ.rego".into(),
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/peers/writ.rego")).unwrap(),
    )
    .unwrap();
    let internal = ents
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["uid"]["type"] == "Zone" && e["uid"]["id"] == "internal")
        .map(|e| e["attrs"]["destinations"].clone())
        .unwrap();
    let data = serde_json::json!({ "agents": agents, "resources": resources, "internal": internal }).to_string();
    rego.add_data(regorus::Value::from_json_str(&data).unwrap()).unwrap();
    // Requests: every agent, every schema-valid action on every resource, in and out of its
    // task, with no destination, an external and an internal one.
    let external = r#"{"destination":"paste.example.net"}"#;
    let internal_one = r#"{"destination":"payroll.internal.example"}"#;
    let mut requests = Vec::new();
    let mut attested = std::collections::HashMap::new();
    for agent in agents.keys() {
        let host_who = attested.entry(agent.clone()).or_insert_with(|| attest(&component, agent)).clone();
        for (res, attrs) in &resources {
            let actions: &[&str] = match attrs["type"].as_str().unwrap() {
                "PayrollRecord" | "Dataset" => &["read", "send"],
                "Tool" => &["invoke"],
                _ => &["deploy"],
            };
            let own = attrs.get("task").and_then(|t| t.as_str()).unwrap_or("t-1");
            for action in actions {
                for (task, context) in [(own, ""), ("other", ""), (own, external), (own, internal_one)] {
                    let who = identity(agent, NOW + 3600);
                    let what = intent(action, res, task, context);
                    let mut ctx = serde_json::json!({});
                    if !context.is_empty() {
                        ctx["claimed"] = serde_json::from_str(context).unwrap();
                    }
                    if let Some(t) = writ_core::Ledger::task(&ledger, task, NOW) {
                        ctx["task"] = serde_json::json!({ "id": t.id, "members": t.members });
                    }
                    ctx["task_id"] = task.into();
                    ctx["now"] = NOW.into();
                    ctx["delegation_depth"] = 0.into();
                    ctx["identity_expires_at"] = (NOW + 3600).into();
                    let input =
                        serde_json::json!({ "principal": agent, "action": action, "resource": res, "context": ctx });
                    let rego_input = regorus::Value::from_json_str(&input.to_string()).unwrap();
                    requests.push(PeerRequest { host: (host_who.clone(), what.clone()), who, what, rego_input });
                }
            }
        }
    }
    let crypto = writ_core::crypto::RustCrypto::new();
    let mut p = Peers { native, component, rego, requests, ledger, crypto };
    // The Rego is only a fair peer if it decides exactly as the Cedar subset does.
    let mut allowed = 0;
    for i in 0..p.requests.len() {
        let cedar = p.native.decide(&p.requests[i].who, &p.requests[i].what, NOW, 0, &p.ledger, &p.crypto).allow;
        let rego = rego_allow(&mut p.rego, &p.requests[i].rego_input);
        assert_eq!(cedar, rego, "Cedar and Rego disagree on {:?}", p.requests[i].what);
        assert_eq!(p.component.check(&p.requests[i].host.0, &p.requests[i].host.1).unwrap().allow, cedar);
        allowed += usize::from(cedar);
    }
    assert!(allowed > 0 && allowed < p.requests.len(), "a mix of allows and denies");
    p
}

fn rego_allow(engine: &mut regorus::Engine, input: &regorus::Value) -> bool {
    engine.set_input(input.clone());
    engine.eval_rule("data.writ.allow".into()).map(|v| v == regorus::Value::from(true)).unwrap_or(false)
}

fn peer_benches(c: &mut Criterion) {
    let mut p = peers();
    let n = p.requests.len();
    let mut g = c.benchmark_group("peers");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    let mut i = 0;
    g.bench_function("pack_subset/writ_native", |b| {
        b.iter(|| {
            i += 1;
            let r = &p.requests[i % n];
            black_box(p.native.decide(&r.who, &r.what, NOW, 0, &p.ledger, &p.crypto))
        })
    });
    g.bench_function("pack_subset/writ_component", |b| {
        b.iter(|| {
            i += 1;
            black_box(p.component.check(&p.requests[i % n].host.0, &p.requests[i % n].host.1).unwrap())
        })
    });
    g.bench_function("pack_subset/regorus", |b| {
        b.iter(|| {
            i += 1;
            black_box(rego_allow(&mut p.rego, &p.requests[i % n].rego_input))
        })
    });
    let batch = batch_of_100(&p);
    g.bench_function("batch_100/writ_native", |b| b.iter(|| black_box(native_batch(&mut p, &batch))));
    g.bench_function("batch_100/writ_component", |b| b.iter(|| black_box(component_batch(&p, &batch))));
    g.finish();
    if writ_tests::timing::percentile_pass() {
        println!("\npeers on the pack subset ({n} requests in turn, every one evaluated; µs, 20000 calls each)");
        println!("{:<16} {:>8} {:>8}", "engine", "p50", "p99");
        let mut j = 0;
        let (a50, a99) = percentiles(
            || {
                j += 1;
                let r = &p.requests[j % n];
                drop(black_box(p.native.decide(&r.who, &r.what, NOW, 0, &p.ledger, &p.crypto)))
            },
            20_000,
        );
        println!("{:<16} {a50:>8.2} {a99:>8.2}", "writ native");
        let (b50, b99) = percentiles(
            || {
                j += 1;
                drop(black_box(p.component.check(&p.requests[j % n].host.0, &p.requests[j % n].host.1)))
            },
            20_000,
        );
        println!("{:<16} {b50:>8.2} {b99:>8.2}", "writ component");
        let rego = &mut p.rego;
        let reqs = &p.requests;
        let (c50, c99) = percentiles(
            || {
                j += 1;
                black_box(rego_allow(rego, &reqs[j % n].rego_input));
            },
            20_000,
        );
        println!("{:<16} {c50:>8.2} {c99:>8.2}", "regorus");
        let batch = batch_of_100(&p);
        println!("\nbatch of 100 of one agent's requests (µs per batch, 2000 batches each)");
        let (n50, n99) = percentiles(|| _ = black_box(native_batch(&mut p, &batch)), 2_000);
        println!("{:<16} {n50:>8.2} {n99:>8.2}", "writ native");
        let (k50, k99) = percentiles(|| drop(black_box(component_batch(&p, &batch))), 2_000);
        println!("{:<16} {k50:>8.2} {k99:>8.2}   component/native p50 {:.2}", "check-many", k50 / n50);
    }
}

/// 100 of the peer requests, all of the payroll agent (a `check-many` is one caller's intents),
/// in turn; checked to decide through `check-many` exactly as natively, one by one.
fn batch_of_100(p: &Peers) -> Batch {
    let agent = "spiffe://acme.example/agent/payroll";
    let own: Vec<usize> = (0..p.requests.len()).filter(|&i| p.requests[i].who.spiffe_id == agent).collect();
    assert!(!own.is_empty());
    let idx: Vec<usize> = own.iter().cycle().take(100).copied().collect();
    let what = idx.iter().map(|&i| p.requests[i].host.1.clone()).collect();
    let batch = Batch { idx, what };
    let native: Vec<bool> = batch
        .idx
        .iter()
        .map(|&i| p.native.decide(&p.requests[i].who, &p.requests[i].what, NOW, 0, &p.ledger, &p.crypto).allow)
        .collect();
    let component: Vec<bool> = component_batch(p, &batch).iter().map(|d| d.allow).collect();
    assert_eq!(native, component, "check-many decides as the native engine");
    assert!(native.contains(&true) && native.contains(&false), "a mix of allows and denies");
    batch
}

/// A batch of peer requests: their indices, and their intents as the component takes them.
struct Batch {
    idx: Vec<usize>,
    what: Vec<writ_host::Intent>,
}

/// The batch decided natively, one `decide` each.
fn native_batch(p: &mut Peers, batch: &Batch) -> usize {
    batch
        .idx
        .iter()
        .filter(|&&i| p.native.decide(&p.requests[i].who, &p.requests[i].what, NOW, 0, &p.ledger, &p.crypto).allow)
        .count()
}

/// The batch in one `check-many` call into the component.
fn component_batch(p: &Peers, batch: &Batch) -> Vec<writ_host::Decision> {
    p.component.check_many(&p.requests[batch.idx[0]].host.0, &batch.what).unwrap()
}

criterion_group!(benches, criterion_benches, percentile_table, peer_benches);
criterion_main!(benches);
