//! A call's input (an MCP tool call's arguments) in canonical form, and the digest credentials
//! bind it with: the same bytes give the same digest whatever the key order or spacing.

/// The digest a scope item binds an input with: SHA-256, base64url without padding, of its
/// canonical JSON — object keys sorted by their UTF-8 bytes, no whitespace, strings and numbers
/// as JSON writes them (`json.dumps(v, sort_keys=True, separators=(",", ":"),
/// ensure_ascii=False)` in Python). `None` for no input (an empty text).
pub fn input_digest(input: &str) -> crate::Result<Option<String>> {
    use base64::Engine as _;
    use sha2::Digest as _;
    if input.trim().is_empty() {
        return Ok(None);
    }
    let v: serde_json::Value =
        serde_json::from_str(input).map_err(|e| crate::Error::Malformed(format!("input is not JSON: {e}")))?;
    let mut text = String::with_capacity(input.len());
    canonical(&v, &mut text);
    Ok(Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(text.as_bytes()))))
}

fn canonical(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (n, k) in keys.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(child) = m.get(k) {
                    canonical(child, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
