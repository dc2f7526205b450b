//! Seed corpora for the fuzz targets (`fuzz/`), built with the tests' own PKI, token and
//! policy builders: `cargo run -p writ-tests --bin fuzz-seeds -- fuzz/corpus`. Valid inputs of
//! every kind, so the fuzzer starts deep inside each entry point.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../fuzz/src/fixtures.rs"]
mod fixtures;

use fixtures::{AUDIENCE, NOW, encode};
use std::path::Path;
use writ_tests::jwt::{ALL_JWS_ALGS, Signer, claims, spiffe_bundle};
use writ_tests::pki::{KeyAlg, Pki};

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join(name), bytes).unwrap();
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".into());
    let dir = Path::new(&dir);
    // X.509-SVIDs: bundle, then the chain, for each key type; and a few broken ones.
    for (name, alg) in
        [("p256", KeyAlg::P256), ("p384", KeyAlg::P384), ("ed25519", KeyAlg::Ed25519), ("rsa", KeyAlg::Rsa2048)]
    {
        let pki = Pki::new(fixtures::TRUST_DOMAIN, alg);
        let bundle = pki.bundle_pem();
        let chain = pki.chain3("/w", alg);
        let parts: Vec<&[u8]> = std::iter::once(bundle.as_slice()).chain(chain.iter().map(Vec::as_slice)).collect();
        let seed = encode(&parts);
        // The seed is valid as the target reads it: the fuzzer starts from a full attestation.
        let back = fixtures::decode(&seed, 5);
        let mut e = writ_core::Writ::default();
        e.set_bundle(fixtures::TRUST_DOMAIN, back[0]).unwrap();
        let certs: Vec<Vec<u8>> = back[1..].iter().map(|c| c.to_vec()).collect();
        e.attest_x509(&certs, NOW, &writ_core::crypto::RustCrypto::new()).unwrap();
        write(dir, "attest_x509", &format!("{name}-chain3"), &seed);
        let short = pki.chain2("/w", alg);
        let parts: Vec<&[u8]> = std::iter::once(bundle.as_slice()).chain(short.iter().map(Vec::as_slice)).collect();
        write(dir, "attest_x509", &format!("{name}-chain2"), &encode(&parts));
    }
    // JWT-SVIDs: a JWKS bundle, a token, the audience — every allowed algorithm.
    for alg in ALL_JWS_ALGS {
        let signer = Signer::new("k1", alg);
        let bundle = spiffe_bundle(&[&signer], &[]);
        let token = signer.token(&claims("spiffe://example.org/w", "writ-fuzz"));
        let mut e = writ_core::Writ::default();
        e.set_bundle(fixtures::TRUST_DOMAIN, &bundle).unwrap();
        e.attest_jwt(&token, "writ-fuzz", NOW, &writ_core::crypto::RustCrypto::new()).unwrap();
        write(dir, "attest_jwt", alg.name(), &encode(&[&bundle, token.as_bytes(), b"writ-fuzz"]));
    }
    // Credentials issued by the target world's issuer to its holder (and one delegated).
    let mut engine = fixtures::credential_engine();
    let (crypto, ledger) = (fixtures::issuer(), writ_core::MemoryLedger::new());
    let env = |n: u8| writ_core::Env { now: NOW, crypto: &crypto, ledger: &ledger, entropy: [n; 16] };
    let g = engine.issue(&fixtures::holder(), "task-1", &[fixtures::read_doc()], 600, AUDIENCE, &env(1)).unwrap();
    let p = fixtures::credential_engine()
        .present(&g.grant.token, &fixtures::holder(), &fixtures::read_doc(), AUDIENCE, NOW + 1, &crypto, &ledger)
        .unwrap();
    assert!(p.decision.allow, "the seed credential is accepted by the target's world");
    write(dir, "present", "issued", g.grant.token.as_bytes());
    let mut b = fixtures::holder();
    b.spiffe_id = "spiffe://example.org/b".into();
    b.thumbprint = "fuzz-thumbprint-b".into();
    let d = engine.delegate(&g.grant.token, &fixtures::holder(), &b, &[fixtures::read_doc()], 300, &env(2)).unwrap();
    write(dir, "present", "delegated", d.grant.token.as_bytes());
    // Policy loads: the shipped pack with its schema and entities, and the parts alone.
    let (p, s, e) = (writ_tests::pack::policies(), writ_tests::pack::schema(), writ_tests::pack::entities());
    write(dir, "policy_load", "pack", &encode(&[p.as_bytes(), s.as_bytes(), e.as_bytes()]));
    write(dir, "policy_load", "pack-no-schema", &encode(&[p.as_bytes(), b"", e.as_bytes()]));
    write(
        dir,
        "policy_load",
        "credential-world",
        &encode(&[fixtures::POLICIES.as_bytes(), b"", fixtures::ENTITIES.as_bytes()]),
    );
    // Contexts the end-to-end tests use.
    for (name, ctx) in [
        ("external", r#"{"destination":{"host":"paste.example.net","external":true}}"#),
        ("internal", r#"{"destination":{"host":"bi.acme.example","external":false}}"#),
        ("approved", r#"{"approval":{"approver":"alice@acme.example","ticket":"INC-7"},"reason":"payroll outage"}"#),
        ("spoof", r#"{"task_id":"run-43","now":0,"delegation_depth":-1}"#),
        ("empty", ""),
    ] {
        write(dir, "context", name, ctx.as_bytes());
    }
    // AuthZEN requests, single and batch, as the decision server's tests send them.
    let single = serde_json::json!({
        "subject": { "type": "Agent", "id": "spiffe://acme.example/agent/payroll", "properties": { "trust_domain": "acme.example", "path": "/agent/payroll" } },
        "action": { "name": "read", "properties": { "soft": true } },
        "resource": { "type": "PayrollRecord", "id": "run-42/emp-7" },
        "context": { "task_id": "run-42", "now": NOW, "delegation_depth": 0, "identity_expires_at": NOW + 3600 },
    });
    write(dir, "authzen_decode", "single", single.to_string().as_bytes());
    let mut batch = single.clone();
    batch["evaluations"] = serde_json::json!([{}, { "resource": { "type": "PayrollRecord", "id": "run-43/emp-7" } }, { "action": { "name": "write" } }]);
    batch["options"] = serde_json::json!({ "evaluations_semantic": "deny_on_first_deny" });
    write(dir, "authzen_decode", "batch", batch.to_string().as_bytes());
    // Requests to the proxy filter: allowed over mTLS, with a credential, from XFCC, refused.
    let filter_holder =
        writ_core::Identity { thumbprint: fixtures::FILTER_PEER_THUMBPRINT.into(), ..fixtures::holder() };
    let fg = engine.issue(&filter_holder, "task-1", &[fixtures::read_doc()], 600, AUDIENCE, &env(3)).unwrap();
    let bearer = format!("Bearer {}", fg.grant.token);
    let holder_id = fixtures::holder().spiffe_id;
    let peer = |path: &str, auth: &str, ctx: &str| {
        encode(&[
            b"GET",
            path.as_bytes(),
            b"",
            auth.as_bytes(),
            ctx.as_bytes(),
            holder_id.as_bytes(),
            fixtures::FILTER_PEER_DIGEST.as_bytes(),
        ])
    };
    let mut filter = writ_proxy::Filter::configure(&fixtures::filter_config(), 1).unwrap();
    for (name, seed, allow) in [
        ("mtls-allow", peer("/docs/d1?x=1", "", ""), true),
        ("bearer-allow", peer("/docs/d1", &bearer, ""), true),
        ("context", peer("/docs/d1", "", r#"{"destination":{"external":true}}"#), true),
        ("no-route", peer("/nothing/here", "", ""), false),
        ("xfcc-uri", encode(&[b"GET", b"/docs/d1", format!("Hash={};URI={holder_id}", fixtures::FILTER_PEER_DIGEST).as_bytes()]), false),
        ("xfcc-cert", encode(&[b"POST", b"/docs/d2", b"Cert=\"-----BEGIN%20CERTIFICATE-----%0AMIIB%0A-----END%20CERTIFICATE-----%0A\";URI=spiffe://example.org/a"]), false),
    ] {
        let parts = fixtures::decode(&seed, 7);
        let text = |i: usize| parts.get(i).map(|b| String::from_utf8_lossy(b).into_owned()).filter(|s| !s.is_empty());
        let req = writ_proxy::Request {
            method: text(0).unwrap_or_default(),
            path: text(1).unwrap_or_default(),
            xfcc: text(2),
            authorization: text(3),
            context: text(4),
            peer: text(5).map(|uri_san| writ_proxy::Peer { uri_san, sha256_hex: text(6).unwrap_or_default() }),
        };
        let outcome = filter.decide(&req, NOW + 1).0;
        assert_eq!(matches!(outcome, writ_proxy::Outcome::Allow { .. }), allow, "seed {name}: {outcome:?}");
        write(dir, "filter_request", name, &seed);
    }
    println!("seed corpora written under {}", dir.display());
}
