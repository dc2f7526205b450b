//! An issued task credential.

use serde::{Deserialize, Serialize};

/// An issued task credential: the compact JWS and what a holder needs to know of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Compact JWS (`typ` `txntoken+jwt`).
    pub token: String,
    pub jti: String,
    /// Unix seconds.
    pub expires_at: u64,
}
