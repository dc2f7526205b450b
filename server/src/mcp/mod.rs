//! The MCP gateway: MCP's Streamable HTTP transport served at `/mcp/<name>` (and `/mcp` when
//! there is one upstream), each request attested and each JSON-RPC message decided before the
//! upstream MCP server sees it. The agent proves itself on every request — its mTLS
//! certificate, or a JWT-SVID or OIDC workload token as `Authorization: Bearer` (or
//! `x-writ-identity-token`) — and its token is never forwarded. `tools/call` is decided as the
//! tool's own action on `McpServer::"<name>"` with the call's arguments as `context.input`
//! (Writ's key: the gateway forwards exactly those bytes); `resources/read`, `prompts/get` and
//! every other method as the method's action with its params; `initialize`, `ping`,
//! `server/discover` and notifications pass; `tools/list` is answered with the tools the agent
//! may call. A denial is a JSON-RPC error naming the deciding policies, and nothing of a body
//! with a denied message is forwarded. Responses, SSE streams included, go back untouched but
//! for a tool list's.

mod listing;
mod pins;
mod sessions;
mod tools;
mod upstream;

pub use tools::fetch_tools;

use crate::State;
use crate::tls::PeerChain;
use axum::body::Bytes;
use axum::extract::{self, Extension};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use writ_host::{Attested, Intent};
use writ_types::mcp::{self, Ask, DENIED, INVALID_REQUEST, Message};

/// The entity type of an upstream MCP server in decisions: `McpServer::"<name>"`.
pub(crate) const RESOURCE_TYPE: &str = "McpServer";
/// The header naming the open task a request belongs to (its `context.task`).
pub(crate) const TASK_HEADER: &str = "x-writ-task";
const SESSION_HEADER: &str = "mcp-session-id";
/// The reason of a call to a tool refused until policies validate against its input schema.
const TOOL_REFUSED: &str = "writ:tool-schema-changed";

/// The gateway's upstreams, its client of them, and the sessions it saw opened.
pub(crate) struct Gateway {
    upstreams: BTreeMap<String, crate::config::McpUpstream>,
    client: upstream::Client,
    sessions: sessions::Sessions,
    credential_ttl: u32,
    /// The tools the loaded policies were validated for.
    pub(crate) pins: pins::ToolPins,
}

impl Gateway {
    /// The gateway of the configuration's `[[mcp.upstream]]`s; `None` without any.
    pub fn new(config: &crate::config::McpConfig) -> Result<Option<Gateway>, String> {
        if config.upstreams.is_empty() {
            return Ok(None);
        }
        let mut upstreams = BTreeMap::new();
        for u in &config.upstreams {
            if upstreams.insert(u.name.clone(), u.clone()).is_some() {
                return Err(format!("mcp: two upstreams are named `{}`", u.name));
            }
        }
        let client = upstream::Client::new(config)?;
        Ok(Some(Gateway {
            upstreams,
            client,
            sessions: Default::default(),
            credential_ttl: config.credential_ttl_secs,
            pins: Default::default(),
        }))
    }

    /// The upstream `/mcp` serves: the only one.
    fn only(&self) -> Option<&str> {
        (self.upstreams.len() == 1).then(|| self.upstreams.keys().next().map(String::as_str)).flatten()
    }
}

/// `/mcp`: the only upstream.
pub(crate) async fn only(
    extract::State(state): extract::State<Arc<State>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<Extension<PeerChain>>,
    body: Bytes,
) -> Response {
    let name = state.mcp.as_ref().and_then(Gateway::only).map(str::to_string);
    match name {
        Some(name) => serve(state, name, method, uri, headers, peer.map(|p| p.0), body).await,
        None => http_error(StatusCode::NOT_FOUND, "name the upstream: `/mcp/<name>`"),
    }
}

/// `/mcp/<name>`.
pub(crate) async fn named(
    extract::State(state): extract::State<Arc<State>>,
    extract::Path(name): extract::Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<Extension<PeerChain>>,
    body: Bytes,
) -> Response {
    serve(state, name, method, uri, headers, peer.map(|p| p.0), body).await
}

/// An HTTP error with a JSON-RPC error body (no request id).
fn http_error(status: StatusCode, message: &str) -> Response {
    let code = if status == StatusCode::BAD_REQUEST { INVALID_REQUEST } else { mcp::UPSTREAM };
    (status, axum::Json(mcp::error(None, code, message, None))).into_response()
}

/// What the blocking part of a request decided.
enum Prepared {
    /// Answer this, forward nothing.
    Answer(Response),
    /// Forward; `list` is the id of a single `tools/list` request whose answer is filtered;
    /// `credential` the Writ credential minted for the call, sent as `Authorization: Bearer`.
    /// `task` is the request's (the session's, a presented credential's, or `x-writ-task`'s).
    Forward { who: Attested, task: String, initializing: bool, list: Option<Listing>, credential: Option<String> },
}

/// A lone `tools/list` whose answer is cut: its id, and the scope of the credential the agent
/// presented (its tools only), if it presented one.
pub(crate) struct Listing {
    id: Value,
    scope: Option<Vec<(String, String)>>,
}

async fn serve(
    state: Arc<State>,
    name: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Option<PeerChain>,
    body: Bytes,
) -> Response {
    let Some(url) = state.mcp.as_ref().and_then(|g| g.upstreams.get(&name)).map(|u| u.url.clone()) else {
        return http_error(StatusCode::NOT_FOUND, &format!("no MCP upstream `{}`", mcp::clip(&name)));
    };
    if !matches!(method, Method::POST | Method::GET | Method::DELETE) {
        return http_error(StatusCode::METHOD_NOT_ALLOWED, "MCP's transport takes POST, GET and DELETE");
    }
    let prepared = {
        let (name, method, headers, body) = (name.clone(), method.clone(), headers.clone(), body.clone());
        crate::blocking(state.clone(), move |state| prepare(&state, &name, &method, &headers, peer.as_ref(), &body))
            .await
    };
    let (who, task, initializing, list, credential) = match prepared {
        Ok(Prepared::Forward { who, task, initializing, list, credential }) => {
            (who, task, initializing, list, credential)
        }
        Ok(Prepared::Answer(r)) | Err(r) => return r,
    };
    let Some(gateway) = state.mcp.as_ref() else { return http_error(StatusCode::NOT_FOUND, "no MCP gateway") };
    let target = match uri.query() {
        Some(q) => format!("{url}?{q}"),
        None => url,
    };
    let answer = match gateway.client.forward(method.clone(), &target, &headers, credential, body).await {
        Ok(a) => a,
        Err((status, message)) => return http_error(status, &message),
    };
    let session = answer.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
    if initializing
        && answer.status().is_success()
        && let Some(session) = &session
    {
        gateway.sessions.bind(&name, session, &who.spiffe_id, &task);
    }
    if method == Method::DELETE
        && answer.status().is_success()
        && let Some(session) = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok())
    {
        gateway.sessions.end(&name, session);
    }
    match list {
        Some(listing) if answer.status().is_success() => {
            listing::filtered(state.clone(), answer, who, name, task, listing.id, listing.scope).await
        }
        _ => upstream::streamed(answer),
    }
}

/// The task a request names (`x-writ-task`), or none.
fn task_of(headers: &HeaderMap) -> String {
    headers.get(TASK_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().trim().to_string()
}

/// Attest the caller, check its session, and decide every message of the body.
fn prepare(
    state: &State,
    name: &str,
    method: &Method,
    headers: &HeaderMap,
    peer: Option<&PeerChain>,
    body: &[u8],
) -> Prepared {
    let presented = bearer(headers).and_then(|t| writ_types::grant::unverified_credential_task(t).map(|txn| (t, txn)));
    let who = match caller(state, headers, peer, presented.is_some()) {
        Ok(w) => w,
        Err(message) => {
            crate::refused(state, "unauthenticated", &message);
            let mut r = http_error(StatusCode::UNAUTHORIZED, &message);
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            return Prepared::Answer(r);
        }
    };
    // The task: a presented credential's, else the one `x-writ-task` names; a session keeps
    // the task it was opened in, and a request in it may name no other.
    let named = task_of(headers);
    let mut task = match &presented {
        Some((_, txn)) if !named.is_empty() && named != *txn => {
            let message = format!(
                "`{TASK_HEADER}` names task `{}`, the credential is for `{}`",
                mcp::clip(&named),
                mcp::clip(txn)
            );
            return Prepared::Answer(http_error(StatusCode::BAD_REQUEST, &message));
        }
        Some((_, txn)) => txn.clone(),
        None => named,
    };
    if let Some(session) = headers.get(SESSION_HEADER) {
        let bound = session
            .to_str()
            .ok()
            .zip(state.mcp.as_ref())
            .and_then(|(s, g)| g.sessions.task_for(name, s, &who.spiffe_id));
        let Some(bound) = bound else {
            crate::refused_by(
                state,
                Some(&who.spiffe_id),
                "unknown-session",
                "an MCP session this agent did not open here",
            );
            return Prepared::Answer(http_error(StatusCode::NOT_FOUND, "unknown MCP session"));
        };
        if task.is_empty() {
            task = bound;
        } else if task != bound {
            let message = if bound.is_empty() {
                format!("this MCP session was opened in no task, not in `{}`: open a session in it", mcp::clip(&task))
            } else {
                format!("this MCP session belongs to task `{}`, not `{}`", mcp::clip(&bound), mcp::clip(&task))
            };
            crate::refused_by(state, Some(&who.spiffe_id), "other-task", &message);
            return Prepared::Answer(http_error(StatusCode::FORBIDDEN, &message));
        }
    }
    if *method != Method::POST {
        return Prepared::Forward { who, task, initializing: false, list: None, credential: None };
    }
    let parsed = match mcp::parse(body) {
        Ok(b) => b,
        Err((code, message)) => {
            return Prepared::Answer(
                (StatusCode::BAD_REQUEST, axum::Json(mcp::error(None, code, &message, None))).into_response(),
            );
        }
    };
    if let Some(mismatch) = header_mismatch(headers, &parsed) {
        let m = &parsed.messages[0];
        let body = mcp::error(m.id(), mcp::HEADER_MISMATCH, &mismatch, None);
        return Prepared::Answer((StatusCode::BAD_REQUEST, axum::Json(body)).into_response());
    }
    let session = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
    let resource = format!("{RESOURCE_TYPE}::\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""));
    let mut refusals: Vec<Option<Value>> = Vec::with_capacity(parsed.messages.len());
    let mut list = None;
    let mut initializing = false;
    let mut credential = None;
    for m in &parsed.messages {
        let refusal = match m.ask() {
            Err(problem) => Some(mcp::error(m.id(), mcp::INVALID_PARAMS, &problem, None)),
            Ok(Ask::Pass) => {
                initializing |= m.method() == Some("initialize");
                None
            }
            Ok(Ask::ListTools) => {
                let scope = presented
                    .as_ref()
                    .map(|(token, _)| writ_types::grant::unverified_credential_scope(token).unwrap_or_default());
                list = Some(Listing { id: m.id().cloned().unwrap_or(Value::Null), scope });
                None
            }
            Ok(Ask::Decide { action, input }) => {
                let what = Intent {
                    action: action.clone(),
                    resource: resource.clone(),
                    task_id: task.clone(),
                    context: String::new(),
                    input,
                };
                let lone_call = !parsed.batch && m.method() == Some("tools/call") && !task.is_empty();
                let presented = presented.as_ref().map(|(token, _)| *token);
                match decide(state, name, &who, m, &what, presented, session.as_deref(), lone_call) {
                    Ok(minted) => {
                        credential = minted;
                        None
                    }
                    Err(refusal) => Some(refusal),
                }
            }
        };
        refusals.push(refusal);
    }
    if refusals.iter().any(Option::is_some) {
        return Prepared::Answer(refuse_all(&parsed, refusals));
    }
    // A batch's answer is not filtered, nor its calls given credentials: only a lone message's.
    if parsed.batch {
        return Prepared::Forward { who, task, initializing, list: None, credential: None };
    }
    Prepared::Forward { who, task, initializing, list, credential }
}

/// Decide one message's intent `what` (audited): the credential minted for it when allowed
/// (`lone_call`: a lone tool call in a task), or the JSON-RPC error refusing it.
///
/// A tool refused for a changed input schema (the gateway's pins) is denied before anything
/// else. Then, with a
/// credential of the agent's own (`presented`), it is presented first: its scope bounds
/// what the agent may do, whatever policy would give it. A lone tool call in a task is then
/// decided by issuing its credential (one decision, so a `@max_calls` budget is spent once);
/// any other message by a check.
#[allow(clippy::too_many_arguments)]
fn decide(
    state: &State,
    name: &str,
    who: &Attested,
    m: &Message,
    what: &Intent,
    presented: Option<&str>,
    session: Option<&str>,
    lone_call: bool,
) -> Result<Option<String>, Value> {
    // A tool refused for its input schema is refused before anything is presented or decided.
    if m.method() == Some("tools/call")
        && let Some(why) = state.mcp.as_ref().and_then(|g| g.pins.refusal(name, &what.action))
    {
        let d = writ_host::Decision {
            allow: false,
            reasons: vec![TOOL_REFUSED.to_string()],
            errors: vec![format!("tool `{}`: {why}", mcp::clip(&what.action))],
            max_ttl_secs: 0,
        };
        audit(state, who, m, what, session, &Ok(d.clone()), None);
        return Err(denial(m, &what.action, &d));
    }
    if let Some(token) = presented {
        match state.writ.present(token, who, what, &state.config.audience) {
            Ok(d) if d.allow => {}
            refused => {
                audit(state, who, m, what, session, &refused, None);
                return Err(match refused {
                    Ok(d) => denial(m, &what.action, &d),
                    Err(e) => mcp::error(
                        m.id(),
                        DENIED,
                        &format!("denied by writ: the credential: {}: {}", e.kind(), e.message()),
                        None,
                    ),
                });
            }
        }
    }
    let minted = lone_call.then(|| credential_for(state, name, who, what));
    let decided = match &minted {
        Some(Ok(grant)) => Ok(writ_host::Decision {
            allow: true,
            reasons: Vec::new(),
            errors: Vec::new(),
            max_ttl_secs: u32::try_from(grant.expires_at.saturating_sub(state.writ.now())).unwrap_or(u32::MAX),
        }),
        Some(Err(writ_host::Error::Denied(d))) => Ok(d.clone()),
        Some(Err(e)) => Err(e.clone()),
        None => state.writ.check(who, what),
    };
    let minted = minted.and_then(Result::ok);
    audit(state, who, m, what, session, &decided, minted.as_ref().map(|g| g.jti.clone()));
    match decided {
        Ok(d) if d.allow => Ok(minted.map(|g| g.token)),
        Ok(d) => Err(denial(m, &what.action, &d)),
        Err(e) => Err(mcp::error(m.id(), mcp::UPSTREAM, &format!("{}: {}", e.kind(), e.message()), None)),
    }
}

/// A Writ credential for exactly this call: issued to the agent in its task, for the upstream's
/// audience, its scope the tool on this upstream bound to these arguments (`input#S256`), its
/// lifetime `credential_ttl_secs` capped by the policies' `@ttl`.
/// Issuing it is the call's decision: a denial is the issue's.
fn credential_for(
    state: &State,
    name: &str,
    who: &Attested,
    what: &Intent,
) -> Result<writ_host::Grant, writ_host::Error> {
    let gateway = state.mcp.as_ref().ok_or_else(|| writ_host::Error::Unavailable("no MCP gateway".into()))?;
    let upstream =
        gateway.upstreams.get(name).ok_or_else(|| writ_host::Error::Unavailable("no such upstream".into()))?;
    let audience = upstream.audience.as_deref().unwrap_or(&upstream.name);
    state.writ.issue(who, &what.task_id, std::slice::from_ref(what), gateway.credential_ttl, audience)
}

/// One audit event per decided message (kind `mcp`), named as OpenTelemetry's GenAI and MCP
/// conventions name them; the arguments only as their digest, never themselves.
fn audit(
    state: &State,
    who: &Attested,
    m: &Message,
    what: &Intent,
    session: Option<&str>,
    decided: &Result<writ_host::Decision, writ_host::Error>,
    jti: Option<String>,
) {
    let (allow, reasons) = match decided {
        Ok(d) => (d.allow, d.reasons.clone()),
        Err(e) => (false, vec![e.kind().to_string()]),
    };
    let method = m.method().unwrap_or_default();
    state.writ.audit(writ_host::AuditEvent {
        kind: "mcp".into(),
        time: state.writ.now(),
        spiffe_id: Some(who.spiffe_id.clone()),
        task_id: (!what.task_id.is_empty()).then(|| what.task_id.clone()),
        action: Some(what.action.clone()),
        resource: Some(what.resource.clone()),
        allow,
        reasons,
        operation: (method == "tools/call").then(|| "execute_tool".to_string()),
        mcp_method: Some(method.to_string()),
        mcp_session: session.map(str::to_string),
        input_digest: writ_types::input::input_digest(&what.input).ok().flatten(),
        jti,
        ..writ_host::AuditEvent::default()
    });
}

/// Why a lone message's MCP routing headers (`Mcp-Method`, `Mcp-Name`) disagree with its body,
/// if they do: a proxy that decided on the headers must have seen what the body asks.
fn header_mismatch(headers: &HeaderMap, parsed: &mcp::Body) -> Option<String> {
    let header = |n: &str| headers.get(n).map(|v| v.to_str().unwrap_or("\u{fffd}").to_string());
    let (method, name) = (header("mcp-method"), header("mcp-name"));
    if method.is_none() && name.is_none() {
        return None;
    }
    if parsed.batch {
        return Some("`Mcp-Method`/`Mcp-Name` headers on a batch".into());
    }
    let m = &parsed.messages[0];
    if let Some(method) = &method
        && m.method() != Some(method.as_str())
    {
        return Some(format!("`Mcp-Method` `{}` is not the body's method", mcp::clip(method)));
    }
    if let Some(name) = &name
        && m.routing_name() != Some(name.as_str())
    {
        return Some(format!("`Mcp-Name` `{}` is not the name the body asks for", mcp::clip(name)));
    }
    None
}

/// The JSON-RPC error of a denied message: the deciding policies (or that none permits it).
fn denial(m: &Message, action: &str, d: &writ_host::Decision) -> Value {
    let mut message = if d.reasons.is_empty() {
        format!("denied by writ: no policy permits `{}` here", mcp::clip(action))
    } else {
        format!("denied by writ: {}", d.reasons.join(", "))
    };
    // A reason of Writ's own (a spent budget, a cut-off) says what happened in its error, and
    // so does a request that could not be decided (arguments that do not fit the tool's types).
    if (d.reasons.is_empty() || d.reasons.iter().any(|r| r.starts_with("writ:"))) && !d.errors.is_empty() {
        message.push_str(": ");
        message.push_str(&d.errors.join("; "));
    }
    mcp::error(m.id(), DENIED, &message, Some(json!({ "reasons": d.reasons, "errors": d.errors })))
}

/// The answer to a body with a refused message: nothing is forwarded; each refused message gets
/// its error, every other request an error saying it was not forwarded.
fn refuse_all(parsed: &mcp::Body, refusals: Vec<Option<Value>>) -> Response {
    let mut answers = Vec::new();
    for (m, refusal) in parsed.messages.iter().zip(refusals) {
        match refusal {
            Some(r) => answers.push(r),
            None if m.is_request() => answers.push(mcp::error(
                m.id(),
                DENIED,
                "not forwarded: another message of the batch was refused",
                None,
            )),
            None => {}
        }
    }
    let body = if parsed.batch { Value::Array(answers) } else { answers.into_iter().next().unwrap_or(Value::Null) };
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// `Authorization: Bearer`'s token.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// The agent: a bearer identity token (JWT-SVID or OIDC, `Authorization: Bearer` or
/// `x-writ-identity-token`), else the mTLS peer. When `Authorization` carries a Writ
/// credential (`bearer_is_credential`), the agent is the holder that proves it: the mTLS peer or
/// `x-writ-identity-token`.
fn caller(
    state: &State,
    headers: &HeaderMap,
    peer: Option<&PeerChain>,
    bearer_is_credential: bool,
) -> Result<Attested, String> {
    let identity_token = headers.get(crate::extauthz::IDENTITY_TOKEN).and_then(|v| v.to_str().ok());
    let token = if bearer_is_credential { identity_token } else { identity_token.or(bearer(headers)) };
    if let Some(token) = token {
        return state
            .writ
            .attest_token(token.trim(), &state.config.token_audience)
            .map_err(|e| format!("{}: {}", e.kind(), e.message()));
    }
    match peer {
        Some(p) if !p.0.is_empty() => crate::exchange::client(state, Some(p)),
        _ if bearer_is_credential => Err("a Writ credential needs its holder's proof: the client certificate, or the identity token as `x-writ-identity-token`, it was issued to".into()),
        _ => Err("the agent is not proven: present a client certificate, or a JWT-SVID or OIDC token as `Authorization: Bearer`".into()),
    }
}
