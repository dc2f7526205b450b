//! An MCP server's tool list — what a hostile upstream shows the gateway — typed into Cedar and
//! merged into Writ's schema (`writ mcp schema`, the gateway's re-check).

/// One input: the tool list's text.
pub fn run(data: &[u8]) {
    let tools = String::from_utf8_lossy(data);
    let Ok(generated) = writ_core::authz::mcp_schema(writ_types::pack::SCHEMA, "fuzz", &tools) else { return };
    // What it made merges again with the same list and changes nothing: the gateway's re-check
    // of an unchanged list adopts nothing and refuses nothing.
    let again = writ_core::authz::mcp_schema(&generated.schema, "fuzz", &tools)
        .unwrap_or_else(|e| panic!("the list does not merge into its own schema: {e}"));
    assert!(again.changed.is_empty(), "{:?}", again.changed);
    // The starter policy loads against it (with the schema validating it).
    if let Err(e) = writ_core::authz::PolicyStore::load(&generated.starter, Some(&generated.schema), None) {
        panic!("the starter does not load against its schema: {e}\n{}", generated.starter);
    }
}
