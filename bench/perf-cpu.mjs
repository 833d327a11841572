// bench/perf-cpu.mjs — where the CPU of one request goes, by kind of work, for edgechat and for
// the same request in plain JavaScript (bench/reference-worker.js), both in one workerd with D1
// replaced by bench/instant-d1.js. Linux `perf` samples the whole workerd process (every
// thread, kernel included) on a CPU clock, so unlike bench/profile.mjs (V8's profiler, which
// slows JavaScript several times) it does not change what it measures. Compiled wasm and
// JavaScript show up together as "JIT code"; the rest is named by the runtime's own symbols.
// Needs `perf` (Debian package linux-perf) and permission to trace processes you own.
// Run: node bench/perf-cpu.mjs [health|hit|completion] [requests]
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as T from './targets.mjs';
import { latencyRun } from './load.mjs';

const [scenario = 'completion', count = '2000'] = process.argv.slice(2);
const n = Number(count);
const HZ = 4000;
if (spawnSync('perf', ['--version']).status !== 0) {
  console.error('perf-cpu: needs the perf tool (Debian: apt install linux-perf)');
  process.exit(2);
}

/** The kind of work a sampled symbol does. */
function kind(dso, sym) {
  if (dso.startsWith('[JIT]')) return 'JIT code (wasm and JavaScript)';
  if (dso.startsWith('[kernel')) return 'kernel (syscalls, scheduling, page faults)';
  if (dso !== 'workerd') return `other libraries (${dso})`;
  if (/tcmalloc|TCMalloc/.test(sym)) return 'native allocator (tcmalloc)';
  if (/Scaveng|MarkCompact|Sweep|GlobalHandles|Marking|Evacuat|TracedReference|cppgc|CppHeap/.test(sym)) return 'V8 garbage collection and handles';
  if (/^Builtins_Wasm|wasm::/.test(sym)) return 'V8 wasm runtime';
  if (sym.startsWith('Builtins_')) return 'V8 builtins (JSON, promises, typed arrays...)';
  if (sym.startsWith('v8::')) return 'V8 other';
  if (sym.startsWith('kj::')) return 'KJ event loop, promises, I/O';
  if (sym.startsWith('workerd::jsg')) return 'workerd JS bindings (jsg)';
  if (sym.startsWith('workerd::api')) return 'workerd APIs (Request, Headers, streams, fetch)';
  if (sym.startsWith('workerd::')) return 'workerd other';
  return 'other workerd code';
}

/** perf samples of `pid` while `n` requests of `spec` go to `url`, in µs of CPU per request by kind. */
async function sampled(pid, url, spec) {
  const file = path.join(os.tmpdir(), `edgechat-perf-${process.pid}.data`);
  await latencyRun(url, spec, { n: 200, warmup: 0 });
  const rec = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', String(HZ), '-p', String(pid), '-o', file], { stdio: 'ignore' });
  await new Promise((resolve) => setTimeout(resolve, 400));
  const run = await latencyRun(url, spec, { n, warmup: 0 });
  rec.kill('SIGINT');
  await new Promise((resolve) => rec.on('exit', resolve));
  const report = spawnSync('perf', ['report', '-i', file, '--stdio', '-n', '--sort', 'dso,sym'], { encoding: 'utf8', maxBuffer: 1 << 28 });
  rmSync(file, { force: true });
  if (run.errors) throw new Error(`${run.errors} requests failed; first: ${run.firstError}`);
  const byKind = new Map();
  for (const line of report.stdout.split('\n')) {
    const m = line.match(/^\s*[\d.]+%\s+(\d+)\s+(\S+(?: tid \d+)?)\s+\[.\]\s+(.*)$/);
    if (!m) continue;
    const k = kind(m[2], m[3].trim());
    byKind.set(k, (byKind.get(k) ?? 0) + (Number(m[1]) * 1e6) / HZ / n);
  }
  return byKind;
}

const sim = await T.startSimulator();
const token = T.accessToken(T.edgechatVars(sim.url).JWT_SECRET);
const SPECS = T.instantD1Requests(token);
const spec = SPECS[scenario];
if (!spec) throw new Error(`unknown scenario ${scenario}: one of ${Object.keys(SPECS).join(', ')}`);
const w = await T.startEdgechat(sim.url, { instantD1: true });
// The first list request fills the KV page that the reference reads too.
await latencyRun(w.url, SPECS.hit, { n: 1, warmup: 0 });
const [pid] = w.pids();
try {
  const edgechat = await sampled(pid, w.url, spec);
  const reference = await sampled(pid, w.reference.url, spec);
  const total = (m) => [...m.values()].reduce((a, b) => a + b, 0);
  console.log(`${scenario}: CPU per request by kind of work, µs (perf, ${n} requests each; D1 replaced by bench/instant-d1.js)`);
  console.log(`${'kind'.padEnd(50)} ${'edgechat'.padStart(9)} ${'plain JS'.padStart(9)} ${'difference'.padStart(11)}`);
  const kinds = [...new Set([...edgechat.keys(), ...reference.keys()])].sort((a, b) => (edgechat.get(b) ?? 0) - (edgechat.get(a) ?? 0));
  for (const k of [...kinds, 'all']) {
    const [e, r] = k === 'all' ? [total(edgechat), total(reference)] : [edgechat.get(k) ?? 0, reference.get(k) ?? 0];
    console.log(`${k.padEnd(50)} ${e.toFixed(0).padStart(9)} ${r.toFixed(0).padStart(9)} ${`${e >= r ? '+' : '−'}${Math.abs(e - r).toFixed(0)}`.padStart(11)}`);
  }
  console.log('The two runs follow each other, so the machine\'s drift between them is in the totals; the shares within a run are steadier.');
} finally {
  await T.stopAll();
}
