//! Intent authorization with Cedar: policy loading (schema-validated, `@id` and `@ttl`
//! annotations), request mapping from an attested identity and an intent, and decisions
//! with reasons. Authorization never fails: a problem is a deny with the problem listed.

mod general;

use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::memo::{DecisionMemo, Key, PolicyReads, Reads};
use crate::spiffe_id::clip;
use crate::{Decision, Intent};
use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet, Request,
    RestrictedExpression, Schema, ValidationMode, Validator,
};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::str::FromStr as _;
use std::sync::Arc;

/// Bytes of policy text, schema or entities accepted in one load.
pub const MAX_POLICY_BYTES: usize = 4 << 20;
/// Bytes of one intent's context JSON.
pub const MAX_CONTEXT_BYTES: usize = 64 << 10;
/// Nesting depth of context JSON, entity JSON and policy expressions. Cedar recurses on
/// nesting and cannot check its stack inside Wasm, so depth is bounded before Cedar sees it.
pub const MAX_NESTING: usize = 32;

/// Operators in one policy. A chain like `a && b && c …` is as deep as it is long, and Cedar
/// evaluates it recursively: inside Wasm, where Cedar cannot check its stack, the stack runs out
/// at ~400 levels (measured), so a policy's operator count is bounded at load with 2× margin.
/// Natively Cedar checks its stack and answers "recursion limit reached" instead; how deep it
/// gets depends on the caller's thread stack (debug builds use far more per level).
pub const MAX_POLICY_OPERATORS: usize = 192;

/// The entity type of attested principals.
pub const AGENT_TYPE: &str = "Agent";

/// Policies sliced by scope, so a request evaluates only the policies whose principal and
/// action scopes match it, not all of them.
///
/// A slice is cut per (principal, action), where both are known: a policy whose principal
/// scope (`==`, `in`, `is`, `is … in`, answered from the principal's ancestors in the entity
/// store) or action scope (`==`, `in [...]` with the action's groups) does not match is left
/// out. Cedar checks the scope before the condition, so such a policy is neither satisfied
/// nor erroring, and leaving it out changes neither the decision nor the reasons nor the
/// errors. Slices are built on first use and kept with the caller (see [`Caller`]).
///
/// Every policy in a slice has a matching principal and action, so one with no `when`/
/// `unless` whose resource scope is `resource`, `resource ==` or `resource is` needs no
/// evaluation at all: it is satisfied exactly when its resource scope matches (uid or type
/// equality), it cannot error, and it reads neither entities nor context. Such policies are
/// decided by the index ([`Slice::decided`]); Cedar evaluates the rest.
struct PolicyIndex {
    policies: Vec<Policy>,
    /// Per policy: its principal and action scopes.
    keys: Vec<(cedar_policy::PrincipalConstraint, ActionKey)>,
    /// Per policy: its resource scope when the policy can be decided by scope alone.
    decidable: Vec<Option<ResourceKey>>,
    /// True when some policy has a scope the index can use: otherwise every slice is the
    /// full set.
    useful: bool,
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
struct Slice {
    /// Cedar is not called at all when this is empty.
    cedar: PolicySet,
    decided: DecidedSet,
}

/// A decision before it is a [`Decision`]: Cedar's answer, or the index's and Cedar's combined.
struct Verdict {
    allow: bool,
    reasons: Vec<PolicyId>,
    errors: Vec<String>,
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
    /// Cedar's rule over the whole slice: any satisfied forbid denies, and the satisfied
    /// forbids are the reasons; otherwise any satisfied permit allows, and the satisfied
    /// permits are the reasons; otherwise deny with no reasons. Errors are every erroring
    /// policy's (only Cedar-evaluated ones can error). A Cedar deny with reasons names its
    /// satisfied forbids, an allow its satisfied permits, so the union is exact.
    fn decide(&self, authorizer: &Authorizer, request: &Request, resource: &EntityUid, entities: &Entities) -> Verdict {
        let cedar = if self.cedar.is_empty() {
            Verdict { allow: false, reasons: Vec::new(), errors: Vec::new() }
        } else {
            authorizer.is_authorized(request, &self.cedar, entities).into()
        };
        if self.decided.is_empty() {
            return cedar;
        }
        let (mut forbids, mut permits) =
            if cedar.allow { (Vec::new(), cedar.reasons) } else { (cedar.reasons, Vec::new()) };
        for d in self.decided.satisfied(resource) {
            if d.forbid {
                forbids.push(d.id.clone());
            } else {
                permits.push(d.id.clone());
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

/// Entity map entries all cached merged stores may hold together (each merged store is a
/// copy of the loaded store's map, sharing its entities): the cache keeps at most this many
/// divided by the store's size, and at least one.
const MERGED_BUDGET: usize = 1 << 16;

/// Actions, or merged stores, kept per caller before that caller's cache starts over.
const MAX_PER_CALLER: usize = 256;

/// What the store keeps per caller (SPIFFE ID), so a repeat check builds nothing but the
/// request: the principal's uid, entity stores with the caller merged in, and per action the
/// action's uid and the policy slice that can apply.
struct Caller {
    uid: EntityUid,
    /// By (proof, agent resource): the loaded entities with this caller (and that agent, when
    /// an agent is the resource) merged in. They depend only on those identities.
    stores: Vec<(&'static str, Option<EntityUid>, Arc<Entities>)>,
    /// By action name: its uid and (when the index is useful) its slice.
    actions: HashMap<String, (EntityUid, Option<Arc<Slice>>)>,
}

/// Parsed resource uids, and memoized contexts, kept before those caches start over.
const MAX_MEMO: usize = 4096;

/// The Cedar contexts built for requests that carry no caller context: they hold only Writ's
/// keys (`task_id`, `now`, `delegation_depth`, `identity_expires_at`), so within one second
/// every check of a task by the same identity at the same depth has the same context. Building
/// one costs Cedar an expression evaluation (~1 µs), so they are kept for the current second.
#[derive(Default)]
struct ContextMemo {
    now: u64,
    len: usize,
    /// By task id: (delegation depth, identity expiry, context).
    by_task: HashMap<String, Vec<(u32, u64, Context)>>,
}

impl ContextMemo {
    fn get(&mut self, task: &str, now: u64, depth: u32, expires: u64) -> Option<Context> {
        if self.now != now {
            return None;
        }
        let found = self.by_task.get(task)?.iter().find(|(d, e, _)| *d == depth && *e == expires);
        found.map(|(_, _, c)| c.clone())
    }

    fn put(&mut self, task: &str, now: u64, depth: u32, expires: u64, context: Context) {
        if self.now != now || self.len >= MAX_MEMO {
            self.by_task.clear();
            self.len = 0;
            self.now = now;
        }
        self.by_task.entry(task.to_string()).or_default().push((depth, expires, context));
        self.len += 1;
    }
}

impl PolicyIndex {
    fn new(set: &PolicySet) -> PolicyIndex {
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
        let scoped = keys
            .iter()
            .any(|(p, a)| !matches!(p, cedar_policy::PrincipalConstraint::Any) || !matches!(a, ActionKey::Any));
        let useful = scoped || decidable.iter().any(Option::is_some);
        PolicyIndex { policies, keys, decidable, useful }
    }

    /// The policies that can apply to `principal` doing `action` (their groups and
    /// ancestors taken from `entities`, the store requests of this principal are decided
    /// against): those Cedar must evaluate, and those decided by scope.
    fn slice(&self, principal: &EntityUid, action: &EntityUid, entities: &Entities) -> Result<Slice, String> {
        let groups: Vec<&EntityUid> = entities.ancestors(action).map(Iterator::collect).unwrap_or_default();
        let ancestors: Vec<&EntityUid> = entities.ancestors(principal).map(Iterator::collect).unwrap_or_default();
        let mut chosen = Vec::new();
        let mut decided = DecidedSet::default();
        for ((policy, (p, a)), d) in self.policies.iter().zip(&self.keys).zip(&self.decidable) {
            if !(principal_fits(p, principal, &ancestors) && a.fits(action, &groups)) {
                continue;
            }
            match d {
                Some(scope) => {
                    decided.insert(
                        scope,
                        Decided { id: policy.id().clone(), forbid: policy.effect() == cedar_policy::Effect::Forbid },
                    );
                }
                None => chosen.push(policy.clone()),
            }
        }
        let cedar = PolicySet::from_policies(chosen).map_err(|e| format!("policy slice: {e}"))?;
        Ok(Slice { cedar, decided })
    }
}

/// A loaded, validated policy set and everything a decision needs, kept across calls.
pub struct PolicyStore {
    policies: PolicySet,
    index: PolicyIndex,
    schema: Option<Schema>,
    entities: Entities,
    /// `@ttl` of each permit policy that has one, seconds.
    ttls: HashMap<PolicyId, u32>,
    authorizer: Authorizer,
    /// Per caller (SPIFFE ID): uids, merged entity stores and policy slices.
    callers: std::sync::Mutex<HashMap<String, Caller>>,
    /// Merged stores all callers may keep together (each is a copy of the loaded store's map).
    merged_cap: usize,
    /// Parsed resource uids by their text.
    uids: std::sync::Mutex<HashMap<String, EntityUid>>,
    /// Contexts of requests without caller context, for the current second.
    contexts: std::sync::Mutex<ContextMemo>,
    /// (action, resource type) pairs whose Writ-only-context requests passed schema validation.
    validated: std::sync::Mutex<HashSet<(EntityUid, EntityTypeName)>>,
    /// Decisions of requests already answered (see [`crate::memo`]); `None` when turned off.
    memo: Option<std::sync::Mutex<DecisionMemo>>,
    /// Per policy: the action and resource type its scope names, and what it can read of
    /// Writ's context keys.
    reads: Vec<PolicyReads>,
    /// The loaded entities, shared (general evaluations without properties use them as is).
    loaded: Arc<Entities>,
    /// General evaluations: entity stores with a subject's and resource's properties overlaid,
    /// by those; and policy slices by (principal, action).
    overlays: std::sync::Mutex<HashMap<String, Arc<Entities>>>,
    #[allow(clippy::type_complexity)]
    general_slices: std::sync::Mutex<HashMap<(EntityUid, EntityUid), Arc<Slice>>>,
    agent_type: EntityTypeName,
    action_type: EntityTypeName,
}

impl std::fmt::Debug for PolicyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyStore").field("policies", &self.len()).finish()
    }
}

/// 1-based line and column of byte `offset` in `src`.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(before.chars().count(), |i| before[i + 1..].chars().count()) + 1;
    (line, col)
}

/// A miette diagnostic as `message (at line L, column C)`, using its first label.
fn located(src: &str, d: &dyn miette::Diagnostic) -> String {
    let at = d.labels().and_then(|mut l| l.next()).map(|l| line_col(src, l.offset()));
    // Cedar's `help` ("did you mean …?") is left out: its suggestion depends on hash order,
    // and the same input must give the same message natively and in the component.
    let msg = d.to_string();
    match at {
        Some((line, col)) => format!("{msg} at line {line}, column {col}"),
        None => msg,
    }
}

/// Deepest bracket nesting in `text`, outside string literals.
pub fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for c in text.chars() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The largest number of operators in one `;`-terminated policy of `text`, outside string
/// literals and `//` comments.
pub fn max_policy_operators(text: &str) -> usize {
    let b = text.as_bytes();
    let (mut i, mut count, mut max) = (0usize, 0usize, 0usize);
    let word = |i: usize, w: &[u8]| {
        b[i..].starts_with(w)
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
            && b.get(i + w.len()).is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
    };
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b';' => {
                max = max.max(count);
                count = 0;
            }
            b'&' | b'|' | b'=' | b'!' | b'<' | b'>' | b'+' | b'-' | b'*' | b'.' => {
                count += 1;
                // Two-character operators count once.
                if matches!(
                    (b[i], b.get(i + 1)),
                    (b'&', Some(b'&')) | (b'|', Some(b'|')) | (b'=' | b'!' | b'<' | b'>', Some(b'='))
                ) {
                    i += 1;
                }
            }
            _ => {
                if [&b"in"[..], b"has", b"like", b"is", b"if"].iter().any(|w| word(i, w)) {
                    count += 1;
                }
            }
        }
        i += 1;
    }
    max.max(count)
}

fn bounded(what: &str, text: &str, max_bytes: usize) -> Result<()> {
    if text.len() > max_bytes {
        return Err(Error::Limit(format!("{what} is {} bytes, over the cap of {max_bytes}", text.len())));
    }
    let depth = nesting_depth(text);
    if depth > MAX_NESTING {
        return Err(Error::Limit(format!("{what} nests {depth} deep, over the cap of {MAX_NESTING}")));
    }
    Ok(())
}

/// Parse a `@ttl` annotation: seconds, or a number with `s`, `m` or `h`.
pub fn parse_ttl(s: &str) -> Option<u32> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 's') => (&s[..i], 1),
        (i, 'm') => (&s[..i], 60),
        (i, 'h') => (&s[..i], 3600),
        _ => (s, 1),
    };
    num.parse::<u32>().ok()?.checked_mul(mult)
}

fn policy_err(msg: String) -> Error {
    Error::Policy(msg)
}

impl PolicyStore {
    /// Parse, re-identify (`@id`), read `@ttl`s, and — with a schema — validate policies
    /// strictly and parse entities against it.
    pub fn load(policies: &str, schema: Option<&str>, entities: Option<&str>) -> Result<PolicyStore> {
        Self::load_with(policies, schema, entities, Some(0))
    }

    /// [`load`](Self::load), with the decision memo's hash seed (entropy from the caller, so
    /// requests cannot be aimed at one bucket), or `None` for no memo: every request evaluated.
    pub fn load_with(
        policies: &str,
        schema: Option<&str>,
        entities: Option<&str>,
        memo_seed: Option<u64>,
    ) -> Result<PolicyStore> {
        bounded("policy text", policies, MAX_POLICY_BYTES)?;
        let ops = max_policy_operators(policies);
        if ops > MAX_POLICY_OPERATORS {
            return Err(Error::Limit(format!(
                "a policy has {ops} operators, over the cap of {MAX_POLICY_OPERATORS} (deep expressions exhaust the evaluator's stack)"
            )));
        }
        let parsed = PolicySet::from_str(policies)
            .map_err(|e| policy_err(format!("policies do not parse: {}", located(policies, &e))))?;
        if parsed.templates().next().is_some() {
            return Err(policy_err("policy templates are not supported".into()));
        }
        let mut renamed = Vec::new();
        let mut ids = HashSet::new();
        let mut ttls = HashMap::new();
        for p in parsed.policies() {
            let p: Policy = match p.annotation("id") {
                Some(id) if !id.is_empty() => p.new_id(PolicyId::new(id)),
                Some(_) => return Err(policy_err(format!("policy `{}` has an empty `@id`", p.id()))),
                None => p.clone(),
            };
            if !ids.insert(p.id().clone()) {
                return Err(policy_err(format!("two policies have the id `{}`", clip(p.id().as_ref()))));
            }
            if let Some(t) = p.annotation("ttl") {
                let secs = parse_ttl(t).ok_or_else(|| {
                    policy_err(format!(
                        "policy `{}`: `@ttl(\"{}\")` is not a duration (seconds, or with s/m/h)",
                        p.id(),
                        clip(t)
                    ))
                })?;
                ttls.insert(p.id().clone(), secs);
            }
            renamed.push(p);
        }
        let policies_set = PolicySet::from_policies(renamed).map_err(|e| policy_err(format!("policy set: {e}")))?;

        let schema = match schema {
            None => None,
            Some(text) => {
                bounded("schema", text, MAX_POLICY_BYTES)?;
                let s = if text.trim_start().starts_with('{') {
                    Schema::from_json_str(text)
                        .map_err(|e| policy_err(format!("schema (JSON) is invalid: {}", located(text, &e))))?
                } else {
                    Schema::from_cedarschema_str(text)
                        .map_err(|e| policy_err(format!("schema is invalid: {}", located(text, &e))))?
                        .0
                };
                let result = Validator::new(s.clone()).validate(&policies_set, ValidationMode::Strict);
                if let Some(e) = result.validation_errors().next() {
                    let n = result.validation_errors().count();
                    let more = if n > 1 { format!(" (and {} more)", n - 1) } else { String::new() };
                    return Err(policy_err(format!(
                        "policies do not validate against the schema: {}{more}",
                        located(policies, e)
                    )));
                }
                Some(s)
            }
        };
        let entities = match entities {
            Some(text) => {
                bounded("entities", text, MAX_POLICY_BYTES)?;
                Entities::from_json_str(text, schema.as_ref())
                    .map_err(|e| policy_err(format!("entities are invalid: {}", located(text, &e))))?
            }
            // With a schema this still yields the schema's action entities (for `action in`).
            None => Entities::from_json_str("[]", schema.as_ref()).map_err(|e| policy_err(format!("entities: {e}")))?,
        };
        let merged_cap = (MERGED_BUDGET / (entities.iter().count() + 1)).max(1);
        let entities_for_general = entities.clone();
        // What policies can read of Writ's context keys; a policy that cannot be written as
        // JSON (none should) counts as reading everything.
        // Per policy: the action and resource type its scope names and what it can read of
        // Writ's context keys (a policy that cannot be written as JSON — none should — reads
        // everything).
        let reads: Vec<PolicyReads> = policies_set
            .policies()
            .map(|p| {
                let action = match p.action_constraint() {
                    cedar_policy::ActionConstraint::Eq(uid) => Some(uid.id().unescaped().to_string()),
                    _ => None,
                };
                let resource_type = match p.resource_constraint() {
                    cedar_policy::ResourceConstraint::Eq(uid) => Some(uid.type_name().to_string()),
                    cedar_policy::ResourceConstraint::Is(ty) | cedar_policy::ResourceConstraint::IsIn(ty, _) => {
                        Some(ty.to_string())
                    }
                    _ => None,
                };
                PolicyReads {
                    action,
                    resource_type,
                    reads: p.to_json().map_or(Reads::ALL, |est| Reads::of_policies([&est])),
                }
            })
            .collect();
        let memo = memo_seed.map(|seed| std::sync::Mutex::new(DecisionMemo::new(reads.clone(), seed)));
        Ok(PolicyStore {
            index: PolicyIndex::new(&policies_set),
            policies: policies_set,
            schema,
            entities,
            ttls,
            authorizer: Authorizer::new(),
            callers: std::sync::Mutex::new(HashMap::new()),
            merged_cap,
            uids: std::sync::Mutex::new(HashMap::new()),
            contexts: std::sync::Mutex::new(ContextMemo::default()),
            validated: std::sync::Mutex::new(HashSet::new()),
            memo,
            reads,
            loaded: Arc::new(entities_for_general),
            overlays: std::sync::Mutex::new(HashMap::new()),
            general_slices: std::sync::Mutex::new(HashMap::new()),
            agent_type: EntityTypeName::from_str(AGENT_TYPE).map_err(|e| policy_err(e.to_string()))?,
            action_type: EntityTypeName::from_str("Action").map_err(|e| policy_err(e.to_string()))?,
        })
    }

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

    /// Decide whether `who` may do `what` now. Never fails: problems deny, listed in `errors`.
    /// Evaluates only the policies the index says can apply.
    pub fn check(&self, who: &Identity, what: &Intent, env: &RequestEnv, default_ttl: u32) -> Decision {
        self.decide(who, what, env, default_ttl, true)
    }

    /// [`check`](Self::check) evaluating every policy, without the index: the reference the
    /// index is tested against.
    pub fn check_unindexed(&self, who: &Identity, what: &Intent, env: &RequestEnv, default_ttl: u32) -> Decision {
        self.decide(who, what, env, default_ttl, false)
    }

    /// What the policies that can apply to `action` on `resource` read of Writ's context keys
    /// (what the decision memo keys its requests on).
    pub fn reads(&self, action: &str, resource: &str) -> Reads {
        crate::memo::reads_for(&self.reads, action, resource)
    }

    /// Turn the decision memo on (with a hash seed) or off; either way it starts empty.
    pub fn set_memo(&mut self, seed: Option<u64>) {
        self.memo = seed.map(|seed| std::sync::Mutex::new(DecisionMemo::new(self.reads.clone(), seed)));
    }

    fn decide(&self, who: &Identity, what: &Intent, env: &RequestEnv, default_ttl: u32, indexed: bool) -> Decision {
        let memo = self.memo.as_ref().filter(|_| indexed);
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
            ttl_cap: default_ttl,
        };
        if let Some(hit) = memo.and_then(|m| lock(m).get(&key)) {
            return hit;
        }
        let decision = self.decision(self.evaluate_intent(who, what, env, indexed), default_ttl);
        if let Some(m) = memo {
            lock(m).put(&key, &decision);
        }
        decision
    }

    fn evaluate_intent(
        &self,
        who: &Identity,
        what: &Intent,
        env: &RequestEnv,
        indexed: bool,
    ) -> Result<Verdict, String> {
        let resource = self.resource_uid(&what.resource)?;
        let (principal, action, entities, slice) = self.caller(who, &what.action, &resource, indexed)?;
        let writ_only = what.context.trim().is_empty();
        let context = if writ_only {
            self.writ_context(who, what, env)?
        } else {
            let context = context_json(what, who, env)?;
            // Plain JSON (no `__entity`/`__extn` escapes, whole numbers) is built straight
            // into Cedar values — Cedar's own JSON reader costs tens of µs on a small object.
            // If that request does not validate (the schema may want an entity or extension
            // value written in Cedar's implicit form), Cedar's reader decides, as it always
            // does on the reference path.
            if indexed && let Some(direct) = direct_context(&context) {
                let schema = self.schema.as_ref();
                if let Ok(request) = Request::new(principal.clone(), action.clone(), resource.clone(), direct, schema) {
                    return Ok(self.run(&request, &resource, slice.as_deref(), &entities));
                }
            }
            Context::from_json_value(Value::Object(context), self.schema.as_ref().map(|s| (s, &action)))
                .map_err(|e| format!("context: {e}"))?
        };
        // With a schema, a request is validated: its principal and resource types against the
        // action, its context against the action's context type. A Writ-only context always
        // has the same keys and types, so once a request of this action and resource type has
        // passed, every later one would: validation is skipped for those (~1.7 µs natively).
        let shape = (writ_only && self.schema.is_some()).then(|| (action.clone(), resource.type_name().clone()));
        let known = shape.as_ref().is_some_and(|k| lock(&self.validated).contains(k));
        let schema = if known { None } else { self.schema.as_ref() };
        let request =
            Request::new(principal, action, resource.clone(), context, schema).map_err(|e| format!("request: {e}"))?;
        if let Some(k) = shape.filter(|_| !known) {
            let mut v = lock(&self.validated);
            if v.len() >= MAX_MEMO {
                v.clear();
            }
            v.insert(k);
        }
        Ok(self.run(&request, &resource, slice.as_deref(), &entities))
    }

    /// Decide `request` (whose resource is `resource`) over `slice`, or every policy.
    fn run(&self, request: &Request, resource: &EntityUid, slice: Option<&Slice>, entities: &Entities) -> Verdict {
        match slice {
            Some(s) => s.decide(&self.authorizer, request, resource, entities),
            None => self.authorizer.is_authorized(request, &self.policies, entities).into(),
        }
    }

    /// The principal's and action's uids, the entity store with the caller merged in, and the
    /// policy slice (when `indexed`): built on a caller's first use and kept.
    #[allow(clippy::type_complexity)]
    fn caller(
        &self,
        who: &Identity,
        action_name: &str,
        resource: &EntityUid,
        indexed: bool,
    ) -> Result<(EntityUid, EntityUid, Arc<Entities>, Option<Arc<Slice>>), String> {
        let proof = who.proof.as_str();
        let agent_resource = |principal: &EntityUid| {
            (resource.type_name() == &self.agent_type && resource != principal).then(|| resource.clone())
        };
        let mut callers = lock(&self.callers);
        if !callers.contains_key(who.spiffe_id.as_str()) {
            if callers.values().map(|c| c.stores.len()).sum::<usize>() >= self.merged_cap {
                callers.clear();
            }
            let uid = EntityUid::from_type_name_and_id(self.agent_type.clone(), EntityId::new(&who.spiffe_id));
            callers.insert(who.spiffe_id.clone(), Caller { uid, stores: Vec::new(), actions: HashMap::new() });
        }
        let caller = callers.get_mut(who.spiffe_id.as_str()).ok_or("caller cache")?;
        let principal = caller.uid.clone();
        let agent = agent_resource(&principal);
        let entities = match caller.stores.iter().find(|(p, r, _)| *p == proof && *r == agent) {
            Some((_, _, e)) => e.clone(),
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
                let merged =
                    Arc::new(self.entities.clone().upsert_entities(extra, None).map_err(|e| format!("entities: {e}"))?);
                if caller.stores.len() >= MAX_PER_CALLER {
                    caller.stores.clear();
                }
                caller.stores.push((proof, agent, merged.clone()));
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
        if caller.actions.len() >= MAX_PER_CALLER {
            caller.actions.clear();
        }
        caller.actions.insert(action_name.to_string(), (action.clone(), slice.clone()));
        Ok((principal, action, entities, slice))
    }

    /// The uid a resource text names, parsed once and kept.
    fn resource_uid(&self, text: &str) -> Result<EntityUid, String> {
        if let Some(uid) = lock(&self.uids).get(text) {
            return Ok(uid.clone());
        }
        let uid = EntityUid::from_str(text)
            .map_err(|e| format!("resource `{}` is not an entity uid like `Type::\"id\"`: {e}", clip(text)))?;
        let mut uids = lock(&self.uids);
        if uids.len() >= MAX_MEMO {
            uids.clear();
        }
        uids.insert(text.to_string(), uid.clone());
        Ok(uid)
    }

    /// The context of a request without caller context: only Writ's own keys, built directly
    /// (JSON conversion costs ~6 µs natively) and memoized for the current second;
    /// `Request::new` still checks it against the schema.
    fn writ_context(&self, who: &Identity, what: &Intent, env: &RequestEnv) -> Result<Context, String> {
        let (task, now, depth, expires) = (what.task_id.as_str(), env.now, env.delegation_depth, who.expires_at);
        if let Some(c) = lock(&self.contexts).get(task, now, depth, expires) {
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
        lock(&self.contexts).put(task, now, depth, expires, context.clone());
        Ok(context)
    }

    /// The decision of a verdict, or a deny listing the problem that prevented one.
    fn decision(&self, verdict: Result<Verdict, String>, default_ttl: u32) -> Decision {
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

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a request is evaluated at, besides the identity and intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestEnv {
    pub now: u64,
    pub delegation_depth: u32,
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
fn direct_context(o: &Map<String, Value>) -> Option<Context> {
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
fn context_json(what: &Intent, who: &Identity, env: &RequestEnv) -> Result<Map<String, Value>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_annotations() {
        assert_eq!(parse_ttl("900"), Some(900));
        assert_eq!(parse_ttl("15m"), Some(900));
        assert_eq!(parse_ttl("2h"), Some(7200));
        assert_eq!(parse_ttl("30s"), Some(30));
        assert_eq!(parse_ttl("soon"), None);
        assert_eq!(parse_ttl(""), None);
        assert_eq!(parse_ttl("99999999999h"), None);
    }

    #[test]
    fn nesting_ignores_strings() {
        assert_eq!(nesting_depth("permit(principal, action, resource) when { [1, [2]] };"), 3);
        assert_eq!(nesting_depth(r#"when { "((((\"((" }"#), 1);
    }

    #[test]
    fn operators_are_counted_per_policy_outside_strings_and_comments() {
        assert_eq!(max_policy_operators(r#"permit(principal, action, resource) when { context.a == "x && y" };"#), 2);
        assert_eq!(max_policy_operators("// a && b && c\npermit(principal, action in [Action::\"a\"], resource);"), 1);
        assert_eq!(
            max_policy_operators(
                "permit(principal, action, resource) when { a && b }; forbid(principal, action, resource) when { a && b && c || d };"
            ),
            3
        );
        assert_eq!(max_policy_operators("permit(principal is Agent, action, resource) when { x.inside has y };"), 3);
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
