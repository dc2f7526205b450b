// Shared by the build scripts that build a workspace crate for a Wasm target (`host/build.rs`:
// the component; `proxy-harness/build.rs`: the proxy-wasm filter), included with `include!`.
// The way wasmtime builds its test artifacts:
// - nested cargo into `$OUT_DIR/<dir>`, with `CARGO_TARGET_DIR` *and* `CARGO_BUILD_BUILD_DIR`
//   set there (else it can wait forever on the outer build's lock), and the outer build's
//   RUSTFLAGS removed;
// - re-runs when the package's dep-info (`.d`) files change;
// - adds the target with rustup when it is missing (fresh machines have none and
//   `RUSTUP_AUTO_INSTALL=0`), or fails with the command to run.

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}

/// The `.wasm` a build script hands to `include_bytes!`: the prebuilt file named by the
/// environment variable `prebuilt` when set, else workspace package `package` built for
/// `target` by [`build_wasm`] (the workspace root is the parent of this package's directory).
fn wasm_artifact(prebuilt: &str, package: &str, target: &str, dir: &str, artifact: &str, watch: &[&str]) -> PathBuf {
    println!("cargo:rerun-if-env-changed={prebuilt}");
    if let Some(p) = env::var_os(prebuilt) {
        let p = PathBuf::from(p);
        println!("cargo:rerun-if-changed={}", p.display());
        return p;
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default());
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir.parent().map(Path::to_path_buf).unwrap_or_default();
    build_wasm(&root, &out_dir, package, target, dir, artifact, watch)
}

/// Adds `target` with rustup when the toolchain running this build lacks it.
fn ensure_target(target: &str) {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc).args(["--print", "sysroot"]).output();
    let has_target = sysroot
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .map(|s| Path::new(&s).join("lib/rustlib").join(target).exists())
        .unwrap_or(false);
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
    if let Ok(tc) = env::var("RUSTUP_TOOLCHAIN") {
        cmd.args(["--toolchain", &tc]);
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        _ => fail(&format!("`rustup target add {target}` failed; run it by hand, then build again")),
    }
}

/// Builds workspace package `package` for `target` (release) with the cargo running this
/// script, into `$OUT_DIR/<dir>`, and returns the path of its `<artifact>.wasm`. Re-runs when
/// `watch` paths or any source the package was built from change.
fn build_wasm(
    root: &Path,
    out_dir: &Path,
    package: &str,
    target: &str,
    dir: &str,
    artifact: &str,
    watch: &[&str],
) -> PathBuf {
    for w in watch.iter().chain(&["core/Cargo.toml", "Cargo.lock"]) {
        println!("cargo:rerun-if-changed={}", root.join(w).display());
    }
    ensure_target(target);

    let target_dir = out_dir.join(dir);
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--locked", "-p", package, "--target", target])
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
    let status = cmd.status().unwrap_or_else(|e| fail(&format!("could not run cargo for `{package}`: {e}")));
    if !status.success() {
        fail(&format!("building `{package}` for {target} failed (see the output above)"));
    }

    let release = target_dir.join(target).join("release");
    // Re-run when any source the package was built from changes.
    if let Ok(dep_info) = std::fs::read_to_string(release.join(format!("{artifact}.d"))) {
        for dep in dep_info.split_once(':').map(|(_, deps)| deps).unwrap_or("").split_whitespace() {
            if !dep.ends_with('\\') {
                println!("cargo:rerun-if-changed={dep}");
            }
        }
    }
    let wasm = release.join(format!("{artifact}.wasm"));
    if !wasm.exists() {
        fail(&format!("the `{package}` build produced no {}", wasm.display()));
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
