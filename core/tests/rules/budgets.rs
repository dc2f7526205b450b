//! `@max_calls` budgets natively: a permit with a budget allows at most that many calls per
//! task — counted by every decision that allows under it (checks, evaluations, issued
//! credentials, never a presented credential's use), per task, denied outside any open task.
//! The same budget shared by replicas is tested through the server (`server/tests/serve.rs`).

use proptest::prelude::*;
use writ_core::credential::Env;
use writ_core::crypto::RustCrypto;
use writ_core::{Decision, Error, Identity, Intent, Ledger as _, MemoryLedger, Proof, Task, Writ};
use writ_types::MAX_CALLS_SPENT;

const NOW: u64 = 2_000_000;
const AGENT: &str = "spiffe://t.example/agent";

const POLICIES: &str = r#"
@id("pay-small") @max_calls("3")
permit(principal, action == Action::"pay", resource == McpServer::"payments")
  when { context has input && context.input has amount && context.input.amount <= 100 };
@id("read-any") permit(principal, action == Action::"read", resource == McpServer::"payments");
@id("refund") @max_calls("1") permit(principal, action == Action::"refund", resource == McpServer::"payments");
@id("refund-too") @max_calls("2") permit(principal, action == Action::"refund", resource == McpServer::"payments");
"#;

fn agent() -> Identity {
    Identity {
        spiffe_id: AGENT.into(),
        trust_domain: "t.example".into(),
        expires_at: NOW + 86_400,
        thumbprint: "thumb".into(),
        proof: Proof::X509Svid,
        claims: Default::default(),
    }
}

fn call(action: &str, task: &str, amount: u32) -> Intent {
    Intent {
        action: action.into(),
        resource: r#"McpServer::"payments""#.into(),
        task_id: task.into(),
        context: String::new(),
        input: format!(r#"{{"amount":{amount}}}"#),
    }
}

fn world() -> (Writ, MemoryLedger, RustCrypto) {
    let mut w = Writ::default();
    w.set_policies(POLICIES, None, None).unwrap();
    let ledger = MemoryLedger::new();
    for id in ["t1", "t2", "short"] {
        let deadline = if id == "short" { NOW + 60 } else { NOW + 3600 };
        let task = Task {
            id: id.into(),
            opener: AGENT.into(),
            members: vec![AGENT.into()],
            purpose: "pay".into(),
            opened_at: NOW,
            deadline,
            ended_at: None,
        };
        ledger.open_task(&task, NOW).unwrap();
    }
    (w, ledger, RustCrypto::with_ed25519_seed([9; 32]))
}

fn decide(w: &Writ, ledger: &MemoryLedger, crypto: &RustCrypto, what: &Intent, now: u64) -> Decision {
    w.decide(&agent(), what, now, 0, ledger, crypto)
}

#[test]
fn a_budget_allows_its_calls_per_task_then_denies_naming_the_policy() {
    let (w, ledger, crypto) = world();
    for i in 0..3 {
        let d = decide(&w, &ledger, &crypto, &call("pay", "t1", 50), NOW + i);
        assert!(d.allow, "call {i}: {d:?}");
        assert_eq!(d.reasons, vec!["pay-small"]);
    }
    let d = decide(&w, &ledger, &crypto, &call("pay", "t1", 50), NOW + 3);
    assert!(!d.allow);
    assert_eq!(d.reasons, vec![MAX_CALLS_SPENT]);
    assert!(d.errors[0].contains("pay-small") && d.errors[0].contains("3 calls"), "{:?}", d.errors);
    // Another task counts its own calls; a policy without a budget is not counted.
    assert!(decide(&w, &ledger, &crypto, &call("pay", "t2", 50), NOW + 4).allow);
    for i in 0..10 {
        assert!(decide(&w, &ledger, &crypto, &call("read", "t1", 0), NOW + i).allow);
    }
    assert_eq!(ledger.calls_spent("t1", "pay-small", NOW + 5), 3);
    assert_eq!(ledger.calls_spent("t2", "pay-small", NOW + 5), 1);
}

#[test]
fn a_denied_call_spends_nothing() {
    let (w, ledger, crypto) = world();
    for _ in 0..5 {
        assert!(!decide(&w, &ledger, &crypto, &call("pay", "t1", 5000), NOW).allow);
    }
    assert_eq!(ledger.calls_spent("t1", "pay-small", NOW), 0);
    assert!(decide(&w, &ledger, &crypto, &call("pay", "t1", 1), NOW).allow);
}

#[test]
fn outside_an_open_task_a_budgeted_permit_allows_nothing() {
    let (w, ledger, crypto) = world();
    let d = decide(&w, &ledger, &crypto, &call("pay", "", 5), NOW);
    assert!(!d.allow);
    assert_eq!(d.reasons, vec![MAX_CALLS_SPENT]);
    assert!(d.errors[0].contains("no open task"), "{:?}", d.errors);
    // An unknown task, an ended task and one past its deadline are no open task either.
    assert!(!decide(&w, &ledger, &crypto, &call("pay", "nope", 5), NOW).allow);
    assert!(!decide(&w, &ledger, &crypto, &call("pay", "short", 5), NOW + 61).allow);
    ledger.end_task("t2", NOW);
    assert!(!decide(&w, &ledger, &crypto, &call("pay", "t2", 5), NOW + 1).allow);
}

#[test]
fn every_determining_budget_is_spent_and_the_smallest_decides() {
    let (w, ledger, crypto) = world();
    let first = decide(&w, &ledger, &crypto, &call("refund", "t1", 1), NOW);
    assert!(first.allow);
    let mut reasons = first.reasons.clone();
    reasons.sort();
    assert_eq!(reasons, vec!["refund", "refund-too"]);
    let second = decide(&w, &ledger, &crypto, &call("refund", "t1", 1), NOW);
    assert!(!second.allow, "refund allows one call per task: {second:?}");
    assert!(second.errors[0].contains("`refund`"), "{:?}", second.errors);
}

#[test]
fn issuing_spends_a_call_and_presenting_the_credential_does_not() {
    let (mut w, ledger, crypto) = world();
    let issue = |w: &Writ, n: u8| -> Result<writ_core::Issued, Error> {
        let env = Env { now: NOW, crypto: &crypto, ledger: &ledger, entropy: [n; 16] };
        w.issue(&agent(), "t1", &[call("pay", "t1", 10)], 60, "payments", &env)
    };
    let g = issue(&w, 1).unwrap();
    for _ in 0..5 {
        let p = w.present(&g.grant.token, &agent(), &call("pay", "t1", 10), "payments", NOW + 1, &crypto, &ledger);
        assert!(p.unwrap().decision.allow);
    }
    assert_eq!(ledger.calls_spent("t1", "pay-small", NOW + 1), 1);
    issue(&w, 2).unwrap();
    issue(&w, 3).unwrap();
    match issue(&w, 4) {
        Err(Error::Denied(d)) => assert_eq!(d.reasons, vec![MAX_CALLS_SPENT]),
        other => panic!("a fourth credential under a budget of 3: {other:?}"),
    }
}

#[test]
fn budgets_are_checked_when_policies_load() {
    let mut w = Writ::default();
    let bad = [
        r#"@max_calls("3") forbid(principal, action, resource);"#,
        r#"@max_calls("0") permit(principal, action, resource);"#,
        r#"@max_calls("lots") permit(principal, action, resource);"#,
        r#"@max_calls("10001") permit(principal, action, resource);"#,
    ];
    for text in bad {
        match w.set_policies(text, None, None) {
            Err(Error::Policy(m)) => assert!(m.contains("@max_calls"), "{m}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    assert_eq!(w.set_policies(r#"@max_calls("10000") permit(principal, action, resource);"#, None, None).unwrap(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the order of calls over tasks and amounts, each task gets exactly
    /// min(allowed-by-arguments calls, budget) allows.
    #[test]
    fn a_task_never_gets_more_than_its_budget(calls in prop::collection::vec((0usize..2, 0u32..200), 0..24)) {
        let (w, ledger, crypto) = world();
        let tasks = ["t1", "t2"];
        let mut eligible = [0usize; 2];
        let mut allowed = [0usize; 2];
        for (i, (t, amount)) in calls.iter().enumerate() {
            let d = decide(&w, &ledger, &crypto, &call("pay", tasks[*t], *amount), NOW + i as u64);
            if *amount <= 100 {
                eligible[*t] += 1;
            } else {
                prop_assert!(!d.allow);
            }
            if d.allow {
                allowed[*t] += 1;
            }
        }
        for t in 0..2 {
            prop_assert_eq!(allowed[t], eligible[t].min(3));
        }
    }
}
