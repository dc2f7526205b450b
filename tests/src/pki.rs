//! rcgen-built SPIFFE PKIs: root → (intermediate →) leaf, with every knob a failing case needs.

use crate::NOW;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519, PKCS_RSA_SHA256, PKCS_RSA_SHA512,
    SanType, SignatureAlgorithm,
};
use rsa::pkcs8::EncodePrivateKey as _;
use std::sync::OnceLock;
use time::OffsetDateTime;

/// Key and signature algorithm of a certificate's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlg {
    P256,
    P384,
    Ed25519,
    Rsa2048,
    Rsa2048Sha512,
}

pub const ALL_KEY_ALGS: [KeyAlg; 5] =
    [KeyAlg::P256, KeyAlg::P384, KeyAlg::Ed25519, KeyAlg::Rsa2048, KeyAlg::Rsa2048Sha512];

/// One RSA-2048 key for the whole test run (generation takes a while).
pub fn rsa_key() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap())
}

/// A second RSA-2048 key (for "signed by another key" cases).
pub fn rsa_key2() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap())
}

fn sig_alg(alg: KeyAlg) -> &'static SignatureAlgorithm {
    match alg {
        KeyAlg::P256 => &PKCS_ECDSA_P256_SHA256,
        KeyAlg::P384 => &PKCS_ECDSA_P384_SHA384,
        KeyAlg::Ed25519 => &PKCS_ED25519,
        KeyAlg::Rsa2048 => &PKCS_RSA_SHA256,
        KeyAlg::Rsa2048Sha512 => &PKCS_RSA_SHA512,
    }
}

pub fn key(alg: KeyAlg) -> KeyPair {
    match alg {
        KeyAlg::Rsa2048 | KeyAlg::Rsa2048Sha512 => {
            let der = rsa_key().to_pkcs8_der().unwrap();
            let der = rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_bytes().to_vec());
            KeyPair::from_pkcs8_der_and_sign_algo(&der, sig_alg(alg)).unwrap()
        }
        _ => KeyPair::generate_for(sig_alg(alg)).unwrap(),
    }
}

pub fn at(unix: u64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix as i64).unwrap()
}

/// CA params: cA=true, keyCertSign + cRLSign, the trust domain's SPIFFE ID.
pub fn ca_params(td: &str, cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.subject_alt_names = vec![SanType::URI(format!("spiffe://{td}").try_into().unwrap())];
    p.not_before = at(NOW - 365 * 86400);
    p.not_after = at(NOW + 5 * 365 * 86400);
    p
}

/// A valid X509-SVID leaf's params for `spiffe_id`.
pub fn leaf_params(spiffe_id: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, "workload");
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    p.subject_alt_names = vec![SanType::URI(spiffe_id.try_into().unwrap())];
    p.not_before = at(NOW - 3600);
    p.not_after = at(NOW + 3600);
    p
}

/// A key usage extension marked non-critical, with digitalSignature only.
pub fn non_critical_key_usage() -> CustomExtension {
    // BIT STRING, 7 unused bits, 0x80 = digitalSignature.
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 15], vec![0x03, 0x02, 0x07, 0x80]);
    ext.set_criticality(false);
    ext
}

/// A signing authority: its issuer (params + key) and certificate DER.
pub struct Authority {
    pub issuer: Issuer<'static, KeyPair>,
    pub der: Vec<u8>,
}

impl Authority {
    pub fn root(params: CertificateParams, alg: KeyAlg) -> Authority {
        let key = key(alg);
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Authority { issuer: Issuer::new(params, key), der }
    }

    pub fn intermediate(params: CertificateParams, alg: KeyAlg, parent: &Authority) -> Authority {
        let key = key(alg);
        let der = params.signed_by(&key, &parent.issuer).unwrap().der().to_vec();
        Authority { issuer: Issuer::new(params, key), der }
    }

    /// Sign a leaf with a fresh key of `alg`.
    pub fn sign(&self, params: &CertificateParams, alg: KeyAlg) -> Vec<u8> {
        params.signed_by(&key(alg), &self.issuer).unwrap().der().to_vec()
    }

    pub fn pem(&self) -> String {
        pem_cert(&self.der)
    }
}

pub fn pem_cert(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// A trust domain: root, intermediate, and ready-made valid chains.
pub struct Pki {
    pub td: String,
    pub root: Authority,
    pub intermediate: Authority,
}

impl Pki {
    /// A new PKI whose CA names are unique in this process (so another PKI of the same trust
    /// domain is an unknown issuer, not a same-named impostor).
    pub fn new(td: &str, alg: KeyAlg) -> Pki {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Pki::named(td, alg, &format!("root {n}"), &format!("intermediate {n}"))
    }

    /// A PKI with the given CA common names.
    pub fn named(td: &str, alg: KeyAlg, root_cn: &str, int_cn: &str) -> Pki {
        let root = Authority::root(ca_params(td, root_cn), alg);
        let intermediate = Authority::intermediate(ca_params(td, int_cn), alg, &root);
        Pki { td: td.to_string(), root, intermediate }
    }

    pub fn id(&self, path: &str) -> String {
        format!("spiffe://{}{path}", self.td)
    }

    /// root → intermediate → leaf.
    pub fn chain3(&self, path: &str, alg: KeyAlg) -> Vec<Vec<u8>> {
        vec![self.intermediate.sign(&leaf_params(&self.id(path)), alg), self.intermediate.der.clone()]
    }

    /// root → intermediate → leaf, with the leaf's private key (PKCS#8 PEM): a workload's
    /// own SVID, for TLS clients.
    pub fn svid(&self, path: &str, alg: KeyAlg) -> (Vec<Vec<u8>>, String) {
        let k = key(alg);
        let leaf = leaf_params(&self.id(path)).signed_by(&k, &self.intermediate.issuer).unwrap().der().to_vec();
        (vec![leaf, self.intermediate.der.clone()], k.serialize_pem())
    }

    /// root → leaf.
    pub fn chain2(&self, path: &str, alg: KeyAlg) -> Vec<Vec<u8>> {
        vec![self.root.sign(&leaf_params(&self.id(path)), alg)]
    }

    pub fn bundle_pem(&self) -> Vec<u8> {
        self.root.pem().into_bytes()
    }
}
