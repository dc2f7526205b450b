//! The `crypto` import, natively: `ring` for every algorithm it has, the RustCrypto `p521`
//! crate for ES512 (ring has no P-521). The issuer's private key lives here, never in the
//! component.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self as sig, Ed25519KeyPair, KeyPair as _};
use sha2::{Digest as _, Sha256};
use std::sync::{Arc, RwLock};

/// Signature algorithms, as the WIT `crypto.algorithm` enum.
pub use crate::bindings::writ::agent::crypto::Algorithm;

/// The algorithm of an issuer key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IssuerAlg {
    /// Ed25519 (JWS `EdDSA`). Default: fast to verify even in pure Rust inside Wasm.
    #[default]
    EdDsa,
    /// ECDSA P-256 with SHA-256 (JWS `ES256`).
    Es256,
}

enum Pair {
    Ed25519(Ed25519KeyPair),
    Es256(sig::EcdsaKeyPair),
}

/// An issuer signing key. Its `kid` is the RFC 7638 JWK thumbprint.
pub struct IssuerKey {
    kid: String,
    pair: Pair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKey").field("kid", &self.kid).field("alg", &self.alg()).finish()
    }
}

impl IssuerKey {
    /// A fresh Ed25519 key from the system's randomness.
    pub fn generate() -> Result<IssuerKey, String> {
        Self::generate_for(IssuerAlg::EdDsa)
    }

    /// A fresh key of `alg` from the system's randomness.
    pub fn generate_for(alg: IssuerAlg) -> Result<IssuerKey, String> {
        let rng = SystemRandom::new();
        let pkcs8 = match alg {
            IssuerAlg::EdDsa => {
                Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| format!("issuer key generation failed: {e}"))?
            }
            IssuerAlg::Es256 => sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|e| format!("issuer key generation failed: {e}"))?,
        };
        Self::from_pkcs8(pkcs8.as_ref())
    }

    /// An Ed25519 or P-256 key from PKCS#8 DER.
    pub fn from_pkcs8(der: &[u8]) -> Result<IssuerKey, String> {
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
            let kid = thumbprint(&format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#));
            return Ok(IssuerKey { kid, pair: Pair::Ed25519(pair), pkcs8: der.to_vec() });
        }
        let rng = SystemRandom::new();
        let pair = sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
            .map_err(|e| format!("issuer key is neither Ed25519 nor P-256 PKCS#8: {e}"))?;
        let (x, y) = ec_xy(pair.public_key().as_ref());
        let kid = thumbprint(&format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#));
        Ok(IssuerKey { kid, pair: Pair::Es256(pair), pkcs8: der.to_vec() })
    }

    /// The key in `path` (PKCS#8 PEM), or — when the file does not exist — a new key of `alg`
    /// written there (mode 0600), so separate processes share one issuer.
    pub fn load_or_create(path: &std::path::Path, alg: IssuerAlg) -> Result<IssuerKey, String> {
        use rustls_pki_types::pem::PemObject as _;
        match std::fs::read(path) {
            Ok(bytes) => {
                let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(&bytes)
                    .map_err(|e| format!("{}: not a PKCS#8 PEM private key: {e}", path.display()))?;
                Self::from_pkcs8(der.secret_pkcs8_der()).map_err(|e| format!("{}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate_for(alg)?;
                key.write_pem(path)?;
                Ok(key)
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    fn write_pem(&self, path: &std::path::Path) -> Result<(), String> {
        use std::io::Write as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.pkcs8);
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        f.write_all(pem.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> IssuerAlg {
        match self.pair {
            Pair::Ed25519(_) => IssuerAlg::EdDsa,
            Pair::Es256(_) => IssuerAlg::Es256,
        }
    }

    fn wit_alg(&self) -> Algorithm {
        match self.pair {
            Pair::Ed25519(_) => Algorithm::Ed25519,
            Pair::Es256(_) => Algorithm::EcdsaP256Sha256Fixed,
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        match &self.pair {
            Pair::Ed25519(p) => Ok(p.sign(message).as_ref().to_vec()),
            Pair::Es256(p) => p
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|e| format!("ES256 signing failed: {e}")),
        }
    }

    /// The public key as a JWK (with `kid`, `alg` and `use`).
    pub fn jwk(&self) -> serde_json::Value {
        match &self.pair {
            Pair::Ed25519(p) => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": self.kid,
                "x": URL_SAFE_NO_PAD.encode(p.public_key().as_ref()),
            }),
            Pair::Es256(p) => {
                let (x, y) = ec_xy(p.public_key().as_ref());
                serde_json::json!({ "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid, "x": x, "y": y })
            }
        }
    }
}

/// base64url x and y of an uncompressed P-256 point.
fn ec_xy(point: &[u8]) -> (String, String) {
    let coords = point.get(1..).unwrap_or_default();
    let (x, y) = coords.split_at(coords.len() / 2);
    (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y))
}

/// RFC 7638 thumbprint of a canonical JWK.
fn thumbprint(canonical: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical))
}

struct Keys {
    current: Arc<IssuerKey>,
    /// Earlier keys and when each stops verifying.
    retired: Vec<(Arc<IssuerKey>, u64)>,
}

/// The host side of `crypto`: verification, and the issuer keys (the signing key plus keys
/// rotated out but still inside their overlap window).
pub struct HostCrypto {
    keys: RwLock<Keys>,
    /// When the next retired key stops verifying (`u64::MAX`: none pending).
    next_retirement: std::sync::atomic::AtomicU64,
}

impl HostCrypto {
    pub fn new(issuer: IssuerKey) -> Self {
        HostCrypto {
            keys: RwLock::new(Keys { current: Arc::new(issuer), retired: Vec::new() }),
            next_retirement: std::sync::atomic::AtomicU64::new(u64::MAX),
        }
    }

    fn keys(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn verify(&self, alg: Algorithm, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        verify(alg, public_key, message, signature)
    }

    pub fn signing_key(&self) -> (String, Algorithm) {
        let k = self.keys();
        (k.current.kid.clone(), k.current.wit_alg())
    }

    pub fn sign(&self, kid: &str, message: &[u8]) -> Result<Vec<u8>, String> {
        let key = self.keys().current.clone();
        if key.kid != kid {
            return Err(format!("issuer key `{kid}` no longer signs (rotated to `{}`)", key.kid));
        }
        key.sign(message)
    }

    /// The JWKS at `now`: the signing key and retired keys whose overlap has not ended.
    pub fn public_keys(&self, now: u64) -> String {
        self.public_keys_with(now, &[])
    }

    /// The JWKS at `now` with other issuers' published keys (`(kid, JWK text)`) after this
    /// one's own (a published copy of an own key is skipped).
    pub fn public_keys_with(&self, now: u64, published: &[(String, String)]) -> String {
        let k = self.keys();
        let own: Vec<&IssuerKey> = std::iter::once(&*k.current)
            .chain(k.retired.iter().filter(|(_, until)| *until > now).map(|(key, _)| &**key))
            .collect();
        let mut keys: Vec<String> = own.iter().map(|key| key.jwk().to_string()).collect();
        keys.extend(
            published.iter().filter(|(kid, _)| own.iter().all(|key| key.kid != *kid)).map(|(_, jwk)| jwk.clone()),
        );
        format!(r#"{{"keys":[{}]}}"#, keys.join(","))
    }

    /// The signing key's kid and JWK.
    pub fn current_jwk(&self) -> (String, serde_json::Value) {
        let k = self.keys();
        (k.current.kid.clone(), k.current.jwk())
    }

    /// Make `next` the signing key; the old one keeps verifying until `retire_at`. Returns
    /// the old key's kid and JWK.
    pub fn rotate(&self, next: IssuerKey, retire_at: u64, now: u64) -> (String, serde_json::Value) {
        let mut k = self.keys.write().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::replace(&mut k.current, Arc::new(next));
        let retired = (old.kid.clone(), old.jwk());
        k.retired.retain(|(_, until)| *until > now);
        k.retired.push((old, retire_at));
        self.next_retirement.fetch_min(retire_at, std::sync::atomic::Ordering::Relaxed);
        retired
    }

    /// True once, when a retired key's overlap has ended: the caller then drops every
    /// instance, so no verified-credential cache outlives the key that signed it. The clock
    /// is read only while a retirement is pending.
    pub fn retire_due(&self, now: impl FnOnce() -> u64) -> bool {
        use std::sync::atomic::Ordering;
        let next = self.next_retirement.load(Ordering::Relaxed);
        if next == u64::MAX {
            return false;
        }
        let now = now();
        if now < next {
            return false;
        }
        let mut k = self.keys.write().unwrap_or_else(|p| p.into_inner());
        k.retired.retain(|(_, until)| *until > now);
        let next = k.retired.iter().map(|(_, until)| *until).min().unwrap_or(u64::MAX);
        self.next_retirement.store(next, Ordering::Relaxed);
        true
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
