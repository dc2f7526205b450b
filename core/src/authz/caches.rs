//! What a policy store keeps between requests, so a repeat builds nothing but the request:
//! per caller the principal's uid and per action its uid and policy slice; entity stores with
//! the caller merged in; parsed resource uids and type names; validated request shapes and
//! refused scopes; the overlays and slices of general evaluations. Every one is a bounded
//! map ([`BoundedMap`]): none grows with what callers send.

use super::context::{ContextMemo, WritKeys, agent_uid, scope_error};
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

/// A caller's proof, the agent that is the resource (delegation) if any, and the loaded
/// entities with both merged in.
type MergedStore = (&'static str, Option<EntityUid>, Arc<Entities>);

/// What the store keeps per caller (SPIFFE ID).
struct Caller {
    uid: EntityUid,
    /// By (proof, agent resource): the loaded entities with this caller (and that agent, when
    /// an agent is the resource) merged in; they depend only on those identities. Scanned:
    /// a caller has one or a few (a hash lookup per check cost more).
    stores: Vec<MergedStore>,
    /// By action name: its uid and (when the index is useful) its slice.
    actions: BoundedMap<String, (EntityUid, Option<Arc<Slice>>)>,
}

/// A request's shape as schema validation sees it (types, never values): principal type,
/// action, resource type, which of Writ's optional context keys it holds
/// (`identity_expires_at`, `task`, `approval`), and the type text of the caller's objects
/// (`claimed`, `input`; empty when there are none — see [`super::direct`]). Once a request of
/// one shape has passed, every later one would.
pub(super) type Shape = (EntityTypeName, EntityUid, EntityTypeName, (bool, bool, bool), String);

/// Whose general-evaluation slice a kept slice is: one principal's, or that of every principal
/// of a type the loaded entities do not hold and no policy scope names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum SliceOwner {
    Entity(EntityUid),
    Unseen(EntityTypeName),
}

/// What an overlaid entity store is kept by: the subject and the resource that carry
/// properties, each with its properties' text.
pub(super) type OverlayKey = (Option<(EntityUid, String)>, Option<(EntityUid, String)>);

/// A request's scope as schema validation sees it: principal type, action, resource type.
type Scope = (EntityTypeName, EntityUid, EntityTypeName);

pub(super) struct Caches {
    callers: Mutex<Callers>,
    /// Parsed resource uids by their text.
    uids: Mutex<BoundedMap<String, EntityUid>>,
    /// Parsed entity type names (of general evaluations' subjects and resources) by their text.
    type_names: Mutex<BoundedMap<String, EntityTypeName>>,
    /// Contexts of requests without caller context, for the current second.
    pub(super) contexts: Mutex<ContextMemo>,
    /// Request shapes that passed schema validation.
    validated: Mutex<BoundedMap<Shape, ()>>,
    /// Scopes (principal type, action, resource type) the schema refuses whatever the
    /// context, with the problem.
    refused: Mutex<BoundedMap<Scope, String>>,
    /// General evaluations: entity stores with a subject's and resource's properties overlaid,
    /// by those; each a copy of the loaded entity map, so as many as the merged-store budget
    /// allows.
    pub(super) overlays: Mutex<BoundedMap<OverlayKey, Arc<Entities>>>,
    /// General evaluations: policy slices by (principal, action).
    pub(super) general_slices: Mutex<BoundedMap<(SliceOwner, EntityUid), Arc<Slice>>>,
}

struct Callers {
    by_id: BoundedMap<String, Caller>,
    /// Merged stores held by all callers together, at most `merged_cap`: past it, every
    /// caller's are dropped (each holds a copy of the loaded entity map).
    merged: usize,
    merged_cap: usize,
}

impl Caches {
    /// Empty caches for a store of `entity_count` loaded entities.
    pub(super) fn new(entity_count: usize) -> Caches {
        // Each caller costs a few KiB besides its share of the entity map (its merged store's
        // own tables, its uid, its actions): at most as many callers as any other cache holds.
        let merged_cap = (MERGED_BUDGET / (entity_count + 1)).clamp(1, MAX_MEMO);
        Caches {
            callers: Mutex::new(Callers { by_id: BoundedMap::new(merged_cap), merged: 0, merged_cap }),
            uids: Mutex::new(BoundedMap::new(MAX_MEMO)),
            type_names: Mutex::new(BoundedMap::new(MAX_MEMO)),
            contexts: Mutex::new(ContextMemo::default()),
            validated: Mutex::new(BoundedMap::new(MAX_MEMO)),
            refused: Mutex::new(BoundedMap::new(MAX_MEMO)),
            overlays: Mutex::new(BoundedMap::new(merged_cap)),
            general_slices: Mutex::new(BoundedMap::new(MAX_MEMO)),
        }
    }
}

/// A caller's principal and action uids, its merged entity store, and the policy slice (when
/// indexed) of that action.
pub(super) type CallerView = (EntityUid, EntityUid, Arc<Entities>, Option<Arc<Slice>>);

impl PolicyStore {
    /// The shape of a request about to be built, for skipping validation of shapes that passed
    /// before; `None` when nothing is skipped: without a schema, or with verified OIDC claims
    /// (their keys differ from issuer to issuer: always validated).
    pub(super) fn shape(
        &self,
        (principal, action, resource): (&EntityUid, &EntityUid, &EntityUid),
        k: &WritKeys<'_>,
        caller_types: String,
    ) -> Option<Shape> {
        (self.schema.is_some() && k.oidc.is_none()).then(|| {
            let writ = (k.identity_expires_at.is_some(), k.task.is_some(), k.approval.is_some());
            (principal.type_name().clone(), action.clone(), resource.type_name().clone(), writ, caller_types)
        })
    }

    /// Whether a request of `shape` passed validation before.
    pub(super) fn validated_before(&self, shape: Option<&Shape>) -> bool {
        shape.is_some_and(|s| lock(&self.caches.validated).contains_key(s))
    }

    /// A request of `shape` passed validation.
    pub(super) fn passed_validation(&self, shape: Shape) {
        lock(&self.caches.validated).insert(shape, ());
    }

    /// The problem with a request's principal, action or resource the schema refused before
    /// (whatever the context: Cedar validates the scope first), if it did.
    pub(super) fn refused_before(
        &self,
        (principal, action, resource): (&EntityUid, &EntityUid, &EntityUid),
    ) -> Option<String> {
        self.schema.as_ref()?;
        let scope = (principal.type_name().clone(), action.clone(), resource.type_name().clone());
        lock(&self.caches.refused).get(&scope).cloned()
    }

    /// A request of this scope failed: remembered when the schema refuses the scope itself.
    pub(super) fn note_failure(&self, (principal, action, resource): (&EntityUid, &EntityUid, &EntityUid)) {
        if let Some(problem) = scope_error((principal, action, resource), self.schema.as_ref()) {
            let scope = (principal.type_name().clone(), action.clone(), resource.type_name().clone());
            lock(&self.caches.refused).insert(scope, problem);
        }
    }

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
            let uid = agent_uid(&self.agent_type, &who.spiffe_id);
            let caller = Caller { uid, stores: Vec::new(), actions: BoundedMap::new(MAX_PER_CALLER) };
            let Callers { by_id, merged, .. } = &mut *callers;
            // A full map drops callers: recount what the survivors hold.
            by_id.insert(who.spiffe_id.clone(), caller);
            *merged = by_id.values().map(|c| c.stores.len()).sum();
        }
        let Callers { by_id, merged, merged_cap } = &mut *callers;
        let caller = by_id.get_mut(who.spiffe_id.as_str()).ok_or("caller cache")?;
        let principal = caller.uid.clone();
        let agent = (resource.type_name() == &self.agent_type && resource != &principal).then(|| resource.clone());
        let cached = caller.stores.iter().find(|(p, r, _)| *p == proof && *r == agent).map(|(_, _, e)| e.clone());
        let entities = match cached {
            Some(e) => e,
            None if *merged >= *merged_cap => {
                // Over the budget of merged stores held together: every caller starts over.
                by_id.clear();
                *merged = 0;
                drop(callers);
                return self.caller(who, action_name, resource, indexed);
            }
            None => {
                let mut extra = vec![self.agent_entity(&principal, &who.spiffe_id, Some(proof))?];
                // An agent as the resource (delegation) gets its identity attributes the same way.
                if let Some(r) = &agent {
                    let id = r.id().unescaped().to_string();
                    extra.push(self.agent_entity(r, &id, None)?);
                }
                // Not re-validated against the schema per request: the loaded entities were at
                // load time, the identity attributes are strings, and policies were validated to
                // use only declared attributes.
                let merged_store =
                    Arc::new(self.entities.clone().upsert_entities(extra, None).map_err(|e| format!("entities: {e}"))?);
                if caller.stores.len() >= MAX_PER_CALLER {
                    *merged -= caller.stores.len();
                    caller.stores.clear();
                }
                caller.stores.push((proof, agent, merged_store.clone()));
                *merged += 1;
                merged_store
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

    /// The entity type name a text names, parsed once and kept; `None` when it is not one.
    pub(super) fn type_name(&self, text: &str) -> Option<EntityTypeName> {
        if let Some(ty) = lock(&self.caches.type_names).get(text) {
            return Some(ty.clone());
        }
        let ty = EntityTypeName::from_str(text).ok()?;
        lock(&self.caches.type_names).insert(text.to_string(), ty.clone());
        Some(ty)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Proof;

    fn who(n: usize) -> Identity {
        Identity {
            spiffe_id: format!("spiffe://acme.example/agent/{n}"),
            trust_domain: "acme.example".into(),
            expires_at: 3_000,
            thumbprint: String::new(),
            proof: Proof::X509Svid,
            claims: Default::default(),
        }
    }

    #[test]
    fn merged_stores_stay_within_the_budget_of_all_callers_together() {
        // 4095 loaded entities: at most 16 merged stores together.
        let docs: Vec<String> =
            (0..4095).map(|i| format!(r#"{{"uid":{{"type":"Doc","id":"d{i}"}},"attrs":{{}},"parents":[]}}"#)).collect();
        let store =
            PolicyStore::load("permit(principal, action, resource);", None, Some(&format!("[{}]", docs.join(","))))
                .unwrap();
        let cap = lock(&store.caches.callers).merged_cap;
        assert_eq!(cap, 16);
        let mut seen_a_reset = false;
        // Callers, and callers delegating to many agents (each agent resource its own store).
        for step in 0..200 {
            let caller = who(step % 7);
            let agent = EntityUid::from_type_name_and_id(store.agent_type.clone(), EntityId::new(format!("a{step}")));
            let (principal, _, entities, _) = store.caller(&caller, "read", &agent, false).unwrap();
            assert!(entities.get(&principal).is_some(), "the caller is merged into its store");
            assert!(entities.get(&agent).is_some(), "the agent resource is merged in too");
            let callers = lock(&store.caches.callers);
            let held: usize = callers.by_id.values().map(|c| c.stores.len()).sum();
            assert_eq!(callers.merged, held, "the count is what the callers hold");
            assert!(held <= cap, "{held} merged stores held, over the budget of {cap}");
            seen_a_reset |= held < cap && step >= cap;
        }
        assert!(seen_a_reset, "200 distinct stores went through a budget of 16");
    }
}
