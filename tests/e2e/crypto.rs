//! The two crypto providers — RustCrypto in `writ-core`, `ring` in the host — must give the
//! same answer for every algorithm, on valid, tampered, mismatched and malformed input.

use ring::rand::SystemRandom;
use ring::signature::{self as sig, KeyPair as _};
use rsa::pkcs1::EncodeRsaPublicKey as _;
use rsa::pkcs8::EncodePrivateKey as _;
use writ_core::crypto::{Algorithm as C, Crypto as _, RustCrypto};
use writ_tests::ring_crypto::host_alg;

/// A (public key, signature over `msg`) made by an independent signer for `alg`.
fn sign(alg: C, msg: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let rng = SystemRandom::new();
    let ecdsa = |a: &'static sig::EcdsaSigningAlgorithm| {
        let pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(a, &rng).unwrap();
        let k = sig::EcdsaKeyPair::from_pkcs8(a, pkcs8.as_ref(), &rng).unwrap();
        (k.public_key().as_ref().to_vec(), k.sign(&rng, msg).unwrap().as_ref().to_vec())
    };
    let rsa = |enc: &'static dyn sig::RsaEncoding| {
        let key = writ_tests::pki::rsa_key();
        let k = sig::RsaKeyPair::from_pkcs8(key.to_pkcs8_der().unwrap().as_bytes()).unwrap();
        let mut out = vec![0; k.public().modulus_len()];
        k.sign(enc, &rng, msg, &mut out).unwrap();
        (key.to_public_key().to_pkcs1_der().unwrap().as_bytes().to_vec(), out)
    };
    match alg {
        C::EcdsaP256Sha256Der => ecdsa(&sig::ECDSA_P256_SHA256_ASN1_SIGNING),
        C::EcdsaP256Sha256Fixed => ecdsa(&sig::ECDSA_P256_SHA256_FIXED_SIGNING),
        C::EcdsaP384Sha384Der => ecdsa(&sig::ECDSA_P384_SHA384_ASN1_SIGNING),
        C::EcdsaP384Sha384Fixed => ecdsa(&sig::ECDSA_P384_SHA384_FIXED_SIGNING),
        C::EcdsaP521Sha512Fixed => {
            use p521::ecdsa::signature::RandomizedSigner as _;
            let k = p521::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
            let s: p521::ecdsa::Signature = k.sign_with_rng(&mut rand::rngs::OsRng, msg);
            (p521::ecdsa::VerifyingKey::from(&k).to_encoded_point(false).as_bytes().to_vec(), s.to_bytes().to_vec())
        }
        C::Ed25519 => {
            let pkcs8 = sig::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
            let k = sig::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
            (k.public_key().as_ref().to_vec(), k.sign(msg).as_ref().to_vec())
        }
        C::RsaPkcs1Sha256 => rsa(&sig::RSA_PKCS1_SHA256),
        C::RsaPkcs1Sha384 => rsa(&sig::RSA_PKCS1_SHA384),
        C::RsaPkcs1Sha512 => rsa(&sig::RSA_PKCS1_SHA512),
        C::RsaPssSha256 => rsa(&sig::RSA_PSS_SHA256),
        C::RsaPssSha384 => rsa(&sig::RSA_PSS_SHA384),
        C::RsaPssSha512 => rsa(&sig::RSA_PSS_SHA512),
    }
}

fn both(alg: C, pk: &[u8], msg: &[u8], s: &[u8]) -> bool {
    let native = RustCrypto::new().verify(alg, pk, msg, s);
    let host = writ_host::crypto::verify(host_alg(alg), pk, msg, s);
    assert_eq!(native, host, "{alg:?}: RustCrypto says {native}, ring says {host}");
    native
}

#[test]
fn providers_agree_on_every_algorithm() {
    let msg = b"the task scope of payroll-run-42";
    for alg in C::ALL {
        let (pk, s) = sign(alg, msg);
        assert!(both(alg, &pk, msg, &s), "{alg:?}: a valid signature must verify");
        assert!(!both(alg, &pk, b"another message", &s), "{alg:?}: wrong message");
        let mut bad = s.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x40;
        assert!(!both(alg, &pk, msg, &bad), "{alg:?}: tampered signature");
        let (other_pk, _) = sign(alg, msg);
        if other_pk != pk {
            assert!(!both(alg, &other_pk, msg, &s), "{alg:?}: wrong key");
        }
        assert!(!both(alg, b"garbage key", msg, &s), "{alg:?}: malformed key");
        assert!(!both(alg, &pk, msg, &[]), "{alg:?}: empty signature");
        // Every other algorithm refuses this signature (no algorithm confusion).
        for other in C::ALL.into_iter().filter(|o| *o != alg) {
            assert!(!both(other, &pk, msg, &s), "{alg:?} signature accepted as {other:?}");
        }
    }
}

#[test]
fn rsa_keys_below_2048_bits_fail_in_both() {
    use rsa::pkcs1v15::SigningKey;
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    let small = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
    let msg = b"m";
    let s = SigningKey::<sha2::Sha256>::new(small.clone()).sign(msg).to_vec();
    let pk = small.to_public_key().to_pkcs1_der().unwrap().as_bytes().to_vec();
    // The signature is mathematically valid, but the key is too small for either provider.
    assert!(!both(C::RsaPkcs1Sha256, &pk, msg, &s));
}

#[test]
fn issuer_keys_sign_and_publish_a_jwks() {
    let b64 = |v: &serde_json::Value| {
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, v.as_str().unwrap()).unwrap()
    };
    let rc = RustCrypto::with_ed25519_seed([7; 32]);
    let key = rc.signing_key().unwrap();
    assert_eq!(key.alg, C::Ed25519);
    let s = rc.sign(&key.kid, b"hello").unwrap();
    let jwks: serde_json::Value = serde_json::from_str(&rc.public_keys()).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], key.kid);
    assert!(both(C::Ed25519, &b64(&jwks["keys"][0]["x"]), b"hello", &s));
    assert!(rc.sign("another-kid", b"hello").is_err(), "only the named signing key signs");
    assert!(RustCrypto::new().signing_key().is_err(), "no key, no signature");
    // ES256: the JWK's x‖y is the verifying point, checked by both providers.
    let es = RustCrypto::with_p256_scalar([9; 32]).unwrap();
    let key = es.signing_key().unwrap();
    assert_eq!(key.alg, C::EcdsaP256Sha256Fixed);
    let s = es.sign(&key.kid, b"hello").unwrap();
    let jwks: serde_json::Value = serde_json::from_str(&es.public_keys()).unwrap();
    let mut point = vec![4u8];
    point.extend(b64(&jwks["keys"][0]["x"]));
    point.extend(b64(&jwks["keys"][0]["y"]));
    assert!(both(C::EcdsaP256Sha256Fixed, &point, b"hello", &s));

    // The component's `jwks` comes from the host's issuer key (never inside the component).
    let writ = writ_tests::attester::writ();
    let jwks: serde_json::Value = serde_json::from_str(&writ.jwks().unwrap()).unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert_eq!(jwks["keys"][0]["alg"], "EdDSA");
}
