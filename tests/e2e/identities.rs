//! Identities as the WIT passes them: `attested` handles only the component's `attest`
//! functions make, held per instance and established again (from what they were attested
//! from) on an instance that has none — under the settings and clock in force there.

use writ_host::{Error, Proof};
use writ_tests::NOW;
use writ_tests::pack::{identity, intent};
use writ_tests::pki::{KeyAlg, at, leaf_params};

const ALL: &str = r#"@id("all") permit(principal, action, resource);"#;
const BROWSER: &str = "spiffe://acme.example/agent/browser";

#[test]
fn one_attested_identity_decides_on_every_instance_and_after_every_reload() {
    let writ = writ_tests::attester::writ();
    writ.set_time(Some(NOW));
    writ.set_policies(ALL, None, None).unwrap();
    let who = writ.attest_x509(&writ_tests::pack_pki().chain3("/agent/browser", KeyAlg::P256)).unwrap();
    assert_eq!((who.spiffe_id.as_str(), who.proof), (BROWSER, Proof::X509Svid));
    let what = intent("read", r#"X::"y""#, "t", "");
    // Many threads at once: each instance without a handle for it establishes its own.
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                for _ in 0..50 {
                    assert!(writ.check(&who, &what).unwrap().allow);
                }
            });
        }
    });
    // A reload replaces every instance: the identity is established again on the new ones.
    writ.set_policies(r#"@id("again") permit(principal, action, resource);"#, None, None).unwrap();
    assert_eq!(writ.check(&who, &what).unwrap().reasons, ["again"]);
    // Another `Writ` (a fork: its own bundles) establishes it under its own trust, or not.
    let other = writ.fork();
    other.set_policies(ALL, None, None).unwrap();
    writ_tests::trust_pack_pki(&other);
    let d = other.check(&who, &what).unwrap();
    assert!(d.allow, "the fork trusts the pack PKI too: {d:?}");
    other.remove_bundle("acme.example").unwrap();
    let d = other.check(&who, &what).unwrap();
    assert_eq!((d.allow, d.reasons.as_slice()), (false, [writ_types::NOT_ATTESTED.to_string()].as_slice()));
    assert!(d.errors[0].starts_with("untrusted"), "{d:?}");
}

#[test]
fn an_identity_that_expires_after_attestation_is_refused_on_every_instance() {
    let writ = writ_tests::attester::writ();
    writ.set_time(Some(NOW));
    writ.set_policies(ALL, None, None).unwrap();
    writ_tests::open_pack_tasks(&writ, &["t"]);
    let pki = writ_tests::pack_pki();
    let mut params = leaf_params(BROWSER);
    params.not_after = at(NOW + 60);
    let who = writ.attest_x509(&[pki.intermediate.sign(&params, KeyAlg::P256), pki.intermediate.der.clone()]).unwrap();
    let what = intent("read", r#"X::"y""#, "t", "");
    assert!(writ.check(&who, &what).unwrap().allow);
    writ.set_time(Some(NOW + 61));
    // The instance holding it: denied before any policy.
    let d = writ.check(&who, &what).unwrap();
    assert_eq!((d.allow, d.reasons.as_slice()), (false, [writ_types::IDENTITY_EXPIRED.to_string()].as_slice()));
    // A fresh instance, which must establish it again: the same answer.
    writ.set_policies(ALL, None, None).unwrap();
    let d = writ.check(&who, &what).unwrap();
    assert_eq!((d.allow, d.reasons.as_slice()), (false, [writ_types::IDENTITY_EXPIRED.to_string()].as_slice()));
    // Credentials: expired, whichever instance answers.
    assert!(matches!(writ.issue(&who, "t", std::slice::from_ref(&what), 30, "api"), Err(Error::Expired(_))));
}

#[test]
fn an_asserted_identity_is_labelled_audited_and_never_holds_a_credential() {
    let (writ, events) = writ_tests::attester::audited_writ(NOW);
    writ.set_policies(ALL, None, None).unwrap();
    writ_tests::open_pack_tasks(&writ, &["t"]);
    events.lock().unwrap().clear();
    let who = writ.assert_identity(BROWSER, NOW + 60, "a test proxy").unwrap();
    assert_eq!((who.proof, who.thumbprint.as_str(), who.expires_at), (Proof::Asserted, "", NOW + 60));
    let ev = events.lock().unwrap().clone();
    assert_eq!((ev.len(), ev[0].kind.as_str(), ev[0].allow), (1, "attest", true), "{ev:?}");
    assert_eq!(ev[0].detail.as_deref(), Some("asserted by a test proxy"));
    let what = intent("read", r#"X::"y""#, "t", "");
    assert!(writ.check(&who, &what).unwrap().allow);
    // Credentials and tasks: refused, typed.
    let issued = writ.issue(&who, "t", std::slice::from_ref(&what), 30, "api");
    assert!(matches!(&issued, Err(Error::Untrusted(m)) if m.contains("asserted")), "{issued:?}");
    let opened = writ.open_task(&who, "mine", &[BROWSER.to_string()], "", NOW + 60);
    assert!(matches!(&opened, Err(Error::Untrusted(m)) if m.contains("asserted")), "{opened:?}");
    let broker = writ_tests::pack_broker(&writ);
    let g = writ.issue(&broker, "t", &[intent("read", r#"Dataset::"sales-summary""#, "", "")], 30, "api").unwrap();
    let what = intent("read", r#"Dataset::"sales-summary""#, "", "");
    let sales = [intent("read", r#"Dataset::"sales-summary""#, "", "")];
    let delegated = writ.delegate(&g.token, &broker, &who, &sales, 30);
    assert!(matches!(&delegated, Err(Error::Untrusted(m)) if m.contains("asserted")), "{delegated:?}");
    assert!(matches!(writ.present(&g.token, &who, &what, "api"), Err(Error::Untrusted(_))));
    // What cannot be asserted: typed errors, nothing held.
    assert!(matches!(writ.assert_identity("not a spiffe id", NOW + 60, "x"), Err(Error::Malformed(_))));
    assert!(matches!(writ.assert_identity(BROWSER, NOW - 1, "x"), Err(Error::Expired(_))));
    // The component holds what the host was told: read back through an instance.
    assert_eq!(writ.identity_in_component(&who).unwrap(), *who.identity());
    // Past its end, decisions about it deny.
    writ.set_time(Some(NOW + 61));
    assert_eq!(writ.check(&who, &what).unwrap().reasons, [writ_types::IDENTITY_EXPIRED]);
}

#[test]
fn handles_of_dropped_identities_are_let_go() {
    let writ = writ_tests::attester::writ();
    writ.set_time(Some(NOW));
    writ.set_policies(ALL, None, None).unwrap();
    let kept = writ_tests::asserted(&writ, &identity(BROWSER, NOW + 3600));
    let what = intent("read", r#"X::"y""#, "t", "");
    // More identities than an instance keeps handles for, each used once and dropped (and
    // more callers than any cache holds: memory stays bounded).
    for i in 0..20_000 {
        let who = writ_tests::asserted(&writ, &identity(&format!("spiffe://acme.example/agent/{i}"), NOW + 3600));
        let d = writ.check(&who, &what);
        assert!(d.as_ref().is_ok_and(|d| d.allow), "{i} ({} held): {d:?}", writ.held_identities());
    }
    let held = writ.held_identities();
    assert!(held <= 16_384, "{held} handles held");
    // One still held by the host keeps deciding (established again if it was let go).
    assert!(writ.check(&kept, &what).unwrap().allow);
}

#[test]
fn a_chain_attested_again_is_remembered_until_a_setting_or_its_expiry_ends_it() {
    let (writ, events) = writ_tests::attester::audited_writ(NOW);
    let pki = writ_tests::pack_pki();
    let mut params = leaf_params(BROWSER);
    params.not_after = at(NOW + 60);
    let chain = [pki.intermediate.sign(&params, KeyAlg::P256), pki.intermediate.der.clone()];
    let attests = || events.lock().unwrap().iter().filter(|e| e.kind == "attest").count();
    writ.attest_x509(&chain).unwrap();
    writ.attest_x509(&chain).unwrap();
    assert_eq!(attests(), 1, "the second is answered from memory");
    // A setting applied: attested again under it (here the same bundle: the same answer).
    writ_tests::trust_pack_pki(&writ);
    writ.attest_x509(&chain).unwrap();
    assert_eq!(attests(), 2);
    // Past the leaf's expiry, or back before the attestation, memory does not answer.
    writ.set_time(Some(NOW + 61));
    assert!(matches!(writ.attest_x509(&chain), Err(Error::Expired(_))));
    writ.set_time(Some(NOW - 7200));
    assert!(matches!(writ.attest_x509(&chain), Err(Error::NotYetValid(_))));
    // A removed bundle: refused at once.
    writ.set_time(Some(NOW));
    writ.attest_x509(&chain).unwrap();
    writ.remove_bundle("acme.example").unwrap();
    assert!(matches!(writ.attest_x509(&chain), Err(Error::Untrusted(_))));
}
