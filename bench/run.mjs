// bench/run.mjs — `npm run bench`: sets up and builds, starts edgechat and its baselines, runs every scenario in one bounded run (~11 min) and writes the reports.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { api, latencyRun, rateSteps, summarize } from './load.mjs';
import { concurrentStreams, resumeOnce, sequentialStreams } from './sse-client.mjs';
import { renderAgentSection, writeReports } from './report.mjs';
import { measureAgentTurns } from './agent.mjs';
import * as T from './targets.mjs';

const ROOT = T.ROOT;
// `--only agent` or `--only chat`: only the agent-turn scenario or only the chat turn's (about
// a minute or two each), printed, not written to docs/.
const ONLY = (() => {
  const i = process.argv.indexOf('--only');
  const v = i >= 0 ? process.argv[i + 1] : process.argv.find((a) => a.startsWith('--only='))?.slice(7);
  if (v !== undefined && v !== 'agent' && v !== 'chat') throw new Error(`--only takes one scenario: agent or chat (got ${v})`);
  return v ?? null;
})();
const started = performance.now();
const elapsedS = () => (performance.now() - started) / 1000;
const log = (msg) => console.log(`[bench ${elapsedS().toFixed(0).padStart(3)} s] ${msg}`);

// Bounds, counted from the end of setup, build and the peers' install (seconds when nothing
// changed; the first run on a fresh machine installs the Rust tools and the peers first):
// optional phases are skipped past SOFT_LIMIT; at HARD_LIMIT everything is stopped.
const SOFT_LIMIT_S = 10.5 * 60;
const HARD_LIMIT_MS = 13 * 60_000;
let measuringFrom = 0;
const measuringS = () => (performance.now() - measuringFrom) / 1000;
const METHOD = {
  steps: [1, 2, 4, 8, 16, 32],
  stepSeconds: 5,
  p99LimitMs: 10,
  sequentialStreams: 8,
  concurrentStreams: 256,
  concurrentTimeoutSeconds: 30,
  // Marginal CPU per chunk: this many 64-chunk streams at once against as many 8-chunk ones.
  // CPU per request for the head-to-head pairs: alternating rounds, median.
  cpuRounds: 7,
  // The gateway call's rounds differ most from one another (upstream, D1 writes, waitUntil).
  gatewayCpuRounds: 11,
  cpuRoundRequests: 300,
  marginalStreams: 64,
  marginalRepeats: 3,
  shortStreamTokens: 8,
  // Chat turns are spread over this many users (edgechat keeps one turn object per user),
  // each turn in a fresh conversation offering no tools.
  chatUsers: 64,
  // Reconnects: turns left after 3 deltas and resumed with Last-Event-ID, per target.
  resumeTurns: 50,
  resumeWarmup: 3,
};
const PROMPT = [{ role: 'user', content: 'Tell me something about rivers.' }];

/** Stops everything if the run goes over HARD_LIMIT_MS. */
function armWatchdog() {
  setTimeout(async () => {
    console.error(`bench: still running after ${HARD_LIMIT_MS / 60000} minutes: stopping everything`);
    await T.stopAll();
    process.exit(1);
  }, HARD_LIMIT_MS).unref();
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, async () => { await T.stopAll(); process.exit(130); });

function sh(script) {
  const r = spawnSync('bash', [script], { cwd: ROOT, stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`bash ${script} failed (exit ${r.status})`);
}

function machine() {
  const read = (f) => readFileSync(f, 'utf8');
  const pkg = (name) => JSON.parse(read(path.join(ROOT, 'node_modules', name, 'package.json'))).version;
  let python = 'not found';
  try { python = execFileSync('python3', ['--version']).toString().trim().replace(/^Python /, ''); } catch {}
  return {
    nproc: Number(execFileSync('nproc').toString().trim()),
    cpuModel: read('/proc/cpuinfo').match(/^model name\s*:\s*(.+)$/m)?.[1] ?? 'unknown',
    memoryGiB: Number(read('/proc/meminfo').match(/MemTotal:\s+(\d+)/)[1]) / 1024 / 1024,
    node: process.version,
    workerd: execFileSync(path.join(ROOT, 'node_modules/.bin/workerd'), ['--version']).toString().trim(),
    workerdPackage: pkg('workerd'),
    miniflare: pkg('miniflare'),
    wrangler: pkg('wrangler'),
    python,
    os: `${os.type()} ${os.release()}`,
  };
}

/** The edgechat source measured: commit, and whether src/crates/migrations differ from it. */
function revision() {
  const git = (...args) => execFileSync('git', args, { cwd: ROOT }).toString().trim();
  try {
    return { commit: git('rev-parse', '--short', 'HEAD'), uncommittedChanges: git('status', '--porcelain', '--', 'src', 'crates', 'migrations') !== '' };
  } catch { return { commit: 'unknown', uncommittedChanges: false }; }
}

function wasmSize() {
  const file = path.join(ROOT, 'build/index_bg.wasm');
  const rawBytes = readFileSync(file).length;
  const gzipBytes = execFileSync('gzip', ['-9', '-c', file], { maxBuffer: 64 << 20 }).length;
  return { rawBytes, gzipBytes, budgetGzipBytes: 350 * 1024 };
}

/** One-connection latency (with CPU of the target's processes), then the load steps. */
async function measureRequests(target, spec, { n = 2000, warmup = 200, rate = true } = {}) {
  const pids = target.pids();
  const around = pids.length ? T.cpuAround(pids) : undefined;
  const { cpuPerRequestMs = null, ...latency } = await latencyRun(target.url, spec, { n, warmup, around });
  if (latency.errors) log(`  ${target.id}: ${latency.errors} errors, first: ${latency.firstError}`);
  if (latency.count === 0) return { error: latency.firstError, cpuPerRequestMs };
  const out = { latency, cpuPerRequestMs };
  if (rate && latency.errors === 0) {
    out.rate = await rateSteps(target.url, spec, { steps: METHOD.steps, durationMs: METHOD.stepSeconds * 1000, p99LimitMs: METHOD.p99LimitMs });
  }
  const best = out.rate?.best;
  log(`  ${target.id}: p50 ${latency.p50?.toFixed(2)} ms, p99 ${latency.p99?.toFixed(2)} ms` +
    (cpuPerRequestMs !== null ? `, CPU ${cpuPerRequestMs.toFixed(3)} ms/req` : '') +
    (out.rate ? `, best ${best ? `${best.rps.toFixed(0)} req/s at c=${best.concurrency}` : 'none under the p99 limit'}` : ''));
  return out;
}

/**
 * CPU per request of targets compared with each other, measured in alternating rounds
 * (`cpuRounds` of `n` requests each, `cpuRoundRequests` by default) so that the machine's
 * drift hits both alike; each target's figure becomes the median of its rounds, and its
 * rounds are kept in order (null for a round with errors) so that a difference between two
 * targets can be taken round by round.
 * `beforeRound` (optional) runs before each round.
 */
async function interleavedCpu(pairs, { n = METHOD.cpuRoundRequests, warmup = 20, beforeRound, rounds = METHOD.cpuRounds } = {}) {
  const samples = pairs.map(() => []);
  for (let round = 0; round < rounds; round++) {
    await beforeRound?.();
    for (const [i, [target, spec]] of pairs.entries()) {
      const around = T.cpuAround(target.pids());
      const r = await latencyRun(target.url, spec, { n, warmup, around });
      samples[i].push(r.errors === 0 ? r.cpuPerRequestMs : null);
    }
  }
  for (const [i, [, , result]] of pairs.entries()) {
    const middle = T.median(samples[i]);
    if (result && middle !== null) {
      result.cpuPerRequestMs = middle;
      result.cpuRoundsMs = samples[i];
    }
  }
  log(`  CPU per request, median of ${rounds} alternating rounds: ${pairs.map(([t, , r]) => `${t.id} ${r?.cpuPerRequestMs?.toFixed(3)} ms`).join(', ')}`);
}

/**
 * CPU per extra chunk of targets compared with each other: `marginalRepeats` alternating
 * rounds of one marginal measurement each; each result gets `pairedExtraChunkRoundsMs` (in
 * order, null for an incomplete round) and their median, `pairedExtraChunkMs`.
 * `specFor(target, which)` gives a request (default: a streamed `/v1/chat/completions`).
 */
async function interleavedChunkCpu(pairs, specFor = openaiSpec) {
  const samples = pairs.map(() => []);
  for (let round = 0; round < METHOD.marginalRepeats; round++) {
    for (const [i, [target]] of pairs.entries()) {
      samples[i].push(await T.marginalChunkCpu(target, (which) => specFor(target, which), {
        streams: METHOD.marginalStreams, repeats: 1, longTokens: T.STREAM_TOKENS, shortTokens: METHOD.shortStreamTokens,
      }));
    }
  }
  for (const [i, [, result]] of pairs.entries()) {
    result.pairedExtraChunkRoundsMs = samples[i];
    result.pairedExtraChunkMs = T.median(samples[i]);
  }
  log(`  CPU per extra chunk, median of ${METHOD.marginalRepeats} alternating rounds: ${pairs.map(([t, r]) => `${t.id} ${r.pairedExtraChunkMs?.toFixed(4)} ms`).join(', ')}`);
}

/**
 * Sequential streams on one connection, then 256 at once with the CPU they cost, then the
 * CPU per extra chunk. `makeSpec(which)` gives a request for 'stream' (64 chunks) or 'short'.
 * `sequential: false` leaves out the first part, `marginal: false` the last.
 */
async function measureStreams(target, makeSpecFor, { sequential = true, marginal = true } = {}) {
  const makeSpec = () => makeSpecFor('stream');
  const one = sequential ? await sequentialStreams(target.url, makeSpec, { count: METHOD.sequentialStreams, expectedTokens: T.STREAM_TOKENS }) : null;
  const pids = target.pids();
  const before = T.cpuMs(pids);
  const many = await concurrentStreams(target.url, makeSpec, {
    n: METHOD.concurrentStreams, expectedTokens: T.STREAM_TOKENS, timeoutMs: METHOD.concurrentTimeoutSeconds * 1000,
  });
  const cpu = T.cpuMs(pids) - before;
  many.cpuPerStreamMs = pids.length ? cpu / many.streams : null;
  many.cpuPerChunkMs = pids.length && many.receivedTokens ? cpu / many.receivedTokens : null;
  log(`  ${target.id}: ${one ? `TTFT p50 ${one.ttft.p50?.toFixed(1)} ms, gap p99 ${one.gap.p99?.toFixed(1)} ms; ` : ''}` +
    `${many.streams} streams: ${many.completed} completed, ${many.lostTokens} tokens lost, TTFT p99 ${many.ttft.p99?.toFixed(0)} ms, last token p99 ${many.lastToken.p99?.toFixed(0)} ms, gap p99 ${many.gap.p99?.toFixed(1)} ms` +
    (many.cpuPerChunkMs !== null ? `, CPU ${many.cpuPerChunkMs.toFixed(4)} ms/chunk` : '') + (many.firstError ? `; first error: ${many.firstError}` : ''));
  await new Promise((r) => setTimeout(r, 1000)); // let closing connections and D1 writes settle
  if (!marginal) return { one, many };
  const cpuPerExtraChunkMs = await T.marginalChunkCpu(target, makeSpecFor, {
    streams: METHOD.marginalStreams, repeats: METHOD.marginalRepeats, longTokens: T.STREAM_TOKENS, shortTokens: METHOD.shortStreamTokens,
  });
  if (cpuPerExtraChunkMs !== null) log(`  ${target.id}: CPU per extra chunk ${cpuPerExtraChunkMs.toFixed(4)} ms`);
  return { one, many, cpuPerExtraChunkMs };
}

// which: 'fast' (8 tokens at once), 'stream' (64 tokens 20 ms apart) or 'short' (8 tokens 20 ms apart).
const openaiSpec = (target, which, extraHeaders = {}) => ({
  method: 'POST',
  path: '/v1/chat/completions',
  headers: { ...(target.headers ?? {}), ...extraHeaders },
  body: { model: target.models?.[which] ?? T.UPSTREAM[which], messages: PROMPT, ...(which === 'fast' ? {} : { stream: true }) },
  kind: 'openai',
  check: (res) => res.status === 200 && res.headers['x-edgechat-cache'] !== 'hit',
});

async function seedUser(url, tag) {
  const reg = await api(url, 'POST', '/api/v1/auth/register', { json: { email: `${tag}-${Date.now()}@bench.example`, password: 'correct horse battery staple' } });
  if (reg.status !== 201) throw new Error(`register failed: HTTP ${reg.status} ${reg.text.slice(0, 200)}`);
  return reg.json.access_token;
}

async function createConversations(url, token, count) {
  const ids = [];
  for (let i = 0; i < count; i++) {
    const c = await api(url, 'POST', '/api/v1/conversations', { token, json: { title: `bench conversation ${i}` } });
    if (c.status !== 201) throw new Error(`create conversation failed: HTTP ${c.status} ${c.text.slice(0, 200)}`);
    ids.push(c.json.conversation_id);
  }
  return ids;
}

/**
 * Chat turns to run: `count` fresh conversations (no tools offered) spread over `tokens`
 * (users), made 8 at a time. Returns next(): the next one, { token, conversationId }.
 */
async function freshTurns(url, tokens, count) {
  const turns = new Array(count);
  let made = 0;
  const maker = async () => {
    for (let i = made++; i < count; i = made++) {
      const token = tokens[i % tokens.length];
      const c = await api(url, 'POST', '/api/v1/conversations', { token, json: { title: `bench turn ${i}`, tools: [] } });
      if (c.status !== 201) throw new Error(`create conversation failed: HTTP ${c.status} ${c.text.slice(0, 200)}`);
      turns[i] = { token, conversationId: c.json.conversation_id };
    }
  };
  await Promise.all(Array.from({ length: 8 }, maker));
  let next = 0;
  return () => {
    if (next === count) throw new Error(`more than the ${count} chat turns prepared`);
    return turns[next++];
  };
}

/**
 * The chat turn, edgechat against the same turn in plain JS: streams (one connection, then 256
 * at once), CPU per extra chunk in alternating rounds, then reconnects (a turn left after 3
 * deltas and resumed with Last-Event-ID). Into results.scenarios.chatTurn and results.resume.
 */
async function measureChatTurns(edgechat, results) {
  log(`scenario: chat turn, SSE (64 chunks 20 ms apart), edgechat and the same turn in plain JS (a fresh conversation per turn, ${METHOD.chatUsers} users)`);
  const chatUsers = [];
  for (let i = 0; i < METHOD.chatUsers; i++) chatUsers.push(await seedUser(edgechat.url, `chat${i}`));
  const perMarginal = METHOD.marginalStreams * 3; // a warm-up, then the long and the short streams
  const nextTurn = await freshTurns(edgechat.url, chatUsers, 1 + METHOD.sequentialStreams + 2 * METHOD.concurrentStreams +
    2 * METHOD.marginalRepeats * perMarginal + 2 * (METHOD.resumeWarmup + METHOD.resumeTurns));
  // which: 'stream' (64 chunks) or 'short' (8); the reference answers the same route under /reference.
  const turnSpec = (target, which) => {
    const { token, conversationId } = nextTurn();
    return { path: `/api/v1/conversations/${conversationId}/messages`, headers: { authorization: `Bearer ${token}` }, body: { content: PROMPT[0].content, model: edgechat.models[which] }, kind: 'edgechat' };
  };
  const turn = results.scenarios.chatTurn;
  turn.edgechat = await measureStreams(edgechat, (which) => turnSpec(edgechat, which), { marginal: false });
  turn.reference = await measureStreams(edgechat.reference, (which) => turnSpec(edgechat.reference, which), { sequential: false, marginal: false });
  // The budget's pair, in alternating rounds; these figures also fill each one's own row.
  await interleavedChunkCpu([[edgechat, turn.edgechat], [edgechat.reference, turn.reference]], turnSpec);
  for (const t of [turn.edgechat, turn.reference]) t.cpuPerExtraChunkMs = t.pairedExtraChunkMs;

  log(`scenario: reconnects: ${METHOD.resumeTurns} turns each left after 3 deltas and resumed with Last-Event-ID: 3 (alternating edgechat and plain JS)`);
  results.resume = {};
  const resumed = { edgechat: [], reference: [] };
  // One at a time, alternating, so that drift hits both alike.
  for (let i = 0; i < METHOD.resumeWarmup + METHOD.resumeTurns; i++) {
    for (const t of [edgechat, edgechat.reference]) {
      const r = await resumeOnce(t.url, turnSpec(t, 'short'));
      if (i >= METHOD.resumeWarmup) resumed[t.id].push(r);
    }
  }
  for (const [id, runs] of Object.entries(resumed)) {
    const ok = runs.filter((r) => !r.error);
    results.resume[id] = { turns: runs.length, errors: runs.length - ok.length, firstError: runs.find((r) => r.error)?.error ?? null, firstEvent: summarize(ok.map((r) => r.resumeMs)) };
    log(`  ${id}: first resumed event p50 ${results.resume[id].firstEvent.p50?.toFixed(2) ?? '—'} ms, ${results.resume[id].errors} of ${runs.length} failed${results.resume[id].firstError ? `; first: ${results.resume[id].firstError}` : ''}`);
  }
}

/** A one-scenario run's start: the build, the time limits, the simulator and edgechat. */
async function startScenario() {
  log('build');
  sh('scripts/build.sh');
  measuringFrom = performance.now();
  armWatchdog();
  const sim = await T.startSimulator();
  return { sim, edgechat: await T.startEdgechat(sim.url) };
}

/** `--only agent`: edgechat and the simulator, the agent turns, a printed report section. */
async function onlyAgent() {
  const { edgechat } = await startScenario();
  const token = await seedUser(edgechat.url, 'agent');
  log('scenario: agent turns, plain against tool steps (interleaved)');
  const agent = await measureAgentTurns(edgechat, token, { log });
  await T.stopAll();
  const results = { date: new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'), edgechat: revision(), agent };
  mkdirSync(path.join(ROOT, 'bench-results'), { recursive: true });
  writeFileSync(path.join(ROOT, 'bench-results/agent-latest.json'), JSON.stringify(results, null, 2) + '\n');
  console.log(`\n${renderAgentSection(agent)}`);
  log('wrote bench-results/agent-latest.json (docs/benchmarks.md is written by the full run only)');
}

/** `--only chat`: edgechat, the JS worker (the gap's baseline) and the simulator, the chat turn's figures, printed. */
async function onlyChat() {
  const { sim, edgechat } = await startScenario();
  const js = await T.startJsWorker(sim.url);
  edgechat.models = { stream: 'bench', short: 'bench-short' };
  const results = { scenarios: { chatTurn: {} } };
  log('the JS worker: 256 streams at once (the gap\'s baseline)');
  const base = await measureStreams(js, (which) => openaiSpec(js, which), { sequential: false, marginal: false });
  await measureChatTurns(edgechat, results);
  await T.stopAll();
  const { edgechat: e, reference: r } = results.scenarios.chatTurn;
  const x = (a, b) => (a && b ? `×${(a / b).toFixed(2)}` : '—');
  console.log(`\nchat turn CPU per extra chunk: edgechat ${e.pairedExtraChunkMs?.toFixed(4)} ms, plain JS ${r.pairedExtraChunkMs?.toFixed(4)} ms: ${x(e.pairedExtraChunkMs, r.pairedExtraChunkMs)} (budget ×1.2)`);
  console.log(`gap p99 at 256 turns: edgechat ${e.many.gap.p99?.toFixed(1)} ms (${e.many.lostTokens} tokens lost), plain JS ${r.many.gap.p99?.toFixed(1)} ms, pass-through ${base.many.gap.p99?.toFixed(1)} ms: ${x(e.many.gap.p99, base.many.gap.p99)} (budget ×3)`);
  console.log(`first resumed event p50: edgechat ${results.resume.edgechat.firstEvent.p50?.toFixed(2) ?? '—'} ms, plain JS ${results.resume.reference.firstEvent.p50?.toFixed(2) ?? '—'} ms`);
}

async function main() {
  if (ONLY === 'agent') return onlyAgent();
  if (ONLY === 'chat') return onlyChat();
  log('setup and build');
  sh('scripts/setup.sh');
  sh('scripts/build.sh');
  const drift = await T.floorSqlMismatches();
  if (drift.length) throw new Error(`bench/floor-worker.js no longer makes edgechat's calls: ${drift.join(', ')} differ from src/store/`);
  // Installing the peers is setup too (the first run only): the time limits count from here.
  log('preparing the peer gateways (cached after the first run)');
  const [litellmReady, portkeyReady] = await Promise.all([T.ensureLiteLLM(), T.ensurePortkey()]);
  measuringFrom = performance.now();
  armWatchdog();
  const cpuBefore = { machine: T.machineBusyMs(), own: T.ownCpuMs() };
  const results = {
    date: new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'),
    elapsedSeconds: 0,
    machine: machine(),
    edgechat: revision(),
    wasm: wasmSize(),
    method: METHOD,
    labels: {},
    targetsRun: [],
    notRun: [],
    scenarios: { health: {}, conversationsHit: {}, conversationsMiss: {}, conversationsFirstMiss: {}, completions: {}, completionsStream: {}, chatTurn: {} },
    memory: {},
  };
  const ran = (t, note = '') => { results.labels[t.id] = t.label; results.targetsRun.push(`${t.label}${note}`); };
  const notRun = (target, reason) => { results.notRun.push({ target, reason: T.scrub(reason) }); log(`not run: ${target}: ${T.scrub(reason)}`); };

  log('starting the simulator, edgechat and the JS worker in bare workerd');
  const sim = await T.startSimulator();
  ran(sim);
  const edgechat = await T.startEdgechat(sim.url);
  ran(edgechat, `, compatibility date ${T.COMPAT_DATE}, D1 and KV in Miniflare`);
  const js = await T.startJsWorker(sim.url);
  ran(js, ' (bench/passthrough-worker.js, same workerd binary, its own process)');
  const peers = [];
  if (litellmReady.ok) {
    try { const t = await T.startLiteLLM(sim.url); peers.push(t); ran(t, ' (default settings, telemetry off)'); } catch (err) { notRun('LiteLLM proxy', `did not start: ${err.message}`); }
  } else notRun('LiteLLM proxy', litellmReady.reason);
  if (portkeyReady.ok) {
    try { const t = await T.startPortkey(sim.url); peers.push(t); ran(t, ' (`@hono/node-server` pinned to 1.13.8: later versions break its streaming; its stream handler waits 25 ms before relaying the first chunk, which shows in its TTFT)'); } catch (err) { notRun('Portkey gateway', `did not start: ${err.message}`); }
  } else notRun('Portkey gateway', portkeyReady.reason);

  const unlike = await T.referenceMismatches(edgechat);
  if (unlike.length) throw new Error(`bench/reference-worker.js no longer answers like edgechat: ${unlike.join('; ')}`);

  log('seeding edgechat: users and conversations');
  const listToken = await seedUser(edgechat.url, 'list');
  await createConversations(edgechat.url, listToken, 20);
  const gatewayToken = await seedUser(edgechat.url, 'gateway');
  const streamsUnlike = await T.referenceStreamMismatches(edgechat, gatewayToken);
  if (streamsUnlike.length) throw new Error(`bench/reference-worker.js no longer streams like edgechat: ${streamsUnlike.join('; ')}`);
  const auth = (token) => ({ authorization: `Bearer ${token}` });
  edgechat.headers = auth(gatewayToken);
  edgechat.models = { stream: 'bench', short: 'bench-short', fast: 'bench-fast' };

  const S = results.scenarios;
  // The same requests as a plain JavaScript Worker on the same D1 and KV, doing the same work.
  ran(edgechat.reference, ' (same workerd process, D1 database and KV namespace as edgechat)');
  edgechat.reference.headers = edgechat.headers;
  edgechat.reference.models = edgechat.models;
  log('scenario: GET /health');
  const health = { path: '/health' };
  S.health.sim = await measureRequests(sim, health, { rate: false });
  S.health.js = await measureRequests(js, health);
  S.health.reference = await measureRequests(edgechat.reference, health);
  S.health.edgechat = await measureRequests(edgechat, health);
  await interleavedCpu([[js, health, S.health.js], [edgechat.reference, health, S.health.reference], [edgechat, health, S.health.edgechat]]);

  // Once under wrangler dev, for comparison: its proxy is in front of the worker.
  log('scenario: GET /health under wrangler dev');
  try {
    const w = await T.startWranglerDev(sim.url);
    ran(w, ' (for comparison only)');
    S.health.wrangler = await measureRequests(w, health, { n: 300, warmup: 50 });
    await w.stop();
  } catch (err) { notRun('edgechat under wrangler dev', `failed: ${T.lastLine(err.message)}`); }

  log('scenario: GET /api/v1/conversations');
  const list = { path: '/api/v1/conversations', headers: auth(listToken) };
  for (let i = 0; i < 50; i++) { // first request fills the KV cache in waitUntil
    const r = await api(edgechat.url, 'GET', list.path, { token: listToken });
    if (r.headers['x-edgechat-cache'] === 'hit') break;
    await new Promise((res) => setTimeout(res, 50));
  }
  const hit = (r) => r.status === 200 && r.headers['x-edgechat-cache'] === 'hit';
  S.conversationsHit.edgechat = await measureRequests(edgechat, { ...list, check: hit });
  S.conversationsHit.reference = await measureRequests(edgechat.reference, { ...list, check: hit });
  // The storage floor: only edgechat's D1 and KV calls for the same request.
  ran(edgechat.floor, ' (same workerd process, D1 database and KV namespace as edgechat)');
  const listFloor = T.floorHeaders(listToken);
  const floorOk = (r) => r.status === 200;
  const floorHit = { path: '/conversations-hit', headers: listFloor, check: (r) => r.status === 200 && r.body.length > 100 };
  S.conversationsHit.floor = await measureRequests(edgechat.floor, floorHit, { rate: false });
  await interleavedCpu([
    [edgechat, { ...list, check: hit }, S.conversationsHit.edgechat],
    [edgechat.reference, { ...list, check: hit }, S.conversationsHit.reference],
    [edgechat.floor, floorHit, S.conversationsHit.floor],
  ]);
  // A cursor placed before every row gives the same 20 rows from D1; cursor pages are never cached.
  const cursor = Buffer.from(`1${Number.MAX_SAFE_INTEGER}:zzzzzzzz`).toString('base64url');
  const cursorPage = {
    path: `/api/v1/conversations?cursor=${cursor}`, headers: list.headers,
    check: (r) => r.status === 200 && r.headers['x-edgechat-cache'] !== 'hit' && JSON.parse(r.body).data.length === 20,
  };
  S.conversationsMiss.edgechat = await measureRequests(edgechat, cursorPage);
  const floorPage = { path: '/conversations-page', headers: { ...listFloor, 'x-floor-after-key': String(Number.MAX_SAFE_INTEGER), 'x-floor-after-id': 'zzzzzzzz' }, check: floorOk };
  S.conversationsMiss.floor = await measureRequests(edgechat.floor, floorPage, { rate: false });
  await interleavedCpu([[edgechat, cursorPage, S.conversationsMiss.edgechat], [edgechat.floor, floorPage, S.conversationsMiss.floor]]);
  // Genuine first-page misses: limits 21..100 are new cache keys; a write (a new
  // conversation) bumps the user's cache version, which makes all 80 keys new again.
  const firstMiss = (i) => ({
    path: `/api/v1/conversations?limit=${21 + (i % 80)}`, headers: list.headers,
    check: (r) => r.status === 200 && r.headers['x-edgechat-cache'] === 'miss',
  });
  const floorFirst = (i) => ({ path: '/conversations-first', headers: { ...listFloor, 'x-floor-limit': String(21 + (i % 80)) }, check: floorOk });
  S.conversationsFirstMiss.edgechat = await measureRequests(edgechat, firstMiss, { n: 80, warmup: 0, rate: false });
  S.conversationsFirstMiss.floor = await measureRequests(edgechat.floor, floorFirst, { n: 80, warmup: 0, rate: false });
  await interleavedCpu([[edgechat, firstMiss, S.conversationsFirstMiss.edgechat], [edgechat.floor, floorFirst, S.conversationsFirstMiss.floor]], {
    n: 80, warmup: 0, beforeRound: () => createConversations(edgechat.url, listToken, 1),
  });

  log('probing edgechat POST /v1/chat/completions');
  const probe = await api(edgechat.url, 'POST', '/v1/chat/completions', { token: gatewayToken, json: { model: 'bench-fast', messages: PROMPT } });
  let gatewayState = null;
  if (probe.status === 404 && probe.json?.error?.code !== 'model_not_found') gatewayState = { notImplemented: true };
  else if (probe.status !== 200) gatewayState = { error: `HTTP ${probe.status} ${probe.text.slice(0, 120)}` };
  log(`  edgechat /v1/chat/completions: ${gatewayState ? JSON.stringify(gatewayState) : 'present'}`);

  const openaiTargets = [sim, js, edgechat, ...peers];
  log('scenario: POST /v1/chat/completions, 8 tokens, not streamed');
  for (const t of openaiTargets) {
    if (t === edgechat && gatewayState) { S.completions.edgechat = gatewayState; continue; }
    if (measuringS() > SOFT_LIMIT_S && t !== sim && t !== js && t !== edgechat) { notRun(`${t.label}, not streamed`, 'skipped: run time limit'); continue; }
    S.completions[t.id] = await measureRequests(t, openaiSpec(t, 'fast'), { n: 500 });
  }
  if (!gatewayState) {
    const floorCall = { method: 'POST', path: '/completion', headers: T.floorHeaders(gatewayToken), body: { model: T.UPSTREAM.fast, messages: PROMPT }, kind: 'openai', check: floorOk };
    S.completions.reference = await measureRequests(edgechat.reference, openaiSpec(edgechat.reference, 'fast'), { n: 500, rate: false });
    S.completions.floor = await measureRequests(edgechat.floor, floorCall, { n: 500, rate: false });
    await interleavedCpu([
      [edgechat, openaiSpec(edgechat, 'fast'), S.completions.edgechat],
      [edgechat.reference, openaiSpec(edgechat.reference, 'fast'), S.completions.reference],
      [edgechat.floor, floorCall, S.completions.floor],
    ], { rounds: METHOD.gatewayCpuRounds });
  }

  log('scenario: POST /v1/chat/completions streamed, 64 chunks 20 ms apart');
  // The same relay driven by plain JavaScript, against edgechat in alternating rounds: right
  // after edgechat's own streams, before the peers', as a budget depends on it.
  const pairedRelay = async () => {
    if (measuringS() > SOFT_LIMIT_S) return notRun('the same relay in plain JS, streamed', 'skipped: run time limit');
    S.completionsStream.reference = {};
    await interleavedChunkCpu([
      [edgechat, S.completionsStream.edgechat],
      [edgechat.reference, S.completionsStream.reference],
    ]);
  };
  for (const t of [sim, js, edgechat]) {
    if (t === edgechat && gatewayState) { S.completionsStream.edgechat = gatewayState; continue; }
    S.completionsStream[t.id] = await measureStreams(t, (which) => openaiSpec(t, which));
    if (t === edgechat) await pairedRelay();
  }

  await measureChatTurns(edgechat, results);

  log('scenario: edgechat agent turns, plain against tool steps (interleaved, 8 tokens at once)');
  const agentToken = await seedUser(edgechat.url, 'agent');
  results.agent = await measureAgentTurns(edgechat, agentToken, { log });

  // The peers' streams last: the budgets do not depend on them.
  for (const t of peers) {
    if (measuringS() > SOFT_LIMIT_S) { notRun(`${t.label}, streamed`, 'skipped: run time limit'); continue; }
    log(`scenario: POST /v1/chat/completions streamed through ${t.label}`);
    S.completionsStream[t.id] = await measureStreams(t, (which) => openaiSpec(t, which));
  }

  for (const t of [sim, js, edgechat, ...peers]) results.memory[t.id] = T.peakRssKb(t.pids());
  for (const t of peers) await t.stop();

  await T.stopAll();
  results.elapsedSeconds = elapsedS();
  results.setupAndBuildSeconds = (measuringFrom - started) / 1000;
  // Anything else running on the machine shared its cores with the measurements: the busy
  // CPU of the whole machine minus this run's own (every process it started has exited by now
  // and been counted into its children's time).
  const seconds = measuringS();
  const otherMs = T.machineBusyMs() - cpuBefore.machine - (T.ownCpuMs() - cpuBefore.own);
  results.machine.otherCpuShare = Math.max(0, otherMs) / (seconds * 1000 * results.machine.nproc);
  const md = writeReports(ROOT, results);
  console.log(`\n${md.slice(md.indexOf('## Budgets'), md.indexOf('## Every target'))}`);
  log(`wrote bench-results/latest.md, bench-results/latest.json and docs/benchmarks.md`);
  log(`done in ${Math.floor(results.elapsedSeconds / 60)} min ${Math.round(results.elapsedSeconds % 60)} s`);
}

main().then(() => process.exit(0), async (err) => {
  console.error(`bench failed: ${err.stack ?? err}`);
  await T.stopAll();
  process.exit(1);
});
