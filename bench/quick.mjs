// bench/quick.mjs — the quick check while working on the worker (about a minute, not the
// report): edgechat in bare workerd beside the same work in plain JavaScript
// (bench/reference-worker.js) and the storage floor (bench/floor-worker.js), CPU per request
// for /health, the KV-hit conversation list and a non-streamed completion, then CPU per extra
// streamed chunk of the relay and of a chat turn, each pair in alternating rounds.
// Run: bash scripts/node.sh bench/quick.mjs [--build=DIR] (DIR: another build, for an A/B run).
import * as T from './targets.mjs';
import { api, latencyRun } from './load.mjs';

const build = process.argv.find((a) => a.startsWith('--build='))?.slice(8) ?? 'build';
const ROUNDS = 3;
const PROMPT = [{ role: 'user', content: 'Tell me something about rivers.' }];
const sim = await T.startSimulator();
const w = await T.startEdgechat(sim.url, { build });
const register = async (tag) => {
  const r = await api(w.url, 'POST', '/api/v1/auth/register', { json: { email: `quick-${tag}-${Date.now()}@bench.example`, password: 'correct horse battery staple' } });
  if (r.status !== 201) throw new Error(`register failed: HTTP ${r.status} ${r.text.slice(0, 160)}`);
  return r.json.access_token;
};
const token = await register('list');
for (let i = 0; i < 20; i++) await api(w.url, 'POST', '/api/v1/conversations', { token, json: { title: `c${i}` } });
await api(w.url, 'GET', '/api/v1/conversations', { token }); // fills the KV page the reference reads
const auth = { authorization: `Bearer ${token}` };
const floor = T.floorHeaders(token);
const ok = (r) => r.status === 200;

/** CPU per request of each [name, base url, spec], median of alternating rounds. */
async function cpu(what, entries, n = 300) {
  const rounds = entries.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, [, base, spec]] of entries.entries()) {
      const r = await latencyRun(base, spec, { n, warmup: 30, around: T.cpuAround(w.pids()) });
      rounds[i].push(r.errors ? null : r.cpuPerRequestMs);
      if (r.errors) console.log(`  ${entries[i][0]}: ${r.errors} errors, first: ${r.firstError}`);
    }
  }
  console.log(`${what}: ${entries.map(([name], i) => `${name} ${T.median(rounds[i])?.toFixed(3) ?? '—'} ms`).join(', ')} CPU per request`);
}
await cpu('GET /health', [['edgechat', w.url, { path: '/health' }], ['plain JS', w.reference.url, { path: '/health' }]]);
const list = { path: '/api/v1/conversations', headers: auth, check: (r) => ok(r) && r.headers['x-edgechat-cache'] === 'hit' };
await cpu('conversations, KV hit', [['edgechat', w.url, list], ['plain JS', w.reference.url, list],
  ['floor', w.floor.url, { path: '/conversations-hit', headers: floor, check: ok }]]);
const completion = { method: 'POST', path: '/v1/chat/completions', headers: auth, body: { model: 'bench-fast', messages: PROMPT }, check: ok };
await cpu('completion, not streamed', [['edgechat', w.url, completion], ['plain JS', w.reference.url, completion],
  ['floor', w.floor.url, { method: 'POST', path: '/completion', headers: floor, body: { model: T.UPSTREAM.fast, messages: PROMPT }, check: ok }]], 200);

// CPU per extra chunk (per-request work cancels out): 32 streams of 64 chunks against 32 of 8.
const models = { stream: 'bench', short: 'bench-short' };
const users = [];
for (let i = 0; i < 16; i++) users.push(await register(`chat${i}`));
let turn = 0;
const conversations = [];
for (let i = 0; i < 2 * ROUNDS * 3 * 32; i++) {
  const t = users[i % users.length];
  conversations.push([t, (await api(w.url, 'POST', '/api/v1/conversations', { token: t, json: { title: `t${i}`, tools: [] } })).json.conversation_id]);
}
const relay = (which) => ({ method: 'POST', path: '/v1/chat/completions', headers: auth, body: { model: models[which], messages: PROMPT, stream: true }, kind: 'openai' });
const chat = (which) => {
  const [t, id] = conversations[turn++];
  return { path: `/api/v1/conversations/${id}/messages`, headers: { authorization: `Bearer ${t}` }, body: { content: PROMPT[0].content, model: models[which] }, kind: 'edgechat' };
};
for (const [what, spec] of [['relay', relay], ['chat turn', chat]]) {
  const rounds = [[], []];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, target] of [w, w.reference].entries()) {
      rounds[i].push(await T.marginalChunkCpu(target, spec, { streams: 32, repeats: 1, longTokens: T.STREAM_TOKENS, shortTokens: 8 }));
    }
  }
  const [e, js] = rounds.map((r) => T.median(r));
  console.log(`${what}: edgechat ${e?.toFixed(4) ?? '—'} ms, plain JS ${js?.toFixed(4) ?? '—'} ms CPU per extra chunk` + (e && js ? ` (×${(e / js).toFixed(2)})` : ''));
}
await T.stopAll();
process.exit(0);
