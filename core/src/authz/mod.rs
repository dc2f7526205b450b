//! Intent authorization with Cedar: policy loading (schema-validated, `@id` and `@ttl`
//! annotations), request mapping from an attested identity and an intent, and decisions with
//! reasons. Authorization never fails: a problem is a deny with the problem listed.
//!
//! - [`load`] — loading and bounding a policy set;
//! - [`store`] — the loaded [`PolicyStore`] and its decision path (`check`);
//! - [`index`] — policies sliced by scope, and scope-only policies decided without Cedar;
//! - [`compiled`] — policy conditions compiled past Cedar's interpreter, for the index;
//! - [`view`] — what a compiled condition reads: the request and its context, unconverted;
//! - [`context`] — the Cedar context of a request;
//! - [`direct`] — caller JSON built straight into Cedar values, with its type;
//! - [`caches`] — what a store keeps between requests;
//! - [`mcp_schema`] — Cedar schemas from MCP tools;
//! - [`evaluation`] — general (AuthZEN-shaped) evaluations over the same store.

mod caches;
mod compiled;
mod context;
mod direct;
mod evaluation;
mod index;
mod load;
mod mcp_schema;
mod store;
mod view;

pub use evaluation::task_named;
pub use load::{MAX_CALLS_PER_TASK, max_policy_operators, nesting_depth, parse_max_calls, parse_ttl};
pub use mcp_schema::mcp_schema;
pub use store::{DECIDED_PER_CALL, PolicyStore, RequestEnv};

/// Bytes of policy text, schema or entities accepted in one load.
pub const MAX_POLICY_BYTES: usize = 4 << 20;
/// Bytes of one intent's context JSON.
pub const MAX_CONTEXT_BYTES: usize = 64 << 10;
/// Nesting depth of context JSON, entity JSON and policy expressions. Cedar recurses on
/// nesting and cannot check its stack inside Wasm, so depth is bounded before Cedar sees it.
pub const MAX_NESTING: usize = 32;

/// Operators in one policy. A chain like `a && b && c …` is as deep as it is long, and Cedar
/// evaluates it recursively: inside Wasm, where Cedar cannot check its stack, the stack runs out
/// at ~400 levels (measured), so a policy's operator count is bounded at load with 2× margin.
/// Natively Cedar checks its stack and answers "recursion limit reached" instead; how deep it
/// gets depends on the caller's thread stack (debug builds use far more per level).
pub const MAX_POLICY_OPERATORS: usize = 192;

/// The entity type of attested principals.
pub const AGENT_TYPE: &str = "Agent";
