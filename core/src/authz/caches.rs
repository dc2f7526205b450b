//! What a policy store keeps between requests, so a repeat builds nothing but the request:
//! per caller the principal's uid and per action its uid and policy slice; entity stores with
//! the caller merged in; parsed resource uids; validated request shapes; the overlays and
//! slices of general evaluations. Every one is a [`BoundedMap`]: none grows with what callers
//! send.

use super::context::ContextMemo;
use super::index::Slice;
use super::store::{PolicyStore, lock};
use crate::Identity;
use crate::bounded::BoundedMap;
use crate::spiffe_id::clip;
use cedar_policy::{Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use std::collections::{HashMap, HashSet};
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};

/// Entity map entries all cached merged stores may hold together (each merged store is a
/// copy of the loaded store's map, sharing its entities): the cache keeps at most this many
/// divided by the store's size, and at least one.
const MERGED_BUDGET: usize = 1 << 16;

/// Actions kept per caller before that caller's cache starts over.
const MAX_PER_CALLER: usize = 256;

/// Entries of every other cache.
pub(super) const MAX_MEMO: usize = 4096;

/// What the store keeps per caller (SPIFFE ID).
struct Caller {
    /// Names this caller's merged stores in [`Caches::stores`].
    serial: u64,
    uid: EntityUid,
    /// By action name: its uid and (when the index is useful) its slice.
    actions: BoundedMap<String, (EntityUid, Option<Arc<Slice>>)>,
}

/// A merged store's key: the caller's serial, its proof, and the agent that is the resource
/// (delegation), if any. The store depends only on those identities.
type StoreKey = (u64, &'static str, Option<EntityUid>);

pub(super) struct Caches {
    callers: Mutex<Callers>,
    /// The loaded entities with a caller (and an agent resource) merged in.
    stores: Mutex<BoundedMap<StoreKey, Arc<Entities>>>,
    /// Parsed resource uids by their text.
    uids: Mutex<BoundedMap<String, EntityUid>>,
    /// Contexts of requests without caller context, for the current second.
    pub(super) contexts: Mutex<ContextMemo>,
    /// (action, resource type) pairs whose Writ-only-context requests passed schema validation.
    pub(super) validated: Mutex<BoundedMap<(EntityUid, EntityTypeName), ()>>,
    /// General evaluations: entity stores with a subject's and resource's properties overlaid,
    /// by those.
    pub(super) overlays: Mutex<BoundedMap<String, Arc<Entities>>>,
    /// General evaluations: policy slices by (principal, action).
    pub(super) general_slices: Mutex<BoundedMap<(EntityUid, EntityUid), Arc<Slice>>>,
}

struct Callers {
    by_id: BoundedMap<String, Caller>,
    next_serial: u64,
}

impl Caches {
    /// Empty caches for a store of `entity_count` loaded entities.
    pub(super) fn new(entity_count: usize) -> Caches {
        let merged_cap = (MERGED_BUDGET / (entity_count + 1)).max(1);
        Caches {
            callers: Mutex::new(Callers { by_id: BoundedMap::new(merged_cap), next_serial: 0 }),
            stores: Mutex::new(BoundedMap::new(merged_cap)),
            uids: Mutex::new(BoundedMap::new(MAX_MEMO)),
            contexts: Mutex::new(ContextMemo::default()),
            validated: Mutex::new(BoundedMap::new(MAX_MEMO)),
            overlays: Mutex::new(BoundedMap::new(MAX_MEMO)),
            general_slices: Mutex::new(BoundedMap::new(MAX_MEMO)),
        }
    }
}

/// A caller's principal and action uids, its merged entity store, and the policy slice (when
/// indexed) of that action.
pub(super) type CallerView = (EntityUid, EntityUid, Arc<Entities>, Option<Arc<Slice>>);

impl PolicyStore {
    /// The principal's and action's uids, the entity store with the caller merged in, and the
    /// policy slice (when `indexed`): built on a caller's first use and kept.
    pub(super) fn caller(
        &self,
        who: &Identity,
        action_name: &str,
        resource: &EntityUid,
        indexed: bool,
    ) -> Result<CallerView, String> {
        let proof = who.proof.as_str();
        let mut callers = lock(&self.caches.callers);
        if !callers.by_id.contains_key(who.spiffe_id.as_str()) {
            let uid = EntityUid::from_type_name_and_id(self.agent_type.clone(), EntityId::new(&who.spiffe_id));
            let serial = callers.next_serial;
            callers.next_serial += 1;
            callers
                .by_id
                .insert(who.spiffe_id.clone(), Caller { serial, uid, actions: BoundedMap::new(MAX_PER_CALLER) });
        }
        let caller = callers.by_id.get_mut(who.spiffe_id.as_str()).ok_or("caller cache")?;
        let principal = caller.uid.clone();
        let agent = (resource.type_name() == &self.agent_type && resource != &principal).then(|| resource.clone());
        let key: StoreKey = (caller.serial, proof, agent);
        let cached = lock(&self.caches.stores).get(&key).cloned();
        let entities = match cached {
            Some(e) => e,
            None => {
                let mut extra = vec![self.agent_entity(&principal, &who.spiffe_id, Some(proof))?];
                // An agent as the resource (delegation) gets its identity attributes the same way.
                if let Some(r) = &key.2 {
                    let id = r.id().unescaped().to_string();
                    extra.push(self.agent_entity(r, &id, None)?);
                }
                // Not re-validated against the schema per request: the loaded entities were at
                // load time, the identity attributes are strings, and policies were validated to
                // use only declared attributes.
                let merged =
                    Arc::new(self.entities.clone().upsert_entities(extra, None).map_err(|e| format!("entities: {e}"))?);
                lock(&self.caches.stores).insert(key, merged.clone());
                merged
            }
        };
        let use_index = indexed && self.index.useful;
        if let Some((uid, slice)) = caller.actions.get(action_name)
            && (slice.is_some() || !use_index)
        {
            return Ok((principal, uid.clone(), entities, slice.clone().filter(|_| use_index)));
        }
        let action = EntityUid::from_type_name_and_id(self.action_type.clone(), EntityId::new(action_name));
        let slice = if use_index { Some(Arc::new(self.index.slice(&principal, &action, &entities)?)) } else { None };
        caller.actions.insert(action_name.to_string(), (action.clone(), slice.clone()));
        Ok((principal, action, entities, slice))
    }

    /// The uid a resource text names, parsed once and kept.
    pub(super) fn resource_uid(&self, text: &str) -> Result<EntityUid, String> {
        if let Some(uid) = lock(&self.caches.uids).get(text) {
            return Ok(uid.clone());
        }
        let uid = EntityUid::from_str(text)
            .map_err(|e| format!("resource `{}` is not an entity uid like `Type::\"id\"`: {e}", clip(text)))?;
        lock(&self.caches.uids).insert(text.to_string(), uid.clone());
        Ok(uid)
    }

    /// An `Agent` entity for a SPIFFE ID: the loaded entity of that uid (if any) with the
    /// identity's attributes set over it.
    fn agent_entity(&self, uid: &EntityUid, spiffe_id: &str, proof: Option<&str>) -> Result<Entity, String> {
        let (mut attrs, parents) = match self.entities.get(uid) {
            Some(e) => {
                let (_, attrs, parents) = e.clone().into_inner();
                (attrs, parents)
            }
            None => (HashMap::new(), HashSet::new()),
        };
        let rest = spiffe_id.strip_prefix("spiffe://").unwrap_or(spiffe_id);
        let (td, path) = rest.find('/').map_or((rest, ""), |i| (&rest[..i], &rest[i..]));
        attrs.insert("trust_domain".into(), RestrictedExpression::new_string(td.into()));
        attrs.insert("path".into(), RestrictedExpression::new_string(path.into()));
        if let Some(p) = proof {
            attrs.insert("proof".into(), RestrictedExpression::new_string(p.into()));
        }
        Entity::new(uid.clone(), attrs, parents).map_err(|e| format!("agent entity `{}`: {e}", clip(spiffe_id)))
    }
}
