//! The built `writ-proxy.wasm` in the proxy-wasm harness, one test binary: requests driven as
//! Envoy drives them (`requests`), revocations from a real decision server (`revocation`), and
//! the ABI's map encoding (`maps`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod maps;
mod requests;
mod revocation;

use std::sync::OnceLock;
use writ_proxy_harness::FilterModule;

/// The filter, compiled once for every test in this binary (as Envoy compiles it once for all
/// its workers): compiling it unoptimized takes seconds.
fn module() -> &'static FilterModule {
    static MODULE: OnceLock<FilterModule> = OnceLock::new();
    MODULE.get_or_init(|| FilterModule::built().unwrap())
}
