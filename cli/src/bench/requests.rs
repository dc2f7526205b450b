//! The requests `writ bench` replays: JSON lines in the intent or the AuthZEN shape, or
//! requests generated from the shipped pack's entities.

use crate::Usage;
use serde_json::Value;

/// One request: what the caller is and wants.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Request {
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub task: String,
    /// JSON object text, or empty.
    pub context: String,
}

fn field<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str)
}

/// A request from one line (intent or AuthZEN shape).
pub(crate) fn parse_request(line: &str) -> Result<Request, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    if !v.is_object() {
        return Err("not a JSON object".into());
    }
    let context = match v.get("context") {
        None | Some(Value::Null) => None,
        Some(c @ Value::Object(_)) => Some(c.clone()),
        Some(_) => return Err("`context` is not an object".into()),
    };
    if v.get("subject").is_some() {
        // AuthZEN: the subject is an attested agent, its id a SPIFFE ID.
        let ty = field(&v, &["subject", "type"]).ok_or("missing `subject.type`")?;
        if ty != "Agent" {
            return Err(format!("`subject.type` is `{ty}`; Writ's attested principals are `Agent`"));
        }
        let principal = field(&v, &["subject", "id"]).ok_or("missing `subject.id`")?;
        let action = field(&v, &["action", "name"]).ok_or("missing `action.name`")?;
        let rtype = field(&v, &["resource", "type"]).ok_or("missing `resource.type`")?;
        let rid = field(&v, &["resource", "id"]).ok_or("missing `resource.id`")?;
        let task = context.as_ref().and_then(|c| c.get("task_id")).and_then(Value::as_str).unwrap_or("").to_string();
        let resource = format!("{rtype}::{}", Value::String(rid.to_string()));
        return Ok(Request {
            principal: principal.into(),
            action: action.into(),
            resource,
            task,
            context: context.map(|c| c.to_string()).unwrap_or_default(),
        });
    }
    Ok(Request {
        principal: field(&v, &["principal"]).ok_or("missing `principal` (or an AuthZEN `subject`)")?.into(),
        action: field(&v, &["action"]).ok_or("missing `action`")?.into(),
        resource: field(&v, &["resource"]).ok_or("missing `resource`")?.into(),
        task: field(&v, &["task"]).unwrap_or("").into(),
        context: context.map(|c| c.to_string()).unwrap_or_default(),
    })
}

/// Requests from a JSON-lines file; an error names the line.
pub(crate) fn read_requests(path: &std::path::Path) -> Result<Vec<Request>, Usage> {
    let text =
        String::from_utf8(crate::read(path)?).map_err(|_| Usage(format!("`{}` is not UTF-8", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(parse_request(line).map_err(|e| Usage(format!("`{}` line {}: {e}", path.display(), i + 1)))?);
    }
    if out.is_empty() {
        return Err(Usage(format!("`{}` has no requests", path.display())));
    }
    Ok(out)
}

/// Requests over the shipped pack's entities: every agent asking each action its schema
/// allows on every resource the pack knows, in its own task and another, with and without a
/// claimed external destination — allows and denies mixed as real traffic would be.
pub(crate) fn generated_requests() -> Vec<Request> {
    let entities: Value = serde_json::from_str(writ_types::pack::ENTITIES).unwrap_or(Value::Null);
    let uids: Vec<(String, String, Value)> = entities
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| {
                    Some((
                        field(e, &["uid", "type"])?.to_string(),
                        field(e, &["uid", "id"])?.to_string(),
                        e.get("attrs").cloned().unwrap_or(Value::Null),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let agents: Vec<&str> = uids.iter().filter(|(t, _, _)| t == "Agent").map(|(_, id, _)| id.as_str()).collect();
    let resources: Vec<(&str, &str, Option<&str>)> = uids
        .iter()
        .filter(|(t, _, _)| t != "Agent" && t != "Role")
        .map(|(t, id, a)| (t.as_str(), id.as_str(), a.get("task").and_then(Value::as_str)))
        .collect();
    // The (action, resource type) pairs the shipped schema declares.
    let actions = |ty: &str| -> &'static [&'static str] {
        match ty {
            "PayrollRecord" | "Dataset" => &["read", "send"],
            "Tool" => &["invoke"],
            "Environment" => &["deploy"],
            _ => &[],
        }
    };
    let external = r#"{"destination":"paste.example.net"}"#;
    let mut out = Vec::new();
    for agent in &agents {
        for (ty, id, task) in &resources {
            for action in actions(ty) {
                for (task, context) in
                    [(task.unwrap_or("t-1"), ""), ("other-task", ""), (task.unwrap_or("t-1"), external)]
                {
                    out.push(Request {
                        principal: (*agent).to_string(),
                        action: (*action).to_string(),
                        resource: format!("{ty}::{}", Value::String((*id).to_string())),
                        task: task.to_string(),
                        context: context.to_string(),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_request_shapes_parse_to_the_same_intent() {
        let intent = parse_request(r#"{"principal":"spiffe://a.org/x","action":"read","resource":"Doc::\"d 1\"","task":"t","context":{"task_id":"t","k":1}}"#).unwrap();
        let authzen = parse_request(r#"{"subject":{"type":"Agent","id":"spiffe://a.org/x"},"action":{"name":"read"},"resource":{"type":"Doc","id":"d 1"},"context":{"task_id":"t","k":1}}"#).unwrap();
        assert_eq!(intent, authzen);
        assert_eq!(intent.resource, r#"Doc::"d 1""#);
        assert!(
            parse_request(
                r#"{"subject":{"type":"User","id":"alice"},"action":{"name":"r"},"resource":{"type":"D","id":"d"}}"#
            )
            .unwrap_err()
            .contains("`Agent`")
        );
        assert!(parse_request(r#"{"principal":"p","action":"a"}"#).unwrap_err().contains("`resource`"));
        assert!(parse_request("[1]").unwrap_err().contains("object"));
        assert!(parse_request("{").unwrap_err().contains("not JSON"));
        assert!(
            parse_request(r#"{"principal":"p","action":"a","resource":"R::\"r\"","context":5}"#)
                .unwrap_err()
                .contains("`context`")
        );
    }

    #[test]
    fn generated_requests_cover_the_pack() {
        let r = generated_requests();
        assert!(r.len() > 100);
        assert!(r.iter().any(|r| r.resource == r#"PayrollRecord::"run-42/emp-7""# && r.task == "run-42"));
        assert!(r.iter().any(|r| r.context.contains("paste.example.net")));
    }
}
