//! OIDC workload tokens as identity proofs: the tokens platforms hand workloads (a Kubernetes
//! projected service-account token, a CI job's OIDC token), verified against a configured
//! issuer and mapped to a SPIFFE ID.
//!
//! Each issuer is configured with its `iss` (matched exactly), the audiences it may be used
//! for, its keys (a JWKS), an algorithm allow-list (RS/PS/ES 256/384/512 only: never `none`,
//! never HMAC — a public key is not a secret), a clock-skew leeway and a mapping from its
//! claims to the principal:
//! - `kubernetes`: `kubernetes.io.namespace` and `kubernetes.io.serviceaccount.name` →
//!   `spiffe://<trust_domain>/ns/<namespace>/sa/<service account>` (and `sub` must say the same);
//! - `github-actions`: `repository` and `environment`, or `ref` when the job has no environment
//!   → `spiffe://<trust_domain>/gh/<owner>/<repo>/env/<environment>` or
//!   `…/gh/<owner>/<repo>/<ref>` (`refs/heads/main`), so a policy can tell the main branch or a
//!   protected environment from any other run of the repository;
//! - `template`: a path whose `{claim}` placeholders take top-level string claims, each one or
//!   more valid segments (`/gitlab/{project_path}/{ref}`).
//!
//! A claim value that cannot be part of a SPIFFE ID path is refused, never rewritten. Keys
//! come only from the configuration: a token's own `jku`, `jwk`, `x5u` or `crit` header is
//! refused.

use crate::crypto::{Algorithm, Crypto};
use crate::error::{Error, Result};
use crate::identity::{Identity, Proof};
use crate::jwk::{Jwk, JwkSet, JwtKey};
use crate::jwt;
use crate::limits::{MAX_BUNDLE_BYTES, MAX_BUNDLE_ENTRIES};
use crate::spiffe_id::{self, clip};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Issuers configured at most.
pub const MAX_ISSUERS: usize = 64;

/// How an issuer's claims become a SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Mapping {
    Kubernetes {
        trust_domain: String,
    },
    GithubActions {
        trust_domain: String,
    },
    Template {
        trust_domain: String,
        path: String,
        /// Top-level string claims kept for policies (`context.oidc.<claim>`).
        #[serde(default)]
        claims: Vec<String>,
    },
}

/// The GitHub Actions claims kept for policies (`context.oidc`), as the token names them.
pub const GITHUB_CLAIMS: [&str; 14] = [
    "repository",
    "repository_owner",
    "repository_id",
    "ref",
    "ref_type",
    "sha",
    "environment",
    "workflow",
    "workflow_ref",
    "job_workflow_ref",
    "event_name",
    "actor",
    "run_id",
    "runner_environment",
];

/// A kept claim's value is at most this long (longer ones are left out).
const MAX_CLAIM_BYTES: usize = 1024;

/// One issuer as configured (JSON).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuerConfig {
    name: String,
    issuer: String,
    audiences: Vec<String>,
    jwks: JwkSet,
    #[serde(default)]
    algorithms: Option<Vec<String>>,
    #[serde(default)]
    leeway_secs: u64,
    mapping: Mapping,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    issuers: Vec<IssuerConfig>,
}

/// A configured issuer.
#[derive(Debug, Clone)]
pub struct Issuer {
    pub name: String,
    /// The `iss` its tokens carry, exactly.
    pub issuer: String,
    pub audiences: Vec<String>,
    keys: Vec<JwtKey>,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    mapping: Mapping,
}

/// The configured OIDC issuers.
#[derive(Debug, Clone, Default)]
pub struct Issuers {
    issuers: Vec<Issuer>,
}

/// The algorithms an issuer allows when its configuration names none.
const DEFAULT_ALGORITHMS: [&str; 2] = ["RS256", "ES256"];

fn oidc_alg(name: &str) -> Result<Algorithm> {
    jwt::jwt_svid_alg(name)
        .map_err(|_| Error::Untrusted(format!("OIDC `alg` `{}` is not allowed (RS, PS or ES only)", clip(name))))
}

impl Issuers {
    /// Parse the configuration: `{"issuers":[{"name","issuer","audiences","jwks","algorithms"?,
    /// "leeway_secs"?,"mapping":{"kind":"kubernetes"|"github-actions"|"template",…}}]}`.
    pub fn parse(json: &str) -> Result<Issuers> {
        if json.len() > MAX_BUNDLE_BYTES {
            return Err(Error::Limit(format!(
                "OIDC configuration is {} bytes, over the cap of {MAX_BUNDLE_BYTES}",
                json.len()
            )));
        }
        let config: Config =
            serde_json::from_str(json).map_err(|e| Error::Malformed(format!("OIDC configuration: {e}")))?;
        if config.issuers.len() > MAX_ISSUERS {
            return Err(Error::Limit(format!("more than {MAX_ISSUERS} OIDC issuers")));
        }
        let mut issuers = Vec::with_capacity(config.issuers.len());
        for c in config.issuers {
            let named = |m: String| Error::Malformed(format!("OIDC issuer `{}`: {m}", clip(&c.name)));
            if c.name.is_empty() || c.issuer.is_empty() {
                return Err(named("`name` and `issuer` must not be empty".into()));
            }
            if issuers.iter().any(|i: &Issuer| i.name == c.name || i.issuer == c.issuer) {
                return Err(named("another issuer has the same name or `issuer`".into()));
            }
            if c.audiences.is_empty() || c.audiences.iter().any(String::is_empty) {
                return Err(named("`audiences` must list at least one non-empty audience".into()));
            }
            if c.jwks.keys.len() > MAX_BUNDLE_ENTRIES {
                return Err(Error::Limit(format!(
                    "OIDC issuer `{}`: more than {MAX_BUNDLE_ENTRIES} keys",
                    clip(&c.name)
                )));
            }
            for k in &c.jwks.keys {
                rsa_size(k).map_err(named)?;
            }
            let keys =
                c.jwks.keys.iter().map(JwtKey::from_jwk).collect::<Result<Vec<_>>>().map_err(|e| named(e.message()))?;
            let names = c.algorithms.unwrap_or_else(|| DEFAULT_ALGORITHMS.map(String::from).to_vec());
            let algorithms =
                names.iter().map(|a| oidc_alg(a)).collect::<Result<Vec<_>>>().map_err(|e| named(e.message()))?;
            if algorithms.is_empty() {
                return Err(named("`algorithms` is empty".into()));
            }
            let td = match &c.mapping {
                Mapping::Kubernetes { trust_domain }
                | Mapping::GithubActions { trust_domain }
                | Mapping::Template { trust_domain, .. } => trust_domain,
            };
            spiffe_id::trust_domain(td).map_err(named)?;
            if let Mapping::Template { path, .. } = &c.mapping
                && !path.starts_with('/')
            {
                return Err(named("a template `path` starts with `/`".into()));
            }
            if let Mapping::Template { claims, .. } = &c.mapping
                && (claims.len() > 32 || claims.iter().any(|n| n.is_empty() || n == "issuer" || n == "subject"))
            {
                return Err(named("a template keeps at most 32 `claims`, none empty, `issuer` or `subject`".into()));
            }
            issuers.push(Issuer {
                name: c.name,
                issuer: c.issuer,
                audiences: c.audiences,
                keys,
                algorithms,
                leeway: c.leeway_secs,
                mapping: c.mapping,
            });
        }
        Ok(Issuers { issuers })
    }

    pub fn len(&self) -> usize {
        self.issuers.len()
    }

    /// Whether `token`'s (unverified) `iss` is one of these issuers': which verification a
    /// bearer token of unknown kind gets. Anything unreadable says no.
    pub fn claims_issuer(&self, token: &str) -> bool {
        use base64::Engine as _;
        if self.issuers.is_empty() || token.len() > crate::limits::MAX_TOKEN_BYTES {
            return false;
        }
        let Some(payload) = token.split('.').nth(1) else { return false };
        let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else { return false };
        #[derive(Deserialize)]
        struct Iss {
            iss: Option<String>,
        }
        match serde_json::from_slice::<Iss>(&bytes) {
            Ok(Iss { iss: Some(iss) }) => self.issuers.iter().any(|i| i.issuer == iss),
            _ => false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Verify `token` for `audience` at `now`: issued by a configured issuer (its `iss`
    /// exactly; with `expected`, that issuer — by name or `iss` — and no other), signed by one
    /// of its keys with an allowed `alg` that fits the key, for an audience both the issuer
    /// allows and the token names, unexpired; then mapped to its SPIFFE ID.
    pub fn verify(
        &self,
        token: &str,
        expected: Option<&str>,
        audience: &str,
        now: u64,
        crypto: &dyn Crypto,
    ) -> Result<Identity> {
        if self.issuers.is_empty() {
            return Err(Error::Untrusted("no OIDC issuers are configured".into()));
        }
        let header_ok = |h: &str| !matches!(h, "jku" | "jwk" | "x5u" | "crit");
        let tok = jwt::split_as(token, "OIDC token", header_ok, oidc_alg)?;
        let iss = match tok.claims.get("iss") {
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Err(Error::Malformed("OIDC `iss` is not a string".into())),
            None => return Err(Error::Untrusted("OIDC token has no `iss`".into())),
        };
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == iss)
            .ok_or_else(|| Error::Untrusted(format!("`iss` `{}` is not a configured issuer", clip(iss))))?;
        if let Some(want) = expected
            && want != issuer.name
            && want != issuer.issuer
        {
            return Err(Error::Untrusted(format!(
                "the token is from issuer `{}`, not `{}`",
                clip(&issuer.name),
                clip(want)
            )));
        }
        issuer.verify(token, &tok, audience, now, crypto)
    }
}

impl Issuer {
    fn verify(
        &self,
        token: &str,
        tok: &jwt::Unverified<'_>,
        audience: &str,
        now: u64,
        crypto: &dyn Crypto,
    ) -> Result<Identity> {
        if !self.algorithms.contains(&tok.alg) {
            return Err(Error::Untrusted(format!(
                "`alg` `{}` is not allowed for issuer `{}`",
                tok.alg.jws_name().unwrap_or("?"),
                clip(&self.name)
            )));
        }
        let key = self.keys.iter().find(|k| k.kid == tok.kid).ok_or_else(|| {
            Error::Untrusted(format!("`kid` `{}` is not a key of issuer `{}`", clip(&tok.kid), clip(&self.name)))
        })?;
        if !jwt::key_admits(key, tok.alg) {
            return Err(Error::Untrusted(format!(
                "`alg` `{}` does not fit key `{}`",
                tok.alg.jws_name().unwrap_or("?"),
                clip(&key.kid)
            )));
        }
        if !crypto.verify(tok.alg, &key.public_key, tok.signing_input, &tok.signature) {
            return Err(Error::Untrusted("OIDC token signature does not verify".into()));
        }
        if !self.audiences.iter().any(|a| a == audience) {
            return Err(Error::Untrusted(format!(
                "audience `{}` is not one issuer `{}` may be used for",
                clip(audience),
                clip(&self.name)
            )));
        }
        let claims = &tok.claims;
        let leeway = self.leeway;
        let exp = jwt::check_claims(claims, audience, now, leeway, "OIDC token")?;
        let spiffe_id = self.principal(claims)?;
        let (spiffe_id, trust_domain) =
            spiffe_id::parse(&spiffe_id).map_err(|e| Error::Untrusted(format!("the mapped principal: {e}")))?;
        Ok(Identity {
            spiffe_id,
            trust_domain,
            // When Writ stops accepting it: `exp`, plus the issuer's leeway.
            expires_at: exp.saturating_add(leeway),
            thumbprint: crate::x509::thumbprint(token.as_bytes()),
            proof: Proof::Oidc,
            claims: self.kept_claims(claims),
        })
    }

    /// What policies see of a verified token (`context.oidc`): the issuer's name, `sub`, and
    /// the claims its mapping keeps — string values only, each at most 1 KiB.
    fn kept_claims(&self, claims: &Map<String, Value>) -> BTreeMap<String, String> {
        let mut kept = BTreeMap::new();
        kept.insert("issuer".to_string(), self.name.clone());
        let mut keep = |name: &str, v: Option<&Value>| {
            if let Some(Value::String(s)) = v
                && s.len() <= MAX_CLAIM_BYTES
            {
                kept.insert(name.to_string(), s.clone());
            }
        };
        keep("subject", claims.get("sub"));
        match &self.mapping {
            Mapping::Kubernetes { .. } => {
                let k8s = claims.get("kubernetes.io");
                let at = |a: &str, b: &str| k8s.and_then(|k| k.get(a)).and_then(|o| o.get(b));
                keep("namespace", k8s.and_then(|k| k.get("namespace")));
                keep("service_account", at("serviceaccount", "name"));
                keep("service_account_uid", at("serviceaccount", "uid"));
                keep("pod_name", at("pod", "name"));
                keep("pod_uid", at("pod", "uid"));
                keep("node_name", at("node", "name"));
            }
            Mapping::GithubActions { .. } => {
                for name in GITHUB_CLAIMS {
                    keep(name, claims.get(name));
                }
            }
            Mapping::Template { claims: names, .. } => {
                for name in names {
                    keep(name, claims.get(name));
                }
            }
        }
        kept
    }

    /// The SPIFFE ID this issuer's mapping gives `claims`.
    fn principal(&self, claims: &Map<String, Value>) -> Result<String> {
        match &self.mapping {
            Mapping::Kubernetes { trust_domain } => {
                let k8s = claims
                    .get("kubernetes.io")
                    .and_then(Value::as_object)
                    .ok_or_else(|| Error::Untrusted("no `kubernetes.io` claim".into()))?;
                let ns = segment(k8s.get("namespace"), "kubernetes.io.namespace")?;
                let sa = segment(
                    k8s.get("serviceaccount").and_then(|s| s.get("name")),
                    "kubernetes.io.serviceaccount.name",
                )?;
                let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
                if sub != format!("system:serviceaccount:{ns}:{sa}") {
                    return Err(Error::Untrusted(format!(
                        "`sub` `{}` does not name service account `{ns}/{sa}`",
                        clip(sub)
                    )));
                }
                Ok(format!("spiffe://{trust_domain}/ns/{ns}/sa/{sa}"))
            }
            Mapping::GithubActions { trust_domain } => {
                let repository = path(claims.get("repository"), "repository")?;
                match claims.get("environment") {
                    Some(env) => {
                        let env = segment(Some(env), "environment")?;
                        Ok(format!("spiffe://{trust_domain}/gh/{repository}/env/{env}"))
                    }
                    None => {
                        let git_ref = path(claims.get("ref"), "ref")?;
                        Ok(format!("spiffe://{trust_domain}/gh/{repository}/{git_ref}"))
                    }
                }
            }
            Mapping::Template { trust_domain, path: template, .. } => {
                let mut out = String::new();
                let mut rest = template.as_str();
                while let Some(open) = rest.find('{') {
                    out.push_str(&rest[..open]);
                    let close = rest[open..].find('}').ok_or_else(|| {
                        Error::Malformed(format!("template `{}` has an unclosed `{{`", clip(template)))
                    })?;
                    let name = &rest[open + 1..open + close];
                    out.push_str(&path(claims.get(name), name)?);
                    rest = &rest[open + close + 1..];
                }
                out.push_str(rest);
                Ok(format!("spiffe://{trust_domain}{out}"))
            }
        }
    }
}

/// RSA keys of fewer than 2048 bits are refused when configured (signature checks would refuse
/// them anyway; saying so at load names the key).
fn rsa_size(jwk: &Jwk) -> std::result::Result<(), String> {
    use base64::Engine as _;
    if jwk.kty != "RSA" {
        return Ok(());
    }
    let n = jwk.n.as_deref().unwrap_or_default();
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(n).unwrap_or_default();
    let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
    if bits < 2048 {
        return Err(format!("RSA key `{}` has under 2048 bits", clip(jwk.kid.as_deref().unwrap_or_default())));
    }
    Ok(())
}

/// A claim that becomes one path segment: a non-empty string of SPIFFE path characters.
fn segment(v: Option<&Value>, name: &str) -> Result<String> {
    let s = claim_str(v, name)?;
    if s.contains('/') || s == "." || s == ".." {
        return Err(Error::Untrusted(format!("claim `{}` `{}` cannot be a path segment", clip(name), clip(s))));
    }
    checked_path(s, name)
}

/// A claim that becomes several path segments (`owner/repo`, `refs/heads/main`).
fn path(v: Option<&Value>, name: &str) -> Result<String> {
    let s = claim_str(v, name)?;
    if s.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
        return Err(Error::Untrusted(format!("claim `{}` `{}` cannot be a path", clip(name), clip(s))));
    }
    checked_path(s, name)
}

fn claim_str<'v>(v: Option<&'v Value>, name: &str) -> Result<&'v str> {
    match v {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) | None => Err(Error::Untrusted(format!("no `{}` claim", clip(name)))),
        Some(_) => Err(Error::Malformed(format!("claim `{}` is not a string", clip(name)))),
    }
}

/// SPIFFE ID path characters only: letters, digits, `.`, `-`, `_` (and `/` between segments).
fn checked_path(s: &str, name: &str) -> Result<String> {
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))) {
        return Err(Error::Untrusted(format!(
            "claim `{}` `{}` holds `{c}`, which a SPIFFE ID cannot",
            clip(name),
            clip(s)
        )));
    }
    Ok(s.to_string())
}
