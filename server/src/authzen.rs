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
use writ_types::Evaluation;
use writ_types::authzen::{self, DecodeError};

fn api(e: DecodeError) -> ApiError {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    ApiError::new(status, if e.status == 413 { "limit" } else { "bad-request" }, e.message)
}

/// One evaluation from a request object, as the component takes it.
fn parse_evaluation(req: &Map<String, Value>) -> Result<Evaluation, ApiError> {
    authzen::evaluation(req).map_err(api)
}

/// Decide one evaluation: its AuthZEN response object and whether it allowed.
fn decide(state: &State, e: &Evaluation) -> Result<(Value, bool), ApiError> {
    let d = state.writ.evaluate(e).map_err(|e| ApiError::internal(&e))?;
    Ok((response_body(&d), d.allow))
}

/// A decision as an AuthZEN response object.
fn response_body(d: &writ_types::Decision) -> Value {
    json!({
        "decision": d.allow,
        "context": { "reasons": d.reasons, "errors": d.errors, "max_ttl_secs": d.max_ttl_secs },
    })
}

fn result(allow: bool, body: &Value) -> &'static str {
    match (allow, body["context"]["errors"].as_array().is_some_and(|e| !e.is_empty())) {
        (true, _) => "allow",
        (false, true) => "error",
        (false, false) => "deny",
    }
}

/// Whether the caller may ask AuthZEN: with `authzen_peers` or `authzen_token_file`
/// configured, only an mTLS peer listed there or a caller sending the token; with neither,
/// anyone who reaches the listener. A refusal is audited and a 401.
fn pep_allowed(state: &State, headers: &HeaderMap, peer: Option<&PeerChain>) -> Result<(), ApiError> {
    let token = state.authzen_token.as_deref();
    if state.config.authzen_peers.is_empty() && token.is_none() {
        return Ok(());
    }
    if let Some(want) = token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        if sent.is_some_and(|s| constant_time_eq(s.as_bytes(), want.as_bytes())) {
            return Ok(());
        }
    }
    let peer_id = crate::exchange::client(state, peer).ok();
    if let Some(who) = &peer_id
        && state.config.authzen_peers.contains(&who.spiffe_id)
    {
        return Ok(());
    }
    let message = match &peer_id {
        Some(who) => format!("`{}` is not an AuthZEN caller this server answers", who.spiffe_id),
        None => "AuthZEN callers must authenticate (an mTLS peer in `authzen_peers`, or the bearer token)".into(),
    };
    crate::refused_by(state, peer_id.as_ref().map(|w| w.spiffe_id.as_str()), "unauthenticated", &message);
    Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message))
}

/// Equal bytes, in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST /access/v1/evaluation`.
pub async fn evaluation(
    extract::State(state): extract::State<Arc<State>>,
    peer: Option<Extension<PeerChain>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    crate::decide_inline(state, move |state| evaluation_now(state, peer.map(|Extension(p)| p), headers, body)).await
}

fn evaluation_now(
    state: Arc<State>,
    peer: Option<PeerChain>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let id = RequestId::of(&headers);
    let answer = pep_allowed(&state, &headers, peer.as_ref())
        .and_then(|()| json_body(&headers, body))
        .and_then(|req| parse_evaluation(&req))
        .and_then(|e| decide(&state, &e));
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

/// `POST /access/v1/evaluations`: results in request order; `deny_on_first_deny` and
/// `permit_on_first_permit` stop after the first such result (it included).
pub async fn evaluations(
    extract::State(state): extract::State<Arc<State>>,
    peer: Option<Extension<PeerChain>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    crate::offload(state, move |state| evaluations_now(state, peer.map(|Extension(p)| p), headers, body)).await
}

fn evaluations_now(
    state: Arc<State>,
    peer: Option<PeerChain>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let id = RequestId::of(&headers);
    let answer = (|| {
        pep_allowed(&state, &headers, peer.as_ref())?;
        let req = json_body(&headers, body)?;
        let sem = authzen::semantic(&req).map_err(api)?;
        let Some(items) = authzen::items(&req).map_err(api)? else {
            // No `evaluations`: a single evaluation, answered as one.
            return decide(&state, &parse_evaluation(&req)?).map(|(b, _)| b);
        };
        // Every item is checked before any is decided: a bad item is a 400 for the batch.
        let evals = items
            .iter()
            .enumerate()
            .map(|(i, m)| {
                parse_evaluation(m).map_err(|e| ApiError { message: format!("evaluations[{i}]: {}", e.message), ..e })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // One call into the component for the whole batch; it stops where `sem` says.
        let decided = state.writ.evaluate_many(&evals, sem).map_err(|e| ApiError::internal(&e))?;
        let out: Vec<Value> = decided.into_iter().map(|d| response_body(&d)).collect();
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
