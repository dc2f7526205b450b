//! `--state` (where grants and revocations live, shared by CLI invocations and servers) and
//! `writ state check`.

use crate::Usage;
use clap::{Args, Subcommand};
use writ_host::state::StateLocation;
use writ_host::{Error, Writ};

#[derive(Args, Clone)]
pub struct StateArg {
    /// Where grants and revocations are kept: a state directory (shared by every `writ`
    /// command and `writ serve` given it), `nats://HOST:PORT[/PREFIX]` (NATS JetStream,
    /// shared by replicas anywhere), or `memory` (this process only). Default:
    /// `$WRIT_STATE_DIR`, else `$XDG_STATE_HOME/writ`, else `~/.local/state/writ`.
    #[arg(long = "state", value_name = "DIR|nats://HOST:PORT[/PREFIX]|memory")]
    pub state: Option<String>,
    /// With NATS: refuse to issue or present credentials once this process's view of
    /// revocations is older than this (milliseconds; default 3000).
    #[arg(long = "state-max-lag", value_name = "MS")]
    pub max_lag_ms: Option<u64>,
}

impl StateArg {
    /// The location named, or the default.
    pub fn location(&self) -> Result<StateLocation, Usage> {
        let location = match &self.state {
            Some(spec) => StateLocation::parse(spec).map_err(Usage)?,
            None => StateLocation::default_location(),
        };
        Ok(match self.max_lag_ms {
            Some(0) => return Err(Usage("--state-max-lag must be at least 1 ms".into())),
            Some(ms) => location.with_max_lag(std::time::Duration::from_millis(ms)),
            None => location,
        })
    }
}

#[derive(Subcommand)]
pub enum StateCmd {
    /// Open the state store, check its integrity, and print what it holds (exit 1 when it
    /// cannot be read).
    Check {
        #[command(flatten)]
        state: StateArg,
    },
}

/// `writ state check`.
pub fn check(state: &StateArg) -> Result<Result<Option<String>, Error>, Usage> {
    let location = state.location()?;
    Ok(Writ::builder()
        .state(location)
        .build()
        .and_then(|w| w.state_summary())
        .map(|s| Some(serde_json::json!(s).to_string())))
}
