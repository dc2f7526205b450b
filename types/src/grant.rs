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

/// The JWS `typ` of Writ's credentials.
pub const CREDENTIAL_TYPE: &str = "txntoken+jwt";

/// The task (`txn`) a compact JWS says it is a Writ credential of, read **without verifying
/// anything**: to route a bearer token to `present` rather than to attestation, and to name the
/// task the presented intent is for — `present` then refuses a credential whose verified `txn`
/// differs. `None` when the token is not a JWS of type [`CREDENTIAL_TYPE`] with a string `txn`.
pub fn unverified_credential_task(token: &str) -> Option<String> {
    unverified_payload(token)?.get("txn")?.as_str().map(str::to_string)
}

/// The (action, resource) pairs of a Writ credential's `scope`, read **without verifying
/// anything**: only ever to narrow what an agent is shown (an MCP tool list), never to allow —
/// every call is presented and verified on its own. `None` when the token is not a JWS of type
/// [`CREDENTIAL_TYPE`] with a `scope` array.
pub fn unverified_credential_scope(token: &str) -> Option<Vec<(String, String)>> {
    let payload = unverified_payload(token)?;
    let items = payload.get("scope")?.as_array()?;
    Some(
        items
            .iter()
            .filter_map(|i| Some((i.get("action")?.as_str()?.to_string(), i.get("resource")?.as_str()?.to_string())))
            .collect(),
    )
}

/// A compact JWS's payload when its header's `typ` is [`CREDENTIAL_TYPE`], unverified.
fn unverified_payload(token: &str) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let mut parts = token.split('.');
    let (header, payload) = (parts.next()?, parts.next()?);
    parts.next()?;
    if parts.next().is_some() || header.len() > 4096 || payload.len() > 64 * 1024 {
        return None;
    }
    let decode = |b64: &str| -> Option<serde_json::Value> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b64).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    if decode(header)?.get("typ")?.as_str()? != CREDENTIAL_TYPE {
        return None;
    }
    decode(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn jws(header: &str, payload: &str) -> String {
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", e(header), e(payload))
    }

    #[test]
    fn a_credentials_scope_is_read_as_action_resource_pairs() {
        let t = jws(
            r#"{"alg":"EdDSA","typ":"txntoken+jwt"}"#,
            r#"{"txn":"r","scope":[{"action":"pay","resource":"McpServer::\"p\"","input#S256":"x"},{"action":7}]}"#,
        );
        assert_eq!(unverified_credential_scope(&t), Some(vec![("pay".to_string(), "McpServer::\"p\"".to_string())]));
        let other = jws(r#"{"alg":"EdDSA","typ":"JWT"}"#, r#"{"scope":[{"action":"pay","resource":"r"}]}"#);
        assert_eq!(unverified_credential_scope(&other), None);
        assert_eq!(unverified_credential_scope(&jws(r#"{"typ":"txntoken+jwt"}"#, r#"{"txn":"r"}"#)), None);
    }

    #[test]
    fn only_a_writ_credentials_task_is_read() {
        let t = jws(r#"{"alg":"EdDSA","typ":"txntoken+jwt"}"#, r#"{"txn":"run-7"}"#);
        assert_eq!(unverified_credential_task(&t).as_deref(), Some("run-7"));
        assert_eq!(unverified_credential_task(&jws(r#"{"alg":"ES256","typ":"JWT"}"#, r#"{"txn":"run-7"}"#)), None);
        assert_eq!(unverified_credential_task(&jws(r#"{"typ":"txntoken+jwt"}"#, r#"{"txn":7}"#)), None);
        for bad in ["", "a.b", "not base64.x.y", "a.b.c.d"] {
            assert_eq!(unverified_credential_task(bad), None, "{bad}");
        }
    }
}
