//! X.509-SVID attestation: a bundle, then a chain (leaf first), all fuzzer-chosen. Any input
//! must give an identity or a typed error — never a panic.

use crate::fixtures::{NOW, TRUST_DOMAIN, decode};

/// One input.
pub fn run(data: &[u8]) {
    let parts = decode(data, 5);
    let mut engine = writ_core::Writ::default();
    let _ = engine.set_bundle(TRUST_DOMAIN, parts[0]);
    let chain: Vec<Vec<u8>> = parts[1..].iter().map(|c| c.to_vec()).collect();
    let crypto = writ_core::crypto::RustCrypto::new();
    if let Ok(id) = engine.attest_x509(&chain, NOW, &crypto) {
        // Whatever was accepted is a well-formed identity of the bundle's domain.
        assert_eq!(id.trust_domain, TRUST_DOMAIN);
        assert!(id.spiffe_id.starts_with("spiffe://example.org/"));
    }
}
