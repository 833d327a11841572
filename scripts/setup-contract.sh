#!/usr/bin/env bash
# The venv with schemathesis for the contract run (tests/integration/contract.test.mjs);
# prints its path last, so callers can do
#   export EDGECHAT_CONTRACT_VENV="$(bash scripts/setup-contract.sh | tail -n 1)"
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/setup-venv.sh" py-contract tests/contract/requirements.txt \
  schemathesis --version
