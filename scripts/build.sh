#!/usr/bin/env bash
# Builds the chat page's scripts (scripts/build-page.sh), then the Worker into build/ (release,
# size-tuned, stable toolchain) unless it is already newer than every source file; prints the wasm size raw and gzipped. Steps: cargo (wasm32),
# the wasm-bindgen CLI (JS glue), wasm-opt (size), esbuild (one main module, build/index.js,
# importing build/index_bg.wasm).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$EDGECHAT_ROOT"
# The chat page's bundled scripts first (seconds, or nothing when fresh).
bash scripts/build-page.sh

# One build at a time (wrangler dev's watcher and a test run may both start one): a second
# waits, then finds the first's output fresh.
mkdir -p "${CARGO_TARGET_DIR:-target}"
exec 9>"${CARGO_TARGET_DIR:-target}/.edgechat-build.lock"
flock 9
stamp=build/.edgechat-built
if [ -f "$stamp" ] && [ -z "$(find src crates Cargo.toml Cargo.lock scripts/build.sh scripts/shorten-imports.mjs \
  scripts/env.sh -newer "$stamp" -print -quit)" ]; then
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
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${remap[*]}" cargo build --release --target wasm32-unknown-unknown --lib
# Made in a fresh folder and moved into place whole, so that build/ is never half written.
out=build.new
rm -rf "$out" && mkdir -p "$out/bindgen"
# --experimental-reset-state-function: src/js/trap.js starts a fresh instance after a trap.
"$WASM_BINDGEN_BIN" "${CARGO_TARGET_DIR:-target}"/wasm32-unknown-unknown/release/edgechat.wasm --out-dir "$out/bindgen" \
  --out-name edgechat --target web --no-typescript --omit-default-module-path \
  --experimental-reset-state-function
# The name section (readable stack traces) is dropped unless EDGECHAT_KEEP_WASM_NAMES=1.
features=(mutable-globals sign-ext nontrapping-float-to-int bulk-memory multivalue reference-types exception-handling)
names=(--strip-debug --strip-producers)
[ "${EDGECHAT_KEEP_WASM_NAMES:-0}" = 1 ] && names=(--debuginfo)
"$WASM_OPT_BIN" "$out/bindgen/edgechat_bg.wasm" -Oz --converge "${names[@]}" "${features[@]/#/--enable-}" \
  -o "$out/bindgen/optimized.wasm"
node scripts/shorten-imports.mjs "$out/bindgen/optimized.wasm" "$out/bindgen/edgechat.js" "$out/index_bg.wasm"
cp src/js/entry.js src/js/trap.js "$out/"
"$ESBUILD_BIN" "$out/entry.js" --bundle --format=esm --minify --log-level=warning --log-override:duplicate-object-key=silent \
  --external:./index_bg.wasm --outfile="$out/index.js"
rm -r "$out/entry.js" "$out/trap.js" "$out/bindgen"
touch "$out/.edgechat-built"
rm -rf build && mv "$out" build
raw=$(wc -c <build/index_bg.wasm)
gz=$(gzip -9 -c build/index_bg.wasm | wc -c)
say "built in $(( $(date +%s) - start )) s: build/index_bg.wasm $raw bytes raw, $gz bytes gzip"
