//! Authorization inputs and outputs shared by `authorize` and `issue`.

use serde::{Deserialize, Serialize};

/// What a caller is about to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub action: String,
    pub resource: String,
    pub task_id: String,
    /// A JSON object; empty means `{}`.
    pub context: String,
}

/// An authorization decision, with the policies that determined it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allow: bool,
    pub reasons: Vec<String>,
    pub errors: Vec<String>,
    pub max_ttl_secs: u32,
}

impl Decision {
    /// The closed default: deny, with the problem that prevented a decision in `errors`.
    pub fn error(problem: impl Into<String>) -> Self {
        Decision { allow: false, reasons: Vec::new(), errors: vec![problem.into()], max_ttl_secs: 0 }
    }
}
