//! `writ mcp schema`: a Cedar schema and a deny-by-default starter policy for an MCP server's
//! tools, from the server itself (`--upstream`, asked as an MCP client asks) or from a saved
//! `tools/list` answer (`--tools`).

use crate::Usage;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use writ_host::Writ;

#[derive(Subcommand)]
pub(crate) enum McpCmd {
    /// Print a Cedar schema for an MCP server's tools (one action per tool, its arguments
    /// typed as `context.input`, merged into Writ's schema) and a deny-by-default starter
    /// policy (exit 0; 1 when the tools cannot be read or typed; 2 usage).
    Schema(SchemaArgs),
}

#[derive(Args)]
pub(crate) struct SchemaArgs {
    /// The MCP server's URL (Streamable HTTP), asked for its tools.
    #[arg(long, value_name = "URL", required_unless_present = "tools", conflicts_with = "tools")]
    upstream: Option<String>,
    /// A saved `tools/list` answer (`{"tools": [...]}`, the whole JSON-RPC answer, or the array).
    #[arg(long, value_name = "FILE")]
    tools: Option<PathBuf>,
    /// The upstream's name in the gateway (`McpServer::"<name>"`, `[[mcp.upstream]] name`).
    #[arg(long)]
    name: String,
    /// The schema to merge the tools into (Cedar or JSON syntax). Default: Writ's shipped
    /// schema. Give the output of an earlier run to add another upstream's tools.
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// Write `<name>.cedarschema` and `<name>.cedar` (the starter policy) into this
    /// directory instead of printing them.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// `Authorization: Bearer` for an upstream that asks for one.
    #[arg(long, value_name = "TOKEN", requires = "upstream")]
    bearer: Option<String>,
    /// CA certificates (PEM) of an `https://` upstream. Default: the system's roots.
    #[arg(long, value_name = "FILE", requires = "upstream")]
    ca_file: Option<PathBuf>,
    /// Seconds to wait for each answer of the upstream.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

pub(crate) fn run(cmd: McpCmd) -> Result<ExitCode, Usage> {
    let McpCmd::Schema(args) = cmd;
    let base = match &args.schema {
        Some(p) => std::fs::read_to_string(p).map_err(|e| Usage(format!("cannot read `{}`: {e}", p.display())))?,
        None => writ_host::pack::Pack::shipped().schema.unwrap_or_default(),
    };
    let tools = match (&args.tools, &args.upstream) {
        (Some(p), _) => std::fs::read_to_string(p).map_err(|e| Usage(format!("cannot read `{}`: {e}", p.display())))?,
        (None, Some(url)) => match fetch(url, &args) {
            Ok(t) => t,
            Err(e) => return Ok(failed(&format!("cannot list the tools of {url}: {e}"))),
        },
        (None, None) => return Err(Usage("give --upstream URL or --tools FILE".into())),
    };
    let generated = match Writ::builder().build().and_then(|w| w.mcp_schema(&base, &args.name, &tools)) {
        Ok(g) => g,
        Err(e) => return Ok(failed(&e.to_string())),
    };
    for (tool, why) in &generated.untyped {
        eprintln!("warning: tool `{tool}` left out: {why}");
    }
    // This upstream's actions only (a base made by an earlier run holds others' too).
    let count = generated.schema.matches(&format!("@mcp_upstream(\"{}\")", args.name)).count();
    let source = match (&args.tools, &args.upstream) {
        (Some(p), _) => format!("the tools of `{}`", p.display()),
        (None, Some(url)) => format!("the tools of {url}"),
        (None, None) => String::new(),
    };
    let schema = format!(
        "// Writ's schema with the MCP upstream `{}`'s tools, from {source} (`writ mcp schema`).\n\
         // Each tool is an action; its arguments are `context.input`. Regenerate, do not edit, the\n\
         // actions marked @mcp_upstream: the gateway compares them with the tools it is shown.\n{}",
        args.name, generated.schema
    );
    match &args.out {
        None => {
            println!("{schema}");
            println!("// ---- starter policies: save as {}.cedar ----", args.name);
            print!("{}", generated.starter);
        }
        Some(dir) => {
            let schema_path = dir.join(format!("{}.cedarschema", args.name));
            let policy_path = dir.join(format!("{}.cedar", args.name));
            if let Err(e) = std::fs::create_dir_all(dir) {
                return Ok(failed(&format!("cannot create `{}`: {e}", dir.display())));
            }
            for (path, text) in [(&schema_path, &schema), (&policy_path, &generated.starter)] {
                if let Err(e) = std::fs::write(path, text) {
                    return Ok(failed(&format!("cannot write `{}`: {e}", path.display())));
                }
            }
            println!(
                "{} tool actions for upstream `{}` ({} new or changed): {} and {}",
                count,
                args.name,
                generated.changed.len(),
                schema_path.display(),
                policy_path.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn fetch(url: &str, args: &SchemaArgs) -> Result<String, String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(writ_server::fetch_tools(
        url,
        args.bearer.as_deref(),
        args.ca_file.as_deref(),
        Duration::from_secs(args.timeout.max(1)),
    ))
}

fn failed(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}
