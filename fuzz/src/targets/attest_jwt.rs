//! JWT-SVID attestation: a bundle (JWKS or certificates), a token and an audience.

use crate::fixtures::{NOW, TRUST_DOMAIN, decode};

/// One input.
pub fn run(data: &[u8]) {
    let parts = decode(data, 3);
    let mut engine = writ_core::Writ::default();
    let _ = engine.set_bundle(TRUST_DOMAIN, parts[0]);
    let token = String::from_utf8_lossy(parts.get(1).copied().unwrap_or_default());
    let audience = String::from_utf8_lossy(parts.get(2).copied().unwrap_or_default());
    let crypto = writ_core::crypto::RustCrypto::new();
    if let Ok(id) = engine.attest_jwt(&token, &audience, NOW, &crypto) {
        assert_eq!(id.trust_domain, TRUST_DOMAIN);
        assert!(id.expires_at > NOW);
    }
}
