//! The client certificate a proxy forwards in `x-forwarded-client-cert` (Envoy's XFCC): its
//! fields, and the certificates of its `Cert`/`Chain` values.

use std::collections::BTreeMap;

/// The fields of the last (nearest) element of an `x-forwarded-client-cert` header, keys in
/// lower case.
pub fn fields(value: &str) -> BTreeMap<String, String> {
    // Elements are `,`-separated, pairs `;`-separated, values possibly quoted.
    let mut elements: Vec<Vec<String>> = vec![vec![String::new()]];
    let mut quoted = false;
    for c in value.chars() {
        let (Some(element), q) = (elements.last_mut(), quoted) else { continue };
        match c {
            '"' => quoted = !q,
            ',' if !q => elements.push(vec![String::new()]),
            ';' if !q => element.push(String::new()),
            _ => {
                if let Some(pair) = element.last_mut() {
                    pair.push(c);
                }
            }
        }
    }
    elements
        .pop()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|pair| pair.split_once('=').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())))
        .collect()
}

/// The certificates (DER, in order) of an XFCC `Cert` or `Chain` value: URL-encoded PEM.
pub fn certificates(encoded: &str) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let pem = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .map_err(|_| "the forwarded certificate is not UTF-8".to_string())?;
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the forwarded certificate is not PEM: {e:?}"))?;
    if certs.is_empty() {
        return Err("the forwarded certificate holds no CERTIFICATE block".into());
    }
    Ok(certs)
}

/// Bytes from hex (`Hash=` of XFCC, Envoy's `sha256_peer_certificate_digest`); `None` if not hex.
pub fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok());
    hex.as_bytes().chunks_exact(2).map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn xfcc_fields_of_the_nearest_element() {
        let v = r#"By=spiffe://a/x;Hash=abcd;URI=spiffe://old/one,By=spiffe://a/y;Hash=0a0b;Subject="CN=x,O=y";URI=spiffe://example.org/w;Cert="-----BEGIN%20CERTIFICATE-----""#;
        let f = fields(v);
        assert_eq!(f["uri"], "spiffe://example.org/w");
        assert_eq!(f["hash"], "0a0b");
        assert_eq!(f["subject"], "CN=x,O=y");
        assert_eq!(f["cert"], "-----BEGIN%20CERTIFICATE-----");
        assert!(certificates(&f["cert"]).is_err());
        assert_eq!(from_hex(&f["hash"]), Some(vec![10, 11]));
        assert_eq!(from_hex("0g"), None);
        assert_eq!(from_hex("abc"), None);
    }
}
