#!/usr/bin/env bash
# Installs what edgechat needs to build, run and test, idempotently: seconds when all is there.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$EDGECHAT_ROOT"

for tool in cargo rustup npm; do
  command -v "$tool" >/dev/null || { echo "setup: $tool is required but not installed" >&2; exit 1; }
done

# Node >= 22.12 for the tools: the machine's when it is that new, else Node 24 LTS in the tools
# cache (env.sh puts it first on PATH once it is there).
if node_fits; then
  case "$(command -v node)" in
  "$EDGECHAT_NODE_BIN"/*) say "Node $(node --version): present ($EDGECHAT_NODE_HOME)" ;;
  *) say "Node $(node --version): the machine's (>= $EDGECHAT_NODE_MIN)" ;;
  esac
else
  have="$(node --version 2>/dev/null || echo none)"
  [ -n "$EDGECHAT_NODE_PACKAGE" ] || {
    echo "setup: edgechat's tools need Node >= $EDGECHAT_NODE_MIN (this machine has $have); setup installs it" \
      "only on Linux x64 and arm64: install Node 24 LTS and run npm run setup again" >&2
    exit 1
  }
  mkdir -p "$EDGECHAT_TOOLS"
  # Two setups at once (say dev and test) must not install it together.
  if command -v flock >/dev/null; then
    exec 8>"$EDGECHAT_NODE_HOME.lock"
    flock 8
  fi
  if [ -x "$EDGECHAT_NODE_BIN/node" ]; then
    say "Node $EDGECHAT_NODE_VERSION: present ($EDGECHAT_NODE_HOME)"
  else
    say "installing Node $EDGECHAT_NODE_VERSION (npm package $EDGECHAT_NODE_PACKAGE, the official binary) into" \
      "$EDGECHAT_NODE_HOME: this machine's Node is $have, the tools need >= $EDGECHAT_NODE_MIN (once per machine)"
    # Installed beside its final place and moved there whole: a cut-short install is not taken for one.
    rm -rf "$EDGECHAT_NODE_HOME".partial.*
    tmp="$(mktemp -d "$EDGECHAT_NODE_HOME.partial.XXXXXX")"
    npm install --prefix "$tmp" --no-audit --no-fund --loglevel=error "$EDGECHAT_NODE_PACKAGE@$EDGECHAT_NODE_VERSION" \
      || { rm -rf "$tmp"; echo "setup: installing $EDGECHAT_NODE_PACKAGE@$EDGECHAT_NODE_VERSION failed" >&2; exit 1; }
    got="$("$tmp/node_modules/$EDGECHAT_NODE_PACKAGE/bin/node" --version 2>&1 || true)"
    [ "$got" = "v$EDGECHAT_NODE_VERSION" ] \
      || { rm -rf "$tmp"; echo "setup: the installed node says '$got', not v$EDGECHAT_NODE_VERSION" >&2; exit 1; }
    rm -rf "$EDGECHAT_NODE_HOME"
    mv "$tmp" "$EDGECHAT_NODE_HOME"
  fi
  exec 8>&-
  export PATH="$EDGECHAT_NODE_BIN:$PATH"
  node_fits || { echo "setup: $EDGECHAT_NODE_BIN/node does not run here" >&2; exit 1; }
  say "from here on, edgechat's scripts run on Node $(node --version) ($EDGECHAT_NODE_BIN)"
fi

if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "wasm32-unknown-unknown target: present"
else
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
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
