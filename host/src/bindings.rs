//! The `bindgen!` output for the `policy-module` world. Private: the public API is in `lib.rs`.

wasmtime::component::bindgen!({
    world: "policy-module",
    path: "../wit",
    // A state store that fails (a write not made durable, a read that cannot be answered)
    // aborts the call: the instance is discarded and the caller gets `unavailable`.
    imports: {
        "writ:agent/ledger.append": trappable,
        "writ:agent/ledger.since": trappable,
        "writ:agent/ledger.register": trappable,
        "writ:agent/ledger.find": trappable,
    },
});
