//! Decoding AuthZEN 1.0 access-evaluation requests (single and batch) into [`Evaluation`]s:
//! what `writ serve` runs on every request body, and what the `authzen_decode` fuzz target
//! fuzzes. Pure: serde_json only.

use crate::evaluation::{EntityRef, Evaluation};
use serde_json::{Map, Value};

/// A request that cannot be decoded: the HTTP status and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub status: u16,
    pub message: String,
}

fn bad(message: impl Into<String>) -> DecodeError {
    DecodeError { status: 400, message: message.into() }
}

/// How a batch stops early (`options.evaluations_semantic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

/// Items in one batch, at most.
pub const MAX_ITEMS: usize = 1000;

/// The body as a JSON object.
pub fn object_body(bytes: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("the body is not a JSON object")),
        Err(e) => Err(bad(format!("the body is not JSON: {e}"))),
    }
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, DecodeError> {
    v.as_object().ok_or_else(|| bad(format!("`{what}` is not an object")))
}

fn string(o: &Map<String, Value>, what: &str, key: &str) -> Result<String, DecodeError> {
    match o.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(bad(format!("`{what}.{key}` is empty"))),
        Some(_) => Err(bad(format!("`{what}.{key}` is not a string"))),
        None => Err(bad(format!("missing `{what}.{key}`"))),
    }
}

fn properties(o: &Map<String, Value>, what: &str, key: &str) -> Result<String, DecodeError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(v @ Value::Object(_)) => Ok(v.to_string()),
        Some(_) => Err(bad(format!("`{what}.{key}` is not an object"))),
    }
}

fn entity(v: Option<&Value>, what: &str) -> Result<EntityRef, DecodeError> {
    let o = object(v.ok_or_else(|| bad(format!("missing `{what}`")))?, what)?;
    Ok(EntityRef {
        type_name: string(o, what, "type")?,
        id: string(o, what, "id")?,
        properties: properties(o, what, "properties")?,
    })
}

/// One evaluation from a request object (subject, action, resource, context).
pub fn evaluation(req: &Map<String, Value>) -> Result<Evaluation, DecodeError> {
    let action = object(req.get("action").ok_or_else(|| bad("missing `action`"))?, "action")?;
    let context = match req.get("context") {
        None | Some(Value::Null) => String::new(),
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(_) => return Err(bad("`context` is not an object")),
    };
    Ok(Evaluation {
        subject: entity(req.get("subject"), "subject")?,
        action: string(action, "action", "name")?,
        action_properties: properties(action, "action", "properties")?,
        resource: entity(req.get("resource"), "resource")?,
        context,
    })
}

pub fn semantic(req: &Map<String, Value>) -> Result<Semantic, DecodeError> {
    match req.get("options").and_then(|o| o.get("evaluations_semantic")) {
        None | Some(Value::Null) => Ok(Semantic::ExecuteAll),
        Some(Value::String(s)) => match s.as_str() {
            "execute_all" => Ok(Semantic::ExecuteAll),
            "deny_on_first_deny" => Ok(Semantic::DenyOnFirstDeny),
            "permit_on_first_permit" => Ok(Semantic::PermitOnFirstPermit),
            other => Err(bad(format!(
                "`options.evaluations_semantic` is `{other}`; use execute_all, deny_on_first_deny or permit_on_first_permit"
            ))),
        },
        Some(_) => Err(bad("`options.evaluations_semantic` is not a string")),
    }
}

/// A batch's items with the request's top-level subject, action, resource and context as
/// defaults (an item's own value replaces the default whole); `None` when there are none
/// (then the request is a single evaluation).
pub fn items(req: &Map<String, Value>) -> Result<Option<Vec<Map<String, Value>>>, DecodeError> {
    let list = match req.get("evaluations") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) if a.is_empty() => return Ok(None),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("`evaluations` is not an array")),
    };
    if list.len() > MAX_ITEMS {
        return Err(DecodeError {
            status: 413,
            message: format!("{} evaluations in one request, over the cap of {MAX_ITEMS}", list.len()),
        });
    }
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            let item = item.as_object().ok_or_else(|| bad(format!("`evaluations[{i}]` is not an object")))?;
            let mut merged = Map::new();
            for key in ["subject", "action", "resource", "context"] {
                if let Some(v) = item.get(key).or_else(|| req.get(key)) {
                    merged.insert(key.into(), v.clone());
                }
            }
            Ok(merged)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
