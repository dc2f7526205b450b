//! The policy store's per-caller and per-second caches never change a decision: a store that
//! has served any sequence of requests answers each one exactly as a freshly loaded store does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use writ_core::authz::{PolicyStore, RequestEnv};
use writ_core::{Identity, Intent, Proof};

/// One policy per Writ context key and identity attribute, each on its own action.
const POLICIES: &str = r#"
@id("task") permit(principal, action == Action::"a0", resource) when { context.task_id == "t1" };
@id("now") permit(principal, action == Action::"a1", resource) when { context.now >= 1000 };
@id("depth") permit(principal, action == Action::"a2", resource) when { context.delegation_depth < 2 };
@id("exp") permit(principal, action == Action::"a3", resource) when { context.identity_expires_at > 2500 };
@id("proof") permit(principal, action == Action::"a4", resource) when { principal.proof == "x509-svid" };
@id("who") permit(principal == Agent::"spiffe://t.example/a1", action, resource == X::"r1");
@id("agent") permit(principal, action == Action::"a5", resource is Agent) when { resource.path == "/a2" };
"#;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn cached_equals_fresh(
        requests in proptest::collection::vec(
            (0u8..3, any::<bool>(), 0u8..6, 0u8..3, any::<bool>(), 999u64..1002, 0u32..3, any::<bool>(), any::<bool>()),
            1..40,
        ),
    ) {
        let cached = PolicyStore::load(POLICIES, None, None).unwrap();
        for (p, jwt, a, r, task1, now, depth, late_expiry, with_context) in requests {
            let who = Identity {
                spiffe_id: format!("spiffe://t.example/a{p}"),
                trust_domain: "t.example".into(),
                expires_at: if late_expiry { 3_000 } else { 2_000 },
                thumbprint: String::new(),
                proof: if jwt { Proof::JwtSvid } else { Proof::X509Svid },
            };
            let resource = match r {
                0 => r#"X::"r0""#.to_string(),
                1 => r#"X::"r1""#.to_string(),
                _ => r#"Agent::"spiffe://t.example/a2""#.to_string(),
            };
            let what = Intent {
                action: format!("a{a}"),
                resource,
                task_id: if task1 { "t1".into() } else { "t0".into() },
                context: if with_context { r#"{"extra": 1}"#.into() } else { String::new() },
            };
            let env = RequestEnv { now, delegation_depth: depth };
            let fresh = PolicyStore::load(POLICIES, None, None).unwrap().check(&who, &what, &env, 3600);
            prop_assert_eq!(cached.check(&who, &what, &env, 3600), fresh);
        }
    }
}
