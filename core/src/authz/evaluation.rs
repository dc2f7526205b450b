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

use super::caches::SliceOwner;
use super::context::{WritKeys, claimed, task_stamp};
use super::index::{Slice, Verdict};
use super::store::{PolicyStore, RequestEnv, lock};
use crate::spiffe_id::clip;
use crate::{Decision, Evaluation};
use cedar_policy::{Entities, EntityId, EntityUid};
use serde_json::{Map, Value};
use std::sync::Arc;

impl PolicyStore {
    fn uid(&self, what: &str, type_name: &str, id: &str) -> Result<EntityUid, String> {
        let ty = self
            .type_name(type_name)
            .ok_or_else(|| format!("{what} type `{}` is not a Cedar entity type name", clip(type_name)))?;
        Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(id)))
    }

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
        let principal = self.uid("subject", &e.subject.type_name, &e.subject.id)?;
        let resource = self.uid("resource", &e.resource.type_name, &e.resource.id)?;
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
        let key = (
            subject.is_some().then(|| (principal.clone(), e.subject.properties.clone())),
            resource_props.is_some().then(|| (resource.clone(), e.resource.properties.clone())),
        );
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

    /// The policies that can apply to `principal` doing `action` (kept per pair). A principal
    /// the loaded entities do not hold and no policy scope names has no ancestors and fits a
    /// scope only by its type: every such principal of one type shares one slice per action.
    fn general_slice(&self, principal: &EntityUid, action: &EntityUid) -> Result<Option<Arc<Slice>>, String> {
        if !self.index.useful {
            return Ok(None);
        }
        let unseen = self.entities.get(principal).is_none() && !self.index.names_principal(principal);
        let owner = if unseen {
            SliceOwner::Unseen(principal.type_name().clone())
        } else {
            SliceOwner::Entity(principal.clone())
        };
        let key = (owner, action.clone());
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
/// Writ's record of it before deciding: what [`claimed`] then reads as the context's `task_id`
/// (the last such key, when it is a string), found without building the rest of the context.
pub fn task_named(context: &str) -> Option<String> {
    use serde::Deserializer as _;
    if !context.contains("\"task_id\"")
        || context.len() > super::MAX_CONTEXT_BYTES
        || super::load::nesting_depth(context) + 1 > super::MAX_NESTING
    {
        return None;
    }
    let mut json = serde_json::Deserializer::from_str(context);
    let id = json.deserialize_map(LastTaskId).ok()?;
    json.end().ok()?;
    id.filter(|id| !id.is_empty())
}

/// Reads a JSON object for its last `task_id` key's value when that is a string, skipping every
/// other value without building it.
struct LastTaskId;

impl<'de> serde::de::Visitor<'de> for LastTaskId {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        let mut id = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "task_id" {
                id = map.next_value::<Value>()?.as_str().map(str::to_string);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What `task_named` was: the whole context read as [`claimed`] reads it, when its text
    /// names the key unescaped.
    fn by_claimed(context: &str) -> Option<String> {
        if !context.contains("\"task_id\"") {
            return None;
        }
        let id = claimed_task_id(claimed("context", context).ok()?.as_ref());
        (!id.is_empty()).then_some(id)
    }

    fn value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("1".to_string()),
            Just("null".to_string()),
            Just("true".to_string()),
            Just("\"t\"".to_string()),
            Just("\"\"".to_string()),
            Just("\"t\\u0031\"".to_string()),
            Just("1.5".to_string()),
        ];
        leaf.prop_recursive(4, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec((key(), inner), 0..3).prop_map(|kv| {
                    format!("{{{}}}", kv.into_iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(","))
                }),
            ]
        })
    }

    fn key() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("\"task_id\""), Just("\"task\\u005fid\""), Just("\"other\""), Just("\"task\"")]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// The task id found without building the context is the one the context holds, for
        /// objects with the key repeated, escaped, nested, of other types, and for text that is
        /// not an object or not JSON at all.
        #[test]
        fn task_named_reads_what_claimed_reads(
            fields in proptest::collection::vec((key(), value()), 0..5),
            before in prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("[")],
            after in prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("x"), 1 => Just("}")],
        ) {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            let text = format!("{before}{{{}}}{after}", body.join(","));
            prop_assert_eq!(task_named(&text), by_claimed(&text), "{}", text);
        }
    }

    #[test]
    fn task_named_takes_the_last_string_and_refuses_what_claimed_refuses() {
        assert_eq!(task_named(r#"{"task_id":"a","task_id":"b"}"#).as_deref(), Some("b"));
        assert_eq!(task_named(r#"{"task_id":"a","task_id":1}"#), None);
        assert_eq!(task_named(r#"{"task_id":"a"} x"#), None);
        let deep = format!(r#"{{"task_id":"a","n":{}1{}}}"#, "[".repeat(40), "]".repeat(40));
        assert_eq!(task_named(&deep), None);
        assert_eq!(by_claimed(&deep), None);
    }
}
