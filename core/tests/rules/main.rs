//! writ-core's rules natively, one test binary: break-glass approvals (`approval`), `@max_calls`
//! budgets (`budgets`), claimed context never helping (`claims`), Cedar contexts built directly against Cedar's
//! own reader (`context`), credentials (`credentials`), general evaluations (`evaluation`), the
//! policy index against full Cedar (`index`), and the decision memo against evaluation (`memo`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod approval;
mod budgets;
mod claims;
mod context;
mod credentials;
mod evaluation;
mod index;
mod memo;

/// An identity attested for `spiffe_id` (its trust domain taken from it), no thumbprint or
/// claims: what the rules' tests decide for.
fn identity(spiffe_id: impl Into<String>, expires_at: u64, proof: writ_core::Proof) -> writ_core::Identity {
    let spiffe_id = spiffe_id.into();
    let rest = spiffe_id.strip_prefix("spiffe://").unwrap_or(&spiffe_id);
    let trust_domain = rest.split('/').next().unwrap_or_default().to_string();
    writ_core::Identity {
        spiffe_id,
        trust_domain,
        expires_at,
        thumbprint: String::new(),
        proof,
        claims: Default::default(),
    }
}
