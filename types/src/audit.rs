//! The audit event: one schema for every place that writes one (the host's sinks, the
//! proxy-wasm filter's log lines). Its JSON field names are written here and nowhere else;
//! they follow the OpenTelemetry GenAI conventions where one exists.

use serde::{Deserialize, Serialize};

/// One audited operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// `attest`, `authorize`, `evaluate`, `issue`, `present`, `delegate`, `revoke`, `ledger`,
    /// `refuse`, `mcp` (one per message the MCP gateway decided).
    #[serde(rename = "event.name")]
    pub kind: String,
    /// Unix seconds.
    pub time: u64,
    #[serde(rename = "gen_ai.agent.id", default, skip_serializing_if = "Option::is_none")]
    pub spiffe_id: Option<String>,
    #[serde(rename = "writ.task_id", default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(rename = "gen_ai.tool.name", default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(rename = "writ.resource", default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(rename = "writ.allow")]
    pub allow: bool,
    #[serde(rename = "writ.reasons", default)]
    pub reasons: Vec<String>,
    #[serde(rename = "writ.jti", default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// The delegation chain: the holder first, the original subject last.
    #[serde(rename = "writ.act_chain", default, skip_serializing_if = "Vec::is_empty")]
    pub act_chain: Vec<String>,
    #[serde(rename = "writ.detail", default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// An MCP call through the gateway: `execute_tool` for `tools/call`.
    #[serde(rename = "gen_ai.operation.name", default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The JSON-RPC method of an MCP message (`tools/call`, `resources/read`…).
    #[serde(rename = "mcp.method.name", default, skip_serializing_if = "Option::is_none")]
    pub mcp_method: Option<String>,
    #[serde(rename = "mcp.session.id", default, skip_serializing_if = "Option::is_none")]
    pub mcp_session: Option<String>,
    /// The digest of the call's input (`input#S256` of its credential), never the input itself.
    #[serde(rename = "writ.input_digest", default, skip_serializing_if = "Option::is_none")]
    pub input_digest: Option<String>,
}

impl AuditEvent {
    /// The event as one JSON line (no newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
