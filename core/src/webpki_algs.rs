//! rustls-webpki signature verifiers that forward to the [`Crypto`] trait, so chain validation
//! uses the host's native crypto inside the component.

use crate::crypto::{Algorithm, Crypto};
use rustls_pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm, alg_id};

pub struct Forward<'a> {
    crypto: &'a dyn Crypto,
    alg: Algorithm,
    public_key_alg_id: AlgorithmIdentifier,
    signature_alg_id: AlgorithmIdentifier,
}

impl std::fmt::Debug for Forward<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Forward({:?})", self.alg)
    }
}

impl SignatureVerificationAlgorithm for Forward<'_> {
    fn verify_signature(&self, public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), InvalidSignature> {
        if self.crypto.verify(self.alg, public_key, message, signature) { Ok(()) } else { Err(InvalidSignature) }
    }
    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.public_key_alg_id
    }
    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.signature_alg_id
    }
}

/// Every certificate signature algorithm Writ accepts: ECDSA P-256/SHA-256, P-384/SHA-384,
/// Ed25519, RSA PKCS#1 v1.5 and PSS with SHA-256/384/512 (RSA keys of 2048..=8192 bits).
pub fn all(crypto: &dyn Crypto) -> [Forward<'_>; 9] {
    let f = |alg, public_key_alg_id, signature_alg_id| Forward { crypto, alg, public_key_alg_id, signature_alg_id };
    [
        f(Algorithm::EcdsaP256Sha256Der, alg_id::ECDSA_P256, alg_id::ECDSA_SHA256),
        f(Algorithm::EcdsaP384Sha384Der, alg_id::ECDSA_P384, alg_id::ECDSA_SHA384),
        f(Algorithm::Ed25519, alg_id::ED25519, alg_id::ED25519),
        f(Algorithm::RsaPkcs1Sha256, alg_id::RSA_ENCRYPTION, alg_id::RSA_PKCS1_SHA256),
        f(Algorithm::RsaPkcs1Sha384, alg_id::RSA_ENCRYPTION, alg_id::RSA_PKCS1_SHA384),
        f(Algorithm::RsaPkcs1Sha512, alg_id::RSA_ENCRYPTION, alg_id::RSA_PKCS1_SHA512),
        f(Algorithm::RsaPssSha256, alg_id::RSA_ENCRYPTION, alg_id::RSA_PSS_SHA256),
        f(Algorithm::RsaPssSha384, alg_id::RSA_ENCRYPTION, alg_id::RSA_PSS_SHA384),
        f(Algorithm::RsaPssSha512, alg_id::RSA_ENCRYPTION, alg_id::RSA_PSS_SHA512),
    ]
}
