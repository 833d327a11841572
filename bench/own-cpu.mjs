// bench/own-cpu.mjs — edgechat's own CPU beside the same requests in plain JavaScript
// (bench/reference-worker.js), with D1 replaced by bench/instant-d1.js so that SQLite's work
// in the same process neither counts nor adds its noise. For finding where edgechat's CPU goes
// and for A/B of builds, not a budget: on Cloudflare D1 is a separate service, yet a worker
// still pays for its calls' JavaScript side, which the stand-in makes nearly free. KV is
// Miniflare's. Alternating rounds; each figure is a median, each difference the median of
// per-round differences in the same workerd process.
// Run: node bench/own-cpu.mjs [health,hit,completion] [--build=DIR[,DIR...]] [--rounds=N] [--requests=N]
import * as T from './targets.mjs';
import { latencyRun } from './load.mjs';
import { cpuAround, median } from './cpu.mjs';

const option = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const scenarios = (process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 'health,hit,completion').split(',');
const builds = option('build', 'build').split(',');
const rounds = Number(option('rounds', 7));
const requests = Number(option('requests', 500));

const sim = await T.startSimulator();
const token = T.accessToken(T.edgechatVars(sim.url).JWT_SECRET);
const SPECS = T.instantD1Requests(token);
for (const s of scenarios) if (!SPECS[s]) throw new Error(`unknown scenario ${s}: one of ${Object.keys(SPECS).join(', ')}`);

const targets = [];
for (const build of builds) {
  const w = await T.startEdgechat(sim.url, { build, instantD1: true });
  // The first list request fills the KV page that the reference reads too.
  await latencyRun(w.url, SPECS.hit, { n: 1, warmup: 0 });
  targets.push({ build, w });
}
await new Promise((resolve) => setTimeout(resolve, 300));

console.log(`CPU per request (ms), median of ${rounds} alternating rounds of ${requests}; D1 replaced by bench/instant-d1.js`);
for (const scenario of scenarios) {
  const spec = SPECS[scenario];
  const runs = targets.map(() => ({ edgechat: [], reference: [] }));
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 ? [...targets.keys()].reverse() : [...targets.keys()];
    for (const i of order) {
      const { w } = targets[i];
      const pair = [['edgechat', w.url], ['reference', w.reference.url]];
      for (const [who, url] of round % 2 ? pair.reverse() : pair) {
        const r = await latencyRun(url, spec, { n: requests, warmup: 30, around: cpuAround(w.pids()) });
        runs[i][who].push(r.errors ? null : r.cpuPerRequestMs);
        if (r.errors) console.log(`  ${scenario}, ${who} (${targets[i].build}): ${r.errors} errors; first: ${r.firstError}`);
      }
    }
  }
  for (const [i, { edgechat, reference }] of runs.entries()) {
    const both = edgechat.map((e, k) => (e === null || reference[k] === null ? null : e - reference[k])).filter((d) => d !== null);
    const fig = (values) => median(values)?.toFixed(3) ?? '—';
    console.log(`${scenario.padEnd(10)} ${targets[i].build.padEnd(12)} edgechat ${fig(edgechat)}  plain JS ${fig(reference)}  ` +
      `edgechat − JS per round: median ${median(both)?.toFixed(3) ?? '—'} [${both.map((d) => d.toFixed(2)).join(', ')}]`);
  }
}
await T.stopAll();
process.exit(0);
