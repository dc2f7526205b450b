//! Trust bundle loading: formats, bad input, atomicity.

use writ_tests::jwt::{JwsAlg, Signer, spiffe_bundle};
use writ_tests::pki::{KeyAlg, Pki};
use writ_tests::{Attester, Component, Native};

fn both_set(td: &str, bundle: &[u8]) -> Result<(), String> {
    let n = Native::default().set_bundle(td, bundle);
    let c = Component::new().set_bundle(td, bundle);
    assert_eq!(n, c, "native and component disagree on bundle `{td}`");
    n
}

#[track_caller]
fn rejects(td: &str, bundle: &[u8], needle: &str) {
    let err = both_set(td, bundle).expect_err("bundle should be rejected");
    assert!(err.contains(needle), "`{err}` lacks `{needle}`");
}

#[test]
fn bad_bundles_are_typed_errors() {
    let pki = Pki::new("example.org", KeyAlg::P256);
    rejects("example.org", b"", "malformed: empty bundle");
    rejects("example.org", b"hello", "malformed: bundle is neither");
    rejects("example.org", b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n", "malformed");
    rejects(
        "example.org",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "malformed: no `CERTIFICATE`",
    );
    rejects("example.org", &[0x30, 0x82, 0xff], "malformed: bad DER");
    rejects("example.org", &[0x30, 0x03, 1, 2, 3], "malformed: bad authority");
    rejects("example.org", b"{\"keys\": 3}", "malformed: bad SPIFFE bundle JSON");
    rejects("example.org", b"{\"keys\": []}", "malformed: bundle holds no certificate and no key");
    rejects("example.org", br#"{"keys":[{"kty":"EC","use":"x509-svid","x5c":[]}]}"#, "exactly one `x5c`");
    rejects("example.org", br#"{"keys":[{"kty":"EC","use":"jwt-svid","crv":"P-256","x":"AA","y":"AA"}]}"#, "no `kid`");
    rejects(
        "example.org",
        br#"{"keys":[{"kty":"EC","use":"jwt-svid","kid":"a","crv":"P-256","x":"AA","y":"AA"}]}"#,
        "not 32 bytes",
    );
    rejects(
        "example.org",
        br#"{"keys":[{"kty":"oct","use":"jwt-svid","kid":"a","k":"AA"}]}"#,
        "unsupported key type `oct`",
    );
    let s = Signer::new("dup", JwsAlg::ES256);
    rejects("example.org", &spiffe_bundle(&[&s, &s], &[]), "duplicate `kid` `dup`");
    rejects("Example.org", &pki.bundle_pem(), "must be lowercase");
    rejects("spiffe://example.org", &pki.bundle_pem(), "not a bare trust domain");
    rejects("exa mple", &pki.bundle_pem(), "not a trust domain name");
    rejects("example.org", &vec![b'-'; 1024 * 1024 + 1], "limit");
    assert_eq!(both_set("example.org", &pki.bundle_pem()), Ok(()));
}

#[test]
fn a_bad_bundle_leaves_the_previous_one_in_force() {
    let pki = Pki::new("example.org", KeyAlg::P256);
    let chain = pki.chain3("/w", KeyAlg::P256);
    for a in [&mut Native::default() as &mut dyn Attester, &mut Component::new()] {
        a.set_bundle("example.org", &pki.bundle_pem()).unwrap();
        assert!(a.set_bundle("example.org", b"garbage").is_err());
        assert_eq!(a.x509(&chain, writ_tests::NOW).kind(), "ok", "{}", a.name());
    }
}

#[test]
fn removing_a_bundle_untrusts_its_domain() {
    let pki = Pki::new("example.org", KeyAlg::P256);
    let chain = pki.chain3("/w", KeyAlg::P256);
    let writ = writ_tests::attester::writ();
    writ.set_time(Some(writ_tests::NOW));
    writ.set_bundle("example.org", &pki.bundle_pem()).unwrap();
    let held = writ.attest_x509(&chain).unwrap();
    writ.set_policies("permit(principal, action, resource);", None, None).unwrap();
    let what = writ_tests::pack::intent("read", r#"Doc::"d""#, "t", "");
    assert!(writ.check(&held, &what).unwrap().allow);
    assert_eq!(writ.remove_bundle("example.org"), Ok(true));
    assert_eq!(writ.attest_x509(&chain).map(|_| ()).map_err(|e| e.kind()), Err("untrusted"));
    // An identity attested before is established again under the bundles in force: no more.
    let d = writ.check(&held, &what).unwrap();
    assert_eq!((d.allow, d.reasons.as_slice()), (false, [writ_types::NOT_ATTESTED.to_string()].as_slice()), "{d:?}");
    assert_eq!(writ.remove_bundle("example.org"), Ok(false));
}
