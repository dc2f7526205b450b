//! Writ inside the proxy: the same rules as the component (`writ-core`, no copy of them) as a
//! proxy-wasm HTTP filter. Build it with `proxy/build.sh` (→ `writ-proxy.wasm`, for
//! `wasm32-wasip1`); Envoy loads it with the configuration in `examples/envoy/`.
//!
//! - [`config`]: the plugin configuration (JSON) and its closed defaults;
//! - [`filter`]: one request → caller, intent, decision, answer — pure, tested natively;
//!   `caller` (who is calling) and `feed` (the revocation feed) are its parts;
//! - `abi` (Wasm only): the proxy-wasm contexts around it.

mod caller;
pub mod config;
mod feed;
pub mod filter;

#[cfg(target_arch = "wasm32")]
mod abi;

pub use config::FilterConfig;
pub use feed::FeedCall;
pub use filter::{Filter, Outcome, Peer, Request};
