//! Embeds the Writ component: built from `writ-guest` by `writ-build-support` (one nested
//! cargo build shared with the proxy-wasm filter), or the prebuilt one `WRIT_COMPONENT` names.

fn main() {
    let component = writ_build_support::component();
    println!("cargo:rustc-env=WRIT_COMPONENT_PATH={}", component.display());
}
