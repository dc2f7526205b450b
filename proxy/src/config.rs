//! The filter's configuration: JSON from the proxy's plugin configuration. Every field has a
//! closed default; with none at all (`{}`) the filter runs the shipped policy pack with the
//! shipped routes and trusts identities only from the proxy's own mTLS validation.

use serde::Deserialize;
use writ_types::route::{Route, default_routes};

/// Where the caller's identity comes from, tried in the configured order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The downstream TLS connection the proxy terminated and validated: its URI SAN
    /// (`connection.uri_san_peer_certificate`) and certificate digest
    /// (`connection.sha256_peer_certificate_digest`), the key a credential's `cnf` binds.
    Connection,
    /// An `x-forwarded-client-cert` header set by a proxy in front: its `Chain`/`Cert` is
    /// attested against `trust_domains` here; a bare `URI` only with `xfcc_trust_uri`.
    Xfcc,
    /// An `x-writ-identity-token` header: a JWT-SVID (its trust domain's bundle holding JWT
    /// keys) or an OIDC workload token of an `oidc` issuer, for `token_audience`. A bearer
    /// proof: whoever holds the token is the caller.
    Token,
}

/// One trust domain's bundle: PEM CA certificates or a SPIFFE bundle (JWKS).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum BundleText {
    Text(String),
    Json(serde_json::Value),
}

impl BundleText {
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            BundleText::Text(s) => s.clone().into_bytes(),
            BundleText::Json(v) => v.to_string().into_bytes(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterConfig {
    /// Trust domain → bundle. Identities of any other trust domain are refused, whatever
    /// source they come from.
    pub trust_domains: std::collections::BTreeMap<String, BundleText>,
    /// Cedar policy text; absent: the shipped pack (`policies/`), with its schema and entities.
    pub policies: Option<String>,
    pub schema: Option<String>,
    pub entities: Option<String>,
    /// Route rules: method + path pattern → action + resource (first match wins).
    pub routes: Vec<Route>,
    pub identity_sources: Vec<Source>,
    /// Accept an XFCC element with only a `URI` (no certificate to attest).
    pub xfcc_trust_uri: bool,
    /// The OIDC issuers whose workload tokens the `token` source accepts (`{"issuers":[…]}`,
    /// keys inline as `jwks`; see docs/attestation.md).
    pub oidc: Option<serde_json::Value>,
    /// The audience an identity token must name.
    pub token_audience: String,
    /// How long an identity vouched for by the proxy (no certificate expiry is exposed) counts
    /// as live, seconds.
    pub vouched_identity_secs: u64,
    /// The audience Writ credentials presented here must name.
    pub audience: String,
    /// The `iss` of accepted credentials.
    pub issuer: String,
    /// The issuer's public keys (the decision server's `/.well-known/jwks.json`). Without
    /// them every presented credential is refused.
    pub issuer_jwks: Option<serde_json::Value>,
    /// The request header holding the intent's JSON context; empty turns it off.
    pub context_header: String,
    /// When a request cannot be decided (the filter is not configured, a header is not text):
    /// true answers 503, false lets it through marked `x-writ-decision: unchecked`.
    pub fail_closed: bool,
    pub jwt_leeway_secs: u64,
    pub ttl_cap: u32,
    pub max_delegation_depth: u32,
    pub decision_memo: bool,
    /// Write an audit line per decision with the proxy's logging (info level).
    pub audit: bool,
    /// Poll the decision server's revocation feed, so credentials of ended tasks and cut-off
    /// agents are refused here too. Without it the filter knows no revocations: a credential
    /// stays usable until it expires.
    pub revocations: Option<RevocationFeed>,
    /// MCP endpoints behind the proxy, decided on MCP's routing headers (`Mcp-Method`,
    /// `Mcp-Name`) instead of `routes`: each path (exact, query aside) names its server.
    pub mcp: Vec<McpEndpoint>,
}

/// One MCP endpoint: requests to `path` are MCP for the server `server`
/// (`McpServer::"<server>"`, as Writ's gateway names it).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct McpEndpoint {
    pub path: String,
    pub server: String,
}

/// Where and how often the filter polls `GET /ledger/revocations` (an HTTP callout through
/// one of the proxy's clusters; never blocking a request).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationFeed {
    /// The proxy cluster that reaches the decision server.
    pub cluster: String,
    /// The `:authority` of the callout.
    pub authority: String,
    pub path: String,
    pub period_ms: u64,
    pub timeout_ms: u64,
    /// Presented credentials are refused (503 when fail-closed) while the last successful
    /// poll is older than this, or before the first one.
    pub stale_after_secs: u64,
}

impl Default for RevocationFeed {
    fn default() -> Self {
        RevocationFeed {
            cluster: "writ".into(),
            authority: "writ".into(),
            path: "/ledger/revocations".into(),
            period_ms: 1000,
            timeout_ms: 500,
            stale_after_secs: 10,
        }
    }
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            trust_domains: Default::default(),
            policies: None,
            schema: None,
            entities: None,
            routes: default_routes(),
            identity_sources: vec![Source::Connection],
            xfcc_trust_uri: false,
            oidc: None,
            token_audience: "writ".into(),
            vouched_identity_secs: 300,
            audience: "writ".into(),
            issuer: "writ".into(),
            issuer_jwks: None,
            context_header: "x-writ-context".into(),
            fail_closed: true,
            jwt_leeway_secs: 0,
            ttl_cap: 3600,
            max_delegation_depth: 2,
            decision_memo: true,
            audit: true,
            revocations: None,
            mcp: Vec::new(),
        }
    }
}

impl FilterConfig {
    /// Parse the plugin configuration; empty means every default. Errors say what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<FilterConfig, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(FilterConfig::default());
        }
        let c: FilterConfig = serde_json::from_slice(bytes).map_err(|e| format!("plugin configuration: {e}"))?;
        if c.identity_sources.is_empty() {
            return Err("plugin configuration: `identity_sources` is empty; no caller could be identified".into());
        }
        if c.ttl_cap == 0 {
            return Err("plugin configuration: `ttl_cap` is 0".into());
        }
        if c.vouched_identity_secs == 0 {
            return Err("plugin configuration: `vouched_identity_secs` is 0".into());
        }
        if c.audience.is_empty() {
            return Err("plugin configuration: `audience` is empty".into());
        }
        if let Some(e) = c.mcp.iter().find(|e| !e.path.starts_with('/') || e.path.contains('?') || e.server.is_empty())
        {
            return Err(format!(
                "plugin configuration: MCP endpoint `{}` needs a `path` starting with `/` (no query) and a `server`",
                e.path
            ));
        }
        if let Some(f) = &c.revocations {
            if f.cluster.is_empty() || !f.path.starts_with('/') {
                return Err(
                    "plugin configuration: `revocations` needs a `cluster` and a `path` starting with `/`".into()
                );
            }
            if f.period_ms == 0 || f.timeout_ms == 0 || f.stale_after_secs == 0 {
                return Err("plugin configuration: `revocations` periods must be above 0".into());
            }
            if c.issuer_jwks.is_none() {
                return Err(
                    "plugin configuration: `revocations` needs `issuer_jwks`: feed pages are signed by the issuer"
                        .into(),
                );
            }
            if f.stale_after_secs.saturating_mul(1000) < f.period_ms {
                return Err(
                    "plugin configuration: `revocations.stale_after_secs` is shorter than one poll period".into()
                );
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_closed_and_errors_say_what_is_wrong() {
        for empty in [&b""[..], b"  \n", b"{}"] {
            let c = FilterConfig::parse(empty).unwrap();
            assert!(c.fail_closed && c.trust_domains.is_empty() && c.issuer_jwks.is_none() && !c.xfcc_trust_uri);
            assert_eq!(c.identity_sources, vec![Source::Connection]);
            assert_eq!(c.jwt_leeway_secs, 0);
        }
        let err = |j: &str| FilterConfig::parse(j.as_bytes()).unwrap_err();
        assert!(err(r#"{"identity_sources":[]}"#).contains("identity_sources"));
        assert!(err(r#"{"identity_sources":["carrier-pigeon"]}"#).contains("carrier-pigeon"));
        assert!(err(r#"{"ttl_cap":0}"#).contains("ttl_cap"));
        assert!(err(r#"{"audience":""}"#).contains("audience"));
        assert!(err(r#"{"fail_closed":"yes"}"#).contains("plugin configuration"));
        assert!(err("[1,2]").contains("plugin configuration"));
        let keys = r#""issuer_jwks":{"keys":[]}"#;
        let feed =
            FilterConfig::parse(format!(r#"{{"revocations":{{}},{keys}}}"#).as_bytes()).unwrap().revocations.unwrap();
        assert_eq!((feed.cluster.as_str(), feed.path.as_str(), feed.period_ms), ("writ", "/ledger/revocations", 1000));
        assert!(err(r#"{"revocations":{}}"#).contains("issuer_jwks"), "pages are verified with the issuer's keys");
        assert!(err(&format!(r#"{{"revocations":{{"period_ms":0}},{keys}}}"#)).contains("revocations"));
        assert!(
            err(&format!(r#"{{"revocations":{{"period_ms":60000,"stale_after_secs":5}},{keys}}}"#))
                .contains("stale_after_secs")
        );
        assert!(err(&format!(r#"{{"revocations":{{"path":"x"}},{keys}}}"#)).contains("path"));
    }
}
