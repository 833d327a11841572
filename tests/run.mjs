// Runs the integration suite: starts one stack (simulator + worker with fresh local D1/KV),
// runs every tests/integration/*.test.mjs against it, then audits what the worker logged,
// and stops the stack whatever happens. Ends with one line: "N passed, M failed".
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, startStack } from './support/stack.mjs';

const artifacts = process.env.EDGECHAT_ARTIFACTS || path.join(ROOT, 'test-artifacts');
// The Python SDK tests need their venv; `npm test` makes it, a direct run makes it here.
if (!process.env.EDGECHAT_PY_VENV) {
  const out = execFileSync('bash', [path.join(ROOT, 'scripts/setup-python.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  process.env.EDGECHAT_PY_VENV = out.trim().split('\n').at(-1);
}
mkdirSync(artifacts, { recursive: true });
for (const f of ['worker.log', 'sim.log', 'worker-output.log', 'integration.tap', 'audit.tap', 'soak.json']) {
  rmSync(path.join(artifacts, f), { force: true });
}
const started = Date.now();
console.log('==> starting the simulator and the worker (fresh local D1/KV)');
const stack = await startStack({ logDir: artifacts });
console.log(`==> worker ${stack.url}, simulator ${stack.simUrl} (${Date.now() - started} ms)`);

let stopping = false;
const stop = async (code) => {
  if (stopping) return;
  stopping = true;
  await stack.stop();
  writeFileSync(path.join(artifacts, 'worker-output.log'), stack.workerOutput());
  process.exit(code);
};
process.on('SIGINT', () => stop(130));
process.on('SIGTERM', () => stop(143));

const env = {
  ...process.env,
  EDGECHAT_URL: stack.url,
  SIM_URL: stack.simUrl,
  EDGECHAT_PERSIST_DIR: stack.persistDir,
  EDGECHAT_ARTIFACTS: artifacts,
  EDGECHAT_WORKER_LOG: path.join(artifacts, 'worker.log'),
};

/** Runs `node --test` on `files`, spec output to the terminal, TAP to a file; returns counts. */
async function runTests(files, name) {
  const tap = path.join(artifacts, `${name}.tap`);
  const child = spawn(process.execPath, [
    '--test', '--test-reporter=spec', '--test-reporter-destination=stdout',
    '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...files,
  ], { stdio: 'inherit', env });
  const [code] = await once(child, 'exit');
  const text = readFileSync(tap, 'utf8');
  const count = (k) => Number(text.match(new RegExp(`^# ${k} (\\d+)$`, 'm'))?.[1] ?? 0);
  return { code: code ?? 1, passed: count('pass'), failed: count('fail') + count('cancelled') };
}

const dir = path.join(ROOT, 'tests/integration');
const files = readdirSync(dir).filter((f) => f.endsWith('.test.mjs')).sort().map((f) => path.join(dir, f));
const filter = process.argv.slice(2);
const selected = filter.length ? files.filter((f) => filter.some((s) => f.includes(s))) : files;
const results = [await runTests(selected, 'integration')];
if (!filter.length) {
  console.log('==> auditing the worker log of the run');
  results.push(await runTests([path.join(ROOT, 'tests/audit/logs.test.mjs')], 'audit'));
}
const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
const ok = results.every((r) => r.code === 0) && failed === 0;
console.log(`\nintegration: ${passed} passed, ${failed} failed`);
await stop(ok ? 0 : 1);
