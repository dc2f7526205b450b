//! X.509-SVID rules: one failing case per rule, each run natively and through the component.

use crate::{assert_err, both};
use rcgen::{BasicConstraints, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType};
use writ_tests::pki::{self, ALL_KEY_ALGS, Authority, KeyAlg, Pki, ca_params, leaf_params};
use writ_tests::{NOW, Outcome};

const TD: &str = "example.org";

fn run(bundles: &[(&str, Vec<u8>)], chain: &[Vec<u8>], now: u64) -> Outcome {
    both(|a| {
        for (td, b) in bundles {
            a.set_bundle(td, b).unwrap();
        }
        a.x509(chain, now)
    })
}

fn thumbprint(der: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der))
}

#[test]
fn valid_chains_of_every_key_algorithm() {
    for alg in ALL_KEY_ALGS {
        let pki = Pki::new(TD, alg);
        for (shape, chain) in
            [("root→int→leaf", pki.chain3("/payroll", alg)), ("root→leaf", pki.chain2("/payroll", alg))]
        {
            let out = run(&[(TD, pki.bundle_pem())], &chain, NOW);
            assert_eq!(
                out,
                Outcome::Ok {
                    spiffe_id: "spiffe://example.org/payroll".into(),
                    trust_domain: TD.into(),
                    expires_at: NOW + 3600,
                    thumbprint: thumbprint(&chain[0]),
                    proof: "x509-svid".into(),
                    claims: Default::default(),
                },
                "{alg:?} {shape}"
            );
        }
    }
}

#[test]
fn expiry_is_the_earliest_not_after_in_the_chain() {
    let root = Authority::root(ca_params(TD, "root"), KeyAlg::P256);
    let mut ip = ca_params(TD, "int");
    ip.not_after = pki::at(NOW + 600);
    let int = Authority::intermediate(ip, KeyAlg::P256, &root);
    let chain = vec![int.sign(&leaf_params("spiffe://example.org/a"), KeyAlg::P256), int.der.clone()];
    let out = run(&[(TD, root.pem().into_bytes())], &chain, NOW);
    assert!(matches!(out, Outcome::Ok { expires_at, .. } if expires_at == NOW + 600), "{out:?}");
}

#[test]
fn bundle_formats_der_and_spiffe_jwks_and_federation() {
    let pki = Pki::new(TD, KeyAlg::P256);
    let other = Pki::new("other.org", KeyAlg::P384);
    let chain = pki.chain3("/a", KeyAlg::P256);
    // DER bundle.
    assert_eq!(run(&[(TD, pki.root.der.clone())], &chain, NOW).kind(), "ok");
    // SPIFFE bundle with an x509-svid key.
    let jwks = writ_tests::jwt::spiffe_bundle(&[], &[&pki.root.der]);
    assert_eq!(run(&[(TD, jwks)], &chain, NOW).kind(), "ok");
    // Two trust domains at once: each leaf verifies against its own domain's bundle.
    let bundles = [(TD, pki.bundle_pem()), ("other.org", other.bundle_pem())];
    assert_eq!(run(&bundles, &other.chain3("/b", KeyAlg::P384), NOW).message(), "spiffe://other.org/b");
    assert_eq!(run(&bundles, &chain, NOW).message(), "spiffe://example.org/a");
}

/// A leaf signed by the intermediate of a fresh P-256 PKI, with `edit` applied to its params.
fn leaf_case(edit: impl Fn(&mut rcgen::CertificateParams)) -> Outcome {
    let pki = Pki::new(TD, KeyAlg::P256);
    let mut p = leaf_params("spiffe://example.org/w");
    edit(&mut p);
    let chain = vec![pki.intermediate.sign(&p, KeyAlg::P256), pki.intermediate.der.clone()];
    run(&[(TD, pki.bundle_pem())], &chain, NOW)
}

fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().unwrap())
}

#[test]
fn leaf_rules() {
    type Edit = Box<dyn Fn(&mut rcgen::CertificateParams)>;
    let cases: Vec<(&str, Edit, &str, &str)> = vec![
        (
            "leaf_without_uri_san",
            Box::new(|p| p.subject_alt_names = vec![SanType::DnsName("w.example.org".try_into().unwrap())]),
            "untrusted",
            "no URI SAN",
        ),
        (
            "leaf_with_two_uri_sans",
            Box::new(|p| p.subject_alt_names.push(uri("spiffe://example.org/x"))),
            "untrusted",
            "2 URI SANs",
        ),
        (
            "leaf_uri_not_spiffe",
            Box::new(|p| p.subject_alt_names = vec![uri("https://example.org/w")]),
            "untrusted",
            "not a SPIFFE ID",
        ),
        (
            "leaf_id_without_path",
            Box::new(|p| p.subject_alt_names = vec![uri("spiffe://example.org")]),
            "untrusted",
            "has no path",
        ),
        (
            "leaf_id_bad_trust_domain",
            Box::new(|p| p.subject_alt_names = vec![uri("spiffe://exa_mple!.org/w")]),
            "untrusted",
            "not a SPIFFE ID",
        ),
        (
            "leaf_id_uppercase_trust_domain",
            Box::new(|p| p.subject_alt_names = vec![uri("spiffe://EXAMPLE.org/w")]),
            "untrusted",
            "must be lowercase",
        ),
        ("leaf_is_ca", Box::new(|p| p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained)), "untrusted", "cA=true"),
        ("leaf_without_key_usage", Box::new(|p| p.key_usages.clear()), "untrusted", "no key usage"),
        (
            "leaf_key_usage_not_critical",
            Box::new(|p| {
                p.key_usages.clear();
                p.custom_extensions.push(pki::non_critical_key_usage());
            }),
            "untrusted",
            "not marked critical",
        ),
        (
            "leaf_without_digital_signature",
            Box::new(|p| p.key_usages = vec![KeyUsagePurpose::KeyEncipherment]),
            "untrusted",
            "lacks digitalSignature",
        ),
        (
            "leaf_with_key_cert_sign",
            Box::new(|p| p.key_usages.push(KeyUsagePurpose::KeyCertSign)),
            "untrusted",
            "keyCertSign",
        ),
        ("leaf_with_crl_sign", Box::new(|p| p.key_usages.push(KeyUsagePurpose::CrlSign)), "untrusted", "cRLSign"),
        (
            "leaf_eku_server_only",
            Box::new(|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth]),
            "untrusted",
            "serverAuth and clientAuth",
        ),
        (
            "leaf_eku_client_only",
            Box::new(|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth]),
            "untrusted",
            "serverAuth and clientAuth",
        ),
        ("leaf_expired", Box::new(|p| p.not_after = pki::at(NOW - 1)), "expired", "certificate 0 expired"),
        (
            "leaf_not_yet_valid",
            Box::new(|p| p.not_before = pki::at(NOW + 10)),
            "not-yet-valid",
            "certificate 0 is valid from",
        ),
    ];
    for (name, edit, kind, needle) in cases {
        assert_err(name, &leaf_case(edit), kind, needle);
    }
    // Without EKU at all a leaf is fine (EKU is a SHOULD).
    assert_eq!(leaf_case(|p| p.extended_key_usages.clear()).kind(), "ok");
}

/// A chain whose intermediate has `edit` applied.
fn intermediate_case(edit: impl Fn(&mut rcgen::CertificateParams)) -> Outcome {
    let root = Authority::root(ca_params(TD, "root"), KeyAlg::P256);
    let mut ip = ca_params(TD, "int");
    edit(&mut ip);
    let int = Authority::intermediate(ip, KeyAlg::P256, &root);
    let chain = vec![int.sign(&leaf_params("spiffe://example.org/w"), KeyAlg::P256), int.der.clone()];
    run(&[(TD, root.pem().into_bytes())], &chain, NOW)
}

#[test]
fn signing_certificate_rules() {
    assert_err(
        "intermediate_not_ca",
        &intermediate_case(|p| p.is_ca = IsCa::ExplicitNoCa),
        "untrusted",
        "does not have cA=true",
    );
    assert_err(
        "intermediate_no_basic_constraints",
        &intermediate_case(|p| p.is_ca = IsCa::NoCa),
        "untrusted",
        "does not have cA=true",
    );
    assert_err(
        "intermediate_without_key_cert_sign",
        &intermediate_case(|p| p.key_usages = vec![KeyUsagePurpose::CrlSign]),
        "untrusted",
        "lacks keyCertSign",
    );
    assert_err(
        "intermediate_id_with_path",
        &intermediate_case(|p| p.subject_alt_names = vec![uri("spiffe://example.org/ca")]),
        "untrusted",
        "with a path",
    );
    assert_err(
        "intermediate_expired",
        &intermediate_case(|p| p.not_after = pki::at(NOW - 1)),
        "expired",
        "certificate 1 expired",
    );
    assert_err(
        "intermediate_not_yet_valid",
        &intermediate_case(|p| p.not_before = pki::at(NOW + 1)),
        "not-yet-valid",
        "certificate 1",
    );
    // A signing certificate without any SPIFFE ID is fine.
    assert_eq!(intermediate_case(|p| p.subject_alt_names.clear()).kind(), "ok");
}

#[test]
fn path_length_constraint() {
    let mut rp = ca_params(TD, "root");
    rp.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let root = Authority::root(rp, KeyAlg::P256);
    let int = Authority::intermediate(ca_params(TD, "int"), KeyAlg::P256, &root);
    let chain = vec![int.sign(&leaf_params("spiffe://example.org/w"), KeyAlg::P256), int.der.clone()];
    assert_err(
        "anchor_path_len_exceeded",
        &run(&[(TD, root.pem().into_bytes())], &chain, NOW),
        "untrusted",
        "path length",
    );

    // An intermediate with pathLen 0 cannot have another intermediate below it.
    let root = Authority::root(ca_params(TD, "root"), KeyAlg::P256);
    let mut p1 = ca_params(TD, "int1");
    p1.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let int1 = Authority::intermediate(p1, KeyAlg::P256, &root);
    let int2 = Authority::intermediate(ca_params(TD, "int2"), KeyAlg::P256, &int1);
    let chain =
        vec![int2.sign(&leaf_params("spiffe://example.org/w"), KeyAlg::P256), int2.der.clone(), int1.der.clone()];
    assert_err(
        "intermediate_path_len_exceeded",
        &run(&[(TD, root.pem().into_bytes())], &chain, NOW),
        "untrusted",
        "path length",
    );
    // Without the constraint the same depth is fine.
    let int1 = Authority::intermediate(ca_params(TD, "int1"), KeyAlg::P256, &root);
    let int2 = Authority::intermediate(ca_params(TD, "int2"), KeyAlg::P256, &int1);
    let chain =
        vec![int2.sign(&leaf_params("spiffe://example.org/w"), KeyAlg::P256), int2.der.clone(), int1.der.clone()];
    assert_eq!(run(&[(TD, root.pem().into_bytes())], &chain, NOW).kind(), "ok");
}

#[test]
fn trust_and_integrity() {
    let pki = Pki::new(TD, KeyAlg::P256);
    let chain = pki.chain3("/w", KeyAlg::P256);
    let stranger = Pki::new(TD, KeyAlg::P256);
    let other = Pki::new("other.org", KeyAlg::P256);

    assert_err(
        "wrong_trust_domain",
        &run(&[(TD, pki.bundle_pem())], &other.chain3("/w", KeyAlg::P256), NOW),
        "untrusted",
        "no bundle for trust domain `other.org`",
    );
    assert_err("unknown_issuer", &run(&[(TD, stranger.bundle_pem())], &chain, NOW), "untrusted", "unknown issuer");
    assert_err(
        "missing_intermediate",
        &run(&[(TD, pki.bundle_pem())], &chain[..1], NOW),
        "untrusted",
        "unknown issuer",
    );
    // Another domain's bundle does not vouch for this domain's leaves.
    assert_err("bundle_of_other_domain", &run(&[(TD, other.bundle_pem())], &chain, NOW), "untrusted", "unknown issuer");

    // A CA with the same names but another key: found by name, refused by signature.
    let impostor = Pki::named(TD, KeyAlg::P256, "root", "intermediate");
    let genuine = Pki::named(TD, KeyAlg::P256, "root", "intermediate");
    assert_err(
        "same_named_impostor_ca",
        &run(&[(TD, genuine.bundle_pem())], &impostor.chain3("/w", KeyAlg::P256), NOW),
        "untrusted",
        "does not verify",
    );

    let mut tampered = chain.clone();
    let last = tampered[0].len() - 1;
    tampered[0][last] ^= 0x01;
    assert_err(
        "tampered_leaf_signature",
        &run(&[(TD, pki.bundle_pem())], &tampered, NOW),
        "untrusted",
        "does not verify",
    );

    let mut tampered = chain.clone();
    let last = tampered[1].len() - 1;
    tampered[1][last] ^= 0x01;
    assert_err(
        "tampered_intermediate_signature",
        &run(&[(TD, pki.bundle_pem())], &tampered, NOW),
        "untrusted",
        "does not verify",
    );

    // A leaf for example.org signed by other.org's CA, with other.org's intermediate.
    let forged = vec![
        other.intermediate.sign(&leaf_params("spiffe://example.org/w"), KeyAlg::P256),
        other.intermediate.der.clone(),
    ];
    assert_err(
        "cross_domain_forgery",
        &run(&[(TD, pki.bundle_pem()), ("other.org", other.bundle_pem())], &forged, NOW),
        "untrusted",
        "unknown issuer",
    );
}

#[test]
fn malformed_and_oversize_chains() {
    let pki = Pki::new(TD, KeyAlg::P256);
    let b = [(TD, pki.bundle_pem())];
    assert_err("empty_chain", &run(&b, &[], NOW), "malformed", "empty certificate chain");
    assert_err("garbage_der", &run(&b, &[b"not a certificate".to_vec()], NOW), "malformed", "not valid DER");
    let mut trailing = pki.chain2("/w", KeyAlg::P256);
    trailing[0].push(0);
    assert_err("trailing_data", &run(&b, &trailing, NOW), "malformed", "trailing data");
    let chain = pki.chain3("/w", KeyAlg::P256);
    let long: Vec<Vec<u8>> = std::iter::repeat_n(chain[1].clone(), 17).collect();
    assert_err("chain_too_long", &run(&b, &long, NOW), "limit", "17 certificates");
    assert_err("cert_too_large", &run(&b, &[vec![0x30; 64 * 1024 + 1]], NOW), "limit", "over the cap");
    let truncated = vec![chain[0][..chain[0].len() / 2].to_vec()];
    assert_err("truncated_der", &run(&b, &truncated, NOW), "malformed", "not valid DER");
}

#[test]
fn cache_serves_repeat_attestation_and_respects_time_and_bundle_changes() {
    let pki = Pki::new(TD, KeyAlg::P256);
    let chain = pki.chain3("/w", KeyAlg::P256);
    let mut native = writ_tests::Native::default();
    use writ_tests::Attester as _;
    native.set_bundle(TD, &pki.bundle_pem()).unwrap();
    assert_eq!(native.x509(&chain, NOW).kind(), "ok");
    assert_eq!(native.engine.cached_chains(), 1);
    assert_eq!(native.x509(&chain, NOW + 1).kind(), "ok");
    // Past the leaf's not-after the cache does not answer: full validation says expired.
    assert_eq!(native.x509(&chain, NOW + 3601).kind(), "expired");
    // A new bundle for the domain drops its cached chains.
    let stranger = Pki::new(TD, KeyAlg::P256);
    native.set_bundle(TD, &stranger.bundle_pem()).unwrap();
    assert_eq!(native.engine.cached_chains(), 0);
    assert_eq!(native.x509(&chain, NOW).kind(), "untrusted");

    // The same through the component.
    let mut c = writ_tests::Component::new();
    c.set_bundle(TD, &pki.bundle_pem()).unwrap();
    assert_eq!(c.x509(&chain, NOW).kind(), "ok");
    assert_eq!(c.x509(&chain, NOW + 3601).kind(), "expired");
    c.set_bundle(TD, &stranger.bundle_pem()).unwrap();
    assert_eq!(c.x509(&chain, NOW).kind(), "untrusted");
}
