//! What the host fetches for the component, against a real local HTTPS server: an OIDC issuer's
//! discovery document and keys (refreshed on an unknown `kid`, at most once per
//! `min_refresh_secs`), and SPIFFE bundles from bundle endpoints (`https_web`, `https_spiffe`)
//! that rotate without a restart. Every hostile server — a hang, garbage, an error status, an
//! oversized body, the wrong issuer, an untrusted certificate, an older bundle — leaves what was
//! in force, and never allows.

use crate::oidc::{jwk, k8s_claims, rs256, sign};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use writ_tests::NOW;
use writ_tests::https_server::{HttpsServer, Reply, loopback_web_pki};

const DISCOVERY: &str = "/.well-known/openid-configuration";
const KEYS: &str = "/openid/v1/jwks";

/// An issuer served at `server` (its `iss` is the server's URL), with its keys under `kids`.
struct Issuer {
    server: HttpsServer,
    dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("writ-fetched-{tag}-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Issuer {
    fn start() -> Issuer {
        let (ca, chain, key) = loopback_web_pki();
        let server = HttpsServer::start(chain, &key);
        let dir = tempdir::Dir::new("oidc");
        std::fs::write(dir.0.join("ca.pem"), ca).unwrap();
        let issuer = Issuer { server, dir };
        issuer.discovery(&issuer.iss());
        issuer.keys(&["k8s-1"]);
        issuer
    }

    fn iss(&self) -> String {
        self.server.url("")
    }

    fn discovery(&self, says_issuer: &str) {
        let doc = json!({ "issuer": says_issuer, "jwks_uri": self.server.url(KEYS),
            "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"] });
        self.server.set(DISCOVERY, Reply::Body(doc.to_string()));
    }

    fn keys(&self, kids: &[&str]) {
        let keys: Vec<Value> = kids.iter().map(|k| jwk(writ_tests::pki::rsa_key(), k)).collect();
        self.server.set(KEYS, Reply::Body(json!({ "keys": keys }).to_string()));
    }

    /// The configuration file: this issuer by discovery, plus a static one.
    fn config(&self, extra: Value) -> std::path::PathBuf {
        let mut issuer = json!({ "name": "k8s", "issuer": self.iss(), "audiences": ["writ"], "discovery": true,
            "ca_file": "ca.pem", "fetch_timeout_ms": 400, "min_refresh_secs": 30,
            "mapping": { "kind": "kubernetes", "trust_domain": "cluster.local" } });
        for (k, v) in extra.as_object().unwrap() {
            match v {
                Value::Null => drop(issuer.as_object_mut().unwrap().remove(k)),
                v => issuer[k] = v.clone(),
            }
        }
        let config = json!({ "issuers": [issuer,
            { "name": "github", "issuer": "https://token.actions.githubusercontent.com", "audiences": ["writ"],
              "jwks": { "keys": [jwk(writ_tests::pki::rsa_key2(), "gh-1")] },
              "mapping": { "kind": "github-actions", "trust_domain": "ci.acme.example" } }] });
        let path = self.dir.0.join("oidc.json");
        std::fs::write(&path, config.to_string()).unwrap();
        path
    }

    fn token(&self, kid: &str) -> String {
        let mut claims = k8s_claims();
        claims["iss"] = self.iss().into();
        sign(writ_tests::pki::rsa_key(), &rs256(kid), &claims)
    }
}

fn at_now() -> writ_host::Writ {
    let writ = writ_tests::attester::writ();
    writ.set_time(Some(NOW));
    writ
}

fn load(writ: &writ_host::Writ, path: &Path) -> writ_host::oidc::Loaded {
    let text = std::fs::read_to_string(path).unwrap();
    let resolved = writ_host::oidc::resolve(&text, path.parent().unwrap(), None).unwrap();
    writ.load_oidc(resolved).unwrap()
}

fn github_token() -> String {
    let claims = json!({ "iss": "https://token.actions.githubusercontent.com", "aud": "writ", "exp": NOW + 300,
        "sub": "repo:acme/app:ref:refs/heads/main", "repository": "acme/app", "ref": "refs/heads/main" });
    sign(writ_tests::pki::rsa_key2(), &rs256("gh-1"), &claims)
}

#[test]
fn discovered_keys_attest_tokens_and_follow_a_key_rotation() {
    let issuer = Issuer::start();
    let writ = at_now();
    let loaded = load(&writ, &issuer.config(json!({})));
    assert_eq!(loaded, writ_host::oidc::Loaded { issuers: 2, unfetched: vec![] });
    assert_eq!((issuer.server.hits(DISCOVERY), issuer.server.hits(KEYS)), (1, 1));
    let id = writ.attest_token(&issuer.token("k8s-1"), "writ").unwrap();
    assert_eq!(id.spiffe_id, "spiffe://cluster.local/ns/payroll/sa/payroll-agent");
    assert_eq!(id.proof, writ_host::Proof::Oidc);
    // A known kid fetches nothing.
    writ.attest_oidc(&issuer.token("k8s-1"), Some("k8s"), "writ").unwrap();
    assert_eq!(issuer.server.hits(KEYS), 1);

    // The issuer rotates its key: the first token signed with the new one makes the host fetch
    // the keys again, and it verifies.
    issuer.keys(&["k8s-2"]);
    let id = writ.attest_token(&issuer.token("k8s-2"), "writ").unwrap();
    assert_eq!(id.spiffe_id, "spiffe://cluster.local/ns/payroll/sa/payroll-agent");
    assert_eq!(issuer.server.hits(KEYS), 2);
    // The old key is gone with it.
    let old = writ.attest_token(&issuer.token("k8s-1"), "writ").unwrap_err();
    assert!(old.message().contains("`kid` `k8s-1` is not a key"), "{old}");
    // More unknown kids within `min_refresh_secs` fetch nothing more: a flood of made-up kids
    // cannot make the host hammer the issuer.
    for kid in ["made-up-1", "made-up-2", "made-up-3"] {
        let e = writ.attest_token(&issuer.token(kid), "writ").unwrap_err();
        assert_eq!(e.kind(), "untrusted", "{e}");
    }
    assert_eq!(issuer.server.hits(KEYS), 2);
    let status = writ.fetched_sources();
    assert_eq!(status.len(), 1);
    assert_eq!((status[0].kind, status[0].name.as_str(), status[0].fetches, status[0].failures), ("oidc", "k8s", 2, 0));
    assert!(status[0].age.is_some());
}

#[test]
fn a_jwks_uri_without_discovery_and_a_bearer_token_for_the_fetch() {
    let issuer = Issuer::start();
    std::fs::write(issuer.dir.0.join("sa-token"), "the-pods-own-token\n").unwrap();
    let writ = at_now();
    let extra = json!({ "discovery": null, "jwks_uri": issuer.server.url(KEYS), "token_file": "sa-token" });
    let path = issuer.config(extra);
    assert_eq!(load(&writ, &path).unfetched, Vec::<String>::new());
    assert_eq!((issuer.server.hits(DISCOVERY), issuer.server.hits(KEYS)), (0, 1));
    assert_eq!(issuer.server.last_authorization().as_deref(), Some("Bearer the-pods-own-token"));
    writ.attest_token(&issuer.token("k8s-1"), "writ").unwrap();
}

#[test]
fn a_discovery_document_for_another_issuer_is_refused() {
    let issuer = Issuer::start();
    issuer.discovery("https://evil.example");
    let writ = at_now();
    let loaded = load(&writ, &issuer.config(json!({})));
    assert_eq!(loaded.issuers, 2);
    assert_eq!(loaded.unfetched.len(), 1);
    assert!(loaded.unfetched[0].contains("`issuer` `https://evil.example` is not the configured"), "{loaded:?}");
    assert_eq!(issuer.server.hits(KEYS), 0, "the keys of a mismatched document are never fetched");
    let e = writ.attest_token(&issuer.token("k8s-1"), "writ").unwrap_err();
    assert_eq!(e.kind(), "untrusted", "{e}");
    // The static issuer works regardless.
    writ.attest_token(&github_token(), "writ").unwrap();
}

#[test]
fn hostile_key_servers_are_typed_errors_and_keep_the_last_good_keys() {
    let issuer = Issuer::start();
    let writ = at_now();
    // min_refresh 1 s: each case below may fetch again after a second.
    let path = issuer.config(json!({ "min_refresh_secs": 1, "refresh_secs": 3600 }));
    assert!(load(&writ, &path).unfetched.is_empty());
    let good = issuer.token("k8s-1");
    writ.attest_token(&good, "writ").unwrap();
    let weak = {
        let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap();
        json!({ "keys": [jwk(&key, "weak")] }).to_string()
    };
    let cases = [
        (Reply::Body("<html>not json</html>".into()), "not JSON"),
        (Reply::Body(json!({ "nokeys": [] }).to_string()), "no `keys` list"),
        (Reply::Status(500), "status 500"),
        (Reply::Body("x".repeat(2 * 1024 * 1024)), "over 1048576 bytes"),
        (Reply::Body(weak), "under 2048 bits"),
        (Reply::Hang, "timed out"),
    ];
    let mut failures = 0;
    for (n, (reply, says)) in cases.into_iter().enumerate() {
        issuer.server.set(KEYS, reply);
        std::thread::sleep(Duration::from_millis(1100));
        let e = writ.attest_token(&issuer.token(&format!("unknown-{n}")), "writ").unwrap_err();
        assert_eq!(e.kind(), "untrusted", "{says}: {e}");
        let status = &writ.fetched_sources()[0];
        let last = status.last_error.clone().unwrap_or_default();
        assert!(last.contains(says), "case {n}: `{says}` not in `{last}`");
        assert!(status.failures > failures, "case {n}: counted");
        failures = status.failures;
        // The keys fetched before stay in force.
        writ.attest_token(&good, "writ").unwrap();
    }
}

#[test]
fn a_hanging_issuer_holds_only_the_request_that_asked_and_never_others() {
    let issuer = Issuer::start();
    let writ = at_now();
    let path = issuer.config(json!({ "fetch_timeout_ms": 3000 }));
    assert!(load(&writ, &path).unfetched.is_empty());
    issuer.server.set(KEYS, Reply::Hang);
    let asking = {
        let (writ, token) = (writ.clone(), issuer.token("rotated"));
        std::thread::spawn(move || writ.attest_token(&token, "writ"))
    };
    assert!(writ_tests::eventually(Duration::from_secs(5), || issuer.server.hits(KEYS) == 2).is_some());
    // While that fetch hangs: tokens of known keys, of the static issuer, and other unknown
    // kids (which do not wait: the one fetch is already asked for) are all answered.
    writ.attest_token(&issuer.token("k8s-1"), "writ").unwrap();
    writ.attest_token(&github_token(), "writ").unwrap();
    assert!(writ.attest_token(&issuer.token("other"), "writ").is_err());
    assert!(!asking.is_finished(), "the other requests were answered while the fetch still hung");
    let asked = asking.join().unwrap().unwrap_err();
    assert!(asked.message().contains("`kid` `rotated` is not a key"), "{asked}");
    assert!(writ.fetched_sources()[0].last_error.as_deref().unwrap_or_default().contains("timed out"));
}

#[test]
fn an_untrusted_server_certificate_and_bad_settings_are_refused() {
    let issuer = Issuer::start();
    // A CA file of another CA: the server is not the issuer's.
    let (other_ca, _, _) = loopback_web_pki();
    std::fs::write(issuer.dir.0.join("ca.pem"), other_ca).unwrap();
    let writ = at_now();
    let loaded = load(&writ, &issuer.config(json!({})));
    assert!(loaded.unfetched[0].contains("certificate"), "{loaded:?}");
    let dir = issuer.dir.0.as_path();
    for (bad, says) in [
        (json!({ "jwks_uri": "http://plain.example/keys", "discovery": false }), "not an https:// URL"),
        (json!({ "jwks_uri": "https://a.example/keys" }), "not both"),
        (json!({ "jwks": { "keys": [] } }), "one way"),
        (json!({ "refresh_secs": 10, "min_refresh_secs": 20 }), "over `refresh_secs`"),
        (json!({ "fetch_timeout_ms": "soon" }), "positive integer"),
        (json!({ "discovery": false, "ca_file": "ca.pem" }), "only for keys fetched"),
    ] {
        let text = std::fs::read_to_string(issuer.config(bad)).unwrap();
        let e = writ_host::oidc::resolve(&text, dir, None).unwrap_err();
        assert!(e.message().contains(says), "`{says}` not in `{e}`");
    }
    let e = writ_host::oidc::resolve_issuers(&std::fs::read_to_string(issuer.config(json!({}))).unwrap(), dir, None)
        .unwrap_err();
    assert!(e.message().contains("load it with"), "{e}");
}

// ---- SPIFFE bundle endpoints ----

use writ_tests::pki::{KeyAlg, Pki};

/// A SPIFFE bundle of `pki`'s root, with a refresh hint and sequence number.
fn bundle(pkis: &[&Pki], hint: u64, sequence: u64) -> String {
    let keys: Vec<Value> = pkis
        .iter()
        .map(|p| {
            use base64::Engine as _;
            json!({ "kty": "EC", "use": "x509-svid", "x5c": [base64::engine::general_purpose::STANDARD.encode(&p.root.der)] })
        })
        .collect();
    json!({ "keys": keys, "spiffe_refresh_hint": hint, "spiffe_sequence": sequence }).to_string()
}

fn endpoint(url: String, profile: writ_host::remote::Profile, ca: Option<&Path>) -> writ_host::remote::BundleEndpoint {
    writ_host::remote::BundleEndpoint {
        trust_domain: "partner.example".into(),
        url,
        profile,
        fetching: writ_host::remote::Fetching {
            refresh: Duration::from_secs(3600),
            min_refresh: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            ca_file: ca.map(Path::to_path_buf),
            token_file: None,
        },
    }
}

fn attests(writ: &writ_host::Writ, pki: &Pki) -> bool {
    writ.attest_x509(&pki.chain3("/agent/x", KeyAlg::P256)).is_ok()
}

#[test]
fn a_bundle_from_an_https_web_endpoint_rotates_without_a_restart() {
    let (ca, chain, key) = loopback_web_pki();
    let server = HttpsServer::start(chain, &key);
    let dir = tempdir::Dir::new("web");
    let ca_file = dir.0.join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let (old, new) = (Pki::new("partner.example", KeyAlg::P256), Pki::new("partner.example", KeyAlg::P256));
    server.set("/bundle", Reply::Body(bundle(&[&old], 1, 1)));
    let writ = at_now();
    let unfetched = writ
        .set_bundle_endpoints(vec![endpoint(
            server.url("/bundle"),
            writ_host::remote::Profile::HttpsWeb,
            Some(&ca_file),
        )])
        .unwrap();
    assert!(unfetched.is_empty(), "{unfetched:?}");
    assert!(attests(&writ, &old) && !attests(&writ, &new));

    // The trust domain rotates its CA; the next refresh (the hint: 1 s) installs it.
    server.set("/bundle", Reply::Body(bundle(&[&new], 1, 2)));
    assert!(writ_tests::eventually(Duration::from_secs(10), || attests(&writ, &new)).is_some());
    assert!(!attests(&writ, &old));

    // Garbage, an error, and an older bundle replayed: each refused, the last good kept.
    let fails = writ.fetched_sources()[0].failures;
    for (n, reply) in
        [Reply::Body("garbage".into()), Reply::Status(503), Reply::Body(bundle(&[&old], 1, 1))].into_iter().enumerate()
    {
        server.set("/bundle", reply);
        let failed = || writ.fetched_sources()[0].failures > fails + n as u64;
        assert!(writ_tests::eventually(Duration::from_secs(10), failed).is_some(), "case {n}");
        assert!(attests(&writ, &new) && !attests(&writ, &old), "case {n}");
    }
    let last = writ.fetched_sources()[0].last_error.clone().unwrap_or_default();
    assert!(last.contains("`spiffe_sequence` 1 is older"), "{last}");
    // A file bundle set again (a reload) does not undo a fresher fetched one.
    writ.set_bundle("partner.example", &old.bundle_pem()).unwrap();
    server.set("/bundle", Reply::Body(bundle(&[&new], 3600, 3)));
    let again = writ
        .set_bundle_endpoints(vec![endpoint(
            server.url("/bundle"),
            writ_host::remote::Profile::HttpsWeb,
            Some(&ca_file),
        )])
        .unwrap();
    assert!(again.is_empty());
    assert!(attests(&writ, &new) && !attests(&writ, &old));
}

#[test]
fn an_https_spiffe_endpoint_must_present_the_named_svid_under_the_bundle_in_force() {
    let td = Pki::new("partner.example", KeyAlg::P256);
    let next = Pki::new("partner.example", KeyAlg::P256);
    let (svid, key) = td.svid("/spire/server", KeyAlg::P256);
    let server = HttpsServer::start(svid, &key);
    // The bundle endpoint serves the old root and the next one (a CA rotation's overlap).
    server.set("/bundle", Reply::Body(bundle(&[&td, &next], 300, 7)));
    let spiffe = |id: &str| writ_host::remote::Profile::HttpsSpiffe { endpoint_spiffe_id: id.into() };

    // Bootstrapped with the trust domain's bundle out of band.
    let writ = at_now();
    writ.set_bundle("partner.example", &td.bundle_pem()).unwrap();
    assert!(!attests(&writ, &next));
    let unfetched = writ
        .set_bundle_endpoints(vec![endpoint(server.url("/bundle"), spiffe(&td.id("/spire/server")), None)])
        .unwrap();
    assert!(unfetched.is_empty(), "{unfetched:?}");
    assert!(attests(&writ, &next) && attests(&writ, &td));

    // The wrong SPIFFE ID expected: refused, nothing installed.
    let writ = at_now();
    writ.set_bundle("partner.example", &td.bundle_pem()).unwrap();
    let unfetched =
        writ.set_bundle_endpoints(vec![endpoint(server.url("/bundle"), spiffe(&td.id("/other")), None)]).unwrap();
    assert!(unfetched[0].contains("not `spiffe://partner.example/other`"), "{unfetched:?}");
    assert!(!attests(&writ, &next));

    // Without a bundle that vouches for the endpoint's SVID: refused.
    let writ = at_now();
    writ.set_bundle("partner.example", &next.bundle_pem()).unwrap();
    let unfetched = writ
        .set_bundle_endpoints(vec![endpoint(server.url("/bundle"), spiffe(&td.id("/spire/server")), None)])
        .unwrap();
    assert!(unfetched[0].contains("not an X.509-SVID in force"), "{unfetched:?}");
    assert!(!attests(&writ, &td));
}
