//! Seed corpora for the fuzz targets (`writ-fuzz`), built with the tests' own PKI, token and
//! policy builders: valid inputs of every kind, so the fuzzer starts deep inside each entry
//! point. The e2e suite replays them through every target on each run; the `fuzz-seeds` binary
//! writes them out for libFuzzer (`cargo run -p writ-tests --bin fuzz-seeds -- DIR`).

use crate::jwt::{ALL_JWS_ALGS, Signer, claims, spiffe_bundle};
use crate::pki::{KeyAlg, Pki};
use writ_fuzz::fixtures::{self, AUDIENCE, NOW, encode};

/// One seed: the target it is for, a name, the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub target: &'static str,
    pub name: String,
    pub bytes: Vec<u8>,
}

#[derive(Default)]
struct Seeds(Vec<Seed>);

impl Seeds {
    fn add(&mut self, target: &'static str, name: &str, bytes: &[u8]) {
        self.0.push(Seed { target, name: name.to_string(), bytes: bytes.to_vec() });
    }
}

/// Every seed, each checked to be accepted (or refused) by its target's world as it says.
pub fn seeds() -> Vec<Seed> {
    let mut seeds = Seeds::default();
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
        seeds.add("attest_x509", &format!("{name}-chain3"), &seed);
        let short = pki.chain2("/w", alg);
        let parts: Vec<&[u8]> = std::iter::once(bundle.as_slice()).chain(short.iter().map(Vec::as_slice)).collect();
        seeds.add("attest_x509", &format!("{name}-chain2"), &encode(&parts));
    }
    // JWT-SVIDs: a JWKS bundle, a token, the audience — every allowed algorithm.
    for alg in ALL_JWS_ALGS {
        let signer = Signer::new("k1", alg);
        let bundle = spiffe_bundle(&[&signer], &[]);
        let token = signer.token(&claims("spiffe://example.org/w", "writ-fuzz"));
        let mut e = writ_core::Writ::default();
        e.set_bundle(fixtures::TRUST_DOMAIN, &bundle).unwrap();
        e.attest_jwt(&token, "writ-fuzz", NOW, &writ_core::crypto::RustCrypto::new()).unwrap();
        seeds.add("attest_jwt", alg.name(), &encode(&[&bundle, token.as_bytes(), b"writ-fuzz"]));
    }
    // Credentials issued by the target world's issuer to its holder (and one delegated).
    let mut engine = fixtures::credential_engine();
    let (crypto, ledger) = (fixtures::issuer(), writ_core::MemoryLedger::new());
    let env = |n: u8| writ_core::Env { now: NOW, crypto: &crypto, ledger: &ledger, entropy: [n; 16] };
    crate::register_task(&ledger, "task-1", &[&fixtures::holder().spiffe_id, "spiffe://example.org/b"], NOW);
    let g = engine.issue(&fixtures::holder(), "task-1", &[fixtures::read_doc()], 600, AUDIENCE, &env(1)).unwrap();
    let p = fixtures::credential_engine()
        .present(&g.grant.token, &fixtures::holder(), &fixtures::read_doc(), AUDIENCE, NOW + 1, &crypto, &ledger)
        .unwrap();
    assert!(p.decision.allow, "the seed credential is accepted by the target's world");
    seeds.add("present", "issued", g.grant.token.as_bytes());
    let mut b = fixtures::holder();
    b.spiffe_id = "spiffe://example.org/b".into();
    b.thumbprint = "fuzz-thumbprint-b".into();
    let d = engine.delegate(&g.grant.token, &fixtures::holder(), &b, &[fixtures::read_doc()], 300, &env(2)).unwrap();
    seeds.add("present", "delegated", d.grant.token.as_bytes());
    // Policy loads: the shipped pack with its schema and entities, and the parts alone.
    let (p, s, e) = (crate::pack::policies(), crate::pack::schema(), crate::pack::entities());
    seeds.add("policy_load", "pack", &encode(&[p.as_bytes(), s.as_bytes(), e.as_bytes()]));
    seeds.add("policy_load", "pack-no-schema", &encode(&[p.as_bytes(), b"", e.as_bytes()]));
    seeds.add(
        "policy_load",
        "credential-world",
        &encode(&[fixtures::POLICIES.as_bytes(), b"", fixtures::ENTITIES.as_bytes()]),
    );
    // Tool lists: the MCP example's, and one with every JSON Schema shape the generator types.
    seeds.add("mcp_schema", "example", include_bytes!("../../examples/mcp/tools.json"));
    let shapes = serde_json::json!({ "tools": [{
        "name": "get-weather",
        "description": "Every shape.",
        "inputSchema": { "type": "object", "required": ["city"], "properties": {
            "city": { "type": "string" }, "days": { "type": "integer" }, "rate": { "type": "number" },
            "unit": { "type": "string", "enum": ["c", "f"] }, "at": { "type": "string", "format": "date-time" },
            "from": { "type": "string", "format": "ipv4" }, "tags": { "type": "array", "items": { "type": "string" } },
            "where": { "type": "object", "properties": { "lat": { "type": "integer" } } },
            "extra": { "type": "object", "additionalProperties": { "type": "string" } },
            "note": { "anyOf": [{ "type": "string" }, { "type": "null" }] },
            "either": { "anyOf": [{ "type": "string" }, { "type": "integer" }] },
            "ref": { "$ref": "#/$defs/Place" }
        }, "$defs": { "Place": { "type": "object", "properties": { "name": { "type": "string" } } } } }
    }]});
    seeds.add("mcp_schema", "shapes", shapes.to_string().as_bytes());
    // Contexts the end-to-end tests use.
    for (name, ctx) in [
        ("external", r#"{"destination":{"host":"paste.example.net","external":true}}"#),
        ("internal", r#"{"destination":{"host":"bi.acme.example","external":false}}"#),
        ("approved", r#"{"approval":{"approver":"alice@acme.example","ticket":"INC-7"},"reason":"payroll outage"}"#),
        ("spoof", r#"{"task_id":"run-43","now":0,"delegation_depth":-1}"#),
        ("empty", ""),
    ] {
        seeds.add("context", name, ctx.as_bytes());
    }
    // AuthZEN requests, single and batch, as the decision server's tests send them.
    let single = serde_json::json!({
        "subject": { "type": "Agent", "id": "spiffe://acme.example/agent/payroll", "properties": { "trust_domain": "acme.example", "path": "/agent/payroll" } },
        "action": { "name": "read", "properties": { "soft": true } },
        "resource": { "type": "PayrollRecord", "id": "run-42/emp-7" },
        "context": { "task_id": "run-42", "now": NOW, "delegation_depth": 0, "identity_expires_at": NOW + 3600 },
    });
    seeds.add("authzen_decode", "single", single.to_string().as_bytes());
    let mut batch = single.clone();
    batch["evaluations"] = serde_json::json!([{}, { "resource": { "type": "PayrollRecord", "id": "run-43/emp-7" } }, { "action": { "name": "write" } }]);
    batch["options"] = serde_json::json!({ "evaluations_semantic": "deny_on_first_deny" });
    seeds.add("authzen_decode", "batch", batch.to_string().as_bytes());
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
    let mcp = |method: &[u8], mcp_method: &[u8], mcp_name: &[u8]| {
        let (id, digest) = (holder_id.as_bytes(), fixtures::FILTER_PEER_DIGEST.as_bytes());
        encode(&[method, b"/mcp", b"", b"", b"", id, digest, b"", mcp_method, mcp_name, b"task-1"])
    };
    let mut filter = writ_proxy::Filter::configure(&fixtures::filter_config(), 1).unwrap();
    for (name, seed, allow) in [
        ("mtls-allow", peer("/docs/d1?x=1", "", ""), true),
        ("bearer-allow", peer("/docs/d1", &bearer, ""), true),
        ("context", peer("/docs/d1", "", r#"{"destination":{"external":true}}"#), true),
        ("no-route", peer("/nothing/here", "", ""), false),
        ("mcp-initialize", mcp(b"POST", b"initialize", b""), true),
        ("mcp-call", mcp(b"POST", b"tools/call", b"read"), false),
        ("mcp-no-headers", mcp(b"POST", b"", b""), false),
        ("xfcc-uri", encode(&[b"GET", b"/docs/d1", format!("Hash={};URI={holder_id}", fixtures::FILTER_PEER_DIGEST).as_bytes()]), false),
        ("xfcc-cert", encode(&[b"POST", b"/docs/d2", b"Cert=\"-----BEGIN%20CERTIFICATE-----%0AMIIB%0A-----END%20CERTIFICATE-----%0A\";URI=spiffe://example.org/a"]), false),
    ] {
        let parts = fixtures::decode(&seed, 11);
        let text = |i: usize| parts.get(i).map(|b| String::from_utf8_lossy(b).into_owned()).filter(|s| !s.is_empty());
        let req = writ_proxy::Request {
            method: text(0).unwrap_or_default(),
            path: text(1).unwrap_or_default(),
            xfcc: text(2),
            authorization: text(3),
            identity_token: text(7),
            context: text(4),
            peer: text(5).map(|uri_san| writ_proxy::Peer { uri_san, sha256_hex: text(6).unwrap_or_default() }),
            mcp_method: text(8),
            mcp_name: text(9),
            task: text(10),
        };
        let outcome = filter.decide(&req, NOW + 1).0;
        assert_eq!(matches!(outcome, writ_proxy::Outcome::Allow { .. }), allow, "seed {name}: {outcome:?}");
        seeds.add("filter_request", name, &seed);
    }
    seeds.0
}
