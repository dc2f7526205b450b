//! A workload identity, as attestation established it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proof {
    X509Svid,
    JwtSvid,
    /// An OIDC workload token of a configured issuer (a Kubernetes service-account token, a
    /// CI job's token), its claims mapped to a SPIFFE ID. A bearer token: whoever holds it can
    /// present it, like a JWT-SVID.
    Oidc,
    /// Named by the host without a proof Writ could check (a trusted proxy that forwarded
    /// only a SPIFFE ID, a dry run): decisions take it, credentials never do.
    Asserted,
}

impl Proof {
    pub fn as_str(self) -> &'static str {
        match self {
            Proof::X509Svid => "x509-svid",
            Proof::JwtSvid => "jwt-svid",
            Proof::Oidc => "oidc",
            Proof::Asserted => "asserted",
        }
    }
}

/// Who is calling, as attestation established it (`proof` says how).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    pub spiffe_id: String,
    pub trust_domain: String,
    /// Unix seconds: the earliest not-after in the chain, or the JWT-SVID's `exp`.
    pub expires_at: u64,
    /// base64url (no padding) SHA-256 of the leaf certificate DER (RFC 8705 `x5t#S256`), or of
    /// the JWT-SVID's bytes.
    pub thumbprint: String,
    pub proof: Proof,
    /// What the proof says besides the SPIFFE ID, verified with it: for an OIDC token, `issuer`
    /// (the configured issuer's name), `subject` (`sub`) and the claims its mapping keeps (a
    /// pod's name and uid, a job's repository and `workflow_ref`…); policies read them as
    /// `context.oidc`. Empty for every other proof.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub claims: std::collections::BTreeMap<String, String>,
}
