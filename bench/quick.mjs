// A quick CPU check while working on the worker (not part of the report, ~1 minute):
// edgechat in bare workerd, CPU per request for /health, a KV-hit conversations list and a
// non-streamed completion, and the marginal CPU per streamed chunk. Run: node bench/quick.mjs
// (add --js for the JS pass-through worker's marginal CPU per chunk).
import * as T from './targets.mjs';
import { api, latencyRun } from './load.mjs';
import { concurrentStreams } from './sse-client.mjs';

const PROMPT = [{ role: 'user', content: 'Say something.' }];
const sim = await T.startSimulator();
const w = await T.startEdgechat(sim.url);
const email = `quick-${Date.now()}@bench.example`;
const token = (await api(w.url, 'POST', '/api/v1/auth/register', { json: { email, password: 'correct horse battery staple' } })).json.access_token;
for (let i = 0; i < 20; i++) await api(w.url, 'POST', '/api/v1/conversations', { token, json: { title: `c${i}` } });
const auth = { authorization: `Bearer ${token}` };

async function cpu(name, spec, n = 500) {
  const pids = w.pids();
  const around = { before: () => T.cpuMs(pids), after: (b, count) => ({ cpu: (T.cpuMs(pids) - b) / count }) };
  const r = await latencyRun(w.url, spec, { n, warmup: 100, around });
  console.log(`${name}: ${r.cpu.toFixed(3)} ms CPU/request, p50 ${r.p50.toFixed(2)} ms, errors ${r.errors}`);
}
await cpu('/health', { path: '/health' });
const hit = (r) => r.status === 200 && r.headers['x-edgechat-cache'] === 'hit';
await cpu('conversations (KV hit)', { path: '/api/v1/conversations', headers: auth, check: hit });
await cpu('the same in plain JS', { path: '/reference/api/v1/conversations', headers: auth, check: hit });
const completion = { method: 'POST', path: '/v1/chat/completions', headers: auth, body: { model: 'bench-fast', messages: PROMPT }, kind: 'openai', check: (r) => r.status === 200 };
await cpu('completion, not streamed', completion, 300);

// Marginal CPU per chunk: 64-chunk streams against 8-chunk streams, so the per-request costs
// (auth, limits, usage record) cancel out.
async function streams(target, model, expectedTokens) {
  const before = T.cpuMs(target.pids());
  const spec = () => ({ method: 'POST', path: '/v1/chat/completions', headers: auth, body: { model, messages: PROMPT, stream: true }, kind: 'openai' });
  const many = await concurrentStreams(target.url, spec, { n: 32, expectedTokens, timeoutMs: 30000 });
  return { cpu: T.cpuMs(target.pids()) - before, tokens: many.receivedTokens, streams: many.streams };
}
async function marginal(target, longModel, shortModel) {
  await streams(target, shortModel, 8);
  const long = await streams(target, longModel, 64);
  const short = await streams(target, shortModel, 8);
  const perChunk = (long.cpu - short.cpu) / (long.tokens - short.tokens);
  console.log(`${target.id} streams: ${(long.cpu / long.streams).toFixed(2)} ms CPU per 64-chunk stream, ` +
    `${(short.cpu / short.streams).toFixed(2)} ms per 8-chunk stream: ${perChunk.toFixed(4)} ms per extra chunk`);
}
await marginal(w, 'bench', 'bench-short');
if (process.argv.includes('--js')) await marginal(await T.startJsWorker(sim.url), T.UPSTREAM.stream, T.UPSTREAM.short);
await T.stopAll();
process.exit(0);
