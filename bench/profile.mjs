// Where edgechat's CPU goes, for one scenario: edgechat in bare workerd with its V8 inspector
// open, N requests under the sampling profiler, then the functions with the most self time.
// The profiler slows everything down several times and inflates some entries (queueMicrotask
// showed 5-9% of samples, yet a build without it used the same CPU), so this says where to
// look; whether a change helps is decided by CPU measured in alternating rounds (bench/run.mjs). Wasm function names need a build that keeps them:
//   EDGECHAT_KEEP_WASM_NAMES=1 bash scripts/build.sh    (then rebuild normally afterwards)
// Run: node bench/profile.mjs [health|hit|reference-hit|miss|completion|reference-completion] [requests] [--build=DIR]
import * as T from './targets.mjs';
import { api } from './load.mjs';
import WebSocket from 'ws';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const build = process.argv.find((a) => a.startsWith('--build='))?.slice(8) ?? 'build';
const scenario = args[0] ?? 'completion';
const n = Number(args[1] ?? 300);
const INSPECTOR = 9339;
const PROMPT = [{ role: 'user', content: 'Say something.' }];

const sim = await T.startSimulator();
const w = await T.startEdgechat(sim.url, { build, inspectorPort: INSPECTOR });
const email = `profile-${Date.now()}@bench.example`;
const token = (await api(w.url, 'POST', '/api/v1/auth/register', { json: { email, password: 'correct horse battery staple' } })).json.access_token;
for (let i = 0; i < 20; i++) await api(w.url, 'POST', '/api/v1/conversations', { token, json: { title: `c${i}` } });

let limit = 0;
const requests = {
  health: () => api(w.url, 'GET', '/health'),
  hit: () => api(w.url, 'GET', '/api/v1/conversations', { token }),
  // The same KV-hit request answered by bench/reference-worker.js (profiled in its own isolate).
  'reference-hit': () => api(w.url, 'GET', '/reference/api/v1/conversations', { token }),
  // Each page size has its own cache key: 1..100 are 100 misses per cache version.
  miss: () => api(w.url, 'GET', `/api/v1/conversations?limit=${(limit++ % 100) + 1}`, { token }),
  completion: () => api(w.url, 'POST', '/v1/chat/completions', { token, json: { model: 'bench-fast', messages: PROMPT } }),
  'reference-completion': () => api(w.url, 'POST', '/reference/v1/chat/completions', { token, json: { model: 'bench-fast', messages: PROMPT } }),
};
const request = requests[scenario];
if (!request) throw new Error(`unknown scenario ${scenario}: one of ${Object.keys(requests).join(', ')}`);
// The reference only reads the page edgechat cached.
if (scenario === 'reference-hit') { await requests.hit(); await new Promise((r) => setTimeout(r, 200)); }
for (let i = 0; i < 50; i++) await request();
if (scenario === 'miss') await api(w.url, 'POST', '/api/v1/conversations', { token, json: { title: 'new version' } });

const worker = scenario.startsWith('reference') ? 'reference' : 'edgechat';
const ws = new WebSocket(`ws://127.0.0.1:${INSPECTOR}/core:user:${worker}`);
await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
let nextId = 1;
const waiting = new Map();
ws.on('message', (data) => {
  const msg = JSON.parse(data);
  if (msg.id && waiting.has(msg.id)) { waiting.get(msg.id)(msg.result); waiting.delete(msg.id); }
});
const send = (method, params = {}) => new Promise((resolve) => { const id = nextId++; waiting.set(id, resolve); ws.send(JSON.stringify({ id, method, params })); });

await send('Profiler.enable');
await send('Profiler.setSamplingInterval', { interval: 50 });
await send('Profiler.start');
let failed = 0;
for (let i = 0; i < n; i++) {
  const r = await request();
  if (r.status >= 300) failed++;
}
const { profile } = await send('Profiler.stop');
ws.close();

// Self time per function (name and where it comes from).
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map();
let total = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const node = byId.get(profile.samples[i]);
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  const { functionName, url } = node.callFrame;
  const where = url.includes('wasm') ? 'wasm' : url ? 'js' : 'runtime';
  const key = `${where}  ${functionName || '(anonymous)'}`;
  self.set(key, (self.get(key) ?? 0) + dt);
}
const kinds = new Map();
for (const [key, us] of self) kinds.set(key.split('  ')[0], (kinds.get(key.split('  ')[0]) ?? 0) + us);
console.log(`${scenario}: ${n} requests (${failed} not 2xx), ${(total / 1000).toFixed(0)} ms sampled`);
for (const [kind, us] of [...kinds].sort((a, b) => b[1] - a[1])) console.log(`  ${kind.padEnd(8)} ${((100 * us) / total).toFixed(1)}%`);
console.log('\nself time, top ${process.env.TOP ?? 40}:');
for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 40))) {
  console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / n).toFixed(1).padStart(6)} us/req  ${key.slice(0, 140)}`);
}
await T.stopAll();
process.exit(0);
