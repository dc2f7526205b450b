//! What the filter does with one request, free of the proxy-wasm ABI: who is calling, what
//! they intend, and the answer — so the logic is the same natively (unit tests) and in the
//! proxy. Every rule is `writ-core`'s.

use crate::caller::{MAX_FORWARDED, MAX_VOUCHED};
use crate::config::FilterConfig;
use crate::feed::Feed;

use serde_json::json;
use writ_core::bounded::BoundedMap;
use writ_core::crypto::{Crypto, RustCrypto, SigningKey};
use writ_core::{Algorithm, Decision, Identity, Intent, MemoryLedger, Settings, Writ};
use writ_types::route::Routes;
use writ_types::{AuditEvent, pack};

/// Headers the filter sets on allowed requests; a client's own copies are replaced or removed.
pub const DECISION_HEADERS: [&str; 4] = ["x-writ-decision", "x-writ-subject", "x-writ-policies", "x-writ-max-ttl"];

/// The header naming the task of an MCP request (as at Writ's gateway).
pub const TASK_HEADER: &str = "x-writ-task";

/// What the proxy tells the filter about one request.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    /// `:path`, query included.
    pub path: String,
    /// `x-forwarded-client-cert`.
    pub xfcc: Option<String>,
    /// `authorization`.
    pub authorization: Option<String>,
    /// `x-writ-identity-token`.
    pub identity_token: Option<String>,
    /// The configured context header's value.
    pub context: Option<String>,
    /// MCP's routing headers: `mcp-method`, `mcp-name`.
    pub mcp_method: Option<String>,
    pub mcp_name: Option<String>,
    /// `x-writ-task`: the task of an MCP request.
    pub task: Option<String>,
    /// The downstream connection's validated peer certificate, when mTLS.
    pub peer: Option<Peer>,
}

/// `connection.uri_san_peer_certificate` and `connection.sha256_peer_certificate_digest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    pub uri_san: String,
    pub sha256_hex: String,
}

/// The filter's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Forward upstream with these request headers set (`x-writ-*`).
    Allow { headers: Vec<(String, String)> },
    /// Forward upstream unchecked (only when `fail_closed` is false and no decision was possible).
    Unchecked { problem: String },
    /// Answer locally: status, headers, JSON body.
    Reply { status: u32, headers: Vec<(String, String)>, body: String },
}

/// Verification with RustCrypto, issuer keys from the configuration; the filter never signs.
pub(crate) struct FilterCrypto {
    verifier: RustCrypto,
    jwks: String,
}

impl Crypto for FilterCrypto {
    fn verify(&self, alg: Algorithm, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
        self.verifier.verify(alg, public_key, message, signature)
    }
    fn signing_key(&self) -> Result<SigningKey, String> {
        Err("the proxy filter does not issue credentials".into())
    }
    fn sign(&self, _kid: &str, _message: &[u8]) -> Result<Vec<u8>, String> {
        Err("the proxy filter does not issue credentials".into())
    }
    fn public_keys(&self) -> String {
        self.jwks.clone()
    }
}

/// A configured filter: one per proxy-wasm VM (per worker thread), shared by its requests.
pub struct Filter {
    pub(crate) rules: Writ,
    /// Identities the proxy vouched for, by URI SAN: (digest hex, the identity without its
    /// expiry). Parsing a SPIFFE ID and decoding a digest per request cost more than deciding.
    pub(crate) vouched: BoundedMap<String, (String, Identity)>,
    /// Certificate chains decoded from XFCC values, by the exact value: decoding PEM out of
    /// a URL-encoded header costs more than attesting a cached chain. Attestation (and its
    /// time checks) still runs on every request.
    pub(crate) forwarded: BoundedMap<String, Vec<Vec<u8>>>,
    pub(crate) routes: Routes,
    pub(crate) crypto: FilterCrypto,
    pub(crate) ledger: MemoryLedger,
    pub(crate) feed: Feed,
    pub(crate) config: FilterConfig,
}

impl Filter {
    /// Build from the plugin configuration; `hash_seed` is entropy for the rules' caches.
    /// Any error (bad JSON, policies, bundles, routes) names what is wrong.
    pub fn configure(bytes: &[u8], hash_seed: u64) -> Result<Filter, String> {
        let config = FilterConfig::parse(bytes)?;
        let mut rules = Writ::new(Settings {
            leeway_secs: config.jwt_leeway_secs,
            hash_seed,
            ttl_cap_secs: config.ttl_cap,
            issuer: config.issuer.clone(),
            max_delegation_depth: config.max_delegation_depth,
            decision_memo: config.decision_memo,
        });
        for (td, bundle) in &config.trust_domains {
            rules.set_bundle(td, &bundle.bytes()).map_err(|e| format!("trust domain `{td}`: {e}"))?;
        }
        let (policies, schema, entities) = match &config.policies {
            Some(p) => (p.as_str(), config.schema.as_deref(), config.entities.as_deref()),
            None => (
                pack::POLICIES,
                Some(config.schema.as_deref().unwrap_or(pack::SCHEMA)),
                Some(config.entities.as_deref().unwrap_or(pack::ENTITIES)),
            ),
        };
        rules.set_policies(policies, schema, entities).map_err(|e| format!("policies: {e}"))?;
        if let Some(oidc) = &config.oidc {
            rules.set_oidc_issuers(&oidc.to_string()).map_err(|e| format!("oidc: {e}"))?;
        }
        let routes = Routes::compile(&config.routes)?;
        let jwks = match &config.issuer_jwks {
            None => r#"{"keys":[]}"#.to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        Ok(Filter {
            rules,
            vouched: BoundedMap::new(MAX_VOUCHED),
            forwarded: BoundedMap::new(MAX_FORWARDED),
            routes,
            crypto: FilterCrypto { verifier: RustCrypto::new(), jwks },
            // One filter per worker, none sharing a count: budgets are the decision server's.
            ledger: MemoryLedger::without_budgets(),
            feed: Feed::default(),
            config,
        })
    }

    pub fn config(&self) -> &FilterConfig {
        &self.config
    }

    /// Decide `req` at `now` (Unix seconds). Also returns the audit line, when one is due.
    pub fn decide(&mut self, req: &Request, now: u64) -> (Outcome, Option<String>) {
        let who = match self.caller(req, now) {
            Ok(who) => who,
            Err(r) => {
                return (
                    reply(r.status, r.reason, json!({ "allow": false, "reason": r.reason, "message": r.message })),
                    None,
                );
            }
        };
        let context = req.context.as_deref().unwrap_or("");
        let path = req.path.split('?').next().unwrap_or("");
        let what = match self.config.mcp.iter().find(|e| e.path == path) {
            Some(endpoint) => match mcp_intent(req, &endpoint.server) {
                Ok(Some(what)) => what,
                // The handshake, liveness, notifications, listing, the session's stream and
                // its end: nothing to decide (a tool list is not filtered here — the gateway
                // does that).
                Ok(None) => {
                    let headers = vec![
                        ("x-writ-decision".to_string(), "pass".to_string()),
                        ("x-writ-subject".to_string(), who.spiffe_id.clone()),
                    ];
                    return (Outcome::Allow { headers }, None);
                }
                Err((status, reason, message)) => {
                    return (
                        reply(status, reason, json!({ "allow": false, "reason": reason, "message": message })),
                        None,
                    );
                }
            },
            None => match self.routes.intent(&req.method, &req.path, context) {
                Some(what) => what,
                None => {
                    let message = format!("no route rule for `{} {path}`", req.method);
                    return (
                        reply(403, "no-route", json!({ "allow": false, "reason": "no-route", "message": message })),
                        None,
                    );
                }
            },
        };
        let bearer = req
            .authorization
            .as_deref()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let (kind, decided) = match bearer {
            Some(token) => {
                if let Some(problem) = self.stale(now)
                    && self.config.fail_closed
                {
                    return (
                        reply(
                            503,
                            "revocations-stale",
                            json!({ "allow": false, "reason": "revocations-stale", "message": problem }),
                        ),
                        None,
                    );
                }
                let presented =
                    self.rules.present(token, &who, &what, &self.config.audience, now, &self.crypto, &self.ledger);
                ("present", presented.map(|p| (p.decision, Some(p.claims))))
            }
            // A cut-off agent (learned from the feed) is denied before any policy is read;
            // the task's record (from the feed too) is `context.task`.
            None => {
                let d = self.rules.decide(&who, &what, now, 0, &self.ledger, &self.crypto);
                ("authorize", Ok((d, None)))
            }
        };
        // A bad, expired, revoked or stolen credential is refused (and audited) like a deny.
        let (outcome, allow, reasons, claims, detail) = match decided {
            Ok((d, claims)) => (self.answer(&who, &what, &d), d.allow, d.reasons, claims, d.errors.into_iter().next()),
            Err(e) => {
                let message = e.message();
                let outcome = reply(403, e.kind(), json!({ "allow": false, "reason": e.kind(), "message": message }));
                (outcome, false, vec![e.kind().to_string()], None, Some(message))
            }
        };
        let audit = self.config.audit.then(|| {
            let task = claims.as_ref().map_or(what.task_id.as_str(), |c| c.txn.as_str());
            let event = AuditEvent {
                kind: kind.into(),
                time: now,
                spiffe_id: Some(who.spiffe_id.clone()),
                task_id: (!task.is_empty()).then(|| task.to_string()),
                action: Some(what.action.clone()),
                resource: Some(what.resource.clone()),
                allow,
                reasons,
                jti: claims.as_ref().map(|c| c.jti.clone()),
                act_chain: claims.as_ref().map(|c| c.chain()).unwrap_or_default(),
                detail,
                ..AuditEvent::default()
            };
            event.to_json_line()
        });
        (outcome, audit)
    }

    /// What to answer when no decision is possible (the filter is not configured, the proxy
    /// failed a call): 503 when fail-closed, else through unchecked.
    pub fn undecidable(fail_closed: bool, problem: &str) -> Outcome {
        if fail_closed {
            reply(503, "unavailable", json!({ "allow": false, "reason": "unavailable", "message": problem }))
        } else {
            Outcome::Unchecked { problem: problem.to_string() }
        }
    }

    fn answer(&self, who: &Identity, what: &Intent, d: &Decision) -> Outcome {
        if d.allow {
            let headers = vec![
                ("x-writ-decision".to_string(), "allow".to_string()),
                ("x-writ-subject".to_string(), who.spiffe_id.clone()),
                ("x-writ-policies".to_string(), d.reasons.join(",")),
                ("x-writ-max-ttl".to_string(), d.max_ttl_secs.to_string()),
            ];
            return Outcome::Allow { headers };
        }
        let reason = d
            .reasons
            .first()
            .cloned()
            .unwrap_or_else(|| if d.errors.is_empty() { "no-permit".into() } else { "error".into() });
        let body = json!({ "allow": false, "reason": reason, "reasons": d.reasons, "errors": d.errors, "intent": { "action": what.action, "resource": what.resource } });
        reply(403, &reason, body)
    }
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("routes", &self.routes.len())
            .field("trust_domains", &self.config.trust_domains.keys())
            .finish_non_exhaustive()
    }
}

/// The intent of a request to an MCP endpoint of `server`, from MCP's routing headers alone
/// (the body is not read): `None` when there is nothing to decide; a refusal (status, reason,
/// message) for a POST without `Mcp-Method` — it could carry any call — or with headers that
/// name no valid call, and for methods MCP's transport does not use.
fn mcp_intent(req: &Request, server: &str) -> Result<Option<Intent>, (u32, &'static str, String)> {
    match req.method.as_str() {
        "GET" | "DELETE" => return Ok(None),
        "POST" => {}
        other => return Err((405, "mcp-method-not-allowed", format!("MCP's transport does not use `{other}`"))),
    }
    let Some(method) = req.mcp_method.as_deref() else {
        return Err((
            400,
            "mcp-headers-required",
            "an MCP POST without `Mcp-Method`: this filter decides on MCP's routing headers, not the body".into(),
        ));
    };
    match writ_types::mcp::ask_by_headers(method, req.mcp_name.as_deref()) {
        Ok(writ_types::mcp::Ask::Decide { action, input }) => {
            let resource = format!("McpServer::\"{}\"", server.replace('\\', "\\\\").replace('"', "\\\""));
            let task_id = req.task.as_deref().unwrap_or("").trim().to_string();
            Ok(Some(Intent { action, resource, task_id, context: String::new(), input }))
        }
        Ok(_) => Ok(None),
        Err(problem) => Err((400, "mcp-bad-headers", problem)),
    }
}

fn reply(status: u32, reason: &str, body: serde_json::Value) -> Outcome {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    // Header values must be visible ASCII; a reason that is not is left out of the header.
    if !reason.is_empty() && reason.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        headers.push(("x-writ-reason".to_string(), reason.to_string()));
    }
    Outcome::Reply { status, headers, body: body.to_string() }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn undecidable_requests_follow_fail_closed() {
        match Filter::undecidable(true, "the `authorization` header is not UTF-8") {
            Outcome::Reply { status, headers, body } => {
                assert_eq!(status, 503);
                assert!(headers.contains(&("x-writ-reason".to_string(), "unavailable".to_string())));
                assert!(body.contains("not UTF-8"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(Filter::undecidable(false, "x"), Outcome::Unchecked { .. }));
    }

    #[test]
    fn configuration_errors_name_their_part() {
        assert!(
            Filter::configure(br#"{"trust_domains":{"Not A Domain":"x"}}"#, 0).unwrap_err().contains("Not A Domain")
        );
        assert!(Filter::configure(br#"{"policies":"permit(principal,"}"#, 0).unwrap_err().starts_with("policies"));
        assert!(
            Filter::configure(br#"{"routes":[{"method":"GET","path":"nope","action":"a","resource":"R::\"r\""}]}"#, 0)
                .unwrap_err()
                .contains("nope")
        );
        // With nothing configured, the shipped pack loads, and nobody is trusted.
        let mut f = Filter::configure(b"{}", 0).unwrap();
        let req = Request {
            method: "GET".into(),
            path: "/payroll/run-42/emp-7".into(),
            peer: Some(Peer { uri_san: "spiffe://acme.example/agent/payroll".into(), sha256_hex: "00".repeat(32) }),
            ..Request::default()
        };
        match f.decide(&req, 1_800_000_000).0 {
            Outcome::Reply { status, body, .. } => {
                assert_eq!(status, 401);
                assert!(body.contains("not one this filter trusts"), "{body}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reasons_that_are_not_header_text_stay_in_the_body_only() {
        let Outcome::Reply { headers, .. } = reply(403, "bad\nreason", json!({})) else { panic!() };
        assert!(!headers.iter().any(|(k, _)| k == "x-writ-reason"));
    }
}
