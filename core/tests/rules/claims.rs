//! What the caller claims is only its claim: over the shipped pack, a missing claim never turns
//! a deny into an allow (withholding where data goes does not help), and a caller that writes
//! Writ's own keys (`task`, `approval`, `now`, …) into its context never gains an allow.

use proptest::prelude::*;
use serde_json::{Value, json};
use writ_core::crypto::RustCrypto;
use writ_core::pack::{ENTITIES, POLICIES, SCHEMA};
use writ_core::{Decision, Intent, Ledger as _, MemoryLedger, Proof, Task, Writ};

const NOW: u64 = 1_800_000_000;
const AGENTS: &[&str] = &["payroll", "browser", "broker", "ci", "oncall"];
const REQUESTS: &[(&str, &str)] = &[
    ("read", r#"PayrollRecord::"run-42/emp-7""#),
    ("send", r#"PayrollRecord::"run-42/emp-7""#),
    ("read", r#"PayrollRecord::"run-43/emp-7""#),
    ("send", r#"PayrollRecord::"run-43/emp-7""#),
    ("read", r#"Dataset::"sales-summary""#),
    ("send", r#"Dataset::"sales-summary""#),
    ("read", r#"Dataset::"customer-pii""#),
    ("send", r#"Dataset::"customer-pii""#),
    ("invoke", r#"Tool::"browser""#),
    ("invoke", r#"Tool::"payroll-db""#),
    ("deploy", r#"Environment::"staging""#),
    ("break_glass", r#"Environment::"production""#),
];
const TASKS: &[&str] = &["run-42", "run-43", "run-99", ""];
const DESTINATIONS: &[&str] = &["payroll.internal.example", "warehouse.internal.example", "paste.example.net", ""];
const WRIT_KEYS: &[&str] =
    &["task", "approval", "now", "task_id", "delegation_depth", "identity_expires_at", "claimed"];

struct World {
    writ: Writ,
    ledger: MemoryLedger,
    crypto: RustCrypto,
}

fn world() -> World {
    let mut writ = Writ::default();
    writ.set_policies(POLICIES, Some(SCHEMA), Some(ENTITIES)).unwrap();
    let ledger = MemoryLedger::new();
    for (id, members) in [("run-42", vec!["payroll"]), ("run-43", vec!["browser"])] {
        let task = Task {
            id: id.into(),
            opener: agent("broker"),
            members: members.into_iter().map(agent).collect(),
            purpose: "test".into(),
            opened_at: NOW - 60,
            deadline: NOW + 3600,
            ended_at: None,
        };
        ledger.open_task(&task, NOW - 60).unwrap();
    }
    World { writ, ledger, crypto: RustCrypto::new() }
}

fn agent(name: &str) -> String {
    format!("spiffe://acme.example/agent/{name}")
}

fn decide(w: &World, who: &str, (action, resource): (&str, &str), task: &str, context: &Value) -> Decision {
    let who = crate::identity(agent(who), NOW + 3600, Proof::X509Svid);
    let text = if context.as_object().is_some_and(|o| o.is_empty()) { String::new() } else { context.to_string() };
    let what = Intent {
        action: action.into(),
        resource: resource.into(),
        task_id: task.into(),
        context: text,
        input: String::new(),
    };
    w.writ.decide(&who, &what, NOW, 0, &w.ledger, &w.crypto)
}

fn forged_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({ "id": "run-43", "members": [{ "__entity": { "type": "Agent", "id": agent("payroll") } }] })),
        Just(json!({ "approver": "me", "ticket": "T", "reason": "r", "expires_at": NOW + 60 })),
        Just(json!(0)),
        Just(json!(NOW + 86_400)),
        Just(json!("run-42")),
        Just(json!({ "destination": "payroll.internal.example" })),
        Just(json!(true)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_missing_destination_never_turns_a_deny_into_an_allow(
        a in 0..AGENTS.len(), r in 0..REQUESTS.len(), t in 0..TASKS.len(), d in 0..DESTINATIONS.len(),
    ) {
        let w = world();
        let claimed = if DESTINATIONS[d].is_empty() { json!({}) } else { json!({ "destination": DESTINATIONS[d] }) };
        let with = decide(&w, AGENTS[a], REQUESTS[r], TASKS[t], &claimed);
        let without = decide(&w, AGENTS[a], REQUESTS[r], TASKS[t], &json!({}));
        prop_assert!(with.allow || !without.allow, "with {claimed}: {with:?}; without: {without:?}");
    }

    #[test]
    fn writs_own_keys_in_the_context_never_gain_an_allow(
        a in 0..AGENTS.len(), r in 0..REQUESTS.len(), t in 0..TASKS.len(), d in 0..DESTINATIONS.len(),
        k in 0..WRIT_KEYS.len(), v in forged_value(),
    ) {
        let w = world();
        let mut claimed = if DESTINATIONS[d].is_empty() { json!({}) } else { json!({ "destination": DESTINATIONS[d] }) };
        let honest = decide(&w, AGENTS[a], REQUESTS[r], TASKS[t], &claimed);
        claimed[WRIT_KEYS[k]] = v;
        let forged = decide(&w, AGENTS[a], REQUESTS[r], TASKS[t], &claimed);
        prop_assert!(!forged.allow || (honest.allow && honest.reasons == forged.reasons),
            "forged {claimed}: {forged:?}; honest: {honest:?}");
    }
}

#[test]
fn the_properties_see_both_answers() {
    // The request space above holds allows and denies, and a destination that decides one.
    let w = world();
    let send = ("send", r#"PayrollRecord::"run-42/emp-7""#);
    assert!(decide(&w, "payroll", send, "run-42", &json!({ "destination": "payroll.internal.example" })).allow);
    assert!(!decide(&w, "payroll", send, "run-42", &json!({ "destination": "paste.example.net" })).allow);
    assert!(!decide(&w, "payroll", send, "run-42", &json!({})).allow);
    // A task record the caller writes is not Writ's: payroll is no member of run-43.
    let read43 = ("read", r#"PayrollRecord::"run-43/emp-7""#);
    assert!(!decide(&w, "payroll", read43, "run-43", &json!({})).allow);
    assert!(decide(&w, "browser", ("read", r#"Dataset::"sales-summary""#), "", &json!({})).allow);
}

#[test]
fn a_tasks_opener_may_end_it_and_no_one_else_but_brokers_and_on_call() {
    let w = world();
    let task = Task {
        id: "own".into(),
        opener: agent("payroll"),
        members: vec![agent("payroll")],
        purpose: "its own".into(),
        opened_at: NOW - 10,
        deadline: NOW + 600,
        ended_at: None,
    };
    w.ledger.open_task(&task, NOW - 10).unwrap();
    let end = ("end_task", r#"Task::"own""#);
    let d = decide(&w, "payroll", end, "own", &json!({}));
    assert_eq!((d.allow, d.reasons), (true, vec!["end-task".to_string()]));
    assert!(!decide(&w, "browser", end, "own", &json!({})).allow, "not its opener");
    assert!(!decide(&w, "payroll", ("end_task", r#"Task::"run-42""#), "run-42", &json!({})).allow);
    assert!(decide(&w, "oncall", end, "own", &json!({})).allow);
}
