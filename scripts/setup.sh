#!/usr/bin/env bash
# Installs what edgechat needs to build, run and test, idempotently: seconds when all is there.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$EDGECHAT_ROOT"

for tool in cargo rustup node npm; do
  command -v "$tool" >/dev/null || { echo "setup: $tool is required but not installed" >&2; exit 1; }
done

if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "wasm32-unknown-unknown target: present"
else
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi
# The lean build (the default) rebuilds the standard library from its sources.
if rustup component list --installed | grep -q '^rust-src'; then
  say "rust-src component: present"
else
  say "adding the rust-src component"
  rustup component add rust-src || say "warning: rust-src could not be added; builds will make the standard variant"
fi

# The wasm-bindgen CLI takes a few minutes to install on a fresh machine; npm runs meanwhile.
pids=()
install_crate() { # name version root
  local name=$1 version=$2 root=$3 log="$EDGECHAT_TOOLS/$1-$2.log"
  mkdir -p "$EDGECHAT_TOOLS"
  say "installing $name $version (a few minutes, once per machine; log: $log)"
  # wasm-bindgen-cli's own lockfile pins a crate the registry lacks: no --locked for it.
  cargo install "$name" --version "=$version" --root "$root" >"$log" 2>&1 \
    || { echo "setup: installing $name failed; last lines of $log:" >&2; tail -n 30 "$log" >&2; return 1; }
}
if [ -x "$WASM_BINDGEN_BIN" ]; then
  say "wasm-bindgen-cli $WASM_BINDGEN_VERSION: present"
else
  install_crate wasm-bindgen-cli "$WASM_BINDGEN_VERSION" "$EDGECHAT_TOOLS/wasm-bindgen-$WASM_BINDGEN_VERSION" & pids+=($!)
fi

# npm packages: reinstalled only when package-lock.json changed since the last install.
stamp=node_modules/.edgechat-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$WASM_OPT_BIN" ]; then
  say "npm packages: up to date"
else
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi

for pid in "${pids[@]}"; do wait "$pid"; done
"$WASM_BINDGEN_BIN" --version >/dev/null
say "setup complete"
