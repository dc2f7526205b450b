//! What every endpoint shares: the request id, JSON errors, and reading a bounded JSON body.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

/// The header a request id travels in (echoed on every response).
pub const REQUEST_ID: &str = "x-request-id";

/// A request's id: the caller's `X-Request-ID` (when short and printable) or a fresh one.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

static NEXT: AtomicU64 = AtomicU64::new(1);

impl RequestId {
    pub fn of(headers: &HeaderMap) -> RequestId {
        let given = headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()));
        RequestId(given.map_or_else(
            || format!("writ-{:x}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)),
            str::to_string,
        ))
    }
}

/// An error answered as JSON: `{"error":{"kind":…,"message":…,"request_id":…}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, kind, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    /// A failure of the runtime itself (a trapped instance, already replaced).
    pub fn internal(e: &writ_host::Error) -> ApiError {
        if let writ_host::Error::Unavailable(m) = e {
            tracing::warn!(error = %m, "the state store failed");
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m.clone());
        }
        tracing::warn!(error = %e, "the component failed; its instance was replaced");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("{e}"))
    }

    /// A typed error of an operation, with its status: bad input 400, an untrusted caller
    /// 401, a refusal 403, a limit 429, the state store 503, the runtime 500.
    pub fn of(e: &writ_host::Error) -> ApiError {
        use writ_host::Error as E;
        let status = match e {
            E::Malformed(_) | E::Policy(_) => StatusCode::BAD_REQUEST,
            E::Untrusted(_) => StatusCode::UNAUTHORIZED,
            E::Denied(_) | E::Revoked(_) | E::Expired(_) | E::NotYetValid(_) => StatusCode::FORBIDDEN,
            E::Limit(_) => StatusCode::TOO_MANY_REQUESTS,
            _ => return ApiError::internal(e),
        };
        ApiError::new(status, e.kind(), e.message())
    }

    pub fn respond(self, id: &RequestId) -> Response {
        let body = json!({ "error": { "kind": self.kind, "message": self.message, "request_id": id.0 } });
        with_id((self.status, axum::Json(body)).into_response(), id)
    }
}

/// `response` with the request id header set.
pub fn with_id(mut response: Response, id: &RequestId) -> Response {
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    response
}

/// A JSON answer with the request id.
pub fn ok(status: StatusCode, body: Value, id: &RequestId) -> Response {
    with_id((status, axum::Json(body)).into_response(), id)
}

/// The body of a JSON request: its content type must be JSON, its size within the limit
/// (the extractor's rejection), and it must parse to an object.
pub fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = ct.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!("content type `{ct}`; send `application/json`"),
        ));
    }
    let bytes = body.map_err(|e| ApiError::new(e.status(), "bad-body", e.body_text()))?;
    writ_types::authzen::object_body(&bytes).map_err(|e| ApiError::bad_request(e.message))
}
