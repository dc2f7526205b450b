//! Property tests: random and mutated certificates and tokens never crash either
//! implementation, both give the same answer, and a mutated input never attests as something
//! it was not.

use proptest::prelude::*;
use std::sync::OnceLock;
use writ_tests::jwt::{JwsAlg, Signer, claims, spiffe_bundle};
use writ_tests::pki::{KeyAlg, Pki};
use writ_tests::{Attester, Component, NOW, Native, Outcome};

struct Fixture {
    pki: Pki,
    chain: Vec<Vec<u8>>,
    signer: Signer,
    token: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let pki = Pki::new("example.org", KeyAlg::P256);
        let chain = pki.chain3("/w", KeyAlg::P256);
        let signer = Signer::new("k", JwsAlg::ES256);
        let token = signer.token(&claims("spiffe://example.org/w", "writ"));
        Fixture { pki, chain, signer, token }
    })
}

fn attesters() -> (Native, Component) {
    let f = fixture();
    let mut n = Native::default();
    let mut c = Component::new();
    for a in [&mut n as &mut dyn Attester, &mut c] {
        a.set_bundle("example.org", &f.pki.bundle_pem()).unwrap();
    }
    let jwt = spiffe_bundle(&[&f.signer], &[&f.pki.root.der]);
    n.set_bundle("example.org", &jwt).unwrap();
    c.set_bundle("example.org", &jwt).unwrap();
    (n, c)
}

/// Mutations: flip bits, truncate, or splice random bytes.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    for (pos, x) in edits {
        if !bytes.is_empty() {
            let i = pos % bytes.len();
            bytes[i] ^= x | 1;
        }
    }
    if let Some(c) = cut {
        bytes.truncate(c % (bytes.len() + 1));
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn mutated_chains_are_errors_never_crashes(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<usize>()),
        which in 0usize..2,
    ) {
        let f = fixture();
        let mut chain = f.chain.clone();
        chain[which] = mutate(chain[which].clone(), &edits, cut);
        let (mut n, mut c) = attesters();
        let a = n.x509(&chain, NOW);
        let b = c.x509(&chain, NOW);
        prop_assert_eq!(&a, &b);
        // A changed certificate can only still verify if the bytes that changed are outside
        // the signed data and the signature (e.g. the outer length encoding cannot change
        // without breaking DER), so any success must be for the same identity.
        if let Outcome::Ok { spiffe_id, .. } = &a {
            prop_assert_eq!(spiffe_id.as_str(), "spiffe://example.org/w");
        }
        if chain != f.chain {
            prop_assert!(matches!(a, Outcome::Err { .. }), "a mutated chain attested: {:?}", a);
        }
    }

    #[test]
    fn random_bytes_as_chain_are_errors(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let (mut n, mut c) = attesters();
        let a = n.x509(std::slice::from_ref(&bytes), NOW);
        prop_assert_eq!(&a, &c.x509(&[bytes], NOW));
        prop_assert!(matches!(a, Outcome::Err { .. }), "attested: {:?}", a);
    }

    #[test]
    fn mutated_tokens_are_errors_never_crashes(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let f = fixture();
        let bytes = mutate(f.token.clone().into_bytes(), &edits, cut);
        let token = String::from_utf8_lossy(&bytes).into_owned();
        let (mut n, mut c) = attesters();
        let a = n.jwt(&token, "writ", NOW);
        prop_assert_eq!(&a, &c.jwt(&token, "writ", NOW));
        if token != f.token {
            // base64url has no slack in the last character only for some lengths; a mutation
            // that decodes to the same bytes is the same token.
            if let Outcome::Ok { .. } = a {
                let canon = |t: &str| t.split('.').map(|p| base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, p).ok()).collect::<Vec<_>>();
                prop_assert_eq!(canon(&token), canon(&f.token));
            }
        }
    }

    #[test]
    fn random_strings_as_tokens_are_errors(s in ".{0,300}", dots in 0usize..4) {
        let token = format!("{s}{}", ".".repeat(dots));
        let (mut n, mut c) = attesters();
        let a = n.jwt(&token, "writ", NOW);
        prop_assert_eq!(&a, &c.jwt(&token, "writ", NOW));
        prop_assert!(matches!(a, Outcome::Err { .. }), "attested: {:?}", a);
    }

    #[test]
    fn random_bundles_are_errors_or_loads_never_crashes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let n = Native::default().set_bundle("example.org", &bytes);
        let c = Component::new().set_bundle("example.org", &bytes);
        prop_assert_eq!(n, c);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Random policy text, schema and entities: a load error or a load, never a crash, and
    /// the same answer from both implementations.
    #[test]
    fn random_policy_loads_never_crash(
        policy in "(permit|forbid|@id\\(\"[a-z]{1,3}\"\\)|\\(|\\)|\\{|\\}|principal|action|resource|==|in|when|unless|context\\.[a-z]{1,4}|\"[a-z]{0,3}\"|[0-9]{1,3}|;|,|&&|\\|\\|| ){0,40}",
        schema in proptest::option::of("(entity [A-Z][a-z]{0,3};|action [a-z]{1,3};|\\{|\\}| ){0,10}"),
        entities in proptest::option::of("(\\[|\\]|\\{|\\}|\"uid\"|:|,|\"[a-z]{0,3}\"| ){0,20}"),
    ) {
        let n = Native::default().set_policies(&policy, schema.as_deref(), entities.as_deref());
        let c = Component::new().set_policies(&policy, schema.as_deref(), entities.as_deref());
        prop_assert_eq!(n, c);
    }

    /// Random context JSON against the shipped pack: always a decision, identical both ways;
    /// anything that is not a valid context is a deny with the error listed.
    #[test]
    fn random_contexts_always_decide(context in "(\\{|\\}|\\[|\\]|\"[a-z_]{0,8}\"|:|,|[0-9]{1,4}|true|null| ){0,30}") {
        let who = writ_tests::pack::identity("spiffe://acme.example/agent/browser", NOW + 3600);
        let what = writ_tests::pack::intent("invoke", r#"Tool::"browser""#, "t", &context);
        let mut n = Native::default();
        let mut c = Component::new();
        for a in [&mut n as &mut dyn Attester, &mut c] {
            a.set_policies(&writ_tests::pack::policies(), Some(&writ_tests::pack::schema()), Some(&writ_tests::pack::entities())).unwrap();
        }
        let v = n.check(&who, &what, NOW);
        prop_assert_eq!(&v, &c.check(&who, &what, NOW));
        if !v.errors.is_empty() {
            prop_assert!(!v.allow);
        }
    }
}
