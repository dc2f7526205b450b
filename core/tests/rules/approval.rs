//! Break-glass approvals natively: only a JWS signed by a configured approver key, for this
//! agent and task, unexpired, with the approval audience, opens break-glass — once. A forged,
//! expired, foreign, reused or merely claimed approval never does.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use writ_core::approval::{APPROVAL_AUDIENCE, APPROVAL_REFUSED};
use writ_core::crypto::{Crypto, RustCrypto};
use writ_core::pack::{ENTITIES, POLICIES, SCHEMA};
use writ_core::{Identity, Intent, Ledger as _, MemoryLedger, Proof, Task, Writ};

const NOW: u64 = 1_800_000_000;
const ONCALL: &str = "spiffe://acme.example/agent/oncall";

fn oncall() -> Identity {
    Identity {
        spiffe_id: ONCALL.into(),
        trust_domain: "acme.example".into(),
        expires_at: NOW + 3600,
        thumbprint: String::new(),
        proof: Proof::X509Svid,
        claims: Default::default(),
    }
}

/// An approver: its signer and its JWKS.
fn approver(scalar: u8) -> (RustCrypto, String) {
    let c = RustCrypto::with_p256_scalar([scalar; 32]).unwrap();
    let jwks = c.public_keys();
    (c, jwks)
}

fn sign(by: &RustCrypto, claims: &Value) -> String {
    let kid = by.signing_key().unwrap().kid;
    let header = json!({ "alg": "ES256", "kid": kid, "typ": "JWT" });
    let mut t =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let sig = by.sign(&kid, t.as_bytes()).unwrap();
    t.push('.');
    t.push_str(&URL_SAFE_NO_PAD.encode(sig));
    t
}

fn claims(jti: &str) -> Value {
    json!({
        "iss": "alice@acme.example", "aud": APPROVAL_AUDIENCE, "sub": ONCALL, "txn": "inc-7",
        "reason": "payroll outage", "ticket": "INC-7", "jti": jti, "iat": NOW - 10, "exp": NOW + 600,
    })
}

fn glass(context: &str) -> Intent {
    Intent {
        action: "break_glass".into(),
        resource: r#"Environment::"production""#.into(),
        task_id: "inc-7".into(),
        context: context.into(),
        input: String::new(),
    }
}

fn world() -> (Writ, MemoryLedger, RustCrypto) {
    let mut w = Writ::default();
    w.set_policies(POLICIES, Some(SCHEMA), Some(ENTITIES)).unwrap();
    let (_, jwks) = approver(3);
    assert_eq!(w.set_approvers(&jwks).unwrap(), 1);
    let ledger = MemoryLedger::new();
    let task = Task {
        id: "inc-7".into(),
        opener: ONCALL.into(),
        members: vec![ONCALL.into()],
        purpose: "incident".into(),
        opened_at: NOW - 60,
        deadline: NOW + 3600,
        ended_at: None,
    };
    ledger.open_task(&task, NOW - 60).unwrap();
    (w, ledger, RustCrypto::new())
}

fn with_approval(token: &str) -> String {
    json!({ "approval": token }).to_string()
}

#[test]
fn a_signed_approval_opens_break_glass_once() {
    let (w, ledger, crypto) = world();
    let (signer, _) = approver(3);
    let token = sign(&signer, &claims("a-1"));
    let d = w.decide(&oncall(), &glass(&with_approval(&token)), NOW, 0, &ledger, &crypto);
    assert!(d.allow, "{d:?}");
    assert_eq!((d.reasons.clone(), d.max_ttl_secs), (vec!["break-glass".to_string()], 900));
    let again = w.decide(&oncall(), &glass(&with_approval(&token)), NOW + 1, 0, &ledger, &crypto);
    assert!(!again.allow);
    assert_eq!(again.reasons, [APPROVAL_REFUSED]);
    assert!(again.errors[0].contains("already used"), "{again:?}");
    // Without an approval, the policy does not apply.
    assert!(!w.decide(&oncall(), &glass(""), NOW, 0, &ledger, &crypto).allow);
}

#[test]
fn forged_expired_foreign_or_claimed_approvals_never_open_break_glass() {
    let (w, ledger, crypto) = world();
    let (signer, _) = approver(3);
    let (stranger, _) = approver(4);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = claims("x");
        f(&mut c);
        sign(&signer, &c)
    };
    let mut tampered = sign(&signer, &claims("t"));
    let body = URL_SAFE_NO_PAD.encode(claims("t").to_string().replace("INC-7", "INC-8"));
    let parts: Vec<&str> = tampered.split('.').collect();
    tampered = format!("{}.{}.{}", parts[0], body, parts[2]);
    let cases: Vec<(&str, String)> = vec![
        ("another key", sign(&stranger, &claims("s"))),
        ("tampered claims", tampered),
        (
            "expired",
            with(&|c| {
                c["iat"] = json!(NOW - 700);
                c["exp"] = json!(NOW - 100);
            }),
        ),
        (
            "not yet valid",
            with(&|c| {
                c["iat"] = json!(NOW + 100);
                c["exp"] = json!(NOW + 200);
            }),
        ),
        ("too long-lived", with(&|c| c["exp"] = json!(NOW + 7200))),
        ("another agent", with(&|c| c["sub"] = json!("spiffe://acme.example/agent/payroll"))),
        ("another task", with(&|c| c["txn"] = json!("inc-8"))),
        ("another audience", with(&|c| c["aud"] = json!("something-else"))),
        ("no reason", with(&|c| c["reason"] = json!(""))),
        (
            "no jti",
            with(&|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k"}"#),
                URL_SAFE_NO_PAD.encode(claims("n").to_string())
            ),
        ),
        ("garbage", "not a jws".into()),
    ];
    for (name, token) in cases {
        let d = w.decide(&oncall(), &glass(&with_approval(&token)), NOW, 0, &ledger, &crypto);
        assert!(!d.allow, "{name}: {d:?}");
        assert_eq!(d.reasons, [APPROVAL_REFUSED], "{name}: {d:?}");
    }
    // An approval written as the record policies read is only a claim: it fails the schema
    // (`claimed.approval` is a string) and is never Writ's `context.approval`.
    let record = json!({ "approval": { "approver": "me", "ticket": "T", "reason": "r", "expires_at": NOW + 60 } });
    let d = w.decide(&oncall(), &glass(&record.to_string()), NOW, 0, &ledger, &crypto);
    assert!(!d.allow, "{d:?}");
    // No approver keys configured: every approval is refused.
    let mut bare = Writ::default();
    bare.set_policies(POLICIES, Some(SCHEMA), Some(ENTITIES)).unwrap();
    let d = bare.decide(&oncall(), &glass(&with_approval(&sign(&signer, &claims("b")))), NOW, 0, &ledger, &crypto);
    assert_eq!((d.allow, d.reasons), (false, vec![APPROVAL_REFUSED.to_string()]));
    // A bad approver set leaves the previous one in force.
    let mut w = w;
    assert!(w.set_approvers("{\"keys\": [{\"kty\": \"EC\"}]}").is_err());
    assert!(w.set_approvers("not json").is_err());
    let d = w.decide(&oncall(), &glass(&with_approval(&sign(&signer, &claims("c")))), NOW, 0, &ledger, &crypto);
    assert!(d.allow, "{d:?}");
}

#[test]
fn a_credential_issued_under_an_approval_carries_it_and_the_approval_is_used_up() {
    let (mut w, ledger, _) = world();
    let issuer = RustCrypto::with_ed25519_seed([7; 32]);
    let (signer, _) = approver(3);
    let token = sign(&signer, &claims("c-1"));
    let env = writ_core::Env { now: NOW, crypto: &issuer, ledger: &ledger, entropy: [1; 16] };
    let issued = w.issue(&oncall(), "inc-7", &[glass(&with_approval(&token))], 3600, "prod", &env).unwrap();
    let apr = issued.claims.apr.clone().expect("the credential carries the approval");
    assert_eq!((apr.approver.as_str(), apr.ticket.as_str(), apr.jti.as_str()), ("alice@acme.example", "INC-7", "c-1"));
    assert_eq!(issued.claims.exp, NOW + 600, "no longer than the approval (and the 900 s @ttl)");
    // Presented without a second approval: the one it carries stands, as often as it lives.
    for at in [NOW + 1, NOW + 500] {
        let p = w.present(&issued.grant.token, &oncall(), &glass(""), "prod", at, &issuer, &ledger).unwrap();
        assert_eq!(p.decision.reasons, ["break-glass"], "{:?}", p.decision);
    }
    // The approval itself is used up: a second credential from it is refused.
    let env = writ_core::Env { now: NOW + 2, crypto: &issuer, ledger: &ledger, entropy: [2; 16] };
    let again = w.issue(&oncall(), "inc-7", &[glass(&with_approval(&token))], 600, "prod", &env);
    assert!(matches!(again, Err(writ_core::Error::Denied(d)) if d.reasons == [APPROVAL_REFUSED]));
}
