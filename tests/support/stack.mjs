// Starts and stops the real stack for tests and dev: the LLM simulator, local D1 migrations
// and `wrangler dev` on free loopback ports, each in its own process group so that stopping
// it leaves no workerd or simulator behind.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WRANGLER = path.join(ROOT, 'node_modules/wrangler/bin/wrangler.js');
const QUIET_WRANGLER = {
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_SEND_ERROR_REPORTS: 'false',
  WRANGLER_HIDE_BANNER: 'true',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  CI: 'true',
};

/** The settings every test worker gets; a test may override any of them. */
export const TEST_VARS = {
  JWT_SECRET: 'test-only-secret-0123456789abcdef0123456789abcdef',
  CORS_ORIGINS: 'https://app.test.example',
  // No longer read (no address makes an admin), but a deployment may still set it: the
  // tests check that registering this address gives a plain user.
  ADMIN_EMAILS: 'admin@test.example',
  // Test models: each maps to the simulator with a fault mode or pace in its upstream name.
  MODEL_ROUTES: JSON.stringify({
    default: 'sim-small',
    models: {
      'sim-small': { provider: 'openai', upstream: 'sim-small+tokens=24+interval=15' },
      'sim-large': { provider: 'openai', upstream: 'sim-large+tokens=8+interval=5' },
      slow: { provider: 'openai', upstream: 'sim-small+tokens=400+interval=25' },
      flaky: { provider: 'openai', upstream: 'sim-small+status=429+fail_times=1+retry_after=1+tokens=6+interval=5' },
      broken: { provider: 'openai', upstream: 'sim-small+status=500+tokens=6', fallbacks: ['sim-large'] },
      hang: { provider: 'openai', upstream: 'sim-small+hang' },
      cut: { provider: 'openai', upstream: 'sim-small+cut=5+tokens=20+interval=10' },
      malformed: { provider: 'openai', upstream: 'sim-small+malformed=3+tokens=10+interval=5' },
      claude: { provider: 'anthropic', upstream: 'sim-claude+tokens=16+interval=10' },
      echo: { provider: 'openai', upstream: 'sim-small+echo+interval=5' },
      tiny: { provider: 'openai', upstream: 'sim-small+tokens=4+interval=1', context_tokens: 200, max_output_tokens: 100 },
      // With logprobs and top_logprobs 20, a stream of over 4 MiB.
      long: { provider: 'openai', upstream: 'sim-small+tokens=3000+interval=0', max_output_tokens: 4000 },
      // Embeddings (POST /v1/embeddings): the simulator's vectors; one failing once with a 429
      // first, one always failing (its Anthropic fallback cannot embed), one never answering.
      'sim-embed': { provider: 'openai', upstream: 'sim-embed', kind: 'embedding' },
      'embed-flaky': { provider: 'openai', upstream: 'sim-embed+status=429+fail_times=1+retry_after=1', kind: 'embedding' },
      'embed-broken': { provider: 'openai', upstream: 'sim-embed+status=500', fallbacks: ['claude', 'sim-embed'], kind: 'embedding' },
      'embed-hang': { provider: 'openai', upstream: 'sim-embed+hang', kind: 'embedding' },
    },
  }),
  STRIPE_WEBHOOK_SECRET: 'whsec_test_0123456789abcdef',
  STRIPE_PRICE_PLANS: JSON.stringify({ price_pro_monthly: 'pro' }),
  UPSTREAM_FIRST_BYTE_TIMEOUT_MS: '1500',
  SSE_HEARTBEAT_MS: '300',
  UPSTREAM_MAX_RETRY_DELAY_MS: '1500',
  // The suites register hundreds of users from one address; the registration limit's own test
  // starts a worker with the default.
  REGISTER_MAX_PER_IP: '1000000',
};

/** A .env value: single-quoted (taken literally) unless it holds a single quote. */
function dotenvValue(v) {
  if (v.includes('\n')) throw new Error('multi-line values are not supported in env files');
  return v.includes("'") ? JSON.stringify(v) : `'${v}'`;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** Spawns `cmd` in its own process group, logging to `logFile`; returns a handle. */
function spawnGroup(cmd, args, { env = {}, logFile, echo = false }) {
  const child = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, ...QUIET_WRANGLER, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const log = logFile ? createWriteStream(logFile, { flags: 'a' }) : null;
  let output = '';
  const collect = (chunk) => {
    output += chunk;
    if (output.length > 1 << 20) output = output.slice(-(1 << 19));
    log?.write(chunk);
    if (echo) process.stdout.write(chunk);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = once(child, 'exit');
  return {
    child,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try { process.kill(-child.pid, 'SIGTERM'); } catch { return; }
      const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch {} }, 5000);
      await exited;
      clearTimeout(timer);
      // workerd may outlive wrangler's node process: sweep the group.
      try { process.kill(-child.pid, 'SIGKILL'); } catch {}
      log?.end();
    },
  };
}

async function waitFor(check, { timeoutMs, what, proc }) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && proc.child.exitCode !== null) {
      throw new Error(`${what} exited early:\n${proc.output().slice(-4000)}`);
    }
    try { if (await check()) return; } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms:\n${proc ? proc.output().slice(-4000) : ''}`);
}

/** Starts the simulator on a free port. */
export async function startSimulator({ port = 0, logFile, args = [], echo = false } = {}) {
  const proc = spawnGroup(process.execPath, [path.join(ROOT, 'sim/server.mjs'), '--host', '127.0.0.1', '--port', String(port), ...args], { logFile, echo });
  let url;
  await waitFor(() => {
    const m = proc.output().match(/sim listening on (http:\/\/\S+)/);
    if (m) url = m[1];
    return Boolean(m);
  }, { timeoutMs: 15000, what: 'simulator', proc });
  return { url, proc, stop: () => proc.stop() };
}

/** Runs SQL against the local D1 database under `persistDir` (tests use it to set up states
 * the API cannot reach yet); returns wrangler's JSON result. */
export async function execSql(persistDir, sql) {
  const proc = spawnGroup(process.execPath, [WRANGLER, 'd1', 'execute', 'DB', '--local', '--persist-to', persistDir, '--json', '--command', sql], {});
  const [code] = await proc.exited;
  if (code !== 0) throw new Error(`d1 execute failed:\n${proc.output().slice(-4000)}`);
  return JSON.parse(proc.output().slice(proc.output().indexOf('[')));
}

/** Applies the D1 migrations to the local database kept under `persistDir`. */
export async function applyMigrations(persistDir, { logFile } = {}) {
  const proc = spawnGroup(process.execPath, [WRANGLER, 'd1', 'migrations', 'apply', 'DB', '--local', '--persist-to', persistDir], { logFile });
  const [code] = await proc.exited;
  if (code !== 0) throw new Error(`migrations failed:\n${proc.output().slice(-4000)}`);
}

/**
 * Starts the worker under `wrangler dev` with fresh D1/KV state (unless `persistDir` is
 * given) and `vars` as its environment (the developer's .dev.vars is never read).
 */
export async function startWorker({ vars = {}, persistDir, logFile, port, echo = false } = {}) {
  const ownState = !persistDir;
  const dir = persistDir ?? mkdtempSync(path.join(os.tmpdir(), 'edgechat-state-'));
  if (ownState) await applyMigrations(dir, { logFile });
  const envFile = path.join(dir, 'worker.env');
  writeFileSync(envFile, Object.entries(vars).map(([k, v]) => `${k}=${dotenvValue(String(v))}`).join('\n') + '\n');
  port ??= await freePort();
  const inspector = await freePort();
  const proc = spawnGroup(process.execPath, [
    WRANGLER, 'dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(inspector),
    '--persist-to', dir, '--env-file', envFile, '--show-interactive-dev-session=false', '--log-level', 'log',
  ], { logFile, echo });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/health`)).ok, { timeoutMs: 60000, what: 'wrangler dev', proc });
  return {
    url,
    persistDir: dir,
    output: () => proc.output(),
    async stop() {
      await proc.stop();
      if (ownState) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The test variables with both upstreams pointed at the simulator at `simUrl` (by default the
 * one the integration runner started), then `extra`. */
export function simVars(extra = {}, simUrl = process.env.SIM_URL) {
  return { ...TEST_VARS, OPENAI_BASE_URL: `${simUrl}/v1`, ANTHROPIC_BASE_URL: simUrl, ...extra };
}

/** The simulator and a worker pointed at it; `stop()` ends both. */
export async function startStack({ vars = {}, logDir } = {}) {
  if (logDir) mkdirSync(logDir, { recursive: true });
  const sim = await startSimulator({ logFile: logDir && path.join(logDir, 'sim.log') });
  let worker;
  try {
    worker = await startWorker({
      vars: simVars(vars, sim.url),
      logFile: logDir && path.join(logDir, 'worker.log'),
    });
  } catch (err) {
    await sim.stop();
    throw err;
  }
  return {
    url: worker.url,
    simUrl: sim.url,
    persistDir: worker.persistDir,
    workerOutput: worker.output,
    async stop() {
      await Promise.allSettled([worker.stop(), sim.stop()]);
    },
  };
}
