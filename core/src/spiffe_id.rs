//! SPIFFE ID and trust-domain parsing, by the `spiffe` crate.

use spiffe::{SpiffeId, TrustDomain};

/// Parse a SPIFFE ID; returns (the ID, its trust domain name).
pub fn parse(uri: &str) -> Result<(String, String), String> {
    let id = SpiffeId::new(uri).map_err(|e| format!("`{}` is not a SPIFFE ID: {e}", clip(uri)))?;
    let canonical = id.to_string();
    // The spiffe crate lowercases the trust domain; the SPIFFE ID spec allows only lowercase,
    // so a name that needed normalizing is refused rather than silently matched.
    if canonical != uri {
        return Err(format!("`{}` is not a SPIFFE ID: the trust domain must be lowercase", clip(uri)));
    }
    Ok((canonical, id.trust_domain_name().to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids_and_paths() {
        assert_eq!(parse("spiffe://example.org/a/b"), Ok(("spiffe://example.org/a/b".into(), "example.org".into())));
        assert_eq!(path("spiffe://example.org/a/b"), "/a/b");
        assert_eq!(path("spiffe://example.org"), "");
        assert!(parse("spiffe://example.org/a/../b").is_err(), "dot segments are refused");
        assert!(parse("spiffe://example.org/a?q").is_err(), "queries are refused");
        assert!(parse("spiffe://Example.org/a").is_err(), "uppercase trust domains are refused");
        assert!(parse("https://example.org/a").is_err());
    }

    #[test]
    fn trust_domain_names_are_bare_and_lowercase() {
        assert_eq!(trust_domain("example.org"), Ok("example.org".into()));
        assert!(trust_domain("Example.org").is_err());
        assert!(trust_domain("spiffe://example.org").is_err());
        assert!(trust_domain("example.org/x").is_err());
        assert!(trust_domain("").is_err());
    }

    #[test]
    fn clip_cuts_long_input_on_a_char_boundary() {
        let long = "é".repeat(100);
        let c = clip(&long);
        assert!(c.len() < long.len() && c.ends_with('…'));
        assert_eq!(clip("short"), "short");
    }
}
