//! Builds `writ-guest` for `wasm32-wasip2` (see `build-support/wasm.rs`) and hands the
//! component's path to `include_bytes!`. `WRIT_COMPONENT=/path/writ.wasm` uses a prebuilt
//! component instead.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

include!("../build-support/wasm.rs");

fn main() {
    println!("cargo:rerun-if-env-changed=WRIT_COMPONENT");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir.parent().map(Path::to_path_buf).unwrap_or_default();

    let wasm = match env::var_os("WRIT_COMPONENT") {
        Some(prebuilt) => {
            let p = PathBuf::from(prebuilt);
            println!("cargo:rerun-if-changed={}", p.display());
            p
        }
        None => build_wasm(&root, &out_dir, "writ-guest", "wasm32-wasip2", "guest-target", "writ_guest", &["wit", "guest/Cargo.toml"]),
    };
    println!("cargo:rustc-env=WRIT_COMPONENT_PATH={}", wasm.display());
}
