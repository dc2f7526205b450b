//! `writ issue | present | delegate | revoke`: task credentials from the command line.
//!
//! `--key` names the issuer key file (PKCS#8 PEM, created on first use), so separate
//! invocations share one issuer; grants and revocations live in the state directory
//! (`--state`, the same one `writ serve` uses), so a `revoke` is seen by every later `present`
//! and by a server running on that directory. Callers are attested from `--chain` against
//! `--bundle`, exactly as `writ attest x509` does, and prove they hold its leaf's private key
//! (`--chain-key`): `writ` signs a fresh challenge bound to what it is about to do with that
//! key and the component verifies the signature with the leaf's public key — a certificate
//! file alone (public, and so anyone's) proves nothing.

use crate::{DENY, PolicySource, Usage, audit_sink, chain_from, load_source, print_error, read, writ_with_bundles};
use clap::{Args, ValueEnum};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use writ_host::{Attested, Error, Intent, IssuerAlg, IssuerKey, Writ};

#[derive(Clone, Copy, ValueEnum)]
pub enum Alg {
    /// Ed25519 (JWS `EdDSA`).
    Eddsa,
    /// ECDSA P-256 (JWS `ES256`).
    Es256,
}

#[derive(Args)]
pub struct Issuer {
    /// The issuer key file (PKCS#8 PEM), created on first use.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    #[command(flatten)]
    pub state: crate::state::StateArg,
    /// The algorithm of a key created now (an existing key keeps its own).
    #[arg(long, value_enum, default_value = "eddsa")]
    pub alg: Alg,
    /// Act at this time (unix seconds) instead of now. Decisions and credentials use it;
    /// stored state never expires by it (only by the real clock).
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub at: Option<u64>,
    /// Write audit events as JSON lines to this file.
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
}

#[derive(Args)]
pub struct Caller {
    #[command(flatten)]
    pub issuer: Issuer,
    /// A trust bundle: `<TRUST_DOMAIN>=<FILE>` (PEM/DER certificates or a SPIFFE JWKS bundle).
    #[arg(long = "bundle", value_name = "TRUST_DOMAIN=FILE", value_parser = crate::parse_bundle)]
    pub bundles: Vec<(String, PathBuf)>,
    /// The caller's X.509-SVID chain (PEM with the leaf first, or DER).
    #[arg(long, value_name = "FILE", required_unless_present = "identity_token", requires = "chain_key")]
    pub chain: Option<PathBuf>,
    /// The private key of the chain's leaf (PKCS#8 PEM, as SPIRE writes it): proves the caller
    /// holds it.
    #[arg(long, value_name = "FILE", requires = "chain")]
    pub chain_key: Option<PathBuf>,
    /// Instead of a chain: the caller's bearer identity token, a JWT-SVID (its trust domain's
    /// `--bundle` holds JWT keys) or an OIDC workload token of an `--oidc` issuer. A bearer
    /// proof: whoever holds the token is the caller.
    #[arg(long = "token", value_name = "TOKEN", conflicts_with = "chain")]
    pub identity_token: Option<String>,
    /// The audience `--token` must name.
    #[arg(long, value_name = "AUD", default_value = "writ")]
    pub token_audience: String,
    /// OIDC issuers (a JSON file, see docs/attestation.md) whose tokens `--token` may be.
    #[arg(long, value_name = "FILE")]
    pub oidc: Option<PathBuf>,
    #[command(flatten)]
    pub source: PolicySource,
    /// Lifetime cap, seconds (the ceiling of every credential and `@ttl`).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub ttl_cap: u32,
}

#[derive(Args)]
pub struct IssueArgs {
    #[command(flatten)]
    pub caller: Caller,
    /// The task the credential is for.
    #[arg(long, value_name = "ID")]
    pub task: String,
    /// An intent of the scope: `'<ACTION> <RESOURCE>'`, e.g. `'read PayrollRecord::"run-42/emp-7"'`. Repeat.
    #[arg(long = "scope", required = true, value_name = "'ACTION RESOURCE'", value_parser = parse_scope)]
    pub scope: Vec<Intent>,
    /// Requested lifetime, seconds (policy `@ttl`s, the identity's expiry and the cap may shorten it).
    #[arg(long, value_name = "SECS")]
    pub ttl: u32,
    /// Who the credential is for (its `aud`).
    #[arg(long, value_name = "AUD")]
    pub audience: String,
}

#[derive(Args)]
pub struct PresentArgs {
    #[command(flatten)]
    pub caller: Caller,
    /// The action about to be done.
    #[arg(long, value_name = "NAME")]
    pub action: String,
    /// The resource, a Cedar entity uid.
    #[arg(long, value_name = "TYPE::\"ID\"")]
    pub resource: String,
    /// The intent's context, a JSON object.
    #[arg(long, value_name = "JSON", default_value = "")]
    pub context: String,
    /// The task the intent belongs to (default: the credential's).
    #[arg(long, value_name = "ID", default_value = "")]
    pub task: String,
    /// The audience this service is: the credential must name it.
    #[arg(long, value_name = "AUD")]
    pub audience: String,
    /// The credential, or `-` to read it from stdin.
    pub token: String,
}

#[derive(Args)]
pub struct DelegateArgs {
    /// The holder's chain is `--chain`; the sub-agent's is `--to-chain`.
    #[command(flatten)]
    pub caller: Caller,
    /// The sub-agent's X.509-SVID chain (PEM with the leaf first, or DER).
    #[arg(long, value_name = "FILE")]
    pub to_chain: PathBuf,
    /// An intent of the narrower scope: `'<ACTION> <RESOURCE>'`. Repeat.
    #[arg(long = "scope", required = true, value_name = "'ACTION RESOURCE'", value_parser = parse_scope)]
    pub scope: Vec<Intent>,
    /// Requested lifetime, seconds (never beyond the parent's).
    #[arg(long, value_name = "SECS")]
    pub ttl: u32,
    /// The parent credential, or `-` to read it from stdin.
    pub parent: String,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// End a task: revoke every grant of it, delegated ones too.
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
    /// Cut an agent off: revoke every grant held by or delegated from it, and deny every
    /// decision about it until `writ restore`.
    #[arg(long, value_name = "SPIFFE_ID")]
    pub agent: Option<String>,
}

#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub issuer: Issuer,
    /// The agent whose cut-off is lifted.
    #[arg(long, value_name = "SPIFFE_ID")]
    pub agent: String,
}

#[derive(Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub issuer: Issuer,
    #[command(flatten)]
    pub target: Target,
}

fn parse_scope(s: &str) -> Result<Intent, String> {
    let (action, resource) = s.trim().split_once(char::is_whitespace).ok_or("expected '<ACTION> <RESOURCE>'")?;
    Ok(Intent {
        action: action.to_string(),
        resource: resource.trim().to_string(),
        task_id: String::new(),
        context: String::new(),
        input: String::new(),
    })
}

/// A token argument, or stdin (trimmed) when it is `-`.
pub(crate) fn token_arg(t: String) -> Result<String, Usage> {
    if t != "-" {
        return Ok(t);
    }
    let mut s = String::new();
    std::io::stdin().read_to_string(&mut s).map_err(|e| Usage(format!("cannot read stdin: {e}")))?;
    Ok(s.trim().to_string())
}

/// A `Writ` with the issuer key of `--key` and the state of `--state`.
pub(crate) fn writ_for(issuer: &Issuer) -> Result<Result<Writ, Error>, Usage> {
    let alg = match issuer.alg {
        Alg::Eddsa => IssuerAlg::EdDsa,
        Alg::Es256 => IssuerAlg::Es256,
    };
    let key = IssuerKey::load_or_create(&issuer.key, alg).map_err(Usage)?;
    let audit = audit_sink(issuer.audit.as_deref())?;
    let mut b = Writ::builder().issuer(key).audit(audit).state(issuer.state.location()?);
    if let Some(t) = issuer.at {
        b = b.time(t);
    }
    Ok(b.build())
}

/// The `Writ`, with bundles and policies loaded, and the attested identity of the caller's
/// chain, its holder proven by a signature with `--chain-key` over a fresh challenge bound to
/// `binding` (what the caller is about to do).
pub(crate) fn attested(caller: &Caller, binding: &str) -> Result<Result<(Writ, Attested), Error>, Usage> {
    let writ = match writ_for(&caller.issuer)? {
        Ok(w) => w,
        Err(e) => return Ok(Err(e)),
    };
    if let Err(e) = writ_with_bundles(&writ, &caller.bundles)? {
        return Ok(Err(e));
    }
    let (p, s, e) = load_source(&caller.source)?;
    let loaded = writ.set_ttl_cap(caller.ttl_cap).and_then(|()| writ.set_policies(&p, s.as_deref(), e.as_deref()));
    if let Err(e) = loaded {
        return Ok(Err(e));
    }
    if let Some(token) = &caller.identity_token {
        if let Some(path) = &caller.oidc
            && let Err(e) = load_oidc(&writ, path, None)?
        {
            return Ok(Err(e));
        }
        return Ok(writ.attest_token(token.trim(), &caller.token_audience).map(|id| (writ, id)));
    }
    let (Some(chain), Some(chain_key)) = (&caller.chain, &caller.chain_key) else {
        return Err(Usage("the caller is `--chain` with `--chain-key`, or `--token`".into()));
    };
    let key =
        std::fs::read_to_string(chain_key).map_err(|e| Usage(format!("cannot read `{}`: {e}", chain_key.display())))?;
    let key = rcgen::KeyPair::from_pem(&key).map_err(|e| {
        Usage(format!(
            "`{}` is not a PKCS#8 private key ({e}); convert a SEC1 key with `openssl pkcs8 -topk8 -nocrypt`",
            chain_key.display()
        ))
    })?;
    let challenge = writ_types::possession::challenge(binding, writ.now(), &nonce());
    let signature = match rcgen::SigningKey::sign(&key, &challenge) {
        Ok(s) => s,
        Err(e) => return Ok(Err(Error::Malformed(format!("signing the possession challenge: {e}")))),
    };
    let certs = chain_from(&read(chain)?, chain);
    Ok(certs.and_then(|c| writ.attest_x509_holding(&c, &challenge, &signature)).map(|id| (writ, id)))
}

/// 16 fresh bytes: each `RandomState` is keyed from the OS's randomness.
fn nonce() -> [u8; 16] {
    use std::hash::BuildHasher as _;
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&std::hash::RandomState::new().hash_one(1u8).to_le_bytes());
    out[8..].copy_from_slice(&std::hash::RandomState::new().hash_one(2u8).to_le_bytes());
    out
}

fn identity(writ: &Writ, chain: &Path) -> Result<Result<Attested, Error>, Usage> {
    Ok(chain_from(&read(chain)?, chain).and_then(|certs| writ.attest_x509(&certs)))
}

/// Print a result: success JSON (exit 0), a denial (exit 3), or another error (exit 1).
pub(crate) fn finish(result: Result<serde_json::Value, Error>) -> ExitCode {
    match result {
        Ok(v) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_error(&e);
            ExitCode::from(if matches!(e, Error::Denied(_)) { DENY } else { 1 })
        }
    }
}

fn grant_json(g: writ_host::Grant) -> serde_json::Value {
    serde_json::json!({ "token": g.token, "jti": g.jti, "expires_at": g.expires_at })
}

pub fn issue(args: IssueArgs) -> Result<ExitCode, Usage> {
    let scope: Vec<String> = args.scope.iter().map(|i| format!("{} {}", i.action, i.resource)).collect();
    let binding = format!("issue\n{}\n{}\n{}", args.task, args.audience, scope.join("\n"));
    let result = attested(&args.caller, &binding)?
        .and_then(|(writ, who)| writ.issue(&who, &args.task, &args.scope, args.ttl, &args.audience))
        .map(grant_json);
    Ok(finish(result))
}

pub fn present(args: PresentArgs) -> Result<ExitCode, Usage> {
    let token = token_arg(args.token)?;
    let what = Intent {
        action: args.action,
        resource: args.resource,
        task_id: args.task,
        context: args.context,
        input: String::new(),
    };
    let binding = format!("present\n{token}\n{} {}\n{}", what.action, what.resource, args.audience);
    let result =
        attested(&args.caller, &binding)?.and_then(|(writ, who)| writ.present(&token, &who, &what, &args.audience));
    Ok(match result {
        Ok(d) => {
            println!("{}", serde_json::to_string(&d).unwrap_or_default());
            if d.allow { ExitCode::SUCCESS } else { ExitCode::from(DENY) }
        }
        Err(e) => {
            print_error(&e);
            ExitCode::from(1)
        }
    })
}

pub fn delegate(args: DelegateArgs) -> Result<ExitCode, Usage> {
    let parent = token_arg(args.parent)?;
    let result = match attested(&args.caller, &format!("delegate\n{parent}"))? {
        Ok((writ, holder)) => {
            identity(&writ, &args.to_chain)?.and_then(|to| writ.delegate(&parent, &holder, &to, &args.scope, args.ttl))
        }
        Err(e) => Err(e),
    };
    Ok(finish(result.map(grant_json)))
}

pub fn revoke(args: RevokeArgs) -> Result<ExitCode, Usage> {
    let result = writ_for(&args.issuer)?.and_then(|writ| match (&args.target.task, &args.target.agent) {
        (Some(task), _) => writ.end_task(task).map(|n| serde_json::json!({ "task": task, "revoked": n })),
        (None, Some(agent)) => writ.cut_off(agent).map(|n| serde_json::json!({ "agent": agent, "revoked": n })),
        (None, None) => Err(Error::Malformed("give --task or --agent".into())),
    });
    Ok(finish(result))
}

/// `writ restore --agent ID`: `{"agent":…,"restored":true|false}` (false: it was not cut off).
pub fn restore(args: RestoreArgs) -> Result<ExitCode, Usage> {
    let result = writ_for(&args.issuer)?
        .and_then(|writ| writ.restore(&args.agent))
        .map(|restored| serde_json::json!({ "agent": args.agent, "restored": restored }));
    Ok(finish(result))
}

/// `writ jwks --key K`: the public keys of the issuer key file.
pub fn jwks(key: Option<&Path>) -> Result<ExitCode, Usage> {
    let mut b = Writ::builder();
    if let Some(k) = key {
        b = b.issuer(IssuerKey::load_or_create(k, IssuerAlg::EdDsa).map_err(Usage)?);
    }
    Ok(finish(
        b.build()
            .and_then(|w| w.jwks())
            .and_then(|s| serde_json::from_str(&s).map_err(|e| Error::Malformed(e.to_string()))),
    ))
}

/// Load the OIDC configuration at `path` into `writ` (`jwks_for`: one issuer's keys given
/// instead); an issuer whose keys are fetched and could not be is an error here (a command
/// runs once: it cannot wait for the next fetch).
pub(crate) fn load_oidc(writ: &Writ, path: &Path, jwks_for: Option<(&str, &str)>) -> Result<Result<(), Error>, Usage> {
    let text = std::fs::read_to_string(path).map_err(|e| Usage(format!("cannot read `{}`: {e}", path.display())))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let loaded = writ_host::oidc::resolve(&text, dir, jwks_for).and_then(|r| writ.load_oidc(r));
    Ok(loaded.and_then(|l| match l.unfetched.is_empty() {
        true => Ok(()),
        false => Err(Error::Unavailable(l.unfetched.join("; "))),
    }))
}
