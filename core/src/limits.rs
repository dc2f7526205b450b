//! Size caps applied before any parsing, so oversize input is a typed error, not work.

/// Certificates in one presented chain (leaf included).
pub const MAX_CHAIN_CERTS: usize = 16;
/// Bytes in one DER certificate.
pub const MAX_CERT_BYTES: usize = 64 * 1024;
/// Bytes in one JWT-SVID.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Bytes in one trust bundle (PEM, DER or JWKS).
pub const MAX_BUNDLE_BYTES: usize = 1024 * 1024;
/// Certificates or keys in one trust bundle.
pub const MAX_BUNDLE_ENTRIES: usize = 256;
/// Trust domains held at once.
pub const MAX_TRUST_DOMAINS: usize = 1024;
/// Verified chains remembered by the attestation cache.
pub const MAX_CACHED_CHAINS: usize = 8192;
