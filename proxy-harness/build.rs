//! Builds `writ-filter` (`proxy/`) for `wasm32-wasip1` (see `build-support/wasm.rs`) and hands
//! its path to `include_bytes!`. `WRIT_FILTER=/path/writ-filter.wasm` uses a prebuilt one.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

include!("../build-support/wasm.rs");

fn main() {
    let wasm = wasm_artifact(
        "WRIT_FILTER",
        "writ-filter",
        "wasm32-wasip1",
        "filter-target",
        "writ_filter",
        &["proxy/Cargo.toml", "policies"],
    );
    println!("cargo:rustc-env=WRIT_FILTER_PATH={}", wasm.display());
}
