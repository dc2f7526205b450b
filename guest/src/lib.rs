//! The component adapter: exports the `policy-module` world over `writ-core`, and feeds core
//! the host's clock and crypto. No rule lives here.

#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]

mod convert;

/// Generated bindings: the only place with `unsafe` (the canonical ABI glue wit-bindgen writes).
#[allow(unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        world: "policy-module",
        path: "../wit",
    });
    use super::Component;
    export!(Component);
}

use bindings::exports::writ::agent::{attest, authorize, control, issue};
use bindings::writ;
use std::cell::RefCell;
use writ::agent::types::{Decision, Error, Identity, Intent};
use writ_core::crypto::{Crypto, RustCrypto};

/// Signature checks and issuer signing by the host's `crypto` import.
struct HostCrypto;

impl Crypto for HostCrypto {
    fn verify(&self, alg: writ_core::Algorithm, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        writ::agent::crypto::verify(convert::alg_to_wit(alg), public_key, message, signature)
    }
    fn sign(&self, message: &[u8]) -> Result<writ_core::crypto::Signature, String> {
        let s = writ::agent::crypto::sign(message)?;
        Ok(writ_core::crypto::Signature { kid: s.kid, alg: convert::alg_from_wit(s.alg), bytes: s.bytes })
    }
    fn public_keys(&self) -> String {
        writ::agent::crypto::public_keys()
    }
}

struct State {
    engine: writ_core::Engine,
    builtin: Option<RustCrypto>,
    audit: bool,
}

/// Entropy for core's hash seeds, from the host (std's `RandomState` reads WASI random).
fn seed() -> u64 {
    use std::hash::BuildHasher as _;
    std::hash::RandomState::new().hash_one(0x5772_6974u32)
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State {
        engine: writ_core::Engine::new(writ_core::Config { hash_seed: seed(), ..writ_core::Config::default() }),
        builtin: None,
        audit: true,
    });
}

fn with_state<R>(f: impl FnOnce(&mut writ_core::Engine, &dyn Crypto) -> R) -> R {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let State { engine, builtin, .. } = &mut *s;
        match builtin {
            Some(rc) => f(engine, rc),
            None => f(engine, &HostCrypto),
        }
    })
}

fn now() -> u64 {
    writ::agent::clock::now()
}

/// Hand an event to the host's audit sink, unless the host said it has none.
fn emit(event: impl FnOnce() -> writ::agent::audit::Event) {
    if STATE.with(|s| s.borrow().audit) {
        writ::agent::audit::emit(&event());
    }
}

fn audit_attest(proof: &str, result: &Result<writ_core::Identity, writ_core::Error>) {
    emit(|| {
        let (spiffe_id, allow, reasons) = match result {
            Ok(id) => (Some(id.spiffe_id.clone()), true, vec![proof.to_string()]),
            Err(e) => (None, false, vec![format!("{}: {}", e.kind(), e.message())]),
        };
        writ::agent::audit::Event {
            kind: "attest".into(),
            time: now(),
            spiffe_id,
            task_id: None,
            action: None,
            resource: None,
            allow,
            reasons,
            jti: None,
            act_chain: Vec::new(),
            detail: Some(proof.into()),
        }
    });
}

struct Component;

impl control::Guest for Component {
    fn set_bundle(trust_domain: String, bundle: Vec<u8>) -> Result<(), Error> {
        with_state(|e, _| e.set_bundle(&trust_domain, &bundle)).map_err(convert::error)
    }
    fn remove_bundle(trust_domain: String) -> bool {
        with_state(|e, _| e.remove_bundle(&trust_domain))
    }
    fn set_leeway(secs: u32) {
        with_state(|e, _| e.set_leeway(u64::from(secs)));
    }
    fn set_crypto_provider(provider: control::CryptoProvider) {
        STATE.with(|s| {
            s.borrow_mut().builtin = match provider {
                control::CryptoProvider::Host => None,
                control::CryptoProvider::Builtin => Some(RustCrypto::new()),
            }
        });
    }
    fn set_ttl_cap(secs: u32) {
        with_state(|e, _| e.set_ttl_cap(secs));
    }
    fn set_audit(enabled: bool) {
        STATE.with(|s| s.borrow_mut().audit = enabled);
    }
    fn set_policies(policies: String, schema: Option<String>, entities: Option<String>) -> Result<u32, Error> {
        with_state(|e, _| e.set_policies(&policies, schema.as_deref(), entities.as_deref())).map_err(convert::error)
    }
    fn jwks() -> String {
        HostCrypto.public_keys()
    }
}

impl attest::Guest for Component {
    fn x509_svid(chain: Vec<Vec<u8>>) -> Result<Identity, Error> {
        let at = now();
        let result = with_state(|e, c| e.attest_x509(&chain, at, c));
        audit_attest("x509-svid", &result);
        result.map(convert::identity_to_wit).map_err(convert::error)
    }
    fn jwt_svid(token: String, audience: String) -> Result<Identity, Error> {
        let at = now();
        let result = with_state(|e, c| e.attest_jwt(&token, &audience, at, c));
        audit_attest("jwt-svid", &result);
        result.map(convert::identity_to_wit).map_err(convert::error)
    }
}

impl authorize::Guest for Component {
    fn check(who: Identity, what: Intent) -> Decision {
        let at = now();
        let (who, what) = (convert::identity_from_wit(who), convert::intent_from_wit(what));
        let d = with_state(|e, _| e.check(&who, &what, at));
        // Every decision is audited (when the host listens).
        emit(|| writ::agent::audit::Event {
            kind: "authorize".into(),
            time: at,
            spiffe_id: Some(who.spiffe_id),
            task_id: Some(what.task_id),
            action: Some(what.action),
            resource: Some(what.resource),
            allow: d.allow,
            reasons: d.reasons.clone(),
            jti: None,
            act_chain: Vec::new(),
            detail: (!d.errors.is_empty()).then(|| d.errors.join("; ")),
        });
        convert::decision_to_wit(d)
    }
}

fn unimplemented<T>(what: &str) -> Result<T, Error> {
    Err(Error::Unimplemented(format!("{what} is not built yet")))
}

impl issue::Guest for Component {
    fn issue(_who: Identity, _task_id: String, _scope: Vec<Intent>, _ttl: u32, _aud: String) -> Result<issue::Grant, Error> {
        unimplemented("credential issuance")
    }
    fn delegate(_parent: String, _to: Identity, _scope: Vec<Intent>, _ttl: u32) -> Result<issue::Grant, Error> {
        unimplemented("delegation")
    }
    fn present(_token: String, _presenter: Identity, _what: Intent) -> Result<Decision, Error> {
        unimplemented("credential presentation")
    }
    fn end_task(_task_id: String) -> u32 {
        0
    }
    fn cut_off(_spiffe_id: String) -> u32 {
        0
    }
}

