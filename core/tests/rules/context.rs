//! Caller contexts built straight into Cedar values decide exactly as Cedar's own JSON reader
//! (the reference path, `check_unindexed`): random JSON of every shape, with and without a
//! schema, including Cedar's entity and extension escapes and their implicit forms.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use writ_core::authz::{PolicyStore, RequestEnv};
use writ_core::{Identity, Intent, Proof};

const KEYS: &[&str] = &[
    "destination",
    "host",
    "external",
    "approval",
    "approver",
    "ticket",
    "reason",
    "type",
    "id",
    "fn",
    "arg",
    "__entity",
    "__extn",
    "n",
    "tags",
    "tool",
    "addr",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (0u64..u64::MAX).prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        // Cedar's escapes and implicit forms, whole.
        Just(json!({"__entity": {"type": "Tool", "id": "browser"}})),
        Just(json!({"type": "Tool", "id": "browser"})),
        Just(json!({"__extn": {"fn": "ip", "arg": "10.0.0.1"}})),
        Just(json!({"fn": "ip", "arg": "10.0.0.1"})),
        prop_oneof![
            Just(""),
            Just("x"),
            Just("paste.example.net"),
            Just("Tool"),
            Just("browser"),
            Just("ip"),
            Just("10.0.0.1"),
            Just("payroll outage")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>())),
        ]
    })
}

fn pack_store() -> PolicyStore {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
        .collect();
    files.sort();
    let policies: String = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect::<Vec<_>>().join("\n");
    let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
    PolicyStore::load_with(&policies, Some(&read("writ.cedarschema")), Some(&read("entities.json")), None).unwrap()
}

const SCHEMALESS: &str = r#"
@id("external") forbid(principal, action, resource) when { context has claimed && context.claimed has destination && context.claimed.destination.external == true };
@id("tool") permit(principal, action, resource) when { context has claimed && context.claimed has tool && context.claimed.tool == Tool::"browser" };
@id("tags") permit(principal, action == Action::"read", resource) when { context has claimed && context.claimed has tags && context.claimed.tags.contains("x") };
@id("n") permit(principal, action == Action::"send", resource) when { context has claimed && context.claimed has n && context.claimed.n > 3 };
@id("ip") permit(principal, action == Action::"invoke", resource) when { context has claimed && context.claimed has arg && context.claimed.arg == "10.0.0.1" };
@id("addr") permit(principal, action == Action::"invoke", resource) when { context has claimed && context.claimed has addr && context.claimed.addr == ip("10.0.0.1") };
@id("input") permit(principal, action == Action::"send", resource) when { context has input && context.input has n && context.input.n < 100 };
"#;

fn who() -> Identity {
    crate::identity("spiffe://acme.example/agent/broker", 3_000, Proof::X509Svid)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn direct_contexts_decide_as_cedars_reader(
        ctx in proptest::collection::vec((proptest::sample::select(KEYS), json_value()), 0..5),
        input in proptest::option::of(proptest::collection::vec((proptest::sample::select(KEYS), json_value()), 0..4)),
        which in 0u8..7,
    ) {
        let text = Value::Object(ctx.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>()).to_string();
        let input = input.map(|i| Value::Object(i.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>()).to_string()).unwrap_or_default();
        let env = RequestEnv::at(1_000, 0);
        let (action, resource) = match which {
            0 => ("read", r#"Dataset::"sales-summary""#),
            1 => ("send", r#"Dataset::"customer-pii""#),
            2 => ("invoke", r#"Tool::"browser""#),
            3 => ("break_glass", r#"Environment::"production""#),
            // Scopes the schema refuses whatever the context: each path names the same problem.
            4 => ("deploy", r#"Zone::"internal""#),
            5 => ("read", r#"Tool::"browser""#),
            _ => ("fly", r#"Dataset::"sales-summary""#),
        };
        let what = Intent { action: action.into(), resource: resource.into(), task_id: "t".into(), context: text.clone(), input };
        let pack = pack_store();
        prop_assert_eq!(pack.check(&who(), &what, &env, 3600), pack.check_unindexed(&who(), &what, &env, 3600), "pack, context {}", text);
        let plain = PolicyStore::load_with(SCHEMALESS, None, None, None).unwrap();
        prop_assert_eq!(plain.check(&who(), &what, &env, 3600), plain.check_unindexed(&who(), &what, &env, 3600), "schemaless, context {}", text);
    }
}

/// Claims of few types, so a stream repeats types with other values: what one request's
/// validation passed must not let a request of another type through unvalidated.
fn pack_claims() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(json!("paste.example.net")),
        Just(json!("payroll.internal.example")),
        Just(json!(7)),
        Just(json!(true)),
        Just(json!(["payroll.internal.example"])),
        Just(json!([])),
        Just(json!({"destination": "x"})),
    ];
    proptest::collection::vec((proptest::sample::select(&["destination", "task_id", "approval", "n"][..]), leaf), 0..3)
        .prop_map(|kv| {
            Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<_, _>>()).to_string()
        })
}

fn scope(which: u8) -> (&'static str, &'static str) {
    match which {
        0 => ("read", r#"Dataset::"sales-summary""#),
        1 => ("send", r#"Dataset::"customer-pii""#),
        2 => ("send", r#"PayrollRecord::"run-42/emp-7""#),
        3 => ("invoke", r#"Tool::"browser""#),
        _ => ("deploy", r#"Zone::"internal""#),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// One store answers a stream of requests (its validated-type cache filling as it goes)
    /// exactly as Cedar's reader with full validation answers each alone.
    #[test]
    fn a_stream_of_contexts_on_one_store_decides_as_cedars_reader(
        steps in proptest::collection::vec((pack_claims(), 0u8..5, any::<bool>()), 1..16),
    ) {
        let (pack, reference) = (pack_store(), pack_store());
        for (ctx, which, with_input) in steps {
            let (action, resource) = scope(which);
            let input = if with_input { ctx.clone() } else { String::new() };
            let what = Intent { action: action.into(), resource: resource.into(), task_id: "t".into(), context: ctx.clone(), input };
            let env = RequestEnv::at(1_000, 0);
            prop_assert_eq!(pack.check(&who(), &what, &env, 3600), reference.check_unindexed(&who(), &what, &env, 3600), "{} {} {}", action, resource, ctx);
        }
    }
}

#[test]
fn the_pack_contexts_of_the_end_to_end_table_take_the_direct_path_and_agree() {
    let pack = pack_store();
    let env = RequestEnv::at(1_000, 0);
    for ctx in [
        r#"{"destination":"paste.example.net"}"#,
        r#"{"destination":"payroll.internal.example"}"#,
        r#"{"approval":"e30.e30.sig","task_id":"t"}"#,
    ] {
        for (action, resource) in [
            ("read", r#"Dataset::"customer-pii""#),
            ("send", r#"Dataset::"sales-summary""#),
            ("break_glass", r#"Environment::"production""#),
        ] {
            let what = Intent {
                action: action.into(),
                resource: resource.into(),
                task_id: "t".into(),
                context: ctx.into(),
                input: String::new(),
            };
            assert_eq!(
                pack.check(&who(), &what, &env, 3600),
                pack.check_unindexed(&who(), &what, &env, 3600),
                "{action} {ctx}"
            );
        }
    }
}

#[test]
fn cedars_escapes_are_read_by_cedar() {
    let plain = PolicyStore::load_with(SCHEMALESS, None, None, None).unwrap();
    let env = RequestEnv::at(1_000, 0);
    let cases = [
        // An entity escape is an entity: `context.tool == Tool::"browser"` holds.
        ("read", r#"{"tool":{"__entity":{"type":"Tool","id":"browser"}}}"#, true),
        // Without the escape, Cedar reads a record, which is no entity.
        ("read", r#"{"tool":{"type":"Tool","id":"browser"}}"#, false),
        // An extension escape is an IP address value.
        ("invoke", r#"{"addr":{"__extn":{"fn":"ip","arg":"10.0.0.1"}}}"#, true),
        ("invoke", r#"{"addr":"10.0.0.1"}"#, false),
    ];
    for (action, ctx, allow) in cases {
        let what = Intent {
            action: action.into(),
            resource: r#"X::"y""#.into(),
            task_id: "t".into(),
            context: ctx.into(),
            input: String::new(),
        };
        let d = plain.check(&who(), &what, &env, 3600);
        assert_eq!(d, plain.check_unindexed(&who(), &what, &env, 3600), "{ctx}");
        assert_eq!(d.allow, allow, "{ctx}: {d:?}");
    }
}

#[test]
fn the_calls_input_is_writs_key_and_a_claimed_one_is_not() {
    let plain = PolicyStore::load_with(SCHEMALESS, None, None, None).unwrap();
    let env = RequestEnv::at(1_000, 0);
    let send = |context: &str, input: &str| Intent {
        action: "send".into(),
        resource: r#"Dataset::"d""#.into(),
        task_id: "t".into(),
        context: context.into(),
        input: input.into(),
    };
    for (context, input, allow) in [
        ("", r#"{"n": 5}"#, true),
        ("", r#"{"n": 500}"#, false),
        // What the caller claims is `context.claimed`, never `context.input`.
        (r#"{"input": {"n": 5}}"#, r#"{"n": 500}"#, false),
        (r#"{"input": {"n": 5}}"#, "", false),
        // Not an object, oversized, or nested too deep: an error, so a deny.
        ("", "[1]", false),
        ("", &format!(r#"{{"s": "{}"}}"#, "x".repeat(70_000)), false),
        ("", &format!("{}1{}", r#"{"a":"#.repeat(40), "}".repeat(40)), false),
    ] {
        let what = send(context, input);
        let d = plain.check(&who(), &what, &env, 3600);
        assert_eq!(d, plain.check_unindexed(&who(), &what, &env, 3600), "{input}");
        assert_eq!(d.allow, allow, "{context} {input}: {d:?}");
    }
    let e = plain.check(&who(), &send("", "[1]"), &env, 3600);
    assert!(e.errors.iter().any(|m| m.contains("input is not a JSON object")), "{e:?}");
}
