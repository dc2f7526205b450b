//! Builds `writ-filter` (`proxy/`) for `wasm32-wasip1` (see `build-support/wasm.rs`) and hands
//! its path to `include_bytes!`. `WRIT_FILTER=/path/writ-filter.wasm` uses a prebuilt one.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

include!("../build-support/wasm.rs");

fn main() {
    println!("cargo:rerun-if-env-changed=WRIT_FILTER");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir.parent().map(Path::to_path_buf).unwrap_or_default();
    let wasm = match env::var_os("WRIT_FILTER") {
        Some(prebuilt) => {
            let p = PathBuf::from(prebuilt);
            println!("cargo:rerun-if-changed={}", p.display());
            p
        }
        None => build_wasm(&root, &out_dir, "writ-filter", "wasm32-wasip1", "filter-target", "writ_filter", &["proxy/Cargo.toml", "policies"]),
    };
    println!("cargo:rustc-env=WRIT_FILTER_PATH={}", wasm.display());
}
