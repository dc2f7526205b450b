//! `writ serve`: the decision server (AuthZEN, Envoy ext_authz, token exchange over mTLS),
//! from flags and/or a TOML config file (`--config`); flags win.

use crate::Usage;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use writ_server::Config;

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// A TOML configuration file (every field optional; see docs/server.md).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Plain HTTP address (default 127.0.0.1:8181).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// A Unix socket to serve on too (mode 0660): where a co-located proxy calls ext_authz,
    /// its forwarded client certificates honoured.
    #[arg(long, value_name = "PATH")]
    listen_unix: Option<PathBuf>,
    /// mTLS address (token exchange, revocation, and everything else); needs --tls-cert/--tls-key.
    #[arg(long, value_name = "ADDR:PORT")]
    tls_listen: Option<SocketAddr>,
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// A trust bundle: `<TRUST_DOMAIN>=<FILE>` (repeatable).
    #[arg(long = "bundle", value_name = "TD=FILE", value_parser = crate::parse_bundle)]
    bundles: Vec<(String, PathBuf)>,
    /// An MCP server to put behind the gateway: `<NAME>=<URL>` (repeatable), served at
    /// `/mcp/<NAME>` (and `/mcp` when there is one).
    #[arg(long = "mcp-upstream", value_name = "NAME=URL", value_parser = parse_upstream)]
    mcp_upstreams: Vec<writ_server::config::McpUpstream>,
    /// Cedar policies: a file or a directory of `*.cedar` (default: the shipped pack).
    #[arg(long, value_name = "FILE|DIR")]
    policies: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    entities: Option<PathBuf>,
    /// Approver keys (a JWKS file) that sign break-glass approvals.
    #[arg(long, value_name = "FILE")]
    approvers: Option<PathBuf>,
    /// OIDC issuers (a JSON file) whose workload tokens identify callers.
    #[arg(long, value_name = "FILE")]
    oidc: Option<PathBuf>,
    /// The issuer key file (created on first use).
    #[arg(long, value_name = "FILE")]
    issuer_key: Option<PathBuf>,
    #[command(flatten)]
    state: crate::state::StateArg,
    /// `eddsa` or `es256`, for a key file created on first use.
    #[arg(long, value_name = "ALG")]
    issuer_alg: Option<String>,
    #[arg(long, value_name = "SECS")]
    ttl_cap: Option<u32>,
    /// Default audience of exchanged credentials, and the one /ext_authz presents against.
    #[arg(long)]
    audience: Option<String>,
    /// Audit log: `stdout`, `stderr`, a file, or `off`.
    #[arg(long, value_name = "DEST")]
    audit: Option<String>,
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Accept `x-forwarded-client-cert` with only a URI (a server only the proxy can reach).
    #[arg(long)]
    xfcc_trust_uri: bool,
    /// A proxy (SPIFFE ID, repeatable) whose `x-forwarded-client-cert` ext_authz honours on
    /// the mTLS listener.
    #[arg(long = "trusted-proxy", value_name = "SPIFFE_ID")]
    trusted_proxies: Vec<String>,
    /// An AuthZEN caller (SPIFFE ID, repeatable) allowed on the mTLS listener; with this or
    /// --authzen-token-file, AuthZEN answers no one else.
    #[arg(long = "authzen-peer", value_name = "SPIFFE_ID")]
    authzen_peers: Vec<String>,
    /// A file holding the bearer token AuthZEN callers must send.
    #[arg(long, value_name = "FILE")]
    authzen_token_file: Option<PathBuf>,
    /// Evaluate every request (no decision memo).
    #[arg(long)]
    no_decision_memo: bool,
}

pub(crate) fn run(args: ServeArgs) -> Result<ExitCode, Usage> {
    let mut c = match &args.config {
        Some(p) => Config::load(p).map_err(Usage)?,
        None => Config::default(),
    };
    if args.listen.is_some() {
        c.listen = args.listen;
    }
    if args.tls_listen.is_some() {
        c.tls_listen = args.tls_listen;
    }
    c.listen_unix = args.listen_unix.or(c.listen_unix);
    c.trusted_proxies.extend(args.trusted_proxies);
    c.authzen_peers.extend(args.authzen_peers);
    c.authzen_token_file = args.authzen_token_file.or(c.authzen_token_file);
    c.tls_cert = args.tls_cert.or(c.tls_cert);
    c.tls_key = args.tls_key.or(c.tls_key);
    c.bundles.extend(args.bundles);
    c.mcp.upstreams.extend(args.mcp_upstreams);
    c.policies = args.policies.or(c.policies);
    c.schema = args.schema.or(c.schema);
    c.entities = args.entities.or(c.entities);
    c.approvers = args.approvers.or(c.approvers);
    c.oidc = args.oidc.or(c.oidc);
    c.issuer_key = args.issuer_key.or(c.issuer_key);
    // The state: the flag, else the configuration file's, else the user's state directory.
    if args.state.state.is_some() || c.state.is_none() {
        c.state = Some(args.state.location()?.to_string());
    }
    c.state_max_lag_ms = args.state.max_lag_ms.or(c.state_max_lag_ms);
    if let Some(a) = args.issuer_alg {
        c.issuer_alg = a;
    }
    if let Some(t) = args.ttl_cap {
        c.ttl_cap = t;
    }
    if let Some(a) = args.audience {
        c.audience = a;
    }
    if let Some(a) = args.audit {
        c.audit = a;
    }
    c.workers = args.workers.or(c.workers);
    c.xfcc_trust_uri |= args.xfcc_trust_uri;
    if args.no_decision_memo {
        c.decision_memo = false;
    }
    c.check().map_err(Usage)?;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .try_init();
    writ_server::run(c, |r| {
        let mut at = Vec::new();
        if let Some(a) = r.http {
            at.push(format!("http://{a}"));
        }
        if let Some(a) = r.https {
            at.push(format!("https://{a} (mTLS)"));
        }
        if let Some(p) = &r.unix {
            at.push(format!("unix:{}", p.display()));
        }
        println!("writ serve: listening on {}", at.join(" and "));
    })
    .map_err(Usage)?;
    Ok(ExitCode::SUCCESS)
}

fn parse_upstream(s: &str) -> Result<writ_server::config::McpUpstream, String> {
    let (name, url) = s.split_once('=').ok_or("expected <NAME>=<URL>")?;
    if name.is_empty() || url.is_empty() {
        return Err("expected <NAME>=<URL>".into());
    }
    Ok(writ_server::config::McpUpstream { name: name.to_string(), url: url.to_string(), audience: None })
}
