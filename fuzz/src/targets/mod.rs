//! One module per fuzz target, each with `pub fn run(data: &[u8])`.

pub mod attest_jwt;
pub mod attest_x509;
pub mod authzen_decode;
pub mod context;
pub mod filter_request;
pub mod mcp_schema;
pub mod policy_load;
pub mod present;
