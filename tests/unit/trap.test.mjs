// The trap guard (src/js/trap.js) around the wasm fetch handler: what a client and the log see
// when the instance dies, and that a fresh instance takes over. The wasm's trap is a real
// WebAssembly.RuntimeError; the handler it interrupts is a stand-in that never answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { guard, isFatal, MAX_WAIT_MS } from '../../src/js/trap.js';

const trap = () => new WebAssembly.RuntimeError('unreachable');
const request = (path, id) =>
  new Request(`http://edgechat.test${path}`, { headers: id === undefined ? {} : { 'x-request-id': id } });
const never = () => new Promise(() => {}); // the wasm never answers: its future died with the instance

function harness({ failResets = 0 } = {}) {
  const calls = { handled: 0, resets: 0, lines: [] };
  let behaviour = () => new Response('ok');
  let clock = 1_000_000;
  const g = guard(
    (req) => {
      calls.handled++;
      return behaviour(req);
    },
    () => {
      calls.resets++;
      if (failResets-- > 0) throw new RangeError('out of memory');
    },
    (line) => calls.lines.push(JSON.parse(line)),
    () => clock,
  );
  return { g, calls, behave: (fn) => (behaviour = fn), advance: (ms) => (clock += ms) };
}
const requestLines = (calls) => calls.lines.filter((l) => l.msg === 'request');
const trapLines = (calls) => calls.lines.filter((l) => l.msg === 'wasm trap');

test('a trap in the handler answers the JSON 500 with the request id, logs it, and replaces the instance', async () => {
  const { g, calls, behave } = harness();
  behave(() => Promise.reject(trap()));
  const res = await g.fetch(request('/api/v1/conversations', 'req-1'));
  assert.equal(res.status, 500);
  assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(res.headers.get('x-request-id'), 'req-1');
  assert.deepEqual(await res.json(), { error: { code: 'internal_error', message: 'internal error', request_id: 'req-1' } });
  assert.equal(trapLines(calls).length, 1);
  assert.equal(trapLines(calls)[0].cause, 'RuntimeError: unreachable');
  assert.deepEqual(requestLines(calls).map((l) => [l.level, l.request_id, l.status, l.error_code]), [['error', 'req-1', 500, 'internal_error']]);
  assert.equal(calls.resets, 1, 'replaced at once, before any other Rust code runs on it');
});

test('on /v1 the 500 is in the OpenAI error shape', async () => {
  const { g, behave } = harness();
  behave(() => {
    throw trap();
  });
  const res = await g.fetch(request('/v1/chat/completions', 'req-2'));
  assert.equal(res.status, 500);
  assert.deepEqual(await res.json(), {
    error: { message: 'internal error', type: 'server_error', param: null, code: 'internal_error' },
  });
});

test('a trap seen by the global error listener fails every waiting request, once', async () => {
  const { g, calls, behave } = harness();
  behave(never);
  const waiting = [g.fetch(request('/health', 'a')), g.fetch(request('/health', 'a'))];
  const error = trap();
  assert.equal(g.trapped({ error }), true);
  assert.equal(g.trapped({ reason: error }), true, 'the same error reported again');
  const answers = await Promise.all(waiting);
  assert.deepEqual(answers.map((r) => r.status), [500, 500]);
  assert.equal(trapLines(calls).length, 1);
  assert.equal(trapLines(calls)[0].requests_waiting, 2);
  assert.equal(requestLines(calls).length, 2);
  assert.equal(calls.resets, 1);
  behave(() => new Response('fresh'));
  assert.equal(await (await g.fetch(request('/health'))).text(), 'fresh');
  assert.equal(calls.resets, 1, 'a healthy instance is not reset again');
});

test('a trap with no request waiting is still logged, and the instance replaced', () => {
  const { g, calls } = harness();
  assert.equal(g.trapped({ error: trap() }), true);
  assert.deepEqual(trapLines(calls).map((l) => l.requests_waiting), [0]);
  assert.equal(calls.resets, 1);
});

test('an exception that crossed wasm frames is fatal; one that did not passes through', async () => {
  const crossed = new TypeError('invalid header value');
  crossed.stack = 'TypeError: invalid header value\n    at respond (index.js:1:1)\n    at wasm://wasm/0012abcd:wasm-function[812]:0x4f2a1';
  assert.equal(isFatal(crossed), true);
  assert.equal(isFatal(trap()), true);
  assert.equal(isFatal(new TypeError('boom')), false);
  assert.equal(isFatal(undefined), false);

  const { g, calls, behave } = harness();
  behave(() => Promise.reject(new TypeError('boom')));
  await assert.rejects(g.fetch(request('/health')), TypeError);
  assert.equal(g.trapped({ error: new TypeError('other') }), false);
  assert.equal(calls.resets, 0);
  assert.equal(calls.lines.length, 0);
  behave(() => Promise.reject(crossed));
  assert.equal((await g.fetch(request('/health'))).status, 500);
  assert.equal(calls.resets, 1);
});

test('when the instance cannot be replaced, requests get the JSON 500 and each one tries again', async () => {
  const { g, calls, behave } = harness({ failResets: 2 });
  behave(() => Promise.reject(trap()));
  assert.equal((await g.fetch(request('/health', 'first'))).status, 500);
  assert.equal(calls.resets, 1);
  assert.equal(calls.lines.filter((l) => l.msg === 'wasm reset failed').length, 1);
  behave(() => new Response('ok'));
  const second = await g.fetch(request('/health', 'second'));
  assert.equal(second.status, 500, 'the reset failed again');
  assert.equal(calls.resets, 2);
  assert.equal(calls.handled, 1, 'nothing ran on the dead instance');
  const third = await g.fetch(request('/health', 'third'));
  assert.equal(await third.text(), 'ok');
  assert.equal(calls.resets, 3);
});

test('a request waiting longer than the runtime allows is forgotten, not failed by a later trap', async () => {
  const { g, calls, behave, advance } = harness();
  behave(never);
  g.fetch(request('/health', 'cancelled')); // the runtime cancelled it: its promise never settles
  advance(MAX_WAIT_MS + 1);
  const live = g.fetch(request('/health', 'live'));
  g.trapped({ error: trap() });
  assert.equal((await live).status, 500);
  assert.equal(trapLines(calls)[0].requests_waiting, 1);
  assert.deepEqual(requestLines(calls).map((l) => l.request_id), ['live']);
});

test('an unsafe incoming request id is replaced by a new one', async () => {
  const { g, behave } = harness();
  behave(() => Promise.reject(trap()));
  for (const bad of ['', 'x'.repeat(129), 'a b', 'id\u00e9']) {
    const res = await g.fetch(request('/health', bad));
    const id = res.headers.get('x-request-id');
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.equal((await res.json()).error.request_id, id);
  }
});

test('answers that come before any trap are passed on untouched', async () => {
  const { g, calls, behave } = harness();
  const sent = new Response('body', { status: 201, headers: { 'x-a': '1' } });
  behave(async () => sent);
  const res = await g.fetch(request('/health'));
  assert.equal(res, sent);
  assert.equal(await res.text(), 'body');
  behave(() => sent);
  assert.equal(g.fetch(request('/health')), sent, 'a response made without waiting is returned as it is');
  g.trapped({ error: trap() }); // nothing is waiting any more
  assert.equal(requestLines(calls).length, 0);
});

// The same guard around the real build (build/index.js and its wasm, made by npm run build),
// loaded in Node with stand-in bindings. A D1 binding whose prepare() throws makes the worker
// panic inside workers-rs (D1Database::prepare unwraps): a real Rust panic, then a trap.
const BUILD = new URL('../../build/', import.meta.url);

class D1Database {
  constructor(prepare) {
    this.prepare = prepare;
  }
}
// Nothing settles after the trap: a callback into the dead instance would only add noise.
const kv = { get: never, getWithMetadata: never, put: never, list: never, delete: never };
const hangingDb = new D1Database(() => ({ bind() { return this; }, all: never, run: never }));
const throwingDb = new D1Database(() => {
  throw new TypeError('prepare refused');
});
const env = (db) => ({ DB: db, CACHE: kv, JWT_SECRET: '0123456789abcdef0123456789abcdef' });
const ctx = { waitUntil() {}, passThroughOnException() {} };

/** Imports a fresh copy of the built worker; returns its fetch and what it logged. */
async function loadBuild() {
  const { existsSync, mkdtempSync, readFileSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const { pathToFileURL } = await import('node:url');
  const entry = new URL('index.js', BUILD);
  assert.ok(existsSync(entry), 'build/index.js is missing: run npm run build first');
  const wasm = new WebAssembly.Module(readFileSync(new URL('index_bg.wasm', BUILD)));
  // workerd imports the wasm as a compiled module; Node cannot, so the import is rewritten to
  // read it from a global.
  const source = readFileSync(entry, 'utf8');
  const rewritten = source.replace(/import\s*([\w$]+)\s*from\s*["']\.\/index_bg\.wasm["'];?/, 'const $1=globalThis.__edgechatWasm;');
  assert.notEqual(rewritten, source, 'the build imports ./index_bg.wasm');
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'edgechat-trap-')), 'index.mjs');
  writeFileSync(file, rewritten);
  const lines = [];
  const listeners = {};
  globalThis.__edgechatWasm = wasm;
  globalThis.addEventListener = (type, fn) => (listeners[type] = fn);
  const saved = { error: console.error, log: console.log };
  console.error = (...args) => lines.push(['error', args.map(String).join(' ')]);
  console.log = (...args) => lines.push(['log', args.map(String).join(' ')]);
  try {
    const { default: worker } = await import(pathToFileURL(file).href);
    return { worker, lines, listeners, restore: () => Object.assign(console, saved) };
  } catch (e) {
    Object.assign(console, saved);
    throw e;
  }
}

test('the real build: a panic logs its message and location, answers the trapping and the waiting request with the JSON 500, and a fresh instance serves the next', async () => {
  const { worker, lines, restore } = await loadBuild();
  try {
    const health = await worker.fetch(request('/health', 'before'), env(hangingDb), ctx);
    assert.equal(health.status, 200);
    const waiting = worker.fetch(request('/health/ready', 'waiting'), env(hangingDb), ctx);
    assert.ok(waiting instanceof Promise, 'the ready check waits on D1');
    await new Promise((resolve) => setTimeout(resolve, 10)); // it is now waiting on D1, nothing else queued
    const trapping = await worker.fetch(request('/health/ready', 'trapping'), env(throwingDb), ctx);
    assert.equal(trapping.status, 500);
    assert.equal(trapping.headers.get('x-request-id'), 'trapping');
    assert.deepEqual(await trapping.json(), {
      error: { code: 'internal_error', message: 'internal error', request_id: 'trapping' },
    });
    const waited = await waiting;
    assert.equal(waited.status, 500);
    assert.equal((await waited.json()).error.request_id, 'waiting');

    const errors = lines.filter(([level]) => level === 'error').map(([, text]) => text);
    const panic = errors.find((text) => text.includes('panicked at'));
    assert.ok(panic, `the panic is logged: ${JSON.stringify(errors)}`);
    assert.match(panic, /prepare refused/, 'with its message');
    const location = panic.match(/panicked at (\S+):\d+:\d+/)?.[1];
    assert.match(location ?? '', /d1\/mod\.rs$/, 'and its location');
    assert.ok(!location.startsWith('/'), `no build machine path: ${location}`);
    const trap = errors.map((t) => (t.startsWith('{') ? JSON.parse(t) : {})).find((l) => l.msg === 'wasm trap');
    assert.equal(trap?.requests_waiting, 1);
    const failed = errors.map((t) => (t.startsWith('{') ? JSON.parse(t) : {})).filter((l) => l.msg === 'request');
    assert.deepEqual(failed.map((l) => [l.request_id, l.status]).sort(), [['trapping', 500], ['waiting', 500]]);

    const after = await worker.fetch(request('/health', 'after'), env(hangingDb), ctx);
    assert.equal(after.status, 200);
    assert.equal((await after.json()).status, 'ok');
  } finally {
    restore();
  }
});
