//! Trust bundles: the X.509 authorities and JWT signing keys of one trust domain, from PEM or
//! DER certificates or a SPIFFE bundle (a JWKS whose keys have `use` `x509-svid`/`jwt-svid`).

use crate::error::{Error, Result};
use crate::jwk::{Jwk, JwtKey};
use crate::limits::{MAX_BUNDLE_BYTES, MAX_BUNDLE_ENTRIES};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, TrustAnchor};
use serde::Deserialize;
use x509_parser::prelude::FromDer as _;

/// One trust domain's authorities.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    /// X.509 authorities, DER.
    pub x509_authorities: Vec<CertificateDer<'static>>,
    /// The same authorities as webpki trust anchors, with each one's pathLenConstraint
    /// (webpki does not enforce an anchor's own constraint; Writ does).
    pub anchors: Vec<TrustAnchor<'static>>,
    /// `anchor_path_lens[i]` is the pathLenConstraint of `anchors[i]`.
    pub anchor_path_lens: Vec<Option<u32>>,
    /// JWT-SVID signing keys by `kid`.
    pub jwt_keys: Vec<JwtKey>,
}

#[derive(Deserialize)]
struct SpiffeBundle {
    keys: Vec<serde_json::Value>,
}

impl Bundle {
    /// Parse PEM certificates, concatenated DER certificates, or a SPIFFE bundle (JWKS).
    pub fn parse(bytes: &[u8]) -> Result<Bundle> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(Error::Limit(format!("bundle is {} bytes, over the {MAX_BUNDLE_BYTES}-byte cap", bytes.len())));
        }
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
        let bundle = match start.map(|i| bytes[i]) {
            None => return Err(Error::Malformed("empty bundle".into())),
            Some(b'{') => Self::parse_jwks(bytes)?,
            Some(b'-') => Self::parse_pem(bytes)?,
            Some(0x30) => Self::parse_der(bytes)?,
            Some(_) => {
                return Err(Error::Malformed(
                    "bundle is neither PEM, DER certificates nor a SPIFFE bundle (JWKS)".into(),
                ));
            }
        };
        if bundle.x509_authorities.is_empty() && bundle.jwt_keys.is_empty() {
            return Err(Error::Malformed("bundle holds no certificate and no key".into()));
        }
        if bundle.x509_authorities.len() + bundle.jwt_keys.len() > MAX_BUNDLE_ENTRIES {
            return Err(Error::Limit(format!("bundle holds more than {MAX_BUNDLE_ENTRIES} entries")));
        }
        let mut bundle = bundle;
        (bundle.anchors, bundle.anchor_path_lens) =
            bundle.x509_authorities.iter().map(authority).collect::<Result<Vec<_>>>()?.into_iter().unzip();
        Ok(bundle)
    }

    fn parse_pem(bytes: &[u8]) -> Result<Bundle> {
        let mut certs = Vec::new();
        for item in CertificateDer::pem_slice_iter(bytes) {
            let cert = item.map_err(|e| Error::Malformed(format!("bad PEM in bundle: {e:?}")))?;
            certs.push(cert);
            if certs.len() > MAX_BUNDLE_ENTRIES {
                return Err(Error::Limit(format!("bundle holds more than {MAX_BUNDLE_ENTRIES} entries")));
            }
        }
        if certs.is_empty() {
            return Err(Error::Malformed("no `CERTIFICATE` block in PEM bundle".into()));
        }
        Ok(Bundle { x509_authorities: certs, ..Bundle::default() })
    }

    fn parse_der(mut bytes: &[u8]) -> Result<Bundle> {
        let mut certs = Vec::new();
        while !bytes.is_empty() {
            let len = der_element_len(bytes)
                .ok_or_else(|| Error::Malformed("bad DER in bundle: truncated or invalid length".into()))?;
            certs.push(CertificateDer::from(bytes[..len].to_vec()));
            bytes = &bytes[len..];
            if certs.len() > MAX_BUNDLE_ENTRIES {
                return Err(Error::Limit(format!("bundle holds more than {MAX_BUNDLE_ENTRIES} entries")));
            }
        }
        Ok(Bundle { x509_authorities: certs, ..Bundle::default() })
    }

    fn parse_jwks(bytes: &[u8]) -> Result<Bundle> {
        let doc: SpiffeBundle =
            serde_json::from_slice(bytes).map_err(|e| Error::Malformed(format!("bad SPIFFE bundle JSON: {e}")))?;
        let mut bundle = Bundle::default();
        if doc.keys.len() > MAX_BUNDLE_ENTRIES {
            return Err(Error::Limit(format!("bundle holds more than {MAX_BUNDLE_ENTRIES} entries")));
        }
        for (i, value) in doc.keys.into_iter().enumerate() {
            let jwk: Jwk = serde_json::from_value(value)
                .map_err(|e| Error::Malformed(format!("bad key {i} in SPIFFE bundle: {e}")))?;
            match jwk.r#use.as_deref() {
                Some("x509-svid") => {
                    let x5c = jwk.x5c.as_deref().unwrap_or_default();
                    let [cert] = x5c else {
                        return Err(Error::Malformed(format!(
                            "key {i}: an `x509-svid` key needs exactly one `x5c` certificate, found {}",
                            x5c.len()
                        )));
                    };
                    let der = STANDARD
                        .decode(cert)
                        .map_err(|e| Error::Malformed(format!("key {i}: bad base64 in `x5c`: {e}")))?;
                    bundle.x509_authorities.push(CertificateDer::from(der));
                }
                Some("jwt-svid") => bundle.jwt_keys.push(JwtKey::from_jwk(&jwk).map_err(|e| match e {
                    Error::Malformed(m) => Error::Malformed(format!("key {i}: {m}")),
                    other => other,
                })?),
                // RFC: keys of other uses are ignored by SPIFFE bundle consumers.
                _ => {}
            }
        }
        let mut kids: Vec<&str> = bundle.jwt_keys.iter().map(|k| k.kid.as_str()).collect();
        kids.sort_unstable();
        if let Some(w) = kids.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::Malformed(format!("duplicate `kid` `{}` in SPIFFE bundle", w[0])));
        }
        Ok(bundle)
    }
}

/// Parse an authority certificate now, so a bad bundle fails at load, not at attest.
fn authority(cert: &CertificateDer<'_>) -> Result<(TrustAnchor<'static>, Option<u32>)> {
    let bad = |e: &dyn std::fmt::Debug| Error::Malformed(format!("bad authority certificate in bundle: {e:?}"));
    let anchor = webpki::anchor_from_trusted_cert(cert).map_err(|e| bad(&e))?.to_owned();
    let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(cert.as_ref()).map_err(|e| bad(&e))?;
    let path_len = parsed.basic_constraints().map_err(|e| bad(&e))?.and_then(|bc| bc.value.path_len_constraint);
    Ok((anchor, path_len))
}

/// Length of the DER element (tag, length, content) at the start of `b`.
pub fn der_element_len(b: &[u8]) -> Option<usize> {
    let len_byte = *b.get(1)?;
    let (header, content) = if len_byte < 0x80 {
        (2usize, len_byte as usize)
    } else {
        let n = (len_byte & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (2 + n, len)
    };
    let total = header.checked_add(content)?;
    (total <= b.len()).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::der_element_len;

    #[test]
    fn der_lengths() {
        assert_eq!(der_element_len(&[0x30, 0x00]), Some(2));
        assert_eq!(der_element_len(&[0x30, 0x02, 1, 2, 3]), Some(4));
        assert_eq!(der_element_len(&[0x30, 0x81, 0x01, 9]), Some(4));
        assert_eq!(der_element_len(&[0x30, 0x03, 1]), None, "truncated");
        assert_eq!(der_element_len(&[0x30, 0x80]), None, "indefinite length is not DER");
        assert_eq!(der_element_len(&[0x30, 0x85, 1, 1, 1, 1, 1]), None, "over 4 length bytes");
        assert_eq!(der_element_len(&[0x30]), None);
        assert_eq!(der_element_len(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
