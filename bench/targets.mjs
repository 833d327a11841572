// bench/targets.mjs — starts and stops every benchmark target (simulator, edgechat and the JS workers in bare workerd, wrangler dev, LiteLLM, Portkey) and reads their processes' CPU (per request, per extra streamed chunk) and memory.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';
import { COMPAT_DATE, COMPAT_FLAGS, OBJECTS, applyMigrations, buildManifest, objectExports, workerEnv, workerManifest } from '../tests/support/miniflare.mjs';
import { freePort, startWorker } from '../tests/support/stack.mjs';
import { concurrentStreams } from './sse-client.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BENCH = path.join(ROOT, 'bench');
export { COMPAT_DATE }; // wrangler.toml's, so that the bench runs the worker as deployed
export const LITELLM_VERSION = '1.100.5'; // newest whose dependencies all resolve from the registry here
export const PORTKEY_VERSION = '1.15.2';
// Portkey 1.15.2 streams fail ("TypeError: immutable") with @hono/node-server > 1.13.x
// (Portkey-AI/gateway issue 1389); pin the last version that works.
const PORTKEY_HONO_NODE_SERVER = '1.13.8';

/** Upstream models every OpenAI-shaped target is asked for (simulator options after `+`). */
export const UPSTREAM = { stream: 'sim-small+tokens=64+interval=20', short: 'sim-small+tokens=8+interval=20', fast: 'sim-small+tokens=8+interval=0' };
/** The agent scenario's looping model: after tool results it calls the same tools again (sim/README.md). */
export const UPSTREAM_TOOL_LOOP = `${UPSTREAM.fast}+tool_loop`;
/** The worker's MAX_TOOL_STEPS in the bench: a looping turn makes 3 tool steps, then answers. */
export const MAX_TOOL_STEPS = 4;
export const STREAM_TOKENS = 64;

// ---------------------------------------------------------------------------------------
// Processes: groups we spawn, /proc readings.

const live = new Set(); // handles still running, stopped by stopAll() and on exit
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function spawnGroup(cmd, args, { env = {}, cwd = ROOT } = {}) {
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  const collect = (c) => { output = (output + c).slice(-65536); };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  let failed = false;
  const exited = new Promise((r) => {
    child.once('exit', (code, signal) => r({ code, signal }));
    // A command that cannot start (missing binary) ends the same way, with the reason in the output.
    child.once('error', (err) => { failed = true; collect(`${err.message}\n`); r({ code: 127, signal: null }); });
  });
  const handle = {
    pid: child.pid,
    child,
    exited,
    output: () => output,
    running: () => !failed && child.exitCode === null && child.signalCode === null,
    async stop() {
      live.delete(handle);
      if (!handle.running()) return;
      try { process.kill(-child.pid, 'SIGTERM'); } catch { return; }
      const t = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch {} }, 5000);
      await exited;
      clearTimeout(t);
      try { process.kill(-child.pid, 'SIGKILL'); } catch {} // leftovers of the group
    },
    killNow() { try { process.kill(-child.pid, 'SIGKILL'); } catch {} },
  };
  live.add(handle);
  return handle;
}

/** Runs a command to completion in its own process group, killed after `timeoutMs`. */
export async function runBounded(cmd, args, { timeoutMs, env, cwd } = {}) {
  const h = spawnGroup(cmd, args, { env, cwd });
  const timer = setTimeout(() => h.killNow(), timeoutMs);
  const { code, signal } = await h.exited;
  clearTimeout(timer);
  live.delete(h);
  return { ok: code === 0, code, signal, timedOut: signal === 'SIGKILL', output: h.output() };
}

/** Registers something to stop at the end: { stop(), killNow() }. */
function track(stop, killNow = () => {}) {
  const h = { stop: async () => { live.delete(h); await stop(); }, killNow };
  live.add(h);
  return h.stop;
}

/** Stops everything still running; also called on failure and signals. */
export async function stopAll() {
  await Promise.allSettled([...live].map((h) => h.stop()));
}
process.on('exit', () => { for (const h of live) h.killNow(); });

function stat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { comm: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')), ppid: Number(rest[1]), utime: Number(rest[11]), stime: Number(rest[12]) };
  } catch { return null; }
}

function allPids() {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number);
}

/** Busy CPU time of the whole machine since boot (all cores, idle and iowait excluded), in ms. */
export function machineBusyMs() {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return ((user + nice + system + irq + softirq + steal) * 1000) / CLK_TCK;
}

/** CPU time of this process plus its exited, reaped descendants, in ms. */
export function ownCpuMs() {
  const s = readFileSync('/proc/self/stat', 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ').map(Number);
  return ((f[11] + f[12] + f[13] + f[14]) * 1000) / CLK_TCK;
}

/** `pid` and all its descendants. */
export function processTree(pid) {
  const parents = new Map(allPids().map((p) => [p, stat(p)?.ppid]));
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [p, pp] of parents) if (pp === tree[i]) tree.push(p);
  return tree;
}

/** User+system CPU time of `pids`, in ms. */
export function cpuMs(pids) {
  return pids.reduce((sum, p) => { const s = stat(p); return s ? sum + ((s.utime + s.stime) * 1000) / CLK_TCK : sum; }, 0);
}

/** Peak resident memory (VmHWM) of `pids` added up, in KiB. */
export function peakRssKb(pids) {
  return pids.reduce((sum, p) => {
    try { return sum + Number(readFileSync(`/proc/${p}/status`, 'utf8').match(/VmHWM:\s+(\d+)/)[1]); } catch { return sum; }
  }, 0);
}

/** latencyRun's `around` hook: `cpuPerRequestMs` = CPU of `pids` over the measured requests ÷ their count. */
export function cpuAround(pids) {
  return { before: () => cpuMs(pids), after: (before, count) => ({ cpuPerRequestMs: (cpuMs(pids) - before) / count }) };
}

/**
 * CPU per extra chunk: the CPU of `streams` long streams at once minus that of as many short
 * ones, over the extra chunks received, so per-request work (auth, limits, records) cancels
 * out and what is left is what each chunk costs. Measured `repeats` times after a warm-up;
 * the median is the figure (process CPU on a shared machine is noisy). `makeSpec(which)`
 * gives a request for 'stream' (`longTokens` chunks) or 'short' (`shortTokens`). Null when
 * the target has no processes of its own or a stream did not finish within 20 s.
 */
export async function marginalChunkCpu(target, makeSpec, { streams, repeats, longTokens, shortTokens }) {
  const pids = target.pids();
  if (!pids.length) return null;
  const run = async (which, expectedTokens) => {
    const before = cpuMs(pids);
    const r = await concurrentStreams(target.url, () => makeSpec(which), { n: streams, expectedTokens, timeoutMs: 20_000 });
    return { cpu: cpuMs(pids) - before, tokens: r.receivedTokens, complete: r.completed === r.streams };
  };
  await run('short', shortTokens); // warm-up
  const samples = [];
  for (let i = 0; i < repeats; i++) {
    const long = await run('stream', longTokens);
    const short = await run('short', shortTokens);
    if (!long.complete || !short.complete || long.tokens <= short.tokens) return null;
    samples.push((long.cpu - short.cpu) / (long.tokens - short.tokens));
  }
  return median(samples);
}

/** The median of the values that are not null (the upper one of an even count); null when none are. */
export function median(values) {
  const sorted = values.filter((v) => v !== null).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : null;
}

async function waitFor(check, { timeoutMs, what, proc }) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && !proc.running()) throw new Error(`${what} exited early: ${lastLine(proc.output())}`);
    try { if (await check()) return; } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not ready after ${timeoutMs / 1000} s`);
}

/** The last non-empty line of some output, without machine paths. */
export function lastLine(text) {
  const line = String(text).trim().split('\n').filter((l) => l.trim()).at(-1) ?? '';
  return scrub(line).slice(0, 200);
}

/** Removes machine paths from text that goes into reports. */
export function scrub(text) {
  return String(text).split(ROOT).join('.').split(os.homedir()).join('~').split(os.tmpdir()).join('$TMP');
}

const httpOk = async (url) => (await fetch(url)).ok;

// ---------------------------------------------------------------------------------------
// The simulator.

export async function startSimulator() {
  const proc = spawnGroup(process.execPath, [path.join(ROOT, 'sim/server.mjs'), '--host', '127.0.0.1', '--port', '0']);
  let url;
  await waitFor(() => (url = proc.output().match(/sim listening on (http:\/\/\S+)/)?.[1]), { timeoutMs: 15000, what: 'simulator', proc });
  return { id: 'sim', label: 'simulator direct (floor)', url, pids: () => processTree(proc.pid), stop: () => proc.stop() };
}

// ---------------------------------------------------------------------------------------
// Bare workerd through Miniflare: edgechat and the JavaScript pass-through worker.

function childWorkerds() {
  return allPids().filter((p) => { const s = stat(p); return s?.ppid === process.pid && s.comm === 'workerd'; });
}

/** `workers`: Miniflare 5 worker configs, each given wrangler.toml's compatibility date and flags. */
async function startMiniflare({ workers }) {
  const before = new Set(childWorkerds());
  let stderr = '';
  const mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    workers: workers.map((config) => ({ config: { compatibilityDate: COMPAT_DATE, compatibilityFlags: COMPAT_FLAGS, ...config } })),
    // Worker logs (one JSON line per request for edgechat) are produced but not printed;
    // warnings and errors are kept for the report.
    handleStructuredLogs({ level, message }) {
      if (level === 'error' || level === 'warn') stderr = `${stderr}${message}\n`.slice(-8192);
    },
  });
  const url = (await mf.ready).href.replace(/\/$/, '');
  const pids = childWorkerds().filter((p) => !before.has(p));
  const stop = track(() => mf.dispose(), () => pids.forEach((p) => { try { process.kill(p, 'SIGKILL'); } catch {} }));
  return { mf, url, pids, stderr: () => stderr, stop };
}

/** The headers that name an access token's session and user to bench/floor-worker.js. */
export function floorHeaders(token) {
  const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
  return { 'x-floor-session': claims.sid, 'x-floor-user': claims.sub };
}

/**
 * Where bench/reference-worker.js no longer answers `GET /health` as edgechat does: the body
 * and every header but the request id differ in nothing (the security headers are copied
 * there from crates/core/src/security.rs). An empty list when they agree.
 */
export async function referenceMismatches(edgechat) {
  const get = async (url) => {
    const r = await fetch(`${url}/health`);
    const headers = Object.fromEntries([...r.headers].filter(([name]) => !['x-request-id', 'date'].includes(name)));
    return { body: await r.text(), headers };
  };
  const [mine, theirs] = [await get(edgechat.url), await get(edgechat.reference.url)];
  const out = [];
  if (mine.body !== theirs.body) out.push(`body ${JSON.stringify(theirs.body)} instead of ${JSON.stringify(mine.body)}`);
  for (const name of new Set([...Object.keys(mine.headers), ...Object.keys(theirs.headers)])) {
    if (mine.headers[name] !== theirs.headers[name]) out.push(`header ${name}: ${JSON.stringify(theirs.headers[name] ?? null)} instead of ${JSON.stringify(mine.headers[name] ?? null)}`);
  }
  return out;
}

/**
 * Where bench/reference-worker.js no longer streams as edgechat does: a short streamed call
 * (as `token`'s user) to each, for a client that did not ask for usage and for one that did,
 * must give the same bytes but for the completion's id and time (the upstream's), and settle
 * the same tokens on the user's day (the upstream's usage, asked for in both cases, not an
 * estimate: the prompt is long in characters and short in words, so the two differ). An
 * empty list when they agree.
 */
export async function referenceStreamMismatches(edgechat, token) {
  const authorization = `Bearer ${token}`;
  const post = async (url, body) => {
    const r = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization }, body: JSON.stringify(body) });
    return `${r.status} ${(await r.text()).replace(/"id":"[^"]*"/g, '"id":_').replace(/"created":\d+/g, '"created":_')}`;
  };
  const tokensUsed = async () => (await (await fetch(`${edgechat.url}/api/v1/usage`, { headers: { authorization } })).json()).today.tokens_used;
  // What one call adds to the day once it has settled (in waitUntil, after the response).
  const settled = async (url, body) => {
    const before = await tokensUsed();
    const answer = await post(url, body);
    for (let i = 0; i < 40; i++) {
      const added = (await tokensUsed()) - before;
      if (added < 500) return { answer, added }; // the reservation (over 1,000 tokens) was replaced
      await new Promise((r) => setTimeout(r, 50));
    }
    return { answer, added: null };
  };
  const out = [];
  const messages = [{ role: 'user', content: 'x'.repeat(400) }];
  for (const [what, options] of [['without include_usage', {}], ['with include_usage', { stream_options: { include_usage: true } }]]) {
    const body = { model: 'bench-short', messages, stream: true, ...options };
    const [mine, theirs] = [await settled(edgechat.url, body), await settled(edgechat.reference.url, body)];
    if (mine.answer !== theirs.answer) out.push(`a stream ${what}: ${JSON.stringify(theirs.answer.slice(0, 160))} instead of ${JSON.stringify(mine.answer.slice(0, 160))}`);
    if (mine.added === null || mine.added !== theirs.added) out.push(`a stream ${what} settled ${theirs.added} tokens instead of ${mine.added}`);
  }
  return out;
}

/**
 * Statements of bench/floor-worker.js that differ from (or are missing in) src/store/: the
 * floor and the reference must make exactly edgechat's calls. Rust string constants are read
 * with their line continuations (a backslash-newline and the next line's indent vanish), and
 * `path_query!(leaf, depth)` constants with the macro's text around them; a name may be used in
 * several store modules (`LIST_AFTER`), so a statement matches any constant of its name.
 */
export async function floorSqlMismatches() {
  const { SQL } = await import('./floor-worker.js');
  const dir = path.join(ROOT, 'src/store');
  const literal = '"((?:[^"\\\\]|\\\\.)*)"';
  const unescape = (text) => text.replace(/\\\n\s*/g, '').replace(/\\"/g, '"');
  const rust = new Map();
  const add = (name, sql) => (rust.get(name) ?? rust.set(name, new Set()).get(name)).add(sql);
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.rs'))) {
    const source = readFileSync(path.join(dir, f), 'utf8');
    for (const m of source.matchAll(new RegExp(`const (\\w+): &str =\\s*${literal};`, 'gs'))) add(m[1], unescape(m[2]));
    // The macro's three pieces of text around its two arguments.
    const macro = source.match(new RegExp(`macro_rules! path_query[\\s\\S]*?concat!\\(\\s*${literal},\\s*\\$leaf,\\s*${literal},\\s*\\$depth,\\s*${literal}`, 's'));
    if (!macro) continue;
    const [, before, between, after] = macro.map(unescape);
    for (const m of source.matchAll(new RegExp(`const (\\w+): &str = path_query!\\(\\s*${literal},\\s*${literal},?\\s*\\);`, 'gs'))) {
      add(m[1], `${before}${unescape(m[2])}${between}${unescape(m[3])}${after}`);
    }
  }
  return Object.entries(SQL).filter(([name, sql]) => !rust.get(name)?.has(sql)).map(([name]) => name);
}

/** edgechat's version, as its `GET /health` reports it (the core crate's version). */
function crateVersion() {
  return readFileSync(path.join(ROOT, 'crates/core/Cargo.toml'), 'utf8').match(/^version = "([^"]+)"/m)[1];
}

/** The worker's vars; `simUrl` is the simulator every provider points at. */
export function edgechatVars(simUrl) {
  return {
    JWT_SECRET: 'bench-only-secret-0123456789abcdef0123456789abcdef',
    OPENAI_BASE_URL: `${simUrl}/v1`,
    ANTHROPIC_BASE_URL: simUrl,
    MODEL_ROUTES: JSON.stringify({
      default: 'bench',
      models: {
        bench: { provider: 'openai', upstream: UPSTREAM.stream },
        'bench-short': { provider: 'openai', upstream: UPSTREAM.short },
        'bench-fast': { provider: 'openai', upstream: UPSTREAM.fast },
        'bench-tool-loop': { provider: 'openai', upstream: UPSTREAM_TOOL_LOOP },
      },
    }),
    // Plan limits out of the way (20 requests/minute and 2 streams at once on "free" by
    // default): the counting still happens, only the caps are raised.
    PLANS: JSON.stringify({ free: { requests_per_minute: 100_000_000, tokens_per_day: 1e15, concurrent_streams: 100_000, models: ['*'] } }),
    PASSWORD_HASH_ITERATIONS: '1000', // registration speed only; no login is measured
    LOGIN_MAX_FAILURES_PER_IP: '100000',
    REGISTER_MAX_PER_IP: '100000', // the chat turns' users all register from 127.0.0.1
    ACCESS_TOKEN_TTL_SECONDS: '3600',
    MAX_TOOL_STEPS: String(MAX_TOOL_STEPS),
  };
}

/**
 * edgechat in bare workerd, and beside it in the same process the JavaScript reference
 * (bench/reference-worker.js, answering under /reference/) and the storage floor
 * (bench/floor-worker.js, under /floor/), bound to the same D1 database and KV namespace.
 * Each chat worker has its SQLite-backed Durable Object namespace `TURNS` (edgechat's
 * `UserTurns`, as wrangler.toml declares it; the reference's `RefTurns`). `build` is the
 * directory of the built worker (another build, for an A/B run).
 */
export async function startEdgechat(simUrl, { build = 'build' } = {}) {
  const vars = edgechatVars(simUrl);
  const storage = { d1: { DB: 'bench-db' }, kv: { CACHE: 'bench-kv' } };
  const refVars = { JWT_SECRET: vars.JWT_SECRET, MODEL_ROUTES: vars.MODEL_ROUTES, OPENAI_BASE_URL: vars.OPENAI_BASE_URL, VERSION: crateVersion() };
  const { mf, url, pids, stderr, stop } = await startMiniflare({
    workers: [
      {
        name: 'edgechat', manifest: buildManifest(path.join(ROOT, build)),
        env: workerEnv({ ...storage, vars, objects: OBJECTS, worker: 'edgechat' }), exports: objectExports(Object.values(OBJECTS)),
      },
      {
        name: 'reference',
        // It imports edgechat's own relay (src/js/relay.js) and body reader (src/js/gather.js).
        manifest: workerManifest(ROOT, 'bench/reference-worker.js', ['bench/reference-turns.js', 'bench/floor-worker.js', 'src/js/relay.js', 'src/js/gather.js']),
        env: workerEnv({ ...storage, vars: refVars, objects: { TURNS: 'RefTurns' }, worker: 'reference' }), exports: objectExports(['RefTurns']),
        triggers: [{ type: 'fetch', pattern: '*/reference/*' }],
      },
      {
        name: 'floor', manifest: workerManifest(BENCH, 'floor-worker.js'), env: workerEnv({ ...storage, vars: { UPSTREAM: simUrl } }),
        triggers: [{ type: 'fetch', pattern: '*/floor/*' }],
      },
    ],
  });
  try {
    await applyMigrations(await mf.getD1Database('DB'));
  } catch (err) {
    await stop();
    throw err;
  }
  const edgechat = { id: 'edgechat', label: 'edgechat (Rust/wasm, bare workerd)', url, pids: () => pids, stderr, stop };
  edgechat.reference = { id: 'reference', label: 'the same request in plain JS (bench/reference-worker.js, same workerd, D1 and KV)', url: `${url}/reference`, pids: () => pids };
  edgechat.floor = { id: 'floor', label: 'the storage floor: only the same D1, KV and upstream calls (bench/floor-worker.js, same workerd, D1 and KV)', url: `${url}/floor`, pids: () => pids };
  return edgechat;
}

export async function startJsWorker(simUrl) {
  const { url, pids, stderr, stop } = await startMiniflare({
    workers: [{ name: 'js', manifest: workerManifest(BENCH, 'passthrough-worker.js'), env: workerEnv({ vars: { UPSTREAM: simUrl } }) }],
  });
  return { id: 'js', label: 'JS pass-through worker (bare workerd)', url, pids: () => pids, stderr, stop };
}

/** edgechat under `wrangler dev`, fresh local state (the tests' helper). */
export async function startWranglerDev(simUrl) {
  const w = await startWorker({ vars: edgechatVars(simUrl) });
  const stop = track(() => w.stop());
  return { id: 'wrangler', label: 'edgechat under wrangler dev (adds its own proxy)', url: w.url, pids: () => [], stop };
}

// ---------------------------------------------------------------------------------------
// Peers: installed on demand under bench/ (gitignored) and cached between runs.

/** Creates bench/.venv with litellm[proxy] unless it is there; { ok, reason }. */
export async function ensureLiteLLM({ timeoutMs = 240_000 } = {}) {
  const venv = path.join(BENCH, '.venv');
  const stamp = path.join(venv, `.bench-litellm-${LITELLM_VERSION}`);
  const whole = ['bin/python3', 'bin/litellm'].every((f) => existsSync(path.join(venv, f)));
  if (existsSync(stamp) && whole) return { ok: true, installed: false };
  const started = Date.now();
  // A venv without its stamp, its interpreter or its litellm script is half-made: start again.
  rmSync(venv, { recursive: true, force: true });
  {
    const r = await runBounded('python3', ['-m', 'venv', venv], { timeoutMs: 60_000 });
    if (!r.ok) return { ok: false, reason: `python3 -m venv failed: ${lastLine(r.output)}` };
  }
  const left = timeoutMs - (Date.now() - started);
  const r = await runBounded(path.join(venv, 'bin/pip'), ['install', '-q', '--disable-pip-version-check', `litellm[proxy]==${LITELLM_VERSION}`], { timeoutMs: left });
  if (!r.ok) return { ok: false, reason: r.timedOut ? `pip install did not finish within ${timeoutMs / 1000} s` : `pip install failed: ${lastLine(r.output)}` };
  writeFileSync(stamp, '');
  return { ok: true, installed: true };
}

export async function startLiteLLM(simUrl) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edgechat-bench-litellm-'));
  const entry = (name, upstream) => [
    `  - model_name: ${name}`,
    '    litellm_params:',
    `      model: openai/${upstream}`,
    `      api_base: ${simUrl}/v1`,
    '      api_key: sk-bench-dummy',
  ].join('\n');
  writeFileSync(path.join(dir, 'cfg.yaml'), ['model_list:', entry('bench', UPSTREAM.stream), entry('bench-fast', UPSTREAM.fast), 'litellm_settings:', '  telemetry: false', ''].join('\n'));
  const port = await freePort();
  const proc = spawnGroup(path.join(BENCH, '.venv/bin/litellm'), ['--config', path.join(dir, 'cfg.yaml'), '--host', '127.0.0.1', '--port', String(port), '--telemetry', 'False'], {
    cwd: dir,
    env: { LITELLM_LOCAL_MODEL_COST_MAP: 'True', NO_DOCS: 'True' },
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(() => httpOk(`${url}/health/liveliness`), { timeoutMs: 90_000, what: 'litellm', proc });
  } catch (err) {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    id: 'litellm',
    label: `LiteLLM proxy ${LITELLM_VERSION} (Python)`,
    url,
    models: { stream: 'bench', fast: 'bench-fast' },
    headers: { authorization: 'Bearer sk-bench-dummy' },
    pids: () => processTree(proc.pid),
    async stop() { await proc.stop(); rmSync(dir, { recursive: true, force: true }); },
  };
}

/** Installs @portkey-ai/gateway into bench/.peers/portkey unless it is there; { ok, reason }. */
export async function ensurePortkey({ timeoutMs = 180_000 } = {}) {
  const dir = path.join(BENCH, '.peers/portkey');
  const pkg = path.join(dir, 'node_modules/@portkey-ai/gateway/package.json');
  const want = { name: 'bench-peer-portkey', private: true, overrides: { '@hono/node-server': PORTKEY_HONO_NODE_SERVER } };
  try {
    const have = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    if (JSON.parse(readFileSync(pkg, 'utf8')).version === PORTKEY_VERSION && JSON.stringify(have.overrides) === JSON.stringify(want.overrides)) return { ok: true, installed: false };
  } catch {}
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify(want, null, 2) + '\n');
  const r = await runBounded('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--save-exact', `@portkey-ai/gateway@${PORTKEY_VERSION}`], { cwd: dir, timeoutMs });
  if (!r.ok) return { ok: false, reason: r.timedOut ? `npm install did not finish within ${timeoutMs / 1000} s` : `npm install failed: ${lastLine(r.output)}` };
  return { ok: true, installed: true };
}

export async function startPortkey(simUrl) {
  const port = await freePort();
  const script = path.join(BENCH, '.peers/portkey/node_modules/@portkey-ai/gateway/build/start-server.js');
  // It has no host option and listens on every interface; all load goes to 127.0.0.1.
  const proc = spawnGroup(process.execPath, [script, `--port=${port}`, '--headless']);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(() => httpOk(`${url}/`), { timeoutMs: 30_000, what: 'portkey', proc });
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return {
    id: 'portkey',
    label: `Portkey gateway ${PORTKEY_VERSION} (Node)`,
    url,
    headers: { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${simUrl}/v1`, authorization: 'Bearer sk-bench-dummy' },
    pids: () => processTree(proc.pid),
    stop: () => proc.stop(),
  };
}
