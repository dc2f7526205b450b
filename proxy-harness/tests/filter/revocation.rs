//! Revocations reach the filter: a real decision server (`writ-server`) issues a credential
//! and ends its task; the filter, polling `/ledger/revocations` through HTTP callouts the
//! harness carries to that server, refuses the credential from its next poll on — and denies a
//! cut-off agent's plain requests until it is restored.

use crate::module;
use serde_json::{Value, json};
use writ_proxy_harness::{HttpCall, HttpRequest, Vm};
use writ_tests::NOW;
use writ_tests::filter_world::{World, at};

/// Carry the filter's callout to the server and its answer back (what the proxy does);
/// returns the page the signed answer holds.
fn carry(vm: &mut Vm, server: std::net::SocketAddr, call: &HttpCall) -> Value {
    assert_eq!(call.cluster, "writ");
    assert_eq!(call.header(":method"), Some("GET"));
    assert_eq!(call.header("accept"), Some("application/jwt"), "the filter asks for signed pages");
    let res = reqwest::blocking::Client::new()
        .get(format!("http://{server}{}", call.header(":path").unwrap()))
        .header("accept", call.header("accept").unwrap())
        .send()
        .unwrap();
    let status = res.status().as_u16().to_string();
    let body = res.bytes().unwrap().to_vec();
    vm.respond(call.token, vec![(":status".into(), status.into_bytes())], body.clone()).unwrap();
    payload(&body)
}

/// The JSON payload of a compact JWS.
fn payload(jws: &[u8]) -> Value {
    use base64::Engine as _;
    let text = std::str::from_utf8(jws).unwrap();
    let p = text.split('.').nth(1).expect("a compact JWS");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

fn poll(vm: &mut Vm, server: std::net::SocketAddr) -> Value {
    vm.tick().unwrap();
    let calls = vm.take_http_calls();
    assert_eq!(calls.len(), 1, "one poll per tick: {calls:?}");
    carry(vm, server, &calls[0])
}

fn reply_of(vm: &mut Vm, req: &HttpRequest) -> (u32, String) {
    let r = vm.request(req).unwrap();
    match r.local_reply {
        None => (200, r.header("x-writ-decision").unwrap_or_default().to_string()),
        Some(l) => (l.status, l.header("x-writ-reason").unwrap_or_default().to_string()),
    }
}

#[test]
fn an_ended_task_is_refused_from_the_next_poll_on() {
    let w = World::new();
    let server = writ_server::start(writ_server::Config {
        audit: "off".into(),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        workers: Some(1),
        audience: "payroll-api".into(),
        ..Default::default()
    })
    .unwrap();
    server.writ().set_time(Some(NOW));
    let addr = server.http.unwrap();
    let payroll = w.workload("/agent/payroll");
    let who = payroll.identity();
    writ_tests::trust_pack_pki(server.writ());
    let host_who = server.writ().attest_x509(&payroll.chain).unwrap();
    assert_eq!(host_who.identity().thumbprint, who.thumbprint);
    let scope = [writ_host::Intent {
        action: "read".into(),
        resource: r#"PayrollRecord::"run-42/emp-7""#.into(),
        task_id: "run-42".into(),
        context: String::new(),
        input: String::new(),
    }];
    writ_tests::open_pack_tasks(server.writ(), &["run-42"]);
    let grant = server.writ().issue(&host_who, "run-42", &scope, 200, "payroll-api").unwrap();
    let jwks: Value = serde_json::from_str(&server.writ().jwks().unwrap()).unwrap();

    let config = w.config(
        json!({ "issuer_jwks": jwks, "revocations": { "cluster": "writ", "period_ms": 1000, "stale_after_secs": 10 } }),
    );
    let mut vm = Vm::start(module(), &config, at(NOW)).unwrap();
    assert!(vm.configured());
    assert_eq!(vm.tick_period_ms(), 1000, "the filter asks for a tick to poll on");
    let req =
        payroll.over_mtls("GET", "/payroll/run-42/emp-7").header("authorization", &format!("Bearer {}", grant.token));

    // Before the first poll, revocations are unknown: credentials are refused (closed).
    assert_eq!(reply_of(&mut vm, &req), (503, "revocations-stale".into()));
    let page = poll(&mut vm, addr);
    assert_eq!(page["revocations"][0]["event"], "open-task", "the task's record travels too");
    assert_eq!(page["revocations"].as_array().unwrap().len(), 1);
    assert_eq!(reply_of(&mut vm, &req), (200, "allow".into()));
    // Plain checks (no credential) never wait for the feed.
    assert_eq!(reply_of(&mut vm, &payroll.over_mtls("GET", "/payroll/run-42/emp-7")), (200, "allow".into()));

    // The task ends at the server; the filter learns it at its next poll.
    assert_eq!(server.writ().end_task("run-42").unwrap(), 1);
    assert_eq!(reply_of(&mut vm, &req), (200, "allow".into()), "not yet polled");
    let page = poll(&mut vm, addr);
    assert_eq!(page["revocations"][0]["task_id"], "run-42");
    assert_eq!(reply_of(&mut vm, &req), (403, "revoked".into()));
    let logs = vm.take_logs();
    assert!(logs.iter().any(|l| l.message.contains("1 revocation(s) from the feed")), "{logs:?}");

    // The next poll asks only for what is new.
    vm.tick().unwrap();
    let calls = vm.take_http_calls();
    assert_eq!(calls[0].header(":path"), Some(format!("/ledger/revocations?after={}", page["next"]).as_str()));
    // No answer (a timeout): the poll is reported, and once the last good read is too old,
    // credentials are refused again.
    vm.respond(calls[0].token, vec![], vec![]).unwrap();
    assert!(vm.take_logs().iter().any(|l| l.level == 3 && l.message.contains("did not answer")));
    vm.set_time(at(NOW + 11));
    assert_eq!(reply_of(&mut vm, &req).0, 503);
    // A bad answer is refused without touching the ledger; a good one makes it fresh again.
    vm.tick().unwrap();
    let call = vm.take_http_calls().remove(0);
    vm.respond(call.token, vec![(":status".into(), b"200".to_vec())], b"{\"not\":\"a page\"}".to_vec()).unwrap();
    assert!(vm.take_logs().iter().any(|l| l.level == 3 && l.message.contains("revocation feed's answer")));
    server.writ().set_time(Some(NOW + 11));
    poll(&mut vm, addr);
    assert_eq!(reply_of(&mut vm, &req), (403, "revoked".into()));

    // The ended task's records are closed to plain reads too: `context.task` is gone.
    assert_eq!(reply_of(&mut vm, &payroll.over_mtls("GET", "/payroll/run-42/emp-7")), (403, "no-permit".into()));
    // A cut-off reaches plain decisions too (no credential involved), until restored.
    writ_tests::open_pack_tasks(server.writ(), &["run-43"]);
    poll(&mut vm, addr);
    let plain = payroll.over_mtls("GET", "/payroll/run-43/emp-7");
    assert_eq!(reply_of(&mut vm, &plain), (200, "allow".into()), "the new run's task record came with the feed");
    server.writ().cut_off(&who.spiffe_id).unwrap();
    poll(&mut vm, addr);
    assert_eq!(reply_of(&mut vm, &plain), (403, "writ:cut-off".into()));
    assert!(server.writ().restore(&who.spiffe_id).unwrap());
    poll(&mut vm, addr);
    assert_eq!(reply_of(&mut vm, &plain), (200, "allow".into()));
    server.shutdown();
}

#[test]
fn a_restarted_server_is_read_again_from_the_start() {
    let w = World::new();
    let config = w.config(json!({ "revocations": {} }));
    let mut vm = Vm::start(module(), &config, at(NOW)).unwrap();
    // Pages the issuer signs, answering the poll made `after`.
    let page = |epoch: &str, after: u64, next: u64, tasks: &[&str]| {
        let revocations: Vec<Value> = tasks
            .iter()
            .map(|t| json!({ "event": "end-task", "task_id": t, "at": NOW, "until": NOW + 3600 }))
            .collect();
        let p = writ_core::feed::Page { epoch: epoch.into(), after, next, at: NOW, revocations };
        writ_core::feed::sign(&p, &w.issuer).unwrap().into_bytes()
    };
    let answer = |vm: &mut Vm, body: Vec<u8>| -> String {
        vm.tick().unwrap();
        let call = vm.take_http_calls().remove(0);
        vm.respond(call.token, vec![(":status".into(), b"200".to_vec())], body).unwrap();
        call.header(":path").unwrap().to_string()
    };
    assert_eq!(answer(&mut vm, page("a", 0, 5, &["t1"])), "/ledger/revocations?after=0");
    assert_eq!(answer(&mut vm, page("a", 5, 6, &["t2"])), "/ledger/revocations?after=5");
    // Another epoch: numbering started over, so the next poll starts from 0.
    assert_eq!(answer(&mut vm, page("b", 6, 1, &[])), "/ledger/revocations?after=6");
    assert_eq!(answer(&mut vm, page("b", 0, 1, &["t3"])), "/ledger/revocations?after=0");
    assert_eq!(answer(&mut vm, page("b", 1, 1, &[])), "/ledger/revocations?after=1");
}

#[test]
fn forged_replayed_or_unsigned_feed_pages_change_nothing() {
    let w = World::new();
    let config = w.config(json!({ "revocations": {} }));
    let mut vm = Vm::start(module(), &config, at(NOW)).unwrap();
    let payroll = w.workload("/agent/payroll");
    // A page with run-42's record: only a real one opens the payroll read.
    let read = payroll.over_mtls("GET", "/payroll/run-42/emp-7");
    let answer = |vm: &mut Vm, body: Vec<u8>| {
        vm.tick().unwrap();
        let call = vm.take_http_calls().remove(0);
        vm.respond(call.token, vec![(":status".into(), b"200".to_vec())], body).unwrap();
        vm.take_logs()
    };
    let page = |after: u64, at_: u64| writ_core::feed::Page {
        epoch: "e".into(),
        after,
        next: after + 1,
        at: at_,
        revocations: vec![
            json!({ "event": "open-task", "id": "run-42", "opener": "spiffe://acme.example/agent/broker",
            "members": ["spiffe://acme.example/agent/payroll"], "purpose": "p", "opened_at": NOW - 60, "deadline": NOW + 3600 }),
        ],
    };
    let forger = writ_core::crypto::RustCrypto::with_ed25519_seed([99; 32]);
    let refused =
        |logs: Vec<writ_proxy_harness::LogLine>| logs.iter().any(|l| l.level == 3 && l.message.contains("refused"));
    // Signed by another key; a replay answering another request; an old page; plain JSON.
    let cases: Vec<Vec<u8>> = vec![
        writ_core::feed::sign(&page(0, NOW), &forger).unwrap().into_bytes(),
        writ_core::feed::sign(&page(7, NOW), &w.issuer).unwrap().into_bytes(),
        writ_core::feed::sign(&page(0, NOW - 3600), &w.issuer).unwrap().into_bytes(),
        serde_json::to_vec(&page(0, NOW)).unwrap(),
    ];
    for body in cases {
        assert!(refused(answer(&mut vm, body)), "the page is refused and logged");
        assert_eq!(reply_of(&mut vm, &read).0, 403, "no task record came from it");
    }
    assert!(!refused(answer(&mut vm, writ_core::feed::sign(&page(0, NOW), &w.issuer).unwrap().into_bytes())));
    assert_eq!(reply_of(&mut vm, &read), (200, "allow".into()));
}
