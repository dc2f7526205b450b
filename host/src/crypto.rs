//! The `crypto` import, natively: `ring` for every algorithm it has, the RustCrypto `p521`
//! crate for ES512 (ring has no P-521). The issuer's private key lives here, never in the
//! component.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self as sig, Ed25519KeyPair, KeyPair as _};
use sha2::{Digest as _, Sha256};

/// Signature algorithms, as the WIT `crypto.algorithm` enum.
pub use crate::bindings::writ::agent::crypto::Algorithm;

/// An issuer signing key.
pub struct IssuerKey {
    kid: String,
    pair: Ed25519KeyPair,
}

impl IssuerKey {
    /// A fresh Ed25519 key from the system's randomness.
    pub fn generate() -> Result<IssuerKey, String> {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| format!("issuer key generation failed: {e}"))?;
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// An Ed25519 key from PKCS#8 DER.
    pub fn from_pkcs8(der: &[u8]) -> Result<IssuerKey, String> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| format!("bad Ed25519 PKCS#8 key: {e}"))?;
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        // RFC 7638 JWK thumbprint.
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#)));
        Ok(IssuerKey { kid, pair })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.pair.public_key().as_ref()),
        })
    }
}

/// The host side of `crypto`.
pub struct HostCrypto {
    issuer: IssuerKey,
}

impl HostCrypto {
    pub fn new(issuer: IssuerKey) -> Self {
        HostCrypto { issuer }
    }

    pub fn verify(&self, alg: Algorithm, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        verify(alg, public_key, message, signature)
    }

    pub fn sign(&self, message: &[u8]) -> (String, Algorithm, Vec<u8>) {
        (self.issuer.kid.clone(), Algorithm::Ed25519, self.issuer.pair.sign(message).as_ref().to_vec())
    }

    pub fn public_keys(&self) -> String {
        serde_json::json!({ "keys": [self.issuer.jwk()] }).to_string()
    }
}

/// Verify natively. Never panics: bad keys and signatures are `false`.
pub fn verify(alg: Algorithm, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let ring_alg: &'static dyn sig::VerificationAlgorithm = match alg {
        Algorithm::EcdsaP256Sha256Der => &sig::ECDSA_P256_SHA256_ASN1,
        Algorithm::EcdsaP256Sha256Fixed => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::EcdsaP384Sha384Der => &sig::ECDSA_P384_SHA384_ASN1,
        Algorithm::EcdsaP384Sha384Fixed => &sig::ECDSA_P384_SHA384_FIXED,
        Algorithm::Ed25519 => &sig::ED25519,
        Algorithm::RsaPkcs1Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RsaPkcs1Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RsaPkcs1Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::RsaPssSha256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::RsaPssSha384 => &sig::RSA_PSS_2048_8192_SHA384,
        Algorithm::RsaPssSha512 => &sig::RSA_PSS_2048_8192_SHA512,
        Algorithm::EcdsaP521Sha512Fixed => return p521_verify(public_key, message, signature),
    };
    sig::UnparsedPublicKey::new(ring_alg, public_key).verify(message, signature).is_ok()
}

fn p521_verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use p521::ecdsa::signature::Verifier as _;
    let Ok(key) = p521::ecdsa::VerifyingKey::from_sec1_bytes(public_key) else { return false };
    let Ok(sig) = p521::ecdsa::Signature::from_slice(signature) else { return false };
    key.verify(message, &sig).is_ok()
}
