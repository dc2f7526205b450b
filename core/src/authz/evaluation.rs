//! General (AuthZEN-shaped) evaluation: principals that are not attested agents — an AuthZEN
//! subject, action and resource, each with properties — decided by the same loaded policies,
//! index and decision rules as `check`.
//!
//! The mapping, exactly (AuthZEN Authorization API 1.0 onto Cedar): principal
//! `<subject.type>::"<subject.id>"`, its attributes the loaded entity's overlaid by
//! `subject.properties`; action `Action::"<action.name>"`; resource likewise from `resource`;
//! context the request's `context` object plus, when the action has properties, the key
//! `action` holding them.

use super::context::direct_context;
use super::index::{Slice, Verdict};
use super::load::nesting_depth;
use super::store::{PolicyStore, lock};
use super::{MAX_CONTEXT_BYTES, MAX_NESTING};
use crate::spiffe_id::clip;
use crate::{Decision, Evaluation};
use cedar_policy::{Context, Entities, EntityId, EntityTypeName, EntityUid, Request};
use serde_json::{Map, Value};
use std::str::FromStr as _;
use std::sync::Arc;

/// A JSON object from `text` (empty → none), bounded like every input.
fn object(what: &str, text: &str) -> Result<Option<Map<String, Value>>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_CONTEXT_BYTES {
        return Err(format!("{what} is {} bytes, over the cap of {MAX_CONTEXT_BYTES}", text.len()));
    }
    let depth = nesting_depth(text);
    if depth > MAX_NESTING {
        return Err(format!("{what} nests {depth} deep, over the cap of {MAX_NESTING}"));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err(format!("{what} is not a JSON object")),
        Err(e) => Err(format!("{what} is not JSON: {e}")),
    }
}

fn uid(what: &str, type_name: &str, id: &str) -> Result<EntityUid, String> {
    let ty = EntityTypeName::from_str(type_name)
        .map_err(|_| format!("{what} type `{}` is not a Cedar entity type name", clip(type_name)))?;
    Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(id)))
}

impl PolicyStore {
    /// Decide a general evaluation. Never fails: problems deny, listed in `errors`. With the
    /// decision memo on, an identical evaluation (every field's text, and the lifetime cap) is
    /// answered from memory: nothing else enters the decision.
    pub fn evaluate(&self, e: &Evaluation, default_ttl: u32) -> Decision {
        self.evaluate_at(e, default_ttl, None)
    }

    /// [`evaluate`](Self::evaluate) where the context's `now`, when the caller sent one, is
    /// replaced by Writ's clock: a caller cannot choose the time a policy sees.
    pub fn evaluate_at(&self, e: &Evaluation, default_ttl: u32, now: Option<u64>) -> Decision {
        // The memo keys on the time only when the caller's context may hold `now`.
        let keyed_now = now.filter(|_| e.context.contains("\"now\""));
        if let Some(hit) = self.memo.as_ref().and_then(|m| lock(m).get_general(e, default_ttl, keyed_now)) {
            return hit;
        }
        let d = self.decision(self.evaluate_general(e, true, now), default_ttl);
        if let Some(m) = &self.memo {
            lock(m).put_general(e, default_ttl, keyed_now, &d);
        }
        d
    }

    /// [`evaluate`](Self::evaluate) evaluating every policy, without the index or the memo:
    /// the reference the index is tested against.
    pub fn evaluate_unindexed(&self, e: &Evaluation, default_ttl: u32) -> Decision {
        self.decision(self.evaluate_general(e, false, None), default_ttl)
    }

    fn evaluate_general(&self, e: &Evaluation, indexed: bool, now: Option<u64>) -> Result<Verdict, String> {
        let principal = uid("subject", &e.subject.type_name, &e.subject.id)?;
        let resource = uid("resource", &e.resource.type_name, &e.resource.id)?;
        let action = EntityUid::from_type_name_and_id(self.action_type.clone(), EntityId::new(&e.action));
        let subject_props = object("subject.properties", &e.subject.properties)?;
        let resource_props = object("resource.properties", &e.resource.properties)?;
        let mut context = object("context", &e.context)?.unwrap_or_default();
        if let Some(now) = now
            && context.contains_key("now")
        {
            context.insert("now".into(), Value::from(i64::try_from(now).unwrap_or(i64::MAX)));
        }
        if let Some(props) = object("action.properties", &e.action_properties)? {
            context.insert("action".into(), Value::Object(props));
        }
        let entities = self.overlaid(&principal, subject_props, &resource, resource_props, e)?;
        let slice = if indexed { self.general_slice(&principal, &action)? } else { None };
        let schema = self.schema.as_ref();
        // Plain JSON straight into Cedar values; Cedar's reader whenever that does not validate.
        let direct = direct_context(&context)
            .and_then(|c| Request::new(principal.clone(), action.clone(), resource.clone(), c, schema).ok());
        let request = match direct {
            Some(r) => r,
            None => {
                let c = Context::from_json_value(Value::Object(context), schema.map(|s| (s, &action)))
                    .map_err(|e| format!("context: {e}"))?;
                Request::new(principal, action, resource.clone(), c, schema).map_err(|e| format!("request: {e}"))?
            }
        };
        Ok(self.run(&request, &resource, slice.as_deref(), &entities))
    }

    /// The loaded entities with the subject and resource overlaid by their properties (kept
    /// for repeats); the loaded store itself when neither has properties.
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
        let key = format!("{principal}\u{0}{}\u{0}{resource}\u{0}{}", e.subject.properties, e.resource.properties);
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
