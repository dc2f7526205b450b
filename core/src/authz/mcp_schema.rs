//! Cedar schemas from MCP tools: an upstream's `tools/list` (each tool's `inputSchema`) typed
//! into Cedar by `cedar-policy-mcp-schema-generator` (the cedar-for-agents convention: one
//! action per tool, its arguments as `context.input`), then shaped to the requests Writ's
//! gateway makes and merged into a base schema (Writ's own, which declares `Agent` and
//! `RequestContext`).
//!
//! Each generated action says where it came from — `@mcp_upstream("<name>")` and
//! `@mcp_input("<digest of the tool's inputSchema>")` — so a later tool list can be compared
//! with the schema policies were validated against ([`mcp_schema`]'s `changed`).
//!
//! Writ builds `context.input` from the call's JSON arguments as they are, so types the
//! generator models as entities are rewritten into what JSON gives: a string `enum` is a
//! `String`, a `number` a `Long` (a fraction then fails the request: denied), an optional value
//! (`anyOf [T, null]`) an optional `T`. An object with `additionalProperties` or any other
//! union stays as the generator types it, which a JSON argument cannot match: a call that sends
//! one is refused (closed), and the schema says so.

use cedar_policy::{Schema, SchemaFragment};
use cedar_policy_mcp_schema_generator::{SchemaGenerator, SchemaGeneratorConfig};
use mcp_tools_sdk::description::ServerDescription;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use writ_types::mcp::McpSchema;
use writ_types::{Error, Result};

use super::{AGENT_TYPE, MAX_POLICY_BYTES};

/// The entity type of an MCP upstream (the resource of its tools' actions; the gateway's).
const MCP_SERVER_TYPE: &str = "McpServer";
/// The common type of Writ's request context, whose attributes every tool's context carries.
const REQUEST_CONTEXT: &str = "RequestContext";
/// The generator's working namespace; nothing of it is left in the output.
const STUB_NAMESPACE: &str = "WritMcpTools";
/// Annotations a generated action or type carries.
const UPSTREAM_ANNOTATION: &str = "mcp_upstream";
const INPUT_ANNOTATION: &str = "mcp_input";
const TOOL_ANNOTATION: &str = "mcp_tool";
/// JSON nesting of a tool list (tool schemas nest two levels per object).
const MAX_TOOLS_NESTING: usize = 64;
/// Tools in one list.
const MAX_TOOLS: usize = 1024;

/// One tool of a list: its name, the digest of its `inputSchema`, its description.
#[derive(Clone)]
struct Tool {
    name: String,
    digest: String,
    description: String,
    /// A Cedar identifier standing for the name in generated type names.
    ident: String,
}

/// The Cedar schema for `upstream`'s `tools` (a `tools/list` result: `{"tools": [...]}`, the
/// whole JSON-RPC answer, or the array), merged into `base` (Cedar or JSON syntax, its global
/// namespace declaring `Agent` and a record `RequestContext`). A tool already declared for
/// this upstream is replaced; one declared for another upstream with another input schema,
/// or named like a base action that is not a tool's, is an error.
pub fn mcp_schema(base: &str, upstream: &str, tools: &str) -> Result<McpSchema> {
    check_upstream_name(upstream)?;
    let tools_json = parse_tools(tools)?;
    let (entries, mut untyped) = listed_tools(&tools_json)?;
    let built = match build(base, upstream, &entries) {
        Ok(b) => b,
        Err(whole) => {
            // A tool the generator cannot type (or that conflicts) is left out with why, and
            // the others typed: one bad tool does not take its upstream's others down. A base
            // that does not take even no tools is the error.
            build(base, upstream, &[])?;
            let mut typed = Vec::with_capacity(entries.len());
            for entry in entries {
                match build(base, upstream, std::slice::from_ref(&entry)) {
                    Ok(_) => typed.push(entry),
                    Err(e) => untyped.push((entry.1.name.clone(), e.message())),
                }
            }
            build(base, upstream, &typed).map_err(|_| whole)?
        }
    };
    let (schema, changed, typed) = built;
    Ok(McpSchema { starter: starter(upstream, &typed, &schema), schema, changed, untyped })
}

/// The merged schema (Cedar syntax) for these tools, the ones that changed, and the tools.
fn build(base: &str, upstream: &str, entries: &[(Value, Tool)]) -> Result<(String, Vec<String>, Vec<Tool>)> {
    let (tools_json, listed): (Vec<Value>, Vec<Tool>) = entries.iter().cloned().unzip();
    let generated = generate(&tools_json, &listed)?;
    let mut base = base_json(base)?;
    let changed = merge(&mut base, upstream, &listed, generated)?;
    let fragment = SchemaFragment::from_json_value(base)
        .map_err(|e| Error::Policy(format!("the merged schema is invalid: {e}")))?;
    let schema =
        fragment.to_cedarschema().map_err(|e| Error::Policy(format!("the merged schema cannot be written: {e}")))?;
    // The result must load as a schema, as the policy store will load it.
    let _warnings = Schema::from_cedarschema_str(&schema)
        .map_err(|e| Error::Policy(format!("the merged schema is invalid: {e}")))?
        .1;
    Ok((schema, changed, listed))
}

fn check_upstream_name(upstream: &str) -> Result<()> {
    let ok = !upstream.is_empty()
        && upstream.len() <= 64
        && upstream.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::Malformed(format!(
            "upstream name {upstream:?}: 1–64 characters of letters, digits, '-', '_' or '.'"
        )))
    }
}

/// The tools array of a `tools/list` answer in any of its saved forms.
fn parse_tools(text: &str) -> Result<Vec<Value>> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(Error::Limit(format!("tool list of {} bytes (at most {MAX_POLICY_BYTES})", text.len())));
    }
    let depth = writ_types::nesting::nesting_depth(text);
    if depth > MAX_TOOLS_NESTING {
        return Err(Error::Limit(format!("tool list nested {depth} deep (at most {MAX_TOOLS_NESTING})")));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| Error::Malformed(format!("tool list is not JSON: {e}")))?;
    let tools = match v {
        Value::Array(a) => a,
        Value::Object(mut o) => {
            let holder = match o.remove("result") {
                Some(Value::Object(r)) => r,
                Some(_) => return Err(Error::Malformed("tool list: `result` is not an object".into())),
                None => o,
            };
            match holder.get("tools") {
                Some(Value::Array(a)) => a.clone(),
                _ => return Err(Error::Malformed("tool list: no `tools` array".into())),
            }
        }
        _ => return Err(Error::Malformed("tool list: not an object or an array".into())),
    };
    if tools.len() > MAX_TOOLS {
        return Err(Error::Limit(format!("{} tools (at most {MAX_TOOLS})", tools.len())));
    }
    Ok(tools)
}

/// Each tool with what the schema needs of it; the tools that cannot be typed at all (no name,
/// no `inputSchema` object, a name another's stands for), with why.
#[allow(clippy::type_complexity)]
fn listed_tools(tools: &[Value]) -> Result<(Vec<(Value, Tool)>, Vec<(String, String)>)> {
    let mut out = Vec::with_capacity(tools.len());
    let mut untyped = Vec::new();
    let mut idents = BTreeSet::new();
    for (i, t) in tools.iter().enumerate() {
        let Some(name) = t.get("name").and_then(Value::as_str) else {
            untyped.push((format!("#{i}"), "a tool without a string `name`".to_string()));
            continue;
        };
        if name.is_empty() || name.len() > 128 || name.contains('/') || name.chars().any(char::is_control) {
            untyped.push((name.to_string(), "a tool name is 1–128 characters, no '/' or control".to_string()));
            continue;
        }
        let Some(input_schema) = t.get("inputSchema").filter(|s| s.is_object()) else {
            untyped.push((name.to_string(), "no `inputSchema` object".to_string()));
            continue;
        };
        let digest = writ_types::input::input_digest(&input_schema.to_string())?.unwrap_or_default();
        let ident = identifier(name);
        if !idents.insert(ident.clone()) {
            untyped.push((
                name.to_string(),
                "listed twice, or its name differs from another's only in characters Cedar names cannot hold".into(),
            ));
            continue;
        }
        let description = t.get("description").and_then(Value::as_str).unwrap_or_default().to_string();
        out.push((t.clone(), Tool { name: name.to_string(), digest, description, ident }));
    }
    Ok((out, untyped))
}

/// A Cedar identifier for a tool name (its type names derive from it): characters other than
/// ASCII letters, digits and `_` become `_`, and it starts with `tool_` unless it starts with a
/// letter. Actions keep the tool's own name (`Action::"get-weather"`).
fn identifier(name: &str) -> String {
    let mut s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        s.insert_str(0, "tool_");
    }
    s
}

/// The generator's output for the tools (under their identifiers), as a JSON namespace.
fn generate(tools: &[Value], listed: &[Tool]) -> Result<Map<String, Value>> {
    let renamed: Vec<Value> = tools
        .iter()
        .zip(listed)
        .map(|(t, l)| {
            let mut t = t.clone();
            if let Some(o) = t.as_object_mut() {
                o.insert("name".into(), Value::String(l.ident.clone()));
                // Outputs are not decided on; the generator need not read them.
                o.remove("outputSchema");
            }
            t
        })
        .collect();
    let answer = json!({ "jsonrpc": "2.0", "id": 0, "result": { "tools": renamed } });
    let description = ServerDescription::from_json_str(&answer.to_string())
        .map_err(|e| Error::Malformed(format!("tool list: {e}")))?;
    let stub = format!(
        "namespace {STUB_NAMESPACE} {{ @mcp_principal(\"{AGENT_TYPE}\") entity {AGENT_TYPE}; \
         @mcp_resource(\"{MCP_SERVER_TYPE}\") entity {MCP_SERVER_TYPE}; }}"
    );
    let config = SchemaGeneratorConfig::default().objects_as_records(true).flatten_namespaces(true);
    let mut generator = SchemaGenerator::from_cedarschema_str_with_config(&stub, config)
        .map_err(|e| Error::Policy(format!("schema generator: {e}")))?;
    generator
        .add_actions_from_server_description(&description)
        .map_err(|e| Error::Malformed(format!("tool list: cannot type it in Cedar: {e}")))?;
    let mut v = serde_json::to_value(generator.get_schema())
        .map_err(|e| Error::Policy(format!("schema generator output: {e}")))?;
    unqualify(&mut v);
    match v {
        Value::Object(mut o) => match o.remove(STUB_NAMESPACE) {
            Some(Value::Object(ns)) => Ok(ns),
            _ => Err(Error::Policy("schema generator output has no namespace".into())),
        },
        _ => Err(Error::Policy("schema generator output is not an object".into())),
    }
}

/// Strip the stub namespace from every name.
fn unqualify(v: &mut Value) {
    let prefix = format!("{STUB_NAMESPACE}::");
    match v {
        Value::String(s) => {
            if let Some(rest) = s.strip_prefix(&prefix) {
                *s = rest.to_string();
            }
        }
        Value::Array(a) => a.iter_mut().for_each(unqualify),
        Value::Object(o) => o.values_mut().for_each(unqualify),
        _ => {}
    }
}

/// The base schema as JSON, parsed the way the policy store parses schemas.
fn base_json(base: &str) -> Result<Value> {
    if base.len() > MAX_POLICY_BYTES {
        return Err(Error::Limit(format!("base schema of {} bytes (at most {MAX_POLICY_BYTES})", base.len())));
    }
    let fragment = if base.trim_start().starts_with('{') {
        SchemaFragment::from_json_str(base).map_err(|e| Error::Policy(format!("base schema (JSON) is invalid: {e}")))?
    } else {
        SchemaFragment::from_cedarschema_str(base).map_err(|e| Error::Policy(format!("base schema is invalid: {e}")))?.0
    };
    fragment.to_json_value().map_err(|e| Error::Policy(format!("base schema: {e}")))
}

/// The base's global namespace's part `key` (commonTypes, entityTypes, actions), created empty.
fn part<'a>(global: &'a mut Map<String, Value>, key: &str) -> Result<&'a mut Map<String, Value>> {
    global
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| Error::Policy(format!("base schema: `{key}` is not an object")))
}

fn annotation<'a>(item: &'a Value, key: &str) -> Option<&'a str> {
    item.get("annotations").and_then(|a| a.get(key)).and_then(Value::as_str)
}

/// Merge the generated types and one action per tool into the base; the tools that changed.
fn merge(base: &mut Value, upstream: &str, listed: &[Tool], generated: Map<String, Value>) -> Result<Vec<String>> {
    let global = base
        .as_object_mut()
        .ok_or_else(|| Error::Policy("base schema is not an object".into()))?
        .entry(String::new())
        .or_insert_with(|| json!({ "entityTypes": {}, "actions": {} }))
        .as_object_mut()
        .ok_or_else(|| Error::Policy("base schema: the global namespace is not an object".into()))?;
    let context_attributes = part(global, "commonTypes")?
        .get(REQUEST_CONTEXT)
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("Record"))
        .and_then(|t| t.get("attributes"))
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| {
            Error::Policy(format!(
                "base schema declares no record type `{REQUEST_CONTEXT}` (Writ's context): start from policies/writ.cedarschema"
            ))
        })?;
    if !part(global, "entityTypes")?.contains_key(AGENT_TYPE) {
        return Err(Error::Policy(format!(
            "base schema declares no entity type `{AGENT_TYPE}`: start from policies/writ.cedarschema"
        )));
    }

    // What the base says of each tool: (its upstream, its input digest), or a plain action.
    let actions = part(global, "actions")?;
    let mut changed = Vec::new();
    let mut replaced = BTreeSet::new();
    for tool in listed {
        match actions.get(&tool.name) {
            None => changed.push(tool.name.clone()),
            Some(a) => match (annotation(a, UPSTREAM_ANNOTATION), annotation(a, INPUT_ANNOTATION)) {
                (Some(u), Some(d)) if u == upstream => {
                    if d != tool.digest {
                        changed.push(tool.name.clone());
                    }
                    replaced.insert(format!("{upstream}/{}", tool.name));
                }
                (Some(u), Some(d)) => {
                    if d != tool.digest {
                        return Err(Error::Policy(format!(
                            "tool `{}` of upstream `{upstream}` differs from the one of upstream `{u}` (another input schema); one Cedar action (`Action::\"{}\"`) cannot type both",
                            tool.name, tool.name
                        )));
                    }
                }
                _ => {
                    return Err(Error::Policy(format!(
                        "tool `{}` of upstream `{upstream}` is named like an action the base schema declares (`Action::\"{}\"`); rename the action or the tool",
                        tool.name, tool.name
                    )));
                }
            },
        }
    }
    let ours: BTreeSet<String> = listed
        .iter()
        .filter(|t| {
            actions.get(&t.name).is_none_or(|a| annotation(a, UPSTREAM_ANNOTATION).is_none_or(|u| u == upstream))
        })
        .map(|t| t.name.clone())
        .collect();

    // Remove what is regenerated: this upstream's actions and types for the listed tools.
    let keep = |item: &Value| annotation(item, TOOL_ANNOTATION).is_none_or(|t| !replaced.contains(t));
    part(global, "commonTypes")?.retain(|_, v| keep(v));
    part(global, "entityTypes")?.retain(|_, v| keep(v));

    // Generated types, rewritten to what JSON arguments give, marked with their tool.
    let mut generated = generated;
    let entity_kinds = entity_kinds(&generated);
    let tool_of = |type_name: &str| -> Option<&Tool> {
        listed
            .iter()
            .find(|t| type_name == format!("{}Input", t.ident) || type_name.starts_with(&format!("{}_Input_", t.ident)))
    };
    let mut common_types = match generated.remove("commonTypes") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for ty in common_types.values_mut() {
        rewrite_types(ty, &entity_kinds);
    }
    let mut entity_types = match generated.remove("entityTypes") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for ty in entity_types.values_mut() {
        rewrite_types(ty, &entity_kinds);
    }
    let referenced = referenced_names(&common_types, &entity_types);
    let target_types = part(global, "commonTypes")?;
    for (name, mut ty) in common_types {
        let Some(tool) = tool_of(&name).filter(|t| ours.contains(&t.name)) else { continue };
        mark(&mut ty, TOOL_ANNOTATION, &format!("{upstream}/{}", tool.name));
        if target_types.contains_key(&name) {
            return Err(Error::Policy(format!(
                "tool `{}`: the base schema already declares a type `{name}`",
                tool.name
            )));
        }
        target_types.insert(name, ty);
    }
    let target_entities = part(global, "entityTypes")?;
    if !target_entities.contains_key(MCP_SERVER_TYPE) {
        target_entities.insert(MCP_SERVER_TYPE.into(), json!({}));
    }
    for (name, mut ty) in entity_types {
        if name == AGENT_TYPE || name == MCP_SERVER_TYPE || !referenced.contains(&name) {
            continue;
        }
        if target_entities.contains_key(&name) {
            // Shared opaque types (`Null`…) are declared once.
            if tool_of(&name).is_none() {
                continue;
            }
            return Err(Error::Policy(format!("the base schema already declares an entity type `{name}`")));
        }
        if let Some(tool) = tool_of(&name) {
            mark(&mut ty, TOOL_ANNOTATION, &format!("{upstream}/{}", tool.name));
        }
        target_entities.insert(name, ty);
    }

    let actions = part(global, "actions")?;
    for tool in listed.iter().filter(|t| ours.contains(&t.name)) {
        let mut context = context_attributes.clone();
        context.insert("input".into(), json!({ "type": format!("{}Input", tool.ident) }));
        actions.insert(
            tool.name.clone(),
            json!({
                "annotations": { UPSTREAM_ANNOTATION: upstream, INPUT_ANNOTATION: tool.digest },
                "appliesTo": {
                    "principalTypes": [AGENT_TYPE],
                    "resourceTypes": [MCP_SERVER_TYPE],
                    "context": { "type": "Record", "attributes": context },
                }
            }),
        );
    }
    Ok(changed)
}

/// What the generator made each entity type stand for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EntityKind {
    /// A string `enum`: a `String` in JSON.
    Enum,
    /// An opaque number (`number`, `float`): a `Long` in JSON arguments Writ reads.
    Number,
    /// `null`.
    Null,
    /// Anything else (an object with `additionalProperties`): left as it is.
    Other,
}

fn entity_kinds(generated: &Map<String, Value>) -> BTreeMap<String, EntityKind> {
    let mut kinds = BTreeMap::new();
    if let Some(Value::Object(types)) = generated.get("entityTypes") {
        for (name, ty) in types {
            let kind = if ty.get("enum").is_some() {
                EntityKind::Enum
            } else if name == "Number" || name == "Float" {
                EntityKind::Number
            } else if name == "Null" {
                EntityKind::Null
            } else {
                EntityKind::Other
            };
            kinds.insert(name.clone(), kind);
        }
    }
    kinds
}

/// Rewrite, in a type, references to generated entity types into the JSON value's own type,
/// and `anyOf [T, null]` (a record of `typeChoice` attributes) into `T`.
fn rewrite_types(ty: &mut Value, kinds: &BTreeMap<String, EntityKind>) {
    let Some(o) = ty.as_object_mut() else { return };
    let kind = o.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
    if kind == "Entity" || kind == "EntityOrCommon" {
        let name = o.get("name").and_then(Value::as_str).unwrap_or_default();
        let replacement = match kinds.get(name) {
            Some(EntityKind::Enum) => Some("String"),
            Some(EntityKind::Number) => Some("Long"),
            _ => None,
        };
        if let Some(r) = replacement {
            o.insert("type".into(), Value::String("EntityOrCommon".into()));
            o.insert("name".into(), Value::String(r.into()));
        }
        return;
    }
    if kind == "Set" {
        if let Some(e) = o.get_mut("element") {
            rewrite_types(e, kinds);
        }
        return;
    }
    if kind != "Record" {
        return;
    }
    if let Some(Value::Object(attrs)) = o.get_mut("attributes") {
        for a in attrs.values_mut() {
            rewrite_types(a, kinds);
        }
    }
    // `anyOf [T, null]`: the generator's record of choices, one of them null.
    let choices: Option<Vec<(String, Value)>> = o
        .get("attributes")
        .and_then(Value::as_object)
        .map(|attrs| attrs.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    if let Some(choices) = choices
        && choices.len() == 2
        && choices.iter().all(|(k, _)| k.starts_with("typeChoice"))
    {
        let is_null =
            |v: &Value| v.get("name").and_then(Value::as_str).is_some_and(|n| kinds.get(n) == Some(&EntityKind::Null));
        let others: Vec<&Value> = choices.iter().map(|(_, v)| v).filter(|v| !is_null(v)).collect();
        if others.len() == 1 {
            let required = o.get("required").cloned();
            let mut t = others[0].clone();
            if let Some(t) = t.as_object_mut() {
                t.remove("required");
                if let Some(r) = required {
                    t.insert("required".into(), r);
                }
            }
            *ty = t;
        }
    }
}

/// Names of entity types still referenced by the (rewritten) types.
fn referenced_names(common: &Map<String, Value>, entities: &Map<String, Value>) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::Object(o) => {
                if let Some(Value::String(n)) = o.get("name") {
                    out.insert(n.clone());
                }
                o.values().for_each(|c| walk(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| walk(c, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    common.values().chain(entities.values()).for_each(|v| walk(v, &mut out));
    out
}

fn mark(ty: &mut Value, key: &str, value: &str) {
    if let Some(o) = ty.as_object_mut() {
        let annotations = o.entry("annotations").or_insert_with(|| Value::Object(Map::new()));
        if let Some(a) = annotations.as_object_mut() {
            a.insert(key.into(), Value::String(value.into()));
        }
    }
}

/// A deny-by-default starter: each tool callable only by agents in its role (`Role::"<upstream>/<tool>"`,
/// empty until entity data puts agents in it), with its input's attributes listed to narrow on.
fn starter(upstream: &str, listed: &[Tool], schema: &str) -> String {
    let mut out = format!(
        "// Writ starter policies for the MCP upstream `{upstream}` (from `writ mcp schema`).\n\
         // Deny by default: a tool may be called only by agents placed in its role in entity\n\
         // data (an `Agent`'s parents: `Role::\"{upstream}/<tool>\"`), and none is yet. Narrow\n\
         // each permit on `context.input` (the call's arguments) before granting it.\n"
    );
    for tool in listed {
        out.push('\n');
        let summary = tool.description.lines().next().unwrap_or_default().trim();
        if !summary.is_empty() {
            out.push_str(&format!("// {}: {summary}\n", tool.name));
        }
        if let Some(input) = input_summary(schema, &tool.ident) {
            out.push_str(&format!("// context.input: {input}\n"));
        }
        let id = format!("{upstream}-{}", tool.name).replace(['"', '\\'], "_");
        let name = tool.name.replace('\\', "\\\\").replace('"', "\\\"");
        out.push_str(&format!(
            "@id(\"{id}\")\npermit (\n  principal in Role::\"{upstream}/{name}\",\n  action == Action::\"{name}\",\n  resource == McpServer::\"{upstream}\"\n);\n"
        ));
    }
    out
}

/// The attributes of a tool's input type as the Cedar schema writes them, on one line.
fn input_summary(schema: &str, ident: &str) -> Option<String> {
    let start = schema.find(&format!("type {ident}Input = {{"))?;
    let body = &schema[start..];
    let open = body.find('{')?;
    let mut depth = 0usize;
    for (i, c) in body[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    let inner = &body[open + 1..open + i];
                    let flat: Vec<&str> = inner.split_whitespace().collect();
                    let s = flat.join(" ");
                    return Some(if s.is_empty() { "(none)".into() } else { s.trim_end_matches(',').to_string() });
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = include_str!("../../../policies/writ.cedarschema");

    fn tools(list: Value) -> String {
        json!({ "tools": list }).to_string()
    }

    fn pay(amount_type: &str) -> Value {
        json!({
            "name": "pay",
            "description": "Pay someone.\nMore.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "to": {"type": "string"},
                    "amount": {"type": amount_type},
                    "currency": {"type": "string", "enum": ["USD", "EUR"]},
                    "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "when": {"type": "string", "format": "date-time"}
                },
                "required": ["to", "amount"]
            }
        })
    }

    /// `pay` and a tool with a hyphen in its name, merged into Writ's schema.
    fn pay_and_weather() -> McpSchema {
        let list = json!([pay("integer"), {"name": "get-weather", "inputSchema": {"type": "object"}}]);
        mcp_schema(BASE, "payments", &tools(list)).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn tools_become_actions_typed_as_json_gives_them() {
        let out = pay_and_weather();
        let s = &out.schema;
        assert!(s.contains("action \"pay\""), "{s}");
        assert!(s.contains("action \"get-weather\""), "{s}");
        assert!(s.contains("amount: Long"), "{s}");
        assert!(s.contains("currency?: String"), "{s}");
        assert!(s.contains("note?: String"), "{s}");
        assert!(s.contains("tags?: Set<String>"), "{s}");
        assert!(s.contains("when?: datetime"), "{s}");
        assert!(s.contains("entity McpServer"), "{s}");
        assert!(!s.contains(STUB_NAMESPACE), "{s}");
        assert_eq!(out.changed, vec!["pay".to_string(), "get-weather".to_string()]);
        // Writ's own context keys are every tool's context too.
        assert!(s.contains("delegation_depth: Long"), "{s}");
    }

    #[test]
    fn regenerating_the_same_list_changes_nothing_and_a_new_input_schema_is_a_change() {
        let first =
            mcp_schema(BASE, "payments", &tools(json!([pay("integer")]))).unwrap_or_else(|e| unreachable!("{e}"));
        let again = mcp_schema(&first.schema, "payments", &tools(json!([pay("integer")])))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert!(again.changed.is_empty());
        assert_eq!(again.schema, first.schema);
        let changed = mcp_schema(&first.schema, "payments", &tools(json!([pay("string")])))
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(changed.changed, vec!["pay".to_string()]);
        assert!(changed.schema.contains("amount: String"), "{}", changed.schema);
        assert!(!changed.schema.contains("amount: Long"), "{}", changed.schema);
    }

    #[test]
    fn the_starter_validates_and_permits_nobody() {
        let out = pay_and_weather();
        let store = crate::authz::PolicyStore::load(&out.starter, Some(&out.schema), None);
        assert!(store.is_ok(), "{:?}\n{}", store.err(), out.starter);
        assert!(out.starter.contains("principal in Role::\"payments/pay\""), "{}", out.starter);
        assert!(out.starter.contains("// context.input: amount: Long"), "{}", out.starter);
    }

    #[test]
    fn conflicts_and_bad_lists_are_typed_errors_and_untypable_tools_are_left_out() {
        let typed = |r: Result<McpSchema>| r.unwrap_or_else(|e| unreachable!("{e}"));
        let first = typed(mcp_schema(BASE, "payments", &tools(json!([pay("integer")]))));
        let other = typed(mcp_schema(&first.schema, "other", &tools(json!([pay("string")])))).untyped;
        assert!(other.len() == 1 && other[0].0 == "pay" && other[0].1.contains("upstream `payments`"), "{other:?}");
        // The same tool from another upstream with the same schema is the same action.
        assert!(typed(mcp_schema(&first.schema, "other", &tools(json!([pay("integer")])))).untyped.is_empty());
        let shadow = json!([{"name": "read", "inputSchema": {"type": "object"}}]);
        assert_eq!(typed(mcp_schema(BASE, "payments", &tools(shadow))).untyped[0].0, "read");
        assert!(matches!(mcp_schema(BASE, "payments", "not json"), Err(Error::Malformed(_))));
        assert!(matches!(mcp_schema(BASE, "payments", "{\"tools\": 3}"), Err(Error::Malformed(_))));
        assert!(matches!(mcp_schema(BASE, "pay ments", &tools(json!([]))), Err(Error::Malformed(_))));
        let twice = json!([{"name": "a-b", "inputSchema": {"type": "object"}}, {"name": "a_b", "inputSchema": {"type": "object"}}]);
        assert_eq!(typed(mcp_schema(BASE, "payments", &tools(twice))).untyped[0].0, "a_b");
        let no_schema = json!([{"name": "x"}, {"inputSchema": {}}]);
        assert_eq!(typed(mcp_schema(BASE, "payments", &tools(no_schema))).untyped.len(), 2);
        // A tool the generator cannot type (a property name it refuses, a recursive type) is
        // left out with why; the others are typed.
        let mixed = json!([
            {"name": "odd", "inputSchema": {"type": "object", "properties": {"a-b": {"type": "string"}}}},
            {"name": "loop", "inputSchema": {"type": "object", "properties": {"n": {"$ref": "#/$defs/N"}},
              "$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}}}},
            pay("integer")
        ]);
        let out = typed(mcp_schema(BASE, "payments", &tools(mixed)));
        let left_out: Vec<&str> = out.untyped.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(left_out, ["odd", "loop"]);
        assert!(out.schema.contains("action \"pay\"") && !out.schema.contains("action \"odd\""));
        assert_eq!(out.changed, vec!["pay".to_string()]);
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(matches!(mcp_schema(BASE, "payments", &deep), Err(Error::Limit(_))));
        assert!(matches!(mcp_schema("entity Agent;", "payments", &tools(json!([]))), Err(Error::Policy(_))));
        assert!(matches!(
            mcp_schema("entity Agent;", "payments", &tools(json!([pay("integer")]))),
            Err(Error::Policy(_))
        ));
    }
}
#[cfg(test)]
mod decision_tests {
    //! Decisions under a generated schema: calls typed by it, lists not.
    use super::*;
    use writ_types::{Identity, Intent, Proof};

    const POLICIES: &str = r#"
@id("lookup") permit(principal, action == Action::"lookup", resource == McpServer::"payments");
@id("small") permit(principal, action == Action::"pay", resource == McpServer::"payments") when { context.input.amount <= 100 };
"#;

    fn world() -> (crate::Writ, crate::MemoryLedger, crate::crypto::RustCrypto, Identity) {
        let tools = json!({ "tools": [
            { "name": "lookup", "inputSchema": { "type": "object", "properties": { "name": { "type": "string" } }, "required": ["name"] } },
            { "name": "pay", "inputSchema": { "type": "object", "properties": { "amount": { "type": "integer" } }, "required": ["amount"] } }
        ]});
        let g = mcp_schema(include_str!("../../../policies/writ.cedarschema"), "payments", &tools.to_string())
            .unwrap_or_else(|e| unreachable!("{e}"));
        let mut w = crate::Writ::default();
        w.set_policies(POLICIES, Some(&g.schema), None).unwrap_or_else(|e| unreachable!("{e}"));
        let who = Identity {
            spiffe_id: "spiffe://t.example/agent".into(),
            trust_domain: "t.example".into(),
            expires_at: 3_000_000,
            thumbprint: "t".into(),
            proof: Proof::JwtSvid,
            claims: Default::default(),
        };
        (w, crate::MemoryLedger::new(), crate::crypto::RustCrypto::with_ed25519_seed([9; 32]), who)
    }

    fn call(action: &str, input: &str) -> Intent {
        Intent {
            action: action.into(),
            resource: r#"McpServer::"payments""#.into(),
            task_id: String::new(),
            context: String::new(),
            input: input.into(),
        }
    }

    #[test]
    fn arguments_that_do_not_match_the_tools_types_are_denied_even_when_no_policy_reads_them() {
        let (w, ledger, crypto, who) = world();
        let at = 2_000_000;
        assert!(w.decide(&who, &call("lookup", r#"{"name":"acme"}"#), at, 0, &ledger, &crypto).allow);
        // Same action, same second, no policy reads the input: still decided on it (the
        // memo keeps the input in its key under a schema), and refused for its type.
        let d = w.decide(&who, &call("lookup", r#"{"name":5}"#), at, 0, &ledger, &crypto);
        assert!(!d.allow && !d.errors.is_empty(), "{d:?}");
        let d = w.decide(&who, &call("lookup", r#"{"name":"acme","extra":"s3cret"}"#), at, 0, &ledger, &crypto);
        assert!(!d.allow, "{d:?}");
        // Why, without the arguments themselves (decisions are audited).
        assert!(d.errors.iter().all(|e| !e.contains("s3cret")) && d.errors[0].contains("does not fit"), "{d:?}");
        let d = w.decide(&who, &call("pay", r#"{"amount":"50"}"#), at, 0, &ledger, &crypto);
        assert!(!d.allow, "{d:?}");
        assert!(w.decide(&who, &call("pay", r#"{"amount":50}"#), at, 0, &ledger, &crypto).allow);
    }

    #[test]
    fn a_list_shows_tools_under_a_schema_whose_calls_want_arguments() {
        let (w, ledger, crypto, who) = world();
        let at = 2_000_000;
        assert!(w.listable(&who, &call("lookup", ""), at, &ledger).allow);
        assert!(w.listable(&who, &call("pay", ""), at, &ledger).allow);
        // Listing first does not decide a later call: its bare request is not remembered.
        assert!(w.decide(&who, &call("lookup", r#"{"name":"acme"}"#), at, 0, &ledger, &crypto).allow);
        assert!(!w.listable(&who, &call("admin_reset", ""), at, &ledger).allow);
    }
}
