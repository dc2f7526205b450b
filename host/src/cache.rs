//! The precompiled-component cache on disk: `Component::serialize` output keyed by the
//! component's SHA-256 and the engine's compatibility hash, with a digest checked before the
//! (unsafe) deserialization.

use sha2::{Digest as _, Sha256};
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where the cache lives by default: `$WRIT_CACHE_DIR`, else `$XDG_CACHE_HOME/writ`, else
/// `$HOME/.cache/writ`.
pub fn default_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("WRIT_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("writ"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("writ"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache file name for `wasm` compiled by `engine`.
pub fn key(engine: &Engine, wasm: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{}-{:016x}", &hex(&Sha256::digest(wasm))[..32], h.finish())
}

/// How the component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Compiled,
    Cached,
}

/// Load the compiled component from `dir`, or compile it and store it there. Cache problems
/// (unwritable directory, corrupt file) fall back to compiling; only compilation errors fail.
pub fn load(engine: &Engine, wasm: &[u8], dir: Option<&Path>) -> wasmtime::Result<(Component, Source)> {
    let Some(dir) = dir else {
        return Ok((Component::new(engine, wasm)?, Source::Compiled));
    };
    let name = key(engine, wasm);
    let file = dir.join(format!("{name}.cwasm"));
    let digest_file = dir.join(format!("{name}.sha256"));
    if let (Ok(bytes), Ok(digest)) = (std::fs::read(&file), std::fs::read_to_string(&digest_file))
        && hex(&Sha256::digest(&bytes)) == digest.trim()
    {
        // SAFETY: `bytes` is a `Component::serialize` output this module wrote for this
        // exact component and engine configuration (the name carries both hashes), and its
        // SHA-256 matches the digest written beside it, so it is neither truncated nor
        // corrupt. The cache directory is trusted like the binary itself.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize(engine, &bytes) };
        if let Ok(c) = loaded {
            return Ok((c, Source::Cached));
        }
    }
    let component = Component::new(engine, wasm)?;
    if let Ok(bytes) = component.serialize() {
        let _ = store(dir, &name, &bytes);
    }
    Ok((component, Source::Compiled))
}

fn store(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::write(dir.join(format!("{name}.sha256")), hex(&Sha256::digest(bytes)))?;
    std::fs::rename(&tmp, dir.join(format!("{name}.cwasm")))
}
