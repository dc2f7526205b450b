//! `writ demo`: the main job on built-in defaults. Makes a test trust domain (rcgen), attests
//! sample SVIDs through the component and shows what it refuses (with timings), then walks the
//! credential story with the shipped policy pack: authorize, issue a task credential, use it,
//! delegate a narrower one to a sub-agent, and lose all of it at task end — printing each
//! step, decision and audit event.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use writ_host::{Attested, AuditSink, Error, Intent, Writ};

const TD: &str = "acme.example";

fn rc(e: rcgen::Error) -> Error {
    Error::Runtime(format!("making the demo PKI failed: {e}"))
}

fn uri(s: &str) -> Result<SanType, Error> {
    Ok(SanType::URI(s.try_into().map_err(rc)?))
}

fn ca(cn: &str, now: SystemTime) -> Result<CertificateParams, Error> {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.subject_alt_names = vec![uri(&format!("spiffe://{TD}"))?];
    p.not_before = (now - Duration::from_secs(3600)).into();
    p.not_after = (now + Duration::from_secs(30 * 86400)).into();
    Ok(p)
}

fn leaf(id: &str, now: SystemTime) -> Result<CertificateParams, Error> {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, "agent");
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    p.subject_alt_names = vec![uri(id)?];
    p.not_before = (now - Duration::from_secs(60)).into();
    p.not_after = (now + Duration::from_secs(3600)).into();
    Ok(p)
}

fn show(label: &str, r: &Result<Attested, Error>) {
    match r {
        Ok(id) => println!("  {label:<38} ACCEPT {}", serde_json::json!(id.identity())),
        Err(e) => println!("  {label:<38} REJECT {}: {}", e.kind(), e.message()),
    }
}

fn micros(d: Duration, n: u32) -> f64 {
    d.as_secs_f64() * 1e6 / f64::from(n)
}

pub fn run() -> Result<(), Error> {
    let now = SystemTime::now();
    let started = Instant::now();
    // Every audit event is printed as it happens (a callback sink).
    let writ = Writ::builder().audit(AuditSink::callback(|e| println!("      audit {}", audit_line(e)))).build()?;
    let quiet = Writ::builder().build()?;
    println!(
        "Writ demo — component {} KiB, loaded in {:.1} ms ({:?})",
        writ_host::COMPONENT.len() / 1024,
        started.elapsed().as_secs_f64() * 1e3,
        writ.cache_source()
    );

    // A trust domain: root → intermediate → agent leaf, P-256 (SPIRE's default).
    let alg = &rcgen::PKCS_ECDSA_P256_SHA256;
    let root_key = KeyPair::generate_for(alg).map_err(rc)?;
    let root_params = ca("demo root", now)?;
    let root_der = root_params.self_signed(&root_key).map_err(rc)?.der().to_vec();
    let root = Issuer::new(root_params, root_key);
    let int_key = KeyPair::generate_for(alg).map_err(rc)?;
    let int_params = ca("demo intermediate", now)?;
    let int_der = int_params.signed_by(&int_key, &root).map_err(rc)?.der().to_vec();
    let int = Issuer::new(int_params, int_key);
    let agent_id = format!("spiffe://{TD}/agent/payroll");
    let leaf_der =
        leaf(&agent_id, now)?.signed_by(&KeyPair::generate_for(alg).map_err(rc)?, &int).map_err(rc)?.der().to_vec();
    let chain = vec![leaf_der.clone(), int_der.clone()];
    println!("Trust domain `{TD}`: root → intermediate → `{agent_id}` (P-256)");
    writ.set_bundle(TD, &root_der)?;
    quiet.set_bundle(TD, &root_der)?;

    println!("Attesting through the component (host crypto: ring):");
    show("valid SVID chain", &writ.attest_x509(&chain));

    let mut tampered = chain.clone();
    if let Some(b) = tampered[0].last_mut() {
        *b ^= 1;
    }
    show("tampered signature", &writ.attest_x509(&tampered));
    show("missing intermediate", &writ.attest_x509(&chain[..1]));

    let mut stale = leaf(&agent_id, now)?;
    stale.not_before = (now - Duration::from_secs(7200)).into();
    stale.not_after = (now - Duration::from_secs(3600)).into();
    let stale_der = stale.signed_by(&KeyPair::generate_for(alg).map_err(rc)?, &int).map_err(rc)?.der().to_vec();
    show("expired leaf", &writ.attest_x509(&[stale_der, int_der.clone()]));

    let mut ca_leaf = leaf(&agent_id, now)?;
    ca_leaf.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_leaf_der = ca_leaf.signed_by(&KeyPair::generate_for(alg).map_err(rc)?, &int).map_err(rc)?.der().to_vec();
    show("leaf that claims to be a CA", &writ.attest_x509(&[ca_leaf_der, int_der.clone()]));

    let other = "spiffe://other.example/agent/x";
    let foreign =
        leaf(other, now)?.signed_by(&KeyPair::generate_for(alg).map_err(rc)?, &int).map_err(rc)?.der().to_vec();
    show("unknown trust domain", &writ.attest_x509(&[foreign, int_der.clone()]));

    // Timings: cold (fresh chains each time) and cached (the same chain again).
    let n = 200u32;
    let fresh: Vec<Vec<Vec<u8>>> = (0..n)
        .map(|i| {
            let p = leaf(&format!("spiffe://{TD}/agent/{i}"), now)?;
            let der = p.signed_by(&KeyPair::generate_for(alg).map_err(rc)?, &int).map_err(rc)?.der().to_vec();
            Ok(vec![der, int_der.clone()])
        })
        .collect::<Result<_, Error>>()?;
    let t = Instant::now();
    for c in &fresh {
        quiet.attest_x509(c)?;
    }
    let cold = micros(t.elapsed(), n);
    let t = Instant::now();
    for _ in 0..n {
        quiet.attest_x509(&chain)?;
    }
    let cached = micros(t.elapsed(), n);
    println!("Timing (this build, {n} calls each): cold attest {cold:.1} µs/call, cached {cached:.1} µs/call");
    println!("  (release figures with criterion: `cargo bench -p writ-benches`; see BENCHMARKS.md)");

    // Authorization: the attested identity against the shipped policy pack.
    let n_policies = writ.set_policies(
        writ_types::pack::POLICIES,
        Some(writ_types::pack::SCHEMA),
        Some(writ_types::pack::ENTITIES),
    )?;
    println!(
        "Authorizing intents of `{agent_id}` with the shipped pack ({n_policies} Cedar policies, schema-validated):"
    );
    let who = writ.attest_x509(&chain)?;
    let agent = |path: &str| -> Result<Attested, Error> {
        let der = leaf(&format!("spiffe://{TD}{path}"), now)?
            .signed_by(&KeyPair::generate_for(alg).map_err(rc)?, &int)
            .map_err(rc)?
            .der()
            .to_vec();
        writ.attest_x509(&[der, int_der.clone()])
    };
    let (broker, browser) = (agent("/agent/broker")?, agent("/agent/browser")?);
    // Tasks are records: the broker opens them, naming who may act in them; `context.task` is
    // Writ's record of the task, so a task the agent names but is not in gets it nothing.
    let deadline = writ.now() + 3600;
    for (id, members, purpose) in [
        ("run-42", vec![who.spiffe_id.clone()], "payroll run 42"),
        ("pipeline-1", vec![broker.spiffe_id.clone(), browser.spiffe_id.clone()], "sales report"),
    ] {
        let t = writ.open_task(&broker, id, &members, purpose, deadline)?;
        println!("  {:<38} OPEN   {} for {}", format!("broker opens {id}"), t.purpose, t.members.join(", "));
    }
    let outside = r#"{"destination":"paste.example.net"}"#;
    let inside = r#"{"destination":"payroll.internal.example"}"#;
    let intents = [
        ("read its task's payroll record", "read", RECORD, "run-42", ""),
        ("read in run-43 (never opened)", "read", r#"PayrollRecord::"run-43/emp-7""#, "run-43", ""),
        ("send it to payroll (internal)", "send", RECORD, "run-42", inside),
        ("send it outside the organisation", "send", RECORD, "run-42", outside),
        ("invoke a tool not on its list", "invoke", r#"Tool::"browser""#, "run-42", ""),
    ];
    let mut allowed = 0;
    for (label, action, resource, task, context) in intents {
        let what = Intent {
            action: action.into(),
            resource: resource.into(),
            task_id: task.into(),
            context: context.into(),
            input: String::new(),
        };
        let d = writ.check(&who, &what)?;
        allowed += usize::from(d.allow);
        decision(label, &Ok(d));
    }

    // Credentials: issued per task, bound to the holder's key, used, delegated, revoked.
    println!("Task credentials (issuer key {}; JWKS via `writ jwks`):", issuer_kid(&writ)?);
    grant(
        "payroll: credential for run-43 (never opened)",
        &writ.issue(&who, "run-43", &[intent("read", r#"PayrollRecord::"run-43/emp-7""#)], 600, "payroll-api"),
    );
    let g = writ.issue(&who, "run-42", &[intent("read", RECORD)], 3600, "payroll-api");
    grant("payroll: credential for run-42, asks 3600 s", &g);
    let token = g?.token;
    decision(
        "payroll presents it: read its record",
        &writ.present(&token, &who, &intent("read", RECORD), "payroll-api"),
    );
    decision(
        "payroll presents it: another record",
        &writ.present(&token, &who, &intent("read", r#"PayrollRecord::"run-42/emp-8""#), "payroll-api"),
    );
    decision("the browser agent stole it", &writ.present(&token, &browser, &intent("read", RECORD), "payroll-api"));

    let sales = r#"Dataset::"sales-summary""#;
    let parent = writ.issue(&broker, "pipeline-1", &[intent("read", sales), intent("send", sales)], 600, "bi");
    grant("broker: credential for pipeline-1", &parent);
    let parent = parent?.token;
    let child = writ.delegate(&parent, &broker, &browser, &[intent("read", sales)], 600);
    grant("broker delegates `read` to browser", &child);
    let child = child?.token;
    decision("browser presents the delegated one", &writ.present(&child, &browser, &intent("read", sales), "bi"));
    decision("browser tries `send` with it", &writ.present(&child, &browser, &intent("send", sales), "bi"));
    grant("browser re-delegates wider", &writ.delegate(&child, &browser, &browser, &[intent("send", sales)], 60));

    println!("  {:<38} REVOKE {} live credentials", "pipeline-1 ends", writ.end_task("pipeline-1")?);
    decision("browser presents it again", &writ.present(&child, &browser, &intent("read", sales), "bi"));
    decision("payroll's run-42 is untouched", &writ.present(&token, &who, &intent("read", RECORD), "payroll-api"));
    println!("  {:<38} REVOKE {} live credentials", "run-42 ends", writ.end_task("run-42")?);
    decision("payroll presents after its task", &writ.present(&token, &who, &intent("read", RECORD), "payroll-api"));

    let secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    println!(
        "Done at {secs}: 1 SVID accepted, 5 rejected; {allowed} intents allowed, {} denied; credentials issued, used, delegated and revoked.",
        intents.len() - allowed
    );
    Ok(())
}

const RECORD: &str = r#"PayrollRecord::"run-42/emp-7""#;

fn intent(action: &str, resource: &str) -> Intent {
    Intent {
        action: action.into(),
        resource: resource.into(),
        task_id: String::new(),
        context: String::new(),
        input: String::new(),
    }
}

fn issuer_kid(writ: &Writ) -> Result<String, Error> {
    let jwks: serde_json::Value = serde_json::from_str(&writ.jwks()?).map_err(|e| Error::Malformed(e.to_string()))?;
    Ok(jwks["keys"][0]["kid"].as_str().unwrap_or("?").to_string())
}

fn decision(label: &str, r: &Result<writ_host::Decision, Error>) {
    match r {
        Ok(d) => println!(
            "  {label:<38} {} {}",
            if d.allow { "ALLOW " } else { "DENY  " },
            serde_json::to_string(d).unwrap_or_default()
        ),
        Err(e) => println!("  {label:<38} REJECT {}: {}", e.kind(), e.message()),
    }
}

fn grant(label: &str, r: &Result<writ_host::Grant, Error>) {
    match r {
        Ok(g) => {
            let claims = g
                .token
                .split('.')
                .nth(1)
                .and_then(|p| base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, p).ok());
            let claims: serde_json::Value = claims.and_then(|c| serde_json::from_slice(&c).ok()).unwrap_or_default();
            println!("  {label:<38} GRANT  jti {} expires {} claims {claims}", g.jti, g.expires_at);
        }
        Err(e) => println!("  {label:<38} REFUSE {}: {}", e.kind(), e.message()),
    }
}

/// An audit event as one compact line: kind, who, what, outcome.
fn audit_line(e: &writ_host::AuditEvent) -> String {
    let mut s = match e.kind.as_str() {
        "revoke" => e.kind.clone(),
        kind => format!("{kind} {}", if e.allow { "allow" } else { "deny" }),
    };
    for (k, v) in [
        ("agent", &e.spiffe_id),
        ("task", &e.task_id),
        ("action", &e.action),
        ("resource", &e.resource),
        ("jti", &e.jti),
    ] {
        if let Some(v) = v {
            s.push_str(&format!(" {k}={v}"));
        }
    }
    if !e.reasons.is_empty() {
        s.push_str(&format!(" reasons={}", e.reasons.join(",")));
    }
    if e.act_chain.len() > 1 {
        s.push_str(&format!(" act={}", e.act_chain.join("<")));
    }
    s
}
