//! The upstreams' tools as the loaded policies were validated for: when a `tools/list` answer
//! shows a tool that is new or whose `inputSchema` changed, its Cedar types are regenerated
//! (`Writ::mcp_schema`) and the loaded policies validated against them; they are then loaded
//! with that schema, or — when they do not validate — the changed tools are refused (left out
//! of lists, their calls denied) until they do: a policy reload, or the upstream changing back.
//!
//! Only with a schema configured: without one, policies are not validated and tools not pinned.
//! Each gateway process keeps its own view.

use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use writ_host::Writ;
use writ_host::pack::Pack;

#[derive(Default)]
pub(crate) struct ToolPins {
    inner: Mutex<Pinned>,
}

#[derive(Default)]
struct Pinned {
    /// The pack in force, its schema as tool lists extended it; `None` without a schema.
    pack: Option<Pack>,
    /// Per upstream: the digest of the tool list last checked.
    checked: HashMap<String, String>,
    /// Per upstream: refused tools, and why.
    refused: HashMap<String, BTreeMap<String, String>>,
}

impl ToolPins {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pinned> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A pack was (re)loaded: tools are checked again against its schema as lists arrive.
    pub fn loaded(&self, pack: &Pack) {
        let mut p = self.lock();
        p.pack = pack.schema.is_some().then(|| pack.clone());
        p.checked.clear();
        p.refused.clear();
    }

    /// Why `tool` of `upstream` is refused, if it is.
    pub fn refusal(&self, upstream: &str, tool: &str) -> Option<String> {
        self.lock().refused.get(upstream).and_then(|r| r.get(tool)).cloned()
    }

    /// Check a tool list `upstream` answered (unchanged since the last check: nothing to do).
    pub fn observe(&self, writ: &Writ, upstream: &str, tools: &[Value]) {
        let listed = serde_json::json!({ "tools": tools }).to_string();
        let digest = writ_types::input::input_digest(&listed).ok().flatten().unwrap_or_default();
        let mut p = self.lock();
        if p.checked.get(upstream) == Some(&digest) {
            return;
        }
        p.checked.insert(upstream.to_string(), digest);
        let Some(pack) = p.pack.clone() else { return };
        let schema = pack.schema.as_deref().unwrap_or_default();
        let refused: BTreeMap<String, String> = match writ.mcp_schema(schema, upstream, &listed) {
            Err(e) => {
                let why = format!("the upstream's tool list cannot be typed in Cedar: {}", e.message());
                tool_names(tools).map(|t| (t, why.clone())).collect()
            }
            Ok(g) => {
                let untyped = g
                    .untyped
                    .iter()
                    .map(|(t, why)| (t.clone(), format!("its input schema cannot be typed in Cedar: {why}")));
                let mut refused: BTreeMap<String, String> = untyped.collect();
                refused.extend(adopt(writ, &mut p, upstream, &pack, g));
                refused
            }
        };
        // A list may be one page of several: it speaks for its own tools only.
        let entry = p.refused.entry(upstream.to_string()).or_default();
        for t in tool_names(tools) {
            entry.remove(&t);
        }
        entry.extend(refused);
    }
}

/// Put the schema with the changed tools in force when the policies validate against it; the
/// changed tools refused, with why, when they do not.
fn adopt(
    writ: &Writ,
    p: &mut Pinned,
    upstream: &str,
    pack: &Pack,
    g: writ_types::mcp::McpSchema,
) -> BTreeMap<String, String> {
    if g.changed.is_empty() {
        return BTreeMap::new();
    }
    match writ.set_policies(&pack.policies, Some(&g.schema), pack.entities.as_deref()) {
        Ok(_) => {
            tracing::info!(
                upstream,
                tools = %g.changed.join(", "),
                "MCP tools new or changed; the policies validate against their schema, now in force"
            );
            p.pack = Some(Pack { schema: Some(g.schema), ..pack.clone() });
            BTreeMap::new()
        }
        Err(e) => {
            let why = format!(
                "its input schema is new or changed and the loaded policies do not validate against it: {}",
                e.message()
            );
            tracing::warn!(upstream, tools = %g.changed.join(", "), "MCP tools refused: {why}");
            g.changed.into_iter().map(|t| (t, why.clone())).collect()
        }
    }
}

fn tool_names(tools: &[Value]) -> impl Iterator<Item = String> + '_ {
    tools.iter().filter_map(|t| t.get("name").and_then(Value::as_str)).map(str::to_string)
}
