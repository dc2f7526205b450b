//! The built `writ-proxy.wasm` in the proxy-wasm harness, driven as Envoy drives it: allow,
//! deny, refused callers, presented credentials, malformed input, bad configuration.

use crate::module;
use serde_json::{Value, json};
use std::sync::OnceLock;
use writ_proxy_harness::{HttpRequest, HttpResponse, Vm};
use writ_tests::NOW;
use writ_tests::filter_world::{PAYROLL, World, at};

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(World::new)
}

fn body(r: &HttpResponse) -> Value {
    serde_json::from_slice(&r.local_reply.as_ref().expect("a local reply").body).unwrap()
}

fn refused(r: &HttpResponse, status: u32, reason: &str) -> Value {
    assert!(!r.continued(), "expected a local reply, the request went upstream: {r:?}");
    assert_eq!(r.action, 1, "a filter that replies locally pauses the stream");
    let reply = r.local_reply.as_ref().unwrap();
    assert_eq!(reply.status, status, "{reply:?}");
    assert_eq!(reply.header("x-writ-reason"), Some(reason), "{reply:?}");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let b = body(r);
    assert_eq!(b["allow"], false);
    assert_eq!(b["reason"], reason);
    b
}

fn audit_lines(vm: &mut Vm) -> Vec<Value> {
    vm.take_logs()
        .into_iter()
        .filter(|l| l.level == 2)
        .filter_map(|l| serde_json::from_str::<Value>(&l.message).ok())
        .collect()
}

#[test]
fn imports_only_what_a_proxy_wasm_host_provides() {
    let m = module();
    assert_eq!(m.foreign_imports(), Vec::<String>::new(), "imports: {:?}", m.imports());
    let exports = m.exports();
    for e in [
        "proxy_abi_version_0_2_1",
        "proxy_on_memory_allocate",
        "proxy_on_context_create",
        "proxy_on_configure",
        "proxy_on_request_headers",
        "memory",
    ] {
        assert!(exports.iter().any(|x| x == e), "missing export {e}: {exports:?}");
    }
}

#[test]
fn allows_a_payroll_read_inside_its_task_over_mtls_and_audits_it() {
    let w = world();
    let payroll = w.workload("/agent/payroll");
    let mut vm = w.vm(module(), json!({}));
    vm.take_logs();
    let r = vm
        .request(&payroll.over_mtls("GET", "/payroll/run-42/emp-7?fields=all").header("x-writ-decision", "spoofed"))
        .unwrap();
    assert!(r.continued(), "{r:?}");
    assert_eq!(r.header("x-writ-decision"), Some("allow"));
    assert_eq!(r.header("x-writ-subject"), Some(PAYROLL));
    assert_eq!(r.header("x-writ-policies"), Some("payroll-read-in-task"));
    assert_eq!(r.header("x-writ-max-ttl"), Some("900"));
    assert_eq!(r.headers.iter().filter(|(k, _)| k == "x-writ-decision").count(), 1, "the client's copy is replaced");
    let audit = audit_lines(&mut vm);
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["event.name"], "authorize");
    assert_eq!(audit[0]["gen_ai.agent.id"], PAYROLL);
    assert_eq!(audit[0]["gen_ai.tool.name"], "read");
    assert_eq!(audit[0]["writ.resource"], r#"PayrollRecord::"run-42/emp-7""#);
    assert_eq!(audit[0]["writ.task_id"], "run-42");
    assert_eq!(audit[0]["writ.allow"], true);
    assert_eq!(audit[0]["time"], NOW);
}

#[test]
fn denies_by_policy_with_a_local_403() {
    let w = world();
    let mut vm = w.vm(module(), json!({}));
    // The payroll agent may not read customer PII; the browser agent may not deploy.
    let r = vm.request(&w.workload("/agent/payroll").over_mtls("GET", "/datasets/customer-pii")).unwrap();
    let b = refused(&r, 403, "no-permit");
    assert_eq!(b["intent"]["resource"], r#"Dataset::"customer-pii""#);
    let r = vm.request(&w.workload("/agent/browser").over_mtls("POST", "/deploy/production")).unwrap();
    refused(&r, 403, "no-permit");
    let audit = audit_lines(&mut vm);
    assert_eq!(audit.iter().filter(|a| a["writ.allow"] == false).count(), 2, "{audit:?}");
    // A tool on the agent's allow-list is allowed, one off it is not.
    let browser = w.workload("/agent/browser");
    assert!(vm.request(&browser.over_mtls("POST", "/tools/web-search")).unwrap().continued());
    refused(&vm.request(&browser.over_mtls("POST", "/tools/payroll-db")).unwrap(), 403, "no-permit");
}

#[test]
fn refuses_unknown_callers_routes_and_trust_domains() {
    let w = world();
    let mut vm = w.vm(module(), json!({}));
    let b = refused(&vm.request(&HttpRequest::new("GET", "/payroll/run-42/emp-7")).unwrap(), 401, "unauthenticated");
    assert!(b["message"].as_str().unwrap().contains("no caller identity"), "{b}");
    let payroll = w.workload("/agent/payroll");
    let b = refused(&vm.request(&payroll.over_mtls("DELETE", "/payroll/run-42/emp-7")).unwrap(), 403, "no-route");
    assert!(b["message"].as_str().unwrap().contains("DELETE /payroll/run-42/emp-7"), "{b}");
    let foreign = HttpRequest::new("GET", "/payroll/run-42/emp-7")
        .mtls_peer("spiffe://evil.example/agent/payroll", &payroll.sha256_hex);
    let b = refused(&vm.request(&foreign).unwrap(), 401, "unauthenticated");
    assert!(b["message"].as_str().unwrap().contains("evil.example"), "{b}");
    let not_spiffe =
        HttpRequest::new("GET", "/payroll/run-42/emp-7").mtls_peer("https://acme.example/x", &payroll.sha256_hex);
    refused(&vm.request(&not_spiffe).unwrap(), 401, "unauthenticated");
    let bad_digest = HttpRequest::new("GET", "/payroll/run-42/emp-7").mtls_peer(PAYROLL, "zz");
    refused(&vm.request(&bad_digest).unwrap(), 401, "unauthenticated");
}

#[test]
fn attests_a_forwarded_client_certificate_chain() {
    let w = world();
    let payroll = w.workload("/agent/payroll");
    let mut vm = w.vm(module(), json!({ "identity_sources": ["xfcc"] }));
    let r = vm
        .request(&HttpRequest::new("GET", "/payroll/run-42/emp-7").header("x-forwarded-client-cert", &payroll.xfcc()))
        .unwrap();
    assert!(r.continued(), "{r:?}");
    assert_eq!(r.header("x-writ-subject"), Some(PAYROLL));
    // A chain from another CA of the same trust domain does not attest.
    let other = writ_tests::pki::Pki::new(writ_tests::filter_world::TD, writ_tests::pki::KeyAlg::P256);
    let chain = other.chain3("/agent/payroll", writ_tests::pki::KeyAlg::P256);
    let impostor =
        writ_tests::filter_world::Workload { spiffe_id: PAYROLL.into(), sha256_hex: payroll.sha256_hex.clone(), chain };
    let b = refused(
        &vm.request(
            &HttpRequest::new("GET", "/payroll/run-42/emp-7").header("x-forwarded-client-cert", &impostor.xfcc()),
        )
        .unwrap(),
        401,
        "unauthenticated",
    );
    assert!(b["message"].as_str().unwrap().starts_with("untrusted"), "{b}");
    // A bare URI is not trusted unless configured; the mTLS source is not configured here.
    let uri_only = format!("URI={PAYROLL};Hash={}", payroll.sha256_hex);
    refused(
        &vm.request(&HttpRequest::new("GET", "/payroll/run-42/emp-7").header("x-forwarded-client-cert", &uri_only))
            .unwrap(),
        401,
        "unauthenticated",
    );
    let over_mtls_only = payroll.over_mtls("GET", "/payroll/run-42/emp-7");
    refused(&vm.request(&over_mtls_only).unwrap(), 401, "unauthenticated");
    let mut trusting = w.vm(module(), json!({ "identity_sources": ["xfcc"], "xfcc_trust_uri": true }));
    let by_uri = HttpRequest::new("GET", "/payroll/run-42/emp-7").header("x-forwarded-client-cert", &uri_only);
    assert!(trusting.request(&by_uri).unwrap().continued());
    // A bare URI is the front proxy's word (proof `asserted`): decisions take it, credentials
    // do not — nothing here proved the caller holds the key the credential is bound to.
    let token = w.credential(&payroll, "run-42", &[("read", r#"PayrollRecord::"run-42/emp-7""#)], 120);
    let bearer = by_uri.header("authorization", &format!("Bearer {token}"));
    refused(&trusting.request(&bearer).unwrap(), 403, "untrusted");
    let with_chain = HttpRequest::new("GET", "/payroll/run-42/emp-7")
        .header("x-forwarded-client-cert", &payroll.xfcc())
        .header("authorization", &format!("Bearer {token}"));
    assert!(trusting.request(&with_chain).unwrap().continued(), "the same credential with the chain forwarded");
}

#[test]
fn identity_tokens_identify_callers_without_a_certificate() {
    use writ_tests::jwt::{JwsAlg, Signer, claims, spiffe_bundle};
    let w = world();
    let svid_key = Signer::new("jwt-1", JwsAlg::ES256);
    let k8s_key = Signer::new("sa-1", JwsAlg::ES256);
    let k8s_iss = "https://kubernetes.default.svc.cluster.local";
    let bundle: Value = serde_json::from_slice(&spiffe_bundle(&[&svid_key], &[&w.pki.root.der])).unwrap();
    let mut vm = w.vm(
        module(),
        json!({
            "identity_sources": ["token"],
            "trust_domains": { writ_tests::filter_world::TD: bundle },
            "oidc": { "issuers": [{ "name": "k8s", "issuer": k8s_iss, "audiences": ["writ"], "algorithms": ["ES256"],
                "jwks": { "keys": [k8s_key.jwk()] }, "mapping": { "kind": "kubernetes", "trust_domain": writ_tests::filter_world::TD } }] },
            "policies": r#"@id("bearer") permit(principal, action, resource) when { principal.proof == "jwt-svid" || principal.proof == "oidc" };"#,
        }),
    );
    let with = |token: &str| HttpRequest::new("GET", "/payroll/run-42/emp-7").header("x-writ-identity-token", token);
    let svid = svid_key.token(&claims(PAYROLL, "writ"));
    let r = vm.request(&with(&svid)).unwrap();
    assert!(r.continued(), "{r:?}");
    assert_eq!(r.header("x-writ-subject"), Some(PAYROLL));
    let sa = k8s_key
        .token(&json!({ "iss": k8s_iss, "aud": "writ", "exp": NOW + 60, "sub": "system:serviceaccount:payroll:agent",
        "kubernetes.io": { "namespace": "payroll", "serviceaccount": { "name": "agent" } } }));
    let r = vm.request(&with(&sa)).unwrap();
    assert_eq!(r.header("x-writ-subject"), Some("spiffe://acme.example/ns/payroll/sa/agent"));
    // Another audience, a forged signature, no token at all: 401.
    refused(&vm.request(&with(&svid_key.token(&claims(PAYROLL, "vault")))).unwrap(), 401, "unauthenticated");
    let forged = Signer::new("sa-1", JwsAlg::ES256).token(&json!({ "iss": k8s_iss, "aud": "writ", "exp": NOW + 60 }));
    refused(&vm.request(&with(&forged)).unwrap(), 401, "unauthenticated");
    let b = refused(&vm.request(&HttpRequest::new("GET", "/payroll/run-42/emp-7")).unwrap(), 401, "unauthenticated");
    assert!(b["message"].as_str().unwrap().contains("x-writ-identity-token"), "{b}");
}

#[test]
fn malformed_input_gets_clear_refusals_not_traps() {
    let w = world();
    let payroll = w.workload("/agent/payroll");
    let mut vm = w.vm(module(), json!({}));
    let xfcc = |v: &str| HttpRequest::new("GET", "/payroll/run-42/emp-7").header("x-forwarded-client-cert", v);
    for bad in [
        "Cert=\"not%20pem\"",
        "Chain=\"-----BEGIN%20CERTIFICATE-----%0AAAAA%0A-----END%20CERTIFICATE-----\"",
        "garbage;;;,,,",
        "",
    ] {
        let r = vm.request(&xfcc(bad)).unwrap();
        refused(&r, 401, "unauthenticated");
    }
    // Not UTF-8 where text is required: fail closed (503), never a trap.
    let r = vm
        .request(&payroll.over_mtls("GET", "/payroll/run-42/emp-7").header_bytes("authorization", b"Bearer \xff\xfe"))
        .unwrap();
    refused(&r, 503, "unavailable");
    // Malformed context JSON and bearer tokens are decisions, with reasons.
    let r =
        vm.request(&payroll.over_mtls("GET", "/payroll/run-42/emp-7").header("x-writ-context", "{not json")).unwrap();
    let b = refused(&r, 403, "error");
    assert!(!b["errors"].as_array().unwrap().is_empty(), "{b}");
    let r =
        vm.request(&payroll.over_mtls("GET", "/payroll/run-42/emp-7").header("authorization", "Bearer a.b")).unwrap();
    refused(&r, 403, "malformed");
    // The VM still serves.
    assert!(vm.request(&payroll.over_mtls("GET", "/payroll/run-42/emp-7")).unwrap().continued());
}

#[test]
fn fail_open_when_configured_lets_undecidable_requests_through_marked() {
    let w = world();
    let payroll = w.workload("/agent/payroll");
    let mut vm = w.vm(module(), json!({ "fail_closed": false }));
    let r = vm
        .request(
            &payroll
                .over_mtls("GET", "/payroll/run-42/emp-7")
                .header_bytes("authorization", b"Bearer \xff")
                .header("x-writ-subject", "spoofed"),
        )
        .unwrap();
    assert!(r.continued(), "{r:?}");
    assert_eq!(r.header("x-writ-decision"), Some("unchecked"));
    assert_eq!(r.header("x-writ-subject"), None, "spoofed decision headers are removed");
    // A policy deny is still a deny.
    refused(&vm.request(&payroll.over_mtls("GET", "/datasets/customer-pii")).unwrap(), 403, "no-permit");
}

#[test]
fn presented_credentials_are_verified_bound_scoped_and_timed() {
    let w = world();
    let payroll = w.workload("/agent/payroll");
    let token = w.credential(&payroll, "run-42", &[("read", r#"PayrollRecord::"run-42/emp-7""#)], 120);
    let mut vm = w.vm(module(), json!({}));
    vm.take_logs();
    let with = |req: HttpRequest, t: &str| req.header("authorization", &format!("Bearer {t}"));
    let r = vm.request(&with(payroll.over_mtls("GET", "/payroll/run-42/emp-7"), &token)).unwrap();
    assert!(r.continued(), "{r:?}");
    assert_eq!(r.header("x-writ-decision"), Some("allow"));
    let ttl: u64 = r.header("x-writ-max-ttl").unwrap().parse().unwrap();
    assert!(ttl <= 120, "capped by the credential's remaining life: {ttl}");
    let audit = audit_lines(&mut vm);
    assert_eq!(audit[0]["event.name"], "present");
    assert!(audit[0]["writ.jti"].as_str().is_some_and(|j| !j.is_empty()), "{audit:?}");
    // Outside its scope: another record of the same task is not in the credential.
    let r = vm.request(&with(payroll.over_mtls("GET", "/payroll/run-43/emp-7"), &token)).unwrap();
    assert_eq!(r.local_reply.as_ref().unwrap().status, 403);
    // Stolen: presented by another workload (another key and identity).
    let browser = w.workload("/agent/browser");
    let r = vm.request(&with(browser.over_mtls("GET", "/payroll/run-42/emp-7"), &token)).unwrap();
    refused(&r, 403, "untrusted");
    // Same SPIFFE ID, another key (a copied token replayed from elsewhere).
    let other_key = w.workload("/agent/payroll");
    refused(&vm.request(&with(other_key.over_mtls("GET", "/payroll/run-42/emp-7"), &token)).unwrap(), 403, "untrusted");
    // Tampered: one claim byte changed.
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    parts[1] = format!("{}A", &parts[1][..parts[1].len() - 1]);
    refused(
        &vm.request(&with(payroll.over_mtls("GET", "/payroll/run-42/emp-7"), &parts.join("."))).unwrap(),
        403,
        "untrusted",
    );
    // Expired: the proxy's clock moves past its lifetime (the feed read again, still fresh).
    vm.set_time(at(NOW + 121));
    w.feed_at(&mut vm, NOW + 121);
    refused(&vm.request(&with(payroll.over_mtls("GET", "/payroll/run-42/emp-7"), &token)).unwrap(), 403, "expired");
}

#[test]
fn credentials_need_the_issuer_keys_and_audience() {
    let w = world();
    let payroll = w.workload("/agent/payroll");
    let token = w.credential(&payroll, "run-42", &[("read", r#"PayrollRecord::"run-42/emp-7""#)], 120);
    let req = payroll.over_mtls("GET", "/payroll/run-42/emp-7").header("authorization", &format!("Bearer {token}"));
    // (No feed either: its pages are signed by the issuer, whose keys this one lacks.)
    let mut no_keys = Vm::start(module(), &w.config(json!({ "issuer_jwks": { "keys": [] } })), at(NOW)).unwrap();
    refused(&no_keys.request(&req).unwrap(), 403, "untrusted");
    let mut other_audience = w.vm(module(), json!({ "audience": "another-api" }));
    refused(&other_audience.request(&req).unwrap(), 403, "untrusted");
}

#[test]
fn bad_configurations_are_refused_with_the_reason_logged() {
    let w = world();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "plugin configuration"),
        (w.config(json!({ "policies": "permit(principal, action, resource" })), "policies"),
        (w.config(json!({ "trust_domains": { "acme.example": "not a bundle" } })), "acme.example"),
        (
            w.config(
                json!({ "routes": [{ "method": "GET", "path": "/a/*/b", "action": "read", "resource": "X::\"y\"" }] }),
            ),
            "/a/*/b",
        ),
        (w.config(json!({ "identity_sources": [] })), "identity_sources"),
        (w.config(json!({ "no_such_field": 1 })), "no_such_field"),
    ];
    for (config, expected) in cases {
        let mut vm = Vm::start(module(), &config, at(NOW)).unwrap();
        assert!(!vm.configured(), "accepted a bad configuration ({expected})");
        let logs = vm.take_logs();
        assert!(
            logs.iter()
                .any(|l| l.level == 4 && l.message.contains("configuration refused") && l.message.contains(expected)),
            "{expected}: {logs:?}"
        );
    }
}

#[test]
fn own_policies_and_routes_from_the_configuration() {
    let w = world();
    let config = json!({
        "policies": "@id(\"orders\") permit(principal, action == Action::\"list\", resource) when { context.task_id == \"\" };",
        "routes": [{ "method": "*", "path": "/orders/*", "action": "list", "resource": "Orders::\"{*}\"" }],
    });
    let mut vm = w.vm(module(), config);
    let payroll = w.workload("/agent/payroll");
    let r = vm.request(&payroll.over_mtls("PUT", "/orders/2026/11")).unwrap();
    assert!(r.continued(), "{r:?}");
    assert_eq!(r.header("x-writ-policies"), Some("orders"));
    refused(&vm.request(&payroll.over_mtls("GET", "/payroll/run-42/emp-7")).unwrap(), 403, "no-route");
}

#[test]
fn the_filter_decides_as_writ_core_does_natively() {
    // The same table through the filter (Wasm, proxy-wasm) and writ-core (native).
    let w = world();
    let mut vm = w.vm(module(), json!({}));
    let mut native = writ_core::Writ::default();
    native
        .set_policies(
            &writ_tests::pack::policies(),
            Some(&writ_tests::pack::schema()),
            Some(&writ_tests::pack::entities()),
        )
        .unwrap();
    let routes = writ_core::route::Routes::compile(&writ_core::route::default_routes()).unwrap();
    let agents = ["/agent/payroll", "/agent/browser", "/agent/broker", "/agent/ci", "/agent/oncall"];
    let requests = [
        ("GET", "/payroll/run-42/emp-7"),
        ("GET", "/payroll/run-43/emp-7"),
        ("GET", "/datasets/sales-summary"),
        ("GET", "/datasets/customer-pii"),
        ("POST", "/datasets/customer-pii/send"),
        ("POST", "/tools/web-search"),
        ("POST", "/tools/browser"),
        ("POST", "/tools/payroll-db"),
        ("POST", "/deploy/staging"),
        ("POST", "/deploy/production"),
    ];
    let mut allowed = 0;
    for a in agents {
        let wl = w.workload(a);
        for (method, path) in requests {
            let r = vm.request(&wl.over_mtls(method, path)).unwrap();
            let intent = routes.intent(method, path, "").unwrap();
            let d = native.decide(&wl.identity(), &intent, NOW, 0, &w.ledger, &writ_core::crypto::RustCrypto::new());
            assert_eq!(r.continued(), d.allow, "{a} {method} {path}: {d:?} vs {r:?}");
            if d.allow {
                allowed += 1;
                assert_eq!(r.header("x-writ-policies"), Some(d.reasons.join(",").as_str()));
                assert_eq!(r.header("x-writ-max-ttl"), Some(d.max_ttl_secs.to_string().as_str()));
            } else {
                assert_eq!(body(&r)["reasons"], json!(d.reasons));
            }
        }
    }
    assert!(allowed > 3 && allowed < agents.len() * requests.len(), "the table must exercise both answers: {allowed}");
}

/// The plugin configuration of `examples/envoy/envoy-filter.yaml`, with its two placeholders
/// (the bundle PEM, the issuer keys) filled from this world.
fn example_configuration(w: &World) -> Vec<u8> {
    let yaml =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/envoy/envoy-filter.yaml")).unwrap();
    let start = yaml.find("value: |").expect("the plugin configuration block");
    let block: Vec<&str> =
        yaml[start..].lines().skip(1).take_while(|l| !l.trim_start().starts_with("- name:")).collect();
    let json = block.join("\n");
    let bundle = String::from_utf8(w.pki.bundle_pem()).unwrap();
    let jwks = {
        use writ_core::Crypto as _;
        w.issuer.public_keys()
    };
    let json = json
        .replace(
            r#""-----BEGIN CERTIFICATE-----\n(the contents of /etc/envoy/bundle.pem)\n-----END CERTIFICATE-----\n""#,
            &serde_json::to_string(&bundle).unwrap(),
        )
        .replace(r#"{ "keys": [ "(the keys of GET http://127.0.0.1:8181/.well-known/jwks.json)" ] }"#, &jwks);
    assert!(!json.contains("(the "), "a placeholder was not filled: {json}");
    json.into_bytes()
}

#[test]
fn the_envoy_example_configuration_runs() {
    let w = world();
    let config = example_configuration(w);
    let mut vm = Vm::start(module(), &config, at(NOW)).unwrap();
    assert!(vm.configured(), "{:?}", vm.take_logs());
    assert_eq!(vm.tick_period_ms(), 1000, "the example polls revocations");
    let payroll = w.workload("/agent/payroll");
    let read = payroll.over_mtls("GET", "/payroll/run-42/emp-7");
    // Before the first poll the filter knows no task: the in-task read is denied.
    refused(&vm.request(&read).unwrap(), 403, "no-permit");
    refused(&vm.request(&payroll.over_mtls("POST", "/deploy/production")).unwrap(), 403, "no-permit");
    // Credentials wait for the first poll of the feed (closed until revocations are known).
    let token = w.credential(&payroll, "run-42", &[("read", r#"PayrollRecord::"run-42/emp-7""#)], 120);
    let bearer = payroll.over_mtls("GET", "/payroll/run-42/emp-7").header("authorization", &format!("Bearer {token}"));
    refused(&vm.request(&bearer).unwrap(), 503, "revocations-stale");
    // The feed brings the task record (and revocations): both are decided now.
    w.feed(&mut vm);
    assert!(vm.request(&read).unwrap().continued());
    assert!(vm.request(&bearer).unwrap().continued());
}

#[test]
fn mcp_endpoints_are_decided_on_mcps_routing_headers() {
    let w = world();
    let config = json!({
        "policies": concat!(
            "@id(\"pay\") permit(principal == Agent::\"spiffe://acme.example/agent/payroll\", action == Action::\"pay\", resource == McpServer::\"payments\");\n",
            "@id(\"refund-small\") permit(principal, action == Action::\"refund\", resource == McpServer::\"payments\") when { context.input.amount <= 100 };\n",
            "@id(\"export-capped\") @max_calls(\"5\") permit(principal, action == Action::\"export\", resource == McpServer::\"payments\");",
        ),
        "mcp": [{ "path": "/mcp/payments", "server": "payments" }],
    });
    let mut vm = w.vm(module(), config);
    vm.take_logs();
    let payroll = w.workload("/agent/payroll");
    let call = |who: &writ_tests::filter_world::Workload, method: &str, name: Option<&str>| {
        let mut r =
            who.over_mtls("POST", "/mcp/payments?x=1").header("mcp-method", method).header("x-writ-task", "run-42");
        if let Some(n) = name {
            r = r.header("mcp-name", n);
        }
        r
    };
    // A tool call the policies allow: forwarded, decided as the tool's action on the server.
    let r = vm.request(&call(&payroll, "tools/call", Some("pay"))).unwrap();
    assert!(r.continued(), "{r:?}");
    assert_eq!(r.header("x-writ-policies"), Some("pay"));
    let audit = audit_lines(&mut vm);
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["gen_ai.tool.name"], "pay");
    assert_eq!(audit[0]["writ.resource"], r#"McpServer::"payments""#);
    assert_eq!(audit[0]["writ.task_id"], "run-42");
    // Arguments are not in the headers: a permit that reads them cannot allow here.
    refused(&vm.request(&call(&payroll, "tools/call", Some("refund"))).unwrap(), 403, "error");
    // A budget cannot be counted by filters that share no count: the permit never allows here.
    let b = refused(&vm.request(&call(&payroll, "tools/call", Some("export"))).unwrap(), 403, "writ:max-calls");
    let error = b["errors"][0].as_str().unwrap();
    assert!(error.contains("export-capped") && error.contains("not a proxy filter"), "{b}");
    // Another agent, another tool: denied by policy.
    let browser = w.workload("/agent/browser");
    refused(&vm.request(&call(&browser, "tools/call", Some("pay"))).unwrap(), 403, "no-permit");
    refused(&vm.request(&call(&payroll, "resources/read", Some("file:///etc/passwd"))).unwrap(), 403, "no-permit");
    // Nothing to decide: the handshake, notifications, listing, the session's stream and end.
    for (method, name) in [("initialize", None), ("notifications/initialized", None), ("tools/list", None)] {
        let r = vm.request(&call(&payroll, method, name)).unwrap();
        assert!(r.continued() && r.header("x-writ-decision") == Some("pass"), "{method}: {r:?}");
    }
    for method in ["GET", "DELETE"] {
        let r = vm.request(&payroll.over_mtls(method, "/mcp/payments")).unwrap();
        assert_eq!(r.header("x-writ-decision"), Some("pass"), "{method}: {r:?}");
    }
    // Headers that could hide a call are refused: none at all, a call naming no tool, a
    // method MCP's transport does not use; and the caller is attested first.
    let b = refused(&vm.request(&payroll.over_mtls("POST", "/mcp/payments")).unwrap(), 400, "mcp-headers-required");
    assert!(b["message"].as_str().unwrap().contains("Mcp-Method"), "{b}");
    refused(&vm.request(&call(&payroll, "tools/call", None)).unwrap(), 400, "mcp-bad-headers");
    refused(&vm.request(&call(&payroll, "tools/call", Some("a/b"))).unwrap(), 400, "mcp-bad-headers");
    refused(&vm.request(&payroll.over_mtls("PUT", "/mcp/payments")).unwrap(), 405, "mcp-method-not-allowed");
    let anonymous =
        HttpRequest::new("POST", "/mcp/payments").header("mcp-method", "tools/call").header("mcp-name", "pay");
    refused(&vm.request(&anonymous).unwrap(), 401, "unauthenticated");
    // Other paths still go by the routes.
    refused(&vm.request(&payroll.over_mtls("GET", "/mcp/other")).unwrap(), 403, "no-route");
}
