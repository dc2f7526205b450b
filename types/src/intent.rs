//! What an attested caller is about to do.

use serde::{Deserialize, Serialize};

/// What a caller is about to do: an action on a resource, inside a task, with a context.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Intent {
    pub action: String,
    /// A Cedar entity uid: `Type::"id"`.
    pub resource: String,
    pub task_id: String,
    /// What the caller says about the request: a JSON object (policies read it as
    /// `context.claimed`); empty means `{}`.
    pub context: String,
    /// The arguments of the call this decision lets through, as the host forwards them: a JSON
    /// object (policies read it as `context.input`, Writ's key). Only a host that forwards
    /// exactly these bytes sets it — the MCP gateway does, for a `tools/call`'s `arguments` —
    /// so a caller cannot claim one thing and send another. Empty: none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub input: String,
}
