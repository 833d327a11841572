#!/usr/bin/env bash
# npm test: set up, then every suite — core unit and property tests, simulator tests, the
# build step's and JS glue's tests, integration tests against the real worker under wrangler
# dev (SDKs, contract, faults, soak, log audit), and browser tests in headless Chromium. Ends with "N passed, M failed".
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$EDGECHAT_ROOT"
bash scripts/setup.sh
# Again: setup may just have installed the Node that env.sh puts first on PATH.
source scripts/env.sh
# Python venvs (the official OpenAI SDK; schemathesis) and Chromium for the browser tests.
EDGECHAT_PY_VENV="$(bash scripts/setup-python.sh | tail -n 1)"
EDGECHAT_CONTRACT_VENV="$(bash scripts/setup-contract.sh | tail -n 1)"
export EDGECHAT_PY_VENV EDGECHAT_CONTRACT_VENV
bash scripts/setup-browser.sh

artifacts="$EDGECHAT_ROOT/test-artifacts"
mkdir -p "$artifacts"
rm -f "$artifacts"/*.tap "$artifacts/cargo.log"

say "native tests: the core's unit, property and API-document tests (cargo test --workspace)"
cargo test --workspace 2>&1 | tee "$artifacts/cargo.log" | grep -E "^(test result|running|failures:|---- )|panicked" || true
grep -q "test result: FAILED" "$artifacts/cargo.log" && { echo "core tests failed" >&2; exit 1; }
grep -q "test result: ok" "$artifacts/cargo.log" || { echo "core tests did not run" >&2; exit 1; }

bash scripts/build.sh

say "simulator tests"
node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$artifacts/sim.tap" "sim/test/*.test.mjs"

say "build-step, JS glue and bench report tests (import renaming, the trap guard, budget verdicts)"
node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$artifacts/unit.tap" "tests/unit/*.test.mjs"

say "integration tests against the real worker"
node tests/run.mjs "$@"

say "browser tests (headless Chromium)"
node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$artifacts/browser.tap" "tests/browser/*.test.mjs"

# One closing line over every suite.
node -e '
const fs = require("fs"), dir = process.argv[1];
let passed = 0, failed = 0;
for (const m of fs.readFileSync(`${dir}/cargo.log`, "utf8").matchAll(/test result: \w+\. (\d+) passed; (\d+) failed/g)) { passed += +m[1]; failed += +m[2]; }
for (const f of ["sim.tap", "unit.tap", "integration.tap", "audit.tap", "browser.tap"]) {
  const t = fs.existsSync(`${dir}/${f}`) ? fs.readFileSync(`${dir}/${f}`, "utf8") : "";
  passed += +(t.match(/^# pass (\d+)$/m)?.[1] ?? 0);
  failed += +(t.match(/^# fail (\d+)$/m)?.[1] ?? 0) + +(t.match(/^# cancelled (\d+)$/m)?.[1] ?? 0);
}
console.log(`\nall: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
' "$artifacts"
