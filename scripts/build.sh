#!/usr/bin/env bash
# Builds the Worker into build/ (release, size-tuned) unless it is already newer than every
# source file; prints the wasm size raw and gzipped. Steps: cargo (wasm32), the wasm-bindgen
# CLI (JS glue), wasm-opt (size), esbuild (one main module, build/index.js, importing
# build/index_bg.wasm).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$EDGECHAT_ROOT"

# EDGECHAT_BUILD_STD=1 builds the leaner variant (below); the stamp records which one build/ holds.
variant="build-std=${EDGECHAT_BUILD_STD:-0}"
stamp=build/.edgechat-built
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$variant" ] &&
  [ -z "$(find src crates Cargo.toml Cargo.lock -newer "$stamp" -print -quit)" ]; then
  say "worker build is up to date"
  exit 0
fi
for bin in "$WASM_BINDGEN_BIN" "$WASM_OPT_BIN" "$ESBUILD_BIN"; do
  [ -x "$bin" ] || { echo "build: $bin is missing: run npm run setup" >&2; exit 1; }
done
say "building the worker (release, wasm)"
start=$(date +%s)
# Panic locations name their source files: the build machine's paths (the clone, the
# toolchain, cargo's registry directory) are rewritten so that none ends up in the wasm.
cargo fetch --quiet
remap=(--remap-path-prefix="$EDGECHAT_ROOT/=" --remap-path-prefix="$(rustc --print sysroot)/=rust/")
for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do remap+=(--remap-path-prefix="$dir=deps/"); done
# The leaner variant, opt-in: the standard library rebuilt for size, and a panic traps at once
# with no message (the trap is still caught by src/js/entry.js). About 12 KB gzip less. It uses
# unstable compiler flags, enabled on the stable toolchain with RUSTC_BOOTSTRAP=1, and the
# rust-src component: a newer toolchain may change or refuse them.
flags=()
std=()
if [ "${EDGECHAT_BUILD_STD:-0}" = 1 ]; then
  rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
  export RUSTC_BOOTSTRAP=1
  flags=(-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none)
  std=(-Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size)
  say "variant: standard library rebuilt for size, panics trap without a message (EDGECHAT_BUILD_STD=1)"
fi
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${remap[*]} ${flags[*]}"
cargo build --release --target wasm32-unknown-unknown --lib "${std[@]}"
rm -rf build && mkdir -p build/bindgen
# --experimental-reset-state-function: src/js/entry.js starts a fresh instance after a trap.
"$WASM_BINDGEN_BIN" "${CARGO_TARGET_DIR:-target}"/wasm32-unknown-unknown/release/edgechat.wasm --out-dir build/bindgen \
  --out-name edgechat --target web --no-typescript --omit-default-module-path \
  --experimental-reset-state-function
# The name section (readable stack traces, ~20 KB gzip) is dropped unless
# EDGECHAT_KEEP_WASM_NAMES=1.
features=(mutable-globals sign-ext nontrapping-float-to-int bulk-memory multivalue reference-types exception-handling)
names=(--strip-debug --strip-producers)
[ "${EDGECHAT_KEEP_WASM_NAMES:-0}" = 1 ] && names=(--debuginfo)
"$WASM_OPT_BIN" build/bindgen/edgechat_bg.wasm -Oz --converge "${names[@]}" "${features[@]/#/--enable-}" \
  -o build/index_bg.wasm
rm build/bindgen/edgechat_bg.wasm
cp src/js/entry.js build/entry.js
"$ESBUILD_BIN" build/entry.js --bundle --format=esm --minify --log-level=warning --log-override:duplicate-object-key=silent \
  --external:./index_bg.wasm --outfile=build/index.js
rm -r build/entry.js build/bindgen
echo "$variant" >"$stamp"
raw=$(wc -c <build/index_bg.wasm)
gz=$(gzip -9 -c build/index_bg.wasm | wc -c)
say "built in $(( $(date +%s) - start )) s: build/index_bg.wasm $raw bytes raw, $gz bytes gzip"
