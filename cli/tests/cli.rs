//! The `writ` CLI contract, on certificates and tokens made by a standard tool (the `openssl`
//! command line), not by Writ's own fixtures.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn writ(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_writ"));
    // Never the user's own state directory: a test's default state is this run's.
    cmd.env("WRIT_STATE_DIR", std::env::temp_dir().join(format!("writ-cli-state-{}", std::process::id())));
    cmd.args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn openssl(dir: &Path, args: &[&str]) {
    let out =
        Command::new("openssl").current_dir(dir).args(args).output().expect("the openssl command line is installed");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("writ-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// An OpenSSL-made SPIFFE PKI: root CA and one leaf for `spiffe://example.org/cli`.
fn openssl_pki(dir: &Path) {
    std::fs::write(
        dir.join("ext.cnf"),
        "[req]\ndistinguished_name=dn\n[dn]\n[root]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectAltName=URI:spiffe://example.org\n\
         [leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:spiffe://example.org/cli\n\
         [bad]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=digitalSignature\nsubjectAltName=URI:spiffe://example.org/cli\n",
    )
    .unwrap();
    openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "root.key"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "root.key",
            "-subj",
            "/CN=root",
            "-days",
            "30",
            "-config",
            "ext.cnf",
            "-extensions",
            "root",
            "-out",
            "root.pem",
        ],
    );
    openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key"]);
    openssl(dir, &["req", "-new", "-key", "leaf.key", "-subj", "/CN=leaf", "-config", "ext.cnf", "-out", "leaf.csr"]);
    for (ext, out) in [("leaf", "leaf.pem"), ("bad", "bad.pem")] {
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                "ext.cnf",
                "-extensions",
                ext,
                "-out",
                out,
            ],
        );
    }
    openssl(dir, &["x509", "-in", "leaf.pem", "-outform", "DER", "-out", "leaf.der"]);
}

#[test]
fn attest_x509_on_openssl_certificates() {
    let dir = tempdir("x509");
    openssl_pki(&dir);
    let d = |f: &str| dir.join(f).display().to_string();
    let bundle = format!("example.org={}", d("root.pem"));

    let out = writ(&["attest", "x509", "--bundle", &bundle, "--chain", &d("leaf.pem")], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with(r#"{"spiffe_id":"spiffe://example.org/cli","trust_domain":"example.org","expires_at":"#),
        "{stdout}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["proof"], "x509-svid");
    let der = std::fs::read(dir.join("leaf.der")).unwrap();
    use sha2::Digest as _;
    assert_eq!(v["thumbprint"], URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&der)));

    // DER works too, and a DER bundle.
    let out = writ(&["attest", "x509", "--bundle", &bundle, "--chain", &d("leaf.der")], None);
    assert_eq!(out.status.code(), Some(0));

    // Rejections: JSON error on stdout, exit 1.
    let out = writ(&["attest", "x509", "--bundle", &bundle, "--chain", &d("bad.pem")], None);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "untrusted");
    assert!(v["error"]["message"].as_str().unwrap().contains("not marked critical"));

    let late = (now() + 3 * 86400).to_string();
    let out = writ(&["attest", "x509", "--bundle", &bundle, "--chain", &d("leaf.pem"), "--at", &late], None);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "expired");

    let out =
        writ(&["attest", "x509", "--bundle", &format!("other.org={}", d("root.pem")), "--chain", &d("leaf.pem")], None);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "untrusted");

    let out = writ(
        &["attest", "x509", "--bundle", &format!("example.org={}", d("ext.cnf")), "--chain", &d("leaf.pem")],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "malformed");

    // Usage errors: exit 2.
    assert_eq!(writ(&["attest", "x509", "--bundle", &bundle], None).status.code(), Some(2));
    assert_eq!(
        writ(&["attest", "x509", "--bundle", "example.org", "--chain", &d("leaf.pem")], None).status.code(),
        Some(2)
    );
    assert_eq!(
        writ(&["attest", "x509", "--bundle", &bundle, "--chain", &d("missing.pem")], None).status.code(),
        Some(2)
    );
    assert_eq!(
        writ(&["attest", "x509", "--bundle", &bundle, "--chain", &d("leaf.pem"), "--at", "yesterday"], None)
            .status
            .code(),
        Some(2)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn attest_jwt_on_an_openssl_signed_token() {
    let dir = tempdir("jwt");
    let bundle_file = openssl_jwks(&dir, "k", "ossl", Some("jwt-svid"));

    let t = now();
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"ossl","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD
        .encode(serde_json::json!({"sub": "spiffe://example.org/agent", "aud": ["writ"], "exp": t + 300}).to_string());
    let input = format!("{header}.{claims}");
    std::fs::write(dir.join("input"), &input).unwrap();
    openssl(&dir, &["dgst", "-sha256", "-sign", "k.pem", "-out", "sig", "input"]);
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(std::fs::read(dir.join("sig")).unwrap()));
    let bundle = format!("example.org={}", bundle_file.display());

    let out = writ(&["attest", "jwt", "--bundle", &bundle, "--audience", "writ", &token], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["spiffe_id"], "spiffe://example.org/agent");
    assert_eq!(v["proof"], "jwt-svid");
    assert_eq!(v["expires_at"], t + 300);

    // From stdin.
    let out = writ(&["attest", "jwt", "--bundle", &bundle, "--audience", "writ", "-"], Some(&format!("{token}\n")));
    assert_eq!(out.status.code(), Some(0));

    // Wrong audience, later time, leeway.
    let out = writ(&["attest", "jwt", "--bundle", &bundle, "--audience", "other", &token], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["error"]["kind"], "untrusted");
    let at = (t + 301).to_string();
    let out = writ(&["attest", "jwt", "--bundle", &bundle, "--audience", "writ", "--at", &at, &token], None);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["error"]["kind"], "expired");
    let out =
        writ(&["attest", "jwt", "--bundle", &bundle, "--audience", "writ", "--at", &at, "--leeway", "5", &token], None);
    assert_eq!(out.status.code(), Some(0));
    // alg none is refused.
    let none = format!("{}.{claims}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"ossl"}"#));
    let out = writ(&["attest", "jwt", "--bundle", &bundle, "--audience", "writ", &none], None);
    assert_eq!(out.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An RSA key `<name>.pem` in `dir` (openssl) and its JWKS `<name>-jwks.json`: one key `kid`,
/// with `use` when given.
fn openssl_jwks(dir: &Path, name: &str, kid: &str, key_use: Option<&str>) -> PathBuf {
    let file = format!("{name}.pem");
    openssl(dir, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &file]);
    let modulus =
        Command::new("openssl").current_dir(dir).args(["rsa", "-in", &file, "-noout", "-modulus"]).output().unwrap();
    let hex = String::from_utf8(modulus.stdout).unwrap().trim().trim_start_matches("Modulus=").to_string();
    let n: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let mut key = serde_json::json!({"kty": "RSA", "kid": kid, "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"});
    if let Some(u) = key_use {
        key["use"] = u.into();
    }
    let path = dir.join(format!("{name}-jwks.json"));
    std::fs::write(&path, serde_json::json!({ "keys": [key] }).to_string()).unwrap();
    path
}

const K8S_ISS: &str = "https://kubernetes.default.svc.cluster.local";

/// `oidc.json` in `dir`: one Kubernetes issuer whose keys are `k-jwks.json`.
fn k8s_issuer(dir: &Path) -> String {
    k8s_issuer_keys(dir, K8S_ISS, serde_json::json!({ "jwks_file": "k-jwks.json" }))
}

/// The issuer `iss`, its keys as `keys` says (`jwks_file`, `discovery`…).
fn k8s_issuer_keys(dir: &Path, iss: &str, keys: serde_json::Value) -> String {
    let mut issuer = serde_json::json!({ "name": "k8s", "issuer": iss, "audiences": ["writ"],
        "mapping": { "kind": "kubernetes", "trust_domain": "cluster.local" } });
    for (k, v) in keys.as_object().unwrap() {
        issuer[k] = v.clone();
    }
    let config = serde_json::json!({ "issuers": [issuer] });
    std::fs::write(dir.join("oidc.json"), config.to_string()).unwrap();
    dir.join("oidc.json").display().to_string()
}

/// A service-account token of `payroll/agent`, signed with `k.pem` by openssl.
fn k8s_token(dir: &Path, t: u64, jti: &str) -> String {
    k8s_token_of(dir, K8S_ISS, t, jti)
}

fn k8s_token_of(dir: &Path, iss: &str, t: u64, jti: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"sa-1"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        serde_json::json!({"aud": ["writ"], "exp": t + 300, "iat": t, "iss": iss, "jti": jti, "sub": "system:serviceaccount:payroll:agent",
            "kubernetes.io": {"namespace": "payroll", "serviceaccount": {"name": "agent", "uid": "u"}, "pod": {"name": "p", "uid": "v"}}})
        .to_string(),
    );
    let input = format!("{header}.{claims}");
    std::fs::write(dir.join("input"), &input).unwrap();
    openssl(dir, &["dgst", "-sha256", "-sign", "k.pem", "-out", "sig", "input"]);
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(std::fs::read(dir.join("sig")).unwrap()))
}

#[test]
fn attest_oidc_on_an_openssl_signed_kubernetes_token() {
    let dir = tempdir("oidc");
    let jwks = [openssl_jwks(&dir, "k", "sa-1", None), openssl_jwks(&dir, "other", "sa-1", None)];
    let iss = K8S_ISS;
    k8s_issuer(&dir);
    let t = now();
    let token = k8s_token(&dir, t, "a");
    let cfg = dir.join("oidc.json").display().to_string();

    let out = writ(&["attest", "oidc", "--oidc", &cfg, "--issuer", "k8s", "--audience", "writ", &token], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let v = json(&out);
    assert_eq!(
        (v["spiffe_id"].as_str(), v["proof"].as_str()),
        (Some("spiffe://cluster.local/ns/payroll/sa/agent"), Some("oidc"))
    );
    assert_eq!(v["expires_at"], t + 300);
    // From stdin; by `iss` instead of name.
    let out = writ(
        &["attest", "oidc", "--oidc", &cfg, "--issuer", iss, "--audience", "writ", "-"],
        Some(&format!("{token}\n")),
    );
    assert_eq!(out.status.code(), Some(0));
    // Another issuer's keys (`--jwks`), another audience, another issuer name: refused, exit 1.
    let other = jwks[1].display().to_string();
    for args in [
        vec!["--issuer", "k8s", "--jwks", other.as_str(), "--audience", "writ"],
        vec!["--audience", "vault"],
        vec!["--issuer", "github", "--audience", "writ"],
    ] {
        let mut all = vec!["attest", "oidc", "--oidc", cfg.as_str()];
        all.extend(args.iter().copied());
        all.push(&token);
        let out = writ(&all, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(json(&out)["error"]["kind"], "untrusted", "{args:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn attest_oidc_discovers_the_issuers_keys_over_https_and_fails_closed_without_them() {
    use writ_tests::https_server::{HttpsServer, Reply, loopback_web_pki};
    let dir = tempdir("oidc-discovery");
    let jwks = openssl_jwks(&dir, "k", "sa-1", None);
    let (ca, chain, key) = loopback_web_pki();
    std::fs::write(dir.join("ca.pem"), ca).unwrap();
    let server = HttpsServer::start(chain, &key);
    let iss = server.url("");
    let doc = serde_json::json!({ "issuer": iss, "jwks_uri": server.url("/keys") });
    server.set("/.well-known/openid-configuration", Reply::Body(doc.to_string()));
    server.set("/keys", Reply::Body(std::fs::read_to_string(&jwks).unwrap()));
    let cfg = k8s_issuer_keys(&dir, &iss, serde_json::json!({ "discovery": true, "ca_file": "ca.pem" }));
    let token = k8s_token_of(&dir, &iss, now(), "d");
    let attest = || writ(&["attest", "oidc", "--oidc", &cfg, "--audience", "writ", &token], None);
    let out = attest();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(json(&out)["spiffe_id"], "spiffe://cluster.local/ns/payroll/sa/agent");
    assert_eq!(server.hits("/keys"), 1);
    // Keys that cannot be fetched: the command fails, saying why; it never attests.
    server.set("/keys", Reply::Status(503));
    let out = attest();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let e = json(&out);
    assert_eq!(e["error"]["kind"], "unavailable");
    assert!(e["error"]["message"].as_str().unwrap().contains("status 503"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_service_account_token_opens_a_task_and_holds_a_credential_bound_to_it() {
    let dir = tempdir("oidc-credentials");
    openssl_jwks(&dir, "k", "sa-1", None);
    let cfg = k8s_issuer(&dir);
    let d = dir.to_str().unwrap();
    let t = now();
    let (token, again) = (k8s_token(&dir, t, "a"), k8s_token(&dir, t, "b"));
    let policies = format!("{d}/p.cedar");
    std::fs::write(&policies, r#"@id("sa") permit(principal, action, resource) when { principal.proof == "oidc" };"#)
        .unwrap();
    let common = |cmd: &[&str], token: &str| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        for a in [
            "--key",
            &format!("{d}/issuer.pem"),
            "--state",
            &format!("{d}/state"),
            "--oidc",
            &cfg,
            "--token",
            token,
            "--policies",
            &policies,
        ] {
            v.push(a.to_string());
        }
        v
    };
    let run = |v: Vec<String>| writ(&v.iter().map(String::as_str).collect::<Vec<_>>(), None);
    let me = "spiffe://cluster.local/ns/payroll/sa/agent";
    let mut open = common(&["task", "open"], &token);
    open.extend(["--id", "t1", "--member", me, "--ttl", "600"].map(String::from));
    let out = run(open);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(json(&out)["opener"], me);
    let mut issue = common(&["issue"], &token);
    issue.extend(["--task", "t1", "--scope", r#"read Doc::"d""#, "--ttl", "60", "--audience", "api"].map(String::from));
    let out = run(issue);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let credential = json(&out)["token"].as_str().unwrap().to_string();
    let present = |who: &str| {
        let mut v = common(&["present"], who);
        v.extend(
            ["--action", "read", "--resource", r#"Doc::"d""#, "--task", "t1", "--audience", "api", &credential]
                .map(String::from),
        );
        run(v)
    };
    assert_eq!(present(&token).status.code(), Some(0), "its holder presents it");
    let other = present(&again);
    assert_eq!(other.status.code(), Some(1), "another token of the same account is another holder");
    assert_eq!(json(&other)["error"]["kind"], "untrusted");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_runs_on_built_in_defaults() {
    let out = writ(&["demo"], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let s = String::from_utf8(out.stdout).unwrap();
    assert_eq!(s.matches(" ACCEPT ").count(), 1, "{s}");
    // 5 bad SVIDs; a stolen credential; two used after their task ended.
    assert_eq!(s.matches(" REJECT ").count(), 8, "{s}");
    assert_eq!(s.matches(" ALLOW ").count(), 5, "{s}");
    assert_eq!(s.matches(" DENY ").count(), 5, "{s}");
    assert_eq!(s.matches(" GRANT ").count(), 3, "{s}");
    assert_eq!(s.matches(" REFUSE ").count(), 2, "{s}");
    assert_eq!(s.matches(" OPEN ").count(), 2, "{s}");
    assert_eq!(s.matches(" REVOKE ").count(), 2, "{s}");
    // Every step is audited: attestations, decisions, issue/delegate/present/revoke.
    for kind in ["attest", "authorize", "open-task", "issue", "delegate", "present", "revoke"] {
        assert!(s.contains(&format!("audit {kind}")), "no `{kind}` audit event in {s}");
    }
}

#[test]
fn authorize_with_the_shipped_pack_and_with_files() {
    let read = |dataset: &str| {
        ["authorize", "--principal", "spiffe://acme.example/agent/browser", "--action", "read", "--resource", dataset]
            .map(str::to_string)
    };
    fn args<'a>(v: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
        v.iter().map(String::as_str).chain(more.iter().copied()).collect()
    }
    // Built-in default: the shipped pack.
    let out = writ(&args(&read(r#"Dataset::"sales-summary""#), &[]), None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        r#"{"allow":true,"reasons":["analyst-internal-data"],"errors":[],"max_ttl_secs":1800}"#
    );
    // A deny exits 3.
    let out = writ(&args(&read(r#"Dataset::"customer-pii""#), &[]), None);
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["allow"], false);
    // A payroll read needs an open task listing the agent: with no state, no task is open.
    let payroll = [
        "authorize",
        "--principal",
        "spiffe://acme.example/agent/payroll",
        "--action",
        "read",
        "--resource",
        r#"PayrollRecord::"run-42/emp-7""#,
        "--task",
        "run-42",
    ];
    assert_eq!(writ(&payroll, None).status.code(), Some(3));
    // A bad context is a deny with the error listed.
    let out = writ(&args(&read(r#"Dataset::"sales-summary""#), &["--context", "{oops"]), None);
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["errors"][0].as_str().unwrap().contains("context is not JSON"));

    // From files: a policy file without a schema.
    let dir = tempdir("authz");
    let p = dir.join("p.cedar");
    std::fs::write(
        &p,
        r#"@id("only-staging") permit(principal, action == Action::"deploy", resource == Environment::"staging");"#,
    )
    .unwrap();
    let ps = p.display().to_string();
    let deploy = |env: &str| {
        writ(
            &[
                "authorize",
                "--policies",
                &ps,
                "--principal",
                "spiffe://acme.example/ci",
                "--action",
                "deploy",
                "--resource",
                env,
            ],
            None,
        )
    };
    assert_eq!(deploy(r#"Environment::"staging""#).status.code(), Some(0));
    assert_eq!(deploy(r#"Environment::"production""#).status.code(), Some(3));
    // An unparsable policy file is an error (exit 1) naming the line.
    std::fs::write(&p, "permit(principal,\n action resource);").unwrap();
    let out = deploy(r#"Environment::"staging""#);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "policy");
    assert!(v["error"]["message"].as_str().unwrap().contains("line 2"), "{v}");
    // Usage errors exit 2.
    assert_eq!(
        writ(&["authorize", "--principal", "spiffe://acme.example/a", "--action", "read"], None).status.code(),
        Some(2)
    );
    assert_eq!(
        writ(&["authorize", "--principal", "not-spiffe", "--action", "read", "--resource", "X::\"y\""], None)
            .status
            .code(),
        Some(2)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn policy_check_validates_a_pack() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let r = |f: &str| root.join(f).display().to_string();
    let out =
        writ(&["policy", "check", &r(""), "--schema", &r("writ.cedarschema"), "--entities", &r("entities.json")], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), r#"{"policies":12}"#);
    let dir = tempdir("check");
    std::fs::write(dir.join("bad.cedar"), r#"@id("x") permit(principal, action == Action::"read", resource is Dataset) when { resource.colour == "red" };"#).unwrap();
    let out = writ(
        &["policy", "check", &dir.join("bad.cedar").display().to_string(), "--schema", &r("writ.cedarschema")],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("`x`"), "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An OpenSSL-made PKI for the shipped pack's trust domain, with one leaf per agent.
fn openssl_agents(dir: &Path, agents: &[&str]) {
    let mut cnf = String::from(
        "[req]\ndistinguished_name=dn\n[dn]\n[root]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectAltName=URI:spiffe://acme.example\n",
    );
    for a in agents {
        cnf.push_str(&format!(
            "[{a}]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=URI:spiffe://acme.example/agent/{a}\n"
        ));
    }
    std::fs::write(dir.join("ext.cnf"), cnf).unwrap();
    openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "root.key"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "root.key",
            "-subj",
            "/CN=acme root",
            "-days",
            "30",
            "-config",
            "ext.cnf",
            "-extensions",
            "root",
            "-out",
            "root.pem",
        ],
    );
    for a in agents {
        let (key, csr, pem) = (format!("{a}.key"), format!("{a}.csr"), format!("{a}.pem"));
        // PKCS#8 (`PRIVATE KEY`), as SPIRE writes SVID keys: what `--chain-key` reads.
        openssl(dir, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &key]);
        openssl(dir, &["req", "-new", "-key", &key, "-subj", &format!("/CN={a}"), "-config", "ext.cnf", "-out", &csr]);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "root.pem",
                "-CAkey",
                "root.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                "ext.cnf",
                "-extensions",
                a,
                "-out",
                &pem,
            ],
        );
    }
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {} / {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

/// Verify `token` with PyJWT and the JWKS of `key`. Skipped (with a notice) when PyJWT is not
/// installed, unless `WRIT_REQUIRE_PYJWT` is set (CI installs it and sets it).
fn pyjwt_claims(dir: &Path, key: &str, token: &str, audience: &str) -> Option<serde_json::Value> {
    let has_pyjwt =
        Command::new("python3").args(["-c", "import jwt, cryptography"]).output().is_ok_and(|o| o.status.success());
    if !has_pyjwt {
        assert!(
            std::env::var_os("WRIT_REQUIRE_PYJWT").is_none(),
            "WRIT_REQUIRE_PYJWT is set but PyJWT is missing (pip install 'pyjwt[crypto]')"
        );
        eprintln!("note: PyJWT is not installed (pip install 'pyjwt[crypto]'); skipping the PyJWT interop check");
        return None;
    }
    let jwks = writ(&["jwks", "--key", key], None);
    assert_eq!(jwks.status.code(), Some(0));
    std::fs::write(dir.join("jwks.json"), &jwks.stdout).unwrap();
    std::fs::write(dir.join("token"), token).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/pyjwt_verify.py");
    let out =
        Command::new("python3").current_dir(dir).arg(script).args(["jwks.json", "token", audience]).output().unwrap();
    assert!(out.status.success(), "PyJWT refused the credential: {}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn credentials_issue_present_delegate_revoke_across_invocations() {
    let dir = tempdir("credentials");
    openssl_agents(&dir, &["payroll", "broker", "browser"]);
    let d = dir.to_str().unwrap();
    let key = format!("{d}/issuer.pem");
    let state = format!("{d}/state");
    let bundle = format!("acme.example={d}/root.pem");
    let chain = |a: &str| format!("{d}/{a}.pem");
    let record = r#"PayrollRecord::"run-42/emp-7""#;
    let id = |args: &[&str], who: &str| -> Vec<String> {
        // The subcommand, the issuer and caller flags, then the rest (which may end in a
        // flag whose value the caller appends).
        let mut v = vec![
            args[0].to_string(),
            "--key".into(),
            key.clone(),
            "--state".into(),
            state.clone(),
            "--bundle".into(),
            bundle.clone(),
            "--chain".into(),
            chain(who),
            "--chain-key".into(),
            format!("{d}/{who}.key"),
        ];
        v.extend(args[1..].iter().map(|s| s.to_string()));
        v
    };
    let run = |v: Vec<String>, stdin: Option<&str>| writ(&v.iter().map(String::as_str).collect::<Vec<_>>(), stdin);

    // Tasks are records: the broker opens run-42 for payroll and pipeline-1 for itself and the
    // browser; nothing is issued for a task never opened, or to an agent not its member.
    let agent = |who: &str| format!("spiffe://acme.example/agent/{who}");
    for (task, members) in [("run-42", vec!["payroll"]), ("pipeline-1", vec!["broker", "browser"])] {
        let mut v = id(&["task", "--id", task, "--purpose", "test", "--ttl", "3600"], "broker");
        v.insert(1, "open".into());
        for m in members {
            v.extend(["--member".to_string(), agent(m)]);
        }
        let out = run(v, None);
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
        assert_eq!(json(&out)["opener"], agent("broker"));
    }
    let shown = writ(&["task", "show", "--key", &key, "--state", &state, "--id", "run-42"], None);
    assert_eq!(json(&shown)["members"], serde_json::json!([agent("payroll")]));
    // `writ authorize` on the same state reads the task record: the payroll agent may read
    // run-42's records, not the browser (no member) nor anyone in run-43 (never opened).
    for (who, task, allowed) in
        [("payroll", "run-42", true), ("browser", "run-42", false), ("payroll", "run-43", false)]
    {
        let resource = format!(r#"PayrollRecord::"{task}/emp-7""#);
        let principal = agent(who);
        let out = writ(
            &[
                "authorize",
                "--state",
                &state,
                "--principal",
                &principal,
                "--action",
                "read",
                "--resource",
                &resource,
                "--task",
                task,
            ],
            None,
        );
        assert_eq!(
            out.status.code(),
            Some(if allowed { 0 } else { 3 }),
            "{who} {task}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    assert_eq!(
        writ(&["task", "show", "--key", &key, "--state", &state, "--id", "run-99"], None).status.code(),
        Some(1)
    );
    for (task, who, reason) in [("run-99", "payroll", "writ:task-not-open"), ("run-42", "browser", "writ:not-a-member")]
    {
        let out = run(
            [
                id(&["issue", "--task", task, "--ttl", "60", "--audience", "payroll-api", "--scope"], who),
                vec![format!("read {record}")],
            ]
            .concat(),
            None,
        );
        assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stdout));
        let message = json(&out)["error"]["message"].as_str().unwrap_or_default().to_string();
        assert!(message.contains(reason), "{message}");
    }

    // Issue.
    let scope = format!("read {record}");
    let out = run(
        [
            id(&["issue", "--task", "run-42", "--ttl", "600", "--audience", "payroll-api", "--scope"], "payroll"),
            vec![scope.clone()],
        ]
        .concat(),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let grant = json(&out);
    let token = grant["token"].as_str().unwrap().to_string();
    assert!(grant["expires_at"].as_u64().unwrap() <= now() + 600);
    assert!(Path::new(&key).exists());

    // Present (token from stdin): allowed for the holder, denied outside the scope (exit 3),
    // an error for anyone else (exit 1).
    let present = |who: &str, resource: &str| {
        run(
            [
                id(&["present", "--audience", "payroll-api", "--action", "read", "--resource", resource], who),
                vec!["-".into()],
            ]
            .concat(),
            Some(&token),
        )
    };
    let out = present("payroll", record);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(json(&out)["reasons"][0], "payroll-read-in-task");
    assert_eq!(present("payroll", r#"PayrollRecord::"run-43/emp-7""#).status.code(), Some(3));
    let stolen = present("browser", record);
    assert_eq!(stolen.status.code(), Some(1));
    assert_eq!(json(&stolen)["error"]["kind"], "untrusted");
    // Stolen with the victim's public certificate: without the victim's private key the
    // presenter cannot prove it holds it (the browser's key against the payroll certificate).
    let mut with_victims_cert =
        id(&["present", "--audience", "payroll-api", "--action", "read", "--resource", record], "payroll");
    let k = with_victims_cert.iter().position(|a| a == "--chain-key").unwrap();
    with_victims_cert[k + 1] = format!("{d}/browser.key");
    with_victims_cert.push("-".into());
    let out = run(with_victims_cert, Some(&token));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(json(&out)["error"]["kind"], "untrusted");
    assert!(json(&out)["error"]["message"].as_str().unwrap().contains("private key"));
    // No key at all: a usage error (exit 2), nothing decided.
    let mut keyless =
        id(&["present", "--audience", "payroll-api", "--action", "read", "--resource", record], "payroll");
    let k = keyless.iter().position(|a| a == "--chain-key").unwrap();
    keyless.drain(k..k + 2);
    keyless.push("-".into());
    assert_eq!(run(keyless, Some(&token)).status.code(), Some(2));

    // Denied issuance: exit 3, naming the refused intent.
    let out = run(
        [
            id(&["issue", "--task", "run-42", "--ttl", "60", "--audience", "payroll-api", "--scope"], "payroll"),
            vec![r#"read PayrollRecord::"run-43/emp-7""#.into()],
        ]
        .concat(),
        None,
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(json(&out)["error"]["message"].as_str().unwrap().contains("denied"));

    // The broker delegates a narrower credential to the browser agent.
    let sales = r#"Dataset::"sales-summary""#;
    let out = run(
        [
            id(&["issue", "--task", "pipeline-1", "--ttl", "600", "--audience", "bi", "--scope"], "broker"),
            vec![format!("read {sales}"), "--scope".into(), format!("send {sales}")],
        ]
        .concat(),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let parent = json(&out)["token"].as_str().unwrap().to_string();
    let out = run(
        [
            id(&["delegate", "--to-chain", &chain("browser"), "--ttl", "300", "--scope"], "broker"),
            vec![format!("read {sales}"), parent.clone()],
        ]
        .concat(),
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let child = json(&out)["token"].as_str().unwrap().to_string();
    let use_child = || {
        run(
            [
                id(&["present", "--audience", "bi", "--action", "read", "--resource", sales], "browser"),
                vec![child.clone()],
            ]
            .concat(),
            None,
        )
    };
    assert_eq!(use_child().status.code(), Some(0));
    // Widening is refused (exit 3).
    let out = run(
        [
            id(&["delegate", "--to-chain", &chain("browser"), "--ttl", "60", "--scope"], "broker"),
            vec![format!("read {record}"), parent.clone()],
        ]
        .concat(),
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stdout));

    // PyJWT verifies the credential with `writ jwks --key`.
    if let Some(claims) = pyjwt_claims(&dir, &key, &token, "payroll-api") {
        assert_eq!(claims["sub"], "spiffe://acme.example/agent/payroll");
        assert_eq!(claims["cnf"]["x5t#S256"].as_str().map(str::len), Some(43));
    }

    // End the pipeline in one invocation; a later one refuses both of its credentials.
    let out = writ(&["revoke", "--key", &key, "--state", &state, "--task", "pipeline-1"], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["revoked"], 2);
    let out = use_child();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["kind"], "revoked");
    // Cut the payroll agent off.
    let out =
        writ(&["revoke", "--key", &key, "--state", &state, "--agent", "spiffe://acme.example/agent/payroll"], None);
    assert_eq!(json(&out)["revoked"], 1);
    assert_eq!(present("payroll", record).status.code(), Some(1));
    // Usage errors: exit 2.
    assert_eq!(writ(&["revoke", "--key", &key], None).status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_runs_on_the_defaults_and_on_user_files() {
    // Defaults: the shipped pack, generated requests, both engines and their ratio.
    let o = writ(&["bench", "--duration", "0.3"], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("12 policies") && out.contains("generated from the shipped pack"), "{out}");
    for engine in ["native", "component"] {
        assert!(out.lines().any(|l| l.starts_with(engine)), "{out}");
    }
    assert!(out.contains("component/native p50:"), "{out}");
    // User files: a policy, and requests in both shapes (the same intent twice).
    let dir = tempdir("bench");
    let policy = dir.join("p.cedar");
    std::fs::write(
        &policy,
        r#"@id("own-task") permit(principal, action == Action::"read", resource) when { context.task_id == "t1" };"#,
    )
    .unwrap();
    let requests = dir.join("r.jsonl");
    std::fs::write(
        &requests,
        concat!(
            r#"{"principal":"spiffe://a.org/x","action":"read","resource":"Doc::\"d\"","task":"t1"}"#,
            "\n\n",
            r#"{"subject":{"type":"Agent","id":"spiffe://a.org/x"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d"},"context":{"task_id":"t2"}}"#,
            "\n"
        ),
    )
    .unwrap();
    let o = writ(
        &[
            "bench",
            "--policies",
            policy.to_str().unwrap(),
            "--requests",
            requests.to_str().unwrap(),
            "--duration",
            "0.2",
            "--json",
            "--threads",
            "2",
            "--memo",
        ],
        None,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["policies"].as_u64(), v["requests"].as_u64(), v["memo"].as_bool()), (Some(1), Some(2), Some(true)));
    for e in v["engines"].as_array().unwrap() {
        let (calls, allow, deny) =
            (e["calls"].as_u64().unwrap(), e["allow"].as_u64().unwrap(), e["deny"].as_u64().unwrap());
        assert!(calls > 10 && allow + deny == calls, "{e}");
        // Alternating requests: one allowed (task t1), one denied (task t2 from the context).
        assert!(allow > 0 && deny > 0, "{e}");
        assert!(e["p50_us"].as_f64().unwrap() <= e["p99_us"].as_f64().unwrap());
    }
    assert!(v["component_native_p50"].as_f64().unwrap() > 0.0);
    // Only the component.
    let o = writ(&["bench", "--decider", "component", "--duration", "0.1", "--json"], None);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["engines"].as_array().map(Vec::len), Some(1));
    assert!(v["component_native_p50"].is_null());
    // A bad line is named; policies that do not load are refused before any run.
    std::fs::write(&requests, "{\"principal\":\"p\",\"action\":\"a\",\"resource\":\"R::\\\"r\\\"\"}\n{\"subject\":{\"type\":\"User\",\"id\":\"u\"}}\n").unwrap();
    let o = writ(&["bench", "--requests", requests.to_str().unwrap(), "--duration", "0.1"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8(o.stderr).unwrap().contains("r.jsonl` line 2: `subject.type` is `User`"));
    std::fs::write(&policy, "permit(").unwrap();
    let o = writ(&["bench", "--policies", policy.to_str().unwrap(), "--duration", "0.1"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8(o.stderr).unwrap().contains("the policies do not load"));
}

/// Starts `writ serve` on a free loopback port with `args`; returns the child (its stdout
/// consumed up to the first line, its stderr piped) and its plain HTTP address.
fn serve(args: &[&str]) -> (std::process::Child, String) {
    let (child, addr, _) = serve_listing(args);
    (child, addr)
}

/// [`serve`], also returning the mTLS address when `args` ask for one.
fn serve_listing(args: &[&str]) -> (std::process::Child, String, Option<String>) {
    use std::io::BufRead as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "1", "--audit", "off"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let listening = line.trim().strip_prefix("writ serve: listening on http://").unwrap_or_else(|| panic!("{line}"));
    let (http, https) = match listening.split_once(" and https://") {
        Some((http, https)) => (http, Some(https.trim_end_matches(" (mTLS)").to_string())),
        None => (listening, None),
    };
    (child, http.to_string(), https)
}

#[test]
fn serve_answers_reloads_on_sighup_and_drains_on_sigterm() {
    let (child, addr) = serve(&["--state", "memory"]);
    let client = reqwest::blocking::Client::new();
    assert_eq!(client.get(format!("http://{addr}/healthz")).send().unwrap().status(), 200);
    let body = serde_json::json!({ "subject": { "type": "User", "id": "u" }, "action": { "name": "read" }, "resource": { "type": "Doc", "id": "d" } });
    let v: serde_json::Value =
        client.post(format!("http://{addr}/access/v1/evaluation")).json(&body).send().unwrap().json().unwrap();
    assert_eq!(v["decision"], false, "the shipped pack permits nothing for a User");
    let kill =
        |sig: &str| assert!(Command::new("kill").args([sig, &child.id().to_string()]).status().unwrap().success());
    kill("-HUP");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        client.get(format!("http://{addr}/readyz")).send().unwrap().status(),
        200,
        "still serving after a reload"
    );
    kill("-TERM");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("reloaded policies and bundles") && log.contains("shutting down"), "{log}");
}

#[test]
fn state_directory_is_shared_by_concurrent_invocations_and_a_running_server() {
    let dir = tempdir("state-shared");
    let d = dir.to_str().unwrap();
    let (key, state) = (format!("{d}/issuer.pem"), format!("{d}/state"));
    let (mut server, addr) = serve(&["--state", &state, "--issuer-key", &key]);

    // 50 revocations (agents cut off) at once, each its own process on one directory: every
    // one acknowledged.
    let agent = |i: usize| format!("spiffe://acme.example/agent/a-{i}");
    let children: Vec<_> = (0..50)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_writ"))
                .args(["revoke", "--key", &key, "--state", &state, "--agent", &agent(i)])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // ...and every one is held, once.
    let out = writ(&["state", "check", "--state", &state], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = json(&out);
    assert_eq!(summary["revocations"], 50, "{summary}");
    assert_eq!(summary["last_seq"], 50, "{summary}");

    // The running server sees them without a restart: its revocation feed (what proxy-wasm
    // filters poll) lists all 50, in order.
    let feed: serde_json::Value =
        reqwest::blocking::get(format!("http://{addr}/ledger/revocations?after=0")).unwrap().json().unwrap();
    let mut agents: Vec<String> =
        feed["revocations"].as_array().unwrap().iter().map(|r| r["spiffe_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(feed["next"], 50, "{feed}");
    agents.sort();
    let mut expected: Vec<String> = (0..50).map(agent).collect();
    expected.sort();
    assert_eq!(agents, expected);
    // One more, made after the server started reading: seen on the next poll.
    let late = "spiffe://acme.example/agent/late";
    assert_eq!(writ(&["revoke", "--key", &key, "--state", &state, "--agent", late], None).status.code(), Some(0));
    let feed: serde_json::Value =
        reqwest::blocking::get(format!("http://{addr}/ledger/revocations?after=50")).unwrap().json().unwrap();
    assert_eq!(feed["revocations"][0]["spiffe_id"], late, "{feed}");
    server.kill().unwrap();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fake_clock_never_erases_real_revocations() {
    let dir = tempdir("state-at");
    openssl_agents(&dir, &["payroll", "broker"]);
    let d = dir.to_str().unwrap();
    let (key, state) = (format!("{d}/issuer.pem"), format!("{d}/state"));
    let caller = |cmd: &str| -> Vec<String> {
        [cmd, "--key", &key, "--state", &state, "--bundle", &format!("acme.example={d}/root.pem")]
            .iter()
            .map(|s| s.to_string())
            .chain(["--chain".to_string(), format!("{d}/payroll.pem")])
            .chain(["--chain-key".to_string(), format!("{d}/payroll.key")])
            .collect()
    };
    let run = |v: Vec<String>, stdin: Option<&str>| writ(&v.iter().map(String::as_str).collect::<Vec<_>>(), stdin);
    let record = r#"PayrollRecord::"run-42/emp-7""#;
    let bundle = format!("acme.example={d}/root.pem");
    let open = [
        "task",
        "open",
        "--key",
        &key,
        "--state",
        &state,
        "--bundle",
        &bundle,
        "--chain",
        &format!("{d}/broker.pem"),
        "--chain-key",
        &format!("{d}/broker.key"),
        "--id",
        "run-42",
        "--member",
        "spiffe://acme.example/agent/payroll",
        "--ttl",
        "3600",
    ];
    assert_eq!(writ(&open, None).status.code(), Some(0));
    let mut issue = caller("issue");
    issue.extend(["--task", "run-42", "--ttl", "600", "--audience", "payroll-api", "--scope"].map(String::from));
    issue.push(format!("read {record}"));
    let out = run(issue, None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let token = json(&out)["token"].as_str().unwrap().to_string();
    let present = |at: Option<u64>| {
        let mut v = caller("present");
        v.extend(["--audience", "payroll-api", "--action", "read", "--resource", record, "-"].map(String::from));
        if let Some(t) = at {
            v.extend(["--at".to_string(), t.to_string()]);
        }
        run(v, Some(&token))
    };
    assert_eq!(present(None).status.code(), Some(0));
    assert_eq!(writ(&["revoke", "--key", &key, "--state", &state, "--task", "run-42"], None).status.code(), Some(0));
    // Acting ten years on (the credential and the revocation both long past by that clock)...
    let later = present(Some(now() + 10 * 365 * 86_400));
    assert_eq!(later.status.code(), Some(1));
    // ...forgets nothing: now, the credential is still refused as revoked.
    let out = present(None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["kind"], "revoked", "{}", String::from_utf8_lossy(&out.stdout));
    let summary = json(&writ(&["state", "check", "--state", &state], None));
    assert_eq!(summary["revocations"], 2, "the opening and the end: {summary}");
    assert_eq!(summary["grants"], 1, "{summary}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn state_that_cannot_be_written_or_read_fails_the_command() {
    let dir = tempdir("state-bad");
    let d = dir.to_str().unwrap();
    let key = format!("{d}/issuer.pem");
    // A state "directory" that is a file: nothing can be stored, and the revoke says so.
    let file = format!("{d}/not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = writ(&["revoke", "--key", &key, "--state", &file, "--task", "t"], None);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(json(&out)["error"]["kind"], "unavailable");
    // A damaged database: a typed error, not an empty state.
    let damaged = format!("{d}/damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    std::fs::write(format!("{damaged}/writ.db"), vec![0x5a; 8192]).unwrap();
    for args in [
        vec!["state", "check", "--state", damaged.as_str()],
        vec!["revoke", "--key", key.as_str(), "--state", damaged.as_str(), "--task", "t"],
    ] {
        let out = writ(&args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", String::from_utf8_lossy(&out.stdout));
        let e = json(&out);
        assert_eq!(e["error"]["kind"], "unavailable", "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains("writ.db"), "{e}");
    }
    // A location this build cannot use is a usage error; a NATS that does not answer is
    // `unavailable`.
    for bad in ["redis://127.0.0.1:6379", "nats://127.0.0.1:4222/a.b"] {
        assert_eq!(writ(&["state", "check", "--state", bad], None).status.code(), Some(2), "{bad}");
    }
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = writ(&["state", "check", "--state", &format!("nats://127.0.0.1:{unused}")], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["kind"], "unavailable", "{}", String::from_utf8_lossy(&out.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server CA and a certificate for 127.0.0.1 it signed (`server-ca.pem`, `server.pem`,
/// `server.key`), made with openssl.
fn openssl_server_cert(dir: &Path) {
    std::fs::write(
        dir.join("server.cnf"),
        "[req]\ndistinguished_name=dn\n[dn]\n[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n\
         [leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server-ca.key"]);
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "server-ca.key",
            "-subj",
            "/CN=server ca",
            "-days",
            "2",
            "-config",
            "server.cnf",
            "-extensions",
            "ca",
            "-out",
            "server-ca.pem",
        ],
    );
    openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "server.key"]);
    openssl(
        dir,
        &["req", "-new", "-key", "server.key", "-subj", "/CN=127.0.0.1", "-config", "server.cnf", "-out", "server.csr"],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "server-ca.pem",
            "-CAkey",
            "server-ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "server.cnf",
            "-extensions",
            "leaf",
            "-out",
            "server.pem",
        ],
    );
}

#[test]
fn replicas_and_the_cli_on_one_nats_and_nothing_acknowledged_is_lost_to_kills() {
    use std::time::{Duration, Instant};
    let mut nats = writ_tests::nats_server::NatsServer::start();
    let dir = tempdir("nats");
    openssl_agents(&dir, &["broker", "oncall"]);
    openssl_server_cert(&dir);
    let d = dir.to_str().unwrap().to_string();
    let state = format!("{}/cli", nats.url());
    let bundle = format!("acme.example={d}/root.pem");
    let replica = |key: &str| {
        let (key, cert, tls_key) = (format!("{d}/{key}"), format!("{d}/server.pem"), format!("{d}/server.key"));
        let args = [
            "--state",
            &state,
            "--state-max-lag",
            "1000",
            "--issuer-key",
            &key,
            "--bundle",
            &bundle,
            "--tls-listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &tls_key,
        ];
        let (child, http, https) = serve_listing(&args);
        (child, http, https.unwrap())
    };
    let (mut a, _, a_tls) = replica("a.pem");
    let (mut b, b_http, b_tls) = replica("b.pem");
    let client_as = |agent: &str| {
        let identity = std::fs::read_to_string(dir.join(format!("{agent}.pem"))).unwrap()
            + &std::fs::read_to_string(dir.join(format!("{agent}.key"))).unwrap();
        reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(dir.join("server-ca.pem")).unwrap()).unwrap(),
            )
            .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    };
    let (broker, oncall) = (client_as("broker"), client_as("oncall"));
    // The broker opens its task on replica A (the registry is on NATS too).
    let opened = broker
        .post(format!("https://{a_tls}/task"))
        .json(&serde_json::json!({ "id": "pipeline-1", "members": ["spiffe://acme.example/agent/broker"], "purpose": "report", "ttl": 3600 }))
        .send()
        .unwrap();
    assert_eq!(opened.status(), 201, "{}", opened.text().unwrap_or_default());

    // Issued by replica A; presented by the CLI (a third process on the same NATS), which
    // verifies it with A's published key; ended on replica B; refused by the CLI.
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("scope", "read"),
        ("resource", r#"Dataset::"sales-summary""#),
        ("task", "pipeline-1"),
        ("audience", "bi"),
    ];
    let res = broker.post(format!("https://{a_tls}/token")).form(&form).send().unwrap();
    assert_eq!(res.status(), 200);
    let token = res.json::<serde_json::Value>().unwrap()["access_token"].as_str().unwrap().to_string();
    let present = || {
        let args = [
            "present",
            "--state",
            &state,
            "--key",
            &format!("{d}/cli.pem"),
            "--bundle",
            &bundle,
            "--chain",
            &format!("{d}/broker.pem"),
            "--chain-key",
            &format!("{d}/broker.key"),
            "--audience",
            "bi",
            "--action",
            "read",
            "--resource",
            r#"Dataset::"sales-summary""#,
            "-",
        ];
        writ(&args, Some(&token))
    };
    let out = present();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let ended: serde_json::Value =
        broker.post(format!("https://{b_tls}/task/pipeline-1/end")).send().unwrap().json().unwrap();
    assert_eq!(ended["revoked"], 1, "B finds the grant A issued: {ended}");
    let out = present();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["error"]["kind"], "revoked", "{}", String::from_utf8_lossy(&out.stdout));

    // Load on A: revocations (on-call cutting agents off) one after another; A is killed
    // (SIGKILL) midway, once it has acknowledged a few. Every one A acknowledged is enforced
    // by B afterwards.
    let load = |replica: &str, prefix: &str, n: usize, pause: Duration| {
        let (oncall, replica, prefix) = (oncall.clone(), replica.to_string(), prefix.to_string());
        let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = progress.clone();
        let worker = std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            for i in 0..n {
                let agent = format!("spiffe://acme.example/agent/{prefix}-{i}");
                if let Ok(r) = oncall.post(format!("https://{replica}/agent/{agent}/cut-off")).send()
                    && r.status() == 200
                {
                    acknowledged.push(agent);
                    seen.store(acknowledged.len(), std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(pause);
            }
            acknowledged
        });
        (worker, progress)
    };
    let until_acknowledged = |progress: &std::sync::atomic::AtomicUsize, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while progress.load(std::sync::atomic::Ordering::Relaxed) < n {
            assert!(Instant::now() < deadline, "the load made no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let (on_a, progress) = load(&a_tls, "a", 100, Duration::from_millis(10));
    until_acknowledged(&progress, 5);
    a.kill().unwrap();
    let _ = a.wait();
    let acknowledged_by_a = on_a.join().unwrap();
    assert!((5..100).contains(&acknowledged_by_a.len()), "killed mid-load: {}", acknowledged_by_a.len());

    // Load on B while NATS is killed and restarted (its file store kept): revocations during
    // the outage are refused (not acknowledged), every acknowledged one is kept.
    // (A publish waits for NATS up to 2 s: the outage is longer, so some are refused.)
    let (on_b, progress) = load(&b_tls, "b", 120, Duration::from_millis(20));
    until_acknowledged(&progress, 5);
    nats.kill();
    std::thread::sleep(Duration::from_millis(3000));
    nats.restart();
    let acknowledged_by_b = on_b.join().unwrap();
    assert!(acknowledged_by_b.len() < 120, "some refused during the outage");
    assert!(acknowledged_by_b.len() > 5, "acknowledged before and after it: {}", acknowledged_by_b.len());

    let feed = || -> Vec<String> {
        let v: serde_json::Value = reqwest::blocking::get(format!("http://{b_http}/ledger/revocations?after=0"))
            .and_then(|r| r.json())
            .unwrap_or_default();
        v["revocations"]
            .as_array()
            .map(|r| r.iter().filter_map(|e| e["spiffe_id"].as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut held = feed();
    while !acknowledged_by_a.iter().chain(&acknowledged_by_b).all(|t| held.contains(t)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        held = feed();
    }
    for task in acknowledged_by_a.iter().chain(&acknowledged_by_b) {
        assert!(held.contains(task), "acknowledged revocation of `{task}` lost: {held:?}");
    }
    let check = writ(&["state", "check", "--state", &state], None);
    assert_eq!(check.status.code(), Some(0), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(
        json(&check)["revocations"].as_u64().unwrap() >= (1 + acknowledged_by_a.len() + acknowledged_by_b.len()) as u64
    );
    b.kill().unwrap();
    let _ = b.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cut_off_agent_is_denied_by_writ_authorize_until_restored() {
    let dir = tempdir("cut-off");
    let d = dir.to_str().unwrap();
    let (key, state) = (format!("{d}/issuer.pem"), format!("{d}/state"));
    let agent = "spiffe://acme.example/agent/browser";
    let authorize = || {
        let args = [
            "authorize",
            "--state",
            &state,
            "--principal",
            agent,
            "--action",
            "read",
            "--resource",
            r#"Dataset::"sales-summary""#,
        ];
        writ(&args, None)
    };
    assert_eq!(authorize().status.code(), Some(0));
    let out = writ(&["revoke", "--key", &key, "--state", &state, "--agent", agent], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    // Another process, the same state: denied before any policy.
    let out = authorize();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(json(&out)["reasons"], serde_json::json!(["writ:cut-off"]));
    let out = writ(&["restore", "--key", &key, "--state", &state, "--agent", agent], None);
    assert_eq!(json(&out), serde_json::json!({ "agent": agent, "restored": true }));
    assert_eq!(authorize().status.code(), Some(0));
    let out = writ(&["restore", "--key", &key, "--state", &state, "--agent", agent], None);
    assert_eq!(json(&out)["restored"], false);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mcp_schema_types_saved_tools_writes_a_starter_that_validates_and_refuses_bad_lists() {
    let dir = tempdir("mcp-schema");
    // A saved `tools/list` answer, as a JSON-RPC answer.
    let tools = serde_json::json!({ "jsonrpc": "2.0", "id": 2, "result": { "tools": [
        { "name": "pay", "description": "Pay someone.", "inputSchema": { "type": "object",
          "properties": { "amount": { "type": "integer" }, "to": { "type": "string" },
                          "currency": { "type": "string", "enum": ["EUR", "USD"] } },
          "required": ["amount", "to"] } },
        { "name": "get-weather", "inputSchema": { "type": "object", "properties": { "city": { "type": "string" } } } }
    ]}});
    std::fs::write(dir.join("tools.json"), tools.to_string()).unwrap();
    let tools_path = dir.join("tools.json");
    let out = writ(
        &[
            "mcp",
            "schema",
            "--tools",
            tools_path.to_str().unwrap(),
            "--name",
            "payments",
            "--out",
            dir.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("2 tool actions for upstream `payments` (2 new or changed)"), "{said}");
    let schema = std::fs::read_to_string(dir.join("payments.cedarschema")).unwrap();
    assert!(schema.contains("action \"get-weather\"") && schema.contains("amount: Long"), "{schema}");
    assert!(schema.contains("currency?: String"), "{schema}");
    // The starter policy loads against the schema.
    let starter = dir.join("payments.cedar");
    let schema_path = dir.join("payments.cedarschema");
    let check = writ(&["policy", "check", starter.to_str().unwrap(), "--schema", schema_path.to_str().unwrap()], None);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    // A policy reading an argument the tool does not have does not.
    std::fs::write(
        dir.join("typo.cedar"),
        "permit(principal, action == Action::\"pay\", resource) when { context.input.amuont <= 5 };",
    )
    .unwrap();
    let typo = dir.join("typo.cedar");
    let check = writ(&["policy", "check", typo.to_str().unwrap(), "--schema", schema_path.to_str().unwrap()], None);
    assert!(!check.status.success());
    // Printed, without --out: the schema, then the starter.
    let out = writ(&["mcp", "schema", "--tools", tools_path.to_str().unwrap(), "--name", "payments"], None);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("@mcp_upstream(\"payments\")") && printed.contains("principal in Role::\"payments/pay\""));
    // A tool the generator cannot type is left out, with a warning; the others are typed.
    let odd = serde_json::json!({ "tools": [
        { "name": "odd", "inputSchema": { "type": "object", "properties": { "a-b": { "type": "string" } } } },
        { "name": "fine", "inputSchema": { "type": "object" } }
    ]});
    std::fs::write(dir.join("odd.json"), odd.to_string()).unwrap();
    let odd_path = dir.join("odd.json");
    let out = writ(&["mcp", "schema", "--tools", odd_path.to_str().unwrap(), "--name", "payments"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: tool `odd` left out"));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("action \"fine\"") && !printed.contains("action \"odd\""), "{printed}");
    // Bad lists and names: errors, exit 1; usage: exit 2.
    std::fs::write(dir.join("bad.json"), "{\"tools\": {\"name\": \"x\"}}").unwrap();
    let bad = dir.join("bad.json");
    let out = writ(&["mcp", "schema", "--tools", bad.to_str().unwrap(), "--name", "payments"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no `tools` array"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = writ(&["mcp", "schema", "--tools", tools_path.to_str().unwrap(), "--name", "pay ments"], None);
    assert_eq!(out.status.code(), Some(1));
    let out = writ(&["mcp", "schema", "--name", "payments"], None);
    assert_eq!(out.status.code(), Some(2));
    let out =
        writ(&["mcp", "schema", "--upstream", "http://127.0.0.1:9/mcp", "--name", "payments", "--timeout", "2"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot list the tools"));
}
