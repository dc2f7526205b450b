#![doc = include_str!("../README.md")]

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The one Wasm target both artifacts are built for.
pub const WASM_TARGET: &str = "wasm32-wasip1";

/// The packages the nested build builds, and the artifact (`<name>.wasm`) of each.
const PACKAGES: [(&str, &str); 2] = [("writ-guest", "writ_guest"), ("writ-proxy", "writ_proxy")];

/// Paths (from the workspace root) whose change means the artifacts must be rebuilt, besides
/// the sources listed in their dep-info.
const WATCHED: [&str; 7] =
    ["wit", "guest/Cargo.toml", "proxy/Cargo.toml", "core/Cargo.toml", "types/Cargo.toml", "Cargo.toml", "Cargo.lock"];

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

/// The Writ component (`writ.wasm`, in this build script's `OUT_DIR`), or the prebuilt one
/// `WRIT_COMPONENT` names.
pub fn component() -> PathBuf {
    if let Some(p) = prebuilt("WRIT_COMPONENT") {
        return p;
    }
    let module_path = build_modules().join("writ_guest.wasm");
    let module =
        std::fs::read(&module_path).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", module_path.display())));
    let component = componentize(&module).unwrap_or_else(|e| fail(&format!("making the component: {e}")));
    let out = out_dir().join("writ.wasm");
    std::fs::write(&out, component).unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", out.display())));
    out
}

/// The proxy-wasm filter (a core module), or the prebuilt one `WRIT_FILTER` names.
pub fn proxy_filter() -> PathBuf {
    if let Some(p) = prebuilt("WRIT_FILTER") {
        return p;
    }
    build_modules().join("writ_proxy.wasm")
}

/// The guest's core module as a component: its imports of WASI preview 1 (from std) are
/// served by the adapter; its own world is in the custom section wit-bindgen wrote.
fn componentize(module: &[u8]) -> Result<Vec<u8>, String> {
    let adapter = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    wit_component::ComponentEncoder::default()
        .module(module)
        .and_then(|e| e.adapter("wasi_snapshot_preview1", adapter))
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| format!("{e:#}"))
}

fn prebuilt(var: &str) -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed={var}");
    let p = PathBuf::from(env::var_os(var)?);
    println!("cargo:rerun-if-changed={}", p.display());
    Some(p)
}

fn out_dir() -> PathBuf {
    PathBuf::from(env::var_os("OUT_DIR").unwrap_or_else(|| fail("OUT_DIR is not set: run from a build script")))
}

/// The workspace root: the parent of the package whose build script runs.
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or(manifest_dir)
}

/// `<target>/wasm`: the outer build's target directory (the ancestor of `OUT_DIR` holding
/// cargo's `CACHEDIR.TAG`), so every outer build and profile shares it.
fn wasm_target_dir() -> PathBuf {
    let out = out_dir();
    let target = out.ancestors().skip(1).find(|p| p.join("CACHEDIR.TAG").is_file()).map(Path::to_path_buf);
    target.unwrap_or(out).join("wasm")
}

/// Runs the nested build (a no-op when it is up to date) and returns the directory holding
/// the `.wasm` files.
fn build_modules() -> PathBuf {
    let root = workspace_root();
    for w in WATCHED {
        println!("cargo:rerun-if-changed={}", root.join(w).display());
    }
    ensure_target(WASM_TARGET);

    let target_dir = wasm_target_dir();
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root).args(["build", "--release", "--target", WASM_TARGET]);
    // `--locked` when a lock file exists (a fresh clone has one: it is committed).
    if root.join("Cargo.lock").exists() {
        cmd.arg("--locked");
    }
    for (package, _) in PACKAGES {
        cmd.args(["-p", package]);
    }
    cmd.env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO_BUILD_BUILD_DIR", &target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_MAKEFLAGS")
        .env_remove("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS");
    // CI lints the Wasm-only code (the guest's exports, the filter's proxy-wasm binding) in this
    // same build rather than in another: `WRIT_WASM_CLIPPY` names clippy-driver. Left unset
    // (the default) the build is the plain one every outer build shares.
    println!("cargo:rerun-if-env-changed=WRIT_WASM_CLIPPY");
    if let Some(clippy_driver) = env::var_os("WRIT_WASM_CLIPPY") {
        cmd.env("RUSTC_WORKSPACE_WRAPPER", clippy_driver).env("CLIPPY_ARGS", "-Dwarnings");
    }
    let status = cmd.status().unwrap_or_else(|e| fail(&format!("could not run cargo: {e}")));
    if !status.success() {
        fail(&format!("building the Wasm artifacts for {WASM_TARGET} failed (see the output above)"));
    }

    let release = target_dir.join(WASM_TARGET).join("release");
    for (package, artifact) in PACKAGES {
        // Re-run when any source the artifact was built from changes.
        if let Ok(dep_info) = std::fs::read_to_string(release.join(format!("{artifact}.d"))) {
            let deps = dep_info.split_once(':').map(|(_, deps)| deps).unwrap_or("");
            for dep in deps.split_whitespace().filter(|d| !d.ends_with('\\')) {
                println!("cargo:rerun-if-changed={dep}");
            }
        }
        if !release.join(format!("{artifact}.wasm")).exists() {
            fail(&format!("the `{package}` build produced no {artifact}.wasm in {}", release.display()));
        }
    }
    release
}

/// Adds `target` with rustup when the toolchain running this build lacks it.
fn ensure_target(target: &str) {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output();
    let has_target = sysroot
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .is_some_and(|s| Path::new(&s).join("lib/rustlib").join(target).exists());
    if has_target {
        return;
    }
    let rustup_ok = Command::new("rustup").arg("--version").output().is_ok_and(|o| o.status.success());
    if !rustup_ok {
        fail(&format!(
            "the `{target}` target is not installed and rustup is not available; install the target for this toolchain (`rustup target add {target}`)"
        ));
    }
    println!("cargo:warning=the `{target}` target was missing: running `rustup target add {target}`");
    // Add it to the toolchain that runs this build (not a pinned one).
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", target]);
    if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
        cmd.args(["--toolchain", &toolchain]);
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        _ => fail(&format!("`rustup target add {target}` failed; run it by hand, then build again")),
    }
}
