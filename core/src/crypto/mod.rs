//! Signature primitives as a trait: the component gets them from the host's `crypto` import
//! (`ring`, native), native callers and hosts without that import use [`RustCrypto`].
//!
//! Public keys are raw, as X.509's subjectPublicKey carries them: EC `0x04‖x‖y`, RSA DER
//! `RSAPublicKey`, Ed25519 32 bytes. Every implementation must give the same answers,
//! including refusing RSA moduli outside 2048..=8192 bits.

#[cfg(feature = "rustcrypto")]
mod rustcrypto;
#[cfg(feature = "rustcrypto")]
pub use rustcrypto::RustCrypto;

/// A signature algorithm. X.509 carries ECDSA signatures DER-encoded, JWS in fixed `r‖s` form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    EcdsaP256Sha256Der,
    EcdsaP256Sha256Fixed,
    EcdsaP384Sha384Der,
    EcdsaP384Sha384Fixed,
    EcdsaP521Sha512Fixed,
    Ed25519,
    RsaPkcs1Sha256,
    RsaPkcs1Sha384,
    RsaPkcs1Sha512,
    RsaPssSha256,
    RsaPssSha384,
    RsaPssSha512,
}

impl Algorithm {
    pub const ALL: [Algorithm; 12] = [
        Algorithm::EcdsaP256Sha256Der,
        Algorithm::EcdsaP256Sha256Fixed,
        Algorithm::EcdsaP384Sha384Der,
        Algorithm::EcdsaP384Sha384Fixed,
        Algorithm::EcdsaP521Sha512Fixed,
        Algorithm::Ed25519,
        Algorithm::RsaPkcs1Sha256,
        Algorithm::RsaPkcs1Sha384,
        Algorithm::RsaPkcs1Sha512,
        Algorithm::RsaPssSha256,
        Algorithm::RsaPssSha384,
        Algorithm::RsaPssSha512,
    ];

    /// The JWS `alg` name, for the algorithms JWS defines in this form.
    pub fn jws_name(self) -> Option<&'static str> {
        Some(match self {
            Algorithm::EcdsaP256Sha256Fixed => "ES256",
            Algorithm::EcdsaP384Sha384Fixed => "ES384",
            Algorithm::EcdsaP521Sha512Fixed => "ES512",
            Algorithm::Ed25519 => "EdDSA",
            Algorithm::RsaPkcs1Sha256 => "RS256",
            Algorithm::RsaPkcs1Sha384 => "RS384",
            Algorithm::RsaPkcs1Sha512 => "RS512",
            Algorithm::RsaPssSha256 => "PS256",
            Algorithm::RsaPssSha384 => "PS384",
            Algorithm::RsaPssSha512 => "PS512",
            Algorithm::EcdsaP256Sha256Der | Algorithm::EcdsaP384Sha384Der => return None,
        })
    }
}

/// Smallest and largest RSA modulus accepted, in bits (as `ring`'s `RSA_*_2048_8192_*`).
pub const RSA_MIN_BITS: usize = 2048;
pub const RSA_MAX_BITS: usize = 8192;

/// The issuer key that signs now: its `kid` and algorithm (Ed25519 or ECDSA P-256 fixed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
}

/// Where signatures are checked and made. `Sync` because webpki's verifiers must be.
pub trait Crypto: Send + Sync {
    /// True only for a valid signature by `public_key` over `message`. Never panics: a
    /// malformed key or signature is simply `false`.
    fn verify(&self, alg: Algorithm, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool;
    /// The issuer key that signs now. A credential's header names it before it is signed.
    fn signing_key(&self) -> Result<SigningKey, String>;
    /// Sign with the issuer key `kid`; fails when that key is not the one that signs now
    /// (rotated in between), so a header never names a key other than the signer.
    fn sign(&self, kid: &str, message: &[u8]) -> Result<Vec<u8>, String>;
    /// The issuer's public keys, as a JWKS document: the signing key and any earlier key
    /// still inside its rotation overlap.
    fn public_keys(&self) -> String;
}
