//! Fixed worlds the fuzz targets run in, and the input format of multi-part targets. The seed
//! generator (`writ_tests::fuzz_seeds`) builds its seeds in these worlds.

use writ_core::crypto::RustCrypto;
use writ_core::{Identity, Intent, Proof, Writ};

/// The time every target runs at.
pub const NOW: u64 = 1_800_000_000;

/// The trust domain of the attestation targets' bundles and SVIDs.
pub const TRUST_DOMAIN: &str = "example.org";

/// The audience JWT-SVIDs and credentials are for.
pub const AUDIENCE: &str = "writ-fuzz";

/// Policies of the credential target's world.
pub const POLICIES: &str = r#"
@id("read") @ttl("600") permit(principal in Role::"worker", action == Action::"read", resource is Doc);
@id("delegate") @ttl("300") permit(principal, action == Action::"delegate", resource is Agent)
  when { resource.trust_domain == principal.trust_domain };
"#;

pub const ENTITIES: &str = r#"[
  {"uid":{"type":"Role","id":"worker"},"attrs":{},"parents":[]},
  {"uid":{"type":"Agent","id":"spiffe://example.org/a"},"attrs":{},"parents":[{"type":"Role","id":"worker"}]},
  {"uid":{"type":"Agent","id":"spiffe://example.org/b"},"attrs":{},"parents":[{"type":"Role","id":"worker"}]}
]"#;

/// The issuer: a fixed Ed25519 key, so seeds issued by the generator verify in the target.
pub fn issuer() -> RustCrypto {
    RustCrypto::with_ed25519_seed([7; 32])
}

/// The holder credentials are issued to and presented by.
pub fn holder() -> Identity {
    Identity {
        spiffe_id: "spiffe://example.org/a".into(),
        trust_domain: TRUST_DOMAIN.into(),
        expires_at: NOW + 7200,
        thumbprint: "fuzz-thumbprint-a".into(),
        proof: Proof::X509Svid,
        claims: Default::default(),
    }
}

/// The intent credentials are issued for and presented with.
pub fn read_doc() -> Intent {
    Intent {
        action: "read".into(),
        resource: r#"Doc::"d1""#.into(),
        task_id: "task-1".into(),
        context: String::new(),
        input: String::new(),
    }
}

/// An engine with the credential world's policies.
pub fn credential_engine() -> Writ {
    let mut e = Writ::default();
    // The fixed policies always load; an engine without them still answers (deny).
    let _ = e.set_policies(POLICIES, None, Some(ENTITIES));
    e
}

/// The proxy-wasm filter's configuration in the `filter_request` target: this world's
/// policies and issuer, `example.org` trusted (a JWT-SVID key bundle, so no XFCC chain
/// attests and every other part of a request is exercised), one route `/docs/{id}`.
pub fn filter_config() -> Vec<u8> {
    use writ_core::Crypto as _;
    let bundle = RustCrypto::with_ed25519_seed([9; 32]).public_keys().replace(r#""use":"sig""#, r#""use":"jwt-svid""#);
    let config = serde_json::json!({
        "trust_domains": { TRUST_DOMAIN: serde_json::from_str::<serde_json::Value>(&bundle).unwrap_or_default() },
        "policies": POLICIES,
        "entities": ENTITIES,
        "issuer_jwks": serde_json::from_str::<serde_json::Value>(&issuer().public_keys()).unwrap_or_default(),
        "audience": AUDIENCE,
        "identity_sources": ["connection", "xfcc", "token"],
        "routes": [{ "method": "*", "path": "/docs/{id}", "action": "read", "resource": "Doc::\"{id}\"", "task": "task-1" }],
        "mcp": [{ "path": "/mcp", "server": "docs" }],
    });
    config.to_string().into_bytes()
}

/// The peer certificate digest (hex) of the filter target's holder, and the `x5t#S256`
/// thumbprint it gives.
pub const FILTER_PEER_DIGEST: &str = "1111111111111111111111111111111111111111111111111111111111111111";
pub const FILTER_PEER_THUMBPRINT: &str = "ERERERERERERERERERERERERERERERERERERERERERE";

/// `parts` as one input: each prefixed by its length (u16, big-endian; longer parts are cut).
pub fn encode(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&p[..usize::from(len)]);
    }
    out
}

/// An input split back into at most `n` parts: length-prefixed parts while the input lasts
/// (a prefix longer than what remains takes the rest), so any bytes split somehow.
pub fn decode(mut data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while out.len() < n && data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]])).min(data.len() - 2);
        out.push(&data[2..2 + len]);
        data = &data[2 + len..];
    }
    if out.is_empty() {
        out.push(data);
    }
    out
}
