//! An intent's context JSON under the shipped policy pack (schema-validated).

use crate::fixtures::NOW;
use std::sync::OnceLock;
use writ_types::pack;

fn pack() -> &'static writ_core::Writ {
    static ENGINE: OnceLock<writ_core::Writ> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut e = writ_core::Writ::default();
        // Evaluate every request: the memo would hide the context conversion after a repeat.
        e.set_decision_memo(false);
        let _ = e.set_policies(pack::POLICIES, Some(pack::SCHEMA), Some(pack::ENTITIES));
        e
    })
}

/// One input.
pub fn run(data: &[u8]) {
    let context = String::from_utf8_lossy(data);
    let who = writ_core::Identity {
        spiffe_id: "spiffe://acme.example/agent/payroll".into(),
        trust_domain: "acme.example".into(),
        expires_at: NOW + 3600,
        thumbprint: String::new(),
        proof: writ_core::Proof::X509Svid,
        claims: Default::default(),
    };
    for (action, resource) in
        [("read", r#"PayrollRecord::"run-42/emp-7""#), ("break_glass", r#"Environment::"production""#)]
    {
        let what = writ_core::Intent {
            action: action.into(),
            resource: resource.into(),
            task_id: "run-42".into(),
            context: context.to_string(),
            input: String::new(),
        };
        let d = pack().check(&who, &what, NOW);
        assert_eq!(d, pack().check(&who, &what, NOW), "deterministic");
        if !d.allow {
            assert_eq!(d.max_ttl_secs, 0);
        }
    }
}
