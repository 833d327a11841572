// Turns that outlive their connection: a turn runs in its user's Durable Object whoever reads
// it; readers resume with Last-Event-ID (or ?after=) and get the same event ids; a turn is
// stopped from any connection with POST .../cancel; an Idempotency-Key makes a repeated send
// return the same turn; an object restarted mid-turn ends the turn as `error` with what it had
// sent and gives back its reservation and stream slot. Runs its own worker (restarted by the
// last test) on the test run's simulator.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { api, expectError } from '../support/client.mjs';
import { PASSWORD, uniqueEmail } from '../support/accounts.mjs';
import { streamTurn } from '../support/sse.mjs';
import { eventually, simRequests } from '../support/sim.mjs';
import { TEST_VARS, applyMigrations, execSql, simVars, startWorker } from '../support/stack.mjs';

const routes = JSON.parse(TEST_VARS.MODEL_ROUTES);
Object.assign(routes.models, {
  medium: { provider: 'openai', upstream: 'sim-small+tokens=40+interval=20' },
});
const vars = simVars({ MODEL_ROUTES: JSON.stringify(routes) });

const stateDir = mkdtempSync(path.join(os.tmpdir(), 'edgechat-turns-'));
let worker;
let base;
before(async () => {
  await applyMigrations(stateDir);
  worker = await startWorker({ vars, persistDir: stateDir });
  base = worker.url;
});
after(async () => {
  await worker?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

const call = (method, p, opts = {}) => api(method, p, { base, ...opts });
let n = 0;
const unique = (text) => `[turns-${process.pid}-${Date.now()}-${n++}] ${text}`;

async function registerUser() {
  const res = await call('POST', '/api/v1/auth/register', { json: { email: uniqueEmail('turns'), password: PASSWORD } });
  assert.equal(res.status, 201, res.text);
  return res.body;
}

/** A user and a conversation (without tools: the model sees exactly the history). */
async function setup(model = 'medium') {
  const u = await registerUser();
  const res = await call('POST', '/api/v1/conversations', { token: u.access_token, json: { model, tools: [] } });
  assert.equal(res.status, 201, res.text);
  return { u, token: u.access_token, path: `/api/v1/conversations/${res.body.conversation_id}` };
}

const send = (token, p, json, opts = {}) => streamTurn(`${p}/messages`, { base, token, json, ...opts });
const resume = (token, p, id, opts = {}) => streamTurn(`${p}/messages/${id}/stream`, { base, token, method: 'GET', ...opts });
const messages = async (token, p) => (await call('GET', `${p}/messages?limit=100`, { token })).body.data;
const answerId = (s) => s.events[0].data.assistant_message_id;
const finished = (token, p, id, timeoutMs = 30000) => eventually(async () => {
  const m = (await messages(token, p)).find((x) => x.message_id === id);
  return m && m.status !== 'streaming' ? m : null;
}, { what: 'the answer to be stored', timeoutMs });
const plain = (events) => events.map(({ event, id, data }) => ({ event, id, data }));

test('a reader that leaves after 3 deltas resumes with Last-Event-ID and gets the rest: the joined text is the stored answer', async () => {
  const { token, path: p } = await setup();
  const first = await send(token, p, { content: unique('Tell me about rivers') }, { stopAfterDeltas: 3 });
  assert.ok(first.aborted);
  const seen = first.events.at(-1).id;
  assert.deepEqual(first.events.map((e) => e.id), [1, 2, 3, 4], 'the message event, then 3 deltas');
  const rest = await resume(token, p, answerId(first), { headers: { 'last-event-id': String(seen) } });
  assert.equal(rest.status, 200);
  assert.equal(rest.events[0].id, seen + 1, 'the first event after the one last seen');
  rest.events.forEach((e, i) => assert.equal(e.id, seen + 1 + i, 'ids without gaps'));
  const done = rest.events.at(-1);
  assert.equal(done.event, 'done');
  assert.equal(done.data.assistant_message.status, 'complete');
  assert.equal(first.text + rest.text, done.data.assistant_message.content);
  const stored = await finished(token, p, answerId(first));
  assert.equal(stored.content, first.text + rest.text);
  assert.equal(stored.status, 'complete');

  // A finished turn: the rest and `done` at once, with the ids the live readers had; ?after=
  // is the same as Last-Event-ID.
  const replay = await resume(token, p, answerId(first), { headers: {} });
  assert.deepEqual(plain(replay.events.slice(0, 4)), plain(first.events));
  assert.deepEqual(plain(replay.events.slice(4)), plain(rest.events));
  const byQuery = await streamTurn(`${p}/messages/${answerId(first)}/stream?after=${seen}`, { base, token, method: 'GET' });
  assert.deepEqual(plain(byQuery.events), plain(rest.events));
});

test('two readers of one turn see identical events', async () => {
  const { token, path: p } = await setup();
  let second;
  const first = await send(token, p, { content: unique('Two readers') }, {
    stopWhen: (e) => {
      if (e.event === 'message') second = resume(token, p, e.data.assistant_message_id, { headers: { 'last-event-id': '0' } });
      return false;
    },
  });
  const other = await second;
  assert.equal(first.events.at(-1).event, 'done');
  assert.ok(first.events.length > 5);
  assert.deepEqual(plain(other.events), plain(first.events));
});

test('a client that leaves does not stop the turn; a cancel from another connection does, for every reader', async () => {
  const { token, path: p } = await setup('slow');
  const content = unique('Write a very long story');
  let id;
  let cancelled;
  const reader = await send(token, p, { content }, {
    stopWhen: (e) => {
      if (e.event === 'message') id = e.data.assistant_message_id;
      if (e.event === 'delta' && e.id === 6) cancelled = call('POST', `${p}/messages/${id}/cancel`, { token });
      return false;
    },
  });
  const res = await cancelled;
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.assistant_message.status, 'cancelled');
  const last = reader.events.at(-1);
  assert.equal(last.event, 'done', 'the reader gets the final event');
  assert.equal(last.data.assistant_message.status, 'cancelled');
  assert.equal(res.body.assistant_message.content, reader.text, 'the answer holds what the reader was sent');
  const [rec] = await eventually(async () => {
    const recs = await simRequests(content);
    return recs.length && recs[0].finished_at ? recs : null;
  }, { what: 'the simulator to see the abort' });
  assert.equal(rec.aborted, true);
  assert.ok(rec.tokens_sent < 400, `upstream stopped after ${rec.tokens_sent} tokens`);
  // Cancel is idempotent, and a finished turn answers with its final state.
  const again = await call('POST', `${p}/messages/${id}/cancel`, { token });
  assert.equal(again.status, 200);
  assert.deepEqual(again.body.assistant_message, res.body.assistant_message);
  const { token: t2, path: p2 } = await setup('sim-small');
  const complete = await send(t2, p2, { content: unique('short') });
  const late = await call('POST', `${p2}/messages/${answerId(complete)}/cancel`, { token: t2 });
  assert.equal(late.status, 200);
  assert.equal(late.body.assistant_message.status, 'complete');
  assert.equal(late.body.assistant_message.content, complete.text);
});

test('a cancel before the first byte of the model ends the turn as cancelled', async () => {
  const { token, path: p } = await setup('hang');
  const started = await send(token, p, { content: unique('never answered') }, { stopWhen: (e) => e.event === 'message' });
  const res = await call('POST', `${p}/messages/${answerId(started)}/cancel`, { token });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.assistant_message.status, 'cancelled');
  assert.equal(res.body.assistant_message.content, '');
  const replay = await resume(token, p, answerId(started));
  assert.deepEqual(replay.events.map((e) => e.event), ['message', 'done']);
});

test('an Idempotency-Key repeat returns the same turn and stores nothing new; another body with the key is 422', async () => {
  const { token, path: p } = await setup('sim-small');
  const key = `key-${process.pid}-${Date.now()}`;
  const body = { content: unique('Once only') };
  const headers = { 'idempotency-key': key };
  const first = await send(token, p, body, { headers });
  assert.equal(first.events.at(-1).event, 'done');
  const again = await send(token, p, body, { headers });
  assert.deepEqual(plain(again.events), plain(first.events), 'the same turn from its start');
  const fromThree = await send(token, p, body, { headers: { ...headers, 'last-event-id': '3' } });
  assert.deepEqual(plain(fromThree.events), plain(first.events.slice(3)));
  const json = await call('POST', `${p}/messages`, { token, json: body, headers });
  assert.equal(json.status, 201, json.text);
  assert.equal(json.body.assistant_message.message_id, answerId(first));
  assert.equal(json.body.user_message.message_id, first.events[0].data.user_message.message_id);
  const stored = await messages(token, p);
  assert.deepEqual(stored.map((m) => m.role), ['user', 'assistant'], 'one question, one answer');
  assert.equal((await simRequests(body.content.split(']')[0] + ']')).length, 1, 'one model call');

  const other = await call('POST', `${p}/messages`, { token, json: { content: unique('Another question') }, headers });
  expectError(assert, other, 422, 'idempotency_key_reused');
  const elsewhere = await call('POST', `${p}/messages/${answerId(first)}/regenerate`, { token, json: {}, headers });
  expectError(assert, elsewhere, 422, 'idempotency_key_reused');
  for (const bad of ['has space', 'x'.repeat(256)]) {
    const res = await call('POST', `${p}/messages`, { token, json: { content: 'hi' }, headers: { 'idempotency-key': bad } });
    expectError(assert, res, 400, 'invalid_idempotency_key');
  }
  assert.equal((await messages(token, p)).length, 2, 'refused sends store nothing');

  // Regenerate with a key: one new sibling however often it is sent.
  const regen = { 'idempotency-key': `${key}-regen` };
  const r1 = await streamTurn(`${p}/messages/${answerId(first)}/regenerate`, { base, token, json: {}, headers: regen });
  const r2 = await streamTurn(`${p}/messages/${answerId(first)}/regenerate`, { base, token, json: {}, headers: regen });
  assert.equal(answerId(r2), answerId(r1));
  assert.equal((await messages(token, p)).length, 3);
  // Keys are the user's own: another user's same key starts their own turn.
  const { token: t2, path: p2 } = await setup('sim-small');
  const theirs = await send(t2, p2, body, { headers });
  assert.notEqual(answerId(theirs), answerId(first));
});

test('bad resume and cancel input gets the documented 4xx, never a hang', async () => {
  const { token, path: p } = await setup('sim-small');
  const done = await send(token, p, { content: unique('finished') });
  const id = answerId(done);
  const last = done.events.at(-1).id;
  const get = (headers, suffix = '') => call('GET', `${p}/messages/${id}/stream${suffix}`, { token, headers });
  expectError(assert, await get({ 'last-event-id': String(last + 1) }), 400, 'invalid_event_id');
  expectError(assert, await get({ 'last-event-id': '-1' }), 400, 'invalid_event_id');
  expectError(assert, await get({ 'last-event-id': 'abc' }), 400, 'invalid_event_id');
  expectError(assert, await get({}, '?after=1.5'), 400, 'invalid_event_id');
  const question = done.events[0].data.user_message.message_id;
  expectError(assert, await call('GET', `${p}/messages/${question}/stream`, { token }), 400, 'not_an_answer');
  expectError(assert, await call('POST', `${p}/messages/${question}/cancel`, { token }), 400, 'not_an_answer');
  expectError(assert, await call('GET', `${p}/messages/msg_${'0'.repeat(22)}/stream`, { token }), 404, 'not_found');
  // Another user's turn: 404 on every route, and their turn goes on.
  const { token: t2, path: p2 } = await setup('slow');
  let theirs;
  const running = send(t2, p2, { content: unique('mine') }, {
    stopWhen: (e) => {
      if (e.event === 'message') theirs = e.data.assistant_message_id;
      return e.event === 'delta';
    },
  });
  await running;
  expectError(assert, await call('GET', `${p2}/messages/${theirs}/stream`, { token }), 404, 'not_found');
  expectError(assert, await call('GET', `${p}/messages/${theirs}/stream`, { token }), 404, 'not_found');
  expectError(assert, await call('POST', `${p2}/messages/${theirs}/cancel`, { token }), 404, 'not_found');
  // A running turn: an id beyond its latest event is refused at once.
  const ahead = await call('GET', `${p2}/messages/${theirs}/stream`, { token: t2, headers: { 'last-event-id': '100000' } });
  expectError(assert, ahead, 400, 'invalid_event_id');
  const stopped = await call('POST', `${p2}/messages/${theirs}/cancel`, { token: t2 });
  assert.equal(stopped.body.assistant_message.status, 'cancelled');
});

test('a restart mid-turn ends the turn as error with what it had sent, and frees its reservation and stream slot', async () => {
  const { u, token, path: p } = await setup('slow');
  const first = await send(token, p, { content: unique('Interrupted story') }, { stopAfterDeltas: 5 });
  const id = answerId(first);
  await worker.stop();
  worker = await startWorker({ vars, persistDir: stateDir });
  base = worker.url;
  // The restarted object finds the turn it lost and ends it: its reader gets what had been
  // sent, then `error`.
  const seen = first.events.at(-1).id;
  const rest = await resume(token, p, id, { headers: { 'last-event-id': String(seen) } });
  const last = rest.events.at(-1);
  assert.equal(last.event, 'error', JSON.stringify(rest.events).slice(0, 500));
  assert.equal(last.data.error.code, 'turn_interrupted');
  rest.events.forEach((e, i) => assert.equal(e.id, seen + 1 + i, 'ids without gaps'));
  const stored = await finished(token, p, id);
  assert.equal(stored.status, 'error');
  assert.equal(first.text + rest.text, stored.content, 'every event sent before the restart is kept');
  assert.equal(last.data.assistant_message.content, stored.content);
  const held = await execSql(stateDir, `SELECT (SELECT COUNT(*) FROM active_streams WHERE user_id = '${u.user.user_id}') AS streams, (SELECT COUNT(*) FROM reservations WHERE user_id = '${u.user.user_id}') AS reservations`);
  assert.deepEqual(held[0].results[0], { streams: 0, reservations: 0 });
  const usage = (await call('GET', '/api/v1/usage', { token })).body;
  assert.ok(usage.today.tokens_used > 0, 'the interrupted call is billed');
});

test('deleting the account stops its running turns before the account is gone', async () => {
  const { token, path: p } = await setup('slow');
  const content = unique('Outlive me');
  await send(token, p, { content }, { stopAfterDeltas: 2 });
  const res = await call('DELETE', '/api/v1/users/me', { token, json: { current_password: PASSWORD } });
  assert.equal(res.status, 204, res.text);
  const [rec] = await eventually(async () => {
    const recs = await simRequests(content);
    return recs.length && recs[0].finished_at ? recs : null;
  }, { what: 'the simulator to see the abort' });
  assert.equal(rec.aborted, true, 'the model call was stopped');
  assert.ok(rec.tokens_sent < 400);
});
