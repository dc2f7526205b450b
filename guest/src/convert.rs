//! Conversions between the WIT types and writ-core's.

use crate::bindings::writ::agent::crypto::Algorithm as W;
use crate::bindings::writ::agent::types as wit;
use writ_core::Algorithm as C;

pub fn alg_to_wit(a: C) -> W {
    match a {
        C::EcdsaP256Sha256Der => W::EcdsaP256Sha256Der,
        C::EcdsaP256Sha256Fixed => W::EcdsaP256Sha256Fixed,
        C::EcdsaP384Sha384Der => W::EcdsaP384Sha384Der,
        C::EcdsaP384Sha384Fixed => W::EcdsaP384Sha384Fixed,
        C::EcdsaP521Sha512Fixed => W::EcdsaP521Sha512Fixed,
        C::Ed25519 => W::Ed25519,
        C::RsaPkcs1Sha256 => W::RsaPkcs1Sha256,
        C::RsaPkcs1Sha384 => W::RsaPkcs1Sha384,
        C::RsaPkcs1Sha512 => W::RsaPkcs1Sha512,
        C::RsaPssSha256 => W::RsaPssSha256,
        C::RsaPssSha384 => W::RsaPssSha384,
        C::RsaPssSha512 => W::RsaPssSha512,
    }
}

pub fn alg_from_wit(a: W) -> C {
    match a {
        W::EcdsaP256Sha256Der => C::EcdsaP256Sha256Der,
        W::EcdsaP256Sha256Fixed => C::EcdsaP256Sha256Fixed,
        W::EcdsaP384Sha384Der => C::EcdsaP384Sha384Der,
        W::EcdsaP384Sha384Fixed => C::EcdsaP384Sha384Fixed,
        W::EcdsaP521Sha512Fixed => C::EcdsaP521Sha512Fixed,
        W::Ed25519 => C::Ed25519,
        W::RsaPkcs1Sha256 => C::RsaPkcs1Sha256,
        W::RsaPkcs1Sha384 => C::RsaPkcs1Sha384,
        W::RsaPkcs1Sha512 => C::RsaPkcs1Sha512,
        W::RsaPssSha256 => C::RsaPssSha256,
        W::RsaPssSha384 => C::RsaPssSha384,
        W::RsaPssSha512 => C::RsaPssSha512,
    }
}

pub fn decision_to_wit(d: writ_core::Decision) -> wit::Decision {
    wit::Decision { allow: d.allow, reasons: d.reasons, errors: d.errors, max_ttl_secs: d.max_ttl_secs }
}

pub fn error(e: writ_core::Error) -> wit::Error {
    use writ_core::Error as E;
    match e {
        E::Malformed(m) => wit::Error::Malformed(m),
        E::Untrusted(m) => wit::Error::Untrusted(m),
        E::Expired(m) => wit::Error::Expired(m),
        E::NotYetValid(m) => wit::Error::NotYetValid(m),
        E::Policy(m) => wit::Error::Policy(m),
        E::Denied(d) => wit::Error::Denied(decision_to_wit(d)),
        E::Revoked(m) => wit::Error::Revoked(m),
        E::Limit(m) => wit::Error::Limit(m),
        // Unimplemented, and any kind added to core later, keeps its kind in the message.
        other => wit::Error::Unimplemented(other.message()),
    }
}

pub fn identity_to_wit(i: &writ_core::Identity) -> wit::Identity {
    wit::Identity {
        spiffe_id: i.spiffe_id.clone(),
        trust_domain: i.trust_domain.clone(),
        expires_at: i.expires_at,
        thumbprint: i.thumbprint.clone(),
        proof: match i.proof {
            writ_core::Proof::X509Svid => wit::Proof::X509Svid,
            writ_core::Proof::JwtSvid => wit::Proof::JwtSvid,
            writ_core::Proof::Asserted => wit::Proof::Asserted,
            writ_core::Proof::Oidc => wit::Proof::Oidc,
        },
        claims: i.claims.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

pub fn intent_from_wit(i: wit::Intent) -> writ_core::Intent {
    writ_core::Intent { action: i.action, resource: i.resource, task_id: i.task_id, context: i.context, input: i.input }
}

pub fn evaluation_from_wit(e: wit::Evaluation) -> writ_core::Evaluation {
    let r = |r: wit::EntityRef| writ_core::EntityRef { type_name: r.type_, id: r.id, properties: r.properties };
    writ_core::Evaluation {
        subject: r(e.subject),
        action: e.action,
        action_properties: e.action_properties,
        resource: r(e.resource),
        context: e.context,
    }
}
