// A quick CPU check while working on the worker (not part of the report, ~1 minute):
// edgechat in bare workerd, CPU per request for /health, a KV-hit conversations list and a
// non-streamed completion (each beside its storage floor, bench/floor-worker.js), and the
// marginal CPU per streamed chunk. Run: node bench/quick.mjs
// (add --js for the JS pass-through worker's marginal CPU per chunk).
import * as T from './targets.mjs';
import { api, latencyRun } from './load.mjs';
import { cpuAround, marginalChunkCpu } from './cpu.mjs';

const PROMPT = [{ role: 'user', content: 'Say something.' }];
const sim = await T.startSimulator();
const w = await T.startEdgechat(sim.url);
const email = `quick-${Date.now()}@bench.example`;
const token = (await api(w.url, 'POST', '/api/v1/auth/register', { json: { email, password: 'correct horse battery staple' } })).json.access_token;
for (let i = 0; i < 20; i++) await api(w.url, 'POST', '/api/v1/conversations', { token, json: { title: `c${i}` } });
const auth = { authorization: `Bearer ${token}` };

async function cpu(name, spec, n = 500) {
  const r = await latencyRun(w.url, spec, { n, warmup: 100, around: cpuAround(w.pids()) });
  console.log(`${name}: ${r.cpuPerRequestMs.toFixed(3)} ms CPU/request, p50 ${r.p50.toFixed(2)} ms, errors ${r.errors}`);
}
await cpu('/health', { path: '/health' });
const hit = (r) => r.status === 200 && r.headers['x-edgechat-cache'] === 'hit';
await cpu('conversations (KV hit)', { path: '/api/v1/conversations', headers: auth, check: hit });
await cpu('the same in plain JS', { path: '/reference/api/v1/conversations', headers: auth, check: hit });
const floor = T.floorHeaders(token);
await cpu('its storage floor', { path: '/floor/conversations-hit', headers: floor, check: (r) => r.status === 200 && r.body.length > 100 });
const completion = { method: 'POST', path: '/v1/chat/completions', headers: auth, body: { model: 'bench-fast', messages: PROMPT }, kind: 'openai', check: (r) => r.status === 200 };
await cpu('completion, not streamed', completion, 300);
await cpu('its storage floor', { method: 'POST', path: '/floor/completion', headers: floor, body: { model: T.UPSTREAM.fast, messages: PROMPT }, check: (r) => r.status === 200 }, 300);

// Marginal CPU per chunk (per-request costs cancel out): 32 streams of 64 chunks against
// 32 of 8, once.
async function marginal(target, models) {
  const spec = (which) => ({ method: 'POST', path: '/v1/chat/completions', headers: auth, body: { model: models[which], messages: PROMPT, stream: true }, kind: 'openai' });
  const perChunk = await marginalChunkCpu(target, spec, { streams: 32, repeats: 1, longTokens: T.STREAM_TOKENS, shortTokens: 8 });
  console.log(`${target.id} streams: ${perChunk?.toFixed(4) ?? '(incomplete)'} ms CPU per extra chunk`);
}
await marginal(w, { stream: 'bench', short: 'bench-short' });
if (process.argv.includes('--js')) await marginal(await T.startJsWorker(sim.url), T.UPSTREAM);
await T.stopAll();
process.exit(0);
