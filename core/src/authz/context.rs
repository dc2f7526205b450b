//! The Cedar context of a request. Writ's own keys hold only what Writ verified or decided:
//! `task_id` (the task the request is in), `now` (Writ's clock), `delegation_depth`,
//! `identity_expires_at` (of the attested identity), `task` (Writ's record of that task, only
//! while it is open), `approval` (a break-glass approval Writ verified) and `oidc` (the
//! verified claims of an OIDC identity). Whatever the caller
//! asserts — an intent's context JSON, an AuthZEN request's context — goes under `claimed`,
//! whole: a caller cannot set any of Writ's keys.
//!
//! Contexts are built straight into Cedar values; Cedar's JSON reader is the fallback when the
//! caller's JSON is not plainly Cedar (or the schema wants an entity or extension value). A
//! request with no caller context gets a context kept for the current second.

use super::direct::{Build, Cedar, TypeOnly, direct_record};
use super::store::{PolicyStore, lock};
use super::{MAX_CONTEXT_BYTES, MAX_NESTING};
use crate::Task;
use crate::approval::Approval;
use crate::bounded::BoundedMap;
use cedar_policy::{
    Context, EntityId, EntityTypeName, EntityUid, Request, RequestValidationError, RestrictedExpression, Schema,
};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Tasks whose Writ-only contexts are kept, and contexts kept per task (one per delegation
/// depth, identity expiry and task record seen in the current second).
const MAX_TASKS: usize = 512;
const MAX_PER_TASK: usize = 8;

/// Writ's keys of one request.
#[derive(Debug, Clone, Copy)]
pub(super) struct WritKeys<'a> {
    pub task_id: &'a str,
    pub now: u64,
    pub delegation_depth: u32,
    /// `None` for general evaluations (no attested identity).
    pub identity_expires_at: Option<u64>,
    pub task: Option<&'a Task>,
    pub approval: Option<&'a Approval>,
    /// An OIDC identity's verified claims (`None` for other proofs).
    pub oidc: Option<&'a BTreeMap<String, String>>,
}

/// What tells one task record from another in memo keys: 0 for none, else its opening time
/// plus one (a task id is opened once while it is remembered; its record never changes).
pub(super) fn task_stamp(task: Option<&Task>) -> u64 {
    task.map_or(0, |t| t.opened_at.saturating_add(1))
}

/// The Cedar contexts built for requests that carry no caller context: they hold only Writ's
/// keys, so within one second every check of a task by the same identity at the same depth
/// has the same context. Building one costs Cedar an expression evaluation (~1 µs), so they
/// are kept for the current second.
pub(super) struct ContextMemo {
    now: u64,
    /// By task id: (delegation depth, identity expiry, task stamp, context), at most
    /// [`MAX_PER_TASK`] (scanned: a second hash lookup on every check cost more).
    by_task: BoundedMap<String, Vec<(u32, u64, u64, Context)>>,
}

impl Default for ContextMemo {
    fn default() -> Self {
        ContextMemo { now: 0, by_task: BoundedMap::new(MAX_TASKS) }
    }
}

type MemoKey = (u32, u64, u64);

impl ContextMemo {
    fn get(&self, task: &str, now: u64, k: MemoKey) -> Option<Context> {
        if self.now != now {
            return None;
        }
        self.by_task.get(task)?.iter().find(|(d, e, s, _)| (*d, *e, *s) == k).map(|(_, _, _, c)| c.clone())
    }

    fn put(&mut self, task: &str, now: u64, k: MemoKey, context: Context) {
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
        per_task.push((k.0, k.1, k.2, context));
    }
}

/// The agent a SPIFFE ID names: the principal of its requests, a task's opener or member.
pub(super) fn agent_uid(agent_type: &EntityTypeName, spiffe_id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(agent_type.clone(), EntityId::new(spiffe_id))
}

/// A time or count as Cedar's long (saturating: Cedar has no unsigned 64-bit values).
pub(super) fn long(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl PolicyStore {
    /// Writ's keys as Cedar values.
    fn writ_pairs(&self, k: &WritKeys<'_>) -> Vec<(String, RestrictedExpression)> {
        let long = |v: u64| RestrictedExpression::new_long(long(v));
        let string = |s: &str| RestrictedExpression::new_string(s.to_string());
        let mut pairs = vec![
            ("task_id".to_string(), string(k.task_id)),
            ("now".to_string(), long(k.now)),
            ("delegation_depth".to_string(), long(u64::from(k.delegation_depth))),
        ];
        if let Some(e) = k.identity_expires_at {
            pairs.push(("identity_expires_at".to_string(), long(e)));
        }
        if let Some(t) = k.task {
            let members =
                t.members.iter().map(|m| RestrictedExpression::new_entity_uid(agent_uid(&self.agent_type, m)));
            let record = [
                ("id".to_string(), string(&t.id)),
                ("opener".to_string(), RestrictedExpression::new_entity_uid(agent_uid(&self.agent_type, &t.opener))),
                ("members".to_string(), RestrictedExpression::new_set(members)),
                ("purpose".to_string(), string(&t.purpose)),
                ("opened_at".to_string(), long(t.opened_at)),
                ("deadline".to_string(), long(t.deadline)),
            ];
            if let Ok(r) = RestrictedExpression::new_record(record) {
                pairs.push(("task".to_string(), r));
            }
        }
        if let Some(a) = k.approval {
            let record = [
                ("approver".to_string(), string(&a.approver)),
                ("ticket".to_string(), string(&a.ticket)),
                ("reason".to_string(), string(&a.reason)),
                ("expires_at".to_string(), long(a.expires_at)),
            ];
            if let Ok(r) = RestrictedExpression::new_record(record) {
                pairs.push(("approval".to_string(), r));
            }
        }
        if let Some(claims) = k.oidc {
            let record = claims.iter().map(|(n, v)| (n.clone(), string(v)));
            if let Ok(r) = RestrictedExpression::new_record(record) {
                pairs.push(("oidc".to_string(), r));
            }
        }
        pairs
    }

    /// Writ's keys as Cedar's JSON (entities escaped), for Cedar's JSON reader.
    fn writ_json(&self, k: &WritKeys<'_>) -> Map<String, Value> {
        let agent = |id: &str| json!({ "__entity": { "type": self.agent_type.to_string(), "id": id } });
        let mut m = Map::new();
        m.insert("task_id".into(), Value::from(k.task_id));
        m.insert("now".into(), Value::from(long(k.now)));
        m.insert("delegation_depth".into(), Value::from(k.delegation_depth));
        if let Some(e) = k.identity_expires_at {
            m.insert("identity_expires_at".into(), Value::from(long(e)));
        }
        if let Some(t) = k.task {
            let members: Vec<Value> = t.members.iter().map(|m| agent(m)).collect();
            m.insert(
                "task".into(),
                json!({ "id": t.id, "opener": agent(&t.opener), "members": members, "purpose": t.purpose,
                        "opened_at": long(t.opened_at), "deadline": long(t.deadline) }),
            );
        }
        if let Some(a) = k.approval {
            m.insert(
                "approval".into(),
                json!({ "approver": a.approver, "ticket": a.ticket, "reason": a.reason, "expires_at": long(a.expires_at) }),
            );
        }
        if let Some(claims) = k.oidc {
            m.insert("oidc".into(), json!(claims));
        }
        m
    }

    /// The context of a request without caller context: only Writ's keys, built directly
    /// and (without an approval) memoized for the current second; `Request::new` still
    /// checks it against the schema.
    pub(super) fn writ_context(&self, k: &WritKeys<'_>) -> Result<Context, String> {
        let memo_key = (k.delegation_depth, k.identity_expires_at.unwrap_or(0), task_stamp(k.task));
        let memoized = k.approval.is_none() && k.oidc.is_none();
        if memoized && let Some(c) = lock(&self.caches.contexts).get(k.task_id, k.now, memo_key) {
            return Ok(c);
        }
        let context = Context::from_pairs(self.writ_pairs(k)).map_err(|e| format!("context: {e}"))?;
        if memoized {
            lock(&self.caches.contexts).put(k.task_id, k.now, memo_key, context.clone());
        }
        Ok(context)
    }

    /// The request with Writ's keys, the caller's `claimed` object and the call's `input`
    /// (either may be absent): built straight into Cedar values; when that does not validate
    /// (the schema may want an entity or extension value written in Cedar's implicit form — a
    /// tool's `inputSchema` typed into Cedar), Cedar's JSON reader decides.
    pub(super) fn request_with_claims(
        &self,
        (principal, action, resource): (&EntityUid, &EntityUid, &EntityUid),
        k: &WritKeys<'_>,
        objects: [(&str, Option<&Map<String, Value>>); 2],
        direct_first: bool,
    ) -> Result<(Request, bool), String> {
        let schema = self.schema.as_ref();
        if direct_first && let Some((records, ty)) = direct_objects::<Cedar>(&objects) {
            let mut pairs = self.writ_pairs(k);
            pairs.extend(records);
            // Validation looks at types only (see `direct`): a shape that passed once passes again.
            let shape = self.shape((principal, action, resource), k, ty);
            let known = self.validated_before(shape.as_ref());
            if let Ok(context) = Context::from_pairs(pairs) {
                match Request::new(
                    principal.clone(),
                    action.clone(),
                    resource.clone(),
                    context,
                    schema.filter(|_| !known),
                ) {
                    Ok(r) => {
                        if let Some(s) = shape.filter(|_| !known) {
                            self.passed_validation(s);
                        }
                        return Ok((r, true));
                    }
                    // The principal, action or resource does not fit the schema: no
                    // reading of the context changes that, and Cedar's reader below
                    // would report the same (see `scope_error`).
                    Err(e) if is_scope_error(&e) => return Err(format!("request: {e}")),
                    Err(_) => {}
                }
            }
        }
        let mut json = self.writ_json(k);
        for (name, o) in objects {
            if let Some(o) = o {
                json.insert(name.into(), Value::Object(o.clone()));
            }
        }
        // Cedar's errors here quote the values (a call's arguments), which decisions and audit
        // events must not carry: they say what is wrong, not with what.
        let context = match Context::from_json_value(Value::Object(json), schema.map(|s| (s, action))) {
            Ok(context) => context,
            Err(_) => {
                return Err(scope_error((principal, action, resource), schema).unwrap_or_else(|| {
                    format!("context: the call's input or claimed context does not fit the types {action} declares")
                }));
            }
        };
        let request =
            Request::new(principal.clone(), action.clone(), resource.clone(), context, schema).map_err(|e| match e {
                RequestValidationError::InvalidContext(_) => format!(
                    "request: the call's input or claimed context does not fit the types {action} declares (an argument missing, unknown or of another type)"
                ),
                e => format!("request: {e}"),
            })?;
        Ok((request, false))
    }
}

/// Values named for the context.
type Named<V> = Vec<(String, V)>;

/// The caller's objects as records named for the context (`claimed`, `input`), and their
/// types (see [`direct`](super::direct)), when every one is plainly Cedar.
fn direct_objects<B: Build>(objects: &[(&str, Option<&Map<String, Value>>); 2]) -> Option<(Named<B::Value>, String)> {
    let mut ty = String::new();
    let mut records = Vec::with_capacity(2);
    for (name, o) in objects {
        let Some(o) = o else { continue };
        ty.push_str(name);
        let record = B::record(direct_record::<B>(o, &mut ty)?)?;
        records.push((name.to_string(), record));
    }
    Some((records, ty))
}

/// The type text of the caller's objects (empty when there are none), when every one is
/// plainly Cedar: what a request built from them on the direct path is validated by.
pub(super) fn direct_types(objects: &[(&str, Option<&Map<String, Value>>); 2]) -> Option<String> {
    direct_objects::<TypeOnly>(objects).map(|(_, ty)| ty)
}

/// Whether Cedar refused a request for its principal, action or resource (which Cedar checks
/// before the context), not for its context.
fn is_scope_error(e: &RequestValidationError) -> bool {
    matches!(
        e,
        RequestValidationError::UndeclaredAction(_)
            | RequestValidationError::UndeclaredPrincipalType(_)
            | RequestValidationError::UndeclaredResourceType(_)
            | RequestValidationError::InvalidPrincipalType(_)
            | RequestValidationError::InvalidResourceType(_)
    )
}

/// The problem with a request's principal, action or resource, if the schema refuses them
/// whatever the context: a request whose scope and context are both wrong is reported for its
/// scope on either path (Cedar validates the scope first).
pub(super) fn scope_error(
    (principal, action, resource): (&EntityUid, &EntityUid, &EntityUid),
    schema: Option<&Schema>,
) -> Option<String> {
    let e = Request::new(principal.clone(), action.clone(), resource.clone(), Context::empty(), Some(schema?)).err()?;
    is_scope_error(&e).then(|| format!("request: {e}"))
}

/// What the caller claims: its context text as a JSON object (`None` when empty), bounded in
/// size and nesting (the whole context nests one deeper: it sits under `claimed`).
pub(super) fn claimed(name: &str, text: &str) -> Result<Option<Map<String, Value>>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_CONTEXT_BYTES {
        return Err(format!("{name} is {} bytes, over the cap of {MAX_CONTEXT_BYTES}", text.len()));
    }
    let depth = super::load::nesting_depth(text);
    if depth + 1 > MAX_NESTING {
        return Err(format!("{name} nests {depth} deep, over the cap of {}", MAX_NESTING - 1));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err(format!("{name} is not a JSON object")),
        Err(e) => Err(format!("{name} is not JSON: {e}")),
    }
}
