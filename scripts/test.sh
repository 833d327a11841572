#!/usr/bin/env bash
# npm test: set up, then every suite — core unit tests, simulator tests, and integration
# tests against the real worker under wrangler dev with fresh local D1/KV.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$EDGECHAT_ROOT"
bash scripts/setup.sh
# The official OpenAI Python SDK, in a venv of its own, for the SDK compatibility tests.
EDGECHAT_PY_VENV="$(bash scripts/setup-python.sh | tail -n 1)"
export EDGECHAT_PY_VENV
say "core unit tests (cargo test -p edgechat-core)"
cargo test -p edgechat-core --quiet
bash scripts/build.sh
say "simulator tests"
node --test sim/test/
say "integration tests against the real worker"
node tests/run.mjs "$@"
