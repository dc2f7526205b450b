//! General (AuthZEN-shaped) evaluation through the component: the same answers as writ-core
//! natively on every case, audited once each.

use writ_tests::NOW;
use writ_types::{EntityRef, Evaluation};

const POLICIES: &str = r#"
@id("owner") permit(principal is User, action == Action::"read", resource is Doc) when { resource.owner == principal.name };
@id("soft-delete") permit(principal in Group::"admins", action == Action::"delete", resource is Doc) when { context has claimed && context.claimed has action && context.claimed.action.soft };
@id("no-external") forbid(principal, action, resource) when { context has claimed && context.claimed has ip && context.claimed.ip == "203.0.113.9" };
"#;

const ENTITIES: &str = r#"[
  {"uid":{"type":"Group","id":"admins"},"attrs":{},"parents":[]},
  {"uid":{"type":"User","id":"alice"},"attrs":{"name":"alice"},"parents":[{"type":"Group","id":"admins"}]},
  {"uid":{"type":"Doc","id":"d1"},"attrs":{"owner":"bob"},"parents":[]}
]"#;

fn case(s: (&str, &str, &str), action: &str, aprops: &str, r: (&str, &str, &str), ctx: &str) -> Evaluation {
    let e = |(t, i, p): (&str, &str, &str)| EntityRef { type_name: t.into(), id: i.into(), properties: p.into() };
    Evaluation {
        subject: e(s),
        action: action.into(),
        action_properties: aprops.into(),
        resource: e(r),
        context: ctx.into(),
    }
}

#[test]
fn general_evaluations_agree_and_are_audited() {
    let cases = [
        case(("User", "alice", ""), "read", "", ("Doc", "d1", ""), ""),
        case(("User", "alice", ""), "read", "", ("Doc", "d1", r#"{"owner":"alice"}"#), ""),
        case(("User", "bob", r#"{"name":"bob"}"#), "read", "", ("Doc", "d1", ""), ""),
        case(("User", "alice", ""), "delete", r#"{"soft":true}"#, ("Doc", "d1", ""), ""),
        case(("User", "alice", ""), "delete", r#"{"soft":true}"#, ("Doc", "d1", ""), r#"{"ip":"203.0.113.9"}"#),
        case(("User", "alice", ""), "delete", r#"{"soft":"yes"}"#, ("Doc", "d1", ""), ""),
        case(("Not A Type", "x", ""), "read", "", ("Doc", "d1", ""), ""),
        case(("User", "alice", "[]"), "read", "", ("Doc", "d1", ""), ""),
    ];
    let mut native = writ_core::Writ::default();
    native.set_policies(POLICIES, None, Some(ENTITIES)).unwrap();
    let (writ, events) = writ_tests::attester::audited_writ(NOW);
    writ.set_policies(POLICIES, None, Some(ENTITIES)).unwrap();
    let mut allowed = 0;
    for (i, c) in cases.iter().enumerate() {
        let n = native.evaluate_in(c, &writ_core::authz::RequestEnv::at(NOW, 0));
        let k = writ.evaluate(c).unwrap();
        assert_eq!(
            (n.allow, &n.reasons, &n.errors, n.max_ttl_secs),
            (k.allow, &k.reasons, &k.errors, k.max_ttl_secs),
            "case {i}"
        );
        allowed += usize::from(k.allow);
    }
    assert_eq!(allowed, 3, "alice as owner, bob by properties, alice's soft delete");
    let ev = events.lock().unwrap();
    let evals: Vec<_> = ev.iter().filter(|e| e.kind == "evaluate").collect();
    assert_eq!(evals.len(), cases.len(), "one audit event per evaluation");
    assert_eq!(evals[1].spiffe_id.as_deref(), Some(r#"User::"alice""#));
    assert_eq!((evals[1].allow, evals[1].reasons.clone()), (true, vec!["owner".to_string()]));
    assert_eq!(evals[0].resource.as_deref(), Some(r#"Doc::"d1""#));
}
