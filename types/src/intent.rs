//! What an attested caller is about to do.

use serde::{Deserialize, Serialize};

/// What a caller is about to do: an action on a resource, inside a task, with a context.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Intent {
    pub action: String,
    /// A Cedar entity uid: `Type::"id"`.
    pub resource: String,
    pub task_id: String,
    /// A JSON object; empty means `{}`.
    pub context: String,
}
