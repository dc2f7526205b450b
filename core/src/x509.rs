//! X.509-SVID verification: chain validation by rustls-webpki (signatures through [`Crypto`]),
//! plus every SPIFFE X509-SVID rule webpki does not check, parsed with x509-parser.

use crate::bundle::Bundle;
use crate::crypto::Crypto;
use crate::error::{Error, Result};
use crate::identity::{Identity, Proof};
use crate::limits::{MAX_CERT_BYTES, MAX_CHAIN_CERTS};
use crate::spiffe_id;
use crate::webpki_algs;
use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer as _;

/// What the structural pass learns before any signature is checked.
#[derive(Debug)]
pub struct Parsed {
    pub spiffe_id: String,
    pub trust_domain: String,
    /// Latest not-before and earliest not-after over the presented chain.
    pub not_before: u64,
    pub not_after: u64,
}

/// Check sizes and counts; cheap, done before the cache lookup.
pub fn check_limits(chain: &[Vec<u8>]) -> Result<()> {
    if chain.is_empty() {
        return Err(Error::Malformed("empty certificate chain".into()));
    }
    if chain.len() > MAX_CHAIN_CERTS {
        return Err(Error::Limit(format!("chain has {} certificates, over the cap of {MAX_CHAIN_CERTS}", chain.len())));
    }
    if let Some((i, c)) = chain.iter().enumerate().find(|(_, c)| c.len() > MAX_CERT_BYTES) {
        return Err(Error::Limit(format!("certificate {i} is {} bytes, over the cap of {MAX_CERT_BYTES}", c.len())));
    }
    Ok(())
}

fn parse_cert(i: usize, der: &[u8]) -> Result<X509Certificate<'_>> {
    // The outer framing first, with a precise message; inner parse errors are reported
    // without the parser's detail, which differs between 32- and 64-bit targets.
    match crate::bundle::der_element_len(der) {
        None => {
            return Err(Error::Malformed(format!(
                "certificate {i} is not valid DER X.509: bad or truncated outer length"
            )));
        }
        Some(n) if n != der.len() => {
            return Err(Error::Malformed(format!("certificate {i} has trailing data after its DER")));
        }
        Some(_) => {}
    }
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(Error::Malformed(format!("certificate {i} has trailing data after its DER"))),
        Err(_) => Err(Error::Malformed(format!("certificate {i} is not valid DER X.509"))),
    }
}

fn ext_err(i: usize, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Malformed(format!("certificate {i}: bad {what} extension: {e}"))
}

fn uri_sans<'a>(i: usize, cert: &'a X509Certificate<'_>) -> Result<Vec<&'a str>> {
    let san = cert.subject_alternative_name().map_err(|e| ext_err(i, "subjectAltName", e))?;
    Ok(san
        .map(|s| {
            s.value
                .general_names
                .iter()
                .filter_map(|n| if let GeneralName::URI(u) = n { Some(*u) } else { None })
                .collect()
        })
        .unwrap_or_default())
}

fn leaf_rules(cert: &X509Certificate<'_>) -> Result<(String, String)> {
    let uris = uri_sans(0, cert)?;
    let uri = match uris.as_slice() {
        [one] => *one,
        [] => return Err(Error::Untrusted("leaf has no URI SAN: an X509-SVID needs exactly one SPIFFE ID".into())),
        more => {
            return Err(Error::Untrusted(format!("leaf has {} URI SANs: an X509-SVID needs exactly one", more.len())));
        }
    };
    let (id, td) = spiffe_id::parse(uri).map_err(|e| Error::Untrusted(format!("leaf URI SAN: {e}")))?;
    if spiffe_id::path(&id).is_empty() {
        return Err(Error::Untrusted(format!("leaf SPIFFE ID `{id}` has no path: a workload ID needs one")));
    }
    let bc = cert.basic_constraints().map_err(|e| ext_err(0, "basicConstraints", e))?;
    if bc.is_some_and(|b| b.value.ca) {
        return Err(Error::Untrusted("leaf has cA=true: an X509-SVID leaf must not be a CA".into()));
    }
    let ku = cert
        .key_usage()
        .map_err(|e| ext_err(0, "keyUsage", e))?
        .ok_or_else(|| Error::Untrusted("leaf has no key usage extension".into()))?;
    if !ku.critical {
        return Err(Error::Untrusted("leaf key usage extension is not marked critical".into()));
    }
    if !ku.value.digital_signature() {
        return Err(Error::Untrusted("leaf key usage lacks digitalSignature".into()));
    }
    if ku.value.key_cert_sign() {
        return Err(Error::Untrusted("leaf key usage has keyCertSign".into()));
    }
    if ku.value.crl_sign() {
        return Err(Error::Untrusted("leaf key usage has cRLSign".into()));
    }
    if let Some(eku) = cert.extended_key_usage().map_err(|e| ext_err(0, "extendedKeyUsage", e))?
        && (!eku.value.server_auth || !eku.value.client_auth)
    {
        return Err(Error::Untrusted("leaf extended key usage must include both serverAuth and clientAuth".into()));
    }
    Ok((id, td))
}

fn signing_cert_rules(i: usize, cert: &X509Certificate<'_>) -> Result<()> {
    let bc = cert.basic_constraints().map_err(|e| ext_err(i, "basicConstraints", e))?;
    if !bc.is_some_and(|b| b.value.ca) {
        return Err(Error::Untrusted(format!("signing certificate {i} does not have cA=true")));
    }
    let ku = cert.key_usage().map_err(|e| ext_err(i, "keyUsage", e))?;
    if !ku.is_some_and(|k| k.value.key_cert_sign()) {
        return Err(Error::Untrusted(format!("signing certificate {i} key usage lacks keyCertSign")));
    }
    for uri in uri_sans(i, cert)? {
        if let Ok((id, _)) = spiffe_id::parse(uri)
            && !spiffe_id::path(&id).is_empty()
        {
            return Err(Error::Untrusted(format!(
                "signing certificate {i} has SPIFFE ID `{id}` with a path: a signing certificate's ID must not have one"
            )));
        }
    }
    Ok(())
}

fn unix(t: i64) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

/// Parse every certificate and apply the SPIFFE rules and the validity window of every
/// certificate at `now`. No signature is checked here.
pub fn structural(chain: &[Vec<u8>], now: u64) -> Result<Parsed> {
    check_limits(chain)?;
    let certs = chain.iter().enumerate().map(|(i, der)| parse_cert(i, der)).collect::<Result<Vec<_>>>()?;
    let (spiffe_id, trust_domain) = leaf_rules(&certs[0])?;
    for (i, cert) in certs.iter().enumerate().skip(1) {
        signing_cert_rules(i, cert)?;
    }
    let (mut not_before, mut not_after) = (0u64, u64::MAX);
    for (i, cert) in certs.iter().enumerate() {
        let nb = unix(cert.validity().not_before.timestamp());
        let na = unix(cert.validity().not_after.timestamp());
        if now < nb {
            return Err(Error::NotYetValid(format!("certificate {i} is valid from {nb}, now is {now}")));
        }
        if now > na {
            return Err(Error::Expired(format!("certificate {i} expired at {na}, now is {now}")));
        }
        not_before = not_before.max(nb);
        not_after = not_after.min(na);
    }
    Ok(Parsed { spiffe_id, trust_domain, not_before, not_after })
}

/// Validate the chain to `bundle`'s X.509 authorities at `now` with rustls-webpki.
pub fn validate_path(chain: &[Vec<u8>], bundle: &Bundle, now: u64, crypto: &dyn Crypto) -> Result<()> {
    if bundle.anchors.is_empty() {
        return Err(Error::Untrusted("the trust domain's bundle has no X.509 authorities".into()));
    }
    let anchors = &bundle.anchors;
    let leaf_der = CertificateDer::from(chain[0].as_slice());
    let leaf = webpki::EndEntityCert::try_from(&leaf_der).map_err(|e| map_webpki(&e))?;
    let intermediates: Vec<CertificateDer<'_>> =
        chain[1..].iter().map(|c| CertificateDer::from(c.as_slice())).collect();
    let algs = webpki_algs::all(crypto);
    let alg_refs: Vec<&dyn SignatureVerificationAlgorithm> =
        algs.iter().map(|a| a as &dyn SignatureVerificationAlgorithm).collect();
    let path = leaf
        .verify_for_usage(
            &alg_refs,
            anchors,
            &intermediates,
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(now)),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(|e| map_webpki(&e))?;
    // Path length, including the trust anchor's own constraint (webpki checks only the
    // intermediates'). Intermediates come issuer-of-leaf first: the k-th has k CAs below it.
    let below_anchor = path.intermediate_certificates().count();
    let anchor_index = anchors
        .iter()
        .position(|a| std::ptr::eq(a, path.anchor()))
        .ok_or_else(|| Error::Untrusted("the verified path ends at no known bundle authority".into()))?;
    if let Some(max) = bundle.anchor_path_lens[anchor_index]
        && below_anchor > max as usize
    {
        return Err(Error::Untrusted(format!(
            "a path length constraint is violated: the bundle authority allows {max} intermediate(s), the path has {below_anchor}"
        )));
    }
    Ok(())
}

fn map_webpki(e: &webpki::Error) -> Error {
    use webpki::Error as W;
    match e {
        W::CertExpired { time, not_after } => Error::Expired(format!(
            "a certificate in the path expired at {}, now is {}",
            not_after.as_secs(),
            time.as_secs()
        )),
        W::CertNotValidYet { time, not_before } => Error::NotYetValid(format!(
            "a certificate in the path is valid from {}, now is {}",
            not_before.as_secs(),
            time.as_secs()
        )),
        W::UnknownIssuer => Error::Untrusted("no path to the trust domain's bundle (unknown issuer)".into()),
        W::InvalidSignatureForPublicKey => Error::Untrusted("a signature in the chain does not verify".into()),
        W::UnsupportedSignatureAlgorithmContext(_) | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            Error::Untrusted("unsupported signature algorithm (or RSA key outside 2048..=8192 bits)".into())
        }
        W::PathLenConstraintViolated => Error::Untrusted("a path length constraint is violated".into()),
        W::CaUsedAsEndEntity => Error::Untrusted("a CA certificate is used as the leaf".into()),
        W::EndEntityUsedAsCa => Error::Untrusted("an end-entity certificate is used as a CA".into()),
        W::RequiredEkuNotFoundContext(_) => {
            Error::Untrusted("a certificate's extended key usage lacks clientAuth".into())
        }
        W::BadDer | W::BadDerTime | W::TrailingData(_) | W::MalformedExtensions | W::ExtensionValueInvalid => {
            Error::Malformed(format!("invalid certificate encoding ({e:?})"))
        }
        other => Error::Untrusted(format!("chain rejected: {other:?}")),
    }
}

/// base64url (no padding) SHA-256 of `bytes`: the RFC 8705 `x5t#S256` form.
pub fn thumbprint(bytes: &[u8]) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(bytes))
}

/// Full verification of `chain` against `bundle` (which the caller chose by the leaf's
/// trust domain, found by [`structural`]).
pub fn identity(parsed: Parsed, chain: &[Vec<u8>]) -> Identity {
    Identity {
        spiffe_id: parsed.spiffe_id,
        trust_domain: parsed.trust_domain,
        expires_at: parsed.not_after,
        thumbprint: thumbprint(&chain[0]),
        proof: Proof::X509Svid,
        claims: Default::default(),
    }
}
