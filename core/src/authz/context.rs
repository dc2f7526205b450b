//! The Cedar context of a request: the caller's JSON object (bounded), plus Writ's own keys —
//! `task_id`, `now`, `delegation_depth`, `identity_expires_at` — which win over the caller's.
//! Plain JSON is built straight into Cedar values; a request with no caller context gets a
//! context built directly from Writ's keys and kept for the current second.

use super::store::{PolicyStore, RequestEnv, lock};
use super::{MAX_CONTEXT_BYTES, MAX_NESTING};
use crate::bounded::BoundedMap;
use crate::{Identity, Intent};
use cedar_policy::{Context, RestrictedExpression};
use serde_json::{Map, Value};

/// Tasks whose Writ-only contexts are kept, and contexts kept per task (one per delegation
/// depth and identity expiry seen in the current second).
const MAX_TASKS: usize = 512;
const MAX_PER_TASK: usize = 8;

/// The Cedar contexts built for requests that carry no caller context: they hold only Writ's
/// keys, so within one second every check of a task by the same identity at the same depth
/// has the same context. Building one costs Cedar an expression evaluation (~1 µs), so they
/// are kept for the current second.
pub(super) struct ContextMemo {
    now: u64,
    /// By task id: (delegation depth, identity expiry, context), at most [`MAX_PER_TASK`]
    /// (scanned: a second hash lookup on every check cost more than the few entries).
    by_task: BoundedMap<String, Vec<(u32, u64, Context)>>,
}

impl Default for ContextMemo {
    fn default() -> Self {
        ContextMemo { now: 0, by_task: BoundedMap::new(MAX_TASKS) }
    }
}

impl ContextMemo {
    fn get(&self, task: &str, now: u64, depth: u32, expires: u64) -> Option<Context> {
        if self.now != now {
            return None;
        }
        self.by_task.get(task)?.iter().find(|(d, e, _)| *d == depth && *e == expires).map(|(_, _, c)| c.clone())
    }

    fn put(&mut self, task: &str, now: u64, depth: u32, expires: u64, context: Context) {
        // Contexts of an older second will not be asked for again.
        if self.now != now {
            self.by_task.clear();
            self.now = now;
        }
        let per_task = match self.by_task.get_mut(task) {
            Some(m) => m,
            None => self.by_task.get_or_insert_with(task.to_string(), Vec::new),
        };
        if per_task.len() >= MAX_PER_TASK {
            per_task.clear();
        }
        per_task.push((depth, expires, context));
    }
}

impl PolicyStore {
    /// The context of a request without caller context: only Writ's own keys, built directly
    /// (JSON conversion costs ~6 µs natively) and memoized for the current second;
    /// `Request::new` still checks it against the schema.
    pub(super) fn writ_context(&self, who: &Identity, what: &Intent, env: &RequestEnv) -> Result<Context, String> {
        let (task, now, depth, expires) = (what.task_id.as_str(), env.now, env.delegation_depth, who.expires_at);
        if let Some(c) = lock(&self.caches.contexts).get(task, now, depth, expires) {
            return Ok(c);
        }
        let long = |v: u64| RestrictedExpression::new_long(i64::try_from(v).unwrap_or(i64::MAX));
        let context = Context::from_pairs([
            ("task_id".to_string(), RestrictedExpression::new_string(what.task_id.clone())),
            ("now".to_string(), long(now)),
            ("delegation_depth".to_string(), long(u64::from(depth))),
            ("identity_expires_at".to_string(), long(expires)),
        ])
        .map_err(|e| format!("context: {e}"))?;
        lock(&self.caches.contexts).put(task, now, depth, expires, context.clone());
        Ok(context)
    }
}

/// A JSON value as a Cedar value, when it is plainly one: no `null`, no number that is not a
/// 64-bit integer, no object with Cedar's `__entity` or `__extn` escape. `None` otherwise (the
/// caller then lets Cedar's JSON reader decide).
fn direct_value(v: &Value) -> Option<RestrictedExpression> {
    match v {
        Value::Bool(b) => Some(RestrictedExpression::new_bool(*b)),
        Value::Number(n) => n.as_i64().map(RestrictedExpression::new_long),
        Value::String(s) => Some(RestrictedExpression::new_string(s.clone())),
        Value::Array(a) => a.iter().map(direct_value).collect::<Option<Vec<_>>>().map(RestrictedExpression::new_set),
        Value::Object(o) => direct_record(o).and_then(|r| RestrictedExpression::new_record(r).ok()),
        Value::Null => None,
    }
}

fn direct_record(o: &Map<String, Value>) -> Option<Vec<(String, RestrictedExpression)>> {
    if o.contains_key("__entity") || o.contains_key("__extn") {
        return None;
    }
    o.iter().map(|(k, v)| direct_value(v).map(|x| (k.clone(), x))).collect()
}

/// The context object built straight into Cedar values (see [`direct_value`]).
pub(super) fn direct_context(o: &Map<String, Value>) -> Option<Context> {
    Context::from_pairs(direct_record(o)?).ok()
}

fn json_depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The Cedar context: the intent's JSON object plus `task_id`, `now`, `delegation_depth`,
/// `identity_expires_at` (Writ's keys win over the caller's).
pub(super) fn context_json(what: &Intent, who: &Identity, env: &RequestEnv) -> Result<Map<String, Value>, String> {
    if what.context.len() > MAX_CONTEXT_BYTES {
        return Err(format!("context is {} bytes, over the cap of {MAX_CONTEXT_BYTES}", what.context.len()));
    }
    let mut ctx = if what.context.trim().is_empty() {
        Map::new()
    } else {
        match serde_json::from_str::<Value>(&what.context) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err("context is not a JSON object".into()),
            Err(e) => return Err(format!("context is not JSON: {e}")),
        }
    };
    let depth = ctx.values().map(json_depth).max().unwrap_or(0) + 1;
    if depth > MAX_NESTING {
        return Err(format!("context nests {depth} deep, over the cap of {MAX_NESTING}"));
    }
    let long = |v: u64| Value::from(i64::try_from(v).unwrap_or(i64::MAX));
    ctx.insert("task_id".into(), Value::String(what.task_id.clone()));
    ctx.insert("now".into(), long(env.now));
    ctx.insert("delegation_depth".into(), Value::from(env.delegation_depth));
    ctx.insert("identity_expires_at".into(), long(who.expires_at));
    Ok(ctx)
}
