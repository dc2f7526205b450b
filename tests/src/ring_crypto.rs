//! `writ-core`'s `Crypto` trait on the host's native `ring` verifier, so native runs can be
//! measured against the same crypto floor the component gets through its import.

use writ_core::crypto::{Algorithm as C, Crypto, SigningKey};
use writ_host::crypto::Algorithm as H;

pub fn host_alg(a: C) -> H {
    match a {
        C::EcdsaP256Sha256Der => H::EcdsaP256Sha256Der,
        C::EcdsaP256Sha256Fixed => H::EcdsaP256Sha256Fixed,
        C::EcdsaP384Sha384Der => H::EcdsaP384Sha384Der,
        C::EcdsaP384Sha384Fixed => H::EcdsaP384Sha384Fixed,
        C::EcdsaP521Sha512Fixed => H::EcdsaP521Sha512Fixed,
        C::Ed25519 => H::Ed25519,
        C::RsaPkcs1Sha256 => H::RsaPkcs1Sha256,
        C::RsaPkcs1Sha384 => H::RsaPkcs1Sha384,
        C::RsaPkcs1Sha512 => H::RsaPkcs1Sha512,
        C::RsaPssSha256 => H::RsaPssSha256,
        C::RsaPssSha384 => H::RsaPssSha384,
        C::RsaPssSha512 => H::RsaPssSha512,
    }
}

/// Verification by `ring` (and `p521`), natively. No issuer key.
pub struct RingCrypto;

impl Crypto for RingCrypto {
    fn verify(&self, alg: C, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        writ_host::crypto::verify(host_alg(alg), public_key, message, signature)
    }
    fn signing_key(&self) -> Result<SigningKey, String> {
        Err("no issuer key".into())
    }
    fn sign(&self, _kid: &str, _message: &[u8]) -> Result<Vec<u8>, String> {
        Err("no issuer key".into())
    }
    fn public_keys(&self) -> String {
        r#"{"keys":[]}"#.into()
    }
}

/// `ring` verification plus an issuer key held by the host's own crypto (what the component
/// gets through its `crypto` import), for native credential benchmarks and tests.
pub struct RingIssuer {
    host: writ_host::crypto::HostCrypto,
    now: u64,
}

impl RingIssuer {
    pub fn new(key: writ_host::IssuerKey, now: u64) -> RingIssuer {
        RingIssuer { host: writ_host::crypto::HostCrypto::new(key), now }
    }
}

fn core_alg(a: H) -> C {
    C::ALL.into_iter().find(|c| host_alg(*c) == a).unwrap_or(C::Ed25519)
}

impl Crypto for RingIssuer {
    fn verify(&self, alg: C, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        self.host.verify(host_alg(alg), public_key, message, signature)
    }
    fn signing_key(&self) -> Result<SigningKey, String> {
        let (kid, alg) = self.host.signing_key();
        Ok(SigningKey { kid, alg: core_alg(alg) })
    }
    fn sign(&self, kid: &str, message: &[u8]) -> Result<Vec<u8>, String> {
        self.host.sign(kid, message)
    }
    fn public_keys(&self) -> String {
        self.host.public_keys(self.now)
    }
}
