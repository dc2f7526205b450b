//! Policy conditions compiled past Cedar's interpreter: the common shapes of real packs —
//! attribute access on the principal, resource and context, `has` guards, equality,
//! membership (`contains`, `in`, `is`), comparisons, sums and differences of longs, `&&`,
//! `||`, `!` and literals — compiled from the policy's JSON syntax tree (EST) once, the first
//! time a slice holds the policy, and evaluated directly against the request's entities and
//! context.
//!
//! The evaluator is exact by refusal: it answers `Some(satisfied)` only where Cedar would give
//! that same answer without an error, and `None` for anything else (an attribute that is
//! missing, a value of another type, an entity not in the store, a set or record compared, an
//! extension value). On `None` the slice falls back to Cedar for all its conditional policies
//! (see `index`), so a compiled condition never changes a decision, a reason or an error. A
//! policy using any form not listed here is not compiled at all: Cedar evaluates it.

use cedar_policy::{Context, Entities, EntityUid, EvalResult, Policy, ResourceConstraint};
use serde_json::Value;
use std::borrow::Cow;

/// A compiled condition expression.
#[derive(Debug)]
pub(super) enum Expr {
    Lit(EvalResult),
    Principal,
    Resource,
    Context,
    /// `left.attr`
    Attr(Box<Expr>, String),
    /// `left has attr`
    Has(Box<Expr>, String),
    Eq(Box<Expr>, Box<Expr>),
    NotEq(Box<Expr>, Box<Expr>),
    /// A comparison of two longs.
    Cmp(Cmp, Box<Expr>, Box<Expr>),
    /// `left + right` (`true`) or `left - right` (`false`) of two longs, checked as Cedar does.
    Add(bool, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// `left.contains(right)`
    Contains(Box<Expr>, Box<Expr>),
    /// `left in right` (an entity, or a set of entities)
    In(Box<Expr>, Box<Expr>),
    /// `left is type` (`in right` when given)
    Is(Box<Expr>, cedar_policy::EntityTypeName, Option<Box<Expr>>),
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

/// A policy whose conditions compiled: what the index needs to decide it without Cedar.
#[derive(Debug)]
pub(super) struct CompiledPolicy {
    pub(super) id: cedar_policy::PolicyId,
    pub(super) forbid: bool,
    resource: ResourceConstraint,
    /// The policy's condition: its `when` bodies and negated `unless` bodies, in order.
    condition: Expr,
    /// The context keys the condition reads.
    pub(super) context_keys: Vec<String>,
}

/// What a compiled condition reads: the request's principal, resource and context, and the
/// entities it is decided against. The context keys the slice's conditions read are converted
/// once per request (Cedar hands out context values by copy).
pub(super) struct Env<'a> {
    resource_uid: &'a EntityUid,
    principal: EvalResult,
    resource: EvalResult,
    /// The context keys read, with their values; `None` when the context is not known.
    context: Option<Vec<(&'a str, Option<EvalResult>)>>,
    entities: &'a Entities,
}

impl<'a> Env<'a> {
    pub(super) fn new(
        principal: &'a EntityUid,
        resource: &'a EntityUid,
        context: Option<&Context>,
        keys: &'a [String],
        entities: &'a Entities,
    ) -> Env<'a> {
        Env {
            resource_uid: resource,
            principal: EvalResult::EntityUid(principal.clone()),
            resource: EvalResult::EntityUid(resource.clone()),
            context: context.map(|c| keys.iter().map(|k| (k.as_str(), c.get(k))).collect()),
            entities,
        }
    }

    /// The context's value for `key`: `None` when the context is not known or the key was not
    /// converted (never, for a compiled condition), `Some(None)` when it has no such key.
    fn context_value(&self, key: &str) -> Option<Option<&EvalResult>> {
        self.context.as_ref()?.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_ref())
    }
}

impl CompiledPolicy {
    /// The policy compiled, when it is static and its conditions use only the supported forms.
    pub(super) fn compile(policy: &Policy) -> Option<CompiledPolicy> {
        if !policy.is_static() || !policy.has_non_scope_constraint() {
            return None;
        }
        let est = policy.to_json().ok()?;
        let mut condition: Option<Expr> = None;
        for c in est.get("conditions")?.as_array()? {
            let body = expr(c.get("body")?, 0)?;
            let part = match c.get("kind")?.as_str()? {
                "when" => body,
                "unless" => Expr::Not(Box::new(body)),
                _ => return None,
            };
            condition = Some(match condition {
                None => part,
                Some(before) => Expr::And(Box::new(before), Box::new(part)),
            });
        }
        let condition = condition?;
        let mut context_keys = Vec::new();
        context_read(&condition, &mut context_keys);
        Some(CompiledPolicy {
            id: policy.id().clone(),
            forbid: policy.effect() == cedar_policy::Effect::Forbid,
            resource: policy.resource_constraint(),
            condition,
            context_keys,
        })
    }

    /// Whether the policy is satisfied (its principal and action scopes are known to match):
    /// `None` when only Cedar can say (see the module docs).
    pub(super) fn satisfied(&self, env: &Env<'_>) -> Option<bool> {
        let in_scope = match &self.resource {
            ResourceConstraint::Any => true,
            ResourceConstraint::Eq(uid) => uid == env.resource_uid,
            ResourceConstraint::In(group) => is_in(env.resource_uid, group, env.entities),
            ResourceConstraint::Is(ty) => ty == env.resource_uid.type_name(),
            ResourceConstraint::IsIn(ty, group) => {
                ty == env.resource_uid.type_name() && is_in(env.resource_uid, group, env.entities)
            }
        };
        if !in_scope {
            return Some(false);
        }
        as_bool(&*eval(&self.condition, env)?)
    }
}

/// The context keys `e` reads (`context.key`, `context has key`), added to `keys`.
fn context_read(e: &Expr, keys: &mut Vec<String>) {
    match e {
        Expr::Attr(l, a) | Expr::Has(l, a) if matches!(**l, Expr::Context) => {
            if !keys.contains(a) {
                keys.push(a.clone());
            }
        }
        Expr::Attr(l, _) | Expr::Has(l, _) | Expr::Not(l) => context_read(l, keys),
        Expr::Eq(l, r)
        | Expr::NotEq(l, r)
        | Expr::Cmp(_, l, r)
        | Expr::Add(_, l, r)
        | Expr::And(l, r)
        | Expr::Or(l, r)
        | Expr::Contains(l, r)
        | Expr::In(l, r) => {
            context_read(l, keys);
            context_read(r, keys);
        }
        Expr::Is(l, _, g) => {
            context_read(l, keys);
            if let Some(g) = g {
                context_read(g, keys);
            }
        }
        Expr::Lit(_) | Expr::Principal | Expr::Resource | Expr::Context => {}
    }
}

/// Nesting compiled at most (policies are bounded at load; this bounds the recursion here too).
const MAX_DEPTH: usize = 64;

/// One EST expression compiled, or `None` for a form the evaluator does not take.
fn expr(v: &Value, depth: usize) -> Option<Expr> {
    if depth > MAX_DEPTH {
        return None;
    }
    let o = v.as_object()?;
    if o.len() != 1 {
        return None;
    }
    let (op, arg) = o.iter().next()?;
    Some(match op.as_str() {
        "Value" => Expr::Lit(literal(arg)?),
        "Var" => match arg.as_str()? {
            "principal" => Expr::Principal,
            "resource" => Expr::Resource,
            "context" => Expr::Context,
            _ => return None,
        },
        "." | "has" => {
            let left = Box::new(expr(arg.get("left")?, depth + 1)?);
            let attr = arg.get("attr")?.as_str()?.to_string();
            if op == "." { Expr::Attr(left, attr) } else { Expr::Has(left, attr) }
        }
        "==" | "!=" | "<" | "<=" | ">" | ">=" | "+" | "-" | "&&" | "||" | "contains" | "in" => {
            let (l, r) = (Box::new(expr(arg.get("left")?, depth + 1)?), Box::new(expr(arg.get("right")?, depth + 1)?));
            match op.as_str() {
                "==" => Expr::Eq(l, r),
                "!=" => Expr::NotEq(l, r),
                "<" => Expr::Cmp(Cmp::Lt, l, r),
                "<=" => Expr::Cmp(Cmp::Le, l, r),
                ">" => Expr::Cmp(Cmp::Gt, l, r),
                ">=" => Expr::Cmp(Cmp::Ge, l, r),
                "+" | "-" => Expr::Add(op == "+", l, r),
                "&&" => Expr::And(l, r),
                "||" => Expr::Or(l, r),
                "contains" => Expr::Contains(l, r),
                _ => Expr::In(l, r),
            }
        }
        "!" => Expr::Not(Box::new(expr(arg.get("arg")?, depth + 1)?)),
        "is" => {
            let left = Box::new(expr(arg.get("left")?, depth + 1)?);
            let ty = std::str::FromStr::from_str(arg.get("entity_type")?.as_str()?).ok()?;
            let within = match arg.get("in") {
                None => None,
                Some(r) => Some(Box::new(expr(r, depth + 1)?)),
            };
            Expr::Is(left, ty, within)
        }
        _ => return None,
    })
}

/// A literal: a boolean, a long, a string, or an entity reference.
fn literal(v: &Value) -> Option<EvalResult> {
    Some(match v {
        Value::Bool(b) => EvalResult::Bool(*b),
        Value::Number(n) => EvalResult::Long(n.as_i64()?),
        Value::String(s) => EvalResult::String(s.clone()),
        Value::Object(o) => {
            let e = o.get("__entity")?;
            if o.len() != 1 {
                return None;
            }
            EvalResult::EntityUid(entity_uid(e.get("type")?.as_str()?, e.get("id")?.as_str()?)?)
        }
        _ => return None,
    })
}

fn entity_uid(type_name: &str, id: &str) -> Option<EntityUid> {
    use std::str::FromStr as _;
    let ty = cedar_policy::EntityTypeName::from_str(type_name).ok()?;
    Some(EntityUid::from_type_name_and_id(ty, cedar_policy::EntityId::new(id)))
}

fn as_bool(v: &EvalResult) -> Option<bool> {
    match v {
        EvalResult::Bool(b) => Some(*b),
        _ => None,
    }
}

/// A value `==` compares as Cedar does by plain equality: no set, record or extension value.
fn primitive(v: &EvalResult) -> bool {
    matches!(v, EvalResult::Bool(_) | EvalResult::Long(_) | EvalResult::String(_) | EvalResult::EntityUid(_))
}

/// Cedar's `member in group`: the same entity, or a descendant of it in the store.
fn is_in(member: &EntityUid, group: &EntityUid, entities: &Entities) -> bool {
    member == group || entities.is_ancestor_of(group, member)
}

/// `member in group` where the group is an entity or a set of entities.
fn within(member: &EntityUid, group: &EvalResult, entities: &Entities) -> Option<bool> {
    match group {
        EvalResult::EntityUid(g) => Some(is_in(member, g, entities)),
        EvalResult::Set(set) => {
            let mut any = false;
            for g in set.iter() {
                let EvalResult::EntityUid(g) = g else { return None };
                any |= is_in(member, g, entities);
            }
            Some(any)
        }
        _ => None,
    }
}

/// A value an expression evaluates to: borrowed from the policy, the request or its converted
/// context where it can be, owned where it is computed or read from an entity.
type Val<'a> = Cow<'a, EvalResult>;

fn long(v: &EvalResult) -> Option<i64> {
    match v {
        EvalResult::Long(n) => Some(*n),
        _ => None,
    }
}

fn eval<'a>(e: &'a Expr, env: &'a Env<'a>) -> Option<Val<'a>> {
    let owned = |v: EvalResult| Some(Cow::Owned(v));
    let boolean = |b: bool| Some(Cow::Owned(EvalResult::Bool(b)));
    match e {
        Expr::Lit(v) => Some(Cow::Borrowed(v)),
        Expr::Principal => Some(Cow::Borrowed(&env.principal)),
        Expr::Resource => Some(Cow::Borrowed(&env.resource)),
        // `context` as a whole is not a value the evaluator compares.
        Expr::Context => None,
        Expr::Attr(left, attr) => match &**left {
            Expr::Context => Some(Cow::Borrowed(env.context_value(attr)??)),
            _ => match eval(left, env)? {
                Cow::Borrowed(EvalResult::Record(r)) => Some(Cow::Borrowed(r.get(attr)?)),
                Cow::Owned(EvalResult::Record(r)) => owned(r.get(attr)?.clone()),
                v => match &*v {
                    EvalResult::EntityUid(uid) => owned(env.entities.get(uid)?.attr(attr)?.ok()?),
                    _ => None,
                },
            },
        },
        Expr::Has(left, attr) => boolean(match &**left {
            Expr::Context => env.context_value(attr)?.is_some(),
            _ => match &*eval(left, env)? {
                // An entity not in the store: left to Cedar.
                EvalResult::EntityUid(uid) => env.entities.get(uid)?.attr(attr).is_some(),
                EvalResult::Record(r) => r.get(attr).is_some(),
                _ => return None,
            },
        }),
        Expr::Eq(l, r) | Expr::NotEq(l, r) => {
            let (l, r) = (eval(l, env)?, eval(r, env)?);
            if !primitive(&l) || !primitive(&r) {
                return None;
            }
            boolean((l == r) == matches!(e, Expr::Eq(..)))
        }
        Expr::Cmp(cmp, l, r) => {
            let (l, r) = (long(&*eval(l, env)?)?, long(&*eval(r, env)?)?);
            boolean(match cmp {
                Cmp::Lt => l < r,
                Cmp::Le => l <= r,
                Cmp::Gt => l > r,
                Cmp::Ge => l >= r,
            })
        }
        Expr::Add(plus, l, r) => {
            let (l, r) = (long(&*eval(l, env)?)?, long(&*eval(r, env)?)?);
            // Overflow is an error in Cedar.
            owned(EvalResult::Long(if *plus { l.checked_add(r)? } else { l.checked_sub(r)? }))
        }
        Expr::And(l, r) => {
            if !as_bool(&*eval(l, env)?)? {
                return boolean(false);
            }
            boolean(as_bool(&*eval(r, env)?)?)
        }
        Expr::Or(l, r) => {
            if as_bool(&*eval(l, env)?)? {
                return boolean(true);
            }
            boolean(as_bool(&*eval(r, env)?)?)
        }
        Expr::Not(a) => boolean(!as_bool(&*eval(a, env)?)?),
        Expr::Contains(l, r) => {
            let (set, item) = (eval(l, env)?, eval(r, env)?);
            let EvalResult::Set(set) = &*set else { return None };
            if !primitive(&item) {
                return None;
            }
            let mut found = false;
            for member in set.iter() {
                if !primitive(member) {
                    return None;
                }
                found |= *member == *item;
            }
            boolean(found)
        }
        Expr::In(l, r) => {
            let member = eval(l, env)?;
            let EvalResult::EntityUid(member) = &*member else { return None };
            boolean(within(member, &*eval(r, env)?, env.entities)?)
        }
        Expr::Is(l, ty, group) => {
            let uid = eval(l, env)?;
            let EvalResult::EntityUid(uid) = &*uid else { return None };
            let is = uid.type_name() == ty;
            match group {
                // Cedar evaluates `is … in` as `is && in`: the `in` only when the type matches.
                Some(g) if is => boolean(within(uid, &*eval(g, env)?, env.entities)?),
                _ => boolean(is),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cedar_policy::PolicySet;
    use std::str::FromStr as _;

    fn pack() -> Vec<Policy> {
        PolicySet::from_str(writ_types::pack::POLICIES).unwrap().policies().cloned().collect()
    }

    fn compiled(id: &str) -> CompiledPolicy {
        let p = pack().into_iter().find(|p| p.annotation("id") == Some(id)).unwrap();
        CompiledPolicy::compile(&p).unwrap_or_else(|| panic!("{id} compiles"))
    }

    fn uid(s: &str) -> EntityUid {
        EntityUid::from_str(s).unwrap()
    }

    #[test]
    fn most_conditional_pack_policies_compile() {
        let conditional: Vec<Policy> = pack().into_iter().filter(Policy::has_non_scope_constraint).collect();
        let names: Vec<String> = conditional
            .iter()
            .filter(|p| CompiledPolicy::compile(p).is_some())
            .map(|p| p.annotation("id").unwrap_or_default().to_string())
            .collect();
        for id in
            ["tool-allow-list", "ci-deploy-non-production", "analyst-internal-data", "no-high-sensitivity-external"]
        {
            assert!(names.iter().any(|n| n == id), "{id} compiles: {names:?}");
        }
        assert!(
            names.len() * 3 >= conditional.len() * 2,
            "{} of {} compile: {names:?}",
            names.len(),
            conditional.len()
        );
    }

    #[test]
    fn a_compiled_condition_answers_where_cedar_would_and_refuses_elsewhere() {
        let entities = Entities::from_json_str(
            r#"[
              {"uid":{"type":"Agent","id":"a"},"attrs":{"tools":[{"__entity":{"type":"Tool","id":"web"}}]},"parents":[]},
              {"uid":{"type":"Agent","id":"b"},"attrs":{},"parents":[]},
              {"uid":{"type":"Tool","id":"web"},"attrs":{},"parents":[]},
              {"uid":{"type":"Dataset","id":"low"},"attrs":{"sensitivity":1},"parents":[]},
              {"uid":{"type":"Dataset","id":"high"},"attrs":{"sensitivity":3},"parents":[]},
              {"uid":{"type":"Dataset","id":"odd"},"attrs":{"sensitivity":"one"},"parents":[]}
            ]"#,
            None,
        )
        .unwrap();
        let at = |p: &str, r: &str, c: &CompiledPolicy| {
            let (principal, resource) = (uid(p), uid(r));
            c.satisfied(&Env::new(&principal, &resource, None, &[], &entities))
        };
        let tools = compiled("tool-allow-list");
        assert_eq!(at(r#"Agent::"a""#, r#"Tool::"web""#, &tools), Some(true));
        assert_eq!(at(r#"Agent::"a""#, r#"Tool::"shell""#, &tools), Some(false));
        assert_eq!(at(r#"Agent::"b""#, r#"Tool::"web""#, &tools), Some(false), "`has` guards the missing list");
        assert_eq!(at(r#"Agent::"ghost""#, r#"Tool::"web""#, &tools), None, "an unknown entity: Cedar's to say");
        assert_eq!(at(r#"Agent::"a""#, r#"Dataset::"low""#, &tools), Some(false), "out of the resource scope");
        let analyst = compiled("analyst-internal-data");
        assert_eq!(at(r#"Agent::"a""#, r#"Dataset::"low""#, &analyst), Some(true));
        assert_eq!(at(r#"Agent::"a""#, r#"Dataset::"high""#, &analyst), Some(false));
        assert_eq!(at(r#"Agent::"a""#, r#"Dataset::"odd""#, &analyst), None, "a string compared: Cedar errors");
        let deploy = compiled("ci-deploy-non-production");
        assert_eq!(at(r#"Agent::"a""#, r#"Environment::"x""#, &deploy), None, "no such environment: Cedar errors");
    }
}
