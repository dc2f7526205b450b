//! OIDC issuer configurations as operators write them, made into what the component takes.
//! An issuer's keys are given inline (`jwks`), named as a file (`jwks_file`, relative to the
//! configuration's directory, read here), or fetched over HTTPS by the host and kept fresh
//! (`jwks_uri`, or `discovery: true` for the issuer's OpenID discovery document): see
//! [`crate::remote`]. The rules (which tokens verify, how claims map to SPIFFE IDs) are the
//! component's.

use crate::remote::{Fetching, KeysFrom, RemoteIssuer};
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;
use writ_types::Error;

/// A configuration resolved: the component's JSON (remote issuers' `jwks` still to come) and
/// the issuers whose keys the host fetches.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub(crate) template: Value,
    pub(crate) remote: Vec<RemoteIssuer>,
}

impl Resolved {
    /// The issuers whose keys are fetched.
    pub fn remote(&self) -> &[RemoteIssuer] {
        &self.remote
    }
}

/// What loading a configuration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Issuers loaded.
    pub issuers: u32,
    /// For each issuer whose keys could not be fetched yet, why (its tokens are refused until a
    /// later fetch succeeds).
    pub unfetched: Vec<String>,
}

/// The settings of an issuer that only the host reads (never passed to the component).
const HOST_FIELDS: [&str; 8] = [
    "jwks_file",
    "discovery",
    "jwks_uri",
    "ca_file",
    "token_file",
    "refresh_secs",
    "min_refresh_secs",
    "fetch_timeout_ms",
];

/// Resolve the configuration `config` (JSON, `{"issuers":[…]}`): every `jwks_file` read into
/// `jwks`, relative to `dir`; every `jwks_uri` or `discovery` issuer listed for fetching —
/// except the issuer `jwks_for` names (by name or `iss`), whose keys are that JWKS text instead.
pub fn resolve(config: &str, dir: &Path, jwks_for: Option<(&str, &str)>) -> Result<Resolved, Error> {
    let bad = |m: String| Error::Malformed(format!("OIDC configuration: {m}"));
    let mut v: Value = serde_json::from_str(config).map_err(|e| bad(e.to_string()))?;
    let issuers = v.get_mut("issuers").and_then(Value::as_array_mut).ok_or_else(|| bad("no `issuers` list".into()))?;
    let mut replaced = jwks_for.is_none();
    let mut remote = Vec::new();
    for issuer in issuers.iter_mut() {
        let Some(obj) = issuer.as_object_mut() else { return Err(bad("an issuer is not an object".into())) };
        let host: Map<String, Value> = HOST_FIELDS.iter().filter_map(|f| obj.remove_entry(*f)).collect();
        let name = obj.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let iss = obj.get("issuer").and_then(Value::as_str).unwrap_or_default().to_string();
        let named = |m: String| bad(format!("issuer `{name}`: {m}"));
        if let Some((which, jwks)) = jwks_for
            && (which == name || which == iss)
        {
            obj.insert("jwks".into(), parse_jwks(jwks, "the JWKS given")?);
            replaced = true;
            continue;
        }
        let keys_from = keys_from(&host, &iss).map_err(named)?;
        let sources = [obj.contains_key("jwks"), host.contains_key("jwks_file"), keys_from.is_some()];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(named("give its keys one way: `jwks`, `jwks_file`, `jwks_uri` or `discovery`".into()));
        }
        if let Some(file) = host.get("jwks_file") {
            let file = file.as_str().ok_or_else(|| named("`jwks_file` is not a string".into()))?;
            let path = dir.join(file);
            let text =
                std::fs::read_to_string(&path).map_err(|e| bad(format!("cannot read `{}`: {e}", path.display())))?;
            obj.insert("jwks".into(), parse_jwks(&text, &path.display().to_string())?);
        }
        match keys_from {
            Some(keys_from) => {
                let fetching = fetching(&host, dir).map_err(named)?;
                remote.push(RemoteIssuer { name: name.clone(), issuer: iss.clone(), keys_from, fetching });
            }
            None => {
                if let Some(extra) = host.keys().find(|k| !matches!(k.as_str(), "jwks_file" | "discovery")) {
                    return Err(named(format!("`{extra}` is only for keys fetched (`jwks_uri` or `discovery`)")));
                }
            }
        }
    }
    if !replaced {
        let which = jwks_for.map(|(w, _)| w).unwrap_or_default();
        return Err(bad(format!("no issuer named `{which}`")));
    }
    Ok(Resolved { template: v, remote })
}

/// [`resolve`], for a configuration whose keys are all at hand (inline or files): the
/// component's JSON. An issuer whose keys would be fetched is an error here.
pub fn resolve_issuers(config: &str, dir: &Path, jwks_for: Option<(&str, &str)>) -> Result<String, Error> {
    let resolved = resolve(config, dir, jwks_for)?;
    if let Some(r) = resolved.remote.first() {
        return Err(Error::Malformed(format!(
            "OIDC configuration: issuer `{}` has its keys fetched; load it with `Writ::load_oidc`",
            r.name
        )));
    }
    Ok(resolved.template.to_string())
}

fn keys_from(host: &Map<String, Value>, iss: &str) -> Result<Option<KeysFrom>, String> {
    let discovery = match host.get("discovery") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("`discovery` is not true or false".into()),
    };
    match (discovery, host.get("jwks_uri")) {
        (true, Some(_)) => Err("give `jwks_uri` or `discovery`, not both".into()),
        (true, None) if !iss.starts_with("https://") => {
            Err("`discovery` needs an https:// `issuer` (its document is at <issuer>/.well-known/openid-configuration)"
                .into())
        }
        (true, None) => Ok(Some(KeysFrom::Discovery)),
        (false, Some(Value::String(uri))) if uri.starts_with("https://") => Ok(Some(KeysFrom::JwksUri(uri.clone()))),
        (false, Some(_)) => Err("`jwks_uri` is not an https:// URL".into()),
        (false, None) => Ok(None),
    }
}

/// The fetch settings of `host`'s fields (paths relative to `dir`).
pub(crate) fn fetching(host: &Map<String, Value>, dir: &Path) -> Result<Fetching, String> {
    let mut f = Fetching::default();
    let secs = |k: &str| -> Result<Option<u64>, String> {
        match host.get(k) {
            None => Ok(None),
            Some(v) => {
                v.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| format!("`{k}` is not a positive integer"))
            }
        }
    };
    if let Some(s) = secs("refresh_secs")? {
        f.refresh = Duration::from_secs(s);
    }
    match secs("min_refresh_secs")? {
        Some(s) => f.min_refresh = Duration::from_secs(s),
        None => f.min_refresh = f.min_refresh.min(f.refresh),
    }
    if let Some(ms) = secs("fetch_timeout_ms")? {
        f.timeout = Duration::from_millis(ms.min(60_000));
    }
    let path = |k: &str| -> Result<Option<std::path::PathBuf>, String> {
        match host.get(k) {
            None => Ok(None),
            Some(Value::String(p)) => Ok(Some(dir.join(p))),
            Some(_) => Err(format!("`{k}` is not a string")),
        }
    };
    f.ca_file = path("ca_file")?;
    f.token_file = path("token_file")?;
    if f.min_refresh > f.refresh {
        return Err("`min_refresh_secs` is over `refresh_secs`".into());
    }
    Ok(f)
}

fn parse_jwks(text: &str, what: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::Malformed(format!("OIDC JWKS {what}: {e}")))
}
