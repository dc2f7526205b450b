//! The simulated broker's X.509-SVID: a throwaway CA of its trust domain that the component
//! decider trusts, so the broker that opens the simulated tasks is attested like a real one
//! (the component opens no task for an identity it merely took on the host's word).

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

/// The CA's bundle (PEM) and the broker's chain (leaf, DER), valid from a year before `from`
/// until ten years after it.
pub struct BrokerSvid {
    pub trust_domain: String,
    pub bundle: Vec<u8>,
    pub chain: Vec<Vec<u8>>,
}

fn rc(e: rcgen::Error) -> String {
    format!("making the broker's SVID failed: {e}")
}

fn at(unix: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix)
}

impl BrokerSvid {
    /// For `broker` (a SPIFFE ID), valid around unix time `from`.
    pub fn new(broker: &str, from: u64) -> Result<BrokerSvid, String> {
        let trust_domain =
            writ_core::spiffe_id::parse(broker).map(|(_, td)| td).map_err(|e| format!("the broker: {e}"))?;
        let (not_before, not_after) = (at(from.saturating_sub(365 * 86_400)), at(from + 10 * 365 * 86_400));
        let alg = &rcgen::PKCS_ECDSA_P256_SHA256;

        let mut ca = CertificateParams::default();
        ca.distinguished_name.push(DnType::CommonName, "writ-sim broker CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.subject_alt_names = vec![SanType::URI(format!("spiffe://{trust_domain}").try_into().map_err(rc)?)];
        (ca.not_before, ca.not_after) = (not_before.into(), not_after.into());
        let ca_key = KeyPair::generate_for(alg).map_err(rc)?;
        let ca_cert = ca.self_signed(&ca_key).map_err(rc)?;
        let issuer = rcgen::Issuer::new(ca, ca_key);

        let mut leaf = CertificateParams::default();
        leaf.distinguished_name.push(DnType::CommonName, "broker");
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.subject_alt_names = vec![SanType::URI(broker.try_into().map_err(rc)?)];
        (leaf.not_before, leaf.not_after) = (not_before.into(), not_after.into());
        let leaf = leaf.signed_by(&KeyPair::generate_for(alg).map_err(rc)?, &issuer).map_err(rc)?;
        Ok(BrokerSvid { trust_domain, bundle: ca_cert.pem().into_bytes(), chain: vec![leaf.der().to_vec()] })
    }
}
