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

fn cases() -> [Evaluation; 8] {
    [
        case(("User", "alice", ""), "read", "", ("Doc", "d1", ""), ""),
        case(("User", "alice", ""), "read", "", ("Doc", "d1", r#"{"owner":"alice"}"#), ""),
        case(("User", "bob", r#"{"name":"bob"}"#), "read", "", ("Doc", "d1", ""), ""),
        case(("User", "alice", ""), "delete", r#"{"soft":true}"#, ("Doc", "d1", ""), ""),
        case(("User", "alice", ""), "delete", r#"{"soft":true}"#, ("Doc", "d1", ""), r#"{"ip":"203.0.113.9"}"#),
        case(("User", "alice", ""), "delete", r#"{"soft":"yes"}"#, ("Doc", "d1", ""), ""),
        case(("Not A Type", "x", ""), "read", "", ("Doc", "d1", ""), ""),
        case(("User", "alice", "[]"), "read", "", ("Doc", "d1", ""), ""),
    ]
}

#[test]
fn general_evaluations_agree_and_are_audited() {
    let cases = cases();
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

#[test]
fn a_batch_of_evaluations_decides_as_one_by_one_and_stops_as_its_semantic_says() {
    use writ_types::authzen::Semantic;
    let cases = cases();
    let (single, _) = writ_tests::attester::audited_writ(NOW);
    single.set_policies(POLICIES, None, Some(ENTITIES)).unwrap();
    let one_by_one: Vec<_> = cases.iter().map(|c| single.evaluate(c).unwrap()).collect();
    let allows: Vec<_> = one_by_one.iter().map(|d| d.allow).collect();
    assert_eq!(allows, [false, true, true, true, false, false, false, false]);

    let (batch, events) = writ_tests::attester::audited_writ(NOW);
    batch.set_policies(POLICIES, None, Some(ENTITIES)).unwrap();
    let all = batch.evaluate_many(&cases, Semantic::ExecuteAll).unwrap();
    assert_eq!(all, one_by_one, "execute_all: every item, each as evaluate decides it");
    let audited = events.lock().unwrap().iter().filter(|e| e.kind == "evaluate").count();
    assert_eq!(audited, cases.len(), "each item audited once");

    // deny_on_first_deny stops at the first item (a deny); permit_on_first_permit at the second.
    assert_eq!(batch.evaluate_many(&cases, Semantic::DenyOnFirstDeny).unwrap(), one_by_one[..1]);
    assert_eq!(batch.evaluate_many(&cases, Semantic::PermitOnFirstPermit).unwrap(), one_by_one[..2]);
    assert_eq!(batch.evaluate_many(&cases[1..4], Semantic::DenyOnFirstDeny).unwrap(), one_by_one[1..4], "no deny: all");
    assert!(batch.evaluate_many(&[], Semantic::ExecuteAll).unwrap().is_empty());
}
