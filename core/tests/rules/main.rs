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
