#!/usr/bin/env sh
# Build the proxy-wasm filter: writ-proxy.wasm (wasm32-wasip1), what Envoy loads.
#   proxy/build.sh [OUT]      OUT defaults to ./writ-proxy.wasm
set -eu
case "${1:-writ-proxy.wasm}" in
  /*) out="${1}" ;;
  *) out="$(pwd)/${1:-writ-proxy.wasm}" ;;
esac
cd "$(dirname "$0")/.."
if command -v rustup >/dev/null 2>&1; then
  rustup target add wasm32-wasip1 >/dev/null
fi
cargo build --release --locked -p writ-proxy --target wasm32-wasip1
cp target/wasm32-wasip1/release/writ_proxy.wasm "$out"
echo "$out ($(wc -c <"$out") bytes)"
