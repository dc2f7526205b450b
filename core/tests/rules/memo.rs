//! The policy store's per-caller and per-second caches never change a decision: a store that
//! has served any sequence of requests answers each one exactly as a freshly loaded store does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use writ_core::authz::{PolicyStore, RequestEnv};
use writ_core::{Intent, Proof};

/// One policy per Writ context key and identity attribute, each on its own action.
const POLICIES: &str = r#"
@id("task") permit(principal, action == Action::"a0", resource) when { context.task_id == "t1" };
@id("now") permit(principal, action == Action::"a1", resource) when { context.now >= 1000 };
@id("depth") permit(principal, action == Action::"a2", resource) when { context.delegation_depth < 2 };
@id("exp") permit(principal, action == Action::"a3", resource) when { context.identity_expires_at > 2500 };
@id("proof") permit(principal, action == Action::"a4", resource) when { principal has proof && principal.proof == "x509-svid" };
@id("who") permit(principal == Agent::"spiffe://t.example/a1", action, resource == X::"r1");
@id("agent") permit(principal, action == Action::"a5", resource is Agent) when { resource.path == "/a2" };
"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn cached_equals_fresh(
        requests in proptest::collection::vec(
            (0u8..3, any::<bool>(), 0u8..6, 0u8..3, any::<bool>(), 999u64..1002, 0u32..3, any::<bool>(), any::<bool>()),
            1..40,
        ),
    ) {
        let cached = PolicyStore::load(POLICIES, None, None).unwrap();
        for (p, jwt, a, r, task1, now, depth, late_expiry, with_context) in requests {
            let proof = if jwt { Proof::JwtSvid } else { Proof::X509Svid };
            let who = crate::identity(format!("spiffe://t.example/a{p}"), if late_expiry { 3_000 } else { 2_000 }, proof);
            let resource = match r {
                0 => r#"X::"r0""#.to_string(),
                1 => r#"X::"r1""#.to_string(),
                _ => r#"Agent::"spiffe://t.example/a2""#.to_string(),
            };
            let what = Intent {
                action: format!("a{a}"),
                resource,
                task_id: if task1 { "t1".into() } else { "t0".into() },
                context: if with_context { r#"{"extra": 1}"#.into() } else { String::new() },
                input: String::new(),
            };
            let env = RequestEnv::at(now, depth);
            let fresh = PolicyStore::load(POLICIES, None, None).unwrap().check(&who, &what, &env, 3600);
            prop_assert_eq!(cached.check(&who, &what, &env, 3600), fresh);
        }
    }
}

/// A schema under which some (action, resource type) pairs are invalid requests.
const SCHEMA: &str = r#"
type Ctx = { task_id: String, now: Long, delegation_depth: Long, identity_expires_at: Long, claimed?: { extra?: Long } };
entity Agent { trust_domain: String, path: String, proof?: String };
entity Doc;
entity Tool;
action read appliesTo { principal: Agent, resource: Doc, context: Ctx };
action invoke appliesTo { principal: Agent, resource: Tool, context: Ctx };
"#;

const SCHEMA_POLICIES: &str = r#"
@id("read") permit(principal, action == Action::"read", resource) when { context.now >= 1000 };
@id("invoke") permit(principal, action == Action::"invoke", resource) when { principal has proof && principal.proof == "x509-svid" };
"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// With a schema, requests known to validate skip re-validation: a store that has served
    /// any sequence (valid and invalid pairs mixed) answers each like a fresh one.
    #[test]
    fn cached_validation_equals_fresh(
        requests in proptest::collection::vec((any::<bool>(), any::<bool>(), 999u64..1002, any::<bool>(), any::<bool>()), 1..30),
    ) {
        let cached = PolicyStore::load(SCHEMA_POLICIES, Some(SCHEMA), None).unwrap();
        for (read, doc, now, jwt, with_context) in requests {
            let who = crate::identity("spiffe://t.example/a", 3_000, if jwt { Proof::JwtSvid } else { Proof::X509Svid });
            let what = Intent {
                action: if read { "read" } else { "invoke" }.into(),
                resource: if doc { r#"Doc::"d""# } else { r#"Tool::"t""# }.into(),
                task_id: "t".into(),
                context: if with_context { r#"{"extra": 1}"#.into() } else { String::new() },
                input: String::new(),
            };
            let env = RequestEnv::at(now, 0);
            let fresh = PolicyStore::load(SCHEMA_POLICIES, Some(SCHEMA), None).unwrap().check(&who, &what, &env, 3600);
            let got = cached.check(&who, &what, &env, 3600);
            // An invalid pair is an error every time, never allowed.
            prop_assert_eq!(!fresh.errors.is_empty(), read != doc);
            prop_assert_eq!(got, fresh);
        }
    }
}

/// Policies that read none of Writ's time keys (so the decision memo keys requests without
/// the second), one that reads the caller's context, and one that uses `context` as a whole
/// (so the memo must key on everything).
const UNTIMED: &str = r#"
@id("task") permit(principal, action == Action::"a0", resource) when { context.task_id == "t1" };
@id("dest") forbid(principal, action, resource) when { context has dest && context.dest == "out" };
@id("any") permit(principal, action == Action::"a1", resource == X::"r1");
@id("err") permit(principal, action == Action::"a2", resource) when { context.missing == 1 };
@id("late") permit(principal, action == Action::"a3", resource) when { context.now >= 1000 };
@id("deep") forbid(principal, action, resource) when { context.delegation_depth > 0 && context has dest };
@id("typed") permit(principal, action == Action::"a1", resource is Y) when { context.now >= 1000 };
@id("one") permit(principal, action == Action::"a2", resource == Y::"r1") when { context.task_id == "t1" };
"#;
const WHOLE: &str = r#"
@id("whole") permit(principal, action == Action::"a0", resource) when { context == {"task_id": "t1", "now": 1000, "delegation_depth": 0, "identity_expires_at": 3000} };
"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// With the decision memo on, any sequence of requests (times, tasks, contexts, callers
    /// varying) gets exactly the answers of a store that evaluates every request.
    #[test]
    fn the_decision_memo_answers_like_evaluation(
        whole in any::<bool>(),
        requests in proptest::collection::vec(
            (0u8..2, 0u8..4, 0u8..5, any::<bool>(), 999u64..1002, 0u32..2, 0u8..3, any::<bool>()),
            1..40,
        ),
    ) {
        let text = if whole { WHOLE } else { UNTIMED };
        let memo = PolicyStore::load_with(text, None, None, Some(5)).unwrap();
        let evaluated = PolicyStore::load_with(text, None, None, None).unwrap();
        prop_assert_eq!(memo.reads("a0", "X::\"r0\"").now, whole);
        prop_assert_eq!(memo.reads("a3", "X::\"r0\"").now, !whole);
        for (p, a, r, task1, now, depth, ctx, late_expiry) in requests {
            let who = crate::identity(format!("spiffe://t.example/a{p}"), if late_expiry { 3_000 } else { 2_000 }, Proof::X509Svid);
            let what = Intent {
                action: format!("a{a}"),
                resource: if r < 3 { format!("X::\"r{r}\"") } else { format!("Y::\"r{}\"", r - 3) },
                task_id: if task1 { "t1".into() } else { "t0".into() },
                context: match ctx { 0 => String::new(), 1 => r#"{"dest":"out"}"#.into(), _ => r#"{"dest":"in"}"#.into() },
                input: String::new(),
            };
            let env = RequestEnv::at(now, depth);
            prop_assert_eq!(memo.check(&who, &what, &env, 3600), evaluated.check(&who, &what, &env, 3600));
            // And with another lifetime cap.
            prop_assert_eq!(memo.check(&who, &what, &env, 60), evaluated.check(&who, &what, &env, 60));
        }
    }
}
