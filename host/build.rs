//! Builds `writ-guest` for `wasm32-wasip2` with the cargo that runs this script, the way
//! wasmtime builds its test artifacts, and hands the component's path to `include_bytes!`.
//!
//! - nested cargo into `$OUT_DIR/guest-target`, with `CARGO_TARGET_DIR` *and*
//!   `CARGO_BUILD_BUILD_DIR` set there (else it can wait forever on the outer build's lock),
//!   and the outer build's RUSTFLAGS removed;
//! - re-runs when the guest's dep-info (`.d`) files or `wit/` change;
//! - `WRIT_COMPONENT=/path/writ.wasm` uses a prebuilt component instead;
//! - adds the `wasm32-wasip2` target with rustup when it is missing (fresh machines have none
//!   and `RUSTUP_AUTO_INSTALL=0`), or fails with the command to run.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

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
        None => build_guest(&root, &out_dir),
    };
    println!("cargo:rustc-env=WRIT_COMPONENT_PATH={}", wasm.display());
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

fn ensure_target() {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output();
    let has_target = sysroot
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .map(|s| Path::new(&s).join("lib/rustlib").join(TARGET).exists())
        .unwrap_or(false);
    if has_target {
        return;
    }
    let rustup_ok = Command::new("rustup").arg("--version").output().is_ok_and(|o| o.status.success());
    if !rustup_ok {
        fail(&format!(
            "the `{TARGET}` target is not installed and rustup is not available; install the target for this toolchain (`rustup target add {TARGET}`)"
        ));
    }
    println!("cargo:warning=the `{TARGET}` target was missing: running `rustup target add {TARGET}`");
    // Add it to the toolchain that runs this build (not a pinned one).
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", TARGET]);
    if let Ok(tc) = env::var("RUSTUP_TOOLCHAIN") {
        cmd.args(["--toolchain", &tc]);
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        _ => fail(&format!("`rustup target add {TARGET}` failed; run it by hand, then build again")),
    }
}

fn build_guest(root: &Path, out_dir: &Path) -> PathBuf {
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rerun-if-changed={}", root.join("guest/Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", root.join("core/Cargo.toml").display());
    println!("cargo:rerun-if-changed={}", root.join("Cargo.lock").display());
    ensure_target();

    let target_dir = out_dir.join("guest-target");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--locked", "-p", "writ-guest", "--target", TARGET])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_BUILD_BUILD_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS");
    // `--locked` only when a lock file exists (a fresh clone has one: it is committed).
    if !root.join("Cargo.lock").exists() {
        cmd = strip_locked(cmd);
    }
    let status = cmd.status().unwrap_or_else(|e| fail(&format!("could not run cargo for the guest: {e}")));
    if !status.success() {
        fail("building the `writ-guest` component failed (see the output above)");
    }

    let release = target_dir.join(TARGET).join("release");
    // Re-run when any source the guest was built from changes.
    if let Ok(dep_info) = std::fs::read_to_string(release.join("writ_guest.d")) {
        for dep in dep_info.split_once(':').map(|(_, deps)| deps).unwrap_or("").split_whitespace() {
            if !dep.ends_with('\\') {
                println!("cargo:rerun-if-changed={dep}");
            }
        }
    }
    let wasm = release.join("writ_guest.wasm");
    if !wasm.exists() {
        fail(&format!("the guest build produced no {}", wasm.display()));
    }
    wasm
}

fn strip_locked(cmd: Command) -> Command {
    let mut new = Command::new(cmd.get_program());
    new.args(cmd.get_args().filter(|a| *a != "--locked"));
    if let Some(dir) = cmd.get_current_dir() {
        new.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => new.env(k, v),
            None => new.env_remove(k),
        };
    }
    new
}
