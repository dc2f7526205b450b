//! The `bindgen!` output for the `policy-module` world. Private: the public API is in `lib.rs`.

wasmtime::component::bindgen!({
    world: "policy-module",
    path: "../wit",
    // Records handed to the component's exports borrow their strings: a `check` lowers the
    // caller's intent as it is instead of cloning five strings first.
    ownership: Borrowing { duplicate_if_necessary: true },
    // A state store that fails (a write not made durable, a read that cannot be answered)
    // aborts the call: the instance is discarded and the caller gets `unavailable`.
    imports: {
        "writ:agent/ledger.append": trappable,
        "writ:agent/ledger.since": trappable,
        "writ:agent/ledger.register": trappable,
        "writ:agent/ledger.find": trappable,
    },
});
