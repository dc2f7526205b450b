//! The simulator's tests, one binary: the event loop on hand-computable scenarios and its
//! invariants (`events`), the `writ-sim` command line (`cli`), scenario and parameter parsing
//! (`parsing`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli;
mod events;
mod parsing;
