//! Proof that a caller holds the private key of the leaf certificate it presents, where no TLS
//! handshake proved it (the command line reads a certificate file, which anyone may have: a
//! certificate is public). The caller signs a challenge — domain-separated, bound to what it is
//! about to do (a credential and an intent), the time and a fresh nonce — with its key, and the
//! signature is verified with the leaf's public key. A stolen token plus the victim's public
//! certificate cannot produce it.

use crate::crypto::{Algorithm, Crypto};
use crate::error::{Error, Result};
use x509_parser::prelude::{FromDer as _, X509Certificate};

pub use writ_types::possession::{CONTEXT, challenge};

/// The algorithm and raw public key a leaf certificate's key signs with (ECDSA signatures
/// DER-encoded, as X.509 tools make them).
fn leaf_key(leaf_der: &[u8]) -> Result<(Algorithm, Vec<u8>)> {
    let (_, cert) = X509Certificate::from_der(leaf_der)
        .map_err(|e| Error::Malformed(format!("the leaf certificate does not parse: {e}")))?;
    let spki = cert.public_key();
    let key = spki.subject_public_key.data.to_vec();
    let oid = spki.algorithm.algorithm.to_id_string();
    let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok()).map(|o| o.to_id_string());
    let alg = match (oid.as_str(), curve.as_deref()) {
        ("1.2.840.10045.2.1", Some("1.2.840.10045.3.1.7")) => Algorithm::EcdsaP256Sha256Der,
        ("1.2.840.10045.2.1", Some("1.3.132.0.34")) => Algorithm::EcdsaP384Sha384Der,
        ("1.3.101.112", _) => Algorithm::Ed25519,
        ("1.2.840.113549.1.1.1", _) => Algorithm::RsaPkcs1Sha256,
        (other, c) => {
            return Err(Error::Untrusted(format!(
                "the leaf's key ({other}{}) cannot prove possession here",
                c.map(|c| format!(", curve {c}")).unwrap_or_default()
            )));
        }
    };
    Ok((alg, key))
}

/// Whether `signature` is the leaf key's signature over `challenge`.
pub fn verify(leaf_der: &[u8], challenge: &[u8], signature: &[u8], crypto: &dyn Crypto) -> Result<()> {
    if !challenge.starts_with(CONTEXT) {
        return Err(Error::Malformed("not a possession challenge".into()));
    }
    let (alg, key) = leaf_key(leaf_der)?;
    if crypto.verify(alg, &key, challenge, signature) {
        Ok(())
    } else {
        Err(Error::Untrusted("the caller did not prove it holds the private key of its certificate".into()))
    }
}
