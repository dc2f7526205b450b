//! Embeds the proxy-wasm filter: built from `writ-proxy` by `writ-build-support` (one nested
//! cargo build shared with the component), or the prebuilt one `WRIT_FILTER` names.

fn main() {
    let filter = writ_build_support::proxy_filter();
    println!("cargo:rustc-env=WRIT_FILTER_PATH={}", filter.display());
}
