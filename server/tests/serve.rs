//! The decision server end to end, on loopback, with a real HTTP client (reqwest) and `curl`:
//! AuthZEN single and batch (all three semantics), Envoy ext_authz allow and deny, token
//! exchange over mTLS with rcgen-made SVIDs (exchange, use, delegate, end the task, rejected
//! afterwards), bad input, operations, and reload under load.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use reqwest::blocking::Client;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use writ_server::{Config, Running};
use writ_tests::pki::{KeyAlg, Pki, pem_cert};
use writ_tests::{NOW, eventually};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("writ-serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The shipped pack's trust domain, and a server certificate for 127.0.0.1.
struct World {
    pki: &'static Pki,
    dir: PathBuf,
    server_ca: String,
}

impl World {
    fn new(name: &str) -> World {
        let dir = tmp(name);
        // The pack's PKI: the test server attests the pack's broker from it to open tasks.
        let pki = writ_tests::pack_pki();
        std::fs::write(dir.join("bundle.pem"), pki.bundle_pem()).unwrap();
        // The server's own certificate: a self-signed CA and a leaf for 127.0.0.1.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, "test server ca");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.join("server.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
        World { pki, dir, server_ca: ca_cert.pem() }
    }

    fn config(&self) -> Config {
        Config {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            tls_listen: Some("127.0.0.1:0".parse().unwrap()),
            tls_cert: Some(self.dir.join("server.pem")),
            tls_key: Some(self.dir.join("server.key")),
            bundles: [("acme.example".to_string(), self.dir.join("bundle.pem"))].into(),
            listen_unix: Some(self.dir.join("writ.sock")),
            workers: Some(2),
            audience: "payroll-api".into(),
            audit: "off".into(),
            ..Config::default()
        }
    }

    fn start(&self, c: Config) -> Running {
        let shipped_pack = c.policies.is_none();
        let r = writ_server::start(c).unwrap();
        // The test PKI's certificates are valid around NOW.
        r.writ().set_time(Some(NOW));
        // The tasks the tests exchange credentials for (the shipped pack lets the broker open them).
        if shipped_pack {
            writ_tests::open_pack_tasks(r.writ(), &["pipeline-1", "pipeline-2", "run-42"]);
        }
        r
    }

    /// A TLS client presenting the SVID of `path`, and its chain.
    fn client(&self, path: &str) -> (Client, Vec<Vec<u8>>) {
        let (chain, key) = self.pki.svid(path, KeyAlg::P256);
        let pem: String = chain.iter().map(|c| pem_cert(c)).collect::<String>() + &key;
        let client = Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(self.server_ca.as_bytes()).unwrap())
            .identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap())
            .build()
            .unwrap();
        (client, chain)
    }
}

fn plain() -> Client {
    Client::builder().build().unwrap()
}

/// A client of the server's Unix socket: where a co-located proxy (Envoy) calls ext_authz,
/// forwarding its client's certificate.
fn proxied(r: &Running) -> Client {
    Client::builder().unix_socket(r.unix.clone().unwrap()).build().unwrap()
}

/// A URL on the Unix socket (the host name is not used).
fn at_proxy(path: &str) -> String {
    format!("http://writ{path}")
}

fn http(r: &Running, path: &str) -> String {
    format!("http://{}{path}", r.http.unwrap())
}

fn https(r: &Running, path: &str) -> String {
    format!("https://{}{path}", r.https.unwrap())
}

/// An AuthZEN request for an agent of the shipped pack (its identity attributes as properties).
fn agent_eval(agent: &str, action: &str, rtype: &str, rid: &str, task: &str) -> Value {
    json!({
        "subject": { "type": "Agent", "id": format!("spiffe://acme.example/agent/{agent}"), "properties": { "trust_domain": "acme.example", "path": format!("/agent/{agent}") } },
        "action": { "name": action },
        "resource": { "type": rtype, "id": rid },
        "context": { "task_id": task },
    })
}

#[test]
fn authzen_single_and_batch_with_every_semantic() {
    let w = World::new("authzen");
    let r = w.start(w.config());
    let c = plain();
    let post =
        |path: &str, body: &Value| c.post(http(&r, path)).header("x-request-id", "req-7").json(body).send().unwrap();
    // Single: allow with the determining policy and its TTL; deny is 200 with decision false.
    let res = post("/access/v1/evaluation", &agent_eval("payroll", "read", "PayrollRecord", "run-42/emp-7", "run-42"));
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-request-id"], "req-7");
    let v: Value = res.json().unwrap();
    assert_eq!(
        v,
        json!({ "decision": true, "context": { "reasons": ["payroll-read-in-task"], "errors": [], "max_ttl_secs": 900 } })
    );
    let v: Value =
        post("/access/v1/evaluation", &agent_eval("payroll", "read", "PayrollRecord", "run-43/emp-7", "run-42"))
            .json()
            .unwrap();
    assert_eq!(v["decision"], false);
    // Batch: top-level defaults, each item overriding; results in order.
    let mut batch = agent_eval("payroll", "read", "PayrollRecord", "run-42/emp-7", "run-42");
    batch["evaluations"] = json!([
        {},
        { "resource": { "type": "PayrollRecord", "id": "run-43/emp-7" } },
        { "action": { "name": "write" } },
        { "resource": { "type": "PayrollRecord", "id": "run-42/emp-7" } },
    ]);
    let decisions = |v: Value| {
        v["evaluations"].as_array().unwrap().iter().map(|e| e["decision"].as_bool().unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(decisions(post("/access/v1/evaluations", &batch).json().unwrap()), vec![true, false, false, true]);
    batch["options"] = json!({ "evaluations_semantic": "deny_on_first_deny" });
    assert_eq!(decisions(post("/access/v1/evaluations", &batch).json().unwrap()), vec![true, false]);
    batch["options"] = json!({ "evaluations_semantic": "permit_on_first_permit" });
    assert_eq!(decisions(post("/access/v1/evaluations", &batch).json().unwrap()), vec![true]);
    batch["options"] = json!({ "evaluations_semantic": "execute_all" });
    assert_eq!(decisions(post("/access/v1/evaluations", &batch).json().unwrap()).len(), 4);
    batch["options"] = json!({ "evaluations_semantic": "sometimes" });
    assert_eq!(post("/access/v1/evaluations", &batch).status(), 400);
    // A batch without items is a single evaluation.
    let v: Value =
        post("/access/v1/evaluations", &agent_eval("payroll", "read", "PayrollRecord", "run-42/emp-7", "run-42"))
            .json()
            .unwrap();
    assert_eq!(v["decision"], true);
    // Metadata.
    let v: Value = c.get(http(&r, "/.well-known/authzen-configuration")).send().unwrap().json().unwrap();
    assert_eq!(v["access_evaluation_endpoint"], http(&r, "/access/v1/evaluation"));
    r.shutdown();
}

#[test]
fn bad_requests_get_json_4xx_and_the_server_keeps_serving() {
    let w = World::new("bad");
    let mut cfg = w.config();
    cfg.max_body_bytes = 4096;
    let r = w.start(cfg);
    let c = plain();
    let url = http(&r, "/access/v1/evaluation");
    let cases: Vec<(reqwest::blocking::RequestBuilder, u16, &str)> = vec![
        (c.post(&url).header("content-type", "application/json").body("{not json"), 400, "not JSON"),
        (c.post(&url).header("content-type", "application/json").body("[1]"), 400, "not a JSON object"),
        (c.post(&url).json(&json!({ "subject": { "type": "Agent" }, "action": { "name": "read" }, "resource": { "type": "X", "id": "y" } })), 400, "missing `subject.id`"),
        (c.post(&url).json(&json!({ "subject": { "type": "Agent", "id": "a" }, "action": "read", "resource": { "type": "X", "id": "y" } })), 400, "`action` is not an object"),
        (c.post(&url).header("content-type", "text/plain").body("{}"), 415, "application/json"),
        (c.post(&url).header("content-type", "application/json").body(format!("{{\"pad\":\"{}\"}}", "x".repeat(10_000))), 413, ""),
        (c.get(http(&r, "/nowhere")), 404, "no endpoint"),
        // Tasks are opened on the mTLS listener only.
        (c.post(http(&r, "/task")).body("{}"), 404, "no endpoint"),
    ];
    for (req, status, text) in cases {
        let res = req.send().unwrap();
        assert_eq!(res.status().as_u16(), status, "{text}");
        assert!(res.headers().contains_key("x-request-id"));
        let v: Value = res.json().unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains(text), "{v}");
        assert!(v["error"]["request_id"].is_string());
    }
    // Token exchange on the plain listener (a client assertion's): OAuth errors, as OAuth has them.
    let res = c.post(http(&r, "/token")).body("grant_type=x").send().unwrap();
    assert_eq!(res.status().as_u16(), 415);
    assert!(res.json::<Value>().unwrap()["error_description"].as_str().unwrap().contains("x-www-form-urlencoded"));
    // Policy errors are decisions (deny with the error listed), not HTTP errors.
    let v: Value = c.post(&url).json(&json!({ "subject": { "type": "Not A Type", "id": "a" }, "action": { "name": "read" }, "resource": { "type": "X", "id": "y" } })).send().unwrap().json().unwrap();
    assert_eq!(v["decision"], false);
    assert!(v["context"]["errors"][0].as_str().unwrap().contains("not a Cedar entity type"));
    // Still serving.
    assert_eq!(c.get(http(&r, "/healthz")).send().unwrap().status(), 200);
    assert_eq!(c.get(http(&r, "/readyz")).send().unwrap().status(), 200);
    let metrics = c.get(http(&r, "/metrics")).send().unwrap().text().unwrap();
    assert!(metrics.contains(r#"writ_decisions_total{endpoint="evaluation",result="bad-request"} 6"#), "{metrics}");
    assert!(metrics.contains("writ_idle_instances"));
    r.shutdown();
}

/// `x-forwarded-client-cert` as Envoy forwards it (`Cert` and `Chain`, URL-encoded PEM).
fn xfcc(chain: &[Vec<u8>]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    let leaf = pem_cert(&chain[0]);
    let all: String = chain.iter().map(|c| pem_cert(c)).collect();
    format!(
        "By=spiffe://acme.example/envoy;Hash=00;Cert=\"{}\";Chain=\"{}\";URI=spiffe://acme.example/agent/payroll",
        enc(&leaf),
        enc(&all)
    )
}

#[test]
fn ext_authz_allows_denies_and_refuses_unknown_callers() {
    let w = World::new("extauthz");
    let r = w.start(w.config());
    let c = proxied(&r);
    let (_, payroll) = w.client("/agent/payroll");
    let (_, browser) = w.client("/agent/browser");
    let check = |method: reqwest::Method, path: &str, chain: Option<&[Vec<u8>]>| {
        let mut req = c.request(method, at_proxy(&format!("/ext_authz{path}")));
        if let Some(ch) = chain {
            req = req.header("x-forwarded-client-cert", xfcc(ch));
        }
        req.send().unwrap()
    };
    let res = check(reqwest::Method::GET, "/payroll/run-42/emp-7", Some(&payroll));
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-writ-decision"], "allow");
    assert_eq!(res.headers()["x-writ-policies"], "payroll-read-in-task");
    assert_eq!(res.headers()["x-writ-subject"], "spiffe://acme.example/agent/payroll");
    // Sending the record on: only to a destination the entity data lists as internal. An
    // external one is forbidden, with a JSON body and the determining policy in the reason
    // header — and so is naming none (withholding the claim never helps).
    let send = |context: Option<&str>| {
        let mut req =
            c.post(at_proxy("/ext_authz/payroll/run-42/emp-7/send")).header("x-forwarded-client-cert", xfcc(&payroll));
        if let Some(ctx) = context {
            req = req.header("x-writ-context", ctx);
        }
        req.send().unwrap()
    };
    for context in [Some(r#"{"destination":"paste.example.net"}"#), None] {
        let res = send(context);
        assert_eq!(res.status(), 403, "{context:?}");
        assert_eq!(res.headers()["x-writ-reason"], "no-high-sensitivity-external");
        let v: Value = res.json().unwrap();
        assert_eq!(v["intent"]["resource"], r#"PayrollRecord::"run-42/emp-7""#);
    }
    let res = send(Some(r#"{"destination":"payroll.internal.example"}"#));
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-writ-policies"], "payroll-read-in-task");
    // A caller cannot set Writ's keys: a task record it writes is only its claim (and not
    // one the schema knows): an error, never an allow.
    let forged = r#"{"task":{"id":"run-43","members":["spiffe://acme.example/agent/payroll"]}}"#;
    let res = c
        .get(at_proxy("/ext_authz/payroll/run-43/emp-7"))
        .header("x-forwarded-client-cert", xfcc(&payroll))
        .header("x-writ-context", forged)
        .send()
        .unwrap();
    assert_eq!(res.status(), 403);
    // Not a payroll agent: no policy permits it.
    assert_eq!(
        check(reqwest::Method::GET, "/payroll/run-42/emp-7", Some(&browser)).headers()["x-writ-reason"],
        "no-permit"
    );
    // The browser may invoke its tools, not the payroll database.
    assert_eq!(check(reqwest::Method::POST, "/tools/browser", Some(&browser)).status(), 200);
    let res = check(reqwest::Method::POST, "/tools/payroll-db", Some(&browser));
    assert_eq!(res.status(), 403, "{:?}", res.headers());
    // No route: denied. No forwarded certificate, or one of another trust domain: 401.
    assert_eq!(
        check(reqwest::Method::DELETE, "/payroll/run-42/emp-7", Some(&payroll)).headers()["x-writ-reason"],
        "no-route"
    );
    assert_eq!(check(reqwest::Method::GET, "/payroll/run-42/emp-7", None).status(), 401);
    let stranger = Pki::new("acme.example", KeyAlg::P256).chain3("/agent/payroll", KeyAlg::P256);
    let res = check(reqwest::Method::GET, "/payroll/run-42/emp-7", Some(&stranger));
    assert_eq!(res.status(), 401);
    assert!(res.json::<Value>().unwrap()["message"].as_str().unwrap().contains("untrusted"));
    r.shutdown();
}

fn exchange(client: &Client, r: &Running, form: &[(&str, &str)]) -> reqwest::blocking::Response {
    client.post(https(r, "/token")).form(form).send().unwrap()
}

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

#[test]
fn token_exchange_over_mtls_then_use_delegate_end_and_reject() {
    let w = World::new("exchange");
    let r = w.start(w.config());
    let (broker, _) = w.client("/agent/broker");
    let (browser_client, browser) = w.client("/agent/browser");
    // The broker exchanges its SVID for a task credential.
    let res = exchange(
        &broker,
        &r,
        &[
            ("grant_type", GRANT),
            ("scope", "read send"),
            ("resource", r#"Dataset::"sales-summary""#),
            ("task", "pipeline-1"),
            ("audience", "payroll-api"),
            ("ttl", "600"),
        ],
    );
    assert_eq!(res.status(), 200);
    let v: Value = res.json().unwrap();
    assert_eq!(
        (v["issued_token_type"].as_str(), v["token_type"].as_str()),
        (Some("urn:ietf:params:oauth:token-type:txn_token"), Some("N_A"))
    );
    assert!(v["expires_in"].as_u64().unwrap() > 0 && v["expires_in"].as_u64().unwrap() <= 600);
    let parent = v["access_token"].as_str().unwrap().to_string();
    // Delegate `read` to the browser agent (named by its certificate chain).
    let chain_pem: String = browser.iter().map(|c| pem_cert(c)).collect();
    let res = exchange(
        &broker,
        &r,
        &[
            ("grant_type", GRANT),
            ("scope", "read"),
            ("resource", r#"Dataset::"sales-summary""#),
            ("subject_token", &parent),
            ("actor_token", &chain_pem),
            ("actor_token_type", "urn:writ:params:token-type:x509-svid-chain"),
        ],
    );
    assert_eq!(res.status(), 200, "{}", res.text().unwrap());
    let child = res.json::<Value>().unwrap()["access_token"].as_str().unwrap().to_string();
    // The browser uses it through ext_authz (its certificate forwarded by the proxy).
    let c = proxied(&r);
    let use_it = |token: &str, path: &str, method: reqwest::Method| {
        c.request(method, at_proxy(&format!("/ext_authz{path}")))
            .header("x-forwarded-client-cert", xfcc(&browser))
            .bearer_auth(token)
            .send()
            .unwrap()
    };
    assert_eq!(use_it(&child, "/datasets/sales-summary", reqwest::Method::GET).status(), 200);
    // Not `send`: outside the delegated scope.
    let res = use_it(&child, "/datasets/sales-summary/send", reqwest::Method::POST);
    assert_eq!(res.status(), 403);
    // The parent is bound to the broker: the browser cannot use it.
    assert_eq!(
        use_it(&parent, "/datasets/sales-summary", reqwest::Method::GET).headers()["x-writ-reason"],
        "untrusted"
    );
    // The browser may not end the task; the broker may.
    assert_eq!(browser_client.post(https(&r, "/task/pipeline-1/end")).send().unwrap().status(), 403);
    let v: Value = broker.post(https(&r, "/task/pipeline-1/end")).send().unwrap().json().unwrap();
    assert_eq!(v, json!({ "task": "pipeline-1", "revoked": 2 }));
    // Rejected afterwards.
    let res = use_it(&child, "/datasets/sales-summary", reqwest::Method::GET);
    assert_eq!((res.status().as_u16(), res.headers()["x-writ-reason"].to_str().unwrap()), (403, "revoked"));
    // The revocation is in the feed replicas poll, once.
    let feed: Value = c.get(http(&r, "/ledger/revocations")).send().unwrap().json().unwrap();
    let ended: Vec<&Value> =
        feed["revocations"].as_array().unwrap().iter().filter(|e| e["event"] == "end-task").collect();
    assert_eq!(ended.len(), 1, "{feed}");
    assert_eq!(ended[0]["task_id"], "pipeline-1");
    assert!(ended[0]["until"].as_u64().unwrap() > ended[0]["at"].as_u64().unwrap());
    let next = feed["next"].as_u64().unwrap();
    assert!(next >= 1 && feed["epoch"].as_str().is_some_and(|e| !e.is_empty()), "{feed}");
    let later: Value = c.get(http(&r, &format!("/ledger/revocations?after={next}"))).send().unwrap().json().unwrap();
    assert_eq!((later["revocations"].as_array().unwrap().len(), later["next"].as_u64()), (0, Some(next)));
    assert_eq!(c.get(http(&r, "/ledger/revocations?after=-1")).send().unwrap().status(), 400);
    // Operators see the store: ready with its newest revocation, and the same in the metrics.
    let ready: Value = c.get(http(&r, "/readyz")).send().unwrap().json().unwrap();
    assert_eq!((ready["status"].as_str(), ready["state"]["last_seq"].as_u64()), (Some("ready"), Some(next)), "{ready}");
    let metrics = c.get(http(&r, "/metrics")).send().unwrap().text().unwrap();
    assert!(metrics.contains(&format!("writ_state_last_seq {next}\n")), "{metrics}");
    assert!(metrics.contains("writ_state_errors_total 0\n"), "{metrics}");
    // Bad exchanges.
    assert_eq!(
        exchange(&broker, &r, &[("grant_type", "password")]).json::<Value>().unwrap()["error"],
        "unsupported_grant_type"
    );
    assert_eq!(
        exchange(&broker, &r, &[("grant_type", GRANT), ("scope", "read")]).json::<Value>().unwrap()["error"],
        "invalid_request"
    );
    let res = exchange(
        &broker,
        &r,
        &[
            ("grant_type", GRANT),
            ("scope", "read"),
            ("resource", r#"PayrollRecord::"run-42/emp-7""#),
            ("task", "run-42"),
        ],
    );
    assert_eq!(
        (res.status().as_u16(), res.json::<Value>().unwrap()["error"].as_str().unwrap().to_string()),
        (403, "access_denied".into())
    );
    r.shutdown();
}

#[test]
fn tls_without_a_client_certificate_or_from_an_unknown_domain_is_refused() {
    let w = World::new("mtls");
    let r = w.start(w.config());
    // No client certificate: the handshake fails.
    let anonymous = Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(w.server_ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    assert!(anonymous.get(https(&r, "/healthz")).send().is_err());
    // A certificate of an unknown trust domain: TLS completes, the exchange is refused as JSON.
    let other = World {
        pki: Box::leak(Box::new(Pki::new("other.example", KeyAlg::P256))),
        dir: w.dir.clone(),
        server_ca: w.server_ca.clone(),
    };
    let (stranger, _) = other.client("/agent/x");
    let res = exchange(
        &stranger,
        &r,
        &[("grant_type", GRANT), ("scope", "read"), ("resource", r#"Dataset::"sales-summary""#), ("task", "t")],
    );
    assert_eq!(res.status(), 401);
    let v: Value = res.json().unwrap();
    assert_eq!(v["error"], "invalid_client");
    assert!(v["error_description"].as_str().unwrap().contains("no bundle for trust domain `other.example`"));
    // The server serves on.
    let (broker, _) = w.client("/agent/broker");
    assert_eq!(broker.get(https(&r, "/.well-known/jwks.json")).send().unwrap().status(), 200);
    r.shutdown();
}

#[test]
fn curl_exchanges_an_svid_for_a_credential_over_mtls() {
    if std::process::Command::new("curl").arg("--version").output().is_err() {
        panic!("curl is required for this test (.ci/run installs it)");
    }
    let w = World::new("curl");
    let r = w.start(w.config());
    let (chain, key) = w.pki.svid("/agent/payroll", KeyAlg::P256);
    let cert: String = chain.iter().map(|c| pem_cert(c)).collect();
    std::fs::write(w.dir.join("client.pem"), cert).unwrap();
    std::fs::write(w.dir.join("client.key"), key).unwrap();
    std::fs::write(w.dir.join("ca.pem"), &w.server_ca).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-s", "--cacert"])
        .arg(w.dir.join("ca.pem"))
        .arg("--cert")
        .arg(w.dir.join("client.pem"))
        .arg("--key")
        .arg(w.dir.join("client.key"))
        .args([
            "--data-urlencode",
            &format!("grant_type={GRANT}"),
            "--data-urlencode",
            "scope=read",
            "--data-urlencode",
            r#"resource=PayrollRecord::"run-42/emp-7""#,
            "--data-urlencode",
            "task=run-42",
        ])
        .arg(https(&r, "/token"))
        .output()
        .unwrap();
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stdout)));
    assert!(v["access_token"].as_str().unwrap().split('.').count() == 3, "{v}");
    r.shutdown();
}

#[test]
fn reload_under_load_drops_nothing() {
    let w = World::new("reload");
    let policies = w.dir.join("p.cedar");
    std::fs::write(&policies, r#"@id("v1") permit(principal, action == Action::"read", resource);"#).unwrap();
    let mut cfg = w.config();
    cfg.policies = Some(policies.clone());
    let r = w.start(cfg);
    let url = http(&r, "/access/v1/evaluation");
    let body = json!({ "subject": { "type": "User", "id": "u" }, "action": { "name": "read" }, "resource": { "type": "Doc", "id": "d" } });
    let stop = std::sync::atomic::AtomicBool::new(false);
    let seen = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let c = plain();
                    let mut seen = std::collections::BTreeSet::new();
                    let mut n = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 50 {
                        let res = c.post(&url).json(&body).send().unwrap();
                        assert_eq!(res.status(), 200);
                        let v: Value = res.json().unwrap();
                        assert_eq!(v["decision"], true, "{v}");
                        seen.insert(v["context"]["reasons"][0].as_str().unwrap().to_string());
                        n += 1;
                    }
                    seen
                })
            })
            .collect();
        for i in 2..=6 {
            std::thread::sleep(std::time::Duration::from_millis(30));
            std::fs::write(&policies, format!(r#"@id("v{i}") permit(principal, action == Action::"read", resource);"#))
                .unwrap();
            r.reload().unwrap();
        }
        // A bad file leaves v6 in force.
        std::fs::write(&policies, "permit(").unwrap();
        assert!(r.reload().is_err());
        std::thread::sleep(std::time::Duration::from_millis(30));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        workers.into_iter().flat_map(|h| h.join().unwrap()).collect::<std::collections::BTreeSet<_>>()
    });
    assert!(seen.contains("v1") && seen.contains("v6"), "{seen:?}");
    let v: Value = plain().post(&url).json(&body).send().unwrap().json().unwrap();
    assert_eq!(v["context"]["reasons"][0], "v6");
    let metrics = plain().get(http(&r, "/metrics")).send().unwrap().text().unwrap();
    assert!(
        metrics.contains(r#"writ_reloads_total{result="ok"} 5"#)
            && metrics.contains(r#"writ_reloads_total{result="error"} 1"#),
        "{metrics}"
    );
    r.shutdown();
}

#[test]
fn config_files_and_impossible_settings() {
    let dir = tmp("config");
    let file = dir.join("writ.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nttl_cap = 600\n[[route]]\nmethod = \"GET\"\npath = \"/docs/{id}\"\naction = \"read\"\nresource = 'Doc::\"{id}\"'\n").unwrap();
    let c = Config::load(&file).unwrap();
    assert_eq!((c.ttl_cap, c.routes.len()), (600, 1));
    for (text, want) in [
        ("ttl_cap = 0", "`ttl_cap` is 0"),
        ("tls_listen = \"127.0.0.1:0\"", "needs `tls_cert` and `tls_key`"),
        ("colour = \"blue\"", "unknown field"),
        (
            "[[route]]\nmethod = \"GET\"\npath = \"/a/*/b\"\naction = \"r\"\nresource = \"X::\\\"y\\\"\"",
            "`*` may only end",
        ),
    ] {
        std::fs::write(&file, text).unwrap();
        let e = Config::load(&file).unwrap_err();
        assert!(e.contains(want), "{text}: {e}");
    }
    let _ = Path::new(&dir);
}

#[test]
fn replicas_on_one_nats_verify_each_others_credentials_and_enforce_each_others_revocations() {
    use std::time::Duration;
    let mut nats = writ_tests::nats_server::NatsServer::start();
    let w = World::new("nats-replicas");
    // Two replicas, each with its own issuer key, on one NATS.
    let on_nats = |name: &str| Config {
        state: Some(format!("{}/serve", nats.url())),
        state_max_lag_ms: Some(500),
        listen_unix: Some(w.dir.join(format!("{name}.sock"))),
        ..w.config()
    };
    let a = w.start(on_nats("a"));
    let b = w.start(on_nats("b"));
    let (broker, broker_chain) = w.client("/agent/broker");
    let token = |r: &Running, task: &str| {
        let form = [
            ("grant_type", GRANT),
            ("scope", "read"),
            ("resource", r#"Dataset::"sales-summary""#),
            ("task", task),
            ("audience", "payroll-api"),
        ];
        let res = exchange(&broker, r, &form);
        assert_eq!(res.status(), 200);
        res.json::<Value>().unwrap()["access_token"].as_str().unwrap().to_string()
    };
    let c = plain();
    let use_at = |r: &Running, token: &str| {
        let res = proxied(r)
            .get(at_proxy("/ext_authz/datasets/sales-summary"))
            .header("x-forwarded-client-cert", xfcc(&broker_chain))
            .bearer_auth(token)
            .send()
            .unwrap();
        let reason = res.headers().get("x-writ-reason").map(|v| v.to_str().unwrap().to_string());
        (res.status().as_u16(), reason.unwrap_or_default())
    };
    let (t1, t2) = (token(&a, "pipeline-1"), token(&a, "pipeline-2"));
    // Issued by A, accepted by B: A's public key is published on NATS.
    assert_eq!(use_at(&b, &t1).0, 200, "{:?}", use_at(&b, &t1));
    let jwks: Value = c.get(http(&b, "/.well-known/jwks.json")).send().unwrap().json().unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "{jwks}");

    // Ended on B (which finds A's grant); refused by A, and the revocation is in A's feed.
    let v: Value = broker.post(https(&b, "/task/pipeline-1/end")).send().unwrap().json().unwrap();
    assert_eq!(v, json!({ "task": "pipeline-1", "revoked": 1 }));
    let took = eventually(Duration::from_secs(2), || use_at(&a, &t1) == (403, "revoked".into()));
    assert!(took.is_some(), "{:?}", use_at(&a, &t1));
    assert_eq!(use_at(&a, &t2).0, 200);
    let feed: Value = c.get(http(&a, "/ledger/revocations")).send().unwrap().json().unwrap();
    let ended: Vec<&Value> =
        feed["revocations"].as_array().unwrap().iter().filter(|e| e["event"] == "end-task").collect();
    assert_eq!(ended[0]["task_id"], "pipeline-1", "{feed}");

    // NATS gone: past the bound, credentials are refused (closed) and the replica is not
    // ready, but plain authorization still answers.
    nats.kill();
    let refused = eventually(Duration::from_secs(5), || use_at(&a, &t2) == (403, "unavailable".into()));
    assert!(refused.is_some(), "{:?}", use_at(&a, &t2));
    assert_eq!(c.get(http(&a, "/readyz")).send().unwrap().status(), 503);
    let eval = c
        .post(http(&a, "/access/v1/evaluation"))
        .json(&agent_eval("broker", "read", "Dataset", "sales-summary", "pipeline-2"))
        .send()
        .unwrap();
    assert_eq!(eval.status(), 200);
    let metrics = c.get(http(&a, "/metrics")).send().unwrap().text().unwrap();
    let age: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("writ_state_view_age_seconds "))
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    assert!(age > 0.5, "{metrics}");
    assert!(!metrics.contains("writ_state_errors_total 0\n"), "{metrics}");

    // NATS back (its store kept): both replicas catch up; the revocation holds on both.
    nats.restart();
    let back = eventually(Duration::from_secs(20), || use_at(&a, &t2).0 == 200 && use_at(&b, &t2).0 == 200);
    assert!(back.is_some(), "{:?} {:?}", use_at(&a, &t2), use_at(&b, &t2));
    assert_eq!(use_at(&b, &t1), (403, "revoked".into()));
    assert_eq!(c.get(http(&a, "/readyz")).send().unwrap().status(), 200);
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_cut_off_agent_is_denied_at_every_door_until_on_call_restores_it() {
    let w = World::new("cut-off");
    let r = w.start(w.config());
    let (oncall, _) = w.client("/agent/oncall");
    let (broker, _) = w.client("/agent/broker");
    let (payroll, _) = w.pki.svid("/agent/payroll", KeyAlg::P256);
    let c = plain();
    let proxy = proxied(&r);
    let ext_authz = || {
        let res = proxy
            .get(at_proxy("/ext_authz/payroll/run-42/emp-7"))
            .header("x-forwarded-client-cert", xfcc(&payroll))
            .send()
            .unwrap();
        let reason = res.headers().get("x-writ-reason").map(|v| v.to_str().unwrap().to_string());
        (res.status().as_u16(), reason.unwrap_or_default())
    };
    let evaluation = || -> Value {
        let body = agent_eval("payroll", "read", "PayrollRecord", "run-42/emp-7", "run-42");
        c.post(http(&r, "/access/v1/evaluation")).json(&body).send().unwrap().json().unwrap()
    };
    assert_eq!(ext_authz().0, 200);
    assert_eq!(evaluation()["decision"], true);
    let agent = "spiffe://acme.example/agent/payroll";

    // Only on-call may cut off (or restore).
    assert_eq!(broker.post(https(&r, &format!("/agent/{agent}/cut-off"))).send().unwrap().status(), 403);
    let v: Value = oncall.post(https(&r, &format!("/agent/{agent}/cut-off"))).send().unwrap().json().unwrap();
    assert_eq!(v, json!({ "agent": agent, "revoked": 0 }));
    assert_eq!(ext_authz(), (403, "writ:cut-off".to_string()));
    let v = evaluation();
    assert_eq!(v["decision"], false, "{v}");
    assert!(v.to_string().contains("writ:cut-off"), "{v}");

    assert_eq!(broker.post(https(&r, &format!("/agent/{agent}/restore"))).send().unwrap().status(), 403);
    let v: Value = oncall.post(https(&r, &format!("/agent/{agent}/restore"))).send().unwrap().json().unwrap();
    assert_eq!(v, json!({ "agent": agent, "restored": true }));
    assert_eq!(ext_authz().0, 200);
    assert_eq!(evaluation()["decision"], true);
    // The feed carries both, for filters.
    let feed: Value = c.get(http(&r, "/ledger/revocations")).send().unwrap().json().unwrap();
    let events: Vec<&str> = feed["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .filter(|e| *e != "open-task")
        .collect();
    assert_eq!(events, ["cut-off", "restore"], "{feed}");
    r.shutdown();
}

#[test]
fn hostile_clients_do_not_stall_the_server_and_refusals_are_audited() {
    use std::io::{Read as _, Write as _};
    use std::time::{Duration, Instant};
    let w = World::new("hostile");
    let audit = w.dir.join("audit.jsonl");
    let r = w.start(Config {
        header_read_timeout_ms: 1500,
        max_connections: 1100,
        audit: audit.display().to_string(),
        ..w.config()
    });
    let addr = r.http.unwrap();
    // 1000 idle connections that never send a byte.
    let idle: Vec<std::net::TcpStream> = (0..1000).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
    // A slowloris: a request head one byte at a time, never finished.
    let slow = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let started = Instant::now();
        for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().cycle() {
            if s.write_all(&[*b]).is_err() || started.elapsed() > Duration::from_secs(10) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        started.elapsed()
    });
    // A flood of 1000-item batches from 4 clients.
    let batch =
        json!({ "evaluations": vec![agent_eval("payroll", "read", "PayrollRecord", "run-42/emp-7", "run-42"); 1000] });
    let flood: Vec<_> = (0..4)
        .map(|_| {
            let (url, body) = (http(&r, "/access/v1/evaluations"), batch.clone());
            std::thread::spawn(move || {
                let c = plain();
                (0..3)
                    .map(|_| c.post(&url).json(&body).send().map(|r| r.status().as_u16()).unwrap_or(0))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    // Meanwhile a well-behaved client and the health probe: every answer correct.
    let c = plain();
    let mut health = Vec::new();
    for _ in 0..40 {
        let started = Instant::now();
        assert_eq!(c.get(http(&r, "/healthz")).send().unwrap().status(), 200);
        health.push(started.elapsed());
        let v: Value = c
            .post(http(&r, "/access/v1/evaluation"))
            .json(&agent_eval("payroll", "read", "PayrollRecord", "run-42/emp-7", "run-42"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(v["decision"], true, "{v}");
        std::thread::sleep(Duration::from_millis(20));
    }
    for f in flood {
        assert_eq!(f.join().unwrap(), [200, 200, 200], "every batch answered");
    }
    health.sort();
    eprintln!("healthz under hostile load: median {:?}, max {:?}", health[health.len() / 2], health[health.len() - 1]);
    // The slowloris and the idle connections are closed by the server once the head timeout passes.
    let held = slow.join().unwrap();
    assert!(held < Duration::from_secs(5), "the slow client was cut off after {held:?}");
    std::thread::sleep(Duration::from_millis(1600));
    let mut closed = 0;
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 1];
        if matches!(s.read(&mut buf), Ok(0) | Err(_)) {
            closed += 1;
        }
    }
    assert_eq!(closed, 1000, "idle connections closed by the server");

    // Refusals before any decision are audited: no certificate forwarded, no route.
    assert_eq!(c.get(http(&r, "/ext_authz/payroll/run-42/emp-7")).send().unwrap().status(), 401);
    let (payroll, _) = w.pki.svid("/agent/payroll", KeyAlg::P256);
    let res = proxied(&r)
        .delete(at_proxy("/ext_authz/payroll/run-42/emp-7"))
        .header("x-forwarded-client-cert", xfcc(&payroll))
        .send()
        .unwrap();
    assert_eq!(res.status(), 403);
    let log = std::fs::read_to_string(&audit).unwrap();
    let refusals: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event.name"] == "refuse")
        .collect();
    assert_eq!(refusals.len(), 2, "{log}");
    assert_eq!(refusals[1]["writ.reasons"], json!(["no-route"]));
    assert_eq!(refusals[1]["gen_ai.agent.id"], "spiffe://acme.example/agent/payroll");
    assert!(
        log.lines().filter(|l| l.contains("\"event.name\":\"evaluate\"")).count() >= 12_040,
        "every decision audited"
    );
    let metrics = c.get(http(&r, "/metrics")).send().unwrap().text().unwrap();
    assert!(metrics.contains("writ_audit_failures_total 0\n"), "{metrics}");
    r.shutdown();
}

#[test]
fn tasks_are_opened_by_principals_policy_allows_and_credentials_stay_inside_them() {
    let w = World::new("tasks");
    let r = w.start(w.config());
    let (broker, _) = w.client("/agent/broker");
    let (payroll, _) = w.client("/agent/payroll");
    let (browser, _) = w.client("/agent/browser");
    let open = |c: &Client, body: Value| c.post(https(&r, "/task")).json(&body).send().unwrap();
    let record = json!({ "id": "run-7", "members": ["spiffe://acme.example/agent/payroll"], "purpose": "payroll run 7", "ttl": 600 });
    // The broker may open tasks; the payroll agent may not invent one.
    let res = open(&payroll, record.clone());
    assert_eq!(res.status(), 403, "{}", res.text().unwrap());
    let res = open(&broker, record.clone());
    assert_eq!(res.status(), 201);
    let task: Value = res.json().unwrap();
    assert_eq!(
        (task["opener"].as_str(), task["deadline"].as_u64()),
        (Some("spiffe://acme.example/agent/broker"), Some(NOW + 600))
    );
    assert_eq!(open(&broker, record).status(), 400, "an id is opened once");
    assert_eq!(open(&broker, json!({ "id": "x", "members": "everyone", "ttl": 60 })).status(), 400);
    assert_eq!(
        broker.get(https(&r, "/task/run-7")).send().unwrap().json::<Value>().unwrap()["purpose"],
        "payroll run 7"
    );
    assert_eq!(broker.get(https(&r, "/task/run-99")).send().unwrap().status(), 404);
    // Credentials: only for an open task, only to its members, never past its deadline.
    let form = |task: &str| {
        vec![
            ("grant_type", GRANT.to_string()),
            ("scope", "read".into()),
            ("resource", r#"PayrollRecord::"run-42/emp-7""#.into()),
            ("task", task.to_string()),
            ("ttl", "3600".into()),
        ]
    };
    let exchange = |c: &Client, task: &str| c.post(https(&r, "/token")).form(&form(task)).send().unwrap();
    let res = exchange(&payroll, "run-99");
    assert_eq!(res.status(), 403);
    assert!(res.text().unwrap().contains("writ:task-not-open"));
    let res = exchange(&browser, "run-42");
    assert_eq!(res.status(), 403, "the browser is not a member of run-42... and not allowed");
    // An invented task cannot be ended: 404 to a caller allowed to end tasks, and a caller
    // that is not learns nothing of which ids exist.
    assert_eq!(broker.post(https(&r, "/task/run-99/end")).send().unwrap().status(), 404);
    assert_eq!(payroll.post(https(&r, "/task/run-99/end")).send().unwrap().status(), 403);
    assert_eq!(broker.post(https(&r, "/task/run-7/end")).send().unwrap().status(), 200);
    assert!(broker.get(https(&r, "/task/run-7")).send().unwrap().json::<Value>().unwrap()["ended_at"].is_u64());
    r.shutdown();
}

#[test]
fn break_glass_at_ext_authz_needs_a_signed_single_use_approval() {
    use writ_tests::approval::Approver;
    let w = World::new("break-glass");
    let approver = Approver::new(3);
    std::fs::write(w.dir.join("approvers.json"), &approver.jwks).unwrap();
    let mut config = w.config();
    config.approvers = Some(w.dir.join("approvers.json"));
    config.routes.push(writ_types::route::Route {
        method: "POST".into(),
        path: "/incident/{task}/break-glass/{env}".into(),
        action: "break_glass".into(),
        resource: r#"Environment::"{env}""#.into(),
        task: Some("{task}".into()),
    });
    let r = w.start(config);
    writ_tests::open_pack_tasks(r.writ(), &["inc-7"]);
    let (oncall, _) = w.pki.svid("/agent/oncall", KeyAlg::P256);
    let c = proxied(&r);
    let glass = |context: Option<String>| {
        let mut req = c
            .post(at_proxy("/ext_authz/incident/inc-7/break-glass/production"))
            .header("x-forwarded-client-cert", xfcc(&oncall));
        if let Some(ctx) = context {
            req = req.header("x-writ-context", ctx);
        }
        let res = req.send().unwrap();
        let reason = res.headers().get("x-writ-reason").map(|v| v.to_str().unwrap().to_string());
        (res.status().as_u16(), reason.unwrap_or_default())
    };
    let oncall_id = "spiffe://acme.example/agent/oncall";
    let signed = approver.sign(&Approver::claims(oncall_id, "inc-7", "a-1", NOW - 5));
    // No approval: no permit. A forged one: refused. The signed one: once.
    assert_eq!(glass(None), (403, "no-permit".into()));
    let forged = Approver::new(9).sign(&Approver::claims(oncall_id, "inc-7", "a-2", NOW - 5));
    assert_eq!(glass(Some(Approver::context(&forged))), (403, "writ:approval-refused".into()));
    assert_eq!(glass(Some(Approver::context(&signed))).0, 200);
    assert_eq!(glass(Some(Approver::context(&signed))), (403, "writ:approval-refused".into()));
    r.shutdown();
}

#[test]
fn forwarded_certificates_count_only_from_the_unix_socket_or_a_trusted_proxy() {
    let w = World::new("xfcc-trust");
    let proxy_id = "spiffe://acme.example/proxy/envoy";
    let r = w.start(Config { trusted_proxies: vec![proxy_id.into()], ..w.config() });
    let (_, payroll) = w.client("/agent/payroll");
    let (envoy, _) = w.client("/proxy/envoy");
    let (browser, _) = w.client("/agent/browser");
    let read = |c: &Client, url: String| {
        let res = c.get(url).header("x-forwarded-client-cert", xfcc(&payroll)).send().unwrap();
        let reason = res.headers().get("x-writ-reason").map(|v| v.to_str().unwrap().to_string());
        (res.status().as_u16(), reason.unwrap_or_default(), res.headers().get("x-writ-subject").cloned())
    };
    let path = "/ext_authz/payroll/run-42/emp-7";
    // The plain listener: whoever reaches it could forward any (public) certificate — ignored, 401.
    assert_eq!(read(&plain(), http(&r, path)).0, 401);
    // The Unix socket and the trusted proxy over mTLS: the forwarded agent is the caller.
    for (status, _, subject) in [read(&proxied(&r), at_proxy(path)), read(&envoy, https(&r, path))] {
        assert_eq!((status, subject.unwrap()), (200, "spiffe://acme.example/agent/payroll".parse().unwrap()));
    }
    // Any other mTLS peer forwarding the payroll certificate is itself the caller: the browser
    // agent gets what the browser agent may (no payroll record).
    assert_eq!(read(&browser, https(&r, path)).1, "no-permit");
    r.shutdown();
}

#[test]
fn a_uri_only_forwarded_certificate_decides_but_never_carries_a_credential() {
    let w = World::new("xfcc-uri");
    let r = w.start(Config { xfcc_trust_uri: true, ..w.config() });
    let (_, payroll) = w.client("/agent/payroll");
    let token = {
        let who = r.writ().attest_x509(&payroll).unwrap();
        let scope = [writ_host::Intent {
            action: "read".into(),
            resource: r#"PayrollRecord::"run-42/emp-7""#.into(),
            task_id: "run-42".into(),
            context: String::new(),
            input: String::new(),
        }];
        r.writ().issue(&who, "run-42", &scope, 60, "payroll-api").unwrap().token
    };
    let uri_only = "URI=spiffe://acme.example/agent/payroll";
    let read = |bearer: Option<&str>| {
        let mut req =
            proxied(&r).get(at_proxy("/ext_authz/payroll/run-42/emp-7")).header("x-forwarded-client-cert", uri_only);
        if let Some(t) = bearer {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let res = req.send().unwrap();
        let reason = res.headers().get("x-writ-reason").map(|v| v.to_str().unwrap().to_string());
        (res.status().as_u16(), reason.unwrap_or_default())
    };
    // Decisions take the proxy's word for who it is (proof `asserted`)…
    assert_eq!(read(None).0, 200);
    // …credentials do not: nothing proves the caller holds the key the token is bound to.
    assert_eq!(read(Some(&token)), (403, "untrusted".to_string()));
    // With Cert and Chain forwarded, the same credential is presented by its holder.
    let res = proxied(&r)
        .get(at_proxy("/ext_authz/payroll/run-42/emp-7"))
        .header("x-forwarded-client-cert", xfcc(&payroll))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    r.shutdown();
}

#[test]
fn bearer_identity_tokens_prove_callers_at_ext_authz_and_token() {
    use writ_tests::jwt::{JwsAlg, Signer, claims, spiffe_bundle};
    let w = World::new("identity-tokens");
    // acme.example's bundle with a JWT-SVID key too; a Kubernetes issuer mapped into acme.example.
    let svid_key = Signer::new("jwt-1", JwsAlg::ES256);
    std::fs::write(w.dir.join("bundle.json"), spiffe_bundle(&[&svid_key], &[&w.pki.root.der])).unwrap();
    let k8s_key = Signer::new("sa-1", JwsAlg::ES256);
    let k8s_iss = "https://kubernetes.default.svc.cluster.local";
    let oidc = json!({ "issuers": [{ "name": "k8s", "issuer": k8s_iss, "audiences": ["writ"], "algorithms": ["ES256"],
        "jwks": { "keys": [k8s_key.jwk()] }, "mapping": { "kind": "kubernetes", "trust_domain": "acme.example" } }] });
    std::fs::write(w.dir.join("oidc.json"), oidc.to_string()).unwrap();
    let policies = r#"@id("bearer") permit(principal, action == Action::"read", resource) when { principal.proof == "jwt-svid" || principal.proof == "oidc" };
                      @id("open") permit(principal, action == Action::"open_task", resource);"#;
    std::fs::write(w.dir.join("p.cedar"), policies).unwrap();
    let r = w.start(Config {
        bundles: [("acme.example".to_string(), w.dir.join("bundle.json"))].into(),
        oidc: Some(w.dir.join("oidc.json")),
        policies: Some(w.dir.join("p.cedar")),
        ..w.config()
    });
    let svid = svid_key.token(&claims("spiffe://acme.example/agent/payroll", "writ"));
    let sa = k8s_key.token(&json!({ "iss": k8s_iss, "aud": ["writ"], "exp": NOW + 600, "iat": NOW - 5,
        "sub": "system:serviceaccount:payroll:agent",
        "kubernetes.io": { "namespace": "payroll", "serviceaccount": { "name": "agent", "uid": "u-1" }, "pod": { "name": "agent-0", "uid": "u-2" } } }));
    let read = |token: &str, bearer: Option<&str>| {
        let mut req = plain().get(http(&r, "/ext_authz/payroll/run-42/emp-7")).header("x-writ-identity-token", token);
        if let Some(b) = bearer {
            req = req.header("authorization", format!("Bearer {b}"));
        }
        let res = req.send().unwrap();
        let h = |n: &str| res.headers().get(n).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        (res.status().as_u16(), h("x-writ-subject"), h("x-writ-reason"))
    };
    // On the plain listener, the token is the proof: a JWT-SVID, and a service-account token.
    assert_eq!(read(&svid, None), (200, "spiffe://acme.example/agent/payroll".into(), String::new()));
    assert_eq!(read(&sa, None), (200, "spiffe://acme.example/ns/payroll/sa/agent".into(), String::new()));
    // A token for another audience, or signed by another key: refused.
    assert_eq!(read(&svid_key.token(&claims("spiffe://acme.example/agent/payroll", "vault")), None).0, 401);
    assert_eq!(
        read(
            &Signer::new("sa-1", JwsAlg::ES256).token(&json!({ "iss": k8s_iss, "aud": "writ", "exp": NOW + 60 })),
            None
        )
        .0,
        401
    );

    // /token with the service-account token as an RFC 7523 client assertion (no certificate).
    let sa_identity = r.writ().attest_token(&sa, "writ").unwrap();
    r.writ().open_task(&sa_identity, "run-42", std::slice::from_ref(&sa_identity.spiffe_id), "k8s", NOW + 600).unwrap();
    let form = [
        ("grant_type", GRANT),
        ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
        ("client_assertion", sa.as_str()),
        ("scope", "read"),
        ("resource", r#"PayrollRecord::"run-42/emp-7""#),
        ("task", "run-42"),
        ("audience", "payroll-api"),
    ];
    let res = plain().post(http(&r, "/token")).form(&form).send().unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let credential = res.json::<Value>().unwrap()["access_token"].as_str().unwrap().to_string();
    // Presented with the same token, it is its holder's; with another identity's token, not.
    assert_eq!(read(&sa, Some(&credential)).0, 200);
    assert_eq!(read(&svid, Some(&credential)), (403, String::new(), "untrusted".into()));
    // Neither a certificate nor an assertion: refused.
    let bare: Vec<_> = form.iter().filter(|(k, _)| !k.starts_with("client_assertion")).collect();
    assert_eq!(plain().post(http(&r, "/token")).form(&bare).send().unwrap().status().as_u16(), 401);
    r.shutdown();
}

#[test]
fn authzen_callers_can_be_required_to_authenticate() {
    let w = World::new("authzen-auth");
    let token = "a-token-only-the-pep-knows-0123456789";
    std::fs::write(w.dir.join("authzen.token"), format!("{token}\n")).unwrap();
    let pep = "spiffe://acme.example/pep/gateway";
    let r = w.start(Config {
        authzen_peers: vec![pep.into()],
        authzen_token_file: Some(w.dir.join("authzen.token")),
        ..w.config()
    });
    let body = agent_eval("payroll", "read", "PayrollRecord", "run-42/emp-7", "run-42");
    let ask = |c: &Client, url: String, bearer: Option<&str>| {
        let mut req = c.post(url).json(&body);
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        req.send().unwrap().status().as_u16()
    };
    let url = |r: &Running| http(r, "/access/v1/evaluation");
    assert_eq!(ask(&plain(), url(&r), None), 401);
    assert_eq!(ask(&plain(), url(&r), Some("a-wrong-token-of-the-same-kind-0000")), 401);
    assert_eq!(ask(&plain(), url(&r), Some(token)), 200);
    let (gateway, _) = w.client("/pep/gateway");
    let (agent, _) = w.client("/agent/payroll");
    assert_eq!(ask(&gateway, https(&r, "/access/v1/evaluation"), None), 200);
    assert_eq!(ask(&agent, https(&r, "/access/v1/evaluation"), None), 401, "an agent is no PEP");
    assert_eq!(ask(&plain(), http(&r, "/access/v1/evaluations"), None), 401, "the batch endpoint too");
    r.shutdown();
    // With neither configured, AuthZEN answers whoever reaches the listener (loopback use).
    let open = w.start(Config { listen_unix: Some(w.dir.join("open.sock")), ..w.config() });
    assert_eq!(ask(&plain(), url(&open), None), 200);
    open.shutdown();
}

#[test]
fn the_envoy_example_configuration_loads_and_forwards_over_the_unix_socket() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/envoy/writ.toml");
    let c = Config::load(&path).unwrap();
    assert_eq!(c.listen_unix.as_deref(), Some(Path::new("/run/writ/ext_authz.sock")));
    assert!(c.routes.iter().any(|r| r.path == "/payroll/{run}/{emp}/send" && r.action == "send"));
    let envoy = std::fs::read_to_string(path.with_file_name("envoy.yaml")).unwrap();
    assert!(envoy.contains("pipe: { path: /run/writ/ext_authz.sock }"), "Envoy calls the socket Writ serves");
    for header in ["x-forwarded-client-cert", "authorization", "x-writ-identity-token", "x-writ-context"] {
        assert!(envoy.contains(&format!("- exact: {header}")), "Envoy forwards `{header}` to ext_authz");
    }
}

#[test]
fn fetched_issuer_keys_and_bundles_work_at_every_door_and_show_in_metrics() {
    use writ_tests::https_server::{HttpsServer, Reply, loopback_web_pki};
    use writ_tests::jwt::{JwsAlg, Signer};
    let w = World::new("fetched");
    // One HTTPS server plays a Kubernetes API server (discovery and keys) and partner.example's
    // bundle endpoint.
    let (ca, chain, key) = loopback_web_pki();
    let remote = HttpsServer::start(chain, &key);
    std::fs::write(w.dir.join("remote-ca.pem"), ca).unwrap();
    let iss = remote.url("");
    let sa_key = Signer::new("sa-1", JwsAlg::ES256);
    remote.set(
        "/.well-known/openid-configuration",
        Reply::Body(json!({ "issuer": iss, "jwks_uri": remote.url("/openid/v1/jwks") }).to_string()),
    );
    remote.set("/openid/v1/jwks", Reply::Body(json!({ "keys": [sa_key.jwk()] }).to_string()));
    let bundle = |pki: &Pki, sequence: u64| {
        use base64::Engine as _;
        let x5c = base64::engine::general_purpose::STANDARD.encode(&pki.root.der);
        Reply::Body(
            json!({ "keys": [{ "kty": "EC", "use": "x509-svid", "x5c": [x5c] }], "spiffe_refresh_hint": 1, "spiffe_sequence": sequence })
                .to_string(),
        )
    };
    let (partner, rotated) = (Pki::new("partner.example", KeyAlg::P256), Pki::new("partner.example", KeyAlg::P256));
    remote.set("/bundle", bundle(&partner, 1));
    let oidc = json!({ "issuers": [{ "name": "k8s", "issuer": iss, "audiences": ["writ"], "algorithms": ["ES256"],
        "discovery": true, "ca_file": "remote-ca.pem", "fetch_timeout_ms": 2000,
        "mapping": { "kind": "kubernetes", "trust_domain": "acme.example" } }] });
    std::fs::write(w.dir.join("oidc.json"), oidc.to_string()).unwrap();
    std::fs::write(w.dir.join("p.cedar"), r#"permit(principal, action == Action::"read", resource);"#).unwrap();
    let endpoint = writ_server::config::BundleEndpointConfig {
        url: remote.url("/bundle"),
        profile: "https_web".into(),
        endpoint_spiffe_id: None,
        ca_file: Some(w.dir.join("remote-ca.pem")),
        refresh_secs: 300,
        min_refresh_secs: Some(1),
        fetch_timeout_ms: 2000,
    };
    let r = w.start(Config {
        oidc: Some(w.dir.join("oidc.json")),
        policies: Some(w.dir.join("p.cedar")),
        bundle_endpoints: [("partner.example".to_string(), endpoint.clone())].into(),
        ..w.config()
    });
    // The service-account token, with keys the server discovered, at ext_authz.
    let sa = sa_key.token(&json!({ "iss": iss, "aud": ["writ"], "exp": NOW + 600, "iat": NOW - 5,
        "sub": "system:serviceaccount:payroll:agent",
        "kubernetes.io": { "namespace": "payroll", "serviceaccount": { "name": "agent", "uid": "u-1" } } }));
    let res =
        plain().get(http(&r, "/ext_authz/payroll/run-42/emp-7")).header("x-writ-identity-token", &sa).send().unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["x-writ-subject"], "spiffe://acme.example/ns/payroll/sa/agent");
    // partner.example's bundle came from its endpoint; the rotation arrives without a restart.
    let attests = |pki: &Pki| r.writ().attest_x509(&pki.chain3("/agent/x", KeyAlg::P256)).is_ok();
    assert!(attests(&partner) && !attests(&rotated));
    remote.set("/bundle", bundle(&rotated, 2));
    assert!(eventually(std::time::Duration::from_secs(10), || attests(&rotated)).is_some());
    // A reload (SIGHUP) keeps the fetched bundle.
    r.reload().unwrap();
    assert!(attests(&rotated) && !attests(&partner));
    // /metrics: each source's age, and failures once the endpoint fails.
    remote.set("/bundle", Reply::Status(500));
    let metrics = || plain().get(http(&r, "/metrics")).send().unwrap().text().unwrap();
    let failed = |m: &str| {
        m.contains(r#"writ_source_fetch_failures_total{kind="bundle",name="partner.example"} "#)
            && !m.contains(r#"writ_source_fetch_failures_total{kind="bundle",name="partner.example"} 0"#)
    };
    assert!(eventually(std::time::Duration::from_secs(10), || failed(&metrics())).is_some(), "{}", metrics());
    let text = metrics();
    let age = |kind: &str, name: &str| -> f64 {
        let prefix = format!("writ_source_age_seconds{{kind=\"{kind}\",name=\"{name}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{prefix} in {text}"))
            .parse()
            .unwrap()
    };
    assert!((0.0..120.0).contains(&age("bundle", "partner.example")));
    assert!((0.0..120.0).contains(&age("oidc", "k8s")));
    assert!(attests(&rotated), "the last good bundle stays in force");
    r.shutdown();

    // https_spiffe needs a bundle that vouches for the endpoint, given out of band.
    let spiffe = writ_server::config::BundleEndpointConfig {
        profile: "https_spiffe".into(),
        endpoint_spiffe_id: Some("spiffe://partner.example/spire/server".into()),
        ca_file: None,
        ..endpoint
    };
    let c = Config { bundle_endpoints: [("partner.example".to_string(), spiffe)].into(), ..w.config() };
    let e = c.check().unwrap_err();
    assert!(e.contains("give it in `bundles`"), "{e}");
}

// ---- the MCP gateway, against the official MCP Python SDK (server and client) ----

/// An MCP server of the official Python SDK (`tests/mcp/upstream.py`) on a free port, its
/// executed calls recorded in a file.
struct McpUpstream {
    child: std::process::Child,
    port: u16,
    log: PathBuf,
    /// Where it reads the issuer's JWKS to verify the credentials it is sent.
    jwks: PathBuf,
}

impl McpUpstream {
    fn start(dir: &Path, json_response: bool) -> McpUpstream {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        McpUpstream::start_on(dir, json_response, port, None)
    }

    /// On `port`, optionally as a `variant` of itself (`$WRIT_MCP_VARIANT`).
    fn start_on(dir: &Path, json_response: bool, port: u16, variant: Option<&str>) -> McpUpstream {
        let log = dir.join(format!("mcp-calls-{port}.jsonl"));
        let jwks = dir.join(format!("mcp-jwks-{port}.json"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/upstream.py");
        let mut cmd = std::process::Command::new("python3");
        cmd.arg(script).arg(port.to_string()).env("WRIT_MCP_LOG", &log).env("WRIT_JWKS_FILE", &jwks);
        if json_response {
            cmd.arg("json");
        }
        if let Some(v) = variant {
            cmd.env("WRIT_MCP_VARIANT", v);
        }
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs the MCP SDK's server (pip install 'mcp==2.3.0'; .ci/run installs it)");
        let up = McpUpstream { child, port, log, jwks };
        let ready = eventually(std::time::Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", up.port)).is_ok()
        });
        assert!(ready.is_some(), "the MCP SDK's server did not start");
        up
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    /// The tools it executed, in order.
    fn calls(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for McpUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const MCP_POLICIES: &str = r#"
@id("lookup") permit(principal, action == Action::"lookup", resource == McpServer::"payments");
@id("small-payments") permit(principal == Agent::"spiffe://acme.example/agent/payroll", action == Action::"pay", resource == McpServer::"payments")
  when { context.input.amount <= 100 && context.input.to like "acme*" };
@id("report") permit(principal, action == Action::"report", resource == McpServer::"payments");
@id("open") permit(principal, action == Action::"open_task", resource);
"#;

/// A JWT-SVID key in acme.example's bundle, and a server with `payments` behind its gateway.
fn mcp_world(name: &str, upstream: &McpUpstream) -> (World, writ_tests::jwt::Signer, Running) {
    mcp_world_with(name, upstream, None)
}

/// [`mcp_world`], its policies validated against `schema` (`payments.cedarschema`) when given.
fn mcp_world_with(
    name: &str,
    upstream: &McpUpstream,
    schema: Option<&str>,
) -> (World, writ_tests::jwt::Signer, Running) {
    use writ_tests::jwt::{JwsAlg, Signer, spiffe_bundle};
    let w = World::new(name);
    let key = Signer::new("agents-1", JwsAlg::ES256);
    std::fs::write(w.dir.join("bundle.json"), spiffe_bundle(&[&key], &[&w.pki.root.der])).unwrap();
    std::fs::write(w.dir.join("mcp.cedar"), MCP_POLICIES).unwrap();
    let schema = schema.map(|text| {
        std::fs::write(w.dir.join("payments.cedarschema"), text).unwrap();
        w.dir.join("payments.cedarschema")
    });
    let mut config = Config {
        bundles: [("acme.example".to_string(), w.dir.join("bundle.json"))].into(),
        policies: Some(w.dir.join("mcp.cedar")),
        schema,
        audit: w.dir.join("audit.jsonl").display().to_string(),
        ..w.config()
    };
    config.mcp.upstreams =
        vec![writ_server::config::McpUpstream { name: "payments".into(), url: upstream.url(), audience: None }];
    let r = w.start(config);
    std::fs::write(&upstream.jwks, r.writ().jwks().unwrap()).unwrap();
    (w, key, r)
}

fn agent_token(key: &writ_tests::jwt::Signer, agent: &str) -> String {
    key.token(&writ_tests::jwt::claims(&format!("spiffe://acme.example/agent/{agent}"), "writ"))
}

#[test]
fn mcp_calls_are_decided_on_their_arguments_and_lists_filtered_for_the_sdks_client() {
    let dir = tmp("mcp-sdk");
    for json_response in [false, true] {
        let upstream = McpUpstream::start(&dir, json_response);
        let (_w, key, r) = mcp_world(&format!("mcp-sdk-{json_response}"), &upstream);
        std::fs::write(_w.dir.join("audit.jsonl"), "").unwrap();
        let agent_in = |token: &str, task: &str| sdk_agent(&r, token, task);
        let agent = |token: &str| agent_in(token, "");
        let seen = agent(&agent_token(&key, "payroll"));
        // The list: what policy may allow (`pay` per call on its arguments), not `admin_reset`.
        assert_eq!(seen["tools"], json!(["lookup", "pay", "report"]), "{seen}");
        assert_eq!(seen["lookup"]["text"], "acme: IBAN DE00 0000");
        assert_eq!(seen["small"]["text"], "paid 50 to acme");
        // Denied on its arguments: a JSON-RPC error naming why; the upstream never saw it.
        assert_eq!(seen["large"]["error"], -32003, "{seen}");
        assert!(seen["large"]["message"].as_str().unwrap().contains("no policy permits `pay`"), "{seen}");
        assert_eq!(seen["admin"]["error"], -32003);
        // The streamed call: its log messages (an SSE answer carries them; a JSON one cannot)
        // and its 2000-line result arrive intact.
        if !json_response {
            assert_eq!(seen["logs"], json!(["step 1 of 3", "step 2 of 3", "step 3 of 3"]), "{seen}");
        }
        let expected: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(seen["report"]["len"], expected.len());
        use sha2::Digest as _;
        let digest: String = sha2::Sha256::digest(expected.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(seen["report"]["sha256"], digest);
        let calls = upstream.calls();
        let executed: Vec<&str> = calls.iter().map(|c| c["tool"].as_str().unwrap()).collect();
        assert_eq!(executed, ["lookup", "pay", "report"], "only what was allowed reached the upstream");
        assert_eq!(calls[1]["arguments"], json!({ "amount": 50, "to": "acme" }));
        // No task named: the call carries no credential (and never the agent's own token).
        assert_eq!(calls[1]["credential"], Value::Null);
        // In an open task, each allowed call is forwarded with a Writ credential for exactly
        // that call, which the upstream verifies against the bytes it executes.
        let payroll = r.writ().attest_token(&agent_token(&key, "payroll"), "writ").unwrap();
        r.writ().open_task(&payroll, "run-7", std::slice::from_ref(&payroll.spiffe_id), "payroll", NOW + 600).unwrap();
        let in_task = agent_in(&agent_token(&key, "payroll"), "run-7");
        assert_eq!(in_task["small"]["text"], "paid 50 to acme", "{in_task}");
        assert_eq!(in_task["large"]["error"], -32003);
        let paid = upstream.calls().into_iter().rfind(|c| c["tool"] == "pay").unwrap();
        let credential = &paid["credential"];
        assert_eq!(credential["verified"], true, "{paid}");
        assert_eq!(credential["sub"], "spiffe://acme.example/agent/payroll");
        assert_eq!(credential["txn"], "run-7");
        assert_eq!(
            (credential["in_scope"].as_bool(), credential["same_arguments"].as_bool()),
            (Some(true), Some(true))
        );
        assert!(credential["lifetime"].as_u64().unwrap() <= 60, "{credential}");
        // A task the agent is not in: the call is refused (no credential can be minted for it).
        let browser_in_task = agent_in(&agent_token(&key, "browser"), "run-7");
        assert_eq!(browser_in_task["lookup"]["error"], -32003, "{browser_in_task}");
        // One audit event per decided call, with OpenTelemetry's names; arguments only digested.
        let audit = std::fs::read_to_string(_w.dir.join("audit.jsonl")).unwrap();
        let events: Vec<Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let paid = events
            .iter()
            .find(|e| e["event.name"] == "mcp" && e["gen_ai.tool.name"] == "pay" && e["writ.allow"] == true)
            .unwrap_or_else(|| panic!("no mcp event for the allowed pay in {audit}"));
        assert_eq!(paid["gen_ai.operation.name"], "execute_tool");
        assert_eq!(paid["mcp.method.name"], "tools/call");
        assert_eq!(paid["gen_ai.agent.id"], "spiffe://acme.example/agent/payroll");
        assert_eq!(
            paid["writ.input_digest"].as_str(),
            writ_types::input::input_digest(r#"{"amount":50,"to":"acme"}"#).unwrap().as_deref()
        );
        assert!(!audit.contains("mallory"), "arguments are never logged raw");
        // Another agent: `pay` is the payroll agent's alone, so not even listed.
        let other = agent(&agent_token(&key, "browser"));
        assert_eq!(other["tools"], json!(["lookup", "report"]), "{other}");
        assert_eq!(other["small"]["error"], -32003);
        r.shutdown();
    }
}

/// The SDK's client (`tests/mcp/agent.py`) through the gateway: what it saw.
fn sdk_agent(r: &Running, token: &str, task: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/agent.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(http(r, "/mcp/payments"))
        .arg(token)
        .arg(task)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap()
}

#[test]
fn mcp_schema_from_the_sdks_server_types_calls_and_a_changed_tool_is_refused_until_policies_validate() {
    let dir = tmp("mcp-schema");
    let upstream = McpUpstream::start(&dir, true);
    let port = upstream.port;
    // The schema, from the server itself (as `writ mcp schema --upstream` asks for it).
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tools = runtime
        .block_on(writ_server::fetch_tools(&upstream.url(), None, None, std::time::Duration::from_secs(10)))
        .unwrap();
    let listed: Value = serde_json::from_str(&tools).unwrap();
    let mut names: Vec<&str> =
        listed["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(names, ["admin_reset", "lookup", "pay", "report"]);
    let scratch = writ_host::Writ::builder().build().unwrap();
    let generated =
        scratch.mcp_schema(writ_host::pack::Pack::shipped().schema.as_deref().unwrap(), "payments", &tools).unwrap();
    assert!(generated.schema.contains("amount: Long"), "{}", generated.schema);
    // The policies validate against it (a typo in an argument's name would not load).
    let typo = MCP_POLICIES.replace("context.input.amount", "context.input.amuont");
    assert!(scratch.set_policies(&typo, Some(&generated.schema), None).is_err());
    // A gateway in front of it with that schema: calls typed by it, decided as before.
    let (w, key, r) = mcp_world_with("mcp-schema", &upstream, Some(&generated.schema));
    let token = agent_token(&key, "payroll");
    let seen = sdk_agent(&r, &token, "");
    assert_eq!(seen["tools"], json!(["lookup", "pay", "report"]), "{seen}");
    assert_eq!(seen["small"]["text"], "paid 50 to acme", "{seen}");
    assert_eq!(seen["large"]["error"], -32003, "{seen}");
    // The upstream changes `pay` (its `amount` now a string): the policy's `amount <= 100`
    // does not validate against the new types, so `pay` is refused — not listed, not called —
    // while the other tools carry on.
    drop(upstream);
    let upstream = McpUpstream::start_on(&dir, true, port, Some("amount-text"));
    let executed_before = upstream.calls().len();
    let seen = sdk_agent(&r, &token, "");
    assert_eq!(seen["tools"], json!(["lookup", "report"]), "{seen}");
    assert_eq!(seen["small"]["error"], -32003, "{seen}");
    let message = seen["small"]["message"].as_str().unwrap();
    assert!(message.contains("writ:tool-schema-changed") && message.contains("do not validate"), "{message}");
    assert_eq!(seen["lookup"]["text"], "acme: IBAN DE00 0000", "{seen}");
    let executed: Vec<Value> = upstream.calls().split_off(executed_before);
    assert!(executed.iter().all(|c| c["tool"] != "pay"), "{executed:?}");
    // Policies that validate against the new types, reloaded: `pay` is listed and decided
    // again, its arguments typed by the new schema (a number where it now wants a string is
    // refused before any policy reads it).
    let fixed = MCP_POLICIES.replace("context.input.amount <= 100 && ", "");
    std::fs::write(w.dir.join("mcp.cedar"), fixed).unwrap();
    r.reload().unwrap();
    let seen = sdk_agent(&r, &token, "");
    assert_eq!(seen["tools"], json!(["lookup", "pay", "report"]), "{seen}");
    assert_eq!(seen["small"]["error"], -32003, "{seen}");
    let message = seen["small"]["message"].as_str().unwrap();
    assert!(message.contains("does not fit the types") && !message.contains("tool-schema-changed"), "{seen}");
    let executed: Vec<Value> = upstream.calls().split_off(executed_before);
    assert!(executed.iter().all(|c| c["tool"] != "pay"), "{executed:?}");
    r.shutdown();
}

#[test]
fn mcp_max_calls_stops_the_call_past_the_budget_across_two_gateway_replicas() {
    use writ_tests::jwt::{JwsAlg, Signer, spiffe_bundle};
    let mut nats = writ_tests::nats_server::NatsServer::start();
    let dir = tmp("mcp-budget");
    let upstream = McpUpstream::start(&dir, true);
    let w = World::new("mcp-budget");
    let key = Signer::new("agents-1", JwsAlg::ES256);
    std::fs::write(w.dir.join("bundle.json"), spiffe_bundle(&[&key], &[&w.pki.root.der])).unwrap();
    // The payroll agent may make three small payments per task, whichever replica it calls.
    let budgeted = MCP_POLICIES.replace(r#"@id("small-payments")"#, r#"@id("small-payments") @max_calls("3")"#);
    std::fs::write(w.dir.join("mcp.cedar"), budgeted).unwrap();
    let replica = |name: &str| {
        let mut config = Config {
            bundles: [("acme.example".to_string(), w.dir.join("bundle.json"))].into(),
            policies: Some(w.dir.join("mcp.cedar")),
            state: Some(format!("{}/budget", nats.url())),
            state_max_lag_ms: Some(2000),
            listen_unix: Some(w.dir.join(format!("{name}.sock"))),
            ..w.config()
        };
        config.mcp.upstreams =
            vec![writ_server::config::McpUpstream { name: "payments".into(), url: upstream.url(), audience: None }];
        w.start(config)
    };
    let (a, b) = (replica("a"), replica("b"));
    let token = agent_token(&key, "payroll");
    let payroll = a.writ().attest_token(&token, "writ").unwrap();
    for task in ["run-1", "run-2"] {
        a.writ().open_task(&payroll, task, std::slice::from_ref(&payroll.spiffe_id), "payroll", NOW + 600).unwrap();
    }
    let rounds = |task: &str, n: usize| -> Vec<Value> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/agent.py");
        let out = std::process::Command::new("python3")
            .arg(script)
            .args(["rounds", &token, task, &n.to_string()])
            .arg(http(&a, "/mcp/payments"))
            .arg(http(&b, "/mcp/payments"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // Calls alternate A, B, A, B, A: the first three pass, wherever they went; the rest are
    // refused by the replica that got them, naming the spent budget, and never forwarded.
    let outcomes = rounds("run-1", 5);
    assert_eq!(outcomes[..3], [json!({ "ok": true }), json!({ "ok": true }), json!({ "ok": true })], "{outcomes:?}");
    for refused in &outcomes[3..] {
        assert_eq!(refused["error"], -32003, "{outcomes:?}");
        let message = refused["message"].as_str().unwrap();
        assert!(message.contains("writ:max-calls") && message.contains("small-payments"), "{message}");
    }
    let paid = upstream.calls().iter().filter(|c| c["tool"] == "pay").count();
    assert_eq!(paid, 3, "only the budget's calls reached the upstream");
    // Another task has a budget of its own.
    let other = rounds("run-2", 2);
    assert_eq!(other, [json!({ "ok": true }), json!({ "ok": true })]);
    a.shutdown();
    b.shutdown();
    nats.kill();
}

#[test]
fn mcp_bad_input_other_agents_sessions_and_a_down_upstream_are_refused_before_the_upstream() {
    let dir = tmp("mcp-bad");
    let upstream = McpUpstream::start(&dir, true);
    let (_w, key, r) = mcp_world("mcp-bad", &upstream);
    let (payroll, browser) = (agent_token(&key, "payroll"), agent_token(&key, "browser"));
    let post = |path: &str, token: Option<&str>, session: Option<&str>, body: &str| {
        let mut req = plain()
            .post(http(&r, path))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_string());
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        let res = req.send().unwrap();
        let status = res.status().as_u16();
        let session = res.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_string());
        let body: Value = serde_json::from_str(&res.text().unwrap()).unwrap_or(Value::Null);
        (status, session, body)
    };
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    // The payroll agent opens a session; it alone may use it.
    let (status, session, _) = post("/mcp/payments", Some(&payroll), None, init);
    assert_eq!(status, 200);
    let session = session.expect("the upstream names a session");
    assert_eq!(post("/mcp/payments", Some(&payroll), Some(&session), list).0, 200);
    let (status, _, body) = post("/mcp/payments", Some(&browser), Some(&session), list);
    assert_eq!(status, 404, "another agent's session is unknown to it: {body}");
    assert_eq!(post("/mcp/payments", Some(&payroll), Some("made-up"), list).0, 404);
    // No proof, a forged one, an unknown upstream: refused.
    assert_eq!(post("/mcp/payments", None, None, list).0, 401);
    assert_eq!(post("/mcp/payments", Some("a.b.c"), None, list).0, 401);
    assert_eq!(post("/mcp/nowhere", Some(&payroll), None, list).0, 404);
    // With one upstream, `/mcp` is it.
    assert_eq!(post("/mcp", Some(&payroll), None, init).0, 200);
    // Bodies that are not JSON-RPC: typed errors, nothing forwarded.
    let before = upstream.calls().len();
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"lookup","arguments":{{"a":{}1{}}}}}}}"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    for (body, code) in
        [("not json", -32700), ("[]", -32600), (r#"{"id":1,"method":"ping"}"#, -32600), (deep.as_str(), -32600)]
    {
        let (status, _, answer) = post("/mcp/payments", Some(&payroll), None, body);
        assert_eq!((status, answer["error"]["code"].as_i64()), (400, Some(code)), "{body}: {answer}");
    }
    assert_eq!(upstream.calls().len(), before, "no bad body reached the upstream");
    // MCP routing headers that disagree with the body (a proxy decided on them): refused.
    let lookup =
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"lookup","arguments":{"name":"x"}}}"#;
    let with_headers = |method: &str, name: &str| {
        let res = plain()
            .post(http(&r, "/mcp/payments"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("authorization", format!("Bearer {payroll}"))
            .header("mcp-session-id", &session)
            .header("mcp-method", method)
            .header("mcp-name", name)
            .body(lookup)
            .send()
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json::<Value>().unwrap_or(Value::Null))
    };
    for (method, name) in [("tools/list", "lookup"), ("tools/call", "pay")] {
        let (status, answer) = with_headers(method, name);
        assert_eq!((status, answer["error"]["code"].as_i64()), (400, Some(-32001)), "{method} {name}: {answer}");
    }
    assert_eq!(with_headers("tools/call", "lookup").0, 200);
    let bad_call = r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"lookup","arguments":[1]}}"#;
    let (_, _, answer) = post("/mcp/payments", Some(&payroll), None, bad_call);
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    // A batch with one denied call: nothing of it is forwarded, each request answered.
    let batch = r#"[{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"lookup","arguments":{"name":"x"}}},
                    {"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"admin_reset"}}]"#;
    let before = upstream.calls().len();
    let (status, _, answer) = post("/mcp/payments", Some(&payroll), None, batch);
    assert_eq!(status, 200);
    assert_eq!(answer[0]["id"], 5);
    assert!(answer[0]["error"]["message"].as_str().unwrap().contains("not forwarded"), "{answer}");
    assert_eq!((answer[1]["id"].as_i64(), answer[1]["error"]["code"].as_i64()), (Some(6), Some(-32003)));
    assert_eq!(upstream.calls().len(), before, "nothing reached the upstream");
    // The upstream goes down: a 502 with a JSON-RPC error, and the gateway keeps serving.
    drop(upstream);
    let (status, _, answer) = post("/mcp/payments", Some(&payroll), None, list);
    assert_eq!((status, answer["error"]["code"].as_i64()), (502, Some(-32002)), "{answer}");
    assert_eq!(plain().get(http(&r, "/healthz")).send().unwrap().status().as_u16(), 200);
    r.shutdown();
}

#[test]
fn mcp_sessions_keep_their_task_and_a_writ_credential_can_be_the_agents_bearer() {
    let dir = tmp("mcp-task");
    let upstream = McpUpstream::start(&dir, true);
    let (_w, key, r) = mcp_world("mcp-task", &upstream);
    let payroll = agent_token(&key, "payroll");
    let agent = r.writ().attest_token(&payroll, "writ").unwrap();
    r.writ().open_task(&agent, "run-7", std::slice::from_ref(&agent.spiffe_id), "payroll", NOW + 600).unwrap();
    let post = |headers: &[(&str, &str)], body: &str| {
        let mut req = plain()
            .post(http(&r, "/mcp/payments"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().unwrap();
        let status = res.status().as_u16();
        let session = res.headers().get("mcp-session-id").map(|v| v.to_str().unwrap().to_string());
        (status, session, serde_json::from_str::<Value>(&res.text().unwrap()).unwrap_or(Value::Null))
    };
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let pay = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"pay","arguments":{"amount":50,"to":"acme"}}}"#;
    let lookup =
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"lookup","arguments":{"name":"acme"}}}"#;
    let bearer = format!("Bearer {payroll}");

    // A session opened in run-7 stays in run-7: calls naming no task are in it (and get its
    // credential); a call naming another task is refused.
    let (status, session, _) = post(&[("authorization", &bearer), ("x-writ-task", "run-7")], init);
    assert_eq!(status, 200);
    let session = session.unwrap();
    let (status, _, answer) = post(&[("authorization", &bearer), ("mcp-session-id", &session)], pay);
    assert_eq!(status, 200, "{answer}");
    let paid = upstream.calls().into_iter().rfind(|c| c["tool"] == "pay").unwrap();
    assert_eq!(
        (paid["credential"]["txn"].as_str(), paid["credential"]["verified"].as_bool()),
        (Some("run-7"), Some(true))
    );
    let other = [("authorization", bearer.as_str()), ("mcp-session-id", &session), ("x-writ-task", "run-8")];
    let (status, _, answer) = post(&other, pay);
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("belongs to task `run-7`"), "{answer}");
    // A session opened in no task cannot be moved into one.
    let (_, untasked, _) = post(&[("authorization", &bearer)], init);
    let untasked_list = untasked.clone().unwrap();
    let into = [("authorization", bearer.as_str()), ("mcp-session-id", &untasked.unwrap()), ("x-writ-task", "run-7")];
    assert_eq!(post(&into, pay).0, 403);

    // A Writ credential as the agent's bearer: presented with its holder's proof (here the
    // JWT-SVID it was issued to, as `x-writ-identity-token`); its task is the session's, and its
    // scope — one payment, these arguments — bounds the agent whatever policy would give it.
    let pay_intent = writ_host::Intent {
        action: "pay".into(),
        resource: r#"McpServer::"payments""#.into(),
        task_id: "run-7".into(),
        context: String::new(),
        input: r#"{"amount":50,"to":"acme"}"#.into(),
    };
    // For the gateway's own audience (`audience`, as at ext_authz), not the upstream's.
    let own = r.writ().issue(&agent, "run-7", &[pay_intent], 300, &_w.config().audience).unwrap().token;
    let with_credential = format!("Bearer {own}");
    let holder = [("authorization", with_credential.as_str()), ("x-writ-identity-token", payroll.as_str())];
    let (status, session, _) = post(&holder, init);
    assert_eq!(status, 200);
    let session = session.unwrap();
    let in_session = [holder[0], holder[1], ("mcp-session-id", session.as_str())];
    let before = upstream.calls().len();
    let (status, _, answer) = post(&in_session, pay);
    assert_eq!((status, answer["error"].clone()), (200, Value::Null), "{answer}");
    let calls = upstream.calls();
    assert_eq!(calls.len(), before + 1);
    let forwarded = &calls[before]["credential"];
    assert_eq!(
        (forwarded["txn"].as_str(), forwarded["in_scope"].as_bool()),
        (Some("run-7"), Some(true)),
        "{forwarded}"
    );
    assert_eq!(forwarded["same_arguments"], true, "a credential minted for the call, not the agent's own");
    // Its tool list is cut to its scope: `pay` alone, though policy would show `lookup` too
    // (the upstream's session is JSON-answered: the list is one JSON answer).
    let list = r#"{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{}}"#;
    let (status, _, answer) = post(&in_session, list);
    let names: Vec<&str> =
        answer["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!((status, names), (200, vec!["pay"]), "{answer}");
    let (_, _, answer) = post(&[("authorization", &bearer), ("mcp-session-id", &untasked_list)], list);
    let names: Vec<&str> =
        answer["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pay", "lookup", "report"], "without a credential: what policy may allow");
    // `lookup`, and another small payment, are allowed by policy but outside the scope.
    let (_, _, answer) = post(&in_session, lookup);
    assert_eq!(answer["error"]["code"], -32003, "{answer}");
    let (_, _, answer) = post(&in_session, &pay.replace("50", "60"));
    assert_eq!(answer["error"]["code"], -32003, "{answer}");
    assert_eq!(upstream.calls().len(), before + 1, "nothing outside the scope reached the upstream");
    // Without its holder's proof, or naming another task: refused.
    assert_eq!(post(&[holder[0]], init).0, 401);
    assert_eq!(post(&[holder[0], holder[1], ("x-writ-task", "run-8")], init).0, 400);
    // Ended: the credential is revoked, so its calls are refused.
    r.writ().end_task("run-7").unwrap();
    let (_, _, answer) = post(&in_session, pay);
    assert_eq!(answer["error"]["code"], -32003, "{answer}");
    assert_eq!(upstream.calls().len(), before + 1);
    r.shutdown();
}

#[test]
fn the_mcp_example_configuration_and_policies_load() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let c = Config::load(&root.join("examples/mcp/writ.toml")).unwrap();
    assert_eq!(
        (c.mcp.upstreams[0].name.as_str(), c.mcp.upstreams[0].url.as_str()),
        ("payments", "http://127.0.0.1:8000/mcp")
    );
    let policies = std::fs::read_to_string(root.join("examples/mcp/payments.cedar")).unwrap();
    let writ = writ_tests::attester::writ();
    // The example's schema is what `writ mcp schema` makes of its saved tool list (no more,
    // no less), and its policies validate against it.
    let schema_path = c.schema.as_ref().map(|p| root.join(p)).unwrap();
    let schema = std::fs::read_to_string(schema_path).unwrap();
    let tools = std::fs::read_to_string(root.join("examples/mcp/tools.json")).unwrap();
    let shipped = writ_host::pack::Pack::shipped().schema.unwrap();
    let generated = writ.mcp_schema(&shipped, "payments", &tools).unwrap();
    let without_header: String = schema.lines().skip_while(|l| l.starts_with("//")).collect::<Vec<_>>().join("\n");
    assert_eq!(without_header.trim(), generated.schema.trim(), "regenerate examples/mcp/payments.cedarschema");
    assert!(writ.mcp_schema(&schema, "payments", &tools).unwrap().changed.is_empty());
    assert_eq!(writ.set_policies(&policies, Some(&schema), None), Ok(3));
    // Impossible upstreams are refused with a reason.
    let mut bad = c.clone();
    bad.mcp.upstreams[0].name = "a/b".into();
    assert!(bad.check().unwrap_err().contains("a name is letters"));
}
