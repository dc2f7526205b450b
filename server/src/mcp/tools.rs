//! An upstream's tool list, asked for as an MCP client asks (`writ mcp schema --upstream`):
//! `initialize`, `notifications/initialized`, then `tools/list` page by page, over the
//! Streamable HTTP transport (answers in JSON or SSE), and the session closed. The list is
//! returned as `{"tools": [...]}`, the form `writ mcp schema --tools` reads.

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// The protocol revision asked for; the server may answer with another it supports.
const PROTOCOL_VERSION: &str = "2025-06-18";
/// Pages of `tools/list` followed.
const MAX_PAGES: usize = 100;
/// Bytes of one answer read.
const MAX_ANSWER_BYTES: usize = 8 << 20;

/// The tools `url` lists, as `{"tools": [...]}` JSON. `bearer` is sent as `Authorization`
/// when the server wants one; `ca_file` names the CAs of an `https://` server (default the
/// system's roots); `timeout` bounds each exchange.
pub async fn fetch_tools(
    url: &str,
    bearer: Option<&str>,
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<String, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}` is not an http(s) URL"));
    }
    let tls = writ_host::web_tls_config(ca_file).map_err(|e| e.to_string())?;
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let mut session =
        Session { http, url: url.to_string(), bearer: bearer.map(str::to_string), id: None, version: None };
    let init = session
        .request(
            1,
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": { "name": "writ", "version": env!("CARGO_PKG_VERSION") }
            }),
        )
        .await?;
    session.version = init.get("protocolVersion").and_then(Value::as_str).map(str::to_string);
    session.notify("notifications/initialized").await?;
    let mut tools = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0..MAX_PAGES {
        let params = match &cursor {
            Some(c) => json!({ "cursor": c }),
            None => json!({}),
        };
        let result = session.request(2 + page as u64, "tools/list", params).await?;
        match result.get("tools") {
            Some(Value::Array(a)) => tools.extend(a.iter().cloned()),
            _ => return Err("the server's tools/list answer has no `tools` array".into()),
        }
        cursor = result.get("nextCursor").and_then(Value::as_str).map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    if cursor.is_some() {
        return Err(format!("the server's tool list goes on past {MAX_PAGES} pages"));
    }
    session.close().await;
    serde_json::to_string_pretty(&json!({ "tools": tools })).map_err(|e| e.to_string())
}

struct Session {
    http: reqwest::Client,
    url: String,
    bearer: Option<String>,
    /// `Mcp-Session-Id`, when the server opened a session.
    id: Option<String>,
    /// The negotiated protocol revision (`MCP-Protocol-Version` on later requests).
    version: Option<String>,
}

impl Session {
    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(id) = &self.id {
            r = r.header("mcp-session-id", id);
        }
        if let Some(v) = &self.version {
            r = r.header("mcp-protocol-version", v);
        }
        if let Some(t) = &self.bearer {
            r = r.bearer_auth(t);
        }
        r
    }

    /// A request's result (JSON or the SSE event answering it).
    async fn request(&mut self, id: u64, method: &str, params: Value) -> Result<Value, String> {
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let answer = self.post(&body).send().await.map_err(|e| format!("{method}: {}", writ_host::error_chain(&e)))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(format!("{method}: the server answered HTTP {status}"));
        }
        if self.id.is_none() {
            self.id = answer.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        }
        let sse = answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.trim_start().starts_with("text/event-stream"));
        let id = json!(id);
        let mut body = Vec::new();
        let mut stream = answer.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| format!("{method}: the answer broke off: {e}"))?;
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(format!("{method}: the answer is over 8 MiB"));
            }
            body.extend_from_slice(&chunk);
            if sse && super::listing::carries_answer(&body, &id) {
                break;
            }
        }
        let message = if sse {
            super::listing::event_answering(&body, &id)
                .ok_or_else(|| format!("{method}: the event stream ended without the answer"))?
        } else {
            serde_json::from_slice::<Value>(&body).map_err(|e| format!("{method}: the answer is not JSON: {e}"))?
        };
        if let Some(e) = message.get("error") {
            return Err(format!("{method}: the server answered an error: {e}"));
        }
        message.get("result").cloned().ok_or_else(|| format!("{method}: the answer has no result"))
    }

    async fn notify(&self, method: &str) -> Result<(), String> {
        let body = json!({ "jsonrpc": "2.0", "method": method });
        let answer = self.post(&body).send().await.map_err(|e| format!("{method}: {}", writ_host::error_chain(&e)))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(format!("{method}: the server answered HTTP {}", answer.status()))
        }
    }

    /// End the session (best effort: a server may not allow it).
    async fn close(&self) {
        if let Some(id) = &self.id {
            let mut r = self.http.delete(&self.url).header("mcp-session-id", id);
            if let Some(t) = &self.bearer {
                r = r.bearer_auth(t);
            }
            let _ = r.send().await;
        }
    }
}
