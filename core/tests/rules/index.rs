//! The policy index never changes a decision: for random policy sets and requests, indexed
//! evaluation (slices, and scope-only policies decided without Cedar) gives the same allow,
//! reasons, errors and TTL as evaluating every policy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use writ_core::authz::{PolicyStore, RequestEnv};
use writ_core::{EntityRef, Evaluation};
use writ_core::{Intent, Proof};

fn principal_scope(k: u8) -> String {
    match k % 6 {
        0 => "principal".into(),
        1 => format!("principal == Agent::\"spiffe://t.example/a{}\"", k % 5),
        2 => format!("principal in Role::\"r{}\"", k % 2),
        3 => "principal is Agent".into(),
        4 => format!("principal is Agent in Role::\"r{}\"", k % 2),
        _ => "principal is User".into(),
    }
}

fn action_scope(k: u8) -> String {
    match k % 3 {
        0 => "action".into(),
        1 => format!("action == Action::\"a{}\"", k % 4),
        _ => "action in [Action::\"a0\", Action::\"a1\"]".into(),
    }
}

fn resource_scope(k: u8) -> &'static str {
    match k % 6 {
        0 | 1 => "resource",
        2 => "resource == X::\"s\"",
        3 => "resource is X",
        4 => "resource is Y",
        _ => "resource in X::\"s\"", // a hierarchy: left to Cedar
    }
}

/// A policy condition: the shapes the compiled index takes (attributes of the principal,
/// resource, context and records, `has` guards, equality across types, long comparisons,
/// `contains`, `in`, `is`, `+`, `-`, `&&`, `||`, `!`), each also where it errors in Cedar (a
/// missing attribute, a type mismatch, an overflow), and shapes it leaves to Cedar.
fn condition(k: u8) -> &'static str {
    match k % 25 {
        0 => " when { context.task_id == \"t1\" }",
        1 => " when { principal.missing == 1 }", // an evaluation error
        2 => " unless { resource == X::\"s\" }",
        3 => " when { principal.trust_domain == \"t.example\" }",
        4 => " when { principal has level && principal.level >= 2 }",
        5 => " when { principal.level > 1 }", // errors where there is no level, or it is a string
        6 => " when { resource has owner && resource.owner == principal }",
        7 => " when { context has extra && context.extra == 1 }",
        8 => " when { principal in Role::\"r0\" || resource in X::\"s\" }",
        9 => " unless { principal.tags.contains(\"a\") }",
        10 => " when { principal has tags && principal.tags.contains(\"a\") }",
        11 => " when { resource is X in X::\"top\" }",
        12 => " when { !(principal.trust_domain != \"t.example\") && principal.level < 3 }",
        13 => " when { resource.readers.contains(principal) }",
        14 => " when { principal.level == \"2\" }", // types differ: false, no error
        15 => " when { principal has level && principal.level + 1 > 2 - context.extra }",
        16 => " when { principal.rec.k == 1 }",
        17 => " when { principal in [Role::\"r0\", Role::\"r1\"] }", // a set literal: left to Cedar
        18 => " when { context.extra > 0 }",
        19 => " when { principal is Agent && principal has rec && principal.rec has k }",
        20 => " when { resource.readers.contains(\"a\") }",
        21 => " when { principal.tags == principal.tags }", // sets compared: left to Cedar
        22 => " when { context has task_id } unless { context.task_id == \"t0\" }",
        23 => " when { X::\"nowhere\".attr == 1 }", // an entity not in the store
        _ => " when { principal has level && principal.level + 9223372036854775807 > 0 }", // overflows
    }
}

fn policies(spec: &[(bool, u8, u8, u8, u8)]) -> String {
    spec.iter()
        .enumerate()
        .map(|(i, (permit, p, a, c, ttl))| {
            // Half the policies have no condition (so the index decides those it can).
            let c = if c % 2 == 0 { "" } else { condition(c / 2) };
            let resource = resource_scope(ttl / 3);
            let effect = if *permit { "permit" } else { "forbid" };
            let ttl = if ttl % 3 == 0 { format!("@ttl(\"{}\") ", 60 * u32::from(*ttl)) } else { String::new() };
            format!("@id(\"p{i}\") {ttl}{effect}({}, {}, {}){};\n", principal_scope(*p), action_scope(*a), resource, c)
        })
        .collect()
}

const ENTITIES: &str = r#"[
  {"uid":{"type":"Agent","id":"spiffe://t.example/a0"},"attrs":{"level":1,"tags":["a"],"rec":{"k":1}},"parents":[{"type":"Role","id":"r0"}]},
  {"uid":{"type":"Agent","id":"spiffe://t.example/a1"},"attrs":{"level":3,"tags":["b"],"rec":{}},"parents":[{"type":"Role","id":"r1"}]},
  {"uid":{"type":"Agent","id":"spiffe://t.example/a2"},"attrs":{"level":"2"},"parents":[{"type":"Role","id":"r0"},{"type":"Role","id":"r1"}]},
  {"uid":{"type":"User","id":"u1"},"attrs":{"level":2,"tags":[]},"parents":[{"type":"Role","id":"r1"}]},
  {"uid":{"type":"X","id":"s"},"attrs":{"owner":{"__entity":{"type":"Agent","id":"spiffe://t.example/a0"}},"readers":[{"__entity":{"type":"Agent","id":"spiffe://t.example/a1"}}]},"parents":[{"type":"X","id":"top"}]},
  {"uid":{"type":"X","id":"top"},"attrs":{},"parents":[]},
  {"uid":{"type":"Y","id":"s"},"attrs":{"readers":["a"]},"parents":[]},
  {"uid":{"type":"Role","id":"r0"},"attrs":{},"parents":[]},
  {"uid":{"type":"Role","id":"r1"},"attrs":{},"parents":[]},
  {"uid":{"type":"Action","id":"a0"},"attrs":{},"parents":[]},
  {"uid":{"type":"Action","id":"a3"},"attrs":{},"parents":[{"type":"Action","id":"a0"}]}
]"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn indexed_equals_full_evaluation(
        spec in proptest::collection::vec((any::<bool>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()), 1..24),
        requests in proptest::collection::vec((0u8..6, 0u8..5, 0u8..3, any::<bool>(), any::<bool>()), 1..12),
    ) {
        let store = PolicyStore::load(&policies(&spec), None, Some(ENTITIES)).unwrap();
        for (p, a, res_s, task1, with_context) in requests {
            let who = crate::identity(format!("spiffe://t.example/a{p}"), 2_000, Proof::X509Svid);
            let what = Intent {
                action: format!("a{a}"),
                resource: [r#"X::"s""#, r#"X::"r""#, r#"Y::"s""#][usize::from(res_s)].into(),
                task_id: if task1 { "t1".into() } else { "t0".into() },
                context: if with_context { r#"{"extra": 1}"#.into() } else { String::new() },
                input: String::new(),
            };
            let env = RequestEnv::at(1_000, 0);
            // Twice indexed: the second call is served from the slice cache.
            let full = store.check_unindexed(&who, &what, &env, 3600);
            prop_assert_eq!(&store.check(&who, &what, &env, 3600), &full);
            prop_assert_eq!(&store.check(&who, &what, &env, 3600), &full);
        }
    }

    #[test]
    fn indexed_general_evaluation_equals_full_evaluation(
        spec in proptest::collection::vec((any::<bool>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()), 1..24),
        requests in proptest::collection::vec((0u8..6, any::<bool>(), 0u8..5, 0u8..3, any::<bool>()), 1..12),
    ) {
        let store = PolicyStore::load(&policies(&spec), None, Some(ENTITIES)).unwrap();
        for (p, user, a, res, with_props) in requests {
            let (type_name, id) = if user { ("User", format!("u{p}")) } else { ("Agent", format!("spiffe://t.example/a{p}")) };
            let (rtype, rid) = [("X", "s"), ("X", "r"), ("Y", "s")][usize::from(res)];
            let e = Evaluation {
                subject: EntityRef {
                    type_name: type_name.into(),
                    id,
                    properties: if with_props { r#"{"trust_domain": "t.example"}"#.into() } else { String::new() },
                },
                action: format!("a{a}"),
                action_properties: String::new(),
                resource: EntityRef { type_name: rtype.into(), id: rid.into(), properties: String::new() },
                context: r#"{"task_id": "t1"}"#.into(),
            };
            let full = store.evaluate_unindexed(&e, 3600, &RequestEnv::default());
            prop_assert_eq!(&store.evaluate(&e, 3600), &full);
        }
    }
}

const AGENTS: [&str; 6] = ["payroll", "browser", "broker", "ci", "oncall", "stranger"];
const PACK_ACTIONS: [&str; 10] =
    ["read", "send", "write", "invoke", "deploy", "delegate", "open_task", "end_task", "break_glass", "cut_off"];
const PACK_RESOURCES: [&str; 11] = [
    r#"PayrollRecord::"run-42/emp-7""#,
    r#"PayrollRecord::"run-43/emp-7""#,
    r#"PayrollRecord::"run-9/emp-1""#,
    r#"Dataset::"sales-summary""#,
    r#"Dataset::"customer-pii""#,
    r#"Tool::"web-search""#,
    r#"Tool::"payroll-db""#,
    r#"Environment::"staging""#,
    r#"Environment::"production""#,
    r#"Agent::"spiffe://acme.example/agent/payroll""#,
    r#"Task::"run-42""#,
];
const PACK_CONTEXTS: [&str; 4] = [
    "",
    r#"{"destination":"paste.example.net"}"#,
    r#"{"destination":"payroll.internal.example"}"#,
    r#"{"destination":7}"#,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// On the shipped pack (most of whose conditions the index compiles): every agent, action,
    /// resource and claimed context, in and out of an open task, at several delegation depths
    /// and identity lifetimes, decided as full Cedar decides it — through `check` and through
    /// a general evaluation.
    #[test]
    fn the_pack_indexed_and_compiled_equals_full_evaluation(
        requests in proptest::collection::vec(
            (0usize..6, 0usize..10, 0usize..11, 0usize..4, any::<bool>(), 0u32..4, any::<bool>()), 1..24),
    ) {
        use writ_types::pack;
        let store = PolicyStore::load(pack::POLICIES, Some(pack::SCHEMA), Some(pack::ENTITIES)).unwrap();
        let member = |a: &str| format!("spiffe://acme.example/agent/{a}");
        let task = writ_core::Task {
            id: "run-42".into(),
            opener: member("broker"),
            members: vec![member("payroll"), member("broker")],
            purpose: "payroll".into(),
            opened_at: 900,
            deadline: 5_000,
            ended_at: None,
        };
        for (agent, action, resource, context, in_task, depth, long_lived) in requests {
            let who = crate::identity(member(AGENTS[agent]), if long_lived { 10_000 } else { 1_100 }, Proof::X509Svid);
            let what = Intent {
                action: PACK_ACTIONS[action].into(),
                resource: PACK_RESOURCES[resource].into(),
                task_id: "run-42".into(),
                context: PACK_CONTEXTS[context].into(),
                input: String::new(),
            };
            let mut env = RequestEnv::at(1_000, depth);
            if in_task {
                env.task = Some(&task);
            }
            let full = store.check_unindexed(&who, &what, &env, 3600);
            prop_assert_eq!(&store.check(&who, &what, &env, 3600), &full);
            prop_assert_eq!(&store.check(&who, &what, &env, 3600), &full, "served from the kept slice");

            let (rtype, rid) = PACK_RESOURCES[resource].split_once("::").unwrap();
            let e = Evaluation {
                subject: EntityRef { type_name: "Agent".into(), id: who.spiffe_id.clone(), properties: String::new() },
                action: what.action.clone(),
                action_properties: String::new(),
                resource: EntityRef { type_name: rtype.into(), id: rid.trim_matches('"').into(), properties: String::new() },
                context: if context == 0 { r#"{"task_id":"run-42"}"#.into() } else { what.context.clone() },
            };
            let full = store.evaluate_unindexed(&e, 3600, &env);
            prop_assert_eq!(&store.evaluate_in(&e, 3600, &env), &full);
        }
    }
}

/// A condition on the context the compiled index reads from the request's parts (Writ's keys,
/// the caller's JSON) without Cedar's context: every key and record, where it errors in Cedar,
/// and shapes left to Cedar.
fn context_condition(k: u8) -> &'static str {
    match k % 24 {
        0 => "context.claimed.extra == 1",
        1 => "context has claimed && context.claimed has extra && context.claimed.extra > 0",
        2 => "context.claimed.list.contains(\"a\")",
        3 => "context.claimed.rec.k == 1",
        4 => "context has claimed && context.claimed has rec && context.claimed.rec has k",
        5 => "context.task.opener == principal",
        6 => "principal in context.task.members",
        7 => "context.task.members.contains(principal)",
        8 => "context has task && context.task.deadline > context.now && context.task.purpose == \"p\"",
        9 => "context.delegation_depth < 2",
        10 => "context has approval && context.approval.expires_at > context.now && context.approval.ticket == \"T\"",
        11 => "context.oidc.sub == \"x\"",
        12 => "context has oidc && context.oidc has sub",
        13 => "context.input.n == 2",
        14 => "context has input && context.input has n && context.input.n + 1 > 2",
        15 => "context.identity_expires_at > context.now + 300",
        16 => "context.claimed == context.claimed", // records compared: left to Cedar
        17 => "context.task.id == context.task_id",
        18 => "context.claimed.list.contains(principal)",
        19 => "context.task.opener.level == 1", // an entity's attribute through Writ's record
        20 => "context.claimed.extra == \"1\"",
        21 => {
            "context has task && context.task has members && context.task.members.contains(Agent::\"spiffe://t.example/a1\")"
        }
        22 => "context has approval && context.approval has jti", // not a key of Writ's record
        _ => "context.claimed.extra.k == 1",                      // an attribute of a long: an error
    }
}

const CLAIMED: [&str; 9] = [
    "",
    r#"{"extra": 1}"#,
    r#"{"extra": "1"}"#,
    r#"{"extra": 1.5}"#, // not plainly Cedar: Cedar's reader
    r#"{"extra": null}"#,
    r#"{"list": ["a", "b"], "rec": {"k": 1}}"#,
    r#"{"list": [{"__entity": {"type": "Agent", "id": "spiffe://t.example/a0"}}]}"#, // Cedar's reader
    r#"{"rec": {}, "extra": 2}"#,
    r#"{"list": [1, "a"]}"#,
];
const INPUTS: [&str; 4] = ["", r#"{"n": 2}"#, r#"{"n": "2"}"#, r#"{"n": 1}"#];

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Conditions on every part of the context — Writ's keys and records (task, approval,
    /// OIDC claims) and the caller's `claimed` and `input` JSON — decided by the compiled index
    /// from the request's parts exactly as full Cedar decides them from the context it builds.
    #[test]
    fn compiled_context_reads_equal_full_evaluation(
        spec in proptest::collection::vec((any::<bool>(), any::<u8>(), any::<u8>()), 1..8),
        requests in proptest::collection::vec(
            (0u8..3, 0usize..9, 0usize..4, any::<bool>(), any::<bool>(), any::<bool>(), 0u32..3), 1..12),
    ) {
        let text: String = spec
            .iter()
            .enumerate()
            .map(|(i, (permit, p, c))| {
                let effect = if *permit { "permit" } else { "forbid" };
                let principal = if p % 2 == 0 { "principal".to_string() } else { format!("principal in Role::\"r{}\"", p % 4 / 2) };
                format!("@id(\"p{i}\") {effect}({principal}, action, resource) when {{ {} }};\n", context_condition(*c))
            })
            .collect();
        let store = PolicyStore::load(&text, None, Some(ENTITIES)).unwrap();
        let task = writ_core::Task {
            id: "t1".into(),
            opener: "spiffe://t.example/a1".into(),
            members: vec!["spiffe://t.example/a0".into(), "spiffe://t.example/a1".into()],
            purpose: "p".into(),
            opened_at: 900,
            deadline: 5_000,
            ended_at: None,
        };
        let approval = writ_core::approval::Approval {
            approver: "https://approver.example".into(),
            ticket: "T".into(),
            reason: "r".into(),
            jti: "j".into(),
            expires_at: 1_100,
        };
        for (p, claimed, input, in_task, approved, oidc, depth) in requests {
            let mut who = crate::identity(format!("spiffe://t.example/a{p}"), 2_000, Proof::X509Svid);
            if oidc {
                who.proof = Proof::Oidc;
                who.claims.insert("sub".into(), "x".into());
            }
            let what = Intent {
                action: "a0".into(),
                resource: r#"X::"s""#.into(),
                task_id: "t1".into(),
                context: CLAIMED[claimed].into(),
                input: INPUTS[input].into(),
            };
            let mut env = RequestEnv::at(1_000, depth);
            env.task = in_task.then_some(&task);
            env.approval = approved.then_some(&approval);
            let full = store.check_unindexed(&who, &what, &env, 3600);
            prop_assert_eq!(&store.check(&who, &what, &env, 3600), &full, "{}", text);
            prop_assert_eq!(&store.check(&who, &what, &env, 3600), &full, "served from the kept slice");
        }
    }
}
