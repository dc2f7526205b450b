//! Credential presentation: any token text, presented by the fixed holder for the fixed
//! intent. A token that verifies must be for that holder, task and intent.

use crate::fixtures::{AUDIENCE, NOW, credential_engine, holder, issuer, read_doc};

/// One input.
pub fn run(data: &[u8]) {
    let token = String::from_utf8_lossy(data);
    let mut engine = credential_engine();
    let ledger = writ_core::MemoryLedger::new();
    if let Ok(p) = engine.present(&token, &holder(), &read_doc(), AUDIENCE, NOW + 1, &issuer(), &ledger)
        && p.decision.allow
    {
        assert_eq!(p.claims.sub, holder().spiffe_id);
        assert_eq!(p.claims.txn, read_doc().task_id);
    }
}
