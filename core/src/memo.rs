//! The decision memo: a Cedar decision is a function of the policy set, the entities and the
//! request, so a loaded store answers a repeated request from memory. A request is the caller
//! (SPIFFE ID and proof), action, resource, the caller's context text, and those of Writ's
//! context keys (`task_id`, `now`, `delegation_depth`, `identity_expires_at`, `oidc`) that some policy
//! can read — found at load time by walking every policy's syntax tree, conservatively: any
//! use of `context` other than reading a named attribute counts as reading all of them. So a
//! pack that never reads `context.now` answers the same request from memory across seconds,
//! and one that does is keyed by the second as well.

use crate::Decision;
use crate::bounded::BoundedMap;
use crate::exact::same_text;
use serde_json::Value;
use std::collections::BTreeMap;
use std::hash::BuildHasher as _;

/// Entries kept before the memo starts over.
pub const MAX_MEMO_ENTRIES: usize = 4096;

/// Which of Writ's own context keys some policy may read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reads {
    pub task_id: bool,
    pub now: bool,
    pub delegation_depth: bool,
    pub identity_expires_at: bool,
    /// `context.task`: Writ's record of the task.
    pub task: bool,
    /// `context.oidc`: the verified claims of an OIDC identity.
    pub oidc: bool,
    /// `context.input`: the arguments of the call the host forwards.
    pub input: bool,
}

impl Reads {
    /// Every key counts as read (the safe answer when a policy cannot be analysed).
    pub const ALL: Reads = Reads {
        task_id: true,
        now: true,
        delegation_depth: true,
        identity_expires_at: true,
        task: true,
        oidc: true,
        input: true,
    };

    /// What the policies (as Cedar's JSON syntax trees) may read of the context.
    pub fn of_policies<'a>(ests: impl IntoIterator<Item = &'a Value>) -> Reads {
        let mut r = Reads::default();
        for est in ests {
            r.visit(est);
        }
        r
    }

    pub fn union(self, o: Reads) -> Reads {
        Reads {
            task_id: self.task_id || o.task_id,
            now: self.now || o.now,
            delegation_depth: self.delegation_depth || o.delegation_depth,
            identity_expires_at: self.identity_expires_at || o.identity_expires_at,
            task: self.task || o.task,
            oidc: self.oidc || o.oidc,
            input: self.input || o.input,
        }
    }

    fn mark(&mut self, attr: &str) {
        match attr {
            "task_id" => self.task_id = true,
            "now" => self.now = true,
            "delegation_depth" => self.delegation_depth = true,
            "identity_expires_at" => self.identity_expires_at = true,
            "task" => self.task = true,
            "oidc" => self.oidc = true,
            "input" => self.input = true,
            _ => {}
        }
    }

    fn visit(&mut self, v: &Value) {
        match v {
            Value::Object(o) => {
                if o.get("Var").and_then(Value::as_str) == Some("context") {
                    // `context` used as a whole (compared, put in a set…): anything may be read.
                    *self = Reads::ALL;
                    return;
                }
                for (k, child) in o {
                    // `context.attr`, `context["attr"]` and `context has attr` read one key.
                    let named = matches!(k.as_str(), "." | "has")
                        .then(|| child.as_object())
                        .flatten()
                        .filter(|c| c.get("left").and_then(|l| l.get("Var")).and_then(Value::as_str) == Some("context"))
                        .and_then(|c| c.get("attr").and_then(Value::as_str));
                    match named {
                        Some(attr) => self.mark(attr),
                        None => self.visit(child),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|c| self.visit(c)),
            _ => {}
        }
    }
}

/// One request as the memo keys it: fields no policy reads are zeroed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key<'a> {
    pub spiffe_id: &'a str,
    pub proof: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a str,
    pub task_id: &'a str,
    pub now: u64,
    pub delegation_depth: u32,
    pub identity_expires_at: u64,
    /// Which record of the task (0: none open); see `authz::context::task_stamp`.
    pub task_stamp: u64,
    pub ttl_cap: u32,
    /// The identity's verified claims (`context.oidc`).
    pub claims: &'a BTreeMap<String, String>,
    /// The call's arguments (`context.input`).
    pub input: &'a str,
}

/// No claims: what a key holds when no policy reads `context.oidc`.
static NO_CLAIMS: BTreeMap<String, String> = BTreeMap::new();

impl Key<'_> {
    /// This request with the keys no policy reads zeroed.
    pub fn normalized(mut self, reads: Reads) -> Self {
        // A task record is told apart by its id and stamp together.
        if !reads.task_id && !reads.task {
            self.task_id = "";
        }
        if !reads.task {
            self.task_stamp = 0;
        }
        if !reads.now {
            self.now = 0;
        }
        if !reads.delegation_depth {
            self.delegation_depth = 0;
        }
        if !reads.identity_expires_at {
            self.identity_expires_at = 0;
        }
        if !reads.oidc {
            self.claims = &NO_CLAIMS;
        }
        if !reads.input {
            self.input = "";
        }
        self
    }
}

#[derive(Debug)]
struct Entry {
    spiffe_id: Box<str>,
    proof: Box<str>,
    action: Box<str>,
    resource: Box<str>,
    context: Box<str>,
    task_id: Box<str>,
    now: u64,
    delegation_depth: u32,
    identity_expires_at: u64,
    task_stamp: u64,
    ttl_cap: u32,
    claims: BTreeMap<String, String>,
    input: Box<str>,
    decision: Decision,
}

impl Entry {
    fn is(&self, k: &Key<'_>) -> bool {
        self.now == k.now
            && self.delegation_depth == k.delegation_depth
            && self.identity_expires_at == k.identity_expires_at
            && self.task_stamp == k.task_stamp
            && self.ttl_cap == k.ttl_cap
            && same_text(&self.spiffe_id, k.spiffe_id)
            && same_text(&self.action, k.action)
            && same_text(&self.resource, k.resource)
            && same_text(&self.proof, k.proof)
            && same_text(&self.context, k.context)
            && same_text(&self.task_id, k.task_id)
            && self.claims == *k.claims
            && same_text(&self.input, k.input)
    }
}

/// One policy as the memo sees it: the action its scope is `==` to and the entity type its
/// resource scope names (`resource is T`, `resource == T::"…"`), `None` where the scope does
/// not pin them, and what its body reads of Writ's context keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyReads {
    pub action: Option<String>,
    pub resource_type: Option<String>,
    pub reads: Reads,
}

/// The entity type of a resource uid's text (`Ns::Type::"id"` → `Ns::Type`), when the text is
/// plainly written; `None` (so every policy counts) when it is not — whitespace, comments or
/// no quoted id — rather than guess how Cedar would read it.
pub fn resource_type(resource: &str) -> Option<&str> {
    let at = resource.as_bytes().windows(3).position(|w| w == b"::\"")?;
    let ty = &resource[..at];
    let plain = !ty.is_empty() && ty.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
    plain.then_some(ty)
}

/// What the policies that can apply to `action` on `resource` read: those whose scope names
/// that action (or none) and that resource's type (or none).
pub fn reads_for(policies: &[PolicyReads], action: &str, resource: &str) -> Reads {
    applicable(policies, action, resource).fold(Reads::default(), |acc, p| acc.union(p.reads))
}

fn applicable<'p>(
    policies: &'p [PolicyReads],
    action: &'p str,
    resource: &'p str,
) -> impl Iterator<Item = &'p PolicyReads> {
    let ty = resource_type(resource);
    policies.iter().filter(move |p| p.action.as_deref().is_none_or(|a| a == action)).filter(move |p| {
        match (&p.resource_type, ty) {
            (Some(want), Some(got)) => want == got,
            _ => true,
        }
    })
}

/// What a general evaluation was decided at besides its text: the lifetime cap, the second
/// (when a policy reads `now`) and the task record's stamp.
pub type GeneralAt = (u32, Option<u64>, u64);

/// A general evaluation, what it was decided at, and the decision.
type GeneralEntry = (crate::Evaluation, GeneralAt, Decision);

type Seeded = foldhash::quality::FixedState;
/// Entries by their seeded hash (a bucket holds more than one only on a 64-bit collision).
type Buckets<E> = BoundedMap<u64, Vec<E>, Seeded>;

/// A resource type (`None`: not plainly written) and what its key holds.
type TypeReads = (Option<Box<str>>, Reads);

/// Resource types kept per action.
const MAX_TYPES_PER_ACTION: usize = 64;

/// Decisions by request, for one loaded policy store. Looked up without building a key: a
/// hit is a seeded hash plus an equality match on every field.
///
/// What a request's key holds depends on its action: only the policies that can apply to the
/// action (its `action ==` scope, or none) are asked what they read, so a pack where only
/// `deploy` policies read `context.now` still remembers `read` decisions across seconds.
#[derive(Debug)]
pub struct DecisionMemo {
    policies: Vec<PolicyReads>,
    /// By action, then resource type (`None`: not plainly written): what its key holds. The
    /// types are scanned, at most [`MAX_TYPES_PER_ACTION`]: a second hash lookup on every
    /// request cost more than the few entries.
    by_action: BoundedMap<String, Vec<TypeReads>, Seeded>,
    hasher: Seeded,
    /// Decisions that do not depend on the time.
    timeless: Buckets<Entry>,
    /// Decisions of the current second (their policies read `now`).
    timed: Buckets<Entry>,
    second: u64,
    /// General (AuthZEN-shaped) evaluations by their whole text and the lifetime cap.
    general: Buckets<GeneralEntry>,
    /// Whether `input` is in every key, read or not: with a schema a request's input is
    /// validated against its action's context type, so it decides even when no policy reads it.
    input_always: bool,
}

impl DecisionMemo {
    pub fn new(policies: Vec<PolicyReads>, seed: u64) -> Self {
        DecisionMemo {
            policies,
            by_action: BoundedMap::with_hasher(MAX_MEMO_ENTRIES, Seeded::with_seed(seed ^ 0x6163_7469_6f6e)),
            hasher: Seeded::with_seed(seed),
            timeless: BoundedMap::with_hasher(MAX_MEMO_ENTRIES, Seeded::with_seed(seed ^ 0x6d65_6d6f)),
            timed: BoundedMap::with_hasher(MAX_MEMO_ENTRIES, Seeded::with_seed(seed ^ 0x7469_6d65)),
            second: 0,
            general: BoundedMap::with_hasher(MAX_MEMO_ENTRIES, Seeded::with_seed(seed ^ 0x6765_6e65)),
            input_always: false,
        }
    }

    /// This memo with the call's input in every key (a schema validates it).
    pub fn keeping_input(self, on: bool) -> Self {
        DecisionMemo { input_always: on, ..self }
    }

    /// The decision of an identical general evaluation decided `at` the same cap, second
    /// and task record, if one was made (a seeded hash and an equality match; nothing is
    /// cloned on a hit but the decision).
    pub fn get_general(&self, e: &crate::Evaluation, at: GeneralAt) -> Option<Decision> {
        let bucket = self.general.get(&self.hasher.hash_one((e, at)))?;
        bucket.iter().find(|(k, a, _)| *a == at && k == e).map(|(_, _, d)| d.clone())
    }

    pub fn put_general(&mut self, e: &crate::Evaluation, at: GeneralAt, d: &Decision) {
        let hash = self.hasher.hash_one((e, at));
        let bucket = self.general.get_or_insert_with(hash, Vec::new);
        if !bucket.iter().any(|(k, a, _)| *a == at && k == e) {
            bucket.push((e.clone(), at, d.clone()));
        }
    }

    /// What the policies that can apply to `action` on `resource` read of Writ's context keys.
    pub fn reads(&mut self, action: &str, resource: &str) -> Reads {
        let ty = resource_type(resource);
        if let Some((_, r)) =
            self.by_action.get(action).and_then(|types| types.iter().find(|(t, _)| t.as_deref() == ty))
        {
            return *r;
        }
        let mut r = reads_for(&self.policies, action, resource);
        r.input |= self.input_always;
        let types = match self.by_action.get_mut(action) {
            Some(types) => types,
            None => self.by_action.get_or_insert_with(action.to_string(), Vec::new),
        };
        if types.len() >= MAX_TYPES_PER_ACTION {
            types.clear();
        }
        types.push((ty.map(Into::into), r));
        r
    }

    /// How many decisions are kept (one per bucket but on a hash collision).
    pub fn len(&self) -> usize {
        self.timeless.len() + self.timed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The decision of an identical request, if one was made.
    pub fn get(&mut self, key: &Key<'_>) -> Option<Decision> {
        let reads = self.reads(key.action, key.resource);
        let key = key.normalized(reads);
        let buckets = if reads.now {
            if key.now != self.second {
                return None;
            }
            &self.timed
        } else {
            &self.timeless
        };
        let bucket = buckets.get(&self.hasher.hash_one(key))?;
        bucket.iter().find(|e| e.is(&key)).map(|e| e.decision.clone())
    }

    pub fn put(&mut self, key: &Key<'_>, decision: &Decision) {
        let reads = self.reads(key.action, key.resource);
        let key = key.normalized(reads);
        // Decisions of an older second will not be asked for again.
        if reads.now && key.now != self.second {
            self.timed.clear();
            self.second = key.now;
        }
        let entry = Entry {
            spiffe_id: key.spiffe_id.into(),
            proof: key.proof.into(),
            action: key.action.into(),
            resource: key.resource.into(),
            context: key.context.into(),
            task_id: key.task_id.into(),
            now: key.now,
            delegation_depth: key.delegation_depth,
            identity_expires_at: key.identity_expires_at,
            task_stamp: key.task_stamp,
            ttl_cap: key.ttl_cap,
            claims: key.claims.clone(),
            input: key.input.into(),
            decision: decision.clone(),
        };
        let hash = self.hasher.hash_one(key);
        let buckets = if reads.now { &mut self.timed } else { &mut self.timeless };
        let bucket = buckets.get_or_insert_with(hash, Vec::new);
        if !bucket.iter().any(|e| e.is(&key)) {
            bucket.push(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cedar_policy::PolicySet;
    use std::str::FromStr as _;

    fn reads(text: &str) -> Reads {
        let set = PolicySet::from_str(text).unwrap();
        let ests: Vec<Value> = set.policies().map(|p| p.to_json().unwrap()).collect();
        Reads::of_policies(&ests)
    }

    #[test]
    fn named_attributes_are_found_wherever_they_are_read() {
        assert_eq!(reads("permit(principal, action, resource);"), Reads::default());
        let r = reads(r#"permit(principal, action, resource) when { context.now > 5 && context has task_id };"#);
        assert_eq!(r, Reads { now: true, task_id: true, ..Reads::default() });
        let r = reads(r#"forbid(principal, action, resource) unless { context["delegation_depth"] < 2 };"#);
        assert_eq!(r, Reads { delegation_depth: true, ..Reads::default() });
        // The caller's own keys do not matter here: the context text is always in the key.
        assert_eq!(
            reads(r#"permit(principal, action, resource) when { context.destination.external };"#),
            Reads::default()
        );
        // Nested inside other expressions.
        let r = reads(
            r#"permit(principal, action, resource) when { if principal.x then [context.identity_expires_at].contains(1) else false };"#,
        );
        assert_eq!(r, Reads { identity_expires_at: true, ..Reads::default() });
    }

    #[test]
    fn context_used_as_a_whole_counts_as_reading_everything() {
        assert_eq!(reads(r#"permit(principal, action, resource) when { context == principal.expected };"#), Reads::ALL);
        assert_eq!(
            reads(r#"permit(principal, action, resource) when { [context].contains(principal.expected) };"#),
            Reads::ALL
        );
    }

    fn any(reads: Reads) -> PolicyReads {
        PolicyReads { action: None, resource_type: None, reads }
    }

    #[test]
    fn resource_types_are_read_only_from_plain_uids() {
        assert_eq!(resource_type(r#"Dataset::"x""#), Some("Dataset"));
        assert_eq!(resource_type(r#"Acme::Doc::"a::\"b""#), Some("Acme::Doc"));
        assert_eq!(resource_type(r#"Dataset :: "x""#), None);
        assert_eq!(
            resource_type(
                r#"Dataset//c
::"x""#
            ),
            None
        );
        assert_eq!(resource_type("Dataset"), None);
        assert_eq!(resource_type(r#"::"x""#), None);
        let payroll = PolicyReads {
            action: Some("read".into()),
            resource_type: Some("PayrollRecord".into()),
            reads: Reads { task_id: true, ..Reads::default() },
        };
        let p = [payroll];
        assert!(reads_for(&p, "read", r#"PayrollRecord::"r""#).task_id);
        assert!(!reads_for(&p, "read", r#"Dataset::"d""#).task_id, "the payroll policy cannot apply to a dataset");
        assert!(reads_for(&p, "read", r#"PayrollRecord ::"r""#).task_id, "not plainly written: every policy counts");
    }

    fn key<'a>(resource: &'a str, now: u64) -> Key<'a> {
        Key {
            spiffe_id: "spiffe://a/b",
            proof: "x509-svid",
            action: "read",
            resource,
            context: "",
            task_id: "t",
            now,
            delegation_depth: 0,
            identity_expires_at: 9,
            task_stamp: 0,
            ttl_cap: 3600,
            claims: &NO_CLAIMS,
            input: "",
        }
    }

    #[test]
    fn a_hit_needs_every_read_field_equal() {
        let allow = Decision { allow: true, reasons: vec!["p".into()], errors: vec![], max_ttl_secs: 60 };
        let mut m = DecisionMemo::new(vec![any(Reads { now: true, ..Reads::default() })], 7);
        m.put(&key("R::\"1\"", 10), &allow);
        assert_eq!(m.get(&key("R::\"1\"", 10)), Some(allow.clone()));
        assert_eq!(m.get(&key("R::\"2\"", 10)), None);
        assert_eq!(m.get(&key("R::\"1\"", 11)), None, "now is read: another second misses");
        // Unread fields do not matter.
        let mut other_task = key("R::\"1\"", 10);
        other_task.task_id = "u";
        assert_eq!(m.get(&other_task), Some(allow.clone()));
        // A new second starts over.
        m.put(&key("R::\"1\"", 11), &allow);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn only_the_policies_of_an_action_decide_what_its_key_holds() {
        let d = Decision::default();
        let deploy_reads_now = PolicyReads {
            action: Some("deploy".into()),
            resource_type: None,
            reads: Reads { now: true, ..Reads::default() },
        };
        let mut m =
            DecisionMemo::new(vec![deploy_reads_now, any(Reads { delegation_depth: true, ..Reads::default() })], 3);
        assert_eq!(m.reads("read", "R::\"1\""), Reads { delegation_depth: true, ..Reads::default() });
        assert_eq!(m.reads("deploy", "R::\"1\""), Reads { now: true, delegation_depth: true, ..Reads::default() });
        m.put(&key("R::\"1\"", 10), &d);
        assert_eq!(m.get(&key("R::\"1\"", 99)), Some(d.clone()), "`read` does not depend on the time");
        let mut deploy = key("R::\"1\"", 10);
        deploy.action = "deploy";
        m.put(&deploy, &d);
        assert_eq!(m.get(&deploy), Some(d.clone()));
        deploy.now = 11;
        assert_eq!(m.get(&deploy), None);
        // A new second drops the timed decisions, not the timeless ones.
        m.put(&deploy, &d);
        assert_eq!(m.len(), 2);
        assert!(m.get(&key("R::\"1\"", 12)).is_some());
    }

    #[test]
    fn verified_claims_are_part_of_the_key_only_when_a_policy_reads_them() {
        let allow = Decision { allow: true, reasons: vec!["p".into()], errors: vec![], max_ttl_secs: 60 };
        let pod = |name: &str| BTreeMap::from([("pod_name".to_string(), name.to_string())]);
        let (a, b) = (pod("a"), pod("b"));
        let with = |claims| Key { claims, ..key("R::\"1\"", 10) };
        let (ka, kb) = (with(&a), with(&b));
        let mut reading = DecisionMemo::new(vec![any(Reads { oidc: true, ..Reads::default() })], 7);
        reading.put(&ka, &allow);
        assert_eq!(reading.get(&ka), Some(allow.clone()));
        assert_eq!(reading.get(&kb), None, "another pod's claims miss");
        let mut blind = DecisionMemo::new(vec![any(Reads::default())], 7);
        blind.put(&ka, &allow);
        assert_eq!(blind.get(&kb), Some(allow), "no policy reads them: one entry serves both");
        assert!(Reads::of_policies([&serde_json::json!({".": {"left": {"Var": "context"}, "attr": "oidc"}})]).oidc);
    }

    #[test]
    fn the_memo_is_bounded() {
        let d = Decision::default();
        let mut m = DecisionMemo::new(vec![], 1);
        let names: Vec<String> = (0..MAX_MEMO_ENTRIES + 10).map(|i| format!("R::\"{i}\"")).collect();
        for n in &names {
            m.put(&key(n, 0), &d);
        }
        assert!(m.len() <= MAX_MEMO_ENTRIES);
        assert_eq!(m.get(&key(&names[names.len() - 1], 0)), Some(d));
    }
}
