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

use super::view::{Env, Val};
use cedar_policy::{Entities, EntityUid, EvalResult, Policy, ResourceConstraint};
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
            ResourceConstraint::Eq(uid) => uid == env.resource,
            ResourceConstraint::In(group) => is_in(env.resource, group, env.entities),
            ResourceConstraint::Is(ty) => ty == env.resource.type_name(),
            ResourceConstraint::IsIn(ty, group) => {
                ty == env.resource.type_name() && is_in(env.resource, group, env.entities)
            }
        };
        if !in_scope {
            return Some(false);
        }
        eval(&self.condition, env)?.as_bool()
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

/// Cedar's `member in group`: the same entity, or a descendant of it in the store.
fn is_in(member: &EntityUid, group: &EntityUid, entities: &Entities) -> bool {
    member == group || entities.is_ancestor_of(group, member)
}

/// `member in group` where the group is an entity or a set of entities.
fn within(member: &EntityUid, group: &Val<'_>, env: &Env<'_>) -> Option<bool> {
    if let Some(g) = env.uid(group) {
        return Some(is_in(member, &g, env.entities));
    }
    let mut any = false;
    group.each_element(|g| {
        any |= is_in(member, &*env.uid(&g)?, env.entities);
        Some(())
    })?;
    Some(any)
}

fn eval<'a>(e: &'a Expr, env: &'a Env<'a>) -> Option<Val<'a>> {
    let boolean = |b: bool| Some(Val::Bool(b));
    match e {
        Expr::Lit(v) => Some(Val::Cedar(Cow::Borrowed(v))),
        Expr::Principal => Some(Val::Uid(env.principal)),
        Expr::Resource => Some(Val::Uid(env.resource)),
        // `context` as a whole is not a value the evaluator compares.
        Expr::Context => None,
        Expr::Attr(left, attr) => match &**left {
            Expr::Context => env.context_value(attr),
            _ => env.attr(eval(left, env)?, attr),
        },
        Expr::Has(left, attr) => boolean(match &**left {
            Expr::Context => env.context_has(attr)?,
            _ => env.has(&eval(left, env)?, attr)?,
        }),
        Expr::Eq(l, r) | Expr::NotEq(l, r) => {
            let (l, r) = (eval(l, env)?, eval(r, env)?);
            boolean(env.same(l.prim()?, r.prim()?) == matches!(e, Expr::Eq(..)))
        }
        Expr::Cmp(cmp, l, r) => {
            let (l, r) = (eval(l, env)?.as_long()?, eval(r, env)?.as_long()?);
            boolean(match cmp {
                Cmp::Lt => l < r,
                Cmp::Le => l <= r,
                Cmp::Gt => l > r,
                Cmp::Ge => l >= r,
            })
        }
        Expr::Add(plus, l, r) => {
            let (l, r) = (eval(l, env)?.as_long()?, eval(r, env)?.as_long()?);
            // Overflow is an error in Cedar.
            Some(Val::Long(if *plus { l.checked_add(r)? } else { l.checked_sub(r)? }))
        }
        Expr::And(l, r) => {
            if !eval(l, env)?.as_bool()? {
                return boolean(false);
            }
            boolean(eval(r, env)?.as_bool()?)
        }
        Expr::Or(l, r) => {
            if eval(l, env)?.as_bool()? {
                return boolean(true);
            }
            boolean(eval(r, env)?.as_bool()?)
        }
        Expr::Not(a) => boolean(!eval(a, env)?.as_bool()?),
        Expr::Contains(l, r) => {
            let (set, item) = (eval(l, env)?, eval(r, env)?);
            let item = item.prim()?;
            let mut found = false;
            set.each_element(|member| {
                found |= env.same(member.prim()?, item);
                Some(())
            })?;
            boolean(found)
        }
        Expr::In(l, r) => {
            let member = eval(l, env)?;
            let member = env.uid(&member)?;
            boolean(within(&member, &eval(r, env)?, env)?)
        }
        Expr::Is(l, ty, group) => {
            let uid = eval(l, env)?;
            let uid = env.uid(&uid)?;
            let is = uid.type_name() == ty;
            match group {
                // Cedar evaluates `is … in` as `is && in`: the `in` only when the type matches.
                Some(g) if is => boolean(within(&uid, &eval(g, env)?, env)?),
                _ => boolean(is),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::view::ContextSource;
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
            let agent = cedar_policy::EntityTypeName::from_str("Agent").unwrap();
            c.satisfied(&Env::new((&principal, &resource), ContextSource::Cedar(Vec::new()), &entities, &agent))
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
