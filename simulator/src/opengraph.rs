//! The attack graph of a scenario under one design, as BloodHound OpenGraph JSON: the attacker,
//! the agents and the places their credentials are kept, the credentials (long-lived secrets per
//! holder and protocol, or per-task credentials per workflow and agent), the resources, and the
//! edges that reach them — exposure of a place, a hijack, what a place or a resource holds, what
//! a credential grants; only what the attacker reaches is in it. Load it into BloodHound (or any OpenGraph reader) and ask for the paths
//! from `writ-sim:attacker` to a resource.

use crate::design::Design;
use crate::model::World;
use crate::scenario::Scenario;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The attacker's node id.
pub const ATTACKER_NODE: &str = "writ-sim:attacker";

/// An OpenGraph edge kind for an action: `Writ_Can` and the action's letters and digits,
/// capitalised (`read` → `Writ_CanRead`).
fn grant_kind(action: &str) -> String {
    let mut kind = String::from("Writ_Can");
    let mut upper = true;
    for ch in action.chars() {
        if ch.is_ascii_alphanumeric() {
            kind.push(if upper { ch.to_ascii_uppercase() } else { ch });
            upper = false;
        } else {
            upper = true;
        }
    }
    kind
}

fn edge(kind: &str, start: &str, end: &str, properties: Value) -> Value {
    json!({
        "kind": kind,
        "start": { "value": start, "match_by": "id" },
        "end": { "value": end, "match_by": "id" },
        "properties": properties,
    })
}

fn place_id(agent: &str, location: u32) -> String {
    format!("{agent}#place-{location}")
}

/// The graph of `s` under `design`.
pub fn graph(s: &Scenario, design: Design) -> Value {
    let w = World::new(s);
    let mut nodes = vec![json!({
        "id": ATTACKER_NODE, "kinds": ["Writ_Attacker"], "properties": { "name": "attacker" }
    })];
    let mut edges = Vec::new();
    let b = &s.breach;
    for a in &s.agents {
        nodes.push(json!({ "id": a.id, "kinds": ["Writ_Agent"], "properties": { "name": a.id } }));
        edges.push(edge("Writ_Hijacks", ATTACKER_NODE, &a.id, json!({ "per_year": b.hijacks_per_year })));
        for location in 0..a.copies + b.extra_copies {
            let id = place_id(&a.id, location);
            let kind = if location == 0 { "working memory" } else { "stored copy" };
            let extra = location >= a.copies;
            nodes.push(json!({
                "id": id, "kinds": ["Writ_Place"],
                "properties": { "name": format!("{kind} {location} of {}", a.id), "place": kind, "only_if_duplicated": extra }
            }));
            edges.push(edge(
                "Writ_Exposes",
                ATTACKER_NODE,
                &id,
                json!({ "per_year": b.exposures_per_year, "only_if_duplicated": extra, "duplication_rate": b.duplication_rate }),
            ));
        }
    }
    for r in &s.resources {
        nodes.push(json!({
            "id": r.uid, "kinds": ["Writ_Resource"],
            "properties": { "name": r.uid, "sensitivity": r.sensitivity, "records": r.records, "protocol": r.protocol }
        }));
    }
    // Credentials: (id, holder agents, scope).
    let mut creds: Vec<(String, Vec<usize>, Vec<usize>)> = Vec::new();
    if design.per_task() {
        for (wi, wf) in s.workflows.iter().enumerate() {
            for (a, scope) in &w.task_agents[wi] {
                let id = format!("{}:task-credential:{}:{}", design.name(), wf.name, s.agents[*a].id);
                creds.push((id, vec![*a], scope.to_vec()));
            }
        }
    } else {
        for members in &w.members {
            let scope = if design == Design::LeastPrivilege { w.needs(members) } else { w.all() };
            let name = s.agents[members[0]].account.clone().unwrap_or_else(|| s.agents[members[0]].id.clone());
            let protocols: BTreeSet<&str> = if design.rotates() {
                scope.iter().map(|p| s.resources[w.pairs[*p].0].protocol.as_str()).collect()
            } else {
                BTreeSet::from(["any"])
            };
            for proto in protocols {
                let mine: Vec<usize> = scope
                    .iter()
                    .copied()
                    .filter(|p| proto == "any" || s.resources[w.pairs[*p].0].protocol == proto)
                    .collect();
                creds.push((format!("{}:secret:{name}:{proto}", design.name()), members.clone(), mine));
            }
        }
    }
    let at_rest = !design.per_task() && design != Design::Vaulted;
    for (id, holders, scope) in &creds {
        let bound = design == Design::Writ;
        nodes.push(json!({
            "id": id, "kinds": ["Writ_Credential"],
            "properties": {
                "name": id, "design": design.name(), "per_task": design.per_task(),
                "sender_constrained": bound, "policy_checked": bound,
                "lifetime_s": if design.per_task() { s.design.ttl_s } else if design.rotates() { s.design.rotation_period_s } else { 0 },
            }
        }));
        for &a in holders {
            let agent = &s.agents[a];
            edges.push(edge("Writ_Holds", &agent.id, id, json!({})));
            // Where a copy of it is kept: every place when stored at rest; else only memory.
            let places = if at_rest { agent.copies + b.extra_copies } else { 1 };
            for location in 0..places {
                let props = if bound {
                    json!({ "usable_with": "the holder's key: a theft of its working memory", "memory_theft_rate": b.memory_theft_rate })
                } else {
                    json!({})
                };
                edges.push(edge(
                    if bound { "Writ_HoldsBound" } else { "Writ_Holds" },
                    &place_id(&agent.id, location),
                    id,
                    props,
                ));
            }
        }
        for &p in scope {
            let (ri, action) = &w.pairs[p];
            edges.push(edge(&grant_kind(action), id, &s.resources[*ri].uid, json!({ "action": action })));
        }
        // A long-lived secret stored on a resource is found by whoever reaches that resource.
        if at_rest {
            for (ri, r) in s.resources.iter().enumerate() {
                if w.holds[ri].iter().any(|a| holders.contains(a)) {
                    edges.push(edge("Writ_Stores", &r.uid, id, json!({ "lateral_delay_s": b.lateral_delay_s })));
                }
            }
        }
    }
    // Unmanaged secrets: the same in every design.
    for (k, secret) in s.secrets.iter().enumerate() {
        let id = format!("secret:{}", secret.name);
        nodes.push(json!({
            "id": id, "kinds": ["Writ_Credential", "Writ_UnmanagedSecret"],
            "properties": { "name": secret.name, "managed": false }
        }));
        for r in &secret.stored_on {
            edges.push(edge("Writ_Stores", r, &id, json!({ "lateral_delay_s": b.lateral_delay_s })));
        }
        for &p in w.secrets[k].iter() {
            let (ri, action) = &w.pairs[p];
            edges.push(edge(&grant_kind(action), &id, &s.resources[*ri].uid, json!({ "action": action })));
        }
    }
    // A hijacked agent asking JIT's issuer gets what its workflows use.
    if design == Design::Jit {
        for (ai, a) in s.agents.iter().enumerate() {
            for p in w.needs(&[ai]) {
                let (ri, action) = &w.pairs[p];
                edges.push(edge(
                    &grant_kind(action),
                    &a.id,
                    &s.resources[*ri].uid,
                    json!({ "action": action, "via": "a credential asked of the issuer" }),
                ));
            }
        }
    }
    // Only what the attacker reaches.
    let mut reached = BTreeSet::from([ATTACKER_NODE.to_string()]);
    loop {
        let before = reached.len();
        for e in &edges {
            if reached.contains(e["start"]["value"].as_str().unwrap_or_default()) {
                reached.insert(e["end"]["value"].as_str().unwrap_or_default().to_string());
            }
        }
        if reached.len() == before {
            break;
        }
    }
    let kept = |id: &Value| reached.contains(id.as_str().unwrap_or_default());
    nodes.retain(|n| kept(&n["id"]));
    edges.retain(|e| kept(&e["start"]["value"]) && kept(&e["end"]["value"]));
    json!({
        "metadata": { "source_kind": "Writ" },
        "graph": { "nodes": nodes, "edges": edges },
    })
}
