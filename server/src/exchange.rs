//! RFC 8693 token exchange over mTLS, revocation, and the issuer's JWKS. The client
//! authenticates with its X.509-SVID at the TLS layer; the chain is attested through the
//! component per request.
//!
//! `POST /token` (form-encoded): `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`,
//! `scope` (space-separated actions) × `resource` (Cedar uids, repeatable) = the intents,
//! `audience`, and Writ's `task` (the task id) and optional `ttl` (seconds). With a
//! `subject_token` (a Writ credential the caller holds) it delegates instead: the new holder is
//! the `actor_token` (a PEM certificate chain, `actor_token_type` [`X509_CHAIN`]), attested
//! too; the task is the parent's.

use crate::State;
use crate::api::{ApiError, RequestId, ok, with_id};
use crate::tls::PeerChain;
use axum::body::Bytes;
use axum::extract::{self, Extension, Path};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use writ_host::{Attested, Intent};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ISSUED_TYPE: &str = "urn:ietf:params:oauth:token-type:txn_token";
/// `actor_token_type` of a PEM X.509-SVID chain naming the delegate.
pub const X509_CHAIN: &str = "urn:writ:params:token-type:x509-svid-chain";

/// An OAuth error response (RFC 6749 §5.2 shape).
fn oauth(status: StatusCode, error: &str, description: impl Into<String>, id: &RequestId) -> Response {
    with_id(
        (status, axum::Json(json!({ "error": error, "error_description": description.into(), "request_id": id.0 })))
            .into_response(),
        id,
    )
}

/// The mTLS client, attested.
pub(crate) fn client(state: &State, peer: Option<&PeerChain>) -> Result<Attested, String> {
    let chain = peer.filter(|p| !p.0.is_empty()).ok_or("a client certificate is required")?;
    state.writ.attest_x509(&chain.0).map_err(|e| format!("{}: {}", e.kind(), e.message()))
}

/// The attested mTLS caller of a JSON endpoint, or its refusal (audited; a 401 to answer).
fn attested(state: &State, peer: Option<&PeerChain>) -> Result<Attested, ApiError> {
    client(state, peer).map_err(|e| {
        crate::refused(state, "unauthenticated", &e);
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", e)
    })
}

fn pem_chain(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`actor_token` is not PEM: {e:?}"))?;
    if certs.is_empty() {
        return Err("`actor_token` holds no CERTIFICATE block".into());
    }
    Ok(certs)
}

/// RFC 7523's client assertion type for a JWT.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// `POST /token`.
pub async fn token(
    extract::State(state): extract::State<Arc<State>>,
    headers: HeaderMap,
    peer: Option<Extension<PeerChain>>,
    body: Bytes,
) -> Response {
    crate::offload(state, move |state| token_now(state, headers, peer, body)).await
}

fn token_now(state: Arc<State>, headers: HeaderMap, peer: Option<Extension<PeerChain>>, body: Bytes) -> Response {
    let started = Instant::now();
    let id = RequestId::of(&headers);
    let r = exchange(&state, &headers, peer.as_ref().map(|p| &p.0), &body, &id);
    state.metrics.decided("token", if r.status().is_success() { "allow" } else { "deny" }, started);
    r
}

fn exchange(state: &State, headers: &HeaderMap, peer: Option<&PeerChain>, body: &[u8], id: &RequestId) -> Response {
    let ct = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ct.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return oauth(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request",
            format!("content type `{ct}`; send `application/x-www-form-urlencoded`"),
            id,
        );
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let one = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    // The caller: an RFC 7523 client assertion (a JWT-SVID or OIDC workload token), else the
    // mTLS client certificate.
    let who = match (one("client_assertion_type"), one("client_assertion")) {
        (None, None) => client(state, peer),
        (Some(JWT_BEARER), Some(assertion)) => state
            .writ
            .attest_token(assertion, &state.config.token_audience)
            .map_err(|e| format!("client_assertion: {}: {}", e.kind(), e.message())),
        _ => Err(format!("a client assertion is `client_assertion_type` `{JWT_BEARER}` with `client_assertion`")),
    };
    let who = match who {
        Ok(w) => w,
        Err(e) => {
            crate::refused(state, "invalid_client", &e);
            return oauth(StatusCode::UNAUTHORIZED, "invalid_client", e, id);
        }
    };
    if one("grant_type") != Some(GRANT_TYPE) {
        return oauth(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("`grant_type` must be `{GRANT_TYPE}`"),
            id,
        );
    }
    let actions: Vec<&str> = one("scope").unwrap_or("").split_whitespace().collect();
    let resources: Vec<&str> = params.iter().filter(|(n, _)| n == "resource").map(|(_, v)| v.as_str()).collect();
    if actions.is_empty() || resources.is_empty() {
        return oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`scope` (actions) and at least one `resource` (Cedar uids) are required",
            id,
        );
    }
    let ttl = match one("ttl").map(str::parse::<u32>) {
        None => state.config.ttl_cap,
        Some(Ok(t)) if t > 0 => t,
        Some(_) => {
            return oauth(StatusCode::BAD_REQUEST, "invalid_request", "`ttl` is not a positive number of seconds", id);
        }
    };
    let task = one("task").unwrap_or("");
    let scope: Vec<Intent> = actions
        .iter()
        .flat_map(|a| {
            resources.iter().map(move |r| Intent {
                action: (*a).into(),
                resource: (*r).into(),
                task_id: task.into(),
                context: String::new(),
                input: String::new(),
            })
        })
        .collect();
    let granted = match one("subject_token") {
        None => {
            if task.is_empty() {
                return oauth(StatusCode::BAD_REQUEST, "invalid_request", "`task` (the task id) is required", id);
            }
            let audience = one("audience").unwrap_or(&state.config.audience);
            state.writ.issue(&who, task, &scope, ttl, audience)
        }
        Some(parent) => {
            if one("actor_token_type") != Some(X509_CHAIN) {
                return oauth(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    format!("delegation names the delegate in `actor_token` (`actor_token_type` `{X509_CHAIN}`)"),
                    id,
                );
            }
            let to = match pem_chain(one("actor_token").unwrap_or(""))
                .and_then(|c| state.writ.attest_x509(&c).map_err(|e| format!("actor: {}: {}", e.kind(), e.message())))
            {
                Ok(t) => t,
                Err(e) => return oauth(StatusCode::BAD_REQUEST, "invalid_request", e, id),
            };
            state.writ.delegate(parent, &who, &to, &scope, ttl)
        }
    };
    match granted {
        Ok(g) => {
            let expires_in = g.expires_at.saturating_sub(state.writ.now());
            ok(
                StatusCode::OK,
                json!({ "access_token": g.token, "issued_token_type": ISSUED_TYPE, "token_type": "N_A", "expires_in": expires_in }),
                id,
            )
        }
        Err(writ_host::Error::Denied(d)) => oauth(
            StatusCode::FORBIDDEN,
            "access_denied",
            format!("denied by {}: {}", d.reasons.join(", "), d.errors.join("; ")),
            id,
        ),
        Err(writ_host::Error::Trap(m)) => oauth(StatusCode::INTERNAL_SERVER_ERROR, "server_error", m, id),
        Err(writ_host::Error::Unavailable(m)) => {
            oauth(StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", m, id)
        }
        Err(e) => oauth(StatusCode::BAD_REQUEST, "invalid_grant", format!("{}: {}", e.kind(), e.message()), id),
    }
}

/// Run `run` for an attested caller, if policy allows it `action` on `resource`; its answer
/// is the response body.
fn authorized(
    state: &State,
    headers: &HeaderMap,
    peer: Option<&PeerChain>,
    action: &str,
    resource: String,
    run: impl FnOnce() -> Result<Value, ApiError>,
) -> Response {
    authorized_in(state, headers, peer, action, resource, "", run)
}

/// [`authorized`], the decision made in task `task_id` (its record is `context.task`).
fn authorized_in(
    state: &State,
    headers: &HeaderMap,
    peer: Option<&PeerChain>,
    action: &str,
    resource: String,
    task_id: &str,
    run: impl FnOnce() -> Result<Value, ApiError>,
) -> Response {
    let id = RequestId::of(headers);
    let who = match attested(state, peer) {
        Ok(w) => w,
        Err(refused) => return refused.respond(&id),
    };
    let what = Intent {
        action: action.into(),
        resource,
        task_id: task_id.into(),
        context: String::new(),
        input: String::new(),
    };
    match state.writ.check(&who, &what) {
        Ok(d) if d.allow => match run() {
            Ok(body) => ok(StatusCode::OK, body, &id),
            Err(e) => e.respond(&id),
        },
        Ok(d) => ApiError::new(
            StatusCode::FORBIDDEN,
            "denied",
            format!(
                "`{action}` on `{}` is not allowed for `{}` ({})",
                what.resource,
                who.spiffe_id,
                d.errors.join("; ")
            ),
        )
        .respond(&id),
        Err(e) => ApiError::internal(&e).respond(&id),
    }
}

/// `POST /task/{id}/end`: policy action `end_task` on `Task::"<id>"`.
pub async fn end_task(
    extract::State(state): extract::State<Arc<State>>,
    headers: HeaderMap,
    peer: Option<Extension<PeerChain>>,
    Path(task): Path<String>,
) -> Response {
    crate::offload(state, move |state| end_task_now(state, headers, peer, task)).await
}

fn end_task_now(state: Arc<State>, headers: HeaderMap, peer: Option<Extension<PeerChain>>, task: String) -> Response {
    let resource = format!("Task::{}", Value::String(task.clone()));
    // A task never opened cannot be ended: 404, told only to a caller allowed to end it.
    let peer = peer.as_ref().map(|p| &p.0);
    authorized_in(&state, &headers, peer, "end_task", resource, &task.clone(), || match state.writ.task(&task) {
        Ok(Some(_)) => {
            state.writ.end_task(&task).map(|n| json!({ "task": task, "revoked": n })).map_err(|e| ApiError::of(&e))
        }
        Ok(None) => Err(ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("task `{task}` was never opened"))),
        Err(e) => Err(ApiError::internal(&e)),
    })
}

/// `POST /agent/{spiffe_id}/cut-off` (the SPIFFE ID raw or percent-encoded): policy action
/// `cut_off` on `Agent::"<spiffe_id>"`; `POST /agent/{spiffe_id}/restore`: action `restore`.
pub async fn cut_off(
    extract::State(state): extract::State<Arc<State>>,
    headers: HeaderMap,
    peer: Option<Extension<PeerChain>>,
    Path(rest): Path<String>,
) -> Response {
    crate::offload(state, move |state| cut_off_now(state, headers, peer, rest)).await
}

fn cut_off_now(state: Arc<State>, headers: HeaderMap, peer: Option<Extension<PeerChain>>, rest: String) -> Response {
    let (agent, restore) = match (rest.strip_suffix("/cut-off"), rest.strip_suffix("/restore")) {
        (Some(agent), _) => (agent, false),
        (None, Some(agent)) => (agent, true),
        (None, None) => {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "use `POST /agent/{spiffe_id}/cut-off` or `POST /agent/{spiffe_id}/restore`",
            )
            .respond(&RequestId::of(&headers));
        }
    };
    let agent = percent_encoding::percent_decode_str(agent).decode_utf8_lossy().into_owned();
    let resource = format!("Agent::{}", Value::String(agent.clone()));
    let peer = peer.as_ref().map(|p| &p.0);
    if restore {
        // `{"agent":…,"restored":true|false}`.
        return authorized(&state, &headers, peer, "restore", resource, || {
            state
                .writ
                .restore(&agent)
                .map(|restored| json!({ "agent": agent, "restored": restored }))
                .map_err(|e| ApiError::of(&e))
        });
    }
    authorized(&state, &headers, peer, "cut_off", resource, || {
        state.writ.cut_off(&agent).map(|n| json!({ "agent": agent, "revoked": n })).map_err(|e| ApiError::of(&e))
    })
}

/// `GET /ledger/revocations?after=<seq>`: ended tasks and cut-off agents recorded after
/// `after`, for replicas that decide elsewhere (the proxy-wasm filter polls it).
/// `{"epoch","next","revocations":[…]}`: `next` is the `after` of the next poll; a different
/// `epoch` means the server restarted and its numbering began again (poll from 0).
pub async fn revocations(
    extract::State(state): extract::State<Arc<State>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    crate::offload(state, move |state| revocations_now(state, headers, uri)).await
}

fn revocations_now(state: Arc<State>, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let id = RequestId::of(&headers);
    let after = match uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "after").map(|(_, v)| v.parse::<u64>()))
    {
        None | Some(None) => 0,
        Some(Some(Ok(n))) => n,
        Some(Some(Err(_))) => {
            return ApiError::bad_request("`after` is a sequence number (an unsigned integer)").respond(&id);
        }
    };
    let entries = match state.writ.revocations_since(after) {
        Ok(e) => e,
        Err(e) => return ApiError::internal(&e).respond(&id),
    };
    let next = entries.last().map_or(after, |(seq, _)| *seq);
    let mut revocations = Vec::with_capacity(entries.len());
    for (seq, data) in &entries {
        // An entry that does not read is not skipped: a follower must not miss a revocation.
        match serde_json::from_str::<Value>(data) {
            Ok(v) => revocations.push(v),
            Err(e) => {
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "unavailable",
                    format!("the state holds a revocation that does not read (sequence number {seq}): {e}"),
                )
                .respond(&id);
            }
        }
    }
    let page = json!({ "epoch": state.epoch, "after": after, "next": next, "at": state.writ.now(), "revocations": revocations });
    // A filter asks for the page signed by the issuer (`Accept: application/jwt`): it can then
    // tell it from a forged or replayed one.
    let signed = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().starts_with("application/jwt")));
    if !signed {
        return ok(StatusCode::OK, page, &id);
    }
    match state.writ.sign_feed_page(&page.to_string()) {
        Ok(jws) => {
            let mut r = with_id((StatusCode::OK, jws).into_response(), &id);
            r.headers_mut()
                .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/jwt"));
            r
        }
        Err(e) => ApiError::internal(&e).respond(&id),
    }
}

/// `GET /.well-known/jwks.json`: the keys Writ's credentials verify with.
pub async fn jwks(extract::State(state): extract::State<Arc<State>>, headers: HeaderMap) -> Response {
    crate::offload(state, move |state| jwks_now(state, headers)).await
}

fn jwks_now(state: Arc<State>, headers: HeaderMap) -> Response {
    let id = RequestId::of(&headers);
    match state.writ.jwks().map(|j| serde_json::from_str::<Value>(&j)) {
        Ok(Ok(v)) => ok(StatusCode::OK, v, &id),
        Ok(Err(e)) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()).respond(&id),
        Err(e) => ApiError::internal(&e).respond(&id),
    }
}

/// `POST /task` (mTLS): open a task for the attested caller, if policy allows it
/// (`open_task` on `Task::"<id>"`). Body `{"id","members":[SPIFFE IDs],"purpose","ttl"}`
/// (`ttl` seconds from now, or `deadline` unix seconds) → 201 with the task record.
pub async fn open_task(
    extract::State(state): extract::State<Arc<State>>,
    headers: HeaderMap,
    peer: Option<Extension<PeerChain>>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    crate::offload(state, move |state| open_task_now(state, headers, peer, body)).await
}

fn open_task_now(
    state: Arc<State>,
    headers: HeaderMap,
    peer: Option<Extension<PeerChain>>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let id = RequestId::of(&headers);
    let who = match attested(&state, peer.as_ref().map(|p| &p.0)) {
        Ok(w) => w,
        Err(refused) => return refused.respond(&id),
    };
    let req = match crate::api::json_body(&headers, body) {
        Ok(r) => r,
        Err(e) => return e.respond(&id),
    };
    let text = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let members: Option<Vec<String>> = req
        .get("members")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|m| m.as_str().map(String::from)).collect());
    let Some(members) = members else {
        return ApiError::bad_request("`members` is a list of SPIFFE IDs").respond(&id);
    };
    let deadline = match (req.get("deadline").and_then(Value::as_u64), req.get("ttl").and_then(Value::as_u64)) {
        (Some(d), None) => d,
        (None, Some(ttl)) => state.writ.now().saturating_add(ttl),
        _ => return ApiError::bad_request("give `ttl` (seconds from now) or `deadline` (unix seconds)").respond(&id),
    };
    match state.writ.open_task(&who, &text("id"), &members, &text("purpose"), deadline) {
        Ok(task) => ok(StatusCode::CREATED, serde_json::to_value(&task).unwrap_or_default(), &id),
        Err(e) => ApiError::of(&e).respond(&id),
    }
}

/// `GET /task/{id}` (mTLS): the task record, 404 when it was never opened.
pub async fn show_task(
    extract::State(state): extract::State<Arc<State>>,
    headers: HeaderMap,
    peer: Option<Extension<PeerChain>>,
    Path(task): Path<String>,
) -> Response {
    crate::offload(state, move |state| show_task_now(state, headers, peer, task)).await
}

fn show_task_now(state: Arc<State>, headers: HeaderMap, peer: Option<Extension<PeerChain>>, task: String) -> Response {
    let id = RequestId::of(&headers);
    if let Err(refused) = attested(&state, peer.as_ref().map(|p| &p.0)) {
        return refused.respond(&id);
    }
    match state.writ.task(&task) {
        Ok(Some(t)) => ok(StatusCode::OK, serde_json::to_value(&t).unwrap_or_default(), &id),
        Ok(None) => {
            ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("task `{task}` was never opened")).respond(&id)
        }
        Err(e) => ApiError::internal(&e).respond(&id),
    }
}
