//! General (AuthZEN-shaped) evaluation: the exact mapping onto Cedar, properties overlaid on
//! loaded entities, action properties under `context.claimed.action`, bad input denied with the
//! problem listed, and the index never changing an answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use writ_core::Writ;
use writ_core::authz::RequestEnv;
use writ_core::{EntityRef, Evaluation};

const POLICIES: &str = r#"
@id("owner") permit(principal is User, action == Action::"read", resource is Doc) when { resource.owner == principal.name };
@id("clearance") permit(principal is User, action == Action::"read", resource is Doc) when { principal has level && principal.level >= resource.level };
@id("soft-delete") permit(principal in Group::"admins", action == Action::"delete", resource is Doc) when { context has claimed && context.claimed has action && context.claimed.action.soft };
@id("alice-only") permit(principal == User::"alice", action == Action::"share", resource);
@id("no-external") forbid(principal, action, resource) when { context has claimed && context.claimed has ip && context.claimed.ip == "203.0.113.9" };
"#;

const ENTITIES: &str = r#"[
  {"uid":{"type":"Group","id":"admins"},"attrs":{},"parents":[]},
  {"uid":{"type":"User","id":"alice"},"attrs":{"name":"alice","level":1},"parents":[{"type":"Group","id":"admins"}]},
  {"uid":{"type":"User","id":"bob"},"attrs":{"name":"bob"},"parents":[]},
  {"uid":{"type":"Doc","id":"d1"},"attrs":{"owner":"bob","level":2},"parents":[]},
  {"uid":{"type":"Doc","id":"d2"},"attrs":{"owner":"alice","level":0},"parents":[]}
]"#;

fn engine() -> Writ {
    let mut e = Writ::default();
    e.set_policies(POLICIES, None, Some(ENTITIES)).unwrap();
    e
}

fn eval(
    subject: (&str, &str, &str),
    action: &str,
    action_props: &str,
    resource: (&str, &str, &str),
    context: &str,
) -> Evaluation {
    let r = |(t, i, p): (&str, &str, &str)| EntityRef { type_name: t.into(), id: i.into(), properties: p.into() };
    Evaluation {
        subject: r(subject),
        action: action.into(),
        action_properties: action_props.into(),
        resource: r(resource),
        context: context.into(),
    }
}

#[test]
fn the_mapping_onto_cedar() {
    let e = engine();
    // Loaded attributes: bob owns d1.
    let d = e.evaluate(&eval(("User", "bob", ""), "read", "", ("Doc", "d1", ""), ""));
    assert_eq!((d.allow, d.reasons.clone()), (true, vec!["owner".to_string()]));
    // alice's loaded level (1) is below d1's (2)…
    assert!(!e.evaluate(&eval(("User", "alice", ""), "read", "", ("Doc", "d1", ""), "")).allow);
    // …overlaid by the request's subject properties, it is not.
    let d = e.evaluate(&eval(("User", "alice", r#"{"level": 3}"#), "read", "", ("Doc", "d1", ""), ""));
    assert_eq!(d.reasons, vec!["clearance".to_string()]);
    // Resource properties overlay the loaded resource: now alice owns it.
    let d = e.evaluate(&eval(("User", "alice", ""), "read", "", ("Doc", "d1", r#"{"owner":"alice"}"#), ""));
    assert_eq!(d.reasons, vec!["owner".to_string()]);
    // The loaded parents stay: alice is still an admin with properties overlaid.
    let soft = eval(("User", "alice", r#"{"level": 0}"#), "delete", r#"{"soft": true}"#, ("Doc", "d1", ""), "");
    assert_eq!(e.evaluate(&soft).reasons, vec!["soft-delete".to_string()]);
    // Action properties are `context.claimed.action`.
    assert!(!e.evaluate(&eval(("User", "alice", ""), "delete", r#"{"soft": false}"#, ("Doc", "d1", ""), "")).allow);
    assert!(!e.evaluate(&eval(("User", "alice", ""), "delete", "", ("Doc", "d1", ""), "")).allow);
    // Context keys reach policies; a forbid overrides.
    let d = e.evaluate(&eval(("User", "alice", ""), "share", "", ("Doc", "d1", ""), r#"{"ip":"203.0.113.9"}"#));
    assert_eq!((d.allow, d.reasons), (false, vec!["no-external".to_string()]));
    // Unknown subjects are entities with no attributes: denied, with an evaluation error
    // where a policy reads a missing attribute.
    let d = e.evaluate(&eval(("User", "mallory", ""), "read", "", ("Doc", "d1", ""), ""));
    assert!(!d.allow && !d.errors.is_empty());
    // Subjects of any type: `principal == User::"alice"` is about the type too.
    assert!(!e.evaluate(&eval(("Agent", "alice", ""), "share", "", ("Doc", "d1", ""), "")).allow);
    assert!(e.evaluate(&eval(("User", "alice", ""), "share", "", ("Doc", "d1", ""), "")).allow);
}

#[test]
fn bad_input_denies_with_the_problem() {
    let e = engine();
    let cases = [
        (eval(("Us er", "x", ""), "read", "", ("Doc", "d1", ""), ""), "subject type `Us er`"),
        (eval(("User", "bob", "[1]"), "read", "", ("Doc", "d1", ""), ""), "subject.properties is not a JSON object"),
        (eval(("User", "bob", ""), "read", "{", ("Doc", "d1", ""), ""), "action.properties is not JSON"),
        (eval(("User", "bob", ""), "read", "", ("Doc", "d1", "1"), ""), "resource.properties is not a JSON object"),
        (eval(("User", "bob", ""), "read", "", ("Doc", "d1", ""), r#""x""#), "context is not a JSON object"),
        (
            eval(
                ("User", "bob", &format!("{}{}", "{\"a\":".repeat(40), "1".to_string() + &"}".repeat(40))),
                "read",
                "",
                ("Doc", "d1", ""),
                "",
            ),
            "nests",
        ),
    ];
    for (ev, want) in cases {
        let d = e.evaluate(&ev);
        assert!(!d.allow, "{want}");
        assert!(d.errors.iter().any(|m| m.contains(want)), "{want}: {:?}", d.errors);
    }
    assert!(
        Writ::default().evaluate(&eval(("User", "bob", ""), "read", "", ("Doc", "d1", ""), "")).errors[0]
            .contains("no policies")
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Repeats (served from the kept overlays and slices, a subject's overlay shared by the
    /// resources it names without properties) answer as a fresh engine does.
    #[test]
    fn repeats_answer_as_fresh(requests in proptest::collection::vec((0u8..3, 0u8..4, 0u8..3, any::<bool>(), any::<bool>(), any::<bool>()), 1..20)) {
        let e = engine();
        for (s, a, level, soft, own, doc) in requests {
            let subject = ["alice", "bob", "carol"][usize::from(s)];
            let action = ["read", "delete", "share", "write"][usize::from(a)];
            let props = if level == 0 { String::new() } else { format!(r#"{{"level": {level}}}"#) };
            let rprops = if own { format!(r#"{{"owner":"{subject}"}}"#) } else { String::new() };
            let ev = eval(("User", subject, &props), action, if soft { r#"{"soft":true}"# } else { "" }, ("Doc", if doc { "d2" } else { "d1" }, &rprops), "");
            prop_assert_eq!(e.evaluate(&ev), engine().evaluate(&ev));
        }
    }
}

#[test]
fn a_caller_cannot_choose_the_time_a_policy_sees() {
    let mut e = Writ::default();
    e.set_policies(
        r#"@id("before-2000") permit(principal, action, resource) when { context.now < 2000 };"#,
        None,
        None,
    )
    .unwrap();
    // The caller says it is 1; Writ's clock says 5000: denied, and the memo does not answer a
    // later second from an earlier one.
    let at = |now| RequestEnv::at(now, 0);
    let lying = eval(("User", "u", ""), "read", "", ("Doc", "d", ""), r#"{"now": 1}"#);
    assert!(!e.evaluate_in(&lying, &at(5000)).allow);
    assert!(e.evaluate_in(&lying, &at(1500)).allow);
    assert!(!e.evaluate_in(&lying, &at(5000)).allow, "keyed on Writ's time, not answered from 1500");
    // Writ's clock is in every context; the caller's `now` is only its claim.
    let none = eval(("User", "u", ""), "read", "", ("Doc", "d", ""), "");
    assert!(e.evaluate_in(&none, &at(1500)).allow);
    assert!(!e.evaluate_in(&none, &at(5000)).allow);
    e.set_policies(
        r#"@id("claimed") permit(principal, action, resource) when { context.claimed.now < 2000 };"#,
        None,
        None,
    )
    .unwrap();
    assert!(e.evaluate_in(&lying, &at(5000)).allow, "what the caller said is under `claimed`");
}
