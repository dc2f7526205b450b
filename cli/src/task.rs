//! `writ task open | end | show`: tasks as records in the state (`--state`), the same registry
//! `writ serve` keeps. Opening is decided by policy for the attested opener (`--chain`);
//! `end` and `show` act with the operator's issuer key and state, like `writ revoke`.

use crate::Usage;
use crate::credentials::{Caller, Issuer, attested, finish, writ_for};
use clap::{Args, Subcommand};
use std::process::ExitCode;
use writ_host::Error;

#[derive(Subcommand)]
pub enum TaskCmd {
    /// Open a task for the agent of `--chain` (policy action `open_task`), naming its members,
    /// purpose and lifetime; prints the task.
    Open(Box<OpenArgs>),
    /// End a task: revoke every credential of it; a task never opened is an error.
    End(TaskId),
    /// Print a task (`ended_at` once ended); exit 1 when it was never opened.
    Show(TaskId),
}

#[derive(Args)]
pub struct OpenArgs {
    #[command(flatten)]
    pub caller: Caller,
    /// The task id (new).
    #[arg(long, value_name = "ID")]
    pub id: String,
    /// A member agent (repeatable): the SPIFFE IDs credentials of the task may go to.
    #[arg(long = "member", required = true, value_name = "SPIFFE_ID")]
    pub members: Vec<String>,
    /// What the task is for (policies and audit read it).
    #[arg(long, default_value = "")]
    pub purpose: String,
    /// How long the task stays open, seconds (at most a week).
    #[arg(long, value_name = "SECS")]
    pub ttl: u64,
}

#[derive(Args)]
pub struct TaskId {
    #[command(flatten)]
    pub issuer: Issuer,
    /// The task id.
    #[arg(long, value_name = "ID")]
    pub id: String,
}

pub fn run(cmd: TaskCmd) -> Result<ExitCode, Usage> {
    let result = match cmd {
        TaskCmd::Open(args) => {
            attested(&args.caller, &format!("open-task\n{}", args.id))?.and_then(|(writ, opener)| {
                let deadline = writ.now().saturating_add(args.ttl);
                writ.open_task(&opener, &args.id, &args.members, &args.purpose, deadline)
                    .map(|t| serde_json::to_value(t).unwrap_or_default())
            })
        }
        TaskCmd::End(t) => writ_for(&t.issuer)?
            .and_then(|writ| writ.end_task(&t.id))
            .map(|n| serde_json::json!({ "task": t.id, "revoked": n })),
        TaskCmd::Show(t) => writ_for(&t.issuer)?.and_then(|writ| match writ.task(&t.id)? {
            Some(task) => Ok(serde_json::to_value(task).unwrap_or_default()),
            None => Err(Error::Malformed(format!("task `{}` was never opened", t.id))),
        }),
    };
    Ok(finish(result))
}
