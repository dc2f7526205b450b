//! MCP's JSON-RPC messages as Writ's MCP gateway reads them (shared with the proxy-wasm
//! filter, which decides on the same names from MCP's routing headers): a POST body holds one message or a batch,
//! bounded in size (the endpoint's body limit) and nesting before it is parsed; each message is
//! a request (`method` and `id`), a notification (`method`, no `id`) or a response (`id` with
//! `result` or `error`). What a request asks for decides what the gateway does with it.

use serde_json::{Value, json};

/// Nesting allowed in a message (arguments included).
pub const MAX_NESTING: usize = 32;

/// JSON-RPC error codes the gateway answers with.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;
/// A request Writ denied (its message names the deciding policies).
pub const DENIED: i64 = -32003;
/// The upstream MCP server could not be reached or answered garbage.
pub const UPSTREAM: i64 = -32002;
/// A request's MCP routing headers (`Mcp-Method`, `Mcp-Name`) disagree with its body.
pub const HEADER_MISMATCH: i64 = -32001;

/// One message of a POST body.
#[derive(Debug, Clone)]
pub struct Message {
    pub value: Value,
}

/// What a request asks the gateway to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// Forwarded without a decision: the handshake, liveness, notifications, the client's
    /// responses to the server's requests.
    Pass,
    /// `tools/list`: forwarded, the answer filtered to the tools the caller may call.
    ListTools,
    /// A decision first: `action` on the upstream, with `input` (a JSON object's text) as
    /// `context.input`.
    Decide { action: String, input: String },
}

/// Methods that pass without a decision (and every notification).
const PASSING: [&str; 3] = ["initialize", "ping", "server/discover"];

impl Message {
    pub fn id(&self) -> Option<&Value> {
        self.value.get("id")
    }

    pub fn method(&self) -> Option<&str> {
        self.value.get("method").and_then(Value::as_str)
    }

    /// The name MCP's `Mcp-Name` header mirrors: `params.name` of `tools/call` and
    /// `prompts/get`, `params.uri` of `resources/read`.
    pub fn routing_name(&self) -> Option<&str> {
        let key = match self.method()? {
            "tools/call" | "prompts/get" => "name",
            "resources/read" => "uri",
            _ => return None,
        };
        self.value.get("params")?.get(key)?.as_str()
    }

    /// A request (as opposed to a notification or a response): it expects an answer.
    pub fn is_request(&self) -> bool {
        self.method().is_some() && self.id().is_some()
    }

    /// What the gateway does with it. `tools/call` is the tool's own action (the
    /// cedar-for-agents convention) with its `arguments`; `resources/read` and `prompts/get`,
    /// and any other method, are the method's action with the request's `params`.
    pub fn ask(&self) -> Result<Ask, String> {
        let Some(method) = self.method() else { return Ok(Ask::Pass) };
        if !self.is_request() || PASSING.contains(&method) || method.starts_with("notifications/") {
            return Ok(Ask::Pass);
        }
        let params = self.value.get("params");
        match method {
            "tools/list" => Ok(Ask::ListTools),
            "tools/call" => {
                let name =
                    params.and_then(|p| p.get("name")).and_then(Value::as_str).ok_or("`tools/call` names no tool")?;
                if name.is_empty() || name.contains('/') {
                    return Err(format!("tool name `{}` is empty or holds `/`", clip(name)));
                }
                let input = match params.and_then(|p| p.get("arguments")) {
                    None | Some(Value::Null) => "{}".to_string(),
                    Some(a @ Value::Object(_)) => a.to_string(),
                    Some(_) => return Err("`tools/call` arguments are not an object".into()),
                };
                Ok(Ask::Decide { action: name.to_string(), input })
            }
            other => {
                let input = match params {
                    None | Some(Value::Null) => "{}".to_string(),
                    Some(p @ Value::Object(_)) => p.to_string(),
                    Some(_) => return Err(format!("`{}` params are not an object", clip(other))),
                };
                Ok(Ask::Decide { action: other.to_string(), input })
            }
        }
    }
}

/// What a request asks, from its MCP routing headers alone (`Mcp-Method`, `Mcp-Name`): for a
/// proxy that decides without reading the body. As [`Message::ask`], but nothing of the
/// arguments is known, so a decision carries no `input` (a permit that reads `context.input`
/// cannot allow it). Whatever is behind must refuse a body that disagrees with its headers
/// (Writ's gateway does: [`HEADER_MISMATCH`]).
pub fn ask_by_headers(method: &str, name: Option<&str>) -> Result<Ask, String> {
    if PASSING.contains(&method) || method.starts_with("notifications/") {
        return Ok(Ask::Pass);
    }
    match method {
        "" => Err("`Mcp-Method` is empty".into()),
        "tools/list" => Ok(Ask::ListTools),
        "tools/call" => match name {
            None => Err("a `tools/call` without `Mcp-Name`".into()),
            Some(n) if n.is_empty() || n.contains('/') => Err(format!("tool name `{}` is empty or holds `/`", clip(n))),
            Some(n) => Ok(Ask::Decide { action: n.to_string(), input: String::new() }),
        },
        other => Ok(Ask::Decide { action: other.to_string(), input: String::new() }),
    }
}

/// A POST body: one message, or a batch of them.
#[derive(Debug, Clone)]
pub struct Body {
    pub batch: bool,
    pub messages: Vec<Message>,
}

/// Parse a POST body, refusing what is not JSON-RPC before anything is decided: too deep, not
/// JSON, not an object (or a non-empty array of objects) with `"jsonrpc": "2.0"`.
pub fn parse(body: &[u8]) -> Result<Body, (i64, String)> {
    let text = std::str::from_utf8(body).map_err(|_| (PARSE_ERROR, "the body is not UTF-8".to_string()))?;
    let depth = crate::nesting::nesting_depth(text);
    if depth > MAX_NESTING {
        return Err((INVALID_REQUEST, format!("the message nests {depth} deep, over the cap of {MAX_NESTING}")));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| (PARSE_ERROR, format!("the body is not JSON: {e}")))?;
    let (batch, values) = match value {
        Value::Array(items) if !items.is_empty() => (true, items),
        Value::Array(_) => return Err((INVALID_REQUEST, "an empty batch".into())),
        v => (false, vec![v]),
    };
    let mut messages = Vec::with_capacity(values.len());
    for v in values {
        let ok = v.is_object() && v.get("jsonrpc").and_then(Value::as_str) == Some("2.0");
        if !ok {
            return Err((INVALID_REQUEST, "a message is not a JSON-RPC 2.0 object".into()));
        }
        messages.push(Message { value: v });
    }
    Ok(Body { batch, messages })
}

/// A JSON-RPC error response.
pub fn error(id: Option<&Value>, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut e = json!({ "code": code, "message": message });
    if let Some(d) = data {
        e["data"] = d;
    }
    json!({ "jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": e })
}

pub fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ask(v: Value) -> Result<Ask, String> {
        Message { value: v }.ask()
    }

    #[test]
    fn each_method_is_passed_listed_or_decided() {
        let call =
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pay","arguments":{"amount":5}}});
        assert_eq!(ask(call), Ok(Ask::Decide { action: "pay".into(), input: r#"{"amount":5}"#.into() }));
        let bare = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pay"}});
        assert_eq!(ask(bare), Ok(Ask::Decide { action: "pay".into(), input: "{}".into() }));
        let read = json!({"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///x"}});
        assert_eq!(
            ask(read),
            Ok(Ask::Decide { action: "resources/read".into(), input: r#"{"uri":"file:///x"}"#.into() })
        );
        assert_eq!(ask(json!({"jsonrpc":"2.0","id":3,"method":"tools/list"})), Ok(Ask::ListTools));
        for pass in [
            json!({"jsonrpc":"2.0","id":4,"method":"initialize","params":{}}),
            json!({"jsonrpc":"2.0","id":5,"method":"ping"}),
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            // A notification of any method expects no answer, and a client's response to a
            // server's request passes.
            json!({"jsonrpc":"2.0","method":"tools/call","params":{"name":"pay"}}),
            json!({"jsonrpc":"2.0","id":9,"result":{}}),
        ] {
            assert_eq!(ask(pass.clone()), Ok(Ask::Pass), "{pass}");
        }
        for bad in [
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}),
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a/b"}}),
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pay","arguments":[1]}}),
            json!({"jsonrpc":"2.0","id":1,"method":"prompts/get","params":"x"}),
        ] {
            assert!(ask(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_alone_decide_as_the_body_would_but_without_arguments() {
        assert_eq!(
            ask_by_headers("tools/call", Some("pay")),
            Ok(Ask::Decide { action: "pay".into(), input: String::new() })
        );
        assert_eq!(
            ask_by_headers("resources/read", Some("file:///x")),
            Ok(Ask::Decide { action: "resources/read".into(), input: String::new() })
        );
        assert_eq!(ask_by_headers("tools/list", None), Ok(Ask::ListTools));
        for pass in ["initialize", "ping", "notifications/initialized"] {
            assert_eq!(ask_by_headers(pass, None), Ok(Ask::Pass), "{pass}");
        }
        assert!(ask_by_headers("tools/call", None).is_err());
        assert!(ask_by_headers("tools/call", Some("a/b")).is_err());
        assert!(ask_by_headers("tools/call", Some("")).is_err());
        assert!(ask_by_headers("", None).is_err());
    }

    #[test]
    fn bodies_are_bounded_and_checked_before_anything_is_decided() {
        assert_eq!(parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).unwrap().messages.len(), 1);
        let batch =
            parse(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/x"}]"#)
                .unwrap();
        assert!(batch.batch && batch.messages.len() == 2);
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        for (body, code) in [
            (b"not json".to_vec(), PARSE_ERROR),
            (vec![0xff, 0xfe], PARSE_ERROR),
            (b"[]".to_vec(), INVALID_REQUEST),
            (br#"{"id":1,"method":"ping"}"#.to_vec(), INVALID_REQUEST),
            (br#"[1]"#.to_vec(), INVALID_REQUEST),
            (deep.into_bytes(), INVALID_REQUEST),
        ] {
            assert_eq!(parse(&body).unwrap_err().0, code, "{}", String::from_utf8_lossy(&body));
        }
    }
}

/// A Cedar schema for an MCP upstream's tools, merged into a base schema (writ-core's
/// `authz::mcp_schema`, the WIT `authorize.mcp-schema`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpSchema {
    /// The merged schema, Cedar syntax.
    pub schema: String,
    /// Tools whose action is new or whose `inputSchema` differs from the base's.
    pub changed: Vec<String>,
    /// A deny-by-default starter policy for these tools (validates against `schema` when the
    /// base declares `Role`, as Writ's does).
    pub starter: String,
    /// Tools left out, with why: the generator cannot type them, or they conflict with the base.
    pub untyped: Vec<(String, String)>,
}
