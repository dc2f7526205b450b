#![doc = include_str!("../README.md")]

mod caller;
pub mod config;
mod feed;
pub mod filter;

#[cfg(target_arch = "wasm32")]
mod abi;

pub use config::FilterConfig;
pub use feed::FeedCall;
pub use filter::{Filter, Outcome, Peer, Request};
