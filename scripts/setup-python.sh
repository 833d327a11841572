#!/usr/bin/env bash
# The venv with the official OpenAI Python SDK for tests/sdk/test_openai_python.py; prints its
# path last, so callers can do
#   export EDGECHAT_PY_VENV="$(bash scripts/setup-python.sh | tail -n 1)"
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/setup-venv.sh" py-sdk tests/sdk/requirements.txt \
  python -c 'import openai; print("openai", openai.__version__)'
