#![doc = include_str!("../README.md")]

mod bench;
mod credentials;
mod demo;
mod mcp;
mod serve;
mod state;
mod task;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use writ_host::{AuditSink, Error, Writ};

#[derive(Parser)]
#[command(name = "writ", version, about = "Attest, authorize and issue task-scoped credentials for AI agents")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prove which workload is calling.
    #[command(subcommand)]
    Attest(Attest),
    /// Decide whether an identity may do an intent (exit 0 allow, 3 deny, 1 error, 2 usage).
    Authorize(AuthorizeArgs),
    /// Policy pack tools.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Issue a task credential to an attested caller (exit 0, 3 denied, 1 error, 2 usage).
    Issue(credentials::IssueArgs),
    /// Present a credential for one intent (exit 0 allow, 3 deny, 1 error, 2 usage).
    Present(credentials::PresentArgs),
    /// Delegate a narrower credential from its holder to a sub-agent (exit 0, 3 denied, 1 error).
    Delegate(credentials::DelegateArgs),
    /// End a task or cut an agent off: revoke the credentials they cover.
    Revoke(credentials::RevokeArgs),
    /// Lift an agent's cut-off (its earlier credentials stay revoked).
    Restore(credentials::RestoreArgs),
    /// Tasks: open one (members, purpose, lifetime), end it, show it.
    #[command(subcommand)]
    Task(task::TaskCmd),
    /// The whole story on a built-in trust domain: attest, authorize, issue, present,
    /// delegate, revoke — each step, decision and audit event printed.
    Demo,
    /// Latency and throughput of a policy pack on recorded or generated requests, through
    /// the component and natively, same run.
    Bench(bench::BenchArgs),
    /// Run the decision server: AuthZEN, Envoy ext_authz, token exchange over mTLS.
    Serve(serve::ServeArgs),
    /// The state store (grants, revocations).
    #[command(subcommand)]
    State(state::StateCmd),
    /// MCP: Cedar schemas from an MCP server's tools.
    #[command(subcommand)]
    Mcp(mcp::McpCmd),
    /// Print the issuer's public keys (JWKS).
    Jwks {
        /// The issuer key file (created on first use); default: a fresh key.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum Attest {
    /// Verify an X.509-SVID chain (PEM or DER, leaf first).
    X509 {
        #[command(flatten)]
        common: Common,
        /// The chain: a PEM file with the leaf first, or a DER certificate. Repeat for more
        /// files (in chain order).
        #[arg(long, required = true, value_name = "FILE")]
        chain: Vec<PathBuf>,
    },
    /// Verify a JWT-SVID.
    Jwt {
        #[command(flatten)]
        common: Common,
        /// The audience the token must name.
        #[arg(long)]
        audience: String,
        /// Allowed clock skew on `exp`/`nbf`, seconds.
        #[arg(long, default_value_t = 0)]
        leeway: u32,
        /// The token, or `-` to read it from stdin.
        token: String,
    },
    /// Verify an OIDC workload token (a Kubernetes service-account token, a CI job's token)
    /// against configured issuers, and map it to a SPIFFE ID.
    Oidc {
        /// The issuers (JSON `{"issuers":[…]}`, see docs/attestation.md); an issuer's
        /// `jwks_file` is read relative to this file's directory.
        #[arg(long, value_name = "FILE")]
        oidc: PathBuf,
        /// The issuer the token must come from: its name or its `iss`.
        #[arg(long, value_name = "NAME|URL")]
        issuer: Option<String>,
        /// That issuer's keys from this JWKS file, instead of the configuration's.
        #[arg(long, value_name = "FILE", requires = "issuer")]
        jwks: Option<PathBuf>,
        /// The audience the token must name (one the issuer may be used for).
        #[arg(long)]
        audience: String,
        /// Verify at this time (unix seconds) instead of now.
        #[arg(long, value_name = "UNIX_SECONDS")]
        at: Option<u64>,
        /// Write audit events as JSON lines to this file.
        #[arg(long, value_name = "FILE")]
        audit: Option<PathBuf>,
        /// The token, or `-` to read it from stdin.
        token: String,
    },
}

#[derive(Args)]
pub(crate) struct PolicySource {
    /// Cedar policies: a file, or a directory of `*.cedar` files. Default: the shipped pack
    /// (with its schema and entities).
    #[arg(long, value_name = "FILE|DIR")]
    pub(crate) policies: Option<PathBuf>,
    /// A Cedar schema (Cedar or JSON syntax): policies and requests are validated against it.
    #[arg(long, value_name = "FILE")]
    pub(crate) schema: Option<PathBuf>,
    /// Cedar entities JSON (agents, roles, tools, resources).
    #[arg(long, value_name = "FILE")]
    pub(crate) entities: Option<PathBuf>,
}

#[derive(Args)]
struct AuthorizeArgs {
    #[command(flatten)]
    source: PolicySource,
    /// The caller's SPIFFE ID (as attestation would have proven it).
    #[arg(long, value_name = "SPIFFE_ID")]
    principal: String,
    /// The action, e.g. `read` (becomes `Action::"read"`).
    #[arg(long, value_name = "NAME")]
    action: String,
    /// The resource as a Cedar entity uid, e.g. `Tool::"browser"`.
    #[arg(long, value_name = "TYPE::\"ID\"")]
    resource: String,
    /// The intent's context, a JSON object.
    #[arg(long, value_name = "JSON", default_value = "")]
    context: String,
    /// The task the intent belongs to.
    #[arg(long, value_name = "ID", default_value = "")]
    task: String,
    /// Decide at this time (unix seconds) instead of now.
    #[arg(long, value_name = "UNIX_SECONDS")]
    at: Option<u64>,
    /// When the caller's identity expires (unix seconds; default: one hour after the decision time).
    #[arg(long, value_name = "UNIX_SECONDS")]
    expires_at: Option<u64>,
    /// Lifetime cap, seconds: `max_ttl_secs` when no determining policy has a `@ttl`, and the
    /// ceiling of any `@ttl`.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    ttl_cap: u32,
    /// Write the decision's audit event as a JSON line to this file.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
    /// The state read for cut-off agents (denied `writ:cut-off` whatever the policies say).
    #[command(flatten)]
    state: state::StateArg,
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// Load and validate a policy pack; prints `{"policies":N}` (exit 0) or the error (exit 1).
    Check {
        /// Cedar policy files or directories of `*.cedar` files. Default: the shipped pack.
        #[arg(value_name = "FILES")]
        files: Vec<PathBuf>,
        /// A Cedar schema to validate the policies against.
        #[arg(long, value_name = "FILE")]
        schema: Option<PathBuf>,
        /// Cedar entities JSON to check against the schema.
        #[arg(long, value_name = "FILE")]
        entities: Option<PathBuf>,
    },
}

#[derive(Args)]
struct Common {
    /// A trust bundle: `<TRUST_DOMAIN>=<FILE>` (PEM/DER certificates or a SPIFFE JWKS bundle).
    #[arg(long = "bundle", required = true, value_name = "TRUST_DOMAIN=FILE", value_parser = parse_bundle)]
    bundles: Vec<(String, PathBuf)>,
    /// Verify at this time (unix seconds) instead of now.
    #[arg(long, value_name = "UNIX_SECONDS")]
    at: Option<u64>,
    /// Write audit events as JSON lines to this file.
    #[arg(long, value_name = "FILE")]
    audit: Option<PathBuf>,
}

pub(crate) fn parse_bundle(s: &str) -> Result<(String, PathBuf), String> {
    let (td, file) = s.split_once('=').ok_or("expected <TRUST_DOMAIN>=<FILE>")?;
    if td.is_empty() || file.is_empty() {
        return Err("expected <TRUST_DOMAIN>=<FILE>".into());
    }
    Ok((td.to_string(), PathBuf::from(file)))
}

/// A usage problem: reported on stderr, exit 2.
pub(crate) struct Usage(String);

pub(crate) fn read(path: &std::path::Path) -> Result<Vec<u8>, Usage> {
    std::fs::read(path).map_err(|e| Usage(format!("cannot read `{}`: {e}", path.display())))
}

/// JSON lines appended to `path`, or no audit.
pub(crate) fn audit_sink(path: Option<&std::path::Path>) -> Result<AuditSink, Usage> {
    match path {
        Some(p) => AuditSink::file(p).map_err(|e| Usage(format!("cannot open `{}`: {e}", p.display()))),
        None => Ok(AuditSink::Discard),
    }
}

pub(crate) fn print_error(e: &Error) {
    println!("{}", serde_json::json!({"error": {"kind": e.kind(), "message": e.message()}}));
}

fn writ_for(common: &Common) -> Result<Result<Writ, Error>, Usage> {
    let audit = audit_sink(common.audit.as_deref())?;
    let writ = match Writ::builder().audit(audit).build() {
        Ok(w) => w,
        Err(e) => return Ok(Err(e)),
    };
    writ.set_time(common.at);
    Ok(writ_with_bundles(&writ, &common.bundles)?.map(|()| writ))
}

/// Install each `--bundle`; an error names the bundle and its file.
pub(crate) fn writ_with_bundles(writ: &Writ, bundles: &[(String, PathBuf)]) -> Result<Result<(), Error>, Usage> {
    for (td, file) in bundles {
        let bytes = read(file)?;
        if let Err(e) = writ.set_bundle(td, &bytes) {
            let msg = format!("bundle `{td}` (`{}`): {}", file.display(), e.message());
            return Ok(Err(match e {
                Error::Malformed(_) => Error::Malformed(msg),
                Error::Limit(_) => Error::Limit(msg),
                other => other,
            }));
        }
    }
    Ok(Ok(()))
}

/// Certificates from PEM (every CERTIFICATE block, in order) or one DER certificate.
pub(crate) fn chain_from(bytes: &[u8], path: &std::path::Path) -> Result<Vec<Vec<u8>>, Error> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let text_start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    if text_start.is_some_and(|i| bytes[i] == b'-') {
        let certs = CertificateDer::pem_slice_iter(bytes)
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Malformed(format!("bad PEM in `{}`: {e:?}", path.display())))?;
        if certs.is_empty() {
            return Err(Error::Malformed(format!("no CERTIFICATE block in `{}`", path.display())));
        }
        Ok(certs)
    } else {
        Ok(vec![bytes.to_vec()])
    }
}

/// Policies, schema and entities from files, or the shipped pack.
pub(crate) fn load_source(src: &PolicySource) -> Result<(String, Option<String>, Option<String>), Usage> {
    load_files(src.policies.as_slice(), src.schema.as_ref(), src.entities.as_ref())
}

fn load_files(
    paths: &[PathBuf],
    schema: Option<&PathBuf>,
    entities: Option<&PathBuf>,
) -> Result<(String, Option<String>, Option<String>), Usage> {
    let p = writ_host::pack::Pack::load(paths, schema.map(PathBuf::as_path), entities.map(PathBuf::as_path))
        .map_err(Usage)?;
    Ok((p.policies, p.schema, p.entities))
}

/// The exit code of a deny.
pub(crate) const DENY: u8 = 3;

fn authorize(args: AuthorizeArgs) -> Result<ExitCode, Usage> {
    let (policies, schema, entities) = load_source(&args.source)?;
    let audit = audit_sink(args.audit.as_deref())?;
    let fail = |e: Error| {
        print_error(&e);
        Ok(ExitCode::from(1))
    };
    let writ = match Writ::builder().audit(audit).state(args.state.location()?).build() {
        Ok(w) => w,
        Err(e) => return fail(e),
    };
    writ.set_time(args.at);
    if let Err(e) = writ.set_ttl_cap(args.ttl_cap) {
        return fail(e);
    }
    if let Err(e) = writ.set_policies(&policies, schema.as_deref(), entities.as_deref()) {
        return fail(e);
    }
    if !args.principal.starts_with("spiffe://") {
        return Err(Usage(format!("`{}` is not a SPIFFE ID (spiffe://…)", args.principal)));
    }
    // A dry run names its principal: the component takes it as asserted (no SVID is shown).
    let expires_at = args.expires_at.unwrap_or(writ.now() + 3600);
    let who = match writ.assert_identity(&args.principal, expires_at, "writ authorize") {
        Ok(who) => who,
        Err(e) => return fail(e),
    };
    let what = writ_host::Intent {
        action: args.action,
        resource: args.resource,
        task_id: args.task,
        context: args.context,
        input: String::new(),
    };
    match writ.check(&who, &what) {
        Ok(d) => {
            println!("{}", serde_json::to_string(&d).unwrap_or_default());
            Ok(if d.allow { ExitCode::SUCCESS } else { ExitCode::from(DENY) })
        }
        Err(e) => fail(e),
    }
}

/// The identity as one JSON object, fields in contract order.
fn identity_json(id: &writ_host::Identity) -> Option<String> {
    Some(serde_json::to_string(id).unwrap_or_default())
}

/// `Ok(Ok(Some(json)))` prints the answer; `Ok(Ok(None))` printed its own output.
fn run(cli: Cli) -> Result<Result<Option<String>, Error>, Usage> {
    match cli.command {
        Command::Demo => Ok(demo::run().map(|()| None)),
        Command::Authorize(_)
        | Command::Issue(_)
        | Command::Present(_)
        | Command::Delegate(_)
        | Command::Revoke(_)
        | Command::Restore(_)
        | Command::Task(_)
        | Command::Jwks { .. }
        | Command::Bench(_)
        | Command::Mcp(_)
        | Command::Serve(_) => Err(Usage("internal: dispatched in main".into())),
        Command::State(state::StateCmd::Check { state }) => state::check(&state),
        Command::Policy(PolicyCmd::Check { files, schema, entities }) => {
            let (p, s, e) = load_files(&files, schema.as_ref(), entities.as_ref())?;
            Ok(Writ::builder()
                .build()
                .and_then(|w| w.set_policies(&p, s.as_deref(), e.as_deref()))
                .map(|n| Some(serde_json::json!({ "policies": n }).to_string())))
        }
        Command::Attest(Attest::X509 { common, chain }) => {
            let writ = match writ_for(&common)? {
                Ok(w) => w,
                Err(e) => return Ok(Err(e)),
            };
            let mut certs = Vec::new();
            for path in &chain {
                match chain_from(&read(path)?, path) {
                    Ok(c) => certs.extend(c),
                    Err(e) => return Ok(Err(e)),
                }
            }
            Ok(writ.attest_x509(&certs).map(|a| identity_json(a.identity())))
        }
        Command::Attest(Attest::Oidc { oidc, issuer, jwks, audience, at, audit, token }) => {
            let token = credentials::token_arg(token)?;
            let jwks = match &jwks {
                Some(f) => {
                    Some(std::fs::read_to_string(f).map_err(|e| Usage(format!("cannot read `{}`: {e}", f.display())))?)
                }
                None => None,
            };
            let writ = match Writ::builder().audit(audit_sink(audit.as_deref())?).build() {
                Ok(w) => w,
                Err(e) => return Ok(Err(e)),
            };
            writ.set_time(at);
            if let Err(e) = credentials::load_oidc(&writ, &oidc, issuer.as_deref().zip(jwks.as_deref()))? {
                return Ok(Err(e));
            }
            Ok(writ.attest_oidc(&token, issuer.as_deref(), &audience).map(|a| identity_json(a.identity())))
        }
        Command::Attest(Attest::Jwt { common, audience, leeway, token }) => {
            let token = credentials::token_arg(token)?;
            let writ = match writ_for(&common)? {
                Ok(w) => w,
                Err(e) => return Ok(Err(e)),
            };
            if let Err(e) = writ.set_leeway(leeway) {
                return Ok(Err(e));
            }
            Ok(writ.attest_jwt(&token, &audience).map(|a| identity_json(a.identity())))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands with their own exit codes (deny = 3) run here; the rest through `run`.
    let own_exit = match cli.command {
        Command::Authorize(args) => authorize(args),
        Command::Issue(args) => credentials::issue(args),
        Command::Present(args) => credentials::present(args),
        Command::Delegate(args) => credentials::delegate(args),
        Command::Revoke(args) => credentials::revoke(args),
        Command::Restore(args) => credentials::restore(args),
        Command::Task(cmd) => task::run(cmd),
        Command::Jwks { key } => credentials::jwks(key.as_deref()),
        Command::Bench(args) => bench::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Mcp(cmd) => mcp::run(cmd),
        command => return exit(run(Cli { command })),
    };
    own_exit.unwrap_or_else(|Usage(msg)| {
        eprintln!("error: {msg}");
        ExitCode::from(2)
    })
}

fn exit(result: Result<Result<Option<String>, Error>, Usage>) -> ExitCode {
    match result {
        Ok(Ok(None)) => ExitCode::SUCCESS,
        Ok(Ok(Some(v))) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            print_error(&e);
            ExitCode::from(1)
        }
        Err(Usage(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every subcommand (duplicate argument ids, conflicts
    /// and requirements naming arguments that exist), which otherwise panic only when that
    /// subcommand runs.
    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory as _;
        super::Cli::command().debug_assert();
    }
}
