//! `writ serve` configuration: a TOML file (`--config writ.toml`), overridden by flags. Every
//! field has a default that works on 127.0.0.1 with the shipped policy pack.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
pub use writ_types::route::Route;
use writ_types::route::default_routes;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Plain HTTP: AuthZEN, ext_authz, JWKS and operations. `None` turns it off.
    pub listen: Option<SocketAddr>,
    /// A Unix socket path to serve on as well (created with mode 0660): the one listener where
    /// ext_authz honours `x-forwarded-client-cert` without TLS — the file's permissions decide
    /// who may forward a client certificate (give the proxy's group access, nobody else).
    pub listen_unix: Option<PathBuf>,
    /// TLS with client certificates required (mTLS): everything above plus token exchange and
    /// revocation. Needs `tls_cert` and `tls_key`.
    pub tls_listen: Option<SocketAddr>,
    /// The server's certificate chain (PEM) and private key (PEM, PKCS#8).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Trust bundles by trust domain (PEM/DER CA certificates or a SPIFFE bundle).
    pub bundles: BTreeMap<String, PathBuf>,
    /// SPIFFE bundle endpoints by trust domain (`[bundle_endpoint."<td>"]`): that trust
    /// domain's bundle is fetched at start and kept fresh (see docs/trust.md).
    #[serde(rename = "bundle_endpoint")]
    pub bundle_endpoints: BTreeMap<String, BundleEndpointConfig>,
    /// Cedar policies (a file or a directory of `*.cedar`), schema and entities. Default: the
    /// shipped pack.
    pub policies: Option<PathBuf>,
    pub schema: Option<PathBuf>,
    pub entities: Option<PathBuf>,
    /// The approver keys (a JWKS file) break-glass approvals are verified with; none: every
    /// approval is refused.
    pub approvers: Option<PathBuf>,
    /// The OIDC issuers whose workload tokens identify callers (a JSON file, see
    /// docs/attestation.md; an issuer's `jwks_file` is relative to it).
    pub oidc: Option<PathBuf>,
    /// The audience a bearer identity token (JWT-SVID or OIDC) must name at ext_authz
    /// (`x-writ-identity-token`) and `/token` (`client_assertion`). Default `writ`.
    pub token_audience: String,
    /// The issuer key file (created on first use); default: a fresh in-memory Ed25519 key.
    pub issuer_key: Option<PathBuf>,
    /// Where grants and revocations are kept: a state directory (shared with `writ revoke`
    /// and other servers on it) or `memory`. The library's default is `memory`; `writ serve`'s
    /// is the user's state directory. `nats://HOST:PORT[/PREFIX]` shares it with every
    /// replica on that NATS JetStream.
    pub state: Option<String>,
    /// With NATS: refuse credentials once this replica's view of revocations is older than
    /// this, milliseconds (default 3000).
    pub state_max_lag_ms: Option<u64>,
    /// `eddsa` (default) or `es256`, for a key file created on first use.
    pub issuer_alg: String,
    /// The lifetime cap of decisions and credentials, seconds.
    pub ttl_cap: u32,
    /// The audience of exchanged credentials when the request names none, and the audience
    /// presented credentials must carry at `/ext_authz`.
    pub audience: String,
    /// Audit events as JSON lines: `stdout`, `stderr` (default), a file path, or `off`.
    pub audit: String,
    /// Worker threads (default: one per core).
    pub workers: Option<usize>,
    /// Largest request body accepted by the batch endpoint (`/access/v1/evaluations`),
    /// bytes; every other endpoint takes at most 64 KiB.
    pub max_body_bytes: usize,
    /// A connection that has not sent a complete request head within this long (a slow or
    /// idle client, between requests too) is closed, milliseconds.
    pub header_read_timeout_ms: u64,
    /// Connections open at once, per listener; beyond it new ones wait in the kernel's
    /// backlog.
    pub max_connections: usize,
    /// Requests doing work in the component at once (on the blocking pool, never on the
    /// async workers); beyond it requests wait their turn without holding a worker.
    pub max_concurrent_calls: usize,
    /// Accept `x-forwarded-client-cert` with only a `URI` (no `Cert`/`Chain` to attest): only
    /// for a server reachable from the proxy alone. Default false: the chain must be forwarded.
    pub xfcc_trust_uri: bool,
    /// The SPIFFE IDs of proxies whose `x-forwarded-client-cert` ext_authz honours on the mTLS
    /// listener. Any other mTLS peer is the caller itself (its forwarded header ignored); on the
    /// plain listener the header is always ignored and an unproven caller is refused (401).
    pub trusted_proxies: Vec<String>,
    /// Policy enforcement points allowed to ask AuthZEN, by SPIFFE ID (on the mTLS listener).
    /// With this or `authzen_token_file` set, any other AuthZEN caller is refused (401); with
    /// neither, AuthZEN answers anyone who reaches the listener (the default, for loopback).
    pub authzen_peers: Vec<String>,
    /// A file holding the bearer token AuthZEN callers must send (`Authorization: Bearer`).
    pub authzen_token_file: Option<PathBuf>,
    /// Answer a request identical to one already decided under the loaded policies from
    /// memory (default true; see docs/authorization.md).
    pub decision_memo: bool,
    /// ext_authz route rules: method + path pattern → action + resource (first match wins).
    #[serde(rename = "route")]
    pub routes: Vec<Route>,
    /// The MCP gateway (`[mcp]`, `[[mcp.upstream]]`): see docs/mcp.md.
    pub mcp: McpConfig,
}

/// The MCP gateway's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// The MCP servers served: `/mcp/<name>` each, `/mcp` too when there is one.
    #[serde(rename = "upstream")]
    pub upstreams: Vec<McpUpstream>,
    /// The deadline for an upstream's connection and the head of its answer, milliseconds
    /// (default 30 000); a streamed answer has none.
    pub upstream_timeout_ms: u64,
    /// The CA certificates (PEM) an `https://` upstream's certificate must chain to; default
    /// the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The lifetime of the credential minted for each allowed `tools/call` in a task, seconds
    /// (default 60; a policy's `@ttl` caps it further).
    pub credential_ttl_secs: u32,
}

impl Default for McpConfig {
    fn default() -> McpConfig {
        McpConfig { upstreams: Vec::new(), upstream_timeout_ms: 30_000, ca_file: None, credential_ttl_secs: 60 }
    }
}

/// One upstream MCP server (Streamable HTTP).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpUpstream {
    /// Its name: the path `/mcp/<name>`, and the resource `McpServer::"<name>"` of decisions.
    pub name: String,
    /// Its MCP endpoint, `http(s)://…/mcp`.
    pub url: String,
    /// The audience of the credentials minted for its calls (default its name).
    #[serde(default)]
    pub audience: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8181))),
            listen_unix: None,
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            bundles: BTreeMap::new(),
            bundle_endpoints: BTreeMap::new(),
            policies: None,
            schema: None,
            entities: None,
            approvers: None,
            oidc: None,
            token_audience: "writ".into(),
            issuer_key: None,
            state: None,
            state_max_lag_ms: None,
            issuer_alg: "eddsa".into(),
            ttl_cap: 3600,
            audience: "writ".into(),
            audit: "stderr".into(),
            workers: None,
            max_body_bytes: 1 << 20,
            header_read_timeout_ms: 10_000,
            max_connections: 4096,
            max_concurrent_calls: 64,
            xfcc_trust_uri: false,
            trusted_proxies: Vec::new(),
            authzen_peers: Vec::new(),
            authzen_token_file: None,
            decision_memo: true,
            routes: default_routes(),
            mcp: McpConfig::default(),
        }
    }
}

/// A SPIFFE bundle endpoint (the SPIFFE Trust Domain and Bundle specification).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleEndpointConfig {
    /// `https://…`: where the bundle is served.
    pub url: String,
    /// `https_web` (a Web PKI certificate for the URL's host) or `https_spiffe` (an X.509-SVID
    /// of `endpoint_spiffe_id`, under the bundle in force for its trust domain).
    pub profile: String,
    pub endpoint_spiffe_id: Option<String>,
    /// `https_web`: the CA certificates (PEM) the server's certificate must chain to; default
    /// the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Fetched again after this long when the bundle has no `spiffe_refresh_hint` (default 300).
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
    /// Never fetched more often (default 30, or `refresh_secs` if lower).
    pub min_refresh_secs: Option<u64>,
    /// The deadline of one fetch, milliseconds (default 5000).
    #[serde(default = "default_fetch_timeout")]
    pub fetch_timeout_ms: u64,
}

fn default_refresh() -> u64 {
    300
}

fn default_fetch_timeout() -> u64 {
    5000
}

impl BundleEndpointConfig {
    /// The endpoint of trust domain `td`, as the host fetches it; why not, if it cannot be.
    pub fn endpoint(&self, td: &str) -> Result<writ_host::remote::BundleEndpoint, String> {
        use writ_host::remote::{BundleEndpoint, Fetching, Profile};
        let named = |m: &str| format!("bundle_endpoint `{td}`: {m}");
        if !self.url.starts_with("https://") {
            return Err(named("`url` is not an https:// URL"));
        }
        let profile = match (self.profile.as_str(), &self.endpoint_spiffe_id) {
            ("https_web", None) => Profile::HttpsWeb,
            ("https_spiffe", Some(id)) if id.starts_with("spiffe://") => {
                if self.ca_file.is_some() {
                    return Err(named("`ca_file` is for `https_web`; `https_spiffe` trusts the bundle in force"));
                }
                Profile::HttpsSpiffe { endpoint_spiffe_id: id.clone() }
            }
            ("https_spiffe", _) => return Err(named("`https_spiffe` needs `endpoint_spiffe_id`, a SPIFFE ID")),
            ("https_web", Some(_)) => return Err(named("`endpoint_spiffe_id` is for `https_spiffe`")),
            (other, _) => return Err(named(&format!("`profile` is `{other}`; use `https_web` or `https_spiffe`"))),
        };
        if self.refresh_secs == 0 || self.fetch_timeout_ms == 0 || self.min_refresh_secs == Some(0) {
            return Err(named("`refresh_secs`, `min_refresh_secs` and `fetch_timeout_ms` must be positive"));
        }
        let refresh = std::time::Duration::from_secs(self.refresh_secs);
        let min_refresh =
            self.min_refresh_secs.map_or(Fetching::default().min_refresh.min(refresh), std::time::Duration::from_secs);
        if min_refresh > refresh {
            return Err(named("`min_refresh_secs` is over `refresh_secs`"));
        }
        let fetching = Fetching {
            refresh,
            min_refresh,
            timeout: std::time::Duration::from_millis(self.fetch_timeout_ms.min(60_000)),
            ca_file: self.ca_file.clone(),
            token_file: None,
        };
        Ok(BundleEndpoint { trust_domain: td.to_string(), url: self.url.clone(), profile, fetching })
    }
}

impl Config {
    /// A TOML file; errors name the file and say what is wrong.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        let c: Config = toml::from_str(&text).map_err(|e| format!("`{}`: {e}", path.display()))?;
        c.check()?;
        Ok(c)
    }

    /// Impossible settings are refused with a reason.
    pub fn check(&self) -> Result<(), String> {
        if self.listen.is_none() && self.tls_listen.is_none() && self.listen_unix.is_none() {
            return Err("nothing to listen on: set `listen`, `tls_listen` or `listen_unix`".into());
        }
        for (name, ids) in [("trusted_proxies", &self.trusted_proxies), ("authzen_peers", &self.authzen_peers)] {
            if let Some(bad) = ids.iter().find(|id| !id.starts_with("spiffe://") || id.len() <= "spiffe://".len()) {
                return Err(format!("`{name}` holds `{bad}`, which is not a SPIFFE ID"));
            }
            if !ids.is_empty() && self.tls_listen.is_none() {
                return Err(format!("`{name}` names mTLS peers, but there is no `tls_listen`"));
            }
        }
        if self.tls_listen.is_some() && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            return Err("`tls_listen` needs `tls_cert` and `tls_key`".into());
        }
        if self.state_max_lag_ms == Some(0) {
            return Err("state_max_lag_ms must be at least 1".into());
        }
        if let Some(spec) = &self.state {
            writ_host::state::StateLocation::parse(spec)?;
        }
        if self.ttl_cap == 0 {
            return Err("`ttl_cap` is 0; a credential must live at least a second".into());
        }
        if !matches!(self.issuer_alg.as_str(), "eddsa" | "es256") {
            return Err(format!("`issuer_alg` is `{}`; use `eddsa` or `es256`", self.issuer_alg));
        }
        if self.max_body_bytes < 1024 {
            return Err("`max_body_bytes` is below 1024".into());
        }
        if self.header_read_timeout_ms == 0 || self.max_connections == 0 || self.max_concurrent_calls == 0 {
            return Err(
                "`header_read_timeout_ms`, `max_connections` and `max_concurrent_calls` must be positive".into()
            );
        }
        for (td, endpoint) in &self.bundle_endpoints {
            if let writ_host::remote::Profile::HttpsSpiffe { endpoint_spiffe_id } = endpoint.endpoint(td)?.profile {
                let endpoint_td = endpoint_spiffe_id["spiffe://".len()..].split('/').next().unwrap_or_default();
                let fetched_elsewhere = endpoint_td != td && self.bundle_endpoints.contains_key(endpoint_td);
                if !self.bundles.contains_key(endpoint_td) && !fetched_elsewhere {
                    return Err(format!(
                        "bundle_endpoint `{td}`: `https_spiffe` authenticates the endpoint with the bundle of `{endpoint_td}`; give it in `bundles` (the first one comes out of band)"
                    ));
                }
            }
        }
        for u in &self.mcp.upstreams {
            let plain = !u.name.is_empty() && u.name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !plain {
                return Err(format!("mcp upstream `{}`: a name is letters, digits, `-`, `_` and `.`", u.name));
            }
        }
        if self.mcp.upstream_timeout_ms == 0 || self.mcp.credential_ttl_secs == 0 {
            return Err("`mcp.upstream_timeout_ms` and `mcp.credential_ttl_secs` must be positive".into());
        }
        for r in &self.routes {
            writ_types::route::Pattern::parse(&r.path).map_err(|e| format!("route `{} {}`: {e}", r.method, r.path))?;
        }
        Ok(())
    }
}
