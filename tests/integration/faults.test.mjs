// The fault suite: every simulator fault mode on the chat and gateway endpoints, and the
// client going away at each stage. Every chat turn ends with a finalized assistant message
// and every gateway call with a usage record, each with the right status. Runs against a
// worker of its own in bare workerd: wrangler dev's proxy does not always pass a client's
// departure on to the worker, which is exactly what these tests are about.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api as call } from '../support/client.mjs';
import { PASSWORD, uniqueEmail } from '../support/accounts.mjs';
import { eventually, simRequests } from '../support/sim.mjs';
import { simVars, TEST_VARS } from '../support/stack.mjs';
import { startBareWorker } from '../support/miniflare.mjs';

let worker;
let BASE;
before(async () => {
  // Two paces of their own: gaps longer than the heartbeat (300 ms) but shorter than the stall
  // timeout (1,500 ms), and a gap longer than the stall timeout.
  const routes = JSON.parse(TEST_VARS.MODEL_ROUTES);
  routes.models.paced = { provider: 'openai', upstream: 'sim-small+tokens=3+interval=700' };
  routes.models.stall = { provider: 'openai', upstream: 'sim-small+tokens=3+interval=2500' };
  // The old rule (a turn stops when its last reader leaves): the departure test below checks
  // it at every stage of a turn.
  worker = await startBareWorker(simVars({ MODEL_ROUTES: JSON.stringify(routes), TURN_CANCEL_ON_DISCONNECT: 'true' }));
  BASE = worker.url;
});
after(() => worker?.stop());

const api = (method, path, opts = {}) => call(method, path, { base: BASE, ...opts });
async function registerUser() {
  const res = await api('POST', '/api/v1/auth/register', { json: { email: uniqueEmail('fault'), password: PASSWORD } });
  assert.equal(res.status, 201, res.text);
  return res.body;
}
const unique = (t) => `${t} [${randomBytes(4).toString('hex')}]`;

/** Sends a chat turn as SSE and aborts after `abortAfterMs` (or reads to the end). */
async function chatTurn(token, model, content, abortAfterMs) {
  const conv = (await api('POST', '/api/v1/conversations', { token, json: { model } })).body;
  const controller = new AbortController();
  const timer = abortAfterMs ? setTimeout(() => controller.abort(), abortAfterMs) : null;
  let text = '';
  try {
    const res = await fetch(`${BASE}/api/v1/conversations/${conv.conversation_id}/messages`, {
      method: 'POST', signal: controller.signal,
      headers: { accept: 'text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ content }),
    });
    for await (const chunk of res.body) text += Buffer.from(chunk).toString();
  } catch (err) {
    if (err.name !== 'AbortError') throw err;
  } finally {
    clearTimeout(timer);
  }
  const assistant = await eventually(async () => {
    const msgs = (await api('GET', `/api/v1/conversations/${conv.conversation_id}/messages`, { token })).body.data;
    const a = msgs.find((m) => m.role === 'assistant');
    return a && a.status !== 'streaming' ? { a, msgs } : null;
  }, { what: `the ${model} turn to be finalized`, timeoutMs: 10000 });
  return { ...assistant, sse: text };
}

/** The usage record of the user's newest gateway call, once written. */
async function lastUsage(userId, count) {
  return eventually(async () => {
    const r = await worker.db.prepare("SELECT model, status, completion_tokens FROM usage_records WHERE user_id = ? AND source = 'gateway' ORDER BY created_at").bind(userId).all();
    return r.results.length >= count ? r.results : null;
  }, { what: 'usage records', timeoutMs: 20000 });
}

async function gatewayCall(token, model, content, { stream = false, abortAfterMs, extra = {} } = {}) {
  const controller = new AbortController();
  const timer = abortAfterMs ? setTimeout(() => controller.abort(), abortAfterMs) : null;
  let status = 0;
  let text = '';
  try {
    const res = await fetch(`${BASE}/v1/chat/completions`, {
      method: 'POST', signal: controller.signal,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ model, stream, messages: [{ role: 'user', content }], ...extra }),
    });
    status = res.status;
    for await (const chunk of res.body) text += Buffer.from(chunk).toString();
    return { status, text };
  } catch (err) {
    if (err.name === 'AbortError') return { status: 0, text: '' };
    // The connection was reset mid-body (a pass-through stream whose upstream broke off).
    if (status === 200) return { status, text };
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

test('chat: every fault mode ends in a finalized assistant message with the right status', async () => {
  const u = await registerUser();
  const cases = [
    ['sim-small', 'complete'], ['flaky', 'complete'], ['broken', 'complete'], ['malformed', 'complete'],
    ['claude', 'complete'], ['hang', 'error'], ['cut', 'error'],
  ];
  for (const [model, status] of cases) {
    const { a, msgs } = await chatTurn(u.access_token, model, unique(`fault ${model}`));
    assert.equal(a.status, status, `${model}: ${a.status}`);
    assert.equal(msgs.length, 2, `${model}: the user message is kept`);
    assert.ok(a.usage, `${model}: usage stored`);
    if (status === 'complete') assert.ok(a.content.length > 0, model);
  }
});

test('chat, with TURN_CANCEL_ON_DISCONNECT: the client going away at each stage ends the turn as cancelled', async () => {
  const u = await registerUser();
  // While the upstream has sent nothing yet (detected by the heartbeat).
  const before = await chatTurn(u.access_token, 'hang', unique('leave before first byte'), 400);
  assert.equal(before.a.status, 'cancelled');
  assert.equal(before.a.content, '');
  // During a retry's backoff. A departure is noticed when a heartbeat write fails, so the
  // one retry already scheduled may still go out; nothing after it does.
  const backoff = unique('leave during backoff');
  const retrying = await chatTurn(u.access_token, 'flaky', backoff, 500);
  assert.equal(retrying.a.status, 'cancelled');
  assert.ok((await simRequests(backoff)).length <= 2);
  // Mid-stream.
  const mid = await chatTurn(u.access_token, 'slow', unique('leave mid stream'), 600);
  assert.equal(mid.a.status, 'cancelled');
  assert.ok(mid.a.content.length > 0);
  // After the end: nothing changes.
  const after = await chatTurn(u.access_token, 'sim-small', unique('stay to the end'));
  assert.equal(after.a.status, 'complete');
  assert.match(after.sse, /event: done/);
});

test('gateway: every fault mode ends in a usage record with the right status', async () => {
  const u = await registerUser();
  const expected = [];
  for (const [model, stream, httpStatus, status] of [
    ['sim-small', false, 200, 'complete'], ['flaky', false, 200, 'complete'], ['broken', false, 200, 'complete'],
    // A stream its upstream cut off after its first output is recorded as cut (and charged).
    ['hang', false, 504, 'error'], ['cut', false, 502, 'error'], ['cut', true, 200, 'cut'],
    ['malformed', true, 200, 'complete'], ['claude', true, 200, 'complete'],
  ]) {
    const res = await gatewayCall(u.access_token, model, unique(`gw ${model}`), { stream });
    assert.equal(res.status, httpStatus, `${model} stream=${stream}: ${res.text.slice(0, 200)}`);
    // A passed-through stream stops where its upstream broke off, without `data: [DONE]`
    // (the connection may also be reset); a translated one ends with an error event.
    if (stream && status === 'cut') assert.doesNotMatch(res.text, /\[DONE\]/, `${model}: no [DONE]`);
    if (stream && status === 'complete') assert.match(res.text, /data: \[DONE\]/);
    expected.push([model === 'broken' ? 'sim-large' : model, status]);
  }
  const rows = await lastUsage(u.user.user_id, expected.length);
  assert.deepEqual(rows.map((r) => [r.model, r.status]), expected);
});

test('gateway: a client leaving a stream is recorded as cancelled and frees its slot', async () => {
  const u = await registerUser();
  await gatewayCall(u.access_token, 'hang', unique('leave gw before first byte'), { stream: true, abortAfterMs: 400 });
  await gatewayCall(u.access_token, 'slow', unique('leave gw mid stream'), { stream: true, abortAfterMs: 600 });
  const rows = await lastUsage(u.user.user_id, 2);
  const by = Object.fromEntries(rows.map((r) => [r.model, r]));
  assert.deepEqual([by.hang.status, by.slow.status], ['cancelled', 'cancelled']);
  assert.equal(by.hang.completion_tokens, 0);
  assert.ok(by.slow.completion_tokens > 0, 'what was generated before the client left is counted');
  // The default plan allows 2 concurrent streams: both slots were released.
  const again = await Promise.all([1, 2].map(() => gatewayCall(u.access_token, 'sim-small', unique('after'), { stream: true })));
  assert.deepEqual(again.map((r) => r.status), [200, 200]);
});

test('chat: a turn whose model pauses longer than the heartbeat gets pings between deltas and completes', async () => {
  const u = await registerUser();
  const { a, sse } = await chatTurn(u.access_token, 'paced', unique('paced turn'));
  const events = sse.split('\n\n');
  const firstDelta = events.findIndex((e) => e.includes('event: delta'));
  const lastDelta = events.findLastIndex((e) => e.includes('event: delta'));
  const pingsBetween = events.slice(firstDelta, lastDelta).filter((e) => e.startsWith(': ping')).length;
  assert.ok(pingsBetween >= 2, `${pingsBetween} heartbeats during the 700 ms gaps (heartbeat 300 ms)`);
  assert.match(sse, /event: done/);
  assert.equal(a.status, 'complete');
  assert.equal(a.content.trim().split(/\s+/).length, 3, 'all three tokens stored');
});

test('chat: a turn whose model stalls mid-stream ends with upstream_timeout at the stall timeout, keeping what came', async () => {
  const u = await registerUser();
  const started = Date.now();
  const { a, sse } = await chatTurn(u.access_token, 'stall', unique('stalled turn'));
  const took = Date.now() - started;
  assert.match(sse, /event: delta/, 'the first token was relayed');
  assert.match(sse, /event: error\n[^]*"code":"upstream_timeout"/);
  assert.ok(took < 2400, `ended at the 1,500 ms stall timeout, not at the upstream's next chunk (${took} ms)`);
  assert.equal(a.status, 'error');
  assert.ok(a.content.trim().length > 0, 'the partial answer is kept');
});

/** The data payloads of a stream's SSE events. */
const dataOf = (text) => text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));

test('gateway: a passed-through stream with long gaps arrives whole and is counted', async () => {
  const u = await registerUser();
  const res = await gatewayCall(u.access_token, 'paced', unique('paced stream'), {
    stream: true, extra: { stream_options: { include_usage: true } },
  });
  assert.equal(res.status, 200);
  const data = dataOf(res.text);
  assert.equal(data.at(-1), '[DONE]');
  const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
  assert.equal(chunks.at(-1).usage.completion_tokens, 3);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text.trim().split(/\s+/).length, 3, 'all three tokens arrived');
  const [row] = await lastUsage(u.user.user_id, 1);
  assert.deepEqual([row.model, row.status, row.completion_tokens], ['paced', 'complete', 3]);
});

test('gateway: a passed-through stream that stalls mid-stream stops after the stall timeout, without [DONE]', async () => {
  const u = await registerUser();
  const started = Date.now();
  const res = await gatewayCall(u.access_token, 'stall', unique('stalled stream'), { stream: true });
  const took = Date.now() - started;
  assert.equal(res.status, 200);
  assert.ok(res.text.includes('"role":"assistant"'), 'the first chunk was relayed');
  assert.ok(took < 2500, `cut off at the 1,500 ms stall timeout, not at the upstream's next chunk (${took} ms)`);
  assert.doesNotMatch(res.text, /\[DONE\]/);
  const [row] = await lastUsage(u.user.user_id, 1);
  assert.equal(row.status, 'cut', 'a stream stalled after its first output is recorded as cut');
});

test('gateway: a stream whose upstream sends nothing gets heartbeats, then a timeout error event', async () => {
  const u = await registerUser();
  const res = await gatewayCall(u.access_token, 'hang', unique('silent stream'), { stream: true });
  assert.equal(res.status, 200);
  assert.match(res.text, /^: ping\n\n/, 'heartbeats while waiting (SSE_HEARTBEAT_MS is 300)');
  const data = dataOf(res.text).map((d) => JSON.parse(d));
  assert.equal(data.length, 1, res.text);
  assert.equal(data[0].error.code, 'upstream_timeout');
  const [row] = await lastUsage(u.user.user_id, 1);
  assert.deepEqual([row.status, row.completion_tokens], ['error', 0]);
});
