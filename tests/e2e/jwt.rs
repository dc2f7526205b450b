//! JWT-SVID rules: every allowed algorithm verifies; each forbidden alg and each claim rule
//! fails; run natively and through the component.

use crate::{assert_err, both};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use writ_tests::jwt::{ALL_JWS_ALGS, JwsAlg, Signer, claims, spiffe_bundle, unsigned};
use writ_tests::{NOW, Outcome};

const TD: &str = "example.org";
const SUB: &str = "spiffe://example.org/payroll";
const AUD: &str = "writ";

fn run(bundles: &[(&str, Vec<u8>)], token: &str, aud: &str, now: u64, leeway: u32) -> Outcome {
    both(|a| {
        for (td, b) in bundles {
            a.set_bundle(td, b).unwrap();
        }
        a.set_leeway(leeway);
        a.jwt(token, aud, now)
    })
}

#[test]
fn every_allowed_algorithm_verifies() {
    for alg in ALL_JWS_ALGS {
        let s = Signer::new("k1", alg);
        let token = s.token(&claims(SUB, AUD));
        let out = run(&[(TD, spiffe_bundle(&[&s], &[]))], &token, AUD, NOW, 0);
        match out {
            Outcome::Ok { spiffe_id, trust_domain, expires_at, proof, .. } => {
                assert_eq!(
                    (spiffe_id.as_str(), trust_domain.as_str(), expires_at, proof.as_str()),
                    (SUB, TD, NOW + 300, "jwt-svid"),
                    "{alg:?}"
                );
            }
            other => panic!("{alg:?}: {other:?}"),
        }
    }
}

#[test]
fn forbidden_algorithms_and_header_rules() {
    let es = Signer::new("ec", JwsAlg::ES256);
    let es384 = Signer::new("ec384", JwsAlg::ES384);
    let rs = Signer::new("rsa", JwsAlg::RS256);
    let b = [(TD, spiffe_bundle(&[&es, &es384, &rs], &[]))];
    let c = claims(SUB, AUD);
    let case = |name: &str, token: String, kind: &str, needle: &str| {
        assert_err(name, &run(&b, &token, AUD, NOW, 0), kind, needle);
    };
    case("alg_none", unsigned(&json!({"alg":"none","kid":"ec"}), &c), "untrusted", "`none` is not allowed");
    let no_sig = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg":"none","kid":"ec"}).to_string()),
        URL_SAFE_NO_PAD.encode(c.to_string())
    );
    case("alg_none_empty_signature", no_sig, "untrusted", "`none` is not allowed");
    case("alg_hs256", unsigned(&json!({"alg":"HS256","kid":"ec"}), &c), "untrusted", "`HS256` is not allowed");
    case("alg_eddsa", unsigned(&json!({"alg":"EdDSA","kid":"ec"}), &c), "untrusted", "`EdDSA` is not allowed");
    case("alg_missing", unsigned(&json!({"kid":"ec"}), &c), "malformed", "no `alg`");
    // Algorithm confusion: an RSA alg naming an EC key, an EC alg naming a key of another curve.
    case(
        "rs256_with_ec_key",
        rs.token_with_header(&json!({"alg":"RS256","kid":"ec"}), &c),
        "untrusted",
        "does not fit",
    );
    case(
        "es256_with_p384_key",
        es.token_with_header(&json!({"alg":"ES256","kid":"ec384"}), &c),
        "untrusted",
        "does not fit",
    );
    case(
        "es256_with_rsa_key",
        es.token_with_header(&json!({"alg":"ES256","kid":"rsa"}), &c),
        "untrusted",
        "does not fit",
    );
    case(
        "typ_other",
        es.token_with_header(&json!({"alg":"ES256","kid":"ec","typ":"at+jwt"}), &c),
        "untrusted",
        "`typ`",
    );
    case(
        "extra_header_jku",
        es.token_with_header(&json!({"alg":"ES256","kid":"ec","jku":"https://evil"}), &c),
        "untrusted",
        "`jku` is not allowed",
    );
    case("kid_missing", es.token_with_header(&json!({"alg":"ES256"}), &c), "untrusted", "no `kid`");
    case(
        "kid_unknown",
        es.token_with_header(&json!({"alg":"ES256","kid":"nope"}), &c),
        "untrusted",
        "`kid` `nope` is not in the bundle",
    );
    // typ JOSE and no typ at all are accepted.
    assert_eq!(
        run(&b, &es.token_with_header(&json!({"alg":"ES256","kid":"ec","typ":"JOSE"}), &c), AUD, NOW, 0).kind(),
        "ok"
    );
    assert_eq!(run(&b, &es.token_with_header(&json!({"alg":"ES256","kid":"ec"}), &c), AUD, NOW, 0).kind(), "ok");
}

#[test]
fn claim_rules() {
    let s = Signer::new("k", JwsAlg::ES256);
    let other = Signer::new("o", JwsAlg::ES256);
    let b = [(TD, spiffe_bundle(&[&s], &[])), ("other.org", spiffe_bundle(&[&other], &[]))];
    let case = |name: &str, claims: serde_json::Value, kind: &str, needle: &str| {
        assert_err(name, &run(&b, &s.token(&claims), AUD, NOW, 0), kind, needle);
    };
    case(
        "sub_other_domain_key_not_there",
        claims("spiffe://other.org/x", AUD),
        "untrusted",
        "not in the bundle of `other.org`",
    );
    case(
        "sub_unknown_domain",
        claims("spiffe://nowhere.org/x", AUD),
        "untrusted",
        "no bundle for trust domain `nowhere.org`",
    );
    case("sub_not_spiffe", claims("payroll", AUD), "untrusted", "not a SPIFFE ID");
    case("sub_without_path", claims("spiffe://example.org", AUD), "untrusted", "has no path");
    case("sub_missing", json!({"aud": AUD, "exp": NOW + 60}), "untrusted", "no `sub`");
    case("aud_mismatch", claims(SUB, "someone-else"), "untrusted", "does not contain `writ`");
    case("aud_missing", json!({"sub": SUB, "exp": NOW + 60}), "untrusted", "no `aud`");
    case("exp_missing", json!({"sub": SUB, "aud": AUD}), "malformed", "no `exp`");
    case("exp_past", json!({"sub": SUB, "aud": AUD, "exp": NOW - 1}), "expired", "expired at");
    case("exp_now", json!({"sub": SUB, "aud": AUD, "exp": NOW}), "expired", "expired at");
    case("exp_not_number", json!({"sub": SUB, "aud": AUD, "exp": "soon"}), "malformed", "not a number");
    case(
        "nbf_future",
        json!({"sub": SUB, "aud": AUD, "exp": NOW + 60, "nbf": NOW + 30}),
        "not-yet-valid",
        "valid from",
    );
    // `aud` as a single string is accepted.
    assert_eq!(run(&b, &s.token(&json!({"sub": SUB, "aud": AUD, "exp": NOW + 60})), AUD, NOW, 0).kind(), "ok");
}

#[test]
fn leeway_is_zero_unless_configured() {
    let s = Signer::new("k", JwsAlg::ES256);
    let b = [(TD, spiffe_bundle(&[&s], &[]))];
    let token = s.token(&json!({"sub": SUB, "aud": AUD, "exp": NOW - 5}));
    assert_eq!(run(&b, &token, AUD, NOW, 0).kind(), "expired");
    assert_eq!(run(&b, &token, AUD, NOW, 10).kind(), "ok");
    assert_eq!(run(&b, &token, AUD, NOW, 5).kind(), "expired");
}

#[test]
fn tampering_and_malformed_tokens() {
    let s = Signer::new("k", JwsAlg::ES256);
    let b = [(TD, spiffe_bundle(&[&s], &[]))];
    let token = s.token(&claims(SUB, AUD));
    let parts: Vec<&str> = token.split('.').collect();
    let case = |name: &str, token: &str, kind: &str, needle: &str| {
        assert_err(name, &run(&b, token, AUD, NOW, 0), kind, needle);
    };
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[5] ^= 1;
    case(
        "tampered_signature",
        &format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig)),
        "untrusted",
        "does not verify",
    );
    let forged = URL_SAFE_NO_PAD.encode(claims("spiffe://example.org/admin", AUD).to_string());
    case("tampered_payload", &format!("{}.{}.{}", parts[0], forged, parts[2]), "untrusted", "does not verify");
    case("two_parts", &format!("{}.{}", parts[0], parts[1]), "malformed", "3 parts, this has 2");
    case("four_parts", &format!("{token}.x"), "malformed", "this has 4");
    case("bad_base64", &format!("{}.{}.!!", parts[0], parts[1]), "malformed", "not base64url");
    case(
        "header_not_json",
        &format!("{}.{}.{}", URL_SAFE_NO_PAD.encode("nope"), parts[1], parts[2]),
        "malformed",
        "header is not JSON",
    );
    case(
        "payload_array",
        &format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode("[1]"), parts[2]),
        "malformed",
        "payload is not a JSON object",
    );
    case("empty", "", "malformed", "this has 1");
    case("oversize", &"a".repeat(16 * 1024 + 1), "limit", "over the cap");
    // The same good token still verifies.
    assert_eq!(run(&b, &token, AUD, NOW, 0).kind(), "ok");
}
