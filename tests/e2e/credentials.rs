//! Task credentials through the component, with identities from real X.509-SVID attestation
//! and the shipped policy pack: the whole story (attest, issue, present, delegate, end the
//! task), stolen and tampered tokens, cut-off, rotation, audit, and interop with a
//! third-party JWT library verifying with `jwks`.

use crate::intent;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use writ_host::{Attested, Error, Intent, IssuerAlg, IssuerKey, Writ};
use writ_tests::NOW;
use writ_tests::attester::{audited_writ, writ};
use writ_tests::pack;
use writ_tests::pki::KeyAlg;

const RECORD: &str = r#"PayrollRecord::"run-42/emp-7""#;
const OTHER_RECORD: &str = r#"PayrollRecord::"run-43/emp-7""#;
const SALES: &str = r#"Dataset::"sales-summary""#;

struct Agents {
    payroll: Attested,
    broker: Attested,
    browser: Attested,
    /// The payroll agent again, with another certificate (another key).
    payroll_again: Attested,
}

fn setup(writ: &Writ) -> Agents {
    writ.set_time(Some(NOW));
    let pki = writ_tests::pack_pki();
    writ.set_bundle("acme.example", &pki.bundle_pem()).unwrap();
    writ.set_policies(&pack::policies(), Some(&pack::schema()), Some(&pack::entities())).unwrap();
    writ_tests::open_pack_tasks(writ, &["run-42", "run-44", "pipeline-1", "p"]);
    let attest = |path: &str| writ.attest_x509(&pki.chain3(path, KeyAlg::P256)).unwrap();
    Agents {
        payroll: attest("/agent/payroll"),
        broker: attest("/agent/broker"),
        browser: attest("/agent/browser"),
        payroll_again: attest("/agent/payroll"),
    }
}

fn claims(token: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

#[test]
fn attest_issue_use_delegate_and_lose_it_all_at_task_end() {
    let (writ, events) = audited_writ(NOW);
    let a = setup(&writ);
    // Payroll: a credential for one record of its run; the pack's @ttl (900) caps the life.
    let g = writ.issue(&a.payroll, "run-42", &[intent("read", RECORD)], 3600, "payroll-api").unwrap();
    assert_eq!(g.expires_at, NOW + 900);
    let c = claims(&g.token);
    assert_eq!(c["sub"], a.payroll.spiffe_id);
    assert_eq!(c["txn"], "run-42");
    assert_eq!(c["cnf"]["x5t#S256"], a.payroll.thumbprint);
    assert_eq!(c["scope"][0]["resource"], RECORD);
    let d = writ.present(&g.token, &a.payroll, &intent("read", RECORD), "payroll-api").unwrap();
    assert!(d.allow, "{d:?}");
    assert_eq!(d.reasons, vec!["payroll-read-in-task"]);
    // Not another run's record, not at another audience, not by another key or agent.
    assert!(!writ.present(&g.token, &a.payroll, &intent("read", OTHER_RECORD), "payroll-api").unwrap().allow);
    assert!(matches!(
        writ.present(&g.token, &a.payroll, &intent("read", RECORD), "other-api"),
        Err(Error::Untrusted(_))
    ));
    assert!(matches!(
        writ.present(&g.token, &a.payroll_again, &intent("read", RECORD), "payroll-api"),
        Err(Error::Untrusted(_))
    ));
    assert!(matches!(
        writ.present(&g.token, &a.browser, &intent("read", RECORD), "payroll-api"),
        Err(Error::Untrusted(_))
    ));
    // Issuing for an intent policy refuses names it.
    let Err(Error::Denied(denied)) =
        writ.issue(&a.payroll, "run-42", &[intent("read", OTHER_RECORD)], 60, "payroll-api")
    else {
        panic!()
    };
    assert!(denied.errors[0].contains("run-43/emp-7"), "{denied:?}");

    // Broker pipeline: the broker's credential, a narrower one delegated to the browser agent.
    let broker =
        writ.issue(&a.broker, "pipeline-1", &[intent("read", SALES), intent("send", SALES)], 600, "bi").unwrap();
    let sub = writ.delegate(&broker.token, &a.broker, &a.browser, &[intent("read", SALES)], 600).unwrap();
    let sc = claims(&sub.token);
    assert_eq!(sc["act"]["sub"], a.browser.spiffe_id);
    assert_eq!(sc["sub"], a.broker.spiffe_id);
    assert!(sub.expires_at <= broker.expires_at);
    assert!(writ.present(&sub.token, &a.browser, &intent("read", SALES), "bi").unwrap().allow);
    assert!(!writ.present(&sub.token, &a.browser, &intent("send", SALES), "bi").unwrap().allow, "not delegated");
    let widen = writ.delegate(&sub.token, &a.browser, &a.browser, &[intent("send", SALES)], 60);
    assert!(matches!(widen, Err(Error::Denied(_))), "{widen:?}");

    // The pipeline ends: both credentials die; the payroll task lives on.
    assert_eq!(writ.end_task("pipeline-1").unwrap(), 2);
    assert!(matches!(writ.present(&broker.token, &a.broker, &intent("read", SALES), "bi"), Err(Error::Revoked(_))));
    assert!(matches!(writ.present(&sub.token, &a.browser, &intent("read", SALES), "bi"), Err(Error::Revoked(_))));
    assert!(writ.present(&g.token, &a.payroll, &intent("read", RECORD), "payroll-api").unwrap().allow);
    // Time passes: the payroll credential expires.
    writ.set_time(Some(NOW + 900));
    assert!(matches!(
        writ.present(&g.token, &a.payroll, &intent("read", RECORD), "payroll-api"),
        Err(Error::Expired(_))
    ));

    let events = events.lock().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    for k in ["issue", "present", "delegate", "revoke"] {
        assert!(kinds.contains(&k), "no `{k}` event in {kinds:?}");
    }
    let delegated = events.iter().find(|e| e.kind == "delegate" && e.allow).unwrap();
    assert_eq!(delegated.act_chain, vec![a.browser.spiffe_id.clone(), a.broker.spiffe_id.clone()]);
    assert_eq!(delegated.jti.as_deref(), sc["jti"].as_str());
    assert_eq!(delegated.task_id.as_deref(), Some("pipeline-1"));
}

#[test]
fn revocation_reaches_every_instance() {
    let writ = writ();
    let a = setup(&writ);
    let g = writ.issue(&a.payroll, "run-42", &[intent("read", RECORD)], 300, "api").unwrap();
    // Many threads hold instances; a cut-off through one is seen by all the others.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| assert!(writ.present(&g.token, &a.payroll, &intent("read", RECORD), "api").unwrap().allow));
        }
    });
    assert_eq!(writ.cut_off(&a.payroll.spiffe_id).unwrap(), 1);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                assert!(matches!(
                    writ.present(&g.token, &a.payroll, &intent("read", RECORD), "api"),
                    Err(Error::Revoked(_))
                ))
            });
        }
    });
    assert!(matches!(writ.issue(&a.payroll, "run-44", &[intent("read", RECORD)], 60, "api"), Err(Error::Revoked(_))));
}

#[test]
fn rotated_keys_overlap_then_retire() {
    let writ = Writ::builder().time(NOW).issuer(IssuerKey::generate_for(IssuerAlg::Es256).unwrap()).build().unwrap();
    let a = setup(&writ);
    let old = writ.issue(&a.payroll, "run-42", &[intent("read", RECORD)], 300, "api").unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(old.token.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    // Verified once: now in the instance's credential cache.
    assert!(writ.present(&old.token, &a.payroll, &intent("read", RECORD), "api").unwrap().allow);
    // Rotate with an overlap shorter than the old credential's life (a misconfiguration, to
    // show the retirement bites): both keys verify until it ends.
    writ.rotate_issuer(IssuerKey::generate().unwrap(), 100).unwrap();
    let jwks: serde_json::Value = serde_json::from_str(&writ.jwks().unwrap()).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "both keys during the overlap");
    let new = writ.issue(&a.payroll, "run-42", &[intent("read", RECORD)], 300, "api").unwrap();
    assert_ne!(
        header["kid"],
        serde_json::from_slice::<serde_json::Value>(
            &URL_SAFE_NO_PAD.decode(new.token.split('.').next().unwrap()).unwrap()
        )
        .unwrap()["kid"]
    );
    for g in [&old, &new] {
        assert!(writ.present(&g.token, &a.payroll, &intent("read", RECORD), "api").unwrap().allow);
    }
    // After the overlap only the new key is published, and the old key's credential — though
    // not expired and cached as verified — no longer verifies.
    writ.set_time(Some(NOW + 101));
    let jwks: serde_json::Value = serde_json::from_str(&writ.jwks().unwrap()).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert!(matches!(writ.present(&old.token, &a.payroll, &intent("read", RECORD), "api"), Err(Error::Untrusted(_))));
    assert!(writ.present(&new.token, &a.payroll, &intent("read", RECORD), "api").unwrap().allow);
}

#[test]
fn bad_tokens_are_typed_errors_through_the_component() {
    let writ = writ();
    let a = setup(&writ);
    let g = writ.issue(&a.payroll, "run-42", &[intent("read", RECORD)], 300, "api").unwrap();
    let r = intent("read", RECORD);
    let (h, rest) = g.token.split_once('.').unwrap();
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"x","typ":"txntoken+jwt"}"#);
    let mut flipped = g.token.clone().into_bytes();
    let mid = h.len() + rest.len() / 3;
    flipped[mid] = if flipped[mid] == b'A' { b'B' } else { b'A' };
    for (name, token) in [
        ("empty", String::new()),
        ("garbage", "not.a.token".to_string()),
        ("alg none", format!("{none_header}.{rest}")),
        ("truncated", g.token[..g.token.len() - 10].to_string()),
        ("flipped", String::from_utf8(flipped).unwrap()),
        ("huge", "x".repeat(1 << 20)),
    ] {
        let e = writ.present(&token, &a.payroll, &r, "api").expect_err(name);
        assert!(matches!(e, Error::Malformed(_) | Error::Untrusted(_) | Error::Limit(_)), "{name}: {e:?}");
    }
    // The instance survived all of it.
    assert!(writ.present(&g.token, &a.payroll, &r, "api").unwrap().allow);
}

/// The `jsonwebtoken` crate verifies Writ's credentials with keys from `writ jwks`.
#[test]
fn a_third_party_jwt_library_verifies_the_credentials() {
    for alg in [IssuerAlg::EdDsa, IssuerAlg::Es256] {
        let writ = Writ::builder().time(NOW).issuer(IssuerKey::generate_for(alg).unwrap()).build().unwrap();
        let a = setup(&writ);
        let g = writ.issue(&a.payroll, "run-42", &[intent("read", RECORD)], 300, "payroll-api").unwrap();
        let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&writ.jwks().unwrap()).unwrap();
        let header = jsonwebtoken::decode_header(&g.token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("txntoken+jwt"));
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.set_audience(&["payroll-api"]);
        v.set_issuer(&["writ"]);
        // The credential is minted at the simulated NOW; check expiry against it, not the wall clock.
        v.validate_exp = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(&g.token, &key, &v).unwrap();
        assert_eq!(data.claims["sub"], a.payroll.spiffe_id);
        assert_eq!(data.claims["exp"], NOW + 300);
        // Tampered: the library refuses it too.
        let mut parts: Vec<&str> = g.token.split('.').collect();
        let forged = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&serde_json::json!({"sub": "spiffe://acme.example/agent/evil"})).unwrap());
        parts[1] = &forged;
        assert!(jsonwebtoken::decode::<serde_json::Value>(&parts.join("."), &key, &v).is_err());
    }
}

/// A state store over memory whose writes can be made to fail, and into which an entry this
/// build cannot read can be put.
struct Faulty {
    inner: writ_host::state::Memory,
    fail: std::sync::atomic::AtomicBool,
}

impl writ_host::state::StateStore for Faulty {
    fn append_revocation(&self, data: &str, until: u64) -> Result<(), writ_host::state::StateError> {
        if self.fail.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(writ_host::state::StateError("disk full".into()));
        }
        self.inner.append_revocation(data, until)
    }
    fn revocations_since(&self, seq: u64) -> Result<Vec<(u64, String)>, writ_host::state::StateError> {
        self.inner.revocations_since(seq)
    }
    fn register_grant(&self, data: &str, until: u64, keys: &[String]) -> Result<(), writ_host::state::StateError> {
        if self.fail.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(writ_host::state::StateError("disk full".into()));
        }
        self.inner.register_grant(data, until, keys)
    }
    fn grants(&self, key: &str, now: u64) -> Result<Vec<String>, writ_host::state::StateError> {
        self.inner.grants(key, now)
    }
    fn last_seq(&self) -> Result<u64, writ_host::state::StateError> {
        self.inner.last_seq()
    }
    fn summary(&self) -> Result<writ_host::state::Summary, writ_host::state::StateError> {
        self.inner.summary()
    }
    fn location(&self) -> String {
        "faulty".into()
    }
    fn publish_key(&self, kid: &str, jwk: &serde_json::Value, until: u64) -> Result<(), writ_host::state::StateError> {
        self.inner.publish_key(kid, jwk, until)
    }
    fn published_keys(&self, now: u64) -> Result<Vec<(String, String)>, writ_host::state::StateError> {
        self.inner.published_keys(now)
    }
}

#[test]
fn state_failures_fail_the_operation_and_unreadable_revocations_refuse_everything() {
    use std::sync::atomic::Ordering;
    let store = std::sync::Arc::new(Faulty { inner: writ_host::state::Memory::new(), fail: false.into() });
    let writ = Writ::builder().time(NOW).state_store(store.clone()).build().unwrap();
    let a = setup(&writ);
    let g = writ.issue(&a.payroll, "run-42", &[intent("read", RECORD)], 300, "api").unwrap();
    // A revocation that cannot be stored is not acknowledged, and not half-made: the
    // credential still works, and the same revocation succeeds once the store does.
    store.fail.store(true, Ordering::Relaxed);
    let failed = writ.end_task("run-42");
    assert!(matches!(&failed, Err(Error::Unavailable(m)) if m.contains("disk full")), "{failed:?}");
    // Issuing cannot register its grant: refused too (a grant the ledger does not know could
    // not be counted or found by a later revocation).
    assert!(matches!(
        writ.issue(&a.payroll, "run-42", &[intent("read", RECORD)], 300, "api"),
        Err(Error::Unavailable(_))
    ));
    assert_eq!(writ.state_errors(), 2, "both failures counted for operators");
    store.fail.store(false, Ordering::Relaxed);
    assert!(writ.present(&g.token, &a.payroll, &intent("read", RECORD), "api").unwrap().allow);
    assert_eq!(writ.end_task("run-42").unwrap(), 1);
    assert!(matches!(writ.present(&g.token, &a.payroll, &intent("read", RECORD), "api"), Err(Error::Revoked(_))));

    // A revocation entry this build cannot read (damaged, or from a newer Writ): what it
    // revokes is unknown, so every credential is refused rather than the entry skipped.
    let other = writ.issue(&a.broker, "pipeline-1", &[intent("read", SALES)], 300, "bi").unwrap();
    assert!(writ.present(&other.token, &a.broker, &intent("read", SALES), "bi").unwrap().allow);
    writ_host::state::StateStore::append_revocation(&store.inner, r#"{"event":"something-new"}"#, NOW + 600).unwrap();
    let refused = writ.present(&other.token, &a.broker, &intent("read", SALES), "bi");
    assert!(matches!(&refused, Err(Error::Revoked(m)) if m.contains("cannot read")), "{refused:?}");
}

#[test]
fn a_cut_off_agent_is_denied_on_every_path_until_restored() {
    let writ = writ();
    let a = setup(&writ);
    let read = || intent("read", RECORD);
    let in_task = || Intent { task_id: "run-42".into(), ..read() };
    let held = writ.issue(&a.payroll, "run-42", &[read()], 300, "api").unwrap();
    let evaluation = writ_host::Evaluation {
        subject: writ_host::EntityRef {
            type_name: "Agent".into(),
            id: a.payroll.spiffe_id.clone(),
            properties: r#"{"trust_domain":"acme.example","path":"/agent/payroll"}"#.into(),
        },
        action: "read".into(),
        action_properties: String::new(),
        resource: writ_host::EntityRef {
            type_name: "PayrollRecord".into(),
            id: "run-42/emp-7".into(),
            properties: String::new(),
        },
        context: r#"{"task":"run-42"}"#.into(),
    };
    let allowed_before = writ.evaluate(&evaluation).unwrap().allow;
    assert!(writ.check(&a.payroll, &in_task()).unwrap().allow);

    assert_eq!(writ.cut_off(&a.payroll.spiffe_id).unwrap(), 1);
    // Plain decisions: denied before any policy, naming the cut-off.
    let d = writ.check(&a.payroll, &in_task()).unwrap();
    assert_eq!((d.allow, d.reasons.as_slice()), (false, ["writ:cut-off".to_string()].as_slice()), "{d:?}");
    let d = writ.evaluate(&evaluation).unwrap();
    assert_eq!((d.allow, d.reasons.as_slice()), (false, ["writ:cut-off".to_string()].as_slice()), "{d:?}");
    // Credentials: held ones refused, new ones refused — long after the lifetime cap, too
    // (the cut-off holds until restored, not until its credentials expire).
    assert!(matches!(writ.present(&held.token, &a.payroll, &read(), "api"), Err(Error::Revoked(_))));
    writ.set_time(Some(NOW + 3 * 86_400));
    // (An identity still valid then: the refusal must be the cut-off's.)
    let renewed = {
        let pki = writ_tests::pack_pki();
        let mut params = writ_tests::pki::leaf_params(&a.payroll.spiffe_id);
        params.not_after = writ_tests::pki::at(NOW + 4 * 86_400);
        writ.attest_x509(&[pki.intermediate.sign(&params, KeyAlg::P256), pki.intermediate.der.clone()]).unwrap()
    };
    let late = writ.issue(&renewed, "run-42", &[read()], 60, "api");
    assert!(matches!(&late, Err(Error::Revoked(m)) if m.contains("cut off")), "{late:?}");
    assert_eq!(writ.check(&renewed, &in_task()).unwrap().reasons, ["writ:cut-off"]);
    writ.set_time(Some(NOW + 20));
    // Other agents are untouched.
    assert!(writ.check(&a.broker, &Intent { task_id: "pipeline-1".into(), ..intent("read", SALES) }).unwrap().allow);

    // Restored: decisions and new credentials again; what was issued before stays revoked.
    assert!(writ.restore(&a.payroll.spiffe_id).unwrap());
    assert!(!writ.restore(&a.payroll.spiffe_id).unwrap(), "not cut off any more");
    assert!(writ.check(&a.payroll, &in_task()).unwrap().allow);
    assert_eq!(writ.evaluate(&evaluation).unwrap().allow, allowed_before);
    let fresh = writ.issue(&a.payroll, "run-42", &[read()], 60, "api").unwrap();
    assert!(writ.present(&fresh.token, &a.payroll, &read(), "api").unwrap().allow);
    assert!(matches!(writ.present(&held.token, &a.payroll, &read(), "api"), Err(Error::Revoked(_))));
}
