//! AuthZEN Authorization API 1.0: single and batch access evaluation, and the PDP's metadata.
//! Each evaluation runs in the component (`authorize.evaluate`) and is audited there. A deny is
//! HTTP 200 with `"decision": false`; the determining policies and any evaluation errors go in
//! the response `context`.

use crate::State;
use crate::api::{ApiError, RequestId, json_body, ok};
use crate::tls::PeerChain;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{self, Extension};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;
use writ_host::{EntityRef, Evaluation};

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object().ok_or_else(|| ApiError::bad_request(format!("`{what}` is not an object")))
}

fn string(o: &Map<String, Value>, what: &str, key: &str) -> Result<String, ApiError> {
    match o.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(ApiError::bad_request(format!("`{what}.{key}` is empty"))),
        Some(_) => Err(ApiError::bad_request(format!("`{what}.{key}` is not a string"))),
        None => Err(ApiError::bad_request(format!("missing `{what}.{key}`"))),
    }
}

/// An optional JSON object as text (empty when absent).
fn properties(o: &Map<String, Value>, what: &str, key: &str) -> Result<String, ApiError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(v @ Value::Object(_)) => Ok(v.to_string()),
        Some(_) => Err(ApiError::bad_request(format!("`{what}.{key}` is not an object"))),
    }
}

fn entity(v: Option<&Value>, what: &str) -> Result<EntityRef, ApiError> {
    let o = object(v.ok_or_else(|| ApiError::bad_request(format!("missing `{what}`")))?, what)?;
    Ok(EntityRef { type_name: string(o, what, "type")?, id: string(o, what, "id")?, properties: properties(o, what, "properties")? })
}

/// One evaluation from a request object (subject, action, resource, context).
fn parse_evaluation(req: &Map<String, Value>) -> Result<Evaluation, ApiError> {
    let action = object(req.get("action").ok_or_else(|| ApiError::bad_request("missing `action`"))?, "action")?;
    let context = match req.get("context") {
        None | Some(Value::Null) => String::new(),
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(_) => return Err(ApiError::bad_request("`context` is not an object")),
    };
    Ok(Evaluation {
        subject: entity(req.get("subject"), "subject")?,
        action: string(action, "action", "name")?,
        action_properties: properties(action, "action", "properties")?,
        resource: entity(req.get("resource"), "resource")?,
        context,
    })
}

/// Decide one evaluation: its AuthZEN response object and whether it allowed.
fn decide(state: &State, e: &Evaluation) -> Result<(Value, bool), ApiError> {
    let d = state.writ.evaluate(e).map_err(|e| ApiError::internal(&e))?;
    let body = json!({
        "decision": d.allow,
        "context": { "reasons": d.reasons, "errors": d.errors, "max_ttl_secs": d.max_ttl_secs },
    });
    Ok((body, d.allow))
}

fn result(allow: bool, body: &Value) -> &'static str {
    match (allow, body["context"]["errors"].as_array().is_some_and(|e| !e.is_empty())) {
        (true, _) => "allow",
        (false, true) => "error",
        (false, false) => "deny",
    }
}

/// `POST /access/v1/evaluation`.
pub async fn evaluation(extract::State(state): extract::State<Arc<State>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let id = RequestId::of(&headers);
    let answer = json_body(&headers, body).and_then(|req| parse_evaluation(&req)).and_then(|e| decide(&state, &e));
    match answer {
        Ok((body, allow)) => {
            state.metrics.decided("evaluation", result(allow, &body), started);
            ok(StatusCode::OK, body, &id)
        }
        Err(e) => {
            state.metrics.decided("evaluation", "bad-request", started);
            e.respond(&id)
        }
    }
}

/// How a batch stops early (AuthZEN `options.evaluations_semantic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Semantic {
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

fn semantic(req: &Map<String, Value>) -> Result<Semantic, ApiError> {
    let name = req.get("options").and_then(|o| o.get("evaluations_semantic"));
    match name {
        None | Some(Value::Null) => Ok(Semantic::ExecuteAll),
        Some(Value::String(s)) => match s.as_str() {
            "execute_all" => Ok(Semantic::ExecuteAll),
            "deny_on_first_deny" => Ok(Semantic::DenyOnFirstDeny),
            "permit_on_first_permit" => Ok(Semantic::PermitOnFirstPermit),
            other => Err(ApiError::bad_request(format!("`options.evaluations_semantic` is `{other}`; use execute_all, deny_on_first_deny or permit_on_first_permit"))),
        },
        Some(_) => Err(ApiError::bad_request("`options.evaluations_semantic` is not a string")),
    }
}

/// The batch's items with the request's top-level subject, action, resource and context as
/// defaults (an item's own value replaces the default whole).
fn items(req: &Map<String, Value>) -> Result<Option<Vec<Map<String, Value>>>, ApiError> {
    let list = match req.get("evaluations") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(a)) if a.is_empty() => return Ok(None),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(ApiError::bad_request("`evaluations` is not an array")),
    };
    if list.len() > 1000 {
        return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "limit", format!("{} evaluations in one request, over the cap of 1000", list.len())));
    }
    list.iter()
        .enumerate()
        .map(|(i, item)| {
            let item = item.as_object().ok_or_else(|| ApiError::bad_request(format!("`evaluations[{i}]` is not an object")))?;
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

/// `POST /access/v1/evaluations`: results in request order; `deny_on_first_deny` and
/// `permit_on_first_permit` stop after the first such result (it included).
pub async fn evaluations(extract::State(state): extract::State<Arc<State>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let started = Instant::now();
    let id = RequestId::of(&headers);
    let answer = (|| {
        let req = json_body(&headers, body)?;
        let sem = semantic(&req)?;
        let Some(items) = items(&req)? else {
            // No `evaluations`: a single evaluation, answered as one.
            return decide(&state, &parse_evaluation(&req)?).map(|(b, _)| b);
        };
        // Every item is checked before any is decided: a bad item is a 400 for the batch.
        let evals = items.iter().enumerate().map(|(i, m)| parse_evaluation(m).map_err(|e| ApiError { message: format!("evaluations[{i}]: {}", e.message), ..e })).collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::new();
        for e in &evals {
            let (body, allow) = decide(&state, e)?;
            out.push(body);
            if (sem == Semantic::DenyOnFirstDeny && !allow) || (sem == Semantic::PermitOnFirstPermit && allow) {
                break;
            }
        }
        Ok(json!({ "evaluations": out }))
    })();
    match answer {
        Ok(body) => {
            state.metrics.decided("evaluations", "ok", started);
            ok(StatusCode::OK, body, &id)
        }
        Err(e) => {
            state.metrics.decided("evaluations", "bad-request", started);
            e.respond(&id)
        }
    }
}

/// `GET /.well-known/authzen-configuration`: where this PDP's endpoints are.
pub async fn configuration(headers: HeaderMap, tls: Option<Extension<PeerChain>>) -> Response {
    let id = RequestId::of(&headers);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let base = format!("{}://{host}", if tls.is_some() { "https" } else { "http" });
    ok(
        StatusCode::OK,
        json!({
            "policy_decision_point": base,
            "access_evaluation_endpoint": format!("{base}/access/v1/evaluation"),
            "access_evaluations_endpoint": format!("{base}/access/v1/evaluations"),
        }),
        &id,
    )
}
