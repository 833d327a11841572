#!/usr/bin/env bash
# npm run dev: set up, build, then run the simulator and the worker on loopback.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$EDGECHAT_ROOT"
bash scripts/setup.sh
# Again: setup may just have installed the Node that env.sh puts first on PATH.
source scripts/env.sh
bash scripts/build.sh
exec node scripts/dev.mjs
