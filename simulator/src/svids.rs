//! The simulated workloads' X.509-SVIDs: a throwaway CA per trust domain that the deciders
//! trust, and a leaf for every SPIFFE ID the simulation attests — the broker that opens tasks,
//! each agent that is issued and presents credentials, and the attacker's own workload. Writ
//! issues credentials only to attested identities and binds each to its holder's certificate
//! (`cnf`), so every one of them is attested like a real workload.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

fn rc(e: rcgen::Error) -> String {
    format!("making a simulated SVID failed: {e}")
}

fn at(unix: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix)
}

struct Authority {
    bundle: Vec<u8>,
    issuer: rcgen::Issuer<'static, KeyPair>,
}

#[derive(Default)]
struct Made {
    authorities: BTreeMap<String, Authority>,
    chains: BTreeMap<String, Arc<[Vec<u8>]>>,
}

/// One workload's SVID and what trusts it.
pub struct Svid {
    pub trust_domain: String,
    /// The PEM bundle of its trust domain's CA.
    pub bundle: Vec<u8>,
    /// Leaf, DER.
    pub chain: Arc<[Vec<u8>]>,
}

/// SVIDs valid from a year before `from` until ten years after it, made on first use and
/// shared by every fork of a decider (so each trusts the same CAs).
#[derive(Clone)]
pub struct Svids {
    from: u64,
    made: Arc<Mutex<Made>>,
}

impl Svids {
    pub fn new(from: u64) -> Svids {
        Svids { from, made: Arc::default() }
    }

    fn validity(&self) -> (std::time::SystemTime, std::time::SystemTime) {
        (at(self.from.saturating_sub(365 * 86_400)), at(self.from + 10 * 365 * 86_400))
    }

    /// The SVID of `id`.
    pub fn of(&self, id: &str) -> Result<Svid, String> {
        let trust_domain = writ_core::spiffe_id::parse(id).map(|(_, td)| td).map_err(|e| format!("`{id}`: {e}"))?;
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        let alg = &rcgen::PKCS_ECDSA_P256_SHA256;
        let (not_before, not_after) = self.validity();
        if !made.authorities.contains_key(&trust_domain) {
            let mut ca = CertificateParams::default();
            ca.distinguished_name.push(DnType::CommonName, format!("writ-sim CA of {trust_domain}"));
            ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            ca.subject_alt_names = vec![SanType::URI(format!("spiffe://{trust_domain}").try_into().map_err(rc)?)];
            (ca.not_before, ca.not_after) = (not_before.into(), not_after.into());
            let ca_key = KeyPair::generate_for(alg).map_err(rc)?;
            let ca_cert = ca.self_signed(&ca_key).map_err(rc)?;
            let authority = Authority { bundle: ca_cert.pem().into_bytes(), issuer: rcgen::Issuer::new(ca, ca_key) };
            made.authorities.insert(trust_domain.clone(), authority);
        }
        if !made.chains.contains_key(id) {
            let mut leaf = CertificateParams::default();
            leaf.distinguished_name.push(DnType::CommonName, "writ-sim workload");
            leaf.is_ca = IsCa::ExplicitNoCa;
            leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            leaf.subject_alt_names = vec![SanType::URI(id.try_into().map_err(rc)?)];
            (leaf.not_before, leaf.not_after) = (not_before.into(), not_after.into());
            let authority = made.authorities.get(&trust_domain).ok_or("no CA")?;
            let leaf = leaf.signed_by(&KeyPair::generate_for(alg).map_err(rc)?, &authority.issuer).map_err(rc)?;
            made.chains.insert(id.to_string(), vec![leaf.der().to_vec()].into());
        }
        let bundle = made.authorities.get(&trust_domain).map(|a| a.bundle.clone()).unwrap_or_default();
        let chain = made.chains.get(id).cloned().ok_or("no chain")?;
        Ok(Svid { trust_domain, bundle, chain })
    }
}
