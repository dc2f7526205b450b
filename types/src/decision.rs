//! An authorization decision: what `check`, `evaluate` and `present` answer.

use serde::{Deserialize, Serialize};

/// An authorization decision, with the policies that determined it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allow: bool,
    /// The ids of the determining policies (sorted), or Writ's own `writ:` reasons.
    pub reasons: Vec<String>,
    /// Problems that prevented a decision (they deny).
    pub errors: Vec<String>,
    /// How long a credential for this intent may live, seconds (0 when denied).
    pub max_ttl_secs: u32,
}

impl Decision {
    /// The closed default: deny, with the problem that prevented a decision in `errors`.
    pub fn error(problem: impl Into<String>) -> Self {
        Decision { allow: false, reasons: Vec::new(), errors: vec![problem.into()], max_ttl_secs: 0 }
    }
}

/// The reason of a deny about an identity that expired after it was attested.
pub const IDENTITY_EXPIRED: &str = "writ:identity-expired";

/// The reason of a deny about an identity the component no longer establishes (its trust
/// bundle was removed or replaced since it was attested).
pub const NOT_ATTESTED: &str = "writ:not-attested";

/// The reason of a deny because a determining permit's `@max_calls` budget for the task is
/// spent (or the request names no open task to count it in).
pub const MAX_CALLS_SPENT: &str = "writ:max-calls";
