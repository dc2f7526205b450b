//! OIDC workload tokens shaped exactly like a Kubernetes projected service-account token and a
//! GitHub Actions job token, minted by a third-party library (`jsonwebtoken`), attested
//! natively and through the component with the same outcome — and every bad case refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use writ_tests::{NOW, Outcome};

const K8S_ISS: &str = "https://kubernetes.default.svc.cluster.local";
const GH_ISS: &str = "https://token.actions.githubusercontent.com";

pub(crate) fn jwk(key: &rsa::RsaPrivateKey, kid: &str) -> Value {
    let public = key.to_public_key();
    let b = |v: Vec<u8>| URL_SAFE_NO_PAD.encode(v);
    json!({ "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b(public.n().to_bytes_be()), "e": b(public.e().to_bytes_be()) })
}

fn config() -> String {
    json!({ "issuers": [
        { "name": "k8s", "issuer": K8S_ISS, "audiences": ["writ"], "jwks": { "keys": [jwk(writ_tests::pki::rsa_key(), "k8s-1")] },
          "mapping": { "kind": "kubernetes", "trust_domain": "cluster.local" } },
        { "name": "github", "issuer": GH_ISS, "audiences": ["writ", "https://github.com/acme"], "algorithms": ["RS256"],
          "jwks": { "keys": [jwk(writ_tests::pki::rsa_key2(), "gh-1")] },
          "mapping": { "kind": "github-actions", "trust_domain": "ci.acme.example" } },
        { "name": "gitlab", "issuer": "https://gitlab.example", "audiences": ["writ"],
          "jwks": { "keys": [jwk(writ_tests::pki::rsa_key2(), "gl-1")] },
          "mapping": { "kind": "template", "trust_domain": "ci.acme.example", "path": "/gitlab/{project_path}/{ref}" } }
    ] })
    .to_string()
}

pub(crate) fn sign(key: &rsa::RsaPrivateKey, header: &Header, claims: &Value) -> String {
    let der = key.to_pkcs1_der().unwrap();
    encode(header, claims, &EncodingKey::from_rsa_der(der.as_bytes())).unwrap()
}

pub(crate) fn rs256(kid: &str) -> Header {
    Header { kid: Some(kid.into()), ..Header::new(Algorithm::RS256) }
}

/// A projected service-account token as the kubelet writes it (audience `writ`).
pub(crate) fn k8s_claims() -> Value {
    json!({
        "aud": ["writ"], "exp": NOW + 3600, "iat": NOW - 60, "nbf": NOW - 60, "iss": K8S_ISS,
        "jti": "8a1f6f0e-4c0a-4f0e-9c3a-0c6e5f7d2b11",
        "kubernetes.io": {
            "namespace": "payroll",
            "node": { "name": "node-3", "uid": "f1d7c9a2-2d3e-4a57-9b6f-4c1b6a0e8d21" },
            "pod": { "name": "payroll-agent-7d9f8b6c5-x2k4q", "uid": "3c0a7b7e-5c7b-4c3e-8a8a-1b2c3d4e5f60" },
            "serviceaccount": { "name": "payroll-agent", "uid": "9e0b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d" },
            "warnafter": NOW + 3000
        },
        "sub": "system:serviceaccount:payroll:payroll-agent"
    })
}

fn k8s() -> String {
    sign(writ_tests::pki::rsa_key(), &rs256("k8s-1"), &k8s_claims())
}

/// A GitHub Actions job's OIDC token (header with `x5t`, as GitHub's has).
fn github_claims(environment: Option<&str>) -> Value {
    let mut c = json!({
        "jti": "example-id", "sub": "repo:acme/app:ref:refs/heads/main", "aud": "writ",
        "ref": "refs/heads/main", "sha": "e1a7c5d8b0b2f0f1f7d3f2b6c9a4e8d7c6b5a493", "repository": "acme/app",
        "repository_owner": "acme", "repository_owner_id": "65", "run_id": "8844330022", "run_number": "42",
        "run_attempt": "1", "repository_visibility": "private", "repository_id": "35", "actor_id": "12",
        "actor": "octocat", "workflow": "deploy", "head_ref": "", "base_ref": "", "event_name": "push",
        "ref_type": "branch", "workflow_ref": "acme/app/.github/workflows/deploy.yml@refs/heads/main",
        "workflow_sha": "e1a7c5d8b0b2f0f1f7d3f2b6c9a4e8d7c6b5a493",
        "job_workflow_ref": "acme/app/.github/workflows/deploy.yml@refs/heads/main",
        "runner_environment": "github-hosted", "iss": GH_ISS, "nbf": NOW - 10, "exp": NOW + 300, "iat": NOW - 10
    });
    if let Some(env) = environment {
        c["environment"] = env.into();
        c["sub"] = format!("repo:acme/app:environment:{env}").into();
    }
    c
}

fn github(environment: Option<&str>) -> String {
    let header = Header { typ: Some("JWT".into()), x5t: Some("cgYzyUUcTTLOvj2MLFYlz8Ru3ZU".into()), ..rs256("gh-1") };
    sign(writ_tests::pki::rsa_key2(), &header, &github_claims(environment))
}

/// Attest natively and through the component; demand the same outcome.
fn both(token: &str, issuer: Option<&str>, audience: &str) -> Outcome {
    let crypto = writ_core::crypto::RustCrypto::new();
    let mut native = writ_core::Writ::default();
    native.set_oidc_issuers(&config()).unwrap();
    let n: Outcome = native.attest_oidc(token, issuer, audience, NOW, &crypto).into();
    let writ = writ_tests::attester::writ();
    writ.set_time(Some(NOW));
    assert_eq!(writ.set_oidc_issuers(&config()), Ok(3));
    let c: Outcome = writ.attest_oidc(token, issuer, audience).into();
    assert_eq!(n, c, "native and component disagree");
    n
}

fn principal(o: &Outcome) -> &str {
    match o {
        Outcome::Ok { spiffe_id, proof, .. } => {
            assert_eq!(proof, "oidc");
            spiffe_id
        }
        e => panic!("expected an identity, got {e:?}"),
    }
}

#[test]
fn kubernetes_and_github_tokens_map_to_spiffe_ids() {
    let k = both(&k8s(), Some("k8s"), "writ");
    assert_eq!(principal(&k), "spiffe://cluster.local/ns/payroll/sa/payroll-agent");
    assert!(matches!(&k, Outcome::Ok { expires_at, .. } if *expires_at == NOW + 3600));
    assert_eq!(principal(&both(&k8s(), Some(K8S_ISS), "writ")), "spiffe://cluster.local/ns/payroll/sa/payroll-agent");
    assert_eq!(principal(&both(&k8s(), None, "writ")), "spiffe://cluster.local/ns/payroll/sa/payroll-agent");
    let gh = both(&github(Some("production")), Some("github"), "writ");
    assert_eq!(principal(&gh), "spiffe://ci.acme.example/gh/acme/app/env/production");
    let gh = both(&github(None), Some("github"), "writ");
    assert_eq!(principal(&gh), "spiffe://ci.acme.example/gh/acme/app/refs/heads/main");
    let gl = json!({ "iss": "https://gitlab.example", "aud": "writ", "exp": NOW + 60, "sub": "project_path:acme/app:ref_type:branch:ref:main",
        "project_path": "acme-app", "ref": "main" });
    let gl = sign(writ_tests::pki::rsa_key2(), &rs256("gl-1"), &gl);
    assert_eq!(principal(&both(&gl, None, "writ")), "spiffe://ci.acme.example/gitlab/acme-app/main");
}

#[test]
fn every_bad_token_is_a_typed_refusal() {
    let key = writ_tests::pki::rsa_key();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = k8s_claims();
        edit(&mut c);
        sign(key, &rs256("k8s-1"), &c)
    };
    let weak = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
    let hmac = {
        let secret = serde_json::to_vec(&jwk(key, "k8s-1")).unwrap();
        let header = Header { kid: Some("k8s-1".into()), ..Header::new(Algorithm::HS256) };
        encode(&header, &k8s_claims(), &EncodingKey::from_secret(&secret)).unwrap()
    };
    let none = {
        let h = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k8s-1"}"#);
        let c = URL_SAFE_NO_PAD.encode(k8s_claims().to_string());
        format!("{h}.{c}.")
    };
    let jku = sign(key, &Header { jku: Some("https://evil.example/jwks".into()), ..rs256("k8s-1") }, &k8s_claims());
    let cases: Vec<(&str, String, Option<&str>, &str, &str, &str)> = vec![
        (
            "wrong iss",
            with(&|c| c["iss"] = "https://evil.example".into()),
            None,
            "writ",
            "untrusted",
            "not a configured issuer",
        ),
        ("another issuer asked for", k8s(), Some("github"), "writ", "untrusted", "not `github`"),
        (
            "token for another audience",
            with(&|c| c["aud"] = json!(["vault"])),
            None,
            "writ",
            "untrusted",
            "does not contain",
        ),
        ("audience the issuer may not be used for", k8s(), None, "vault", "untrusted", "may be used for"),
        ("expired", with(&|c| c["exp"] = (NOW - 1).into()), None, "writ", "expired", "expired at"),
        ("not yet valid", with(&|c| c["nbf"] = (NOW + 60).into()), None, "writ", "not-yet-valid", "valid from"),
        ("no exp", with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))), None, "writ", "malformed", "no `exp`"),
        ("unknown kid", sign(key, &rs256("k8s-9"), &k8s_claims()), None, "writ", "untrusted", "not a key of issuer"),
        (
            "signed by another key",
            sign(writ_tests::pki::rsa_key2(), &rs256("k8s-1"), &k8s_claims()),
            None,
            "writ",
            "untrusted",
            "does not verify",
        ),
        (
            "signed by a weak key not in the set",
            sign(&weak, &rs256("k8s-1"), &k8s_claims()),
            None,
            "writ",
            "untrusted",
            "does not verify",
        ),
        ("alg none", none, None, "writ", "untrusted", "`none` is not allowed"),
        ("HS256 with the public key as secret", hmac, None, "writ", "untrusted", "`HS256` is not allowed"),
        ("a jku header", jku, None, "writ", "untrusted", "header `jku`"),
        (
            "sub names another account",
            with(&|c| c["sub"] = "system:serviceaccount:payroll:admin".into()),
            None,
            "writ",
            "untrusted",
            "does not name",
        ),
        (
            "a namespace no SPIFFE ID can hold",
            with(&|c| {
                c["kubernetes.io"]["namespace"] = "pay roll".into();
                c["sub"] = "system:serviceaccount:pay roll:payroll-agent".into();
            }),
            None,
            "writ",
            "untrusted",
            "which a SPIFFE ID cannot",
        ),
        ("garbage", "a.b".into(), None, "writ", "malformed", "3 parts"),
    ];
    for (name, token, issuer, aud, kind, needle) in cases {
        crate::assert_err(name, &both(&token, issuer, aud), kind, needle);
    }
    // A GitHub ref with characters a SPIFFE ID cannot hold is refused, not rewritten.
    let mut c = github_claims(None);
    c["ref"] = "refs/heads/feat+x".into();
    let t = sign(writ_tests::pki::rsa_key2(), &rs256("gh-1"), &c);
    crate::assert_err("ref with +", &both(&t, None, "writ"), "untrusted", "which a SPIFFE ID cannot");
    // A configuration that allows HMAC, `none`, or nothing, or holds an RSA key under 2048
    // bits, is refused whole.
    let writ = writ_tests::attester::writ();
    let weak_config = config().replace(&jwk(key, "k8s-1").to_string(), &jwk(&weak, "k8s-1").to_string());
    assert!(writ.set_oidc_issuers(&weak_config).unwrap_err().message().contains("under 2048 bits"));
    for bad in [
        config().replace(r#""algorithms":["RS256"]"#, r#""algorithms":["HS256"]"#),
        config().replace(r#""algorithms":["RS256"]"#, r#""algorithms":["none"]"#),
        config().replace(r#""audiences":["writ"]"#, r#""audiences":[]"#),
        r#"{"issuers":[{"name":"x"}]}"#.to_string(),
        "not json".to_string(),
    ] {
        assert!(writ.set_oidc_issuers(&bad).is_err(), "{bad}");
    }
    // No issuers configured: refused.
    crate::assert_err(
        "none configured",
        &writ.attest_oidc(&k8s(), None, "writ").into(),
        "untrusted",
        "no OIDC issuers",
    );
}

#[test]
fn the_shipped_examples_load_and_map() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/oidc");
    let keys = json!({ "keys": [jwk(writ_tests::pki::rsa_key(), "ex-1")] }).to_string();
    let writ = writ_tests::attester::writ();
    writ.set_time(Some(NOW));
    let mut issuers = Vec::new();
    for (file, name) in [
        ("kubernetes-in-cluster.json", "k8s"),
        ("kubernetes.json", "k8s"),
        ("github-actions.json", "github"),
        ("gitlab-template.json", "gitlab"),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let resolved = writ_host::oidc::resolve_issuers(&text, &dir, Some((name, &keys))).unwrap();
        assert_eq!(writ.set_oidc_issuers(&resolved), Ok(1), "{file}");
        let v: Value = serde_json::from_str(&resolved).unwrap();
        issuers.push(v["issuers"][0]["issuer"].as_str().unwrap().to_string());
    }
    // The GitLab template, on a token shaped like GitLab's (a project path spans two segments).
    let claims = json!({ "iss": issuers[3], "aud": "writ", "exp": NOW + 60, "namespace_path": "acme",
        "project_path": "acme/app", "ref_type": "branch", "ref": "main", "sub": "project_path:acme/app:ref_type:branch:ref:main" });
    let token = sign(writ_tests::pki::rsa_key(), &rs256("ex-1"), &claims);
    let who = writ.attest_oidc(&token, Some("gitlab"), "writ").unwrap();
    assert_eq!(who.spiffe_id, "spiffe://ci.acme.example/gitlab/acme/app/branch/main");
    // Without the override, the keys come as each example says: fetched (by discovery, or from
    // the API server's `jwks_uri` with the pod's CA and token)…
    let remote = |file: &str| {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        writ_host::oidc::resolve(&text, &dir, None).unwrap().remote().to_vec()
    };
    let github = remote("github-actions.json");
    assert_eq!(github[0].keys_from, writ_host::remote::KeysFrom::Discovery);
    let in_cluster = &remote("kubernetes-in-cluster.json")[0];
    assert_eq!(
        in_cluster.keys_from,
        writ_host::remote::KeysFrom::JwksUri("https://kubernetes.default.svc/openid/v1/jwks".into())
    );
    assert_eq!(
        in_cluster.fetching.token_file.as_deref(),
        Some(std::path::Path::new("/var/run/secrets/kubernetes.io/serviceaccount/token"))
    );
    // … or read from the example's `jwks_file` (here it does not exist).
    let text = std::fs::read_to_string(dir.join("kubernetes.json")).unwrap();
    assert!(writ_host::oidc::resolve_issuers(&text, &dir, None).unwrap_err().message().contains("k8s-jwks.json"));
}

#[test]
fn an_oidc_identity_decides_and_holds_credentials_bound_to_its_token() {
    let writ = writ_tests::attester::writ();
    writ.set_time(Some(NOW));
    writ.set_oidc_issuers(&config()).unwrap();
    let p = r#"@id("k8s") permit(principal, action, resource) when { principal.proof == "oidc" && principal.path like "/ns/payroll/*" };
               @id("open") permit(principal, action == Action::"open_task", resource);"#;
    writ.set_policies(p, None, None).unwrap();
    let who = writ.attest_oidc(&k8s(), Some("k8s"), "writ").unwrap();
    let read = writ_tests::pack::intent("read", r#"Doc::"d""#, "t", "");
    assert_eq!(writ.check(&who, &read).unwrap().reasons, ["k8s"]);
    // The same workload's credential, bound to the token it attested with.
    writ.open_task(&who, "t", std::slice::from_ref(&who.spiffe_id), "oidc", NOW + 600).unwrap();
    let g = writ.issue(&who, "t", std::slice::from_ref(&read), 60, "api").unwrap();
    assert!(writ.present(&g.token, &who, &read, "api").unwrap().allow);
    // Another token of the same service account is another holder.
    let mut again = k8s_claims();
    again["jti"] = "another".into();
    let other = writ.attest_oidc(&sign(writ_tests::pki::rsa_key(), &rs256("k8s-1"), &again), None, "writ").unwrap();
    assert_eq!(other.spiffe_id, who.spiffe_id);
    assert!(matches!(writ.present(&g.token, &other, &read, "api"), Err(writ_host::Error::Untrusted(_))));
}

#[test]
fn policies_read_the_verified_claims_of_an_oidc_identity() {
    // Under the shipped schema: `context.oidc` is Writ's, typed, present for OIDC identities only.
    let p = r#"@id("pod") permit(principal is Agent, action == Action::"read", resource is PayrollRecord)
                 when { context has oidc && context.oidc.issuer == "k8s" && context.oidc has pod_name
                        && context.oidc.pod_name like "payroll-agent-*" };
               @id("deploy") permit(principal is Agent, action == Action::"read", resource is PayrollRecord)
                 when { context has oidc && context.oidc has workflow_ref
                        && context.oidc.workflow_ref like "acme/app/.github/workflows/deploy.yml@*" };"#;
    let writ = writ_tests::attester::writ();
    writ.set_time(Some(NOW));
    writ.set_oidc_issuers(&config()).unwrap();
    writ.set_policies(p, Some(writ_types::pack::SCHEMA), None).unwrap();
    let mut native = writ_core::Writ::default();
    native.set_oidc_issuers(&config()).unwrap();
    native.set_policies(p, Some(writ_types::pack::SCHEMA), None).unwrap();
    let crypto = writ_core::crypto::RustCrypto::new();
    let read = writ_tests::pack::intent("read", r#"PayrollRecord::"run-42/emp-7""#, "run-42", "");
    // Both implementations decide alike; the identity carries what policies saw.
    let decide = |token: &str| {
        let who = writ.attest_token(token, "writ").unwrap();
        let d = writ.check(&who, &read).unwrap();
        let n = native.check_at_depth(&native.attest_oidc(token, None, "writ", NOW, &crypto).unwrap(), &read, NOW, 0);
        assert_eq!((d.allow, &d.reasons), (n.allow, &n.reasons), "native and component disagree");
        (who, d)
    };
    let (who, d) = decide(&k8s());
    assert_eq!((d.allow, d.reasons), (true, vec!["pod".to_string()]));
    let claims = &who.claims;
    assert_eq!(claims["issuer"], "k8s");
    assert_eq!(claims["pod_name"], "payroll-agent-7d9f8b6c5-x2k4q");
    assert_eq!(claims["pod_uid"], "3c0a7b7e-5c7b-4c3e-8a8a-1b2c3d4e5f60");
    assert_eq!(claims["service_account_uid"], "9e0b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d");
    assert_eq!(claims["subject"], "system:serviceaccount:payroll:payroll-agent");
    // The same service account (the same SPIFFE ID and proof) from another pod: denied — the
    // decision memo keys on the claims a policy reads.
    let mut other_pod = k8s_claims();
    other_pod["kubernetes.io"]["pod"]["name"] = "debug-shell".into();
    let (other, d) = decide(&sign(writ_tests::pki::rsa_key(), &rs256("k8s-1"), &other_pod));
    assert_eq!(other.spiffe_id, who.spiffe_id);
    assert!(!d.allow, "{d:?}");
    // A GitHub job: its workflow decides, not only its repository.
    let (gh, d) = decide(&github(Some("production")));
    assert_eq!((d.allow, d.reasons), (true, vec!["deploy".to_string()]));
    assert_eq!(gh.claims["workflow_ref"], "acme/app/.github/workflows/deploy.yml@refs/heads/main");
    let mut c = github_claims(Some("production"));
    c["workflow_ref"] = "acme/app/.github/workflows/pwn.yml@refs/heads/main".into();
    let (_, d) = decide(&sign(writ_tests::pki::rsa_key2(), &rs256("gh-1"), &c));
    assert!(!d.allow, "{d:?}");
    // An X.509-SVID has no `context.oidc`; neither rule applies.
    let chain = writ_tests::pack_pki().chain3("/agent/payroll", writ_tests::pki::KeyAlg::P256);
    let x509 = writ.attest_x509(&chain).unwrap();
    assert!(x509.claims.is_empty());
    assert!(!writ.check(&x509, &read).unwrap().allow);
    // A caller cannot write the key itself: its `oidc` lands under `claimed` (and the shipped
    // schema refuses it there).
    let forged = writ_tests::pack::intent(
        "read",
        r#"PayrollRecord::"run-42/emp-7""#,
        "run-42",
        r#"{"oidc":{"issuer":"k8s","pod_name":"payroll-agent-1"}}"#,
    );
    assert!(!writ.check(&x509, &forged).unwrap().allow);
}
