//! `writ`: the command line over the Writ component.
//!
//! Contracts other tools rely on:
//! - success: one JSON object on stdout, exit 0;
//! - rejection: `{"error":{"kind":…,"message":…}}` on stdout, exit 1;
//! - usage errors (bad flags, unreadable files): a message on stderr, exit 2.

mod demo;

use clap::{Args, Parser, Subcommand};
use std::io::Read as _;
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
    /// Make a test trust domain and attest sample SVIDs through the component.
    Demo,
    /// Print the issuer's public keys (JWKS).
    Jwks,
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

fn parse_bundle(s: &str) -> Result<(String, PathBuf), String> {
    let (td, file) = s.split_once('=').ok_or("expected <TRUST_DOMAIN>=<FILE>")?;
    if td.is_empty() || file.is_empty() {
        return Err("expected <TRUST_DOMAIN>=<FILE>".into());
    }
    Ok((td.to_string(), PathBuf::from(file)))
}

/// A usage problem: reported on stderr, exit 2.
struct Usage(String);

fn read(path: &std::path::Path) -> Result<Vec<u8>, Usage> {
    std::fs::read(path).map_err(|e| Usage(format!("cannot read `{}`: {e}", path.display())))
}

fn print_error(e: &Error) {
    println!("{}", serde_json::json!({"error": {"kind": e.kind(), "message": e.message()}}));
}

fn writ_for(common: &Common) -> Result<Result<Writ, Error>, Usage> {
    let audit = match &common.audit {
        Some(p) => AuditSink::file(p).map_err(|e| Usage(format!("cannot open `{}`: {e}", p.display())))?,
        None => AuditSink::Discard,
    };
    let writ = match Writ::builder().audit(audit).build() {
        Ok(w) => w,
        Err(e) => return Ok(Err(e)),
    };
    writ.set_time(common.at);
    for (td, file) in &common.bundles {
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
    Ok(Ok(writ))
}

/// Certificates from PEM (every CERTIFICATE block, in order) or one DER certificate.
fn chain_from(bytes: &[u8], path: &std::path::Path) -> Result<Vec<Vec<u8>>, Error> {
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

/// The identity as one JSON object, fields in contract order.
fn identity_json(id: writ_host::Identity) -> Option<String> {
    Some(serde_json::to_string(&id).unwrap_or_default())
}

/// `Ok(Ok(Some(json)))` prints the answer; `Ok(Ok(None))` printed its own output.
fn run(cli: Cli) -> Result<Result<Option<String>, Error>, Usage> {
    match cli.command {
        Command::Demo => Ok(demo::run().map(|()| None)),
        Command::Jwks => Ok(Writ::builder().build().and_then(|w| w.jwks()).map(Some)),
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
            Ok(writ.attest_x509(&certs).map(identity_json))
        }
        Command::Attest(Attest::Jwt { common, audience, leeway, token }) => {
            let token = if token == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).map_err(|e| Usage(format!("cannot read stdin: {e}")))?;
                s.trim().to_string()
            } else {
                token
            };
            let writ = match writ_for(&common)? {
                Ok(w) => w,
                Err(e) => return Ok(Err(e)),
            };
            if let Err(e) = writ.set_leeway(leeway) {
                return Ok(Err(e));
            }
            Ok(writ.attest_jwt(&token, &audience).map(identity_json))
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
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
