//! A task: the unit of work credentials are issued for, opened by a principal policy allows,
//! with its members, purpose and deadline.

use serde::{Deserialize, Serialize};

/// A task as the registry keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    /// The SPIFFE ID that opened it.
    pub opener: String,
    /// The agents (SPIFFE IDs) credentials of it may be issued or delegated to.
    pub members: Vec<String>,
    pub purpose: String,
    /// Unix seconds.
    pub opened_at: u64,
    /// Unix seconds: the task is over then, and no credential of it lives past it.
    pub deadline: u64,
    /// When it was ended, if it was (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
}

impl Task {
    /// Open at `now`: opened, not ended, before its deadline.
    pub fn is_open(&self, now: u64) -> bool {
        self.ended_at.is_none() && now < self.deadline
    }

    /// Whether `spiffe_id` is one of its members.
    pub fn has_member(&self, spiffe_id: &str) -> bool {
        self.members.iter().any(|m| m == spiffe_id)
    }
}
