//! Compact JWS signed with the issuer's key: Writ's credentials (`typ` `txntoken+jwt`) and
//! the revocation feed's pages (`writ-feed+jwt`). Header exactly `alg`, `kid`, `typ`; `alg`
//! EdDSA or ES256 and fitting the key; the key one of the issuer's (the provider's JWKS).

use crate::crypto::{Algorithm, Crypto};
use crate::error::{Error, Result};
use crate::jwk::{Jwk, JwtKey, KeyKind};
use crate::spiffe_id::clip;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The JWS `alg` name of an issuer algorithm; only EdDSA and ES256 sign.
fn issuer_alg(alg: Algorithm) -> Result<&'static str> {
    match alg {
        Algorithm::Ed25519 => Ok("EdDSA"),
        Algorithm::EcdsaP256Sha256Fixed => Ok("ES256"),
        other => Err(Error::Untrusted(format!("issuer keys sign with EdDSA or ES256, not {other:?}"))),
    }
}

/// `payload` signed with the issuer's current key, as a compact JWS of type `typ`.
pub(crate) fn sign(typ: &str, payload: &[u8], crypto: &dyn Crypto) -> Result<String> {
    let key = crypto.signing_key().map_err(Error::Untrusted)?;
    let header = serde_json::json!({ "alg": issuer_alg(key.alg)?, "kid": key.kid, "typ": typ });
    let mut token = URL_SAFE_NO_PAD.encode(header.to_string());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let signature = crypto.sign(&key.kid, token.as_bytes()).map_err(Error::Untrusted)?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

/// The payload of `token`, a compact JWS of type `typ` signed by one of the issuer's keys
/// (`what` names it in errors: "credential", "feed page"), at most `max_bytes` long.
pub(crate) fn verify(token: &str, typ: &str, what: &str, max_bytes: usize, crypto: &dyn Crypto) -> Result<Vec<u8>> {
    if token.len() > max_bytes {
        return Err(Error::Limit(format!("{what} is {} bytes, over the cap of {max_bytes}", token.len())));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Error::Malformed(format!("a {what} is a compact JWS of 3 parts")));
    };
    let decode = |name: &str, part: &str| {
        URL_SAFE_NO_PAD.decode(part).map_err(|e| Error::Malformed(format!("{what} {name} is not base64url: {e}")))
    };
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Header {
        alg: String,
        kid: String,
        typ: String,
    }
    let header: Header = serde_json::from_slice(&decode("header", h)?)
        .map_err(|e| Error::Malformed(format!("{what} header (alg, kid, typ and nothing else): {e}")))?;
    if header.typ != typ {
        return Err(Error::Untrusted(format!("{what} `typ` is `{}`, not `{typ}`", clip(&header.typ))));
    }
    let alg = match header.alg.as_str() {
        "EdDSA" => Algorithm::Ed25519,
        "ES256" => Algorithm::EcdsaP256Sha256Fixed,
        other => {
            return Err(Error::Untrusted(format!("{what} `alg` `{}` is not allowed (EdDSA, ES256)", clip(other))));
        }
    };
    let key = issuer_key(&crypto.public_keys(), &header.kid, what)?;
    let fits = matches!(
        (key.kind, alg),
        (KeyKind::Ed25519, Algorithm::Ed25519) | (KeyKind::EcP256, Algorithm::EcdsaP256Sha256Fixed)
    );
    if !fits || key.alg.as_deref().is_some_and(|a| a != header.alg) {
        return Err(Error::Untrusted(format!(
            "{what} `alg` `{}` does not fit issuer key `{}`",
            header.alg,
            clip(&header.kid)
        )));
    }
    let signature = decode("signature", s)?;
    let signing_input = &token.as_bytes()[..h.len() + 1 + p.len()];
    if !crypto.verify(alg, &key.public_key, signing_input, &signature) {
        return Err(Error::Untrusted(format!("{what} signature does not verify")));
    }
    decode("payload", p)
}

/// The issuer key `kid` from a JWKS document.
fn issuer_key(jwks: &str, kid: &str, what: &str) -> Result<JwtKey> {
    #[derive(Deserialize)]
    struct Set {
        keys: Vec<Jwk>,
    }
    let set: Set = serde_json::from_str(jwks).map_err(|e| Error::Malformed(format!("issuer JWKS: {e}")))?;
    let jwk = set
        .keys
        .iter()
        .find(|k| k.kid.as_deref() == Some(kid))
        .ok_or_else(|| Error::Untrusted(format!("{what} `kid` `{}` is not an issuer key", clip(kid))))?;
    JwtKey::from_jwk(jwk)
}
