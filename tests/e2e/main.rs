//! End-to-end tests: every rule run natively (`writ-core`) and through the component
//! (`writ-host`), demanding the same outcome from both.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Table-driven tests: wide case constructors and tuple tables read best here.
#![allow(clippy::too_many_arguments, clippy::type_complexity)]

mod authz;
mod bundles;
mod credentials;
mod crypto;
mod evaluation;
mod fetched;
mod fuzz;
mod identities;
mod jwt;
mod oidc;
mod props;
mod runtime;
mod state_nats;
mod x509;

use writ_tests::{Attester, Component, Native, Outcome};

/// An intent of `action` on `resource`, in no task, with no context or input.
pub fn intent(action: &str, resource: &str) -> writ_host::Intent {
    writ_host::Intent {
        action: action.into(),
        resource: resource.into(),
        task_id: String::new(),
        context: String::new(),
        input: String::new(),
    }
}

/// Run `f` against both implementations and demand equal outcomes; return them.
pub fn both(f: impl Fn(&mut dyn Attester) -> Outcome) -> Outcome {
    let native = f(&mut Native::default());
    let component = f(&mut Component::new());
    assert_eq!(native, component, "native and component disagree");
    native
}

/// Assert an outcome is an error of `kind` whose message contains `needle`.
#[track_caller]
pub fn assert_err(case: &str, outcome: &Outcome, kind: &str, needle: &str) {
    match outcome {
        Outcome::Err { kind: k, message } => {
            assert_eq!(k, kind, "{case}: wrong kind ({message})");
            assert!(message.contains(needle), "{case}: message `{message}` lacks `{needle}`");
        }
        ok => panic!("{case}: expected a `{kind}` error, got {ok:?}"),
    }
}
