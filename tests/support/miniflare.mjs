// Runs the built worker in bare workerd through the Miniflare API (no wrangler dev proxy in
// front), with fresh in-memory D1 and KV and the migrations applied: for load tests.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Miniflare } from 'miniflare';
import { ROOT } from './stack.mjs';

const wranglerToml = readFileSync(path.join(ROOT, 'wrangler.toml'), 'utf8');
/** The worker's compatibility date and flags, as wrangler.toml sets them for wrangler dev. */
export const COMPAT_DATE = wranglerToml.match(/^compatibility_date\s*=\s*"([^"]+)"/m)[1];
export const COMPAT_FLAGS = [...(wranglerToml.match(/^compatibility_flags\s*=\s*\[([^\]]*)\]/m)?.[1] ?? '').matchAll(/"([^"]+)"/g)].map((m) => m[1]);

/**
 * A module worker's code for Miniflare 5, which finds no imports by itself: `main` (an ES
 * module) and every other module it imports, as paths relative to `root` (their module names):
 * `.wasm` files are compiled WebAssembly modules, the rest ES modules.
 */
export function workerManifest(root, main, others = []) {
  const modules = {};
  for (const name of [main, ...others]) {
    const file = path.join(root, name);
    modules[name] = name.endsWith('.wasm')
      ? { type: 'wasm', contents: new Uint8Array(readFileSync(file)) }
      : { type: 'esm', contents: readFileSync(file, 'utf8') };
  }
  return { mainModule: main, modulesRoot: root, modules };
}

/** A built worker (build/index.js and the wasm beside it) as a Miniflare 5 manifest. */
export function buildManifest(buildDir = path.join(ROOT, 'build')) {
  const wasm = readdirSync(buildDir).filter((f) => f.endsWith('.wasm')).sort();
  return workerManifest(buildDir, 'index.js', wasm);
}

/**
 * Miniflare 5's environment for a worker: each var a text (or JSON) binding, `d1` and `kv`
 * map binding names to database / namespace ids, `objects` binding names to Durable Object
 * classes the worker named `worker` exports.
 */
export function workerEnv({ vars = {}, d1 = {}, kv = {}, objects = {}, worker = 'edgechat' } = {}) {
  const env = {};
  for (const [name, value] of Object.entries(vars)) env[name] = typeof value === 'string' ? { type: 'text', value } : { type: 'json', value };
  for (const [name, id] of Object.entries(d1)) env[name] = { type: 'd1', id };
  for (const [name, id] of Object.entries(kv)) env[name] = { type: 'kv', id };
  for (const [name, exportName] of Object.entries(objects)) env[name] = { type: 'durable-object', worker, exportName };
  return env;
}

/** edgechat's Durable Objects, as wrangler.toml declares them: binding name -> class. */
export const OBJECTS = { TURNS: 'UserTurns' };

/** Miniflare 5's `exports` for SQLite-backed Durable Object classes. */
export function objectExports(classes) {
  return Object.fromEntries(classes.map((name) => [name, { type: 'durable-object', storage: 'sqlite' }]));
}

/**
 * Splits a migration file into statements: `;` ends a statement except inside a
 * CREATE TRIGGER ... BEGIN ... END; block. `--` comments are dropped.
 */
export function splitSql(sql) {
  const statements = [];
  let current = '';
  for (const raw of sql.split('\n')) {
    const line = raw.replace(/--.*$/, '').trimEnd();
    if (!line.trim()) continue;
    current += `${line}\n`;
    const text = current.trim();
    const inTrigger = /^CREATE\s+(TEMP\s+|TEMPORARY\s+)?TRIGGER\b/i.test(text);
    if (text.endsWith(';') && (!inTrigger || /\bEND;$/i.test(text))) {
      statements.push(text);
      current = '';
    }
  }
  if (current.trim()) statements.push(current.trim());
  return statements;
}

/** Applies migrations/*.sql in order to a Miniflare D1 database and checks the main tables exist. */
export async function applyMigrations(db) {
  const dir = path.join(ROOT, 'migrations');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
    await db.batch(splitSql(readFileSync(path.join(dir, file), 'utf8')).map((s) => db.prepare(s)));
  }
  const { results } = await db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all();
  const tables = new Set(results.map((r) => r.name));
  for (const t of ['users', 'sessions', 'conversations', 'messages']) {
    if (!tables.has(t)) throw new Error(`migrations did not create table ${t}`);
  }
}

/** workerd processes started by this Node process. */
function childWorkerds() {
  const out = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return out.split('\n').map((l) => l.trim().split(/\s+/)).filter(([, comm]) => comm === 'workerd').map(([pid]) => Number(pid));
}

/** Resident memory (KiB) of the given processes. */
export function rssKib(pids) {
  return pids.reduce((n, pid) => {
    try {
      return n + Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
    } catch {
      return n;
    }
  }, 0);
}

/** Starts build/index.js with `vars`; returns { url, db, pids, wasmMemoryKib, stop }. */
export async function startBareWorker(vars) {
  const before = new Set(childWorkerds());
  let wasmKib = 0;
  const mf = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    workers: [{
      config: {
        name: 'edgechat',
        compatibilityDate: COMPAT_DATE,
        compatibilityFlags: COMPAT_FLAGS,
        manifest: buildManifest(),
        env: workerEnv({ vars, d1: { DB: 'load-db' }, kv: { CACHE: 'CACHE' }, objects: OBJECTS }),
        exports: objectExports(Object.values(OBJECTS)),
      },
    }],
    // The worker's request log lines carry its wasm memory: keep the latest figure.
    handleStructuredLogs({ message }) {
      const m = message.match(/"wasm_memory_kib":(\d+)/g);
      if (m) wasmKib = Number(m.at(-1).split(':')[1]);
      if (process.env.EDGECHAT_BARE_LOG) process.stderr.write(`${message}\n`);
    },
  });
  const url = (await mf.ready).href.replace(/\/$/, '');
  const db = await mf.getD1Database('DB');
  await applyMigrations(db);
  const pids = childWorkerds().filter((p) => !before.has(p));
  return { url, db, pids, wasmMemoryKib: () => wasmKib, stop: () => mf.dispose() };
}
