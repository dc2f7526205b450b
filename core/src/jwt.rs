//! JWT-SVID verification: compact JWS, an allow-listed `alg` matching the key's type, `kid`
//! found in the trust domain's bundle, `sub` a SPIFFE ID of that domain, `aud`, `exp`.

use crate::bundle::Bundle;
use crate::crypto::{Algorithm, Crypto};
use crate::error::{Error, Result};
use crate::identity::{Identity, Proof};
use crate::jwk::{JwtKey, KeyKind};
use crate::limits::MAX_TOKEN_BYTES;
use crate::spiffe_id::{self, clip};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// A token split and decoded, not yet trusted.
pub struct Unverified<'t> {
    pub alg: Algorithm,
    pub kid: String,
    pub claims: Map<String, Value>,
    pub signing_input: &'t [u8],
    pub signature: Vec<u8>,
}

fn decode_part(name: &str, part: &str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part).map_err(|e| Error::Malformed(format!("JWT {name} is not base64url: {e}")))
}

fn json_object(name: &str, bytes: &[u8]) -> Result<Map<String, Value>> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::Malformed(format!("JWT {name} is not a JSON object"))),
        Err(e) => Err(Error::Malformed(format!("JWT {name} is not JSON: {e}"))),
    }
}

/// The JWT-SVID `alg` allow-list: RS/PS/ES 256/384/512. `none`, HS*, EdDSA and anything else
/// are refused.
pub fn jwt_svid_alg(name: &str) -> Result<Algorithm> {
    Ok(match name {
        "RS256" => Algorithm::RsaPkcs1Sha256,
        "RS384" => Algorithm::RsaPkcs1Sha384,
        "RS512" => Algorithm::RsaPkcs1Sha512,
        "PS256" => Algorithm::RsaPssSha256,
        "PS384" => Algorithm::RsaPssSha384,
        "PS512" => Algorithm::RsaPssSha512,
        "ES256" => Algorithm::EcdsaP256Sha256Fixed,
        "ES384" => Algorithm::EcdsaP384Sha384Fixed,
        "ES512" => Algorithm::EcdsaP521Sha512Fixed,
        other => return Err(Error::Untrusted(format!("JWT-SVID `alg` `{}` is not allowed", clip(other)))),
    })
}

/// Whether a key of `kind` may verify `alg` (no algorithm confusion).
pub(crate) fn key_fits(kind: KeyKind, alg: Algorithm) -> bool {
    matches!(
        (kind, alg),
        (
            KeyKind::Rsa,
            Algorithm::RsaPkcs1Sha256
                | Algorithm::RsaPkcs1Sha384
                | Algorithm::RsaPkcs1Sha512
                | Algorithm::RsaPssSha256
                | Algorithm::RsaPssSha384
                | Algorithm::RsaPssSha512
        ) | (KeyKind::EcP256, Algorithm::EcdsaP256Sha256Fixed)
            | (KeyKind::EcP384, Algorithm::EcdsaP384Sha384Fixed)
            | (KeyKind::EcP521, Algorithm::EcdsaP521Sha512Fixed)
    )
}

/// Whether `key` may verify `alg`: `alg` fits the key's type and curve, and the key pins no
/// other `alg`.
pub(crate) fn key_admits(key: &JwtKey, alg: Algorithm) -> bool {
    key_fits(key.kind, alg) && key.alg.as_deref().is_none_or(|a| Some(a) == alg.jws_name())
}

/// The time and audience claims of a token of kind `what` (`JWT-SVID`, `OIDC token`) whose
/// signature verified: `exp` present and not past, `nbf` (if any) not ahead — both within
/// `leeway` —, and `aud` naming `audience`. Returns `exp`.
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    audience: &str,
    now: u64,
    leeway: u64,
    what: &str,
) -> Result<u64> {
    let exp = numeric_date(claims, "exp")?.ok_or_else(|| Error::Malformed(format!("{what} has no `exp`")))?;
    if now >= exp.saturating_add(leeway) {
        return Err(Error::Expired(format!("{what} expired at {exp}, now is {now} (leeway {leeway}s)")));
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now.saturating_add(leeway) < nbf
    {
        return Err(Error::NotYetValid(format!("{what} is valid from {nbf}, now is {now}")));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(audience)),
        Some(_) => return Err(Error::Malformed("JWT `aud` is not a string or array of strings".into())),
        None => return Err(Error::Untrusted(format!("{what} has no `aud`"))),
    };
    if !aud_ok {
        return Err(Error::Untrusted(format!("{what} `aud` does not contain `{}`", clip(audience))));
    }
    Ok(exp)
}

/// Split and decode; check the JWT-SVID header rules (only `alg`, `kid`, `typ`).
pub fn split(token: &str) -> Result<Unverified<'_>> {
    split_as(token, "JWT-SVID", |h| matches!(h, "alg" | "kid" | "typ"), jwt_svid_alg)
}

/// Split and decode a compact JWS of kind `what`: every header name must pass `header_ok`,
/// `alg` must be one `alg_of` allows, `kid` must be present, `typ` (if any) `JWT` or `JOSE`.
pub fn split_as<'t>(
    token: &'t str,
    what: &str,
    header_ok: impl Fn(&str) -> bool,
    alg_of: impl Fn(&str) -> Result<Algorithm>,
) -> Result<Unverified<'t>> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Error::Limit(format!("token is {} bytes, over the cap of {MAX_TOKEN_BYTES}", token.len())));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err(Error::Malformed(format!("a {what} is a compact JWS of 3 parts, this has {}", parts.len())));
    };
    let header = json_object("header", &decode_part("header", header)?)?;
    if let Some(k) = header.keys().find(|k| !header_ok(k)) {
        return Err(Error::Untrusted(format!("{what} header `{}` is not allowed", clip(k))));
    }
    let alg = match header.get("alg") {
        Some(Value::String(a)) => alg_of(a)?,
        Some(_) => return Err(Error::Malformed("JWT `alg` is not a string".into())),
        None => return Err(Error::Malformed("JWT header has no `alg`".into())),
    };
    match header.get("typ") {
        None => {}
        Some(Value::String(t)) if t == "JWT" || t == "JOSE" => {}
        Some(t) => {
            return Err(Error::Untrusted(format!("{what} `typ` {} is not `JWT` or `JOSE`", clip(&t.to_string()))));
        }
    }
    let kid = match header.get("kid") {
        Some(Value::String(k)) if !k.is_empty() => k.clone(),
        Some(Value::String(_)) | None => return Err(Error::Untrusted(format!("{what} header has no `kid`"))),
        Some(_) => return Err(Error::Malformed("JWT `kid` is not a string".into())),
    };
    let claims = json_object("payload", &decode_part("payload", payload)?)?;
    let signature = decode_part("signature", signature)?;
    let signing_input = &token.as_bytes()[..token.rfind('.').unwrap_or(0)];
    Ok(Unverified { alg, kid, claims, signing_input, signature })
}

/// The `sub` claim as a SPIFFE ID; returns (ID, trust domain).
pub fn subject(claims: &Map<String, Value>) -> Result<(String, String)> {
    match claims.get("sub") {
        Some(Value::String(s)) => {
            let (id, td) = spiffe_id::parse(s).map_err(|e| Error::Untrusted(format!("JWT-SVID `sub`: {e}")))?;
            if spiffe_id::path(&id).is_empty() {
                return Err(Error::Untrusted(format!("JWT-SVID `sub` `{id}` has no path")));
            }
            Ok((id, td))
        }
        Some(_) => Err(Error::Malformed("JWT `sub` is not a string".into())),
        None => Err(Error::Untrusted("JWT-SVID has no `sub`".into())),
    }
}

fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite() && *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or_else(|| Error::Malformed(format!("JWT `{name}` is not a valid NumericDate"))),
        Some(_) => Err(Error::Malformed(format!("JWT `{name}` is not a number"))),
    }
}

/// What a token is checked against besides its bundle.
pub struct Check<'a> {
    pub audience: &'a str,
    pub now: u64,
    /// Allowed clock skew, seconds.
    pub leeway: u64,
}

/// Verify `token` with `bundle` (the bundle of the `sub`'s trust domain).
pub fn verify(
    token: &str,
    tok: Unverified<'_>,
    id: (String, String),
    bundle: &Bundle,
    check: &Check<'_>,
    crypto: &dyn Crypto,
) -> Result<Identity> {
    let Check { audience, now, leeway } = *check;
    let key =
        bundle.jwt_keys.iter().find(|k| k.kid == tok.kid).ok_or_else(|| {
            Error::Untrusted(format!("`kid` `{}` is not in the bundle of `{}`", clip(&tok.kid), id.1))
        })?;
    if !key_fits(key.kind, tok.alg) {
        return Err(Error::Untrusted(format!(
            "`alg` `{}` does not fit key `{}` ({:?})",
            tok.alg.jws_name().unwrap_or("?"),
            clip(&key.kid),
            key.kind
        )));
    }
    if let Some(pinned) = &key.alg
        && Some(pinned.as_str()) != tok.alg.jws_name()
    {
        return Err(Error::Untrusted(format!("key `{}` is pinned to `alg` `{}`", clip(&key.kid), clip(pinned))));
    }
    if !crypto.verify(tok.alg, &key.public_key, tok.signing_input, &tok.signature) {
        return Err(Error::Untrusted("JWT-SVID signature does not verify".into()));
    }
    let exp = check_claims(&tok.claims, audience, now, leeway, "JWT-SVID")?;
    Ok(Identity {
        spiffe_id: id.0,
        trust_domain: id.1,
        expires_at: exp,
        thumbprint: crate::x509::thumbprint(token.as_bytes()),
        proof: Proof::JwtSvid,
        claims: Default::default(),
    })
}
