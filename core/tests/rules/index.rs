//! The policy index never changes a decision: for random policy sets and requests, indexed
//! evaluation (slices, and scope-only policies decided without Cedar) gives the same allow,
//! reasons, errors and TTL as evaluating every policy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use writ_core::authz::{PolicyStore, RequestEnv};
use writ_core::{EntityRef, Evaluation};
use writ_core::{Identity, Intent, Proof};

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

fn condition(k: u8) -> &'static str {
    match k % 5 {
        0 => "",
        1 => " when { context.task_id == \"t1\" }",
        2 => " when { principal.missing == 1 }", // an evaluation error
        3 => " unless { resource == X::\"s\" }",
        _ => " when { principal.trust_domain == \"t.example\" }",
    }
}

fn policies(spec: &[(bool, u8, u8, u8, u8)]) -> String {
    spec.iter()
        .enumerate()
        .map(|(i, (permit, p, a, c, ttl))| {
            // Half the policies have no condition (so the index decides those it can).
            let c = if c % 2 == 0 { 0 } else { *c };
            let resource = resource_scope(ttl / 3);
            let effect = if *permit { "permit" } else { "forbid" };
            let ttl = if ttl % 3 == 0 { format!("@ttl(\"{}\") ", 60 * u32::from(*ttl)) } else { String::new() };
            format!(
                "@id(\"p{i}\") {ttl}{effect}({}, {}, {}){};\n",
                principal_scope(*p),
                action_scope(*a),
                resource,
                condition(c)
            )
        })
        .collect()
}

const ENTITIES: &str = r#"[
  {"uid":{"type":"Agent","id":"spiffe://t.example/a0"},"attrs":{},"parents":[{"type":"Role","id":"r0"}]},
  {"uid":{"type":"Agent","id":"spiffe://t.example/a1"},"attrs":{},"parents":[{"type":"Role","id":"r1"}]},
  {"uid":{"type":"Agent","id":"spiffe://t.example/a2"},"attrs":{},"parents":[{"type":"Role","id":"r0"},{"type":"Role","id":"r1"}]},
  {"uid":{"type":"User","id":"u1"},"attrs":{},"parents":[{"type":"Role","id":"r1"}]},
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
            let who = Identity {
                spiffe_id: format!("spiffe://t.example/a{p}"),
                trust_domain: "t.example".into(),
                expires_at: 2_000,
                thumbprint: String::new(),
                proof: Proof::X509Svid,
                claims: Default::default(),
            };
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
