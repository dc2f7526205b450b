//! The gateway's client of its upstream MCP servers: one request forwarded as it came — its
//! body's bytes unchanged, its headers but for the agent's credentials and hop-by-hop ones —
//! and the answer streamed back (SSE included) as it arrives. A deadline on the answer's head,
//! none on a stream (MCP's SSE streams live as long as their session); no redirects, no proxy
//! from the environment.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use axum::response::Response;
use std::time::Duration;

pub(crate) struct Client {
    http: reqwest::Client,
    head_timeout: Duration,
}

/// Headers never forwarded upstream: the agent's own proof (the upstream gets none of it),
/// Writ's, and the connection's own.
const NOT_FORWARDED: [&str; 14] = [
    "authorization",
    "x-writ-identity-token",
    "x-writ-task",
    "x-forwarded-client-cert",
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers of the answer not passed back (the connection's own; the length is the body's).
const NOT_RETURNED: [&str; 7] =
    ["connection", "keep-alive", "transfer-encoding", "trailer", "upgrade", "content-length", "te"];

impl Client {
    pub fn new(config: &crate::config::McpConfig) -> Result<Client, String> {
        for u in &config.upstreams {
            if !(u.url.starts_with("http://") || u.url.starts_with("https://")) {
                return Err(format!("mcp upstream `{}`: `{}` is not an http(s) URL", u.name, u.url));
            }
        }
        let tls = writ_host::web_tls_config(config.ca_file.as_deref()).map_err(|e| format!("mcp: {e}"))?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_millis(config.upstream_timeout_ms))
            .build()
            .map_err(|e| format!("mcp: {e}"))?;
        Ok(Client { http, head_timeout: Duration::from_millis(config.upstream_timeout_ms) })
    }

    /// Forward a request (with the Writ credential minted for it, if any, as its only
    /// `Authorization`); the upstream's answer (its head: the body is still to come), or the
    /// HTTP error to answer instead.
    pub async fn forward(
        &self,
        method: Method,
        url: &str,
        headers: &HeaderMap,
        credential: Option<String>,
        body: Bytes,
    ) -> Result<reqwest::Response, (StatusCode, String)> {
        let mut request = self.http.request(method, url);
        for (name, value) in headers {
            if !NOT_FORWARDED.contains(&name.as_str()) {
                request = request.header(name, value);
            }
        }
        if let Some(token) = credential {
            request = request.bearer_auth(token);
        }
        let sent = tokio::time::timeout(self.head_timeout, request.body(body).send()).await;
        match sent {
            Err(_) => Err((
                StatusCode::GATEWAY_TIMEOUT,
                format!("the upstream did not answer within {} ms", self.head_timeout.as_millis()),
            )),
            Ok(Err(e)) => {
                Err((StatusCode::BAD_GATEWAY, format!("the upstream is unreachable: {}", writ_host::error_chain(&e))))
            }
            Ok(Ok(r)) => Ok(r),
        }
    }
}

/// The upstream's answer, streamed back as it arrives.
pub(crate) fn streamed(answer: reqwest::Response) -> Response {
    let mut response = Response::builder().status(answer.status().as_u16());
    if let Some(h) = response.headers_mut() {
        copy_headers(answer.headers(), h);
    }
    response.body(Body::from_stream(answer.bytes_stream())).unwrap_or_else(|_| {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::BAD_GATEWAY;
        r
    })
}

/// The answer's headers worth passing back.
pub(crate) fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if !NOT_RETURNED.contains(&name.as_str())
            && let Ok(name) = HeaderName::from_bytes(name.as_str().as_bytes())
        {
            to.append(name, value.clone());
        }
    }
}
