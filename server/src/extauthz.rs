//! Envoy's HTTP `ext_authz` service. Envoy sends the original method, path (after
//! `/ext_authz`) and headers. The caller is the client certificate Envoy forwards in
//! `x-forwarded-client-cert` — its `Chain` (or `Cert`) attested through the component; a bare
//! `URI` only when `xfcc_trust_uri` says the proxy alone can reach Writ. The intent comes from
//! the first matching route rule; a Writ credential in `Authorization: Bearer` is presented
//! by that caller instead of a plain check. 200 allows (with `x-writ-*` headers for the
//! upstream); 403 denies and 401 refuses an unknown caller, each with a JSON body and an
//! `x-writ-reason` header.

use crate::State;
use crate::api::{ApiError, RequestId, with_id};
use axum::extract;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use writ_host::{Identity, Intent, Proof};

/// A route's path pattern: literal segments, `{name}` capturing one, a final `*` the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(Vec<Seg>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Var(String),
    Rest,
}

impl Pattern {
    pub fn parse(path: &str) -> Result<Pattern, String> {
        if !path.starts_with('/') {
            return Err("a path pattern starts with `/`".into());
        }
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        let mut segs = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            if *p == "*" {
                if i + 1 != parts.len() {
                    return Err("`*` may only end a pattern".into());
                }
                segs.push(Seg::Rest);
            } else if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(format!("`{p}` is not a capture like `{{name}}`"));
                }
                segs.push(Seg::Var(name.into()));
            } else {
                segs.push(Seg::Lit((*p).into()));
            }
        }
        Ok(Pattern(segs))
    }

    /// The captures when `path` matches.
    pub fn matches(&self, path: &str) -> Option<BTreeMap<String, String>> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).collect();
        let mut caps = BTreeMap::new();
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Rest => {
                    caps.insert("*".into(), parts.get(i..).map(|r| r.join("/")).unwrap_or_default());
                    return Some(caps);
                }
                Seg::Lit(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                }
                Seg::Var(v) => {
                    let p = parts.get(i)?;
                    let decoded = percent_encoding::percent_decode_str(p).decode_utf8().ok()?;
                    caps.insert(v.clone(), decoded.into_owned());
                }
            }
        }
        (parts.len() == self.0.len()).then_some(caps)
    }
}

/// `template` with `{name}` replaced by captures; values are escaped for a Cedar string.
fn fill(template: &str, caps: &BTreeMap<String, String>) -> String {
    let mut out = template.to_string();
    for (k, v) in caps {
        let escaped = v.replace('\\', "\\\\").replace('"', "\\\"");
        out = out.replace(&format!("{{{k}}}"), &escaped);
    }
    out
}

/// The fields of the last (nearest) element of an `x-forwarded-client-cert` header.
pub fn xfcc(value: &str) -> BTreeMap<String, String> {
    // Elements are `,`-separated, pairs `;`-separated, values possibly quoted.
    let mut elements: Vec<Vec<String>> = vec![vec![String::new()]];
    let mut quoted = false;
    for c in value.chars() {
        let (Some(element), q) = (elements.last_mut(), quoted) else { continue };
        match c {
            '"' => quoted = !q,
            ',' if !q => elements.push(vec![String::new()]),
            ';' if !q => element.push(String::new()),
            _ => {
                if let Some(pair) = element.last_mut() {
                    pair.push(c);
                }
            }
        }
    }
    elements
        .pop()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|pair| pair.split_once('=').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())))
        .collect()
}

/// DER certificates from a URL-encoded PEM value.
fn certs(encoded: &str) -> Result<Vec<Vec<u8>>, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let pem = percent_encoding::percent_decode_str(encoded).decode_utf8().map_err(|_| "the forwarded certificate is not UTF-8".to_string())?;
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes()).map(|c| c.map(|c| c.to_vec())).collect::<Result<Vec<_>, _>>().map_err(|e| format!("the forwarded certificate is not PEM: {e:?}"))?;
    if certs.is_empty() {
        return Err("the forwarded certificate holds no CERTIFICATE block".into());
    }
    Ok(certs)
}

/// The caller, from the forwarded client certificate.
fn caller(state: &State, headers: &HeaderMap) -> Result<Identity, ApiError> {
    let unauth = |m: String| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", m);
    let value = headers
        .get("x-forwarded-client-cert")
        .ok_or_else(|| unauth("no `x-forwarded-client-cert`: the proxy must forward the client certificate".into()))?
        .to_str()
        .map_err(|_| unauth("`x-forwarded-client-cert` is not text".into()))?;
    let f = xfcc(value);
    let chain = match (f.get("chain"), f.get("cert")) {
        (Some(c), _) | (None, Some(c)) => Some(certs(c).map_err(unauth)?),
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
    let td = uri.strip_prefix("spiffe://").and_then(|r| r.split('/').next()).filter(|t| !t.is_empty()).ok_or_else(|| unauth(format!("`{uri}` is not a SPIFFE ID")))?;
    let hash = f.get("hash").map(|h| h.as_bytes().chunks(2).filter_map(|p| std::str::from_utf8(p).ok().and_then(|p| u8::from_str_radix(p, 16).ok())).collect::<Vec<u8>>());
    Ok(Identity {
        spiffe_id: uri.clone(),
        trust_domain: td.into(),
        // The proxy validated the certificate; its expiry is not forwarded.
        expires_at: state.writ.now() + 300,
        thumbprint: hash.map(|h| URL_SAFE_NO_PAD.encode(h)).unwrap_or_default(),
        proof: Proof::X509Svid,
    })
}

fn deny(status: StatusCode, reason: &str, body: serde_json::Value, id: &RequestId) -> Response {
    let mut r = with_id((status, axum::Json(body)).into_response(), id);
    if let Ok(v) = HeaderValue::from_str(reason) {
        r.headers_mut().insert("x-writ-reason", v);
    }
    r
}

/// `ANY /ext_authz/...`.
pub(crate) async fn check(extract::State(state): extract::State<Arc<State>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let started = Instant::now();
    let id = RequestId::of(&headers);
    let path = uri.path().strip_prefix("/ext_authz").unwrap_or(uri.path());
    let path = if path.is_empty() { "/" } else { path };
    let who = match caller(&state, &headers) {
        Ok(w) => w,
        Err(e) => {
            state.metrics.decided("ext_authz", "unauthenticated", started);
            return deny(e.status, e.kind, json!({ "allow": false, "reason": e.kind, "message": e.message, "request_id": id.0 }), &id);
        }
    };
    let route = state.routes.iter().find_map(|(p, r)| (r.method == "*" || r.method.eq_ignore_ascii_case(method.as_str())).then(|| p.matches(path).map(|c| (r, c))).flatten());
    let Some((route, caps)) = route else {
        state.metrics.decided("ext_authz", "deny", started);
        return deny(StatusCode::FORBIDDEN, "no-route", json!({ "allow": false, "reason": "no-route", "message": format!("no route rule for `{method} {path}`"), "request_id": id.0 }), &id);
    };
    let context = headers.get("x-writ-context").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let what = Intent { action: route.action.clone(), resource: fill(&route.resource, &caps), task_id: route.task.as_deref().map(|t| fill(t, &caps)).unwrap_or_default(), context };
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
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
            for (name, value) in [("x-writ-subject", who.spiffe_id.clone()), ("x-writ-policies", d.reasons.join(",")), ("x-writ-max-ttl", d.max_ttl_secs.to_string())] {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    h.insert(name, v);
                }
            }
            r
        }
        Ok(d) => {
            state.metrics.decided("ext_authz", "deny", started);
            let reason = d.reasons.first().cloned().unwrap_or_else(|| if d.errors.is_empty() { "no-permit".into() } else { "error".into() });
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
            deny(StatusCode::FORBIDDEN, e.kind(), json!({ "allow": false, "reason": e.kind(), "message": e.message(), "request_id": id.0 }), &id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_capture_and_refuse() {
        let p = Pattern::parse("/payroll/{run}/{emp}").unwrap();
        let c = p.matches("/payroll/run-42/emp%207").unwrap();
        assert_eq!((c["run"].as_str(), c["emp"].as_str()), ("run-42", "emp 7"));
        assert!(p.matches("/payroll/run-42").is_none());
        assert!(p.matches("/payroll/run-42/emp-7/extra").is_none());
        assert!(p.matches("/other/run-42/emp-7").is_none());
        let rest = Pattern::parse("/files/*").unwrap();
        assert_eq!(rest.matches("/files/a/b/c").unwrap()["*"], "a/b/c");
        assert!(Pattern::parse("/a/*/b").is_err());
        assert!(Pattern::parse("a").is_err());
        assert!(Pattern::parse("/{bad name}").is_err());
        let caps: BTreeMap<String, String> = [("run".to_string(), "x\"y".to_string())].into();
        assert_eq!(fill(r#"PayrollRecord::"{run}""#, &caps), r#"PayrollRecord::"x\"y""#);
    }

    #[test]
    fn xfcc_fields_of_the_nearest_element() {
        let v = r#"By=spiffe://a/x;Hash=abcd;URI=spiffe://old/one,By=spiffe://a/y;Hash=0a0b;Subject="CN=x,O=y";URI=spiffe://example.org/w;Cert="-----BEGIN%20CERTIFICATE-----""#;
        let f = xfcc(v);
        assert_eq!(f["uri"], "spiffe://example.org/w");
        assert_eq!(f["hash"], "0a0b");
        assert_eq!(f["subject"], "CN=x,O=y");
        assert_eq!(f["cert"], "-----BEGIN%20CERTIFICATE-----");
        assert!(certs(&f["cert"]).is_err());
    }
}
