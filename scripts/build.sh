#!/usr/bin/env bash
# Builds the Worker into build/ (release, size-tuned) unless it is already newer than every
# source file; prints the wasm size raw and gzipped. Steps: cargo (wasm32), the wasm-bindgen
# CLI (JS glue), wasm-opt (size), esbuild (one main module, build/index.js, importing
# build/index_bg.wasm).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$EDGECHAT_ROOT"

# Two variants (below): lean, the default, and standard (EDGECHAT_BUILD_STD=0). The stamp
# records which one was asked for, so that switching rebuilds.
variant="build-std=${EDGECHAT_BUILD_STD:-1}"
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
# The lean variant (the default) rebuilds the standard library for size, and a panic traps at
# once with no message: the trap is still caught (src/js/trap.js), logged and answered with a
# JSON 500, and the instance replaced. About 12 KB gzip less than the standard variant. It needs the rust-src
# component and unstable compiler flags, enabled on the stable toolchain with
# RUSTC_BOOTSTRAP=1. If either is refused (another toolchain), the build says so and makes the
# standard variant, which uses stable flags only and logs a panic's message and location.
# EDGECHAT_BUILD_STD=0 asks for the standard variant, e.g. to read a panic's message.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${remap[*]}"
built=standard
if [ "${EDGECHAT_BUILD_STD:-1}" = 1 ]; then
  if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
    say "adding the rust-src component (the lean build rebuilds the standard library from it)"
    rustup component add rust-src || say "warning: rust-src could not be added"
  fi
  say "variant: lean (standard library rebuilt for size; a panic traps without its message)"
  if CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${remap[*]} -Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none" \
    RUSTC_BOOTSTRAP=1 cargo build --release --target wasm32-unknown-unknown --lib \
    -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size; then
    built=lean
  else
    say "warning: the lean build failed (above); building the standard variant instead"
  fi
else
  say "variant: standard (EDGECHAT_BUILD_STD=0; a panic logs its message and location)"
fi
[ "$built" = lean ] || cargo build --release --target wasm32-unknown-unknown --lib
rm -rf build && mkdir -p build/bindgen
# --experimental-reset-state-function: src/js/trap.js starts a fresh instance after a trap.
"$WASM_BINDGEN_BIN" "${CARGO_TARGET_DIR:-target}"/wasm32-unknown-unknown/release/edgechat.wasm --out-dir build/bindgen \
  --out-name edgechat --target web --no-typescript --omit-default-module-path \
  --experimental-reset-state-function
# The name section (readable stack traces, ~20 KB gzip) is dropped unless
# EDGECHAT_KEEP_WASM_NAMES=1.
features=(mutable-globals sign-ext nontrapping-float-to-int bulk-memory multivalue reference-types exception-handling)
names=(--strip-debug --strip-producers)
[ "${EDGECHAT_KEEP_WASM_NAMES:-0}" = 1 ] && names=(--debuginfo)
"$WASM_OPT_BIN" build/bindgen/edgechat_bg.wasm -Oz --converge "${names[@]}" "${features[@]/#/--enable-}" \
  -o build/bindgen/optimized.wasm
node scripts/shorten-imports.mjs build/bindgen/optimized.wasm build/bindgen/edgechat.js build/index_bg.wasm
cp src/js/entry.js src/js/trap.js build/
"$ESBUILD_BIN" build/entry.js --bundle --format=esm --minify --log-level=warning --log-override:duplicate-object-key=silent \
  --external:./index_bg.wasm --outfile=build/index.js
rm -r build/entry.js build/trap.js build/bindgen
echo "$built" >build/.edgechat-variant
echo "$variant" >"$stamp"
raw=$(wc -c <build/index_bg.wasm)
gz=$(gzip -9 -c build/index_bg.wasm | wc -c)
say "built the $built variant in $(( $(date +%s) - start )) s: build/index_bg.wasm $raw bytes raw, $gz bytes gzip"
