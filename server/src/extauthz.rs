//! Envoy's HTTP `ext_authz` service. Envoy sends the original method, path (after
//! `/ext_authz`) and headers. The caller is proven one of three ways: the client certificate a
//! trusted proxy forwards in `x-forwarded-client-cert` — only over the Unix socket, or from an
//! mTLS peer listed in `trusted_proxies` — its `Chain` (or `Cert`) attested through the
//! component (a bare `URI` only with `xfcc_trust_uri`); or the mTLS peer itself. On the plain
//! listener the header is ignored and the caller is refused (401): certificates are public, so
//! whoever could reach that listener could forward any workload's. The intent comes from
//! the first matching route rule; a Writ credential in `Authorization: Bearer` is presented
//! by that caller instead of a plain check. 200 allows (with `x-writ-*` headers for the
//! upstream); 403 denies and 401 refuses an unknown caller, each with a JSON body and an
//! `x-writ-reason` header.

use crate::State;
use crate::api::{ApiError, RequestId, with_id};
use crate::tls::{FromUnixSocket, PeerChain};
use axum::extract::{self, Extension};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use writ_host::{Attested, Intent};
use writ_types::xfcc;

fn unauth(m: String) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", m)
}

/// How a request reached the server.
#[derive(Clone, Copy)]
enum Via<'a> {
    Plain,
    Unix,
    Tls(&'a PeerChain),
}

/// The header a caller may prove itself with on any listener: a bearer identity token (a
/// JWT-SVID, or an OIDC workload token of a configured issuer) for `token_audience`.
pub(crate) const IDENTITY_TOKEN: &str = "x-writ-identity-token";

/// The caller: its identity token; else forwarded by a trusted proxy (the Unix socket, or an
/// mTLS peer listed in `trusted_proxies`), or the mTLS peer itself; never an unproven header.
fn caller(state: &State, headers: &HeaderMap, via: Via<'_>) -> Result<Attested, ApiError> {
    if let Some(token) = headers.get(IDENTITY_TOKEN) {
        let token = token.to_str().map_err(|_| unauth(format!("`{IDENTITY_TOKEN}` is not text")))?;
        return state
            .writ
            .attest_token(token.trim(), &state.config.token_audience)
            .map_err(|e| unauth(format!("{}: {}", e.kind(), e.message())));
    }
    match via {
        Via::Unix => forwarded(state, headers),
        Via::Tls(peer) => {
            let who = crate::exchange::client(state, Some(peer)).map_err(unauth)?;
            if state.config.trusted_proxies.contains(&who.spiffe_id) { forwarded(state, headers) } else { Ok(who) }
        }
        Via::Plain => Err(unauth(
            "the caller is not proven: `x-forwarded-client-cert` is honoured only over the Unix socket \
             (`listen_unix`) or from a proxy listed in `trusted_proxies` on the mTLS listener"
                .into(),
        )),
    }
}

/// The caller a trusted proxy forwards in `x-forwarded-client-cert`.
fn forwarded(state: &State, headers: &HeaderMap) -> Result<Attested, ApiError> {
    let value = headers
        .get("x-forwarded-client-cert")
        .ok_or_else(|| unauth("no `x-forwarded-client-cert`: the proxy must forward the client certificate".into()))?
        .to_str()
        .map_err(|_| unauth("`x-forwarded-client-cert` is not text".into()))?;
    let f = xfcc::fields(value);
    let chain = match (f.get("chain"), f.get("cert")) {
        (Some(c), _) | (None, Some(c)) => Some(xfcc::certificates(c).map_err(unauth)?),
        (None, None) => None,
    };
    if let Some(chain) = chain {
        return state.writ.attest_x509(&chain).map_err(|e| unauth(format!("{}: {}", e.kind(), e.message())));
    }
    // Only a URI: trusted only when configured (the proxy is the only way in).
    let uri = f.get("uri").ok_or_else(|| unauth("`x-forwarded-client-cert` has no Chain, Cert or URI".into()))?;
    if !state.config.xfcc_trust_uri {
        return Err(unauth("`x-forwarded-client-cert` carries no certificate to attest (set the proxy to forward Cert and Chain, or `xfcc_trust_uri`)".into()));
    }
    // The proxy validated the certificate and forwarded only its SPIFFE ID: the component takes
    // it on the proxy's word (proof `asserted`) for decisions, never for credentials. Its expiry
    // is not forwarded; the assertion lasts this request.
    state
        .writ
        .assert_identity(uri, state.writ.now() + 300, "a trusted proxy's x-forwarded-client-cert URI")
        .map_err(|e| unauth(format!("{}: {}", e.kind(), e.message())))
}

fn deny(status: StatusCode, reason: &str, body: serde_json::Value, id: &RequestId) -> Response {
    let mut r = with_id((status, axum::Json(body)).into_response(), id);
    if let Ok(v) = HeaderValue::from_str(reason) {
        r.headers_mut().insert("x-writ-reason", v);
    }
    r
}

/// `ANY /ext_authz/...`.
pub(crate) async fn check(
    extract::State(state): extract::State<Arc<State>>,
    peer: Option<Extension<PeerChain>>,
    unix: Option<Extension<FromUnixSocket>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let peer = peer.map(|Extension(p)| p).filter(|p| !p.0.is_empty());
    let unix = unix.is_some();
    crate::decide_inline(state, move |state| {
        let via = match (&peer, unix) {
            (Some(p), _) => Via::Tls(p),
            (None, true) => Via::Unix,
            (None, false) => Via::Plain,
        };
        check_now(state, via, method, uri, headers)
    })
    .await
}

fn check_now(state: Arc<State>, via: Via<'_>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let started = Instant::now();
    let id = RequestId::of(&headers);
    let path = uri.path().strip_prefix("/ext_authz").unwrap_or(uri.path());
    let path = if path.is_empty() { "/" } else { path };
    let who = match caller(&state, &headers, via) {
        Ok(w) => w,
        Err(e) => {
            state.metrics.decided("ext_authz", "unauthenticated", started);
            crate::refused(&state, e.kind, &e.message);
            return deny(
                e.status,
                e.kind,
                json!({ "allow": false, "reason": e.kind, "message": e.message, "request_id": id.0 }),
                &id,
            );
        }
    };
    let context = headers.get("x-writ-context").and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(core_intent) = state.routes.intent(method.as_str(), path, context) else {
        state.metrics.decided("ext_authz", "deny", started);
        let message = format!("no route rule for `{method} {path}`");
        crate::refused_by(&state, Some(&who.spiffe_id), "no-route", &message);
        return deny(
            StatusCode::FORBIDDEN,
            "no-route",
            json!({ "allow": false, "reason": "no-route", "message": message, "request_id": id.0 }),
            &id,
        );
    };
    let what = Intent {
        action: core_intent.action,
        resource: core_intent.resource,
        task_id: core_intent.task_id,
        context: core_intent.context,
        input: String::new(),
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let decided = match bearer {
        Some(token) => state.writ.present(token.trim(), &who, &what, &state.config.audience),
        None => state.writ.check(&who, &what),
    };
    match decided {
        Ok(d) if d.allow => {
            state.metrics.decided("ext_authz", "allow", started);
            let mut r = with_id(StatusCode::OK.into_response(), &id);
            let h = r.headers_mut();
            h.insert("x-writ-decision", HeaderValue::from_static("allow"));
            for (name, value) in [
                ("x-writ-subject", who.spiffe_id.clone()),
                ("x-writ-policies", d.reasons.join(",")),
                ("x-writ-max-ttl", d.max_ttl_secs.to_string()),
            ] {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    h.insert(name, v);
                }
            }
            r
        }
        Ok(d) => {
            state.metrics.decided("ext_authz", "deny", started);
            let reason = d
                .reasons
                .first()
                .cloned()
                .unwrap_or_else(|| if d.errors.is_empty() { "no-permit".into() } else { "error".into() });
            let body = json!({ "allow": false, "reason": reason, "reasons": d.reasons, "errors": d.errors, "intent": { "action": what.action, "resource": what.resource }, "request_id": id.0 });
            deny(StatusCode::FORBIDDEN, &reason, body, &id)
        }
        Err(writ_host::Error::Trap(m)) => {
            state.metrics.decided("ext_authz", "error", started);
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m).respond(&id)
        }
        Err(e) => {
            // A bad, expired, revoked or stolen credential.
            state.metrics.decided("ext_authz", "deny", started);
            deny(
                StatusCode::FORBIDDEN,
                e.kind(),
                json!({ "allow": false, "reason": e.kind(), "message": e.message(), "request_id": id.0 }),
                &id,
            )
        }
    }
}
