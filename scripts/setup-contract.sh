#!/usr/bin/env bash
# Installs, idempotently, the Python venv with schemathesis that fuzzes the worker against
# public/openapi.json (tests/integration/contract.test.mjs). The venv lives outside the clone,
# under $EDGECHAT_TOOLS, and is named after the hash of tests/contract/requirements.txt:
# changing the pins makes a new venv, and an existing one costs a hash and a stat. Progress
# lines ("==> ...") go to stderr; the venv path is the last (and only) line on stdout, so
# callers can do
#   export EDGECHAT_CONTRACT_VENV="$(bash scripts/setup-contract.sh | tail -n 1)"
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req="$root/tests/contract/requirements.txt"
tools="${EDGECHAT_TOOLS:-$HOME/.cache/edgechat/tools}"
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

[ -f "$req" ] || { echo "setup-contract: $req is missing" >&2; exit 1; }
hash="$(sha256sum "$req" | cut -c1-12)"
venv="$tools/py-contract-$hash"
# Written only after pip succeeded: a venv without it is a half-done install and is redone.
stamp="$venv/.edgechat-installed"

ready() { [ -f "$stamp" ] && [ -x "$venv/bin/schemathesis" ]; }

if ready; then
  say "schemathesis venv: present ($venv)"
else
  command -v python3 >/dev/null || { echo "setup-contract: python3 is required but not installed" >&2; exit 1; }
  mkdir -p "$tools"
  # Two setups at once (say two test runs) must not build the same venv together.
  if command -v flock >/dev/null; then
    exec 9>"$venv.lock"
    flock 9
  fi
  if ready; then
    say "schemathesis venv: present ($venv)"
  else
    say "creating the schemathesis venv ($(python3 --version 2>&1)): $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 || {
      echo "setup-contract: 'python3 -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
      rm -rf "$venv"
      exit 1
    }
    say "installing tests/contract/requirements.txt into it (pip, once per machine)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2 || {
      echo "setup-contract: pip install -r tests/contract/requirements.txt failed" >&2
      rm -rf "$venv"
      exit 1
    }
    "$venv/bin/schemathesis" --version >&2
    touch "$stamp"
    say "schemathesis venv ready: $("$venv/bin/schemathesis" --version)"
  fi
fi
echo "$venv"
