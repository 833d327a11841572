#!/usr/bin/env bash
# Installs, idempotently, the browser the browser tests drive: Debian's `chromium` package
# (Playwright cannot download its own browsers on these machines; npm `playwright-core` drives
# the system one). When chromium is already there this costs a stat. Progress lines go to
# stderr as "==> ...".
set -euo pipefail

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
CHROMIUM="${EDGECHAT_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
  say "chromium: present"
  exit 0
fi

command -v apt-get >/dev/null || {
  echo "setup-browser: $CHROMIUM is missing and apt-get is not available; install Chromium yourself" >&2
  exit 1
}
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup-browser: installing chromium needs root (or sudo)" >&2; exit 1; }
  sudo=(sudo env DEBIAN_FRONTEND=noninteractive)
fi

# Two setups at once (say dev and test) must not run apt together.
if command -v flock >/dev/null; then
  exec 9>"${TMPDIR:-/tmp}/edgechat-setup-browser.lock"
  flock 9
  if [ -x "$CHROMIUM" ]; then say "chromium: present"; exit 0; fi
fi

export DEBIAN_FRONTEND=noninteractive
log="$(mktemp "${TMPDIR:-/tmp}/edgechat-setup-browser.XXXXXX")"
run() { "${sudo[@]}" "$@" >>"$log" 2>&1 || { echo "setup-browser: '$*' failed; last lines:" >&2; tail -n 30 "$log" >&2; exit 1; }; }
say "apt-get update"
run apt-get update
say "apt-get install -y chromium (once per machine, about a minute)"
run apt-get install -y --no-install-recommends chromium
rm -f "$log"
[ -x "$CHROMIUM" ] || { echo "setup-browser: chromium installed but $CHROMIUM is missing" >&2; exit 1; }
say "chromium: installed ($("$CHROMIUM" --version 2>/dev/null || echo unknown version))"
