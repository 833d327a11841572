# Sourced by the other scripts: tool locations, pinned versions and the offline overrides.
# shellcheck shell=bash
EDGECHAT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export EDGECHAT_ROOT
# Tools are installed once per machine, by version, outside the clone.
export EDGECHAT_TOOLS="${EDGECHAT_TOOLS:-$HOME/.cache/edgechat/tools}"
# The wasm-bindgen CLI must be exactly the library version in Cargo.lock.
WASM_BINDGEN_VERSION="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$EDGECHAT_ROOT/Cargo.lock")"
export WASM_BINDGEN_VERSION
export WASM_BINDGEN_BIN="$EDGECHAT_TOOLS/wasm-bindgen-$WASM_BINDGEN_VERSION/bin/wasm-bindgen"
export WASM_OPT_BIN="$EDGECHAT_ROOT/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$EDGECHAT_ROOT/node_modules/.bin/esbuild"
# wrangler: no metrics, no error reports, no banner, no lookups of Cloudflare's API.
export WRANGLER_SEND_METRICS=false
export WRANGLER_SEND_ERROR_REPORTS=false
export WRANGLER_HIDE_BANNER=true
export CLOUDFLARE_CF_FETCH_ENABLED=false
export WRANGLER="$EDGECHAT_ROOT/node_modules/wrangler/bin/wrangler.js"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
