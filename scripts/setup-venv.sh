#!/usr/bin/env bash
# Installs, idempotently, a Python venv for one test suite: `setup-venv.sh NAME REQUIREMENTS
# CHECK...` makes "$EDGECHAT_TOOLS/NAME-<12-char sha256 of REQUIREMENTS>" (outside the clone;
# changing the pins makes a new venv, an existing one costs a hash and a stat), installs the
# pinned requirements and runs CHECK with the venv's bin/ first on PATH. Progress lines
# ("==> ...") go to stderr; the venv path is the last (and only) line on stdout.
set -euo pipefail

name="$1" rel="$2"
shift 2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
req="$root/$rel"
tools="${EDGECHAT_TOOLS:-$HOME/.cache/edgechat/tools}"
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
fail() { echo "setup-venv ($name): $*" >&2; exit 1; }

[ -f "$req" ] || fail "$req is missing"
hash="$(sha256sum "$req" | cut -c1-12)"
venv="$tools/$name-$hash"
# Written only after pip and the check succeeded: a venv without it is half done and redone.
stamp="$venv/.edgechat-installed"
ready() { [ -f "$stamp" ] && [ -x "$venv/bin/python" ]; }

if ready; then
  say "$name venv: present ($venv)"
else
  command -v python3 >/dev/null || fail "python3 is required but not installed"
  mkdir -p "$tools"
  # Two setups at once (say dev and test) must not build the same venv together.
  if command -v flock >/dev/null; then
    exec 9>"$venv.lock"
    flock 9
  fi
  if ready; then
    say "$name venv: present ($venv)"
  else
    say "creating the $name venv ($(python3 --version 2>&1)): $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 || {
      rm -rf "$venv"
      fail "'python3 -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
    }
    say "installing $rel into it (pip, once per machine)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req" >&2 || {
      rm -rf "$venv"
      fail "pip install -r $rel failed"
    }
    PATH="$venv/bin:$PATH" "$@" >&2 || { rm -rf "$venv"; fail "the check '$*' failed"; }
    touch "$stamp"
    say "$name venv ready"
  fi
fi
echo "$venv"
