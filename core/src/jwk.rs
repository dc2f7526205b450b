//! JSON Web Keys, converted to the raw public-key form the [`Crypto`](crate::crypto::Crypto)
//! trait takes.

use crate::error::{Error, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use pkcs1::der::Encode as _;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: Option<String>,
    pub r#use: Option<String>,
    pub alg: Option<String>,
    pub crv: Option<String>,
    pub x: Option<String>,
    pub y: Option<String>,
    pub n: Option<String>,
    pub e: Option<String>,
    pub x5c: Option<Vec<String>>,
}

/// A JWK Set (`{"keys":[…]}`) as configured for approvers and OIDC issuers.
#[derive(Debug, Clone, Deserialize)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// What kind of key a JWT signing key is; it decides which `alg` values may use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    EcP521,
    Ed25519,
}

/// A JWT signing key of a trust domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtKey {
    pub kid: String,
    pub kind: KeyKind,
    /// Raw public key (EC `0x04‖x‖y`, RSA DER `RSAPublicKey`, Ed25519 32 bytes).
    pub public_key: Vec<u8>,
    /// The JWK's own `alg`, if it pins one.
    pub alg: Option<String>,
}

fn b64(field: &str, v: Option<&String>) -> Result<Vec<u8>> {
    let v = v.ok_or_else(|| Error::Malformed(format!("JWK is missing `{field}`")))?;
    URL_SAFE_NO_PAD.decode(v).map_err(|e| Error::Malformed(format!("JWK `{field}` is not base64url: {e}")))
}

impl JwtKey {
    pub fn from_jwk(jwk: &Jwk) -> Result<JwtKey> {
        let kid =
            jwk.kid.clone().filter(|k| !k.is_empty()).ok_or_else(|| Error::Malformed("JWK has no `kid`".into()))?;
        let (kind, public_key) = match jwk.kty.as_str() {
            "EC" => {
                let (kind, size) = match jwk.crv.as_deref() {
                    Some("P-256") => (KeyKind::EcP256, 32),
                    Some("P-384") => (KeyKind::EcP384, 48),
                    Some("P-521") => (KeyKind::EcP521, 66),
                    other => return Err(Error::Malformed(format!("unsupported EC curve `{}`", other.unwrap_or("")))),
                };
                let x = b64("x", jwk.x.as_ref())?;
                let y = b64("y", jwk.y.as_ref())?;
                if x.len() != size || y.len() != size {
                    return Err(Error::Malformed(format!("EC JWK `{kid}` coordinates are not {size} bytes")));
                }
                let mut pk = Vec::with_capacity(1 + 2 * size);
                pk.push(0x04);
                pk.extend_from_slice(&x);
                pk.extend_from_slice(&y);
                (kind, pk)
            }
            "RSA" => {
                let n = b64("n", jwk.n.as_ref())?;
                let e = b64("e", jwk.e.as_ref())?;
                let key = pkcs1::RsaPublicKey {
                    modulus: pkcs1::UintRef::new(&n).map_err(|e| Error::Malformed(format!("RSA JWK `n`: {e}")))?,
                    public_exponent: pkcs1::UintRef::new(&e)
                        .map_err(|e| Error::Malformed(format!("RSA JWK `e`: {e}")))?,
                };
                let der = key.to_der().map_err(|e| Error::Malformed(format!("RSA JWK `{kid}`: {e}")))?;
                (KeyKind::Rsa, der)
            }
            "OKP" if jwk.crv.as_deref() == Some("Ed25519") => {
                let x = b64("x", jwk.x.as_ref())?;
                if x.len() != 32 {
                    return Err(Error::Malformed(format!("Ed25519 JWK `{kid}` is not 32 bytes")));
                }
                (KeyKind::Ed25519, x)
            }
            other => return Err(Error::Malformed(format!("unsupported key type `{other}`"))),
        };
        Ok(JwtKey { kid, kind, public_key, alg: jwk.alg.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(v: serde_json::Value) -> Result<JwtKey> {
        JwtKey::from_jwk(&serde_json::from_value(v).map_err(|e| Error::Malformed(e.to_string()))?)
    }

    #[test]
    fn ec_keys_become_uncompressed_points() {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let y = URL_SAFE_NO_PAD.encode([2u8; 32]);
        let k = jwk(serde_json::json!({"kty":"EC","crv":"P-256","kid":"a","x":x,"y":y})).unwrap();
        assert_eq!(k.kind, KeyKind::EcP256);
        assert_eq!(k.public_key.len(), 65);
        assert_eq!(k.public_key[0], 4);
        assert_eq!(&k.public_key[1..33], &[1u8; 32]);
        let short = URL_SAFE_NO_PAD.encode([1u8; 31]);
        assert!(jwk(serde_json::json!({"kty":"EC","crv":"P-256","kid":"a","x":short,"y":y})).is_err());
        assert!(jwk(serde_json::json!({"kty":"EC","crv":"secp256k1","kid":"a","x":x,"y":y})).is_err());
    }

    #[test]
    fn rsa_keys_become_der_rsa_public_keys() {
        let n = URL_SAFE_NO_PAD.encode([0xc5u8; 256]);
        let k = jwk(serde_json::json!({"kty":"RSA","kid":"r","n":n,"e":"AQAB"})).unwrap();
        assert_eq!(k.kind, KeyKind::Rsa);
        // SEQUENCE { INTEGER n (with a leading 0 for the high bit), INTEGER 65537 }
        assert_eq!(&k.public_key[..4], &[0x30, 0x82, 0x01, 0x0a]);
        assert!(jwk(serde_json::json!({"kty":"RSA","kid":"r","n":"!","e":"AQAB"})).is_err());
        assert!(jwk(serde_json::json!({"kty":"RSA","n":n,"e":"AQAB"})).is_err(), "kid is required");
    }
}
