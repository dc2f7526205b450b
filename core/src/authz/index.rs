//! The policy index: policies sliced by scope, so a request evaluates only the policies whose
//! principal and action scopes match it, and policies that need no evaluation at all decided
//! by their resource scope, and policies whose conditions compiled (see `compiled`) decided
//! without Cedar's interpreter while their conditions can be. A differential property test
//! holds it to full Cedar (`core/tests`: the index decides exactly as Cedar).

use super::compiled::CompiledPolicy;
use super::view::Env;
use cedar_policy::{Authorizer, Entities, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet, Request};
use std::collections::HashMap;
use std::sync::Arc;

/// Policies sliced by scope, so a request evaluates only the policies whose principal and
/// action scopes match it, not all of them.
///
/// A slice is cut per (principal, action), where both are known: a policy whose principal
/// scope (`==`, `in`, `is`, `is … in`, answered from the principal's ancestors in the entity
/// store) or action scope (`==`, `in [...]` with the action's groups) does not match is left
/// out. Cedar checks the scope before the condition, so such a policy is neither satisfied
/// nor erroring, and leaving it out changes neither the decision nor the reasons nor the
/// errors. Slices are built on first use and kept with the caller (see `caches`).
///
/// Every policy in a slice has a matching principal and action, so one with no `when`/
/// `unless` whose resource scope is `resource`, `resource ==` or `resource is` needs no
/// evaluation at all: it is satisfied exactly when its resource scope matches (uid or type
/// equality), it cannot error, and it reads neither entities nor context. Such policies are
/// decided by the index (`Slice::decided`). A policy whose conditions compiled is decided by
/// its compiled condition while every compiled condition of the slice can answer exactly; when
/// one cannot, Cedar evaluates all the slice's conditional policies (`Slice::conditional`), as
/// it would without compilation. Cedar evaluates the rest. A request whose slice Cedar has
/// nothing to evaluate for, and whose compiled conditions all answer, is decided without a
/// Cedar request or context at all (`Slice::decide_compiled`, reading the context from the
/// parts it would be built from: see `view`).
pub(super) struct PolicyIndex {
    policies: Vec<Policy>,
    /// Per policy: its principal and action scopes.
    keys: Vec<(cedar_policy::PrincipalConstraint, ActionKey)>,
    /// Per policy: its resource scope when the policy can be decided by scope alone.
    decidable: Vec<Option<ResourceKey>>,
    /// Per policy: its compiled conditions, when they compiled — compiled when a slice first
    /// holds the policy, so a load of thousands of policies does not pay for it up front.
    compiled: Vec<std::sync::OnceLock<Option<Arc<CompiledPolicy>>>>,
    /// True when some policy has a scope the index can use: otherwise every slice is the
    /// full set.
    pub(super) useful: bool,
    /// The entities principal scopes name (`==`, `in`, `is … in`).
    named_principals: std::collections::HashSet<EntityUid>,
}

/// Whether `principal`, whose ancestors in the request's entity store are `ancestors`, is in
/// a policy's principal scope (Cedar's `in` is reflexive and follows the stored hierarchy).
fn principal_fits(scope: &cedar_policy::PrincipalConstraint, principal: &EntityUid, ancestors: &[&EntityUid]) -> bool {
    use cedar_policy::PrincipalConstraint as P;
    let within = |group: &EntityUid| group == principal || ancestors.contains(&group);
    match scope {
        P::Any => true,
        P::Eq(uid) => uid == principal,
        P::In(group) => within(group),
        P::Is(ty) => ty == principal.type_name(),
        P::IsIn(ty, group) => ty == principal.type_name() && within(group),
    }
}

/// The resource scope of a policy the index decides.
#[derive(Clone)]
enum ResourceKey {
    Any,
    Eq(EntityUid),
    Is(EntityTypeName),
}

/// A policy the index decides without Cedar (see [`PolicyIndex`]).
struct Decided {
    id: PolicyId,
    forbid: bool,
}

/// Unseeded fast hashing: these maps' keys come from the policies, not from requests.
type Fast = foldhash::fast::FixedState;

/// The decided policies of a slice by resource scope, so finding those a resource satisfies
/// costs two lookups however many there are (a thousand `resource ==` rules stay flat).
#[derive(Default)]
struct DecidedSet {
    any: Vec<Decided>,
    by_uid: HashMap<EntityUid, Vec<Decided>, Fast>,
    by_type: HashMap<EntityTypeName, Vec<Decided>, Fast>,
}

impl DecidedSet {
    fn insert(&mut self, scope: &ResourceKey, d: Decided) {
        match scope {
            ResourceKey::Any => self.any.push(d),
            ResourceKey::Eq(uid) => self.by_uid.entry(uid.clone()).or_default().push(d),
            ResourceKey::Is(ty) => self.by_type.entry(ty.clone()).or_default().push(d),
        }
    }

    fn is_empty(&self) -> bool {
        self.any.is_empty() && self.by_uid.is_empty() && self.by_type.is_empty()
    }

    /// The decided policies `resource` satisfies.
    fn satisfied<'a>(&'a self, resource: &EntityUid) -> impl Iterator<Item = &'a Decided> {
        let by_uid = self.by_uid.get(resource).into_iter().flatten();
        let by_type = self.by_type.get(resource.type_name()).into_iter().flatten();
        self.any.iter().chain(by_uid).chain(by_type)
    }
}

/// The policies that can apply to one (principal, action): those Cedar evaluates, and those
/// the index decides by the resource alone.
pub(super) struct Slice {
    /// The policies Cedar evaluates when every compiled condition answers. Cedar is not
    /// called at all when this is empty.
    cedar: PolicySet,
    /// Policies decided by their compiled conditions.
    compiled: Vec<Arc<CompiledPolicy>>,
    /// `cedar` and the compiled policies: what Cedar evaluates when a compiled condition
    /// cannot answer.
    conditional: PolicySet,
    /// The context keys the compiled conditions read.
    pub(super) context_keys: Vec<String>,
    decided: DecidedSet,
}

impl Slice {
    /// Whether a permit with conditions that can apply to `resource` reads `context.input`: a
    /// call's decision may then rest on its arguments.
    pub(super) fn permit_reads_input(&self, resource: &EntityUid) -> bool {
        self.conditional.policies().filter(|p| p.effect() == cedar_policy::Effect::Permit).any(|p| {
            let fits = match p.resource_constraint() {
                cedar_policy::ResourceConstraint::Eq(uid) => uid == *resource,
                cedar_policy::ResourceConstraint::Is(ty) | cedar_policy::ResourceConstraint::IsIn(ty, _) => {
                    ty == *resource.type_name()
                }
                _ => true,
            };
            fits && p.to_json().map_or(true, |est| crate::memo::Reads::of_policies([&est]).input)
        })
    }
}

/// A decision before it is a [`Decision`]: Cedar's answer, or the index's and Cedar's combined.
pub(super) struct Verdict {
    pub(super) allow: bool,
    pub(super) reasons: Vec<PolicyId>,
    pub(super) errors: Vec<String>,
}

impl From<cedar_policy::Response> for Verdict {
    fn from(r: cedar_policy::Response) -> Verdict {
        Verdict {
            allow: r.decision() == cedar_policy::Decision::Allow,
            reasons: r.diagnostics().reason().cloned().collect(),
            errors: r.diagnostics().errors().map(ToString::to_string).collect(),
        }
    }
}

impl Slice {
    /// The compiled policies `env` satisfies, or `None` when one cannot answer.
    fn compiled_satisfied(&self, env: &Env<'_>) -> Option<Vec<&CompiledPolicy>> {
        let mut satisfied = Vec::new();
        for c in &self.compiled {
            if c.satisfied(env)? {
                satisfied.push(&**c);
            }
        }
        Some(satisfied)
    }

    /// The verdict without Cedar, when Cedar has nothing to evaluate: every conditional policy
    /// of the slice compiled and every compiled condition answers. No Cedar request is needed.
    pub(super) fn decide_compiled(&self, env: &Env<'_>) -> Option<Verdict> {
        if !self.cedar.is_empty() {
            return None;
        }
        let satisfied = self.compiled_satisfied(env)?;
        let none = Verdict { allow: false, reasons: Vec::new(), errors: Vec::new() };
        Some(self.combine(none, satisfied, env.resource))
    }

    /// Whether Cedar has policies of this slice to evaluate whatever the compiled conditions say.
    pub(super) fn needs_cedar(&self) -> bool {
        !self.cedar.is_empty()
    }

    /// Cedar's rule over the whole slice: any satisfied forbid denies, and the satisfied
    /// forbids are the reasons; otherwise any satisfied permit allows, and the satisfied
    /// permits are the reasons; otherwise deny with no reasons. Errors are every erroring
    /// policy's (only Cedar-evaluated ones can error). A Cedar deny with reasons names its
    /// satisfied forbids, an allow its satisfied permits, so the union is exact.
    ///
    /// `env` reads `request`'s principal, resource and context (see `view`).
    pub(super) fn decide(&self, authorizer: &Authorizer, request: &Request, env: &Env<'_>) -> Verdict {
        // The compiled conditions first: all of them answer, or Cedar evaluates them all.
        let (satisfied, cedar_set) = match self.compiled_satisfied(env) {
            Some(satisfied) => (satisfied, &self.cedar),
            None => (Vec::new(), &self.conditional),
        };
        let cedar = if cedar_set.is_empty() {
            Verdict { allow: false, reasons: Vec::new(), errors: Vec::new() }
        } else {
            authorizer.is_authorized(request, cedar_set, env.entities).into()
        };
        self.combine(cedar, satisfied, env.resource)
    }

    /// Cedar's verdict joined with the compiled policies satisfied and the decided ones the
    /// resource satisfies.
    fn combine(&self, cedar: Verdict, satisfied: Vec<&CompiledPolicy>, resource: &EntityUid) -> Verdict {
        if self.decided.is_empty() && satisfied.is_empty() {
            return cedar;
        }
        let (mut forbids, mut permits) =
            if cedar.allow { (Vec::new(), cedar.reasons) } else { (cedar.reasons, Vec::new()) };
        let compiled = satisfied.into_iter().map(|c| (&c.id, c.forbid));
        for (id, forbid) in compiled.chain(self.decided.satisfied(resource).map(|d| (&d.id, d.forbid))) {
            if forbid {
                forbids.push(id.clone());
            } else {
                permits.push(id.clone());
            }
        }
        match (forbids.is_empty(), permits.is_empty()) {
            (false, _) => Verdict { allow: false, reasons: forbids, errors: cedar.errors },
            (true, false) => Verdict { allow: true, reasons: permits, errors: cedar.errors },
            (true, true) => Verdict { allow: false, reasons: Vec::new(), errors: cedar.errors },
        }
    }
}

/// A policy's action scope as the index uses it.
enum ActionKey {
    Any,
    Eq(EntityUid),
    /// `action in [...]`: the action is one of these or in one of their groups.
    In(Vec<EntityUid>),
}

impl ActionKey {
    /// Whether a request for `action`, whose action groups (ancestors in the loaded entities)
    /// are `groups`, can match this scope.
    fn fits(&self, action: &EntityUid, groups: &[&EntityUid]) -> bool {
        match self {
            ActionKey::Any => true,
            ActionKey::Eq(uid) => uid == action,
            ActionKey::In(list) => list.iter().any(|uid| uid == action || groups.contains(&uid)),
        }
    }
}

impl PolicyIndex {
    pub(super) fn new(set: &PolicySet) -> PolicyIndex {
        let policies: Vec<Policy> = set.policies().cloned().collect();
        let keys: Vec<_> = policies
            .iter()
            .map(|p| {
                let action = match p.action_constraint() {
                    cedar_policy::ActionConstraint::Eq(uid) => ActionKey::Eq(uid),
                    cedar_policy::ActionConstraint::In(list) => ActionKey::In(list),
                    _ => ActionKey::Any,
                };
                (p.principal_constraint(), action)
            })
            .collect();
        let decidable: Vec<_> = policies
            .iter()
            .map(|p| {
                if p.has_non_scope_constraint() {
                    return None;
                }
                match p.resource_constraint() {
                    cedar_policy::ResourceConstraint::Any => Some(ResourceKey::Any),
                    cedar_policy::ResourceConstraint::Eq(uid) => Some(ResourceKey::Eq(uid)),
                    cedar_policy::ResourceConstraint::Is(ty) => Some(ResourceKey::Is(ty)),
                    _ => None,
                }
            })
            .collect();
        let compiled: Vec<_> = policies.iter().map(|_| std::sync::OnceLock::new()).collect();
        let scoped = keys
            .iter()
            .any(|(p, a)| !matches!(p, cedar_policy::PrincipalConstraint::Any) || !matches!(a, ActionKey::Any));
        let useful =
            scoped || decidable.iter().any(Option::is_some) || policies.iter().any(Policy::has_non_scope_constraint);
        let named_principals = keys
            .iter()
            .filter_map(|(p, _)| match p {
                cedar_policy::PrincipalConstraint::Eq(uid)
                | cedar_policy::PrincipalConstraint::In(uid)
                | cedar_policy::PrincipalConstraint::IsIn(_, uid) => Some(uid.clone()),
                _ => None,
            })
            .collect();
        PolicyIndex { policies, keys, decidable, compiled, useful, named_principals }
    }

    /// Whether a policy's principal scope names `uid` (so a slice of it may differ from that of
    /// another principal of its type with the same ancestors).
    pub(super) fn names_principal(&self, uid: &EntityUid) -> bool {
        self.named_principals.contains(uid)
    }

    /// The policies that can apply to `principal` doing `action` (their groups and
    /// ancestors taken from `entities`, the store requests of this principal are decided
    /// against): those Cedar must evaluate, and those decided by scope.
    pub(super) fn slice(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        entities: &Entities,
    ) -> Result<Slice, String> {
        let groups: Vec<&EntityUid> = entities.ancestors(action).map(Iterator::collect).unwrap_or_default();
        let ancestors: Vec<&EntityUid> = entities.ancestors(principal).map(Iterator::collect).unwrap_or_default();
        let (mut chosen, mut compiled, mut conditional) = (Vec::new(), Vec::new(), Vec::new());
        let mut decided = DecidedSet::default();
        for (((policy, (p, a)), d), c) in self.policies.iter().zip(&self.keys).zip(&self.decidable).zip(&self.compiled)
        {
            if !(principal_fits(p, principal, &ancestors) && a.fits(action, &groups)) {
                continue;
            }
            match (d, c.get_or_init(|| CompiledPolicy::compile(policy).map(Arc::new))) {
                (Some(scope), _) => {
                    decided.insert(
                        scope,
                        Decided { id: policy.id().clone(), forbid: policy.effect() == cedar_policy::Effect::Forbid },
                    );
                }
                (None, Some(c)) => {
                    compiled.push(c.clone());
                    conditional.push(policy.clone());
                }
                (None, None) => {
                    chosen.push(policy.clone());
                    conditional.push(policy.clone());
                }
            }
        }
        let cedar = PolicySet::from_policies(chosen).map_err(|e| format!("policy slice: {e}"))?;
        let conditional = PolicySet::from_policies(conditional).map_err(|e| format!("policy slice: {e}"))?;
        let mut context_keys: Vec<String> = compiled.iter().flat_map(|c| c.context_keys.iter().cloned()).collect();
        context_keys.sort_unstable();
        context_keys.dedup();
        Ok(Slice { cedar, compiled, conditional, context_keys, decided })
    }
}
