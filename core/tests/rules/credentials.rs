//! Task credentials natively: issue, present, delegate, revoke, and every way a token can be
//! bad. The same cases run through the component in `tests/e2e/credentials.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use writ_core::credential::{Env, OTHER_TASK, OUTSIDE_SCOPE};
use writ_core::crypto::RustCrypto;
use writ_core::{Error, Identity, Intent, MemoryLedger, Proof, Writ};

const NOW: u64 = 1_000_000;

const POLICIES: &str = r#"
@id("read") @ttl("600") permit(principal in Role::"worker", action == Action::"read", resource is Doc);
@id("write") permit(principal == Agent::"spiffe://t.example/a", action == Action::"write", resource is Doc);
@id("delegate") @ttl("300") permit(principal, action == Action::"delegate", resource is Agent)
  when { resource.trust_domain == principal.trust_domain };
@id("open") permit(principal == Agent::"spiffe://t.example/a", action == Action::"open_task", resource is Task);
"#;

const ENTITIES: &str = r#"[
  {"uid":{"type":"Role","id":"worker"},"attrs":{},"parents":[]},
  {"uid":{"type":"Agent","id":"spiffe://t.example/a"},"attrs":{},"parents":[{"type":"Role","id":"worker"}]},
  {"uid":{"type":"Agent","id":"spiffe://t.example/b"},"attrs":{},"parents":[{"type":"Role","id":"worker"}]},
  {"uid":{"type":"Agent","id":"spiffe://t.example/c"},"attrs":{},"parents":[{"type":"Role","id":"worker"}]},
  {"uid":{"type":"Agent","id":"spiffe://u.example/x"},"attrs":{},"parents":[{"type":"Role","id":"worker"}]}
]"#;

fn who(name: &str) -> Identity {
    let (td, path) = name.split_once('/').unwrap();
    Identity {
        spiffe_id: format!("spiffe://{name}"),
        trust_domain: td.into(),
        expires_at: NOW + 7200,
        thumbprint: format!("thumb-{path}-{td}"),
        proof: Proof::X509Svid,
        claims: Default::default(),
    }
}

fn intent(action: &str, doc: &str) -> Intent {
    Intent {
        action: action.into(),
        resource: format!("Doc::\"{doc}\""),
        task_id: String::new(),
        context: String::new(),
        input: String::new(),
    }
}

struct World {
    engine: Writ,
    crypto: RustCrypto,
    ledger: MemoryLedger,
    n: u8,
}

impl World {
    fn new() -> World {
        Self::with(RustCrypto::with_ed25519_seed([7; 32]))
    }

    fn with(crypto: RustCrypto) -> World {
        let mut engine = Writ::default();
        engine.set_policies(POLICIES, None, Some(ENTITIES)).unwrap();
        let w = World { engine, crypto, ledger: MemoryLedger::new(), n: 0 };
        // The tasks these tests use, open for a day with every agent a member.
        for id in ["t", "t0", "t1", "t2", "t3", "t9", "p", "task-1"] {
            w.open(id, &["t.example/a", "t.example/b", "t.example/c", "u.example/x"], NOW + 86_400);
        }
        w
    }

    /// Register task `id` (as an opener policy allowed would) with `members`.
    fn open(&self, id: &str, members: &[&str], deadline: u64) {
        use writ_core::Ledger as _;
        let task = writ_core::Task {
            id: id.into(),
            opener: "spiffe://t.example/opener".into(),
            members: members.iter().map(|m| format!("spiffe://{m}")).collect(),
            purpose: "test".into(),
            opened_at: NOW,
            deadline,
            ended_at: None,
        };
        self.ledger.open_task(&task, NOW).unwrap();
    }

    fn issue(&mut self, who: &Identity, task: &str, scope: &[Intent], ttl: u32) -> Result<writ_core::Issued, Error> {
        self.issue_at(who, task, scope, ttl, NOW)
    }

    fn issue_at(
        &mut self,
        who: &Identity,
        task: &str,
        scope: &[Intent],
        ttl: u32,
        now: u64,
    ) -> Result<writ_core::Issued, Error> {
        self.n = self.n.wrapping_add(1);
        let env = Env { now, crypto: &self.crypto, ledger: &self.ledger, entropy: [self.n; 16] };
        self.engine.issue(who, task, scope, ttl, "api", &env)
    }

    fn present(&mut self, token: &str, by: &Identity, what: &Intent, now: u64) -> Result<writ_core::Decision, Error> {
        self.engine.present(token, by, what, "api", now, &self.crypto, &self.ledger).map(|p| p.decision)
    }

    fn delegate(
        &mut self,
        parent: &str,
        holder: &Identity,
        to: &Identity,
        scope: &[Intent],
        ttl: u32,
        now: u64,
    ) -> Result<writ_core::Issued, Error> {
        self.n = self.n.wrapping_add(1);
        let env = Env { now, crypto: &self.crypto, ledger: &self.ledger, entropy: [self.n; 16] };
        self.engine.delegate(parent, holder, to, scope, ttl, &env)
    }
}

fn header(token: &str) -> serde_json::Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(token.split('.').next().unwrap()).unwrap()).unwrap()
}

/// A token with its header or claims replaced and re-signed by the issuer's own key.
fn resigned(w: &World, token: &str, edit: impl Fn(&mut serde_json::Value, &mut serde_json::Value)) -> String {
    use writ_core::Crypto as _;
    let mut parts = token.split('.');
    let mut h: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    let mut c: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    edit(&mut h, &mut c);
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(h.to_string()), URL_SAFE_NO_PAD.encode(c.to_string()));
    let kid = w.crypto.signing_key().unwrap().kid;
    let sig = w.crypto.sign(&kid, input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[test]
fn issue_then_present_by_the_holder() {
    let mut w = World::new();
    let a = who("t.example/a");
    let g = w.issue(&a, "task-1", &[intent("read", "d1"), intent("write", "d1")], 3600).unwrap();
    let h = header(&g.grant.token);
    assert_eq!(h["typ"], "txntoken+jwt");
    assert_eq!(h["alg"], "EdDSA");
    assert_eq!(g.claims.sub, a.spiffe_id);
    assert_eq!(g.claims.txn, "task-1");
    assert_eq!(g.claims.cnf.x5t_s256.as_ref(), Some(&a.thumbprint));
    assert_eq!(g.claims.cnf.bearer_s256, None);
    assert_eq!(g.claims.iss, "writ");
    assert!(g.claims.act.is_none());
    // The `read` policy's @ttl (600) is the least of the caps.
    assert_eq!(g.grant.expires_at, NOW + 600);
    let d = w.present(&g.grant.token, &a, &intent("read", "d1"), NOW + 10).unwrap();
    assert!(d.allow, "{d:?}");
    assert_eq!(d.reasons, vec!["read"]);
    assert!(d.max_ttl_secs <= 590);
    // Cached: the second presentation gives the same answer.
    assert_eq!(w.present(&g.grant.token, &a, &intent("read", "d1"), NOW + 10).unwrap(), d);
    assert_eq!(w.engine.cached_credentials(), 1);
}

#[test]
fn es256_issuer_keys_work_too() {
    let mut w = World::with(RustCrypto::with_p256_scalar([9; 32]).unwrap());
    let a = who("t.example/a");
    let g = w.issue(&a, "t", &[intent("read", "d1")], 60).unwrap();
    assert_eq!(header(&g.grant.token)["alg"], "ES256");
    assert!(w.present(&g.grant.token, &a, &intent("read", "d1"), NOW + 1).unwrap().allow);
}

#[test]
fn lifetime_is_the_least_of_every_cap() {
    let mut w = World::new();
    let a = who("t.example/a");
    assert_eq!(w.issue(&a, "t", &[intent("read", "d")], 30).unwrap().grant.expires_at, NOW + 30, "requested");
    // `write` has no @ttl: the configured cap applies.
    w.engine.set_ttl_cap(120);
    assert_eq!(w.issue(&a, "t", &[intent("write", "d")], 3600).unwrap().grant.expires_at, NOW + 120, "cap");
    let short = Identity { expires_at: NOW + 45, ..a.clone() };
    assert_eq!(w.issue(&short, "t", &[intent("write", "d")], 3600).unwrap().grant.expires_at, NOW + 45, "identity");
    let gone = Identity { expires_at: NOW, ..a };
    assert!(matches!(w.issue(&gone, "t", &[intent("write", "d")], 60), Err(Error::Expired(_))));
}

#[test]
fn issue_refuses_intents_policy_denies_and_names_them() {
    let mut w = World::new();
    let b = who("t.example/b");
    let Err(Error::Denied(d)) = w.issue(&b, "t", &[intent("read", "d"), intent("write", "d")], 60) else {
        panic!("b may not write")
    };
    assert!(!d.allow);
    assert_eq!(d.errors.len(), 1);
    assert!(d.errors[0].contains("`write Doc::\"d\"`"), "{:?}", d.errors);
    for bad in [&[][..], &[intent("", "d")][..]] {
        assert!(matches!(w.issue(&b, "t", bad, 60), Err(Error::Malformed(_))));
    }
    assert!(matches!(w.issue(&b, "", &[intent("read", "d")], 60), Err(Error::Malformed(_))));
    assert!(matches!(w.issue(&b, "t", &[intent("read", "d")], 0), Err(Error::Malformed(_))));
    let many: Vec<Intent> = (0..65).map(|i| intent("read", &format!("d{i}"))).collect();
    assert!(matches!(w.issue(&b, "t", &many, 60), Err(Error::Limit(_))));
}

#[test]
fn a_token_is_useless_to_anyone_but_its_holder() {
    let mut w = World::new();
    let (a, b) = (who("t.example/a"), who("t.example/b"));
    let g = w.issue(&a, "t", &[intent("read", "d")], 60).unwrap();
    // b stole the token: b's key is not the one `cnf` binds.
    assert!(matches!(w.present(&g.grant.token, &b, &intent("read", "d"), NOW + 1), Err(Error::Untrusted(_))));
    // Same SPIFFE ID, another key (a re-issued SVID the token was not bound to).
    let other_key = Identity { thumbprint: "other".into(), ..a.clone() };
    assert!(matches!(w.present(&g.grant.token, &other_key, &intent("read", "d"), NOW + 1), Err(Error::Untrusted(_))));
}

#[test]
fn a_bearer_token_holder_is_bound_as_one_and_never_passes_for_a_key_holder() {
    let mut w = World::new();
    let bearer = Identity { proof: Proof::Oidc, thumbprint: "token-digest".into(), ..who("t.example/a") };
    let g = w.issue(&bearer, "t", &[intent("read", "d")], 60).unwrap();
    // The claims say what was proven: possession of a bearer token, not of a key.
    assert_eq!((g.claims.cnf.x5t_s256.as_deref(), g.claims.cnf.bearer_s256.as_deref()), (None, Some("token-digest")));
    let c: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(g.grant.token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(c["cnf"], serde_json::json!({ "bearer#S256": "token-digest" }));
    assert!(w.present(&g.grant.token, &bearer, &intent("read", "d"), NOW + 1).unwrap().allow);
    // A JWT-SVID with the same digest is the same bearer proof; a certificate with a thumbprint
    // equal to the token's digest is not (the kind of proof is bound, not just the bytes).
    let jwt = Identity { proof: Proof::JwtSvid, ..bearer.clone() };
    assert!(w.present(&g.grant.token, &jwt, &intent("read", "d"), NOW + 1).unwrap().allow);
    let cert = Identity { proof: Proof::X509Svid, ..bearer.clone() };
    assert!(matches!(w.present(&g.grant.token, &cert, &intent("read", "d"), NOW + 1), Err(Error::Untrusted(_))));
    // And the other way round: a certificate's credential is not a bearer token's.
    let a = who("t.example/a");
    let g = w.issue(&a, "t", &[intent("read", "d")], 60).unwrap();
    let as_bearer = Identity { proof: Proof::Oidc, ..a.clone() };
    assert!(matches!(w.present(&g.grant.token, &as_bearer, &intent("read", "d"), NOW + 1), Err(Error::Untrusted(_))));
    // A `cnf` with both members, or neither, is refused whoever presents it.
    for cnf in [serde_json::json!({ "x5t#S256": a.thumbprint, "bearer#S256": a.thumbprint }), serde_json::json!({})] {
        let t = resigned(&w, &g.grant.token, |_, c| c["cnf"] = cnf.clone());
        let e = w.present(&t, &a, &intent("read", "d"), NOW + 1).unwrap_err();
        assert!(e.message().contains("exactly one"), "{e}");
    }
}

#[test]
fn a_credential_for_one_calls_input_allows_those_bytes_only() {
    let mut w = World::new();
    let a = who("t.example/a");
    let call = |input: &str| Intent { input: input.into(), ..intent("read", "d") };
    let g = w.issue(&a, "t", &[call(r#"{"to":"acme","amount":50,"memo":{"b":[1,2],"a":"x"}}"#)], 60).unwrap();
    // The canonical form: keys sorted at every level, no whitespace.
    let canonical = r#"{"amount":50,"memo":{"a":"x","b":[1,2]},"to":"acme"}"#;
    let expected = {
        use sha2::Digest as _;
        URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
    };
    assert_eq!(g.claims.scope[0].input_s256.as_deref(), Some(expected.as_str()));
    assert_eq!(writ_core::credential::input_digest(canonical).unwrap(), Some(expected.clone()));
    // The same arguments in any order and spacing are the same call; any other is not.
    let same = call(r#"{ "memo": {"a": "x", "b": [1, 2]}, "amount": 50, "to": "acme" }"#);
    assert!(w.present(&g.grant.token, &a, &same, NOW + 1).unwrap().allow);
    for other in [r#"{"to":"acme","amount":5000,"memo":{"b":[1,2],"a":"x"}}"#, "", "{}", "not json"] {
        let d = w.present(&g.grant.token, &a, &call(other), NOW + 1).unwrap();
        assert_eq!((d.allow, d.reasons.as_slice()), (false, [OUTSIDE_SCOPE.to_string()].as_slice()), "{other}");
    }
    // A credential issued without an input allows any (as before).
    let any = w.issue(&a, "t", &[intent("read", "d")], 60).unwrap();
    assert_eq!(any.claims.scope[0].input_s256, None);
    assert!(w.present(&any.grant.token, &a, &call(r#"{"x":1}"#), NOW + 1).unwrap().allow);
}

#[test]
fn bad_tokens_are_typed_errors() {
    let mut w = World::new();
    let a = who("t.example/a");
    let g = w.issue(&a, "t", &[intent("read", "d")], 60).unwrap();
    let r = intent("read", "d");
    type Case = (&'static str, String, fn(&Error) -> bool);
    let mut cases: Vec<Case> = vec![
        ("expired", g.grant.token.clone(), |e| matches!(e, Error::Expired(_))),
        ("empty", String::new(), |e| matches!(e, Error::Malformed(_))),
        ("two parts", g.grant.token.rsplit_once('.').unwrap().0.to_string(), |e| matches!(e, Error::Malformed(_))),
        ("truncated", g.grant.token[..g.grant.token.len() - 5].to_string(), |e| {
            matches!(e, Error::Malformed(_) | Error::Untrusted(_))
        }),
        ("oversize", "a".repeat(20_000), |e| matches!(e, Error::Limit(_))),
    ];
    cases.push(("alg none", resigned(&w, &g.grant.token, |h, _| h["alg"] = "none".into()), |e| {
        matches!(e, Error::Untrusted(_))
    }));
    cases.push(("alg HS256", resigned(&w, &g.grant.token, |h, _| h["alg"] = "HS256".into()), |e| {
        matches!(e, Error::Untrusted(_))
    }));
    cases.push(("alg confusion", resigned(&w, &g.grant.token, |h, _| h["alg"] = "ES256".into()), |e| {
        matches!(e, Error::Untrusted(_))
    }));
    cases.push(("typ JWT", resigned(&w, &g.grant.token, |h, _| h["typ"] = "JWT".into()), |e| {
        matches!(e, Error::Untrusted(_))
    }));
    cases.push(("unknown kid", resigned(&w, &g.grant.token, |h, _| h["kid"] = "nope".into()), |e| {
        matches!(e, Error::Untrusted(_))
    }));
    cases.push(("extra header", resigned(&w, &g.grant.token, |h, _| h["jku"] = "https://evil".into()), |e| {
        matches!(e, Error::Malformed(_))
    }));
    cases.push(("other issuer", resigned(&w, &g.grant.token, |_, c| c["iss"] = "evil".into()), |e| {
        matches!(e, Error::Untrusted(_))
    }));
    cases.push(("issued later", resigned(&w, &g.grant.token, |_, c| c["iat"] = (NOW + 50).into()), |e| {
        matches!(e, Error::NotYetValid(_))
    }));
    cases.push(("extra claim", resigned(&w, &g.grant.token, |_, c| c["admin"] = true.into()), |e| {
        matches!(e, Error::Malformed(_))
    }));
    cases.push((
        "deep act",
        resigned(&w, &g.grant.token, |_, c| {
            let mut act = serde_json::json!({"sub": "spiffe://t.example/a"});
            for _ in 0..20 {
                act = serde_json::json!({"sub": "spiffe://t.example/a", "act": act});
            }
            c["act"] = act;
        }),
        |e| matches!(e, Error::Limit(_)),
    ));
    // Byte-tampered: the claims changed, the signature not.
    let mut parts: Vec<String> = g.grant.token.split('.').map(String::from).collect();
    let mut claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["exp"] = (NOW + 86_000).into();
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    cases.push(("tampered claims", parts.join("."), |e| matches!(e, Error::Untrusted(_))));
    for (name, token, ok) in cases {
        let at = if name == "expired" { NOW + 60 } else { NOW + 1 };
        let e = w.present(&token, &a, &r, at).expect_err(name);
        assert!(ok(&e), "{name}: {e:?}");
    }
    // Wrong audience.
    let e = w.engine.present(&g.grant.token, &a, &r, "other-api", NOW + 1, &w.crypto, &w.ledger).unwrap_err();
    assert!(matches!(e, Error::Untrusted(m) if m.contains("audience")));
}

#[test]
fn scope_and_task_bound_what_a_token_allows() {
    let mut w = World::new();
    let a = who("t.example/a");
    let g = w.issue(&a, "t1", &[intent("read", "d1")], 60).unwrap();
    let d = w.present(&g.grant.token, &a, &intent("read", "d2"), NOW + 1).unwrap();
    assert_eq!((d.allow, d.reasons.clone()), (false, vec![OUTSIDE_SCOPE.to_string()]));
    // `write` on d1 is allowed to a by policy, but not in this token.
    assert!(!w.present(&g.grant.token, &a, &intent("write", "d1"), NOW + 1).unwrap().allow);
    let other_task = Intent { task_id: "t2".into(), ..intent("read", "d1") };
    let d = w.present(&g.grant.token, &a, &other_task, NOW + 1).unwrap();
    assert_eq!((d.allow, d.reasons), (false, vec![OTHER_TASK.to_string()]));
    // Policy is evaluated again at use: a new policy set that forbids reading now wins.
    w.engine
        .set_policies(
            &format!("{POLICIES}\n@id(\"freeze\") forbid(principal, action, resource);"),
            None,
            Some(ENTITIES),
        )
        .unwrap();
    let d = w.present(&g.grant.token, &a, &intent("read", "d1"), NOW + 1).unwrap();
    assert_eq!((d.allow, d.reasons), (false, vec!["freeze".to_string()]));
}

#[test]
fn delegation_attenuates_and_chains_actors() {
    let mut w = World::new();
    let (a, b, c) = (who("t.example/a"), who("t.example/b"), who("t.example/c"));
    let parent = w.issue(&a, "t", &[intent("read", "d1"), intent("read", "d2")], 600).unwrap();
    let child = w.delegate(&parent.grant.token, &a, &b, &[intent("read", "d1")], 3600, NOW + 100).unwrap();
    // Least of: parent's remaining life (500), the delegate policy's @ttl (300), read's (600).
    assert_eq!(child.grant.expires_at, NOW + 100 + 300);
    assert_eq!(child.claims.sub, a.spiffe_id);
    assert_eq!(child.claims.act.as_ref().unwrap().sub, b.spiffe_id);
    assert_eq!(child.claims.chain(), vec![b.spiffe_id.clone(), a.spiffe_id.clone()]);
    assert_eq!(child.claims.cnf.x5t_s256.as_ref(), Some(&b.thumbprint));
    assert!(w.present(&child.grant.token, &b, &intent("read", "d1"), NOW + 101).unwrap().allow);
    assert!(!w.present(&child.grant.token, &b, &intent("read", "d2"), NOW + 101).unwrap().allow, "attenuated");
    assert!(
        matches!(w.present(&child.grant.token, &a, &intent("read", "d1"), NOW + 101), Err(Error::Untrusted(_))),
        "bound to b"
    );
    // b → c: two hops, the configured limit.
    let grand = w.delegate(&child.grant.token, &b, &c, &[intent("read", "d1")], 60, NOW + 110).unwrap();
    assert_eq!(grand.claims.chain(), vec![c.spiffe_id.clone(), b.spiffe_id.clone(), a.spiffe_id.clone()]);
    assert_eq!(grand.claims.depth(), 2);
    // A third hop is over the limit.
    let e = w.delegate(&grand.grant.token, &c, &a, &[intent("read", "d1")], 60, NOW + 120).unwrap_err();
    assert!(matches!(e, Error::Limit(_)), "{e:?}");
    // Widening is refused.
    let e = w.delegate(&child.grant.token, &b, &c, &[intent("read", "d2")], 60, NOW + 120).unwrap_err();
    assert!(matches!(&e, Error::Denied(d) if d.reasons == vec![OUTSIDE_SCOPE.to_string()]), "{e:?}");
    // Only the holder delegates.
    assert!(matches!(
        w.delegate(&child.grant.token, &a, &c, &[intent("read", "d1")], 60, NOW + 120),
        Err(Error::Untrusted(_))
    ));
    // The delegation itself must be allowed: not across trust domains.
    let x = who("u.example/x");
    let e = w.delegate(&parent.grant.token, &a, &x, &[intent("read", "d1")], 60, NOW + 120).unwrap_err();
    assert!(matches!(e, Error::Denied(_)), "{e:?}");
}

#[test]
fn end_task_and_cut_off_revoke_everything_they_cover() {
    let mut w = World::new();
    let (a, b, c) = (who("t.example/a"), who("t.example/b"), who("t.example/c"));
    let t1 = w.issue(&a, "t1", &[intent("read", "d")], 600).unwrap();
    let t1b = w.delegate(&t1.grant.token, &a, &b, &[intent("read", "d")], 600, NOW + 1).unwrap();
    let t2 = w.issue(&c, "t2", &[intent("read", "d")], 600).unwrap();
    use writ_core::Ledger as _;
    assert_eq!(w.ledger.end_task("t1", NOW + 2), 2);
    for (token, by) in [(&t1.grant.token, &a), (&t1b.grant.token, &b)] {
        assert!(matches!(w.present(token, by, &intent("read", "d"), NOW + 3), Err(Error::Revoked(_))));
    }
    assert!(w.present(&t2.grant.token, &c, &intent("read", "d"), NOW + 3).unwrap().allow, "other tasks live on");
    assert!(
        matches!(w.issue(&a, "t1", &[intent("read", "d")], 60), Err(Error::Revoked(_))),
        "an ended task gets nothing new"
    );

    // Cut-off: everything held by or delegated from c.
    let t3 = w.issue(&a, "t3", &[intent("read", "d")], 600).unwrap();
    let t3c = w.delegate(&t3.grant.token, &a, &c, &[intent("read", "d")], 600, NOW + 4).unwrap();
    assert_eq!(w.ledger.cut_off(&c.spiffe_id, NOW + 5), 2, "t2 (held by c) and t3c (delegated to c)");
    assert!(matches!(w.present(&t3c.grant.token, &c, &intent("read", "d"), NOW + 6), Err(Error::Revoked(_))));
    assert!(w.present(&t3.grant.token, &a, &intent("read", "d"), NOW + 6).unwrap().allow, "a's own grant stands");
    assert!(matches!(w.delegate(&t3.grant.token, &a, &c, &[intent("read", "d")], 60, NOW + 6), Err(Error::Revoked(_))));
    assert!(matches!(w.issue(&c, "t9", &[intent("read", "d")], 60), Err(Error::Revoked(_))));
}

fn docs() -> impl Strategy<Value = Vec<Intent>> {
    proptest::collection::vec((0u8..2, 0u8..6), 1..6).prop_map(|v| {
        v.into_iter().map(|(a, d)| intent(if a == 0 { "read" } else { "write" }, &format!("d{d}"))).collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Delegation never widens the scope and never outlives its parent; no token outlives
    /// the caps it was issued under.
    #[test]
    fn delegation_never_widens_or_outlives(
        scope in docs(),
        sub in docs(),
        ttl in 1u32..5000,
        child_ttl in 1u32..5000,
        later in 0u64..700,
        cap in 1u32..4000,
    ) {
        let mut w = World::new();
        w.engine.set_ttl_cap(cap);
        let (a, b) = (who("t.example/a"), who("t.example/b"));
        let parent = w.issue(&a, "t", &scope, ttl).unwrap();
        prop_assert!(parent.grant.expires_at - NOW <= u64::from(ttl.min(cap)));
        let reads: Vec<Intent> = sub.iter().filter(|i| i.action == "read").cloned().collect();
        prop_assume!(!reads.is_empty());
        match w.delegate(&parent.grant.token, &a, &b, &reads, child_ttl, NOW + later) {
            Ok(child) => {
                prop_assert!(child.claims.scope.iter().all(|s| parent.claims.scope.contains(s)));
                prop_assert!(child.grant.expires_at <= parent.grant.expires_at);
                prop_assert!(child.grant.expires_at - (NOW + later) <= u64::from(child_ttl.min(cap).min(300)));
            }
            Err(Error::Denied(_)) => prop_assert!(reads.iter().any(|r| !scope.contains(r))),
            Err(Error::Expired(_)) => prop_assert!(NOW + later >= parent.grant.expires_at),
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }

    /// Any change to a token's bytes makes it fail, presented by anyone; a token for one
    /// task never authorizes another's intent; nobody but the holder gets an answer.
    #[test]
    fn tampered_other_task_or_other_holder_never_verify(pos in any::<prop::sample::Index>(), byte in any::<u8>(), task in "[a-z]{1,4}") {
        let mut w = World::new();
        let (a, b) = (who("t.example/a"), who("t.example/b"));
        let g = w.issue(&a, "t", &[intent("read", "d")], 60).unwrap();
        // The original is verified and cached first: a tampered copy must not match it.
        prop_assert!(w.present(&g.grant.token, &a, &intent("read", "d"), NOW + 1).unwrap().allow);
        let mut bytes = g.grant.token.clone().into_bytes();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        if let Ok(t) = String::from_utf8(bytes) {
            prop_assert!(w.present(&t, &a, &intent("read", "d"), NOW + 1).is_err());
        }
        prop_assert!(w.present(&g.grant.token, &b, &intent("read", "d"), NOW + 1).is_err());
        let other = Intent { task_id: task.clone(), ..intent("read", "d") };
        let d = w.present(&g.grant.token, &a, &other, NOW + 1).unwrap();
        prop_assert_eq!(d.allow, task == "t");
        // Revoked and expired never verify either.
        prop_assert!(matches!(w.present(&g.grant.token, &a, &intent("read", "d"), NOW + 60), Err(Error::Expired(_))));
        use writ_core::Ledger as _;
        w.ledger.end_task("t", NOW + 2);
        prop_assert!(matches!(w.present(&g.grant.token, &a, &intent("read", "d"), NOW + 3), Err(Error::Revoked(_))));
    }
}

/// One step of a revocation story.
#[derive(Debug, Clone)]
enum Step {
    Issue { agent: usize, task: usize },
    Delegate { credential: usize, to: usize },
    EndTask(usize),
    CutOff(usize),
    Restore(usize),
    Wait(u64),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        4 => (0usize..3, 0usize..3).prop_map(|(agent, task)| Step::Issue { agent, task }),
        2 => (0usize..8, 0usize..3).prop_map(|(credential, to)| Step::Delegate { credential, to }),
        1 => (0usize..3).prop_map(Step::EndTask),
        1 => (0usize..3).prop_map(Step::CutOff),
        1 => (0usize..3).prop_map(Step::Restore),
        2 => (0u64..120).prop_map(Step::Wait),
    ];
    proptest::collection::vec(step, 1..40)
}

/// A credential the story made: who holds it, its task, its chain, when it was issued.
struct Held {
    token: String,
    holder: usize,
    task: usize,
    chain: Vec<usize>,
    issued_at: u64,
    expires_at: u64,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// No sequence of issue, delegate, end-task, cut-off, restore and time lets a credential
    /// outlive its task or a cut-off of any agent of its chain made after it was issued (a
    /// restore lifts the cut-off for what comes after, never for what came before); a cut-off
    /// agent gets nothing new and every decision about it is a `writ:cut-off` deny.
    #[test]
    fn nothing_outlives_its_task_or_its_agents_cut_off(story in steps()) {
        use writ_core::Ledger as _;
        let mut w = World::new();
        let agents = [who("t.example/a"), who("t.example/b"), who("t.example/c")];
        let read = intent("read", "d");
        let mut now = NOW;
        let mut held: Vec<Held> = Vec::new();
        let mut ended = [false; 3];
        // Per agent: the times of its cut-offs, and whether the last one is in force.
        let mut cuts: [Vec<u64>; 3] = Default::default();
        let mut in_force = [false; 3];
        for step in story {
            match step {
                Step::Issue { agent, task } => {
                    let r = w.issue_at(&agents[agent], &format!("t{task}"), std::slice::from_ref(&read), 600, now);
                    // Restored in the second of its cut-off: nothing new until the next second.
                    let cut_this_second = cuts[agent].last() == Some(&now);
                    match r {
                        Ok(g) => {
                            prop_assert!(!in_force[agent] && !ended[task] && !cut_this_second, "issued to a cut-off agent or an ended task");
                            held.push(Held { token: g.grant.token, holder: agent, task, chain: vec![agent], issued_at: now, expires_at: g.grant.expires_at });
                        }
                        Err(Error::Revoked(_)) => prop_assert!(in_force[agent] || ended[task] || cut_this_second),
                        Err(e) => prop_assert!(false, "unexpected {e:?}"),
                    }
                }
                Step::Delegate { credential, to } => {
                    let Some(parent) = held.get(credential) else { continue };
                    let (token, holder, task, chain) = (parent.token.clone(), parent.holder, parent.task, parent.chain.clone());
                    if let Ok(g) = w.delegate(&token, &agents[holder], &agents[to], std::slice::from_ref(&read), 300, now) {
                        prop_assert!(!in_force[to] && chain.iter().all(|a| !in_force[*a]) && !ended[task]);
                        prop_assert!(cuts[to].last() != Some(&now), "delegated in the second of a cut-off");
                        let mut chain = chain;
                        chain.push(to);
                        held.push(Held { token: g.grant.token, holder: to, task, chain, issued_at: now, expires_at: g.grant.expires_at });
                    }
                }
                Step::EndTask(task) => {
                    w.ledger.end_task(&format!("t{task}"), now);
                    ended[task] = true;
                }
                Step::CutOff(agent) => {
                    w.ledger.cut_off(&agents[agent].spiffe_id, now);
                    // Cut off again while in force: the first time stands.
                    if !in_force[agent] {
                        cuts[agent].push(now);
                    }
                    in_force[agent] = true;
                }
                Step::Restore(agent) => {
                    prop_assert_eq!(w.ledger.restore(&agents[agent].spiffe_id, now), in_force[agent]);
                    in_force[agent] = false;
                }
                Step::Wait(secs) => now += secs,
            }
            for (i, a) in agents.iter().enumerate() {
                let denial = writ_core::ledger::cut_off_denial(&w.ledger, &a.spiffe_id, now);
                prop_assert_eq!(denial.is_some(), in_force[i]);
            }
            for h in &held {
                let cut_after = h.chain.iter().any(|a| cuts[*a].iter().any(|&at| at >= h.issued_at));
                let r = w.present(&h.token, &agents[h.holder], &Intent { task_id: format!("t{}", h.task), ..read.clone() }, now);
                if now >= h.expires_at {
                    prop_assert!(matches!(r, Err(Error::Expired(_))), "{:?}", r);
                } else if ended[h.task] || cut_after {
                    prop_assert!(matches!(r, Err(Error::Revoked(_))), "outlived: {:?}", r);
                } else {
                    prop_assert!(r.as_ref().is_ok_and(|d| d.allow), "{:?}", r);
                }
            }
        }
    }
}

#[test]
fn credentials_only_inside_an_open_task_to_its_members_and_never_past_its_deadline() {
    use writ_core::Ledger as _;
    let mut w = World::new();
    let (a, b, c) = (who("t.example/a"), who("t.example/b"), who("t.example/c"));
    let read = || vec![intent("read", "d")];
    fn env(w: &World, now: u64) -> Env<'_> {
        Env { now, crypto: &w.crypto, ledger: &w.ledger, entropy: [1; 16] }
    }
    // A task id nobody opened: no credential, whatever the caller says.
    let Err(Error::Denied(d)) = w.issue(&a, "invented", &read(), 60) else { panic!("issued for an invented task") };
    assert_eq!(d.reasons, ["writ:task-not-open"]);
    // Opened by a principal policy allows, for a and b only, until NOW + 100.
    let task = w
        .engine
        .open_task(&a, "run-1", &[a.spiffe_id.clone(), b.spiffe_id.clone()], "payroll run", NOW + 100, &env(&w, NOW))
        .unwrap();
    assert_eq!((task.opener.as_str(), task.members.len(), task.deadline), (a.spiffe_id.as_str(), 2, NOW + 100));
    // Not by another, not twice, not with a bad shape.
    assert!(matches!(
        w.engine.open_task(&b, "run-2", std::slice::from_ref(&b.spiffe_id), "", NOW + 100, &env(&w, NOW)),
        Err(Error::Denied(_))
    ));
    assert!(
        matches!(w.engine.open_task(&a, "run-1", std::slice::from_ref(&a.spiffe_id), "", NOW + 100, &env(&w, NOW)), Err(Error::Malformed(m)) if m.contains("already opened"))
    );
    for (members, deadline) in [
        (vec![], NOW + 10),
        (vec!["not-spiffe".to_string()], NOW + 10),
        (vec![a.spiffe_id.clone()], NOW),
        (vec![a.spiffe_id.clone()], NOW + 30 * 86_400),
    ] {
        assert!(
            w.engine.open_task(&a, "run-x", &members, "", deadline, &env(&w, NOW)).is_err(),
            "{members:?} {deadline}"
        );
    }
    // Members get credentials, capped at the deadline; a non-member gets none.
    let g = w.issue(&a, "run-1", &read(), 3600).unwrap();
    assert_eq!(g.grant.expires_at, NOW + 100, "the deadline caps the life");
    let Err(Error::Denied(d)) = w.issue(&c, "run-1", &read(), 60) else { panic!("issued to a non-member") };
    assert_eq!(d.reasons, ["writ:not-a-member"]);
    // Delegation too: to a member only.
    assert!(w.delegate(&g.grant.token, &a, &b, &read(), 60, NOW + 1).is_ok());
    let Err(Error::Denied(d)) = w.delegate(&g.grant.token, &a, &c, &read(), 60, NOW + 1) else {
        panic!("delegated to a non-member")
    };
    assert_eq!(d.reasons, ["writ:not-a-member"]);
    // Past the deadline: nothing new, and what was issued has expired.
    assert!(matches!(w.issue_at(&a, "run-1", &read(), 60, NOW + 100), Err(Error::Expired(_))));
    assert!(matches!(w.present(&g.grant.token, &a, &intent("read", "d"), NOW + 100), Err(Error::Expired(_))));
    // Ended: refused, and the record says when.
    w.engine.open_task(&a, "run-3", std::slice::from_ref(&a.spiffe_id), "", NOW + 500, &env(&w, NOW)).unwrap();
    w.ledger.end_task("run-3", NOW + 5);
    assert!(matches!(w.issue_at(&a, "run-3", &read(), 60, NOW + 6), Err(Error::Revoked(_))));
    assert_eq!(w.ledger.task("run-3", NOW + 6).unwrap().ended_at, Some(NOW + 5));
    assert!(w.ledger.task("never", NOW).is_none());
}

#[test]
fn an_opener_holds_a_bounded_number_of_tasks_on_record() {
    use writ_core::Ledger as _;
    let w = World::new();
    let a = who("t.example/a");
    let env = Env { now: NOW, crypto: &w.crypto, ledger: &w.ledger, entropy: [1; 16] };
    for i in 0..writ_core::ledger::MAX_TASKS_PER_OPENER {
        w.engine.open_task(&a, &format!("q{i}"), std::slice::from_ref(&a.spiffe_id), "", NOW + 60, &env).unwrap();
    }
    let over = w.engine.open_task(&a, "one-more", std::slice::from_ref(&a.spiffe_id), "", NOW + 60, &env);
    assert!(matches!(&over, Err(Error::Limit(m)) if m.contains("on record")), "{over:?}");
    // Ending one does not free a place (cycling open and end would flood the revocations);
    // tasks are forgotten a lifetime cap past their deadline, and then count no more.
    w.ledger.end_task("q0", NOW + 1);
    assert!(w.engine.open_task(&a, "one-more", std::slice::from_ref(&a.spiffe_id), "", NOW + 60, &env).is_err());
    let forgotten = NOW + 61 + u64::from(writ_core::ledger::MAX_TTL_SECS);
    let later = Env { now: forgotten, ..env };
    let fresh = Identity { expires_at: forgotten + 3600, ..a.clone() };
    assert!(
        w.engine.open_task(&fresh, "after", std::slice::from_ref(&a.spiffe_id), "", forgotten + 60, &later).is_ok()
    );
}

#[test]
fn an_asserted_identity_is_decided_about_but_never_holds_or_opens_anything() {
    let mut w = World::new();
    let a = who("t.example/a");
    let asserted = w.engine.assert_identity(&a.spiffe_id, NOW + 7200, NOW).unwrap();
    assert_eq!((asserted.proof, asserted.trust_domain.as_str()), (Proof::Asserted, "t.example"));
    assert!(asserted.thumbprint.is_empty(), "nothing binds a credential to it");
    // Decisions take it (the policy decides as for the proven identity).
    let d = w.engine.decide(&asserted, &intent("read", "d1"), NOW, 0, &w.ledger, &w.crypto);
    assert!(d.allow, "{d:?}");
    // Credentials and tasks never do: issue, present, delegate by or to it, open a task.
    let untrusted = |r: Result<(), Error>, what: &str| {
        assert!(matches!(&r, Err(Error::Untrusted(m)) if m.contains("asserted")), "{what}: {r:?}");
    };
    untrusted(w.issue(&asserted, "t", &[intent("read", "d1")], 60).map(drop), "issue");
    let g = w.issue(&a, "t", &[intent("read", "d1")], 60).unwrap();
    // (Presented or delegated by it, its missing key fails the holder check first: untrusted
    // all the same.)
    let presented = w.present(&g.grant.token, &asserted, &intent("read", "d1"), NOW);
    assert!(matches!(&presented, Err(Error::Untrusted(_))), "{presented:?}");
    let by = w.delegate(&g.grant.token, &asserted, &who("t.example/b"), &[intent("read", "d1")], 30, NOW);
    assert!(matches!(&by, Err(Error::Untrusted(_))), "{by:?}");
    untrusted(w.delegate(&g.grant.token, &a, &asserted, &[intent("read", "d1")], 30, NOW).map(drop), "delegate to");
    let env = Env { now: NOW, crypto: &w.crypto, ledger: &w.ledger, entropy: [3; 16] };
    let opened = w.engine.open_task(&asserted, "mine", std::slice::from_ref(&a.spiffe_id), "", NOW + 60, &env);
    untrusted(opened.map(drop), "open-task");
    // What cannot be asserted: a malformed SPIFFE ID, an assertion already over.
    assert!(matches!(w.engine.assert_identity("acme/agent", NOW + 60, NOW), Err(Error::Malformed(_))));
    assert!(matches!(w.engine.assert_identity(&a.spiffe_id, NOW - 1, NOW), Err(Error::Expired(_))));
}

#[test]
fn an_identity_held_past_its_expiry_decides_nothing() {
    let w = World::new();
    let a = who("t.example/a");
    let read = intent("read", "d1");
    assert!(w.engine.decide(&a, &read, a.expires_at, 0, &w.ledger, &w.crypto).allow, "valid through its last second");
    let d = w.engine.decide(&a, &read, a.expires_at + 1, 0, &w.ledger, &w.crypto);
    assert_eq!((d.allow, d.reasons.as_slice()), (false, [writ_types::IDENTITY_EXPIRED.to_string()].as_slice()));
    // A JWT-SVID keeps the leeway it was attested with.
    let mut lenient = Writ::default();
    lenient.set_policies(POLICIES, None, Some(ENTITIES)).unwrap();
    lenient.set_leeway(30);
    let jwt = Identity { proof: Proof::JwtSvid, ..a.clone() };
    assert!(lenient.decide(&jwt, &read, a.expires_at + 30, 0, &w.ledger, &w.crypto).allow);
    assert!(!lenient.decide(&jwt, &read, a.expires_at + 31, 0, &w.ledger, &w.crypto).allow);
    assert!(!lenient.decide(&a, &read, a.expires_at + 1, 0, &w.ledger, &w.crypto).allow, "no leeway for X.509");
}
