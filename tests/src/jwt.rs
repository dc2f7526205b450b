//! JWT-SVID fixtures: signing keys of every allowed algorithm, SPIFFE JWT bundles, tokens.

use crate::NOW;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, EcdsaKeyPair, KeyPair as _, RsaKeyPair};
use rsa::pkcs8::EncodePrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};

/// JWS algorithms the fixtures can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlg {
    ES256,
    ES384,
    ES512,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
}

pub const ALL_JWS_ALGS: [JwsAlg; 9] = [
    JwsAlg::ES256,
    JwsAlg::ES384,
    JwsAlg::ES512,
    JwsAlg::RS256,
    JwsAlg::RS384,
    JwsAlg::RS512,
    JwsAlg::PS256,
    JwsAlg::PS384,
    JwsAlg::PS512,
];

impl JwsAlg {
    pub fn name(self) -> &'static str {
        match self {
            JwsAlg::ES256 => "ES256",
            JwsAlg::ES384 => "ES384",
            JwsAlg::ES512 => "ES512",
            JwsAlg::RS256 => "RS256",
            JwsAlg::RS384 => "RS384",
            JwsAlg::RS512 => "RS512",
            JwsAlg::PS256 => "PS256",
            JwsAlg::PS384 => "PS384",
            JwsAlg::PS512 => "PS512",
        }
    }
}

enum Key {
    Ec(EcdsaKeyPair, &'static str),
    P521(p521::ecdsa::SigningKey),
    Rsa(RsaKeyPair, rsa::RsaPublicKey, &'static dyn sig::RsaEncoding),
}

/// A JWT-SVID signing key with its `kid`.
pub struct Signer {
    pub kid: String,
    pub alg: JwsAlg,
    key: Key,
}

impl Signer {
    pub fn new(kid: &str, alg: JwsAlg) -> Signer {
        let rng = SystemRandom::new();
        let ec = |a: &'static sig::EcdsaSigningAlgorithm, crv| {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(a, &rng).unwrap();
            Key::Ec(EcdsaKeyPair::from_pkcs8(a, pkcs8.as_ref(), &rng).unwrap(), crv)
        };
        let rsa = |enc: &'static dyn sig::RsaEncoding| {
            let k = crate::pki::rsa_key();
            let der = k.to_pkcs8_der().unwrap();
            Key::Rsa(RsaKeyPair::from_pkcs8(der.as_bytes()).unwrap(), k.to_public_key(), enc)
        };
        let key = match alg {
            JwsAlg::ES256 => ec(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, "P-256"),
            JwsAlg::ES384 => ec(&sig::ECDSA_P384_SHA384_FIXED_SIGNING, "P-384"),
            JwsAlg::ES512 => Key::P521(p521::ecdsa::SigningKey::random(&mut rand::rngs::OsRng)),
            JwsAlg::RS256 => rsa(&sig::RSA_PKCS1_SHA256),
            JwsAlg::RS384 => rsa(&sig::RSA_PKCS1_SHA384),
            JwsAlg::RS512 => rsa(&sig::RSA_PKCS1_SHA512),
            JwsAlg::PS256 => rsa(&sig::RSA_PSS_SHA256),
            JwsAlg::PS384 => rsa(&sig::RSA_PSS_SHA384),
            JwsAlg::PS512 => rsa(&sig::RSA_PSS_SHA512),
        };
        Signer { kid: kid.to_string(), alg, key }
    }

    /// The public key as a SPIFFE bundle JWK (`use: jwt-svid`).
    pub fn jwk(&self) -> Value {
        match &self.key {
            Key::Ec(k, crv) => {
                let pk = k.public_key().as_ref();
                let n = (pk.len() - 1) / 2;
                json!({"kty":"EC","crv":crv,"kid":self.kid,"use":"jwt-svid",
                       "x":URL_SAFE_NO_PAD.encode(&pk[1..1+n]),"y":URL_SAFE_NO_PAD.encode(&pk[1+n..])})
            }
            Key::P521(k) => {
                let pt = p521::ecdsa::VerifyingKey::from(k).to_encoded_point(false);
                let pk = pt.as_bytes();
                json!({"kty":"EC","crv":"P-521","kid":self.kid,"use":"jwt-svid",
                       "x":URL_SAFE_NO_PAD.encode(&pk[1..67]),"y":URL_SAFE_NO_PAD.encode(&pk[67..])})
            }
            Key::Rsa(_, public, _) => json!({"kty":"RSA","kid":self.kid,"use":"jwt-svid",
                "n":URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
                "e":URL_SAFE_NO_PAD.encode(public.e().to_bytes_be())}),
        }
    }

    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.key {
            Key::Ec(k, _) => k.sign(&rng, msg).unwrap().as_ref().to_vec(),
            Key::P521(k) => {
                use p521::ecdsa::signature::RandomizedSigner as _;
                let s: p521::ecdsa::Signature = k.sign_with_rng(&mut rand::rngs::OsRng, msg);
                s.to_bytes().to_vec()
            }
            Key::Rsa(k, _, enc) => {
                let mut out = vec![0; k.public().modulus_len()];
                k.sign(*enc, &rng, msg, &mut out).unwrap();
                out
            }
        }
    }

    /// A token with this key's `alg` and `kid` in the header.
    pub fn token(&self, claims: &Value) -> String {
        self.token_with_header(&json!({"alg": self.alg.name(), "kid": self.kid, "typ": "JWT"}), claims)
    }

    /// A token with any header, signed by this key.
    pub fn token_with_header(&self, header: &Value, claims: &Value) -> String {
        let input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let s = self.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(s))
    }
}

/// Standard JWT-SVID claims: `sub`, `aud`, `exp` 5 minutes after [`NOW`], `iat`.
pub fn claims(sub: &str, aud: &str) -> Value {
    json!({"sub": sub, "aud": [aud], "exp": NOW + 300, "iat": NOW - 10})
}

/// A SPIFFE bundle holding these JWT keys and, optionally, X.509 authorities.
pub fn spiffe_bundle(signers: &[&Signer], x509_authorities: &[&[u8]]) -> Vec<u8> {
    let mut keys: Vec<Value> = signers.iter().map(|s| s.jwk()).collect();
    for der in x509_authorities {
        keys.push(json!({"kty":"EC","use":"x509-svid","x5c":[STANDARD.encode(der)]}));
    }
    json!({"keys": keys, "spiffe_refresh_hint": 300}).to_string().into_bytes()
}

/// A token with any header and claims, and a signature of garbage (for header-rule cases).
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode([0u8; 64])
    )
}
