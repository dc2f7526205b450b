//! The loaded policy store and its decision path: an attested identity's intent → the
//! decision memo, the caller's slice, the request, Cedar and the index → a decision with reasons
//! and the lifetime cap.

use super::caches::Caches;
use super::context::{WritKeys, claimed, direct_types, task_stamp};
use super::index::{PolicyIndex, Slice, Verdict};
use super::view::{ContextSource, Env};
use crate::approval::Approval;
use crate::memo::{DecisionMemo, Key, PolicyReads, Reads};
use crate::{Decision, Identity, Intent, Task};
use cedar_policy::{Authorizer, Entities, EntityTypeName, EntityUid, PolicyId, PolicySet, Request, Schema};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A loaded, validated policy set and everything a decision needs, kept across calls.
pub struct PolicyStore {
    pub(super) policies: PolicySet,
    pub(super) index: PolicyIndex,
    pub(super) schema: Option<Schema>,
    pub(super) entities: Entities,
    /// `@ttl` of each permit policy that has one, seconds.
    pub(super) ttls: HashMap<PolicyId, u32>,
    /// `@max_calls` of each permit policy that has one: calls it may allow per task.
    pub(super) budgets: HashMap<PolicyId, u32>,
    pub(super) authorizer: Authorizer,
    /// What is kept between requests: uids, merged entity stores, slices, contexts.
    pub(super) caches: Caches,
    /// Decisions of requests already answered (see [`crate::memo`]); `None` when turned off.
    pub(super) memo: Option<Mutex<DecisionMemo>>,
    /// Per policy: the action and resource type its scope names, and what it can read of
    /// Writ's context keys.
    pub(super) reads: Vec<PolicyReads>,
    /// What any policy reads of Writ's context keys.
    pub(super) reads_any: Reads,
    /// The loaded entities, shared (general evaluations without properties use them as is).
    pub(super) loaded: Arc<Entities>,
    pub(super) agent_type: EntityTypeName,
    pub(super) action_type: EntityTypeName,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore").field("policies", &self.len()).finish()
    }
}

impl PolicyStore {
    /// How many policies are loaded.
    pub fn len(&self) -> usize {
        self.policies.policies().count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `@ttl` of a policy, if it has one.
    pub fn ttl(&self, id: &str) -> Option<u32> {
        self.ttls.get(&PolicyId::new(id)).copied()
    }

    /// The `@max_calls` budget of a policy (calls it may allow per task), if it has one.
    pub fn max_calls(&self, id: &str) -> Option<u32> {
        if self.budgets.is_empty() {
            return None;
        }
        self.budgets.get(&PolicyId::new(id)).copied()
    }

    /// Decide whether `who` may do `what` now. Never fails: problems deny, listed in `errors`.
    /// Evaluates only the policies the index says can apply.
    pub fn check(&self, who: &Identity, what: &Intent, env: &RequestEnv<'_>, default_ttl: u32) -> Decision {
        self.decide(who, what, env, default_ttl, true)
    }

    /// [`check`](Self::check) evaluating every policy, without the index: the reference the
    /// index is tested against.
    pub fn check_unindexed(&self, who: &Identity, what: &Intent, env: &RequestEnv<'_>, default_ttl: u32) -> Decision {
        self.decide(who, what, env, default_ttl, false)
    }

    /// Whether `who` could be allowed `what` whatever its input: the decision with no
    /// `context.input` when it allows, or when a forbid decides it; else allow (reason
    /// [`DECIDED_PER_CALL`]) when some permit that can apply reads `context.input` — each call
    /// is still decided on its own arguments. What a tool list shows an agent.
    pub fn listable(&self, who: &Identity, what: &Intent, env: &RequestEnv<'_>, default_ttl: u32) -> Decision {
        // The bare request is not a call: with a schema it would fail validation (a tool's
        // context wants its input), so it is evaluated unvalidated and not remembered.
        let bare = Intent { input: String::new(), ..what.clone() };
        let d = self.decision(self.evaluate_intent(who, &bare, env, true, false), default_ttl);
        if d.allow || !d.reasons.is_empty() {
            return d;
        }
        let per_call = self.resource_uid(&what.resource).and_then(|resource| {
            let (_, _, _, slice) = self.caller(who, &what.action, &resource, true)?;
            Ok(slice.is_some_and(|s| s.permit_reads_input(&resource)))
        });
        if per_call == Ok(true) {
            return Decision { allow: true, reasons: vec![DECIDED_PER_CALL.into()], errors: d.errors, max_ttl_secs: 0 };
        }
        d
    }

    /// What the policies that can apply to `action` on `resource` read of Writ's context keys
    /// (what the decision memo keys its requests on).
    pub fn reads(&self, action: &str, resource: &str) -> Reads {
        crate::memo::reads_for(&self.reads, action, resource)
    }

    /// Turn the decision memo on (with a hash seed) or off; either way it starts empty.
    pub fn set_memo(&mut self, seed: Option<u64>) {
        self.memo = seed
            .map(|seed| Mutex::new(DecisionMemo::new(self.reads.clone(), seed).keeping_input(self.schema.is_some())));
    }

    fn decide(&self, who: &Identity, what: &Intent, env: &RequestEnv<'_>, default_ttl: u32, indexed: bool) -> Decision {
        // A decision resting on an approval is never remembered: an approval is single-use.
        let memo = self.memo.as_ref().filter(|_| indexed && env.approval.is_none());
        let key = Key {
            spiffe_id: &who.spiffe_id,
            proof: who.proof.as_str(),
            action: &what.action,
            resource: &what.resource,
            context: &what.context,
            task_id: &what.task_id,
            now: env.now,
            delegation_depth: env.delegation_depth,
            identity_expires_at: who.expires_at,
            task_stamp: task_stamp(env.task),
            ttl_cap: default_ttl,
            claims: &who.claims,
            input: &what.input,
        };
        if let Some(hit) = memo.and_then(|m| lock(m).get(&key)) {
            return hit;
        }
        let decision = self.decision(self.evaluate_intent(who, what, env, indexed, true), default_ttl);
        if let Some(m) = memo {
            lock(m).put(&key, &decision);
        }
        decision
    }

    fn evaluate_intent(
        &self,
        who: &Identity,
        what: &Intent,
        env: &RequestEnv<'_>,
        indexed: bool,
        validated: bool,
    ) -> Result<Verdict, String> {
        let resource = self.resource_uid(&what.resource)?;
        let (principal, action, entities, slice) = self.caller(who, &what.action, &resource, indexed)?;
        let keys = WritKeys {
            task_id: &what.task_id,
            now: env.now,
            delegation_depth: env.delegation_depth,
            identity_expires_at: Some(who.expires_at),
            task: env.task,
            approval: env.approval,
            oidc: (!who.claims.is_empty()).then_some(&who.claims),
        };
        let claims = claimed("context", &what.context)?;
        let input = claimed("input", &what.input)?;
        let objects = [("claimed", claims.as_ref()), ("input", input.as_ref())];
        self.verdict((principal, action, &resource), &keys, objects, slice.as_deref(), &entities, validated)
    }

    /// The verdict on a request given by its parts: its principal, action and resource, Writ's
    /// context keys and the caller's objects (`claimed`, `input`; either may be absent), over
    /// `slice` (every policy when there is none) and `entities`.
    ///
    /// When the slice's compiled conditions and index settle it and the request needs no
    /// schema validation (no schema, or its shape passed before: see `caches`), no Cedar
    /// request or context is built at all. Otherwise the request is built — the caller's plain
    /// JSON straight into Cedar values (on the indexed path), else through Cedar's JSON reader
    /// — and validated against the schema (a Writ-only context only when `validated`).
    pub(super) fn verdict(
        &self,
        (principal, action, resource): (EntityUid, EntityUid, &EntityUid),
        keys: &WritKeys<'_>,
        objects: [(&str, Option<&Map<String, Value>>); 2],
        slice: Option<&Slice>,
        entities: &Entities,
        validated: bool,
    ) -> Result<Verdict, String> {
        let parts = || ContextSource::Parts { keys, claimed: objects[0].1, input: objects[1].1 };
        let has_objects = objects.iter().any(|(_, o)| o.is_some());
        let scope = (&principal, &action, resource);
        // Caller objects are always validated; a Writ-only context when asked.
        let checked = self.schema.is_some() && (has_objects || validated);
        if let Some(s) = slice.filter(|s| !s.needs_cedar())
            && let Some(caller_types) = direct_types(&objects)
            && (!checked || self.validated_before(self.shape(scope, keys, caller_types).as_ref()))
            && let Some(v) = s.decide_compiled(&Env::new((&principal, resource), parts(), entities, &self.agent_type))
        {
            return Ok(v);
        }
        if checked && let Some(problem) = self.refused_before(scope) {
            return Err(problem);
        }
        let built = if has_objects {
            // Plain JSON (no `__entity`/`__extn` escapes, whole numbers) is built straight
            // into Cedar values — Cedar's own JSON reader costs tens of µs on a small object
            // — on the indexed path; the reference path always uses Cedar's reader.
            self.request_with_claims(scope, keys, objects, slice.is_some())
        } else {
            let context = self.writ_context(keys)?;
            // With a schema, a request is validated: its principal and resource types against
            // the action, its context against the action's context type. A Writ-only context of
            // one shape (with or without a task record, an approval) has the same keys and
            // types, so once a request of this action, resource type and shape has passed,
            // every later one would: validation is skipped for those (~1.7 µs natively).
            let shape = if validated { self.shape(scope, keys, String::new()) } else { None };
            let known = self.validated_before(shape.as_ref());
            let schema = if known || !validated { None } else { self.schema.as_ref() };
            let request = Request::new(principal.clone(), action.clone(), resource.clone(), context, schema)
                .map_err(|e| format!("request: {e}"));
            if request.is_ok()
                && let Some(s) = shape.filter(|_| !known)
            {
                self.passed_validation(s);
            }
            request.map(|r| (r, true))
        };
        let (request, direct) = match built {
            Ok(built) => built,
            Err(problem) => {
                // A scope the schema refuses is refused again at once, without a context.
                if checked {
                    self.note_failure(scope);
                }
                return Err(problem);
            }
        };
        Ok(match slice {
            Some(s) => {
                // A context built the direct way holds exactly the parts; one Cedar's JSON
                // reader built is read as Cedar holds it.
                let context = if direct { parts() } else { ContextSource::cedar(request.context(), &s.context_keys) };
                let env = Env::new((&principal, resource), context, entities, &self.agent_type);
                s.decide(&self.authorizer, &request, &env)
            }
            None => self.authorizer.is_authorized(&request, &self.policies, entities).into(),
        })
    }

    /// The decision of a verdict, or a deny listing the problem that prevented one.
    pub(super) fn decision(&self, verdict: Result<Verdict, String>, default_ttl: u32) -> Decision {
        let Verdict { allow, reasons, errors } = match verdict {
            Ok(v) => v,
            Err(problem) => return Decision::error(problem),
        };
        let max_ttl_secs = if allow {
            reasons.iter().filter_map(|id| self.ttls.get(id).copied()).min().unwrap_or(default_ttl).min(default_ttl)
        } else {
            0
        };
        let mut reasons: Vec<String> = reasons.iter().map(|id| AsRef::<str>::as_ref(id).to_string()).collect();
        reasons.sort_unstable();
        Decision { allow, reasons, errors, max_ttl_secs }
    }
}

/// The reason a listing allows a call whose decision rests on its arguments.
pub const DECIDED_PER_CALL: &str = "writ:decided-per-call";

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a request is evaluated at, besides the identity and intent: Writ's clock, how far
/// the caller is from the original holder, and what Writ verified about the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestEnv<'a> {
    pub now: u64,
    pub delegation_depth: u32,
    /// Writ's record of the task the request is in, when that task is open (`context.task`).
    pub task: Option<&'a Task>,
    /// A break-glass approval Writ verified for this request (`context.approval`).
    pub approval: Option<&'a Approval>,
}

impl RequestEnv<'_> {
    /// At `now`, `delegation_depth` hops from the original holder, nothing else verified.
    pub fn at(now: u64, delegation_depth: u32) -> Self {
        RequestEnv { now, delegation_depth, task: None, approval: None }
    }
}
