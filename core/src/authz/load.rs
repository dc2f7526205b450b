//! Loading a policy set: bounded in size, nesting and operators before Cedar sees it, parsed,
//! re-identified by `@id`, `@ttl` read, and — with a schema — strictly validated, entities
//! parsed against it. Errors carry the line and column Cedar points at.

use super::caches::Caches;
use super::index::PolicyIndex;
use super::store::PolicyStore;
use super::{AGENT_TYPE, MAX_NESTING, MAX_POLICY_BYTES, MAX_POLICY_OPERATORS};
use crate::error::{Error, Result};
use crate::memo::{DecisionMemo, PolicyReads, Reads};
use crate::spiffe_id::clip;
use cedar_policy::{
    Authorizer, Entities, EntityTypeName, Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator,
};
use std::collections::{HashMap, HashSet};
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};

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
        let mut budgets = HashMap::new();
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
            if let Some(n) = p.annotation("max_calls") {
                if p.effect() != cedar_policy::Effect::Permit {
                    return Err(policy_err(format!(
                        "policy `{}`: `@max_calls` caps what a permit allows; a forbid has no budget",
                        p.id()
                    )));
                }
                let calls = parse_max_calls(n).ok_or_else(|| {
                    policy_err(format!(
                        "policy `{}`: `@max_calls(\"{}\")` is not a whole number from 1 to {MAX_CALLS_PER_TASK}",
                        p.id(),
                        clip(n)
                    ))
                })?;
                budgets.insert(p.id().clone(), calls);
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
        let entity_count = entities.iter().count();
        let entities_for_general = entities.clone();
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
        let memo =
            memo_seed.map(|seed| Mutex::new(DecisionMemo::new(reads.clone(), seed).keeping_input(schema.is_some())));
        let reads_any = reads.iter().fold(Reads::default(), |acc: Reads, p: &PolicyReads| acc.union(p.reads));
        Ok(PolicyStore {
            reads_any,
            index: PolicyIndex::new(&policies_set),
            policies: policies_set,
            schema,
            entities,
            ttls,
            budgets,
            authorizer: Authorizer::new(),
            caches: Caches::new(entity_count),
            memo,
            reads,
            loaded: Arc::new(entities_for_general),
            agent_type: EntityTypeName::from_str(AGENT_TYPE).map_err(|e| policy_err(e.to_string()))?,
            action_type: EntityTypeName::from_str("Action").map_err(|e| policy_err(e.to_string()))?,
        })
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

/// Deepest bracket nesting in `text`, outside string literals (shared with the hosts).
pub use writ_types::nesting::nesting_depth;

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

/// The largest `@max_calls` budget: what one task may spend of one policy (the ledger
/// remembers each call it counts).
pub const MAX_CALLS_PER_TASK: u32 = 10_000;

/// Parse a `@max_calls` annotation: a whole number from 1 to [`MAX_CALLS_PER_TASK`].
pub fn parse_max_calls(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|n| (1..=MAX_CALLS_PER_TASK).contains(n))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_calls_annotations() {
        assert_eq!(parse_max_calls("3"), Some(3));
        assert_eq!(parse_max_calls(" 10000 "), Some(10_000));
        assert_eq!(parse_max_calls("0"), None);
        assert_eq!(parse_max_calls("10001"), None);
        assert_eq!(parse_max_calls("-1"), None);
        assert_eq!(parse_max_calls("+2"), None);
        assert_eq!(parse_max_calls("two"), None);
        assert_eq!(parse_max_calls(""), None);
    }

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
