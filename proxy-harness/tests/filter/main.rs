//! The built `writ-proxy.wasm` in the proxy-wasm harness, one test binary: requests driven as
//! Envoy drives them (`requests`), revocations from a real decision server (`revocation`), and
//! the ABI's map encoding (`maps`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod maps;
mod requests;
mod revocation;
