//! General (AuthZEN-shaped) evaluation: principals that are not attested agents — an AuthZEN
//! subject, action and resource, each with properties — decided by the same loaded policies,
//! index and decision rules as `check`.
//!
//! The mapping, exactly (AuthZEN Authorization API 1.0 onto Cedar): principal
//! `<subject.type>::"<subject.id>"`, its attributes the loaded entity's overlaid by
//! `subject.properties`; action `Action::"<action.name>"`; resource likewise from `resource`;
//! context Writ's keys (`now` from Writ's clock, `delegation_depth` 0, `task_id` the task the
//! request's context names, `task` Writ's record of it while it is open) and, under `claimed`,
//! the request's `context` object plus, when the action has properties, the key `action`
//! holding them: a PEP says what it saw, it cannot set Writ's keys.

use super::context::{WritKeys, claimed, task_stamp};
use super::index::{Slice, Verdict};
use super::store::{PolicyStore, RequestEnv, lock};
use crate::spiffe_id::clip;
use crate::{Decision, Evaluation};
use cedar_policy::{Entities, EntityId, EntityTypeName, EntityUid};
use serde_json::{Map, Value};
use std::str::FromStr as _;
use std::sync::Arc;

fn uid(what: &str, type_name: &str, id: &str) -> Result<EntityUid, String> {
    let ty = EntityTypeName::from_str(type_name)
        .map_err(|_| format!("{what} type `{}` is not a Cedar entity type name", clip(type_name)))?;
    Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(id)))
}

impl PolicyStore {
    /// Decide a general evaluation at time 0 with nothing verified (tests and tools; the
    /// component uses [`evaluate_in`](Self::evaluate_in)). Never fails: problems deny.
    pub fn evaluate(&self, e: &Evaluation, default_ttl: u32) -> Decision {
        self.evaluate_in(e, default_ttl, &RequestEnv::default())
    }

    /// Decide a general evaluation at `env.now` (Writ's clock), with `env.task` Writ's record of
    /// the task the request's context names. Never fails: problems deny, listed in `errors`.
    /// With the decision memo on, an identical evaluation (every field's text, the lifetime
    /// cap, the task record, and the second when a policy reads `now`) is answered from memory.
    pub fn evaluate_in(&self, e: &Evaluation, default_ttl: u32, env: &RequestEnv<'_>) -> Decision {
        let at = (default_ttl, self.reads_any.now.then_some(env.now), task_stamp(env.task));
        if let Some(hit) = self.memo.as_ref().and_then(|m| lock(m).get_general(e, at)) {
            return hit;
        }
        let d = self.decision(self.evaluate_general(e, true, env), default_ttl);
        if let Some(m) = &self.memo {
            lock(m).put_general(e, at, &d);
        }
        d
    }

    /// [`evaluate`](Self::evaluate) evaluating every policy, without the index or the memo:
    /// the reference the index is tested against.
    pub fn evaluate_unindexed(&self, e: &Evaluation, default_ttl: u32, env: &RequestEnv<'_>) -> Decision {
        self.decision(self.evaluate_general(e, false, env), default_ttl)
    }

    fn evaluate_general(&self, e: &Evaluation, indexed: bool, env: &RequestEnv<'_>) -> Result<Verdict, String> {
        let principal = uid("subject", &e.subject.type_name, &e.subject.id)?;
        let resource = uid("resource", &e.resource.type_name, &e.resource.id)?;
        let action = EntityUid::from_type_name_and_id(self.action_type.clone(), EntityId::new(&e.action));
        let subject_props = claimed("subject.properties", &e.subject.properties)?;
        let resource_props = claimed("resource.properties", &e.resource.properties)?;
        let mut claims = claimed("context", &e.context)?;
        if let Some(props) = claimed("action.properties", &e.action_properties)? {
            claims.get_or_insert_with(Map::new).insert("action".into(), Value::Object(props));
        }
        let task_id = claimed_task_id(claims.as_ref());
        let keys = WritKeys {
            task_id: &task_id,
            now: env.now,
            delegation_depth: 0,
            identity_expires_at: None,
            task: env.task.filter(|t| t.id == task_id),
            approval: None,
            oidc: None,
        };
        let entities = self.overlaid(&principal, subject_props, &resource, resource_props, e)?;
        let slice = if indexed { self.general_slice(&principal, &action)? } else { None };
        let objects = [("claimed", claims.as_ref()), ("input", None)];
        self.verdict((principal, action, &resource), &keys, objects, slice.as_deref(), &entities, true)
    }

    /// The loaded entities with the subject and resource overlaid by their properties (kept
    /// for repeats, by the overlaid entities and their properties); the loaded store itself
    /// when neither has properties.
    fn overlaid(
        &self,
        principal: &EntityUid,
        subject: Option<Map<String, Value>>,
        resource: &EntityUid,
        resource_props: Option<Map<String, Value>>,
        e: &Evaluation,
    ) -> Result<Arc<Entities>, String> {
        if subject.is_none() && resource_props.is_none() {
            return Ok(self.loaded.clone());
        }
        // Keyed by the entities that carry properties only: a subject's overlay serves every
        // resource it names without properties (and the other way round).
        let mut key = String::new();
        if subject.is_some() {
            key = format!("{principal}\u{0}{}", e.subject.properties);
        }
        key.push('\u{1}');
        if resource_props.is_some() {
            key.push_str(&format!("{resource}\u{0}{}", e.resource.properties));
        }
        if let Some(hit) = lock(&self.caches.overlays).get(&key) {
            return Ok(hit.clone());
        }
        let mut json = Vec::new();
        for (uid, props) in [(principal, subject), (resource, resource_props)] {
            let Some(props) = props else { continue };
            // The loaded entity's attributes and parents, its attributes overlaid.
            let mut entity = match self.entities.get(uid) {
                Some(loaded) => loaded.to_json_value().map_err(|e| format!("entity `{uid}`: {e}"))?,
                None => {
                    serde_json::json!({ "uid": { "type": uid.type_name().to_string(), "id": uid.id().unescaped() }, "attrs": {}, "parents": [] })
                }
            };
            if let Some(attrs) = entity.get_mut("attrs").and_then(Value::as_object_mut) {
                attrs.extend(props);
            }
            json.push(entity);
        }
        let extra = Entities::from_json_value(Value::Array(json), self.schema.as_ref())
            .map_err(|e| format!("properties: {e}"))?;
        let merged = Arc::new(
            self.entities
                .clone()
                .upsert_entities(extra, self.schema.as_ref())
                .map_err(|e| format!("properties: {e}"))?,
        );
        lock(&self.caches.overlays).insert(key, merged.clone());
        Ok(merged)
    }

    /// The policies that can apply to `principal` doing `action` (kept per pair).
    fn general_slice(&self, principal: &EntityUid, action: &EntityUid) -> Result<Option<Arc<Slice>>, String> {
        if !self.index.useful {
            return Ok(None);
        }
        let key = (principal.clone(), action.clone());
        if let Some(s) = lock(&self.caches.general_slices).get(&key) {
            return Ok(Some(s.clone()));
        }
        let slice = Arc::new(self.index.slice(principal, action, &self.entities)?);
        lock(&self.caches.general_slices).insert(key, slice.clone());
        Ok(Some(slice))
    }
}

/// The task an evaluation's context names (`task_id`, a string), or none.
fn claimed_task_id(claims: Option<&Map<String, Value>>) -> String {
    claims.and_then(|c| c.get("task_id")).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// The task an AuthZEN request's context text names (`task_id`), for the caller to look up
/// Writ's record of it before deciding.
pub fn task_named(context: &str) -> Option<String> {
    if !context.contains("\"task_id\"") {
        return None;
    }
    let id = claimed_task_id(claimed("context", context).ok()?.as_ref());
    (!id.is_empty()).then_some(id)
}
