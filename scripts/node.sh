#!/usr/bin/env bash
# `bash scripts/node.sh FILE ARGS...`: runs FILE on edgechat's Node (>= 22.12: the machine's, or
# the Node 24 that scripts/setup.sh installs), running setup first when that Node is not there
# yet, so that an npm script started by an older Node still runs its tools on the right one.
set -euo pipefail
source "$(dirname "$0")/env.sh"
if ! node_fits; then
  bash "$EDGECHAT_ROOT/scripts/setup.sh" >&2
  source "$EDGECHAT_ROOT/scripts/env.sh"
fi
exec node "$@"
