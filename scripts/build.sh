#!/usr/bin/env bash
# Builds the Worker into build/ (release, size-tuned) unless it is already newer than every
# source file; prints the wasm size raw and gzipped. Steps: cargo (wasm32), the wasm-bindgen
# CLI (JS glue), wasm-opt (size), esbuild (one main module, build/index.js, importing
# build/index_bg.wasm).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$EDGECHAT_ROOT"

# Two variants. Lean, the default, rebuilds the standard library for size, and a panic traps
# at once with no message: the trap is still caught (src/js/trap.js), logged and answered with
# a JSON 500, and the instance replaced. About 12 KB gzip less than the standard variant. It
# needs the rust-src component and unstable compiler flags, enabled on the stable toolchain
# with RUSTC_BOOTSTRAP=1. Standard uses stable flags only, and a panic logs its message and
# location before the trap. EDGECHAT_BUILD_STD=0 asks for standard (e.g. to read a panic's
# message), EDGECHAT_BUILD_STD=1 for lean (an error if this toolchain cannot make it); unset,
# the build makes lean when the toolchain can, else says so and makes standard.
lean_flags=(-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none)
lean_possible() {
  [ -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library" ] &&
    RUSTC_BOOTSTRAP=1 rustc --target wasm32-unknown-unknown "${lean_flags[@]}" --print cfg >/dev/null 2>&1
}
asked=${EDGECHAT_BUILD_STD-}
want=lean
[ "$asked" = 0 ] && want=standard
# The stamp records the variant asked for and the one made: switching rebuilds, and so does a
# standard build made in place of lean once this toolchain can make lean.
stamp=build/.edgechat-built
if [ -f "$stamp" ] && [ -z "$(find src crates Cargo.toml Cargo.lock scripts/build.sh scripts/shorten-imports.mjs \
  scripts/env.sh -newer "$stamp" -print -quit)" ]; then
  case "$(cat "$stamp")" in
  "want=$want built=$want") say "worker build is up to date ($want)"; exit 0 ;;
  "want=lean built=standard")
    [ "$asked" = 1 ] || lean_possible ||
      { say "worker build is up to date (standard: this toolchain cannot make lean)"; exit 0; } ;;
  esac
fi
for bin in "$WASM_BINDGEN_BIN" "$WASM_OPT_BIN" "$ESBUILD_BIN"; do
  [ -x "$bin" ] || { echo "build: $bin is missing: run npm run setup" >&2; exit 1; }
done
built=$want
if [ "$want" = lean ] && ! lean_possible; then
  if [ "$asked" = 1 ]; then
    echo "build: EDGECHAT_BUILD_STD=1, but this toolchain cannot make the lean build: it needs the rust-src" \
      "component (rustup component add rust-src) and to accept -Cpanic=immediate-abort with RUSTC_BOOTSTRAP=1" >&2
    exit 1
  fi
  say "warning: this toolchain cannot make the lean build (no rust-src component, or it refuses" \
    "-Cpanic=immediate-abort): building the standard variant, about 12 KB gzip larger"
  built=standard
fi
say "building the worker (release, wasm, $built variant)"
start=$(date +%s)
# Panic locations name their source files: the build machine's paths (the clone, the
# toolchain, cargo's registry directory) are rewritten so that none ends up in the wasm.
cargo fetch --quiet
remap=(--remap-path-prefix="$EDGECHAT_ROOT/=" --remap-path-prefix="$(rustc --print sysroot)/=rust/")
for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do remap+=(--remap-path-prefix="$dir=deps/"); done
if [ "$built" = lean ]; then
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${remap[*]} ${lean_flags[*]}" RUSTC_BOOTSTRAP=1 \
    cargo build --release --target wasm32-unknown-unknown --lib -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
else
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${remap[*]}" cargo build --release --target wasm32-unknown-unknown --lib
fi
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
echo "want=$want built=$built" >"$stamp"
raw=$(wc -c <build/index_bg.wasm)
gz=$(gzip -9 -c build/index_bg.wasm | wc -c)
say "built the $built variant in $(( $(date +%s) - start )) s: build/index_bg.wasm $raw bytes raw, $gz bytes gzip"
