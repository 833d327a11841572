// The trap guard (src/js/trap.js) around the wasm fetch handler: what a client and the log see
// when the instance traps, and that the next request gets a fresh instance. The wasm's trap is
// a real WebAssembly.RuntimeError; the handler it interrupts is a stand-in that never answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { guard } from '../../src/js/trap.js';

const trap = () => new WebAssembly.RuntimeError('unreachable');
const request = (path, id) =>
  new Request(`http://edgechat.test${path}`, { headers: id === undefined ? {} : { 'x-request-id': id } });

function harness() {
  const calls = { handled: 0, resets: 0, lines: [] };
  let behaviour = () => new Response('ok');
  const g = guard(
    (req) => {
      calls.handled++;
      return behaviour(req);
    },
    () => calls.resets++,
    (line) => calls.lines.push(JSON.parse(line)),
  );
  return { g, calls, behave: (fn) => (behaviour = fn) };
}

test('a trap in the handler answers the JSON 500 with the request id and logs one line', async () => {
  const { g, calls, behave } = harness();
  behave(() => Promise.reject(trap()));
  const res = await g.fetch(request('/api/v1/conversations', 'req-1'));
  assert.equal(res.status, 500);
  assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(res.headers.get('x-request-id'), 'req-1');
  assert.deepEqual(await res.json(), { error: { code: 'internal_error', message: 'internal error', request_id: 'req-1' } });
  assert.equal(calls.lines.length, 1);
  assert.equal(calls.lines[0].request_id, 'req-1');
  assert.equal(calls.lines[0].status, 500);
  assert.equal(calls.lines[0].cause, 'RuntimeError: unreachable');
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

test('a trap seen by the global error listener fails every waiting request, and only the next request resets', async () => {
  const { g, calls, behave } = harness();
  behave(() => new Promise(() => {})); // the wasm never answers: its future died with the instance
  const waiting = [g.fetch(request('/health', 'a')), g.fetch(request('/health', 'a'))];
  assert.equal(g.trapped({ error: trap() }), true);
  const answers = await Promise.all(waiting);
  assert.deepEqual(answers.map((r) => r.status), [500, 500]);
  assert.equal(calls.lines.length, 2);
  assert.equal(calls.resets, 0);
  behave(() => new Response('fresh'));
  const next = await g.fetch(request('/health'));
  assert.equal(await next.text(), 'fresh');
  assert.equal(calls.resets, 1);
  await g.fetch(request('/health'));
  assert.equal(calls.resets, 1, 'a healthy instance is not reset again');
});

test('an error that is not a trap passes through without a reset or a log line', async () => {
  const { g, calls, behave } = harness();
  behave(() => Promise.reject(new TypeError('boom')));
  await assert.rejects(g.fetch(request('/health')), TypeError);
  assert.equal(g.trapped({ error: new TypeError('other') }), false);
  behave(() => new Response('ok'));
  await g.fetch(request('/health'));
  assert.equal(calls.resets, 0);
  assert.equal(calls.lines.length, 0);
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
  behave(async () => new Response('body', { status: 201, headers: { 'x-a': '1' } }));
  const res = await g.fetch(request('/health'));
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('x-a'), '1');
  assert.equal(await res.text(), 'body');
  g.trapped({ error: trap() }); // nothing is waiting any more
  assert.equal(calls.lines.length, 0);
});
