//! OIDC issuer configurations as operators write them, made into what the component takes:
//! an issuer's keys may be named as a file (`"jwks_file": "k8s-jwks.json"`, relative to the
//! configuration's directory), which the host reads — the component never touches files. The
//! rules (which tokens verify, how claims map to SPIFFE IDs) are the component's.

use serde_json::Value;
use std::path::Path;
use writ_types::Error;

/// The configuration `config` (JSON, `{"issuers":[…]}`) with every `jwks_file` read into
/// `jwks`, relative to `dir` — except the issuer `jwks_for` names (by name or `iss`), whose keys
/// are that JWKS text instead.
pub fn resolve_issuers(config: &str, dir: &Path, jwks_for: Option<(&str, &str)>) -> Result<String, Error> {
    let bad = |m: String| Error::Malformed(format!("OIDC configuration: {m}"));
    let mut v: Value = serde_json::from_str(config).map_err(|e| bad(e.to_string()))?;
    let issuers = v.get_mut("issuers").and_then(Value::as_array_mut).ok_or_else(|| bad("no `issuers` list".into()))?;
    let mut replaced = jwks_for.is_none();
    for issuer in issuers.iter_mut() {
        let Some(obj) = issuer.as_object_mut() else { return Err(bad("an issuer is not an object".into())) };
        let file = obj.remove("jwks_file");
        if let Some((which, jwks)) = jwks_for {
            let names = [obj.get("name"), obj.get("issuer")];
            if names.iter().any(|n| n.and_then(Value::as_str) == Some(which)) {
                obj.insert("jwks".into(), parse_jwks(jwks, "the JWKS given")?);
                replaced = true;
                continue;
            }
        }
        if let Some(file) = file {
            let file = file.as_str().ok_or_else(|| bad("`jwks_file` is not a string".into()))?;
            let path = dir.join(file);
            let text =
                std::fs::read_to_string(&path).map_err(|e| bad(format!("cannot read `{}`: {e}", path.display())))?;
            obj.insert("jwks".into(), parse_jwks(&text, &path.display().to_string())?);
        }
    }
    if !replaced {
        let which = jwks_for.map(|(w, _)| w).unwrap_or_default();
        return Err(bad(format!("no issuer named `{which}`")));
    }
    Ok(v.to_string())
}

fn parse_jwks(text: &str, what: &str) -> Result<Value, Error> {
    serde_json::from_str(text).map_err(|e| Error::Malformed(format!("OIDC JWKS {what}: {e}")))
}
