//! Builds `writ-guest` for `wasm32-wasip2` (see `build-support/wasm.rs`) and hands the
//! component's path to `include_bytes!`. `WRIT_COMPONENT=/path/writ.wasm` uses a prebuilt
//! component instead.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

include!("../build-support/wasm.rs");

fn main() {
    let wasm = wasm_artifact(
        "WRIT_COMPONENT",
        "writ-guest",
        "wasm32-wasip2",
        "guest-target",
        "writ_guest",
        &["wit", "guest/Cargo.toml"],
    );
    println!("cargo:rustc-env=WRIT_COMPONENT_PATH={}", wasm.display());
}
