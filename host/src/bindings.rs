//! The `bindgen!` output for the `policy-module` world. Private: the public API is in `lib.rs`.

wasmtime::component::bindgen!({
    world: "policy-module",
    path: "../wit",
});
