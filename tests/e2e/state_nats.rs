//! State on NATS JetStream, against a real `nats-server`: replicas (separate `Writ`s with
//! their own issuer keys) share revocations, grants and published keys; a replica whose view
//! is too old refuses credentials but keeps deciding plain authorization, and catches up in
//! order when NATS returns; NATS killed and restarted keeps everything it acknowledged.

use crate::intent;
use std::time::{Duration, Instant};
use writ_host::state::StateLocation;
use writ_host::{Error, Intent, Writ};
use writ_tests::nats_server::NatsServer;
use writ_tests::pack;
use writ_tests::pki::{KeyAlg, Pki};
use writ_tests::{NOW, eventually};

const RECORD: &str = r#"PayrollRecord::"run-42/emp-7""#;
const SALES: &str = r#"Dataset::"sales-summary""#;

fn replica(location: &StateLocation, pki: &Pki) -> Writ {
    let w = Writ::builder().time(NOW).state(location.clone()).build().unwrap();
    w.set_bundle("acme.example", &pki.bundle_pem()).unwrap();
    w.set_policies(&pack::policies(), Some(&pack::schema()), Some(&pack::entities())).unwrap();
    w
}

fn location(nats: &NatsServer, prefix: &str, max_lag: Duration) -> StateLocation {
    StateLocation::parse(&format!("{}/{prefix}", nats.url())).unwrap().with_max_lag(max_lag)
}

/// What a replica issued: the payroll agent's credential for run-42 and the broker's for
/// pipeline-1 (both tasks opened there, so the registry is shared too).
struct Issued {
    payroll: writ_host::Attested,
    broker: writ_host::Attested,
    record: writ_host::Grant,
    sales: writ_host::Grant,
}

fn issue_on(a: &Writ, pki: &Pki) -> Issued {
    let payroll = a.attest_x509(&pki.chain3("/agent/payroll", KeyAlg::P256)).unwrap();
    let broker = a.attest_x509(&pki.chain3("/agent/broker", KeyAlg::P256)).unwrap();
    writ_tests::open_pack_tasks(a, &["run-42", "pipeline-1"]);
    let record = a.issue(&payroll, "run-42", &[intent("read", RECORD)], 300, "api").unwrap();
    let sales = a.issue(&broker, "pipeline-1", &[intent("read", SALES)], 300, "api").unwrap();
    Issued { payroll, broker, record, sales }
}

fn present(w: &Writ, token: &str, who: &writ_host::Attested, resource: &str) -> Result<bool, Error> {
    w.present(token, who, &intent("read", resource), "api").map(|d| d.allow)
}

#[test]
fn replicas_on_one_nats_share_revocations_grants_and_issuer_keys() {
    let nats = NatsServer::start();
    let loc = location(&nats, "shared", Duration::from_secs(3));
    let pki = writ_tests::pack_pki();
    // B first: it learns A's key by following the key stream, not from its first read.
    let b = replica(&loc, pki);
    let a = replica(&loc, pki);
    let Issued { payroll, broker, record: g, sales: g_sales } = issue_on(&a, pki);
    assert!(
        eventually(Duration::from_secs(5), || present(&b, &g.token, &payroll, RECORD).is_ok_and(|allow| allow))
            .is_some(),
        "B verifies A's credential with A's published key: {:?}",
        present(&b, &g.token, &payroll, RECORD)
    );
    let jwks: serde_json::Value = serde_json::from_str(&b.jwks().unwrap()).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "B publishes its key and A's: {jwks}");

    // Ended on B: B finds A's grant (counted), and A refuses the credential.
    assert_eq!(b.end_task("run-42").unwrap(), 1, "the grant A registered is found from B");
    assert!(matches!(present(&b, &g.token, &payroll, RECORD), Err(Error::Revoked(_))));
    let took = eventually(Duration::from_secs(2), || {
        matches!(present(&a, &g.token, &payroll, RECORD), Err(Error::Revoked(_)))
    });
    assert!(took.is_some(), "A refuses within 2 s: {:?}", present(&a, &g.token, &payroll, RECORD));
    // Other tasks are untouched; a replica started later reads the revocation before it
    // answers anything.
    assert!(present(&a, &g_sales.token, &broker, SALES).unwrap());
    let c = replica(&loc, pki);
    assert!(matches!(present(&c, &g.token, &payroll, RECORD), Err(Error::Revoked(_))));
    assert!(present(&c, &g_sales.token, &broker, SALES).unwrap());
    let summary = c.state_summary().unwrap();
    // Two tasks opened, one ended: the ordered log holds all three.
    assert_eq!((summary.revocations, summary.last_seq), (3, 3), "{summary:?}");

    // Another prefix on the same server is another state.
    let other = replica(&location(&nats, "other", Duration::from_secs(3)), pki);
    assert!(
        matches!(present(&other, &g_sales.token, &broker, SALES), Err(Error::Untrusted(_))),
        "A's key is not published there"
    );
}

#[test]
fn a_replica_without_nats_refuses_credentials_then_catches_up_and_nothing_is_lost() {
    let mut nats = NatsServer::start();
    let loc = location(&nats, "faults", Duration::from_millis(500));
    let pki = writ_tests::pack_pki();
    let a = replica(&loc, pki);
    let Issued { payroll, broker, record: g, sales: g_sales } = issue_on(&a, pki);
    assert_eq!(a.end_task("run-42").unwrap(), 1);

    // NATS killed (SIGKILL): once the view is older than the bound, credentials are refused
    // `unavailable` — plain authorization still answers.
    nats.kill();
    let refused = eventually(Duration::from_secs(5), || {
        matches!(present(&a, &g_sales.token, &broker, SALES), Err(Error::Unavailable(_)))
    });
    assert!(refused.is_some(), "{:?}", present(&a, &g_sales.token, &broker, SALES));
    assert!(matches!(a.issue(&broker, "pipeline-1", &[intent("read", SALES)], 60, "api"), Err(Error::Unavailable(_))));
    assert!(a.check(&broker, &Intent { task_id: "pipeline-1".into(), ..intent("read", SALES) }).unwrap().allow);
    assert!(a.state_errors() >= 2);
    assert!(a.state_view_age().is_some_and(|age| age > Duration::from_millis(500)));

    // NATS back with its file store: the replica catches up and the revocation acknowledged
    // before the kill still holds; so it does for a replica started now.
    nats.restart();
    let back =
        eventually(Duration::from_secs(20), || present(&a, &g_sales.token, &broker, SALES).is_ok_and(|allow| allow));
    assert!(back.is_some(), "{:?}", present(&a, &g_sales.token, &broker, SALES));
    assert!(matches!(present(&a, &g.token, &payroll, RECORD), Err(Error::Revoked(_))));
    let later = replica(&loc, pki);
    assert!(matches!(present(&later, &g.token, &payroll, RECORD), Err(Error::Revoked(_))));
    // A revocation after the restart reaches the first replica, in order.
    assert_eq!(later.end_task("pipeline-1").unwrap(), 1);
    let took = eventually(Duration::from_secs(5), || {
        matches!(present(&a, &g_sales.token, &broker, SALES), Err(Error::Revoked(_)))
    });
    assert!(took.is_some());
    assert_eq!(a.state_summary().unwrap().last_seq, 4, "two openings, two ends");
}

#[test]
fn nats_unreachable_at_start_is_a_typed_error() {
    let nats = NatsServer::start();
    let url = nats.url();
    drop(nats);
    let loc = StateLocation::parse(&url).unwrap().with_max_lag(Duration::from_millis(300));
    let started = Instant::now();
    let Err(Error::Unavailable(m)) = Writ::builder().state(loc).build() else { panic!("built without NATS") };
    assert!(m.contains(&url), "{m}");
    assert!(started.elapsed() < Duration::from_secs(10), "gave up in time");
}

#[test]
fn replicas_racing_on_one_budget_allow_exactly_its_calls() {
    let nats = NatsServer::start();
    let loc = location(&nats, "budget", Duration::from_secs(3));
    let pki = writ_tests::pack_pki();
    let budgeted = r#"@id("pay") @max_calls("5") permit(principal, action == Action::"pay", resource == McpServer::"payments");
@id("open") permit(principal, action == Action::"open_task", resource);"#;
    let on = |_: u8| {
        let w = Writ::builder().time(NOW).state(loc.clone()).build().unwrap();
        w.set_bundle("acme.example", &pki.bundle_pem()).unwrap();
        w.set_policies(budgeted, None, None).unwrap();
        w
    };
    let (a, b) = (on(0), on(1));
    let payroll = a.attest_x509(&pki.chain3("/agent/payroll", KeyAlg::P256)).unwrap();
    a.open_task(&payroll, "run-9", std::slice::from_ref(&payroll.spiffe_id), "pay", NOW + 600).unwrap();
    let pay = Intent { task_id: "run-9".into(), ..intent("pay", r#"McpServer::"payments""#) };
    // Four threads, two per replica, twenty calls in all at once: exactly five are allowed,
    // whichever replica each went to.
    let allowed = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for w in [&a, &b, &a, &b] {
            let (payroll, pay, allowed) = (&payroll, &pay, &allowed);
            s.spawn(move || {
                for _ in 0..5 {
                    let d = w.check(payroll, pay).unwrap();
                    if d.allow {
                        allowed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    } else {
                        assert_eq!(d.reasons, [writ_types::MAX_CALLS_SPENT], "{d:?}");
                    }
                }
            });
        }
    });
    assert_eq!(allowed.into_inner(), 5);
}

#[test]
fn replicas_racing_to_use_one_approval_let_exactly_one_use_stand() {
    use writ_tests::approval::Approver;
    let nats = NatsServer::start();
    let loc = location(&nats, "approvals", Duration::from_secs(3));
    let pki = writ_tests::pack_pki();
    let approver = Approver::new(3);
    let (a, b) = (replica(&loc, pki), replica(&loc, pki));
    for w in [&a, &b] {
        w.set_approvers(&approver.jwks).unwrap();
    }
    writ_tests::open_pack_tasks(&a, &["inc-7"]);
    let oncall = a.attest_x509(&pki.chain3("/agent/oncall", KeyAlg::P256)).unwrap();
    let signed = approver.sign(&Approver::claims("spiffe://acme.example/agent/oncall", "inc-7", "a-race", NOW - 5));
    let glass = Intent {
        task_id: "inc-7".into(),
        context: Approver::context(&signed),
        ..intent("break_glass", r#"Environment::"production""#)
    };
    // The task reached B (the registry is shared) before the race starts.
    let ready = eventually(Duration::from_secs(5), || b.task("inc-7").is_ok_and(|t| t.is_some()));
    assert!(ready.is_some());
    // Six uses at once, three per replica: one stands, whichever replica made it.
    let allowed = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for w in [&a, &b, &a, &b, &a, &b] {
            let (oncall, glass, allowed) = (&oncall, &glass, &allowed);
            s.spawn(move || {
                if w.check(oncall, glass).unwrap().allow {
                    allowed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(allowed.into_inner(), 1);
}
