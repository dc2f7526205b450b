//! Authorization with the shipped policy pack: each policy allowing and denying, bad input,
//! load errors, atomic hot reload, audit — natively and through the component, same answers.

use writ_core::authz::MAX_POLICY_OPERATORS;
use writ_tests::pack::{self, identity, intent};
use writ_tests::{Attester, Component, NOW, Native, Verdict};

const PAYROLL: &str = "spiffe://acme.example/agent/payroll";
const BROWSER: &str = "spiffe://acme.example/agent/browser";
const BROKER: &str = "spiffe://acme.example/agent/broker";
const CI: &str = "spiffe://acme.example/agent/ci";
const ONCALL: &str = "spiffe://acme.example/agent/oncall";

struct Case {
    name: &'static str,
    who: &'static str,
    expires_in: u64,
    action: &'static str,
    resource: &'static str,
    task: &'static str,
    context: &'static str,
    allow: bool,
    reasons: &'static [&'static str],
    ttl: u32,
}

const fn case(
    name: &'static str,
    who: &'static str,
    action: &'static str,
    resource: &'static str,
    task: &'static str,
    context: &'static str,
    allow: bool,
    reasons: &'static [&'static str],
    ttl: u32,
) -> Case {
    Case { name, who, expires_in: 3600, action, resource, task, context, allow, reasons, ttl }
}

const EXTERNAL: &str = r#"{"destination":"paste.example.net"}"#;
const INTERNAL: &str = r#"{"destination":"payroll.internal.example"}"#;
const RECORD: &str = r#"PayrollRecord::"run-42/emp-7""#;

/// The tasks the table runs in: run-42 lists every pack agent, run-43 only the browser agent.
fn open_tasks(a: &mut dyn Attester) {
    a.open_task("run-42", &writ_tests::PACK_AGENTS, NOW);
    a.open_task("run-43", &[BROWSER], NOW);
}

const TABLE: &[Case] = &[
    // payroll-read-in-task: Writ's record of an open task that lists the agent
    case(
        "payroll reads a record of its task",
        PAYROLL,
        "read",
        RECORD,
        "run-42",
        "",
        true,
        &["payroll-read-in-task"],
        900,
    ),
    case(
        "payroll reads a record of another task",
        PAYROLL,
        "read",
        r#"PayrollRecord::"run-43/emp-7""#,
        "run-42",
        "",
        false,
        &[],
        0,
    ),
    case(
        "payroll names a task that does not list it",
        PAYROLL,
        "read",
        r#"PayrollRecord::"run-43/emp-7""#,
        "run-43",
        "",
        false,
        &[],
        0,
    ),
    case("payroll names a task never opened", PAYROLL, "read", RECORD, "run-99", "", false, &[], 0),
    case("payroll reads with no task", PAYROLL, "read", RECORD, "", "", false, &[], 0),
    case("a non-payroll agent reads payroll", BROWSER, "read", RECORD, "run-42", "", false, &[], 0),
    // no-high-sensitivity-external (and analyst-internal-data)
    case(
        "analyst sends internal data outside",
        BROWSER,
        "send",
        r#"Dataset::"sales-summary""#,
        "t1",
        EXTERNAL,
        true,
        &["analyst-internal-data"],
        1800,
    ),
    case(
        "payroll sends a record outside",
        PAYROLL,
        "send",
        RECORD,
        "run-42",
        EXTERNAL,
        false,
        &["no-high-sensitivity-external"],
        0,
    ),
    case(
        "payroll sends a record naming no destination",
        PAYROLL,
        "send",
        RECORD,
        "run-42",
        "",
        false,
        &["no-high-sensitivity-external"],
        0,
    ),
    case(
        "payroll sends a record to an internal destination",
        PAYROLL,
        "send",
        RECORD,
        "run-42",
        INTERNAL,
        true,
        &["payroll-read-in-task"],
        900,
    ),
    case(
        "payroll reads a record naming an external destination",
        PAYROLL,
        "read",
        RECORD,
        "run-42",
        EXTERNAL,
        true,
        &["payroll-read-in-task"],
        900,
    ),
    case("analyst reads restricted data", BROWSER, "read", r#"Dataset::"customer-pii""#, "t1", "", false, &[], 0),
    // tool-allow-list
    case(
        "browser agent invokes a listed tool",
        BROWSER,
        "invoke",
        r#"Tool::"browser""#,
        "t1",
        "",
        true,
        &["tool-allow-list"],
        600,
    ),
    case("browser agent invokes an unlisted tool", BROWSER, "invoke", r#"Tool::"payroll-db""#, "t1", "", false, &[], 0),
    case(
        "agent without a tool list invokes a tool",
        PAYROLL,
        "invoke",
        r#"Tool::"web-search""#,
        "t1",
        "",
        false,
        &[],
        0,
    ),
    case(
        "unlisted tool invoked naming a destination",
        BROWSER,
        "invoke",
        r#"Tool::"payroll-db""#,
        "t1",
        EXTERNAL,
        false,
        &[],
        0,
    ),
    // ci-deploy-non-production
    case(
        "ci deploys to staging",
        CI,
        "deploy",
        r#"Environment::"staging""#,
        "build-9",
        "",
        true,
        &["ci-deploy-non-production"],
        1200,
    ),
    case("ci deploys to production", CI, "deploy", r#"Environment::"production""#, "build-9", "", false, &[], 0),
    Case {
        expires_in: 120,
        ..case(
            "ci deploys with an identity about to expire",
            CI,
            "deploy",
            r#"Environment::"staging""#,
            "build-9",
            "",
            false,
            &[],
            0,
        )
    },
    // delegate-same-domain
    case(
        "broker delegates within its domain",
        BROKER,
        "delegate",
        r#"Agent::"spiffe://acme.example/agent/sub-1""#,
        "pipeline-1",
        "",
        true,
        &["delegate-same-domain"],
        900,
    ),
    case(
        "broker delegates to another domain",
        BROKER,
        "delegate",
        r#"Agent::"spiffe://evil.example/agent/x""#,
        "pipeline-1",
        "",
        false,
        &[],
        0,
    ),
    case(
        "a non-broker delegates",
        PAYROLL,
        "delegate",
        r#"Agent::"spiffe://acme.example/agent/sub-1""#,
        "run-42",
        "",
        false,
        &[],
        0,
    ),
    // break-glass (a signed approval is needed: see `break_glass_needs_a_signed_single_use_approval`)
    case(
        "on-call breaks glass without approval",
        ONCALL,
        "break_glass",
        r#"Environment::"production""#,
        "inc-7",
        "",
        false,
        &[],
        0,
    ),
    case(
        "a non-on-call agent breaks glass",
        CI,
        "break_glass",
        r#"Environment::"production""#,
        "inc-7",
        "",
        false,
        &[],
        0,
    ),
    // end-task, cut-off (revocation through the decision server)
    case("a broker ends a task", BROKER, "end_task", r#"Task::"pipeline-1""#, "", "", true, &["end-task"], 3600),
    case("on-call ends a task", ONCALL, "end_task", r#"Task::"run-42""#, "", "", true, &["end-task"], 3600),
    case("the payroll agent ends a task", PAYROLL, "end_task", r#"Task::"run-42""#, "", "", false, &[], 0),
    case(
        "on-call cuts an agent off",
        ONCALL,
        "cut_off",
        r#"Agent::"spiffe://acme.example/agent/browser""#,
        "",
        "",
        true,
        &["cut-off"],
        3600,
    ),
    case(
        "a broker cuts an agent off",
        BROKER,
        "cut_off",
        r#"Agent::"spiffe://acme.example/agent/browser""#,
        "",
        "",
        false,
        &[],
        0,
    ),
];

fn loaded(a: &mut dyn Attester) {
    let n = a.set_policies(&pack::policies(), Some(&pack::schema()), Some(&pack::entities())).unwrap();
    assert_eq!(n, 12, "{}: the pack has 12 policies", a.name());
}

fn run_both(f: impl Fn(&mut dyn Attester) -> Verdict) -> Verdict {
    let n = f(&mut Native::default());
    let c = f(&mut Component::new());
    assert_eq!(n, c, "native and component disagree");
    n
}

#[test]
fn the_pack_table_both_ways() {
    let mut native = Native::default();
    let mut component = Component::new();
    loaded(&mut native);
    loaded(&mut component);
    open_tasks(&mut native);
    open_tasks(&mut component);
    for c in TABLE {
        let who = identity(c.who, NOW + c.expires_in);
        let what = intent(c.action, c.resource, c.task, c.context);
        let n = native.check(&who, &what, NOW);
        let k = component.check(&who, &what, NOW);
        assert_eq!(n, k, "{}: native and component disagree", c.name);
        assert!(n.errors.is_empty(), "{}: {:?}", c.name, n.errors);
        assert_eq!(
            (n.allow, n.reasons.as_slice(), n.max_ttl_secs),
            (c.allow, &c.reasons.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..], c.ttl),
            "{}",
            c.name
        );
    }
}

#[test]
fn delegation_depth_is_bounded() {
    // The depth comes from a credential's `act` chain (issuance); natively it can be set now.
    let mut n = Native::default();
    loaded(&mut n);
    let who = identity(BROKER, NOW + 3600);
    let to_sub = intent("delegate", r#"Agent::"spiffe://acme.example/agent/sub-1""#, "p", "");
    for (depth, allow, reasons) in [
        (0, true, vec!["delegate-same-domain"]),
        (1, true, vec!["delegate-same-domain"]),
        (2, false, vec![]),
        (3, false, vec!["max-delegation-depth"]),
    ] {
        let d = n.engine.check_at_depth(&who, &to_sub, NOW, depth);
        assert_eq!(
            (d.allow, d.reasons.iter().map(String::as_str).collect::<Vec<_>>()),
            (allow, reasons),
            "depth {depth}"
        );
    }
    // Three hops down, even a task-scoped payroll read is refused.
    let d = n.engine.check_at_depth(
        &identity(PAYROLL, NOW + 3600),
        &intent("read", r#"PayrollRecord::"run-42/emp-7""#, "run-42", ""),
        NOW,
        3,
    );
    assert_eq!((d.allow, d.reasons), (false, vec!["max-delegation-depth".to_string()]));
}

#[test]
fn bad_requests_deny_with_the_error_listed() {
    let cases = [
        ("unknown action", intent("fly", r#"Tool::"browser""#, "t", ""), "`Action::\"fly\"`"),
        ("resource not an entity uid", intent("invoke", "browser", "t", ""), "not an entity uid"),
        ("unknown entity type", intent("invoke", r#"Spaceship::"x""#, "t", ""), "request"),
        ("context not JSON", intent("invoke", r#"Tool::"browser""#, "t", "{nope"), "context is not JSON"),
        ("context not an object", intent("invoke", r#"Tool::"browser""#, "t", "[1]"), "not a JSON object"),
        ("context key not in schema", intent("invoke", r#"Tool::"browser""#, "t", r#"{"mood":"happy"}"#), "context"),
        (
            "context too deep",
            intent(
                "invoke",
                r#"Tool::"browser""#,
                "t",
                &format!("{{\"reason\":{}1{}}}", "[".repeat(40), "]".repeat(40)),
            ),
            "nests",
        ),
        (
            "context too large",
            intent("invoke", r#"Tool::"browser""#, "t", &format!("{{\"reason\":\"{}\"}}", "x".repeat(70_000))),
            "over the cap",
        ),
    ];
    for (name, what, needle) in cases {
        let who = identity(BROWSER, NOW + 3600);
        let v = run_both(|a| {
            loaded(a);
            a.check(&who, &what, NOW)
        });
        assert!(!v.allow, "{name}");
        assert_eq!(v.max_ttl_secs, 0, "{name}");
        assert!(v.errors.iter().any(|e| e.contains(needle)), "{name}: {:?} lacks `{needle}`", v.errors);
    }
    // With nothing loaded, the answer is deny.
    let v = run_both(|a| a.check(&identity(BROWSER, NOW + 60), &intent("invoke", r#"Tool::"browser""#, "t", ""), NOW));
    assert_eq!((v.allow, v.errors), (false, vec!["no policies are loaded".to_string()]));
}

#[test]
fn load_errors_are_typed_and_located() {
    let schema = pack::schema();
    let cases: Vec<(&str, String, Option<String>, Option<String>, &str)> = vec![
        ("unparsable", "permit(principal, action, resource)\nwhen { principal.x == };".into(), None, None, "line 2"),
        ("unknown attribute", "@id(\"bad-attr\")\npermit(principal, action == Action::\"read\", resource is Dataset) when { resource.owner == \"x\" };".into(), Some(schema.clone()), None, "bad-attr"),
        ("unknown entity type", "@id(\"ghost\")\npermit(principal is Ghost, action, resource);".into(), Some(schema.clone()), None, "Ghost"),
        ("bad schema", "permit(principal, action, resource);".into(), Some("entity ;".into()), None, "schema is invalid"),
        ("entities of an unknown type", "permit(principal, action, resource);".into(), Some(schema.clone()), Some(r#"[{"uid":{"type":"Ghost","id":"x"},"attrs":{},"parents":[]}]"#.into()), "entities are invalid"),
        ("entities not JSON", "permit(principal, action, resource);".into(), None, Some("nope".into()), "entities are invalid"),
        ("duplicate id", "@id(\"a\") permit(principal, action, resource);\n@id(\"a\") forbid(principal, action, resource);".into(), None, None, "two policies have the id `a`"),
        ("bad ttl", "@id(\"t\") @ttl(\"soon\") permit(principal, action, resource);".into(), None, None, "`@ttl(\"soon\")`"),
        ("template", "permit(principal == ?principal, action, resource);".into(), None, None, "templates are not supported"),
        ("too deep", format!("permit(principal, action, resource) when {{ {}true{} }};", "(".repeat(40), ")".repeat(40)), None, None, "nests"),
    ];
    for (name, p, s, e, needle) in cases {
        let n = Native::default().set_policies(&p, s.as_deref(), e.as_deref());
        let c = Component::new().set_policies(&p, s.as_deref(), e.as_deref());
        assert_eq!(n, c, "{name}: native and component disagree");
        let err = n.expect_err(name);
        assert!(err.starts_with("policy: ") || err.starts_with("limit: "), "{name}: {err}");
        assert!(err.contains(needle), "{name}: `{err}` lacks `{needle}`");
    }
}

#[test]
fn a_bad_load_leaves_the_previous_policies_in_force() {
    let who = identity(BROWSER, NOW + 3600);
    let what = intent("invoke", r#"Tool::"browser""#, "t", "");
    for a in [&mut Native::default() as &mut dyn Attester, &mut Component::new()] {
        loaded(a);
        assert!(a.set_policies("permit(", None, None).is_err());
        assert!(a.check(&who, &what, NOW).allow, "{}", a.name());
    }
}

#[test]
fn ttl_is_the_smallest_among_determining_permits_capped_by_the_default() {
    let p = r#"
        @id("long") @ttl("2h") permit(principal, action == Action::"a", resource);
        @id("short") @ttl("5m") permit(principal, action == Action::"a", resource) when { context.task_id == "t" };
        @id("plain") permit(principal, action == Action::"b", resource);
    "#;
    let who = identity(BROWSER, NOW + 3600);
    let v = run_both(|a| {
        a.set_policies(p, None, None).unwrap();
        a.check(&who, &intent("a", r#"X::"y""#, "t", ""), NOW)
    });
    assert_eq!((v.allow, v.reasons.clone(), v.max_ttl_secs), (true, vec!["long".into(), "short".into()], 300));
    let v = run_both(|a| {
        a.set_policies(p, None, None).unwrap();
        a.check(&who, &intent("a", r#"X::"y""#, "other", ""), NOW)
    });
    // 2h is capped by the default cap of 3600 s.
    assert_eq!((v.allow, v.max_ttl_secs), (true, 3600));
    let v = run_both(|a| {
        a.set_policies(p, None, None).unwrap();
        a.check(&who, &intent("b", r#"X::"y""#, "t", ""), NOW)
    });
    assert_eq!((v.reasons, v.max_ttl_secs), (vec!["plain".to_string()], 3600));
}

#[test]
fn writ_context_keys_cannot_be_spoofed() {
    let p = r#"@id("young") permit(principal, action, resource) when { context.now < 100 && context.delegation_depth == 0 };"#;
    let who = identity(BROWSER, NOW + 3600);
    let v = run_both(|a| {
        a.set_policies(p, None, None).unwrap();
        a.check(&who, &intent("x", r#"X::"y""#, "t", r#"{"now": 1, "task_id": "forged"}"#), NOW)
    });
    assert!(!v.allow, "the caller's `now` must not override Writ's");
}

#[test]
fn policies_see_the_identity_attributes() {
    let p = r#"@id("td") permit(principal, action, resource) when { principal.trust_domain == "acme.example" && principal.path == "/agent/browser" && principal.proof == "x509-svid" };"#;
    let what = intent("x", r#"X::"y""#, "t", "");
    // An SVID the component attested, and the same identity natively.
    let c = Component::new();
    c.writ.set_time(Some(NOW));
    c.writ.set_policies(p, None, None).unwrap();
    let svid = writ_tests::pack_pki().chain3("/agent/browser", writ_tests::pki::KeyAlg::P256);
    let attested = c.writ.attest_x509(&svid).unwrap();
    assert_eq!(c.writ.check(&attested, &what).unwrap().reasons, vec!["td".to_string()]);
    let mut n = Native::default();
    n.set_policies(p, None, None).unwrap();
    assert_eq!(n.check(&identity(BROWSER, NOW + 60), &what, NOW).reasons, vec!["td".to_string()]);
    // The same principal taken on the host's word: its proof says so, and the policy sees it.
    let asserted = writ_tests::asserted(&c.writ, &identity(BROWSER, NOW + 60));
    assert_eq!(asserted.proof, writ_host::Proof::Asserted);
    assert!(!c.writ.check(&asserted, &what).unwrap().allow);
    let v = run_both(|a| {
        a.set_policies(p, None, None).unwrap();
        a.check(&identity("spiffe://evil.example/agent/browser", NOW + 60), &what, NOW)
    });
    assert!(!v.allow);
}

#[test]
fn hot_reload_under_concurrent_checks_is_atomic() {
    let allow = r#"@id("set-a") permit(principal, action, resource);"#;
    let deny = r#"@id("set-b") forbid(principal, action, resource);"#;
    let writ = writ_tests::attester::writ();
    writ.set_time(Some(NOW));
    writ.set_policies(allow, None, None).unwrap();
    let who = writ_tests::asserted(&writ, &identity(BROWSER, NOW + 60));
    let what = intent("x", r#"X::"y""#, "t", "");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut seen = (0, 0);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let d = writ.check(&who, &what).unwrap();
                        assert!(d.errors.is_empty(), "{:?}", d.errors);
                        match (d.allow, d.reasons.as_slice()) {
                            (true, [r]) if r == "set-a" => seen.0 += 1,
                            (false, [r]) if r == "set-b" => seen.1 += 1,
                            other => panic!("a decision from neither set: {other:?}"),
                        }
                    }
                    seen
                })
            })
            .collect();
        for i in 0..20 {
            writ.set_policies(if i % 2 == 0 { deny } else { allow }, None, None).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let total: (u32, u32) =
            workers.into_iter().map(|w| w.join().unwrap()).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        assert!(total.0 + total.1 > 0);
    });
    // After the last reload (an allow set), every decision is from it.
    assert!(writ.check(&who, &what).unwrap().allow);
}

#[test]
fn every_decision_is_audited_once() {
    let (writ, events) = writ_tests::attester::audited_writ(NOW);
    writ.set_policies(&pack::policies(), Some(&pack::schema()), Some(&pack::entities())).unwrap();
    writ_tests::open_pack_tasks(&writ, &["run-42"]);
    let who = writ_tests::asserted(&writ, &identity(PAYROLL, NOW + 3600));
    events.lock().unwrap().clear();
    let ok = intent("read", RECORD, "run-42", "");
    let no = intent("send", RECORD, "run-42", EXTERNAL);
    writ.check(&who, &ok).unwrap();
    writ.check(&who, &no).unwrap();
    let ev = events.lock().unwrap();
    assert_eq!(ev.len(), 2);
    let e = &ev[0];
    assert_eq!(
        (
            e.kind.as_str(),
            e.spiffe_id.as_deref(),
            e.task_id.as_deref(),
            e.action.as_deref(),
            e.resource.as_deref(),
            e.allow,
            e.time
        ),
        ("authorize", Some(PAYROLL), Some("run-42"), Some("read"), Some(r#"PayrollRecord::"run-42/emp-7""#), true, NOW)
    );
    assert_eq!(e.reasons, vec!["payroll-read-in-task".to_string()]);
    assert_eq!((ev[1].allow, ev[1].reasons.clone()), (false, vec!["no-high-sensitivity-external".to_string()]));
    let line = serde_json::to_value(e).unwrap();
    assert_eq!(line["gen_ai.agent.id"], PAYROLL);
    assert_eq!(line["gen_ai.tool.name"], "read");
}

#[test]
fn a_batch_decides_each_intent_as_check_does_and_audits_each() {
    // Two components, each evaluating (memo off): one asked item by item, one in batches.
    let build = || {
        let (writ, events) = writ_tests::attester::audited_writ(NOW);
        writ.set_policies(&pack::policies(), Some(&pack::schema()), Some(&pack::entities())).unwrap();
        writ.set_decision_memo(false).unwrap();
        writ_tests::open_pack_tasks(&writ, &["run-42"]);
        events.lock().unwrap().clear();
        (writ, events)
    };
    let ((single, single_events), (batch, batch_events)) = (build(), build());
    let mut compared = 0;
    for agent in [PAYROLL, BROWSER, BROKER, CI, ONCALL] {
        let cases: Vec<_> = TABLE.iter().filter(|c| c.who == agent && c.expires_in == 3600).collect();
        let what: Vec<_> = cases.iter().map(|c| intent(c.action, c.resource, c.task, c.context)).collect();
        let one_by_one: Vec<_> = {
            let who = writ_tests::asserted(&single, &identity(agent, NOW + 3600));
            what.iter().map(|w| single.check(&who, w).unwrap()).collect()
        };
        let who = writ_tests::asserted(&batch, &identity(agent, NOW + 3600));
        let batched = batch.check_many(&who, &what).unwrap();
        assert_eq!(batched, one_by_one, "{agent}: the batch decides as check does");
        compared += batched.len();
    }
    assert!(compared >= 10, "the table has cases for the pack's agents: {compared}");
    let allows: Vec<bool> = batch_events.lock().unwrap().iter().map(|e| e.allow).collect();
    assert!(allows.contains(&true) && allows.contains(&false), "the table allows some and denies some");
    assert!(batch.check_many(&writ_tests::asserted(&batch, &identity(PAYROLL, NOW + 3600)), &[]).unwrap().is_empty());
    let kinds = |ev: &writ_tests::attester::Events| {
        ev.lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind == "authorize")
            .map(|e| (e.spiffe_id.clone(), e.allow))
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(&batch_events), kinds(&single_events), "each item audited as a check is");
    assert_eq!(kinds(&batch_events).len(), compared);
}

#[test]
fn the_embedded_pack_is_the_policies_directory() {
    assert_eq!(writ_types::pack::POLICIES, pack::policies(), "types/src/pack.rs must list every policies/*.cedar file");
    assert_eq!(writ_types::pack::SCHEMA, pack::schema());
    assert_eq!(writ_types::pack::ENTITIES, pack::entities());
}

#[test]
fn the_ttl_cap_is_configurable() {
    let p = r#"@id("long") @ttl("2h") permit(principal, action, resource); @id("plain") permit(principal, action == Action::"b", resource);"#;
    let who = identity(BROWSER, NOW + 3600);
    let mut n = Native::default();
    n.engine.set_ttl_cap(600);
    n.set_policies(p, None, None).unwrap();
    let c = Component::new();
    c.writ.set_ttl_cap(600).unwrap();
    c.writ.set_policies(p, None, None).unwrap();
    for (action, ttl) in [("a", 600), ("b", 600)] {
        let what = intent(action, r#"X::"y""#, "t", "");
        let d = n.engine.check(&who, &what, NOW);
        c.writ.set_time(Some(NOW));
        let k = c.writ.check(&writ_tests::asserted(&c.writ, &who), &what).unwrap();
        assert_eq!((d.max_ttl_secs, k.max_ttl_secs), (ttl, ttl), "{action}");
    }
}

#[test]
fn the_decision_memo_never_outlives_the_second_a_policy_reads_or_a_reload() {
    // `now` is read: a repeated request is re-decided when the second changes.
    let timed = format!(r#"@id("until") permit(principal, action, resource) when {{ context.now < {} }};"#, NOW + 1);
    let c = Component::new();
    c.writ.set_time(Some(NOW));
    let who = writ_tests::asserted(&c.writ, &identity(BROWSER, NOW + 3600));
    let what = intent("read", r#"X::"y""#, "t", "");
    for memo in [true, false] {
        c.writ.set_decision_memo(memo).unwrap();
        c.writ.set_policies(&timed, None, None).unwrap();
        c.writ.set_time(Some(NOW));
        assert!(c.writ.check(&who, &what).unwrap().allow);
        assert!(c.writ.check(&who, &what).unwrap().allow, "repeated in the same second");
        c.writ.set_time(Some(NOW + 1));
        assert!(!c.writ.check(&who, &what).unwrap().allow, "memo {memo}: the next second is decided again");
        // A reload is a new policy set: nothing remembered survives it.
        c.writ.set_policies(r#"@id("all") permit(principal, action, resource);"#, None, None).unwrap();
        assert_eq!(c.writ.check(&who, &what).unwrap().reasons, vec!["all".to_string()]);
    }
}

#[test]
fn deep_expressions_are_refused_at_load_not_trapped_at_evaluation() {
    // Native Cedar checks its own stack and would answer "recursion limit reached" on a
    // test thread's 2 MiB in a debug build; give the native side room, as an embedder would.
    std::thread::Builder::new().stack_size(256 << 20).spawn(deep_expressions).unwrap().join().unwrap();
}

fn deep_expressions() {
    let who = identity(BROWSER, NOW + 3600);
    let what = intent("x", r#"X::"y""#, "t", "");
    // At the cap: the deepest shapes still evaluate inside the component without trapping.
    let and_chain = format!(
        "permit(principal, action, resource) when {{ {} }};",
        vec!["true"; MAX_POLICY_OPERATORS + 1].join(" && ")
    );
    let if_chain = format!(
        "permit(principal, action, resource) when {{ {}true }};",
        "if false then false else ".repeat(MAX_POLICY_OPERATORS)
    );
    let nested_and = format!(
        "permit(principal, action, resource) when {{ {}true{} && {} }};",
        "(".repeat(31),
        ")".repeat(31),
        vec!["true"; MAX_POLICY_OPERATORS].join(" && ")
    );
    for (name, p, allow) in
        [("and chain", &and_chain, true), ("if chain", &if_chain, true), ("nested and chain", &nested_and, true)]
    {
        let v = run_both(|a| {
            a.set_policies(p, None, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            a.check(&who, &what, NOW)
        });
        assert_eq!((v.allow, v.errors.clone()), (allow, vec![]), "{name}");
    }
    // Over the cap: a typed limit error at load, the same both ways.
    let over = format!("permit(principal, action, resource) when {{ {} }};", vec!["true"; 2000].join(" && "));
    let n = Native::default().set_policies(&over, None, None);
    let c = Component::new().set_policies(&over, None, None);
    assert_eq!(n, c);
    assert!(n.unwrap_err().starts_with("limit: a policy has 1999 operators"));
}

#[test]
fn break_glass_needs_a_signed_single_use_approval_audited_apart() {
    use writ_tests::approval::Approver;
    let (writ, events) = writ_tests::attester::audited_writ(NOW);
    writ.set_policies(&pack::policies(), Some(&pack::schema()), Some(&pack::entities())).unwrap();
    writ_tests::open_pack_tasks(&writ, &["inc-7"]);
    let approver = Approver::new(3);
    assert_eq!(writ.set_approvers(&approver.jwks).unwrap(), 1);
    assert!(writ.set_approvers("{\"keys\": 1}").is_err(), "a bad set is refused");
    events.lock().unwrap().clear();
    let oncall = writ_tests::asserted(&writ, &identity(ONCALL, NOW + 3600));
    let glass = |context: &str| intent("break_glass", r#"Environment::"production""#, "inc-7", context);
    let signed = approver.sign(&Approver::claims(ONCALL, "inc-7", "a-1", NOW - 5));
    let d = writ.check(&oncall, &glass(&Approver::context(&signed))).unwrap();
    assert_eq!((d.allow, d.reasons.clone(), d.max_ttl_secs), (true, vec!["break-glass".to_string()], 900));
    // Single-use: the same approval again is refused before any policy.
    let d = writ.check(&oncall, &glass(&Approver::context(&signed))).unwrap();
    assert_eq!((d.allow, d.reasons.clone()), (false, vec![writ_core::approval::APPROVAL_REFUSED.to_string()]));
    // Forged (another key), for another agent, or written as the record a policy reads: never.
    let forged = Approver::new(4).sign(&Approver::claims(ONCALL, "inc-7", "a-2", NOW - 5));
    let foreign = approver.sign(&Approver::claims(CI, "inc-7", "a-3", NOW - 5));
    let record = r#"{"approval":{"approver":"me","ticket":"T","reason":"r","expires_at":1}}"#;
    for context in [Approver::context(&forged), Approver::context(&foreign), record.to_string()] {
        assert!(!writ.check(&oncall, &glass(&context)).unwrap().allow, "{context}");
    }
    // Approvals are audited apart: the verified one names its approver and ticket.
    let ev = events.lock().unwrap();
    let approvals: Vec<_> = ev.iter().filter(|e| e.kind == "approval").collect();
    assert_eq!(approvals.len(), 4, "{ev:?}");
    assert!(approvals[0].allow);
    assert_eq!(approvals[0].jti.as_deref(), Some("a-1"));
    assert!(approvals[0].detail.as_deref().is_some_and(|d| d.contains("approver=alice@acme.example ticket=INC-7")));
    assert!(approvals[1..].iter().all(|e| !e.allow));
}
