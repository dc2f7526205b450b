//! The simulator's tests, one binary: the event loop on hand-computable scenarios and its
//! invariants (`events`), the `writ-sim` command line (`cli`), scenario and parameter parsing
//! (`parsing`), paired statistics (`paired`; the library's own tests are off, so they live
//! here), closed forms and monotonicity on the same draws (`closed_form`); `shipped` loads the
//! shipped scenarios and compresses their breach clock for a debug build.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli;
mod closed_form;
mod events;
mod paired;
mod parsing;
mod shipped;
