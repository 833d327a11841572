// Contract fuzzing of the whole API with schemathesis (pinned in tests/contract/requirements.txt,
// venv from EDGECHAT_CONTRACT_VENV or scripts/setup-contract.sh): requests generated from
// public/openapi.json, as the worker serves it at /openapi.json, must never answer 5xx and every
// response must match the document. See tests/contract/run.mjs for what the run covers.
//
// Runs its own worker (on the suite's simulator) so that the fuzzer's thousands of requests
// touch no other test's state, with plans roomy enough that model calls are not all 429, and
// an admin account so the admin routes answer real data.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { contractVenv, MODELS, prepareFixtures, runSchemathesis } from '../contract/run.mjs';
import { grantAdmin } from '../support/accounts.mjs';
import { ROOT, startSimulator, startWorker, TEST_VARS } from '../support/stack.mjs';

const ADMIN_EMAIL = 'contract-admin@test.example';
const ROOMY = { requests_per_minute: 100_000, tokens_per_day: 1_000_000_000, concurrent_streams: 1_000, models: ['*'] };
const artifacts = path.join(process.env.EDGECHAT_ARTIFACTS ?? path.join(ROOT, 'test-artifacts'), 'contract');

let sim;
let worker;

before(async () => {
  let simUrl = process.env.SIM_URL;
  if (!simUrl) {
    sim = await startSimulator();
    simUrl = sim.url;
  }
  // Only well-behaved models: the fault-mode ones answer 502/504 by design, which the
  // document allows but `not_a_server_error` would count.
  const all = JSON.parse(TEST_VARS.MODEL_ROUTES).models;
  const routes = { default: 'sim-small', models: Object.fromEntries(MODELS.map((name) => [name, all[name]])) };
  worker = await startWorker({
    vars: {
      ...TEST_VARS,
      OPENAI_BASE_URL: `${simUrl}/v1`,
      ANTHROPIC_BASE_URL: simUrl,
      MODEL_ROUTES: JSON.stringify(routes),
      PLANS: JSON.stringify({ free: ROOMY, pro: ROOMY }),
      // Cheap hashes and no lockout: the fuzzer registers and logs in hundreds of times.
      PASSWORD_HASH_ITERATIONS: '1000',
      LOGIN_MAX_FAILURES_PER_EMAIL: '1000',
      LOGIN_MAX_FAILURES_PER_IP: '100000',
    },
    logFile: path.join(path.dirname(artifacts), 'contract-worker.log'),
  });
});

after(async () => {
  await worker?.stop();
  await sim?.stop();
});

test('schemathesis: no 5xx and every response matches public/openapi.json', { timeout: 600_000 }, async () => {
  const venv = contractVenv();
  const fixtures = await prepareFixtures(worker.url, { adminEmail: ADMIN_EMAIL, grantAdmin: (email) => grantAdmin(worker.persistDir, email) });
  assert.equal(fixtures.EDGECHAT_CONTRACT_IS_ADMIN, 'true', 'the fixtures admin is an admin');
  const result = await runSchemathesis({ venv, url: worker.url, fixtures, workDir: artifacts, echo: false });
  const { summary } = result;
  console.log(`contract: schemathesis ${summary.line || '(no summary)'}; operations ${summary.operations}; ${result.seconds.toFixed(1)} s; log in ${path.relative(ROOT, artifacts)}/schemathesis.log`);
  const failures = result.output.match(/={5,} FAILURES ={5,}[\s\S]*?(?=={5,} (WARNINGS|SUMMARY) )/)?.[0] ?? result.output.slice(-6000);
  assert.equal(result.code, 0, `schemathesis exited ${result.code}: ${summary.line}\n${failures.slice(0, 12000)}`);
  assert.ok(summary.generated > 0, `schemathesis ran no test case:\n${result.output.slice(-3000)}`);
  assert.equal(summary.failures, 0);
});
