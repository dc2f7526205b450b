//! Agent workflows from OpenTelemetry traces: OTLP JSON (an `ExportTraceServiceRequest`, as an
//! OTLP/HTTP exporter or a collector's file exporter writes it) with the GenAI semantic
//! conventions' spans — `invoke_agent` (which agent runs), `execute_tool` with
//! `gen_ai.tool.name`, and MCP client spans (`mcp.method.name` = `tools/call`). Each trace is one
//! task; traces with the same sequence of (agent, tool) steps are one workflow, arriving at the
//! rate they were observed.

use crate::scenario::{Agent, Resource, Scenario, Step, Workflow};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One span, as the importer needs it.
#[derive(Debug, Clone)]
struct Span {
    trace: String,
    id: String,
    parent: String,
    start_ns: u128,
    attributes: BTreeMap<String, String>,
    service: String,
}

/// An attribute value as text (strings, numbers and booleans; others are skipped).
fn any_value(v: &Value) -> Option<String> {
    ["stringValue", "intValue", "doubleValue", "boolValue"].iter().find_map(|k| match v.get(*k)? {
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    })
}

fn attributes(list: Option<&Value>) -> BTreeMap<String, String> {
    list.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|kv| Some((kv.get("key")?.as_str()?.to_string(), any_value(kv.get("value")?)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// A nanosecond timestamp, written as a string (OTLP JSON's 64-bit integers) or a number.
fn nanos(v: Option<&Value>) -> Option<u128> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64().map(u128::from),
        _ => None,
    }
}

fn spans(doc: &Value) -> Result<Vec<Span>, String> {
    let resource_spans =
        doc.get("resourceSpans").and_then(Value::as_array).ok_or("not OTLP JSON traces: no `resourceSpans` array")?;
    let mut out = Vec::new();
    for rs in resource_spans {
        let resource = attributes(rs.pointer("/resource/attributes"));
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for ss in rs.get("scopeSpans").and_then(Value::as_array).into_iter().flatten() {
            for sp in ss.get("spans").and_then(Value::as_array).into_iter().flatten() {
                let field = |k: &str| sp.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                let start_ns = nanos(sp.get("startTimeUnixNano"))
                    .ok_or_else(|| format!("span `{}` has no `startTimeUnixNano`", field("spanId")))?;
                out.push(Span {
                    trace: field("traceId"),
                    id: field("spanId"),
                    parent: field("parentSpanId"),
                    start_ns,
                    attributes: attributes(sp.get("attributes")),
                    service: service.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// A name as a SPIFFE path segment: letters, digits, `-`, `.`, `_`; others become `-`.
fn segment(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') { c.to_ascii_lowercase() } else { '-' })
        .collect();
    if s.is_empty() { "unnamed".into() } else { s }
}

/// A workflow's steps: (agent name, tool name) each.
type Shape = Vec<(String, String)>;

/// What the importer needs to know besides the traces.
#[derive(Debug, Clone)]
pub struct Import {
    /// The scenario's name.
    pub name: String,
    /// Agents become `spiffe://<trust_domain>/agent/<gen_ai.agent.name>`.
    pub trust_domain: String,
    /// Every tool becomes a resource `Tool::"<gen_ai.tool.name>"` of this sensitivity.
    pub sensitivity: u8,
}

/// A scenario from OTLP JSON trace text: its workflows, agents and tools, with the breach and
/// design defaults (edit the file it writes to change them).
pub fn import(text: &str, how: &Import) -> Result<Scenario, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let all = spans(&doc)?;
    let by_id: BTreeMap<(&str, &str), &Span> = all.iter().map(|s| ((s.trace.as_str(), s.id.as_str()), s)).collect();
    fn op(s: &Span) -> Option<&str> {
        s.attributes.get("gen_ai.operation.name").map(String::as_str)
    }
    // Ancestors of a span, nearest first (a cycle or a missing parent stops the walk).
    let ancestors = |s: &Span| {
        let mut out: Vec<&Span> = Vec::new();
        let mut at = s;
        while let Some(p) = by_id.get(&(at.trace.as_str(), at.parent.as_str())) {
            if out.iter().any(|q| q.id == p.id) || out.len() > 1000 {
                break;
            }
            out.push(p);
            at = p;
        }
        out
    };
    let agent_of = |s: &Span| {
        std::iter::once(s)
            .chain(ancestors(s))
            .find(|a| op(a) == Some("invoke_agent"))
            .and_then(|a| a.attributes.get("gen_ai.agent.name").or(a.attributes.get("gen_ai.agent.id")).cloned())
            .unwrap_or_else(|| s.service.clone())
    };
    // Tool calls: `execute_tool` spans, and MCP `tools/call` spans not inside one for the same
    // tool (the same call seen from both layers counts once).
    let tool = |s: &Span| s.attributes.get("gen_ai.tool.name").cloned();
    let mut calls: BTreeMap<&str, Vec<(u128, String, String)>> = BTreeMap::new();
    let mut starts: BTreeMap<&str, u128> = BTreeMap::new();
    for s in &all {
        let first = starts.entry(s.trace.as_str()).or_insert(s.start_ns);
        *first = (*first).min(s.start_ns);
        let is_tool = op(s) == Some("execute_tool");
        let is_mcp = s.attributes.get("mcp.method.name").map(String::as_str) == Some("tools/call");
        let Some(name) = tool(s).filter(|_| is_tool || is_mcp) else { continue };
        if is_mcp
            && !is_tool
            && ancestors(s).iter().any(|a| op(a) == Some("execute_tool") && tool(a).as_ref() == Some(&name))
        {
            continue;
        }
        calls.entry(s.trace.as_str()).or_default().push((s.start_ns, agent_of(s), name));
    }
    if calls.is_empty() {
        return Err("no tool calls: no `execute_tool` or MCP `tools/call` span with `gen_ai.tool.name`".into());
    }
    let agent_id = |name: &str| format!("spiffe://{}/agent/{}", how.trust_domain, segment(name));
    // Workflows: traces with the same steps, their offsets from the first such trace.
    // (agent, tool) per step → (the first trace's offsets, seconds; how many traces).
    let mut shapes: BTreeMap<Shape, (Vec<u64>, usize)> = BTreeMap::new();
    for (trace, mut steps) in calls {
        steps.sort();
        let t0 = starts.get(trace).copied().unwrap_or(steps[0].0);
        let shape = steps.iter().map(|(_, a, t)| (a.clone(), t.clone())).collect();
        let offsets = steps.iter().map(|(at, _, _)| ((at - t0) / 1_000_000_000) as u64).collect();
        shapes.entry(shape).or_insert((offsets, 0)).1 += 1;
    }
    let (first, last) = (starts.values().min().copied().unwrap_or(0), starts.values().max().copied().unwrap_or(0));
    // Observed rate: traces over the span of their starts (at least an hour).
    let hours = (((last - first) as f64) / 3.6e12).max(1.0);
    let mut agents = BTreeSet::new();
    let mut tools = BTreeSet::new();
    let workflows: Vec<Workflow> = shapes
        .into_iter()
        .enumerate()
        .map(|(i, (shape, (offsets, count)))| Workflow {
            name: format!("{}-{}", segment(&shape[0].0), i + 1),
            rate_per_hour: count as f64 / hours,
            task: None,
            steps: shape
                .iter()
                .zip(offsets)
                .map(|((agent, tool), at)| {
                    agents.insert(agent_id(agent));
                    tools.insert(tool.clone());
                    Step {
                        at,
                        agent: agent_id(agent),
                        action: "invoke".into(),
                        resource: format!("Tool::{tool:?}"),
                        context: String::new(),
                    }
                })
                .collect(),
        })
        .collect();
    let agents =
        agents.into_iter().map(|id| Agent { id, copies: 1, offboarded_at_hours: None, account: None }).collect();
    let resources = tools
        .into_iter()
        .map(|t| Resource {
            uid: format!("Tool::{t:?}"),
            sensitivity: how.sensitivity,
            records: 1,
            actions: vec!["invoke".into()],
            protocol: "http".into(),
            holds: Vec::new(),
        })
        .collect();
    let s = Scenario {
        name: how.name.clone(),
        horizon_hours: crate::scenario::default_horizon(),
        warmup_hours: crate::scenario::default_warmup(),
        breach: Default::default(),
        design: Default::default(),
        cost: Default::default(),
        agents,
        resources,
        workflows,
        secrets: Vec::new(),
    };
    s.check().map_err(|e| format!("the imported scenario: {e}"))?;
    Ok(s)
}
