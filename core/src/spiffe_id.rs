//! SPIFFE ID and trust-domain parsing, by the `spiffe` crate.

use spiffe::{SpiffeId, TrustDomain};

/// Parse a SPIFFE ID; returns (the ID, its trust domain name).
pub fn parse(uri: &str) -> Result<(String, String), String> {
    let id = SpiffeId::new(uri).map_err(|e| format!("`{}` is not a SPIFFE ID: {e}", clip(uri)))?;
    Ok((id.to_string(), id.trust_domain_name().to_string()))
}

/// The path of a parsed SPIFFE ID (empty for a trust domain's own ID).
pub fn path(id: &str) -> &str {
    id.strip_prefix("spiffe://").and_then(|rest| rest.find('/').map(|i| &rest[i..])).unwrap_or("")
}

/// Validate a bare trust-domain name (`example.org`).
pub fn trust_domain(name: &str) -> Result<String, String> {
    if name.contains("://") || name.contains('/') {
        return Err(format!("`{}` is not a bare trust domain name", clip(name)));
    }
    let td = TrustDomain::new(name).map_err(|e| format!("`{}` is not a trust domain name: {e}", clip(name)))?;
    if td.as_str() != name {
        return Err(format!("trust domain `{}` must be lowercase", clip(name)));
    }
    Ok(td.as_str().to_string())
}

/// User input echoed in messages is cut short.
pub fn clip(s: &str) -> String {
    const MAX: usize = 128;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
