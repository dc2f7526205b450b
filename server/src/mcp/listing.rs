//! A `tools/list` answer cut to the tools the agent may call: read whole (bounded), each tool
//! asked about (`Writ::listable`: allowed, or decided per call on its arguments; in the scope
//! of the credential the agent presented, if any; not refused for a changed input schema),
//! the rest left out. The answer may be plain JSON or an SSE stream (MCP lets a server answer either
//! way); in a stream, only the event that carries the list is rewritten.

use crate::State;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt as _;
use serde_json::Value;
use std::sync::Arc;
use writ_host::{Attested, Intent};

/// The largest tool list read.
const MAX_LIST_BYTES: usize = 8 << 20;

pub(crate) async fn filtered(
    state: Arc<State>,
    answer: reqwest::Response,
    who: Attested,
    upstream: String,
    task: String,
    id: Value,
    scope: Option<Vec<(String, String)>>,
) -> Response {
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let sse = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("text/event-stream"));
    let mut body = Vec::new();
    let mut stream = answer.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return super::http_error(StatusCode::BAD_GATEWAY, "the upstream's tool list broke off");
        };
        if body.len() + chunk.len() > MAX_LIST_BYTES {
            return super::http_error(StatusCode::BAD_GATEWAY, "the upstream's tool list is over 8 MiB");
        }
        body.extend_from_slice(&chunk);
        // An SSE answer ends with the event that carries the list; the stream may stay open.
        if sse && carries_answer(&body, &id) {
            break;
        }
    }
    let cut = crate::blocking(state, move |state| {
        // A new or changed tool is checked against the loaded policies first.
        if let Some(gateway) = &state.mcp
            && let Some(tools) = listed(&body, sse, &id)
        {
            gateway.pins.observe(&state.writ, &upstream, &tools);
        }
        let refused = |tool: &str| state.mcp.as_ref().is_some_and(|g| g.pins.refusal(&upstream, tool).is_some());
        let resource = format!("{}::\"{}\"", super::RESOURCE_TYPE, upstream.replace('\\', "\\\\").replace('"', "\\\""));
        let keep = |tool: &str| {
            let what = Intent {
                action: tool.to_string(),
                resource: resource.clone(),
                task_id: task.clone(),
                context: String::new(),
                input: String::new(),
            };
            // A presented credential narrows the list to its scope (its calls are presented).
            let in_scope = scope.as_ref().is_none_or(|s| s.iter().any(|(a, r)| a == tool && *r == resource));
            in_scope && !refused(tool) && state.writ.listable(&who, &what).is_ok_and(|d| d.allow)
        };
        if sse { cut_events(&body, &keep) } else { cut_json(&body, &keep) }
    })
    .await;
    let body = match cut {
        Ok(Ok(b)) => b,
        Ok(Err(problem)) => return super::http_error(StatusCode::BAD_GATEWAY, &problem),
        Err(r) => return r,
    };
    let mut response = Response::builder().status(status);
    if let Some(h) = response.headers_mut() {
        super::upstream::copy_headers(&headers, h);
    }
    response.body(Body::from(body)).unwrap_or_else(|_| super::http_error(StatusCode::BAD_GATEWAY, "bad answer"))
}

/// The tools of the answer to `id` (JSON, or the SSE event carrying it), if it lists any.
fn listed(body: &[u8], sse: bool, id: &Value) -> Option<Vec<Value>> {
    let answer = if sse { event_answering(body, id)? } else { serde_json::from_slice::<Value>(body).ok()? };
    answer.get("result")?.get("tools")?.as_array().cloned()
}

/// The JSON-RPC message an SSE text carries as the answer to `id`, if one of its events does.
pub(crate) fn event_answering(body: &[u8], id: &Value) -> Option<Value> {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    events(&text)
        .filter_map(data)
        .filter_map(|d| serde_json::from_str::<Value>(&d).ok())
        .find(|v| v.get("id") == Some(id))
}

/// Whether the SSE text read so far holds a complete event whose data answers `id`.
pub(crate) fn carries_answer(body: &[u8], id: &Value) -> bool {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    let Some(end) = text.rfind("\n\n") else { return false };
    event_answering(&text.as_bytes()[..end], id).is_some()
}

fn events(text: &str) -> impl Iterator<Item = &str> {
    text.split("\n\n").filter(|e| !e.trim().is_empty())
}

/// An event's data (its `data:` lines joined), if it has any.
fn data(event: &str) -> Option<String> {
    let lines: Vec<&str> =
        event.lines().filter_map(|l| l.strip_prefix("data:")).map(|l| l.strip_prefix(' ').unwrap_or(l)).collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// A JSON-RPC answer with its `result.tools` cut to those `keep` keeps; other messages as they are.
fn cut_message(v: &mut Value, keep: &dyn Fn(&str) -> bool) {
    if let Some(tools) = v.get_mut("result").and_then(|r| r.get_mut("tools")).and_then(Value::as_array_mut) {
        tools.retain(|t| t.get("name").and_then(Value::as_str).is_some_and(keep));
    }
}

fn cut_json(body: &[u8], keep: &dyn Fn(&str) -> bool) -> Result<Vec<u8>, String> {
    let mut v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the upstream's tool list is not JSON: {e}"))?;
    cut_message(&mut v, keep);
    serde_json::to_vec(&v).map_err(|e| e.to_string())
}

fn cut_events(body: &[u8], keep: &dyn Fn(&str) -> bool) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the upstream's event stream is not UTF-8".to_string())?;
    let text = text.replace("\r\n", "\n");
    let mut out = String::with_capacity(text.len());
    for event in events(&text) {
        match data(event).map(|d| serde_json::from_str::<Value>(&d)) {
            Some(Ok(mut v)) => {
                cut_message(&mut v, keep);
                for line in event.lines().filter(|l| !l.starts_with("data:")) {
                    out.push_str(line);
                    out.push('\n');
                }
                out.push_str("data: ");
                out.push_str(&v.to_string());
                out.push('\n');
            }
            Some(Err(e)) => return Err(format!("an event of the upstream's tool list is not JSON: {e}")),
            None => {
                out.push_str(event);
                out.push('\n');
            }
        }
        out.push('\n');
    }
    Ok(out.into_bytes())
}
