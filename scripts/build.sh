#!/usr/bin/env bash
# Builds the Worker into build/ (release, size-tuned) unless it is already newer than every
# source file; prints the wasm size raw and gzipped.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$EDGECHAT_ROOT"

stamp=build/.edgechat-built
if [ -f "$stamp" ] && [ -z "$(find src crates Cargo.toml Cargo.lock -newer "$stamp" -print -quit)" ]; then
  say "worker build is up to date"
  exit 0
fi
for bin in "$WORKER_BUILD_BIN" "$WASM_BINDGEN_BIN" "$WASM_OPT_BIN" "$ESBUILD_BIN"; do
  [ -x "$bin" ] || { echo "build: $bin is missing: run npm run setup" >&2; exit 1; }
done
say "building the worker (release, wasm)"
start=$(date +%s)
"$WORKER_BUILD_BIN" --release
wasm=$(find build -name '*.wasm' -print -quit)
# worker-build has already run wasm-opt once; running it again to a fixed point (--converge)
# takes ~2.5 KB more off the gzip size. worker-build also keeps the wasm name section
# (readable stack traces) at ~20 KB gzip; it is dropped unless EDGECHAT_KEEP_WASM_NAMES=1.
features=(mutable-globals sign-ext nontrapping-float-to-int bulk-memory multivalue reference-types exception-handling)
names=(--strip-debug)
[ "${EDGECHAT_KEEP_WASM_NAMES:-0}" = 1 ] && names=(--debuginfo)
"$WASM_OPT_BIN" "$wasm" -Oz --converge "${names[@]}" "${features[@]/#/--enable-}" -o "$wasm.opt"
mv "$wasm.opt" "$wasm"
touch "$stamp"
raw=$(wc -c <"$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
say "built in $(( $(date +%s) - start )) s: $wasm $raw bytes raw, $gz bytes gzip"
