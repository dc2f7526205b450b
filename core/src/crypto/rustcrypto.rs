//! The pure-Rust provider, on RustCrypto crates. Verification of every [`Algorithm`];
//! signing with an optional issuer key (Ed25519 or ECDSA P-256) given as its secret bytes.

use super::{Algorithm, Crypto, RSA_MAX_BITS, RSA_MIN_BITS, SigningKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use ed25519_dalek::Verifier as _;
use rsa::RsaPublicKey;
use rsa::pkcs1::DecodeRsaPublicKey as _;
use rsa::traits::PublicKeyParts as _;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// RustCrypto verification (p256, p384, p521, ed25519-dalek, rsa).
#[derive(Default)]
pub struct RustCrypto {
    issuer: Option<(String, Issuer)>,
}

enum Issuer {
    Ed25519(ed25519_dalek::SigningKey),
    Es256(p256::ecdsa::SigningKey),
}

impl Issuer {
    fn jwk(&self, kid: &str) -> serde_json::Value {
        match self {
            Issuer::Ed25519(k) => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(k.verifying_key().as_bytes()),
            }),
            Issuer::Es256(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                serde_json::json!({
                    "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                    "x": point.x().map(|x| URL_SAFE_NO_PAD.encode(x)),
                    "y": point.y().map(|y| URL_SAFE_NO_PAD.encode(y)),
                })
            }
        }
    }
}

impl std::fmt::Debug for RustCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RustCrypto").field("kid", &self.issuer.as_ref().map(|(k, _)| k)).finish()
    }
}

impl RustCrypto {
    /// A verifier with no issuer key: `sign` fails.
    pub fn new() -> Self {
        Self::default()
    }

    /// With an Ed25519 issuer key from a 32-byte seed; its `kid` is the RFC 7638 thumbprint.
    pub fn with_ed25519_seed(seed: [u8; 32]) -> Self {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#)));
        RustCrypto { issuer: Some((kid, Issuer::Ed25519(key))) }
    }

    /// With an ES256 issuer key from a 32-byte P-256 scalar; `kid` is the RFC 7638 thumbprint.
    pub fn with_p256_scalar(scalar: [u8; 32]) -> Result<Self, String> {
        let key = p256::ecdsa::SigningKey::from_bytes(&scalar.into()).map_err(|e| format!("bad P-256 scalar: {e}"))?;
        let point = key.verifying_key().to_encoded_point(false);
        let (x, y) = (
            point.x().map(|x| URL_SAFE_NO_PAD.encode(x)).unwrap_or_default(),
            point.y().map(|y| URL_SAFE_NO_PAD.encode(y)).unwrap_or_default(),
        );
        let kid =
            URL_SAFE_NO_PAD.encode(Sha256::digest(format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#)));
        Ok(RustCrypto { issuer: Some((kid, Issuer::Es256(key))) })
    }
}

fn rsa_key(der: &[u8]) -> Option<RsaPublicKey> {
    let key = RsaPublicKey::from_pkcs1_der(der).ok()?;
    let bits = key.n().bits();
    (RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits).then_some(key)
}

fn verify_inner(alg: Algorithm, pk: &[u8], msg: &[u8], sig: &[u8]) -> Option<()> {
    use ecdsa_verify::*;
    match alg {
        Algorithm::EcdsaP256Sha256Der => p256_der(pk, msg, sig),
        Algorithm::EcdsaP256Sha256Fixed => p256_fixed(pk, msg, sig),
        Algorithm::EcdsaP384Sha384Der => p384_der(pk, msg, sig),
        Algorithm::EcdsaP384Sha384Fixed => p384_fixed(pk, msg, sig),
        Algorithm::EcdsaP521Sha512Fixed => p521_fixed(pk, msg, sig),
        Algorithm::Ed25519 => {
            let pk: [u8; 32] = pk.try_into().ok()?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&pk).ok()?;
            let sig = ed25519_dalek::Signature::from_slice(sig).ok()?;
            key.verify(msg, &sig).ok()
        }
        Algorithm::RsaPkcs1Sha256 => {
            let k = rsa_key(pk)?;
            k.verify(rsa::Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg), sig).ok()
        }
        Algorithm::RsaPkcs1Sha384 => {
            let k = rsa_key(pk)?;
            k.verify(rsa::Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(msg), sig).ok()
        }
        Algorithm::RsaPkcs1Sha512 => {
            let k = rsa_key(pk)?;
            k.verify(rsa::Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(msg), sig).ok()
        }
        // PSS with salt length = digest length, as RFC 7518 and webpki require.
        Algorithm::RsaPssSha256 => {
            let k = rsa_key(pk)?;
            k.verify(rsa::Pss::new_with_salt::<Sha256>(32), &Sha256::digest(msg), sig).ok()
        }
        Algorithm::RsaPssSha384 => {
            let k = rsa_key(pk)?;
            k.verify(rsa::Pss::new_with_salt::<Sha384>(48), &Sha384::digest(msg), sig).ok()
        }
        Algorithm::RsaPssSha512 => {
            let k = rsa_key(pk)?;
            k.verify(rsa::Pss::new_with_salt::<Sha512>(64), &Sha512::digest(msg), sig).ok()
        }
    }
}

mod ecdsa_verify {
    use p256::ecdsa::signature::Verifier as _;

    pub fn p256_der(pk: &[u8], msg: &[u8], sig: &[u8]) -> Option<()> {
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(pk).ok()?;
        let sig = p256::ecdsa::DerSignature::from_bytes(sig).ok()?;
        key.verify(msg, &sig).ok()
    }
    pub fn p256_fixed(pk: &[u8], msg: &[u8], sig: &[u8]) -> Option<()> {
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(pk).ok()?;
        let sig = p256::ecdsa::Signature::from_slice(sig).ok()?;
        key.verify(msg, &sig).ok()
    }
    pub fn p384_der(pk: &[u8], msg: &[u8], sig: &[u8]) -> Option<()> {
        let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(pk).ok()?;
        let sig = p384::ecdsa::DerSignature::from_bytes(sig).ok()?;
        key.verify(msg, &sig).ok()
    }
    pub fn p384_fixed(pk: &[u8], msg: &[u8], sig: &[u8]) -> Option<()> {
        let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(pk).ok()?;
        let sig = p384::ecdsa::Signature::from_slice(sig).ok()?;
        key.verify(msg, &sig).ok()
    }
    pub fn p521_fixed(pk: &[u8], msg: &[u8], sig: &[u8]) -> Option<()> {
        let key = p521::ecdsa::VerifyingKey::from_sec1_bytes(pk).ok()?;
        let sig = p521::ecdsa::Signature::from_slice(sig).ok()?;
        key.verify(msg, &sig).ok()
    }
}

impl Crypto for RustCrypto {
    fn verify(&self, alg: Algorithm, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        verify_inner(alg, public_key, message, signature).is_some()
    }

    fn signing_key(&self) -> Result<SigningKey, String> {
        let (kid, key) = self.issuer.as_ref().ok_or("no issuer key configured")?;
        let alg = match key {
            Issuer::Ed25519(_) => Algorithm::Ed25519,
            Issuer::Es256(_) => Algorithm::EcdsaP256Sha256Fixed,
        };
        Ok(SigningKey { kid: kid.clone(), alg })
    }

    fn sign(&self, kid: &str, message: &[u8]) -> Result<Vec<u8>, String> {
        let (own, key) = self.issuer.as_ref().ok_or("no issuer key configured")?;
        if own != kid {
            return Err(format!("issuer key `{kid}` does not sign now"));
        }
        Ok(match key {
            Issuer::Ed25519(k) => k.sign(message).to_bytes().to_vec(),
            Issuer::Es256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_bytes().to_vec()
            }
        })
    }

    fn public_keys(&self) -> String {
        let keys: Vec<serde_json::Value> = self.issuer.iter().map(|(kid, key)| key.jwk(kid)).collect();
        serde_json::json!({ "keys": keys }).to_string()
    }
}
