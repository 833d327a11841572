// `npm run dev`, after setup and build: local D1 migrations, the LLM simulator and
// `wrangler dev` on loopback, all stopped together on Ctrl-C or SIGTERM.
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, applyMigrations, startSimulator, startWorker } from '../tests/support/stack.mjs';

const port = Number(process.env.PORT || 8787);
const simPort = Number(process.env.SIM_PORT || port + 1);
const stateDir = path.join(ROOT, '.wrangler/state');
const devVars = path.join(ROOT, '.dev.vars');

if (!existsSync(devVars)) {
  copyFileSync(path.join(ROOT, '.dev.vars.example'), devVars);
  console.log('==> created .dev.vars from .dev.vars.example (dev-only values)');
}

/** KEY=VALUE lines, # comments, optional surrounding quotes. */
function parseDotenv(text) {
  const vars = {};
  for (const line of text.split(/\r?\n/)) {
    const m = line.match(/^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/);
    if (!m) continue;
    let value = m[2];
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    vars[m[1]] = value;
  }
  return vars;
}

const running = [];
let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  console.log('\n==> stopping the worker and the simulator');
  await Promise.allSettled(running.map((p) => p.stop()));
  process.exit(code);
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

try {
  console.log('==> applying D1 migrations to the local database');
  await applyMigrations(stateDir);
  console.log(`==> starting the LLM simulator on 127.0.0.1:${simPort}`);
  const sim = await startSimulator({ port: simPort });
  running.push(sim);
  const vars = { OPENAI_BASE_URL: `${sim.url}/v1`, ANTHROPIC_BASE_URL: sim.url, ...parseDotenv(readFileSync(devVars, 'utf8')) };
  console.log(`==> starting wrangler dev on 127.0.0.1:${port}`);
  const worker = await startWorker({ vars, persistDir: stateDir, port, echo: true });
  running.push(worker);
  console.log(`\n==> edgechat is running at ${worker.url}  (simulator: ${sim.url}; Ctrl-C stops both)\n`);
} catch (err) {
  console.error(`dev: ${err.message}`);
  await stop(1);
}
