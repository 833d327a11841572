// The streaming chat engine against the real worker and the simulator: SSE protocol,
// persistence, stop, retries, fallbacks, timeouts, broken streams, providers, branches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api, expectError } from '../support/client.mjs';
import { registerUser } from '../support/accounts.mjs';
import { streamTurn } from '../support/sse.mjs';
import { eventually, simAnswer, simRequests } from '../support/sim.mjs';

const unique = (text) => `${text} [${randomBytes(4).toString('hex')}]`;

// Plain chat: the conversations offer no tools, so the model is sent exactly the history
// (tool turns are tests/integration/agent_loop.test.mjs).
async function setup(model) {
  const u = await registerUser();
  const c = await api('POST', '/api/v1/conversations', { token: u.access_token, json: { ...(model ? { model } : {}), tools: [] } });
  assert.equal(c.status, 201, c.text);
  return { u, token: u.access_token, id: c.body.conversation_id, path: `/api/v1/conversations/${c.body.conversation_id}` };
}

const messages = async (token, path, query = '') => (await api('GET', `${path}/messages${query}`, { token })).body.data;

test('a streamed answer arrives as ordered deltas over time and is stored exactly', async () => {
  const { token, path } = await setup();
  const content = unique('Tell me about tides');
  const s = await streamTurn(`${path}/messages`, { token, json: { content } });
  assert.equal(s.status, 200);
  assert.match(s.headers.get('content-type'), /^text\/event-stream/);
  const names = s.events.map((e) => e.event);
  assert.equal(names[0], 'message');
  assert.equal(names.at(-1), 'done');
  assert.ok(names.slice(1, -1).every((n) => n === 'delta'));
  assert.ok(names.length >= 10, `only ${names.length} events`);
  const ids = s.events.map((e) => e.id);
  assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
  assert.equal(new Set(ids).size, ids.length, 'ids increase strictly');
  const deltas = s.events.filter((e) => e.event === 'delta');
  assert.ok(deltas.at(-1).at - deltas[0].at >= 150, 'deltas spread over time, not sent at once');
  assert.ok(s.reads >= 5, `read in ${s.reads} chunks`);

  const first = s.events[0].data;
  assert.equal(first.user_message.content, content);
  assert.equal(first.user_message.role, 'user');
  const expected = await simAnswer('sim-small+tokens=24+interval=15', [{ role: 'user', content }]);
  assert.equal(s.text, expected);
  const done = s.events.at(-1).data.assistant_message;
  assert.equal(done.message_id, first.assistant_message_id);
  assert.equal(done.content, expected);
  assert.equal(done.status, 'complete');
  assert.equal(done.parent_id, first.user_message.message_id);
  assert.equal(done.model, 'sim-small');
  assert.equal(done.provider, 'openai');
  assert.equal(done.usage.completion_tokens, 24);
  assert.equal(done.usage.is_estimated, false);
  assert.ok(done.time_to_first_token_ms >= 0 && done.duration_ms >= done.time_to_first_token_ms);

  const stored = await messages(token, path);
  assert.deepEqual(stored.map((m) => [m.role, m.content, m.status]), [['user', content, 'complete'], ['assistant', expected, 'complete']]);
  const conv = (await api('GET', path, { token })).body;
  assert.equal(conv.title, content, 'the first exchange titles the conversation');
  assert.equal(conv.message_count, 2);
});

test('JSON mode answers the same message when done', async () => {
  const { token, path } = await setup();
  const content = unique('Explain rainbows');
  const res = await api('POST', `${path}/messages`, { token, json: { content } });
  assert.equal(res.status, 201, res.text);
  const expected = await simAnswer('sim-small+tokens=24+interval=15', [{ role: 'user', content }]);
  assert.equal(res.body.assistant_message.content, expected);
  assert.equal(res.body.assistant_message.status, 'complete');
  assert.equal(res.body.user_message.content, content);
  const stored = await messages(token, path);
  assert.equal(stored[1].message_id, res.body.assistant_message.message_id);
});

test('the second turn sends the history as context', async () => {
  const { token, path } = await setup();
  const one = unique('First question');
  const two = unique('Second question');
  const a1 = (await api('POST', `${path}/messages`, { token, json: { content: one } })).body.assistant_message;
  await api('POST', `${path}/messages`, { token, json: { content: two } });
  const [req] = await simRequests(two);
  assert.deepEqual(req.body.messages.map((m) => [m.role, m.content]), [['user', one], ['assistant', a1.content], ['user', two]]);
  assert.equal(req.body.stream, true);
});

test('when the client disconnects, the turn runs on to its end and is stored complete', async () => {
  const { token, path } = await setup('slow');
  const content = unique('Write a very long story');
  const s = await streamTurn(`${path}/messages`, { token, json: { content }, stopAfterDeltas: 5 });
  assert.ok(s.aborted);
  const assistant = await eventually(async () => {
    const m = (await messages(token, path)).find((x) => x.role === 'assistant');
    return m && m.status !== 'streaming' ? m : null;
  }, { what: 'the assistant message to be finalized', timeoutMs: 30000 });
  assert.equal(assistant.status, 'complete');
  assert.ok(assistant.content.startsWith(s.text), 'keeps what the client saw');
  assert.ok(assistant.content.length > s.text.length, 'and the rest the client never read');
  const [rec] = await simRequests(content);
  assert.equal(rec.aborted, false, 'the upstream ran to its end');
  assert.ok(assistant.usage.completion_tokens >= 400, `billed ${assistant.usage.completion_tokens} tokens`);
});

test('a 429 before the first byte is retried and then succeeds', async () => {
  const { token, path } = await setup('flaky');
  const content = unique('Retry me');
  const s = await streamTurn(`${path}/messages`, { token, json: { content } });
  assert.equal(s.events.at(-1).event, 'done', JSON.stringify(s.events.at(-1)));
  assert.equal(s.events.at(-1).data.assistant_message.status, 'complete');
  const recs = await simRequests(content);
  assert.equal(recs.length, 2);
  assert.equal(recs[0].status, 429);
  assert.ok(recs[1].received_at - recs[0].received_at >= 900, 'Retry-After: 1 was honoured');
});

test('a 500 on the primary model falls back to the next model', async () => {
  const { token, path } = await setup('broken');
  const content = unique('Fall back please');
  const s = await streamTurn(`${path}/messages`, { token, json: { content } });
  const done = s.events.at(-1);
  assert.equal(done.event, 'done', JSON.stringify(done));
  assert.equal(done.data.assistant_message.model, 'sim-large');
  const recs = await simRequests(content);
  assert.deepEqual(recs.map((r) => r.model.split('+')[0]), ['sim-small', 'sim-small', 'sim-small', 'sim-large']);
  assert.equal(s.text, await simAnswer('sim-large+tokens=8+interval=5', [{ role: 'user', content }]));
});

test('no first byte in time gives event: error (and 504 in JSON mode), with heartbeats while waiting', async () => {
  const { token, path } = await setup('hang');
  const content = unique('Are you there');
  const s = await streamTurn(`${path}/messages`, { token, json: { content } });
  const last = s.events.at(-1);
  assert.equal(last.event, 'error');
  assert.equal(last.data.error.code, 'upstream_timeout');
  assert.equal(last.data.assistant_message.status, 'error');
  assert.ok(s.pings >= 2, `${s.pings} heartbeats`);
  const json = await api('POST', `${path}/messages`, { token, json: { content: unique('Still there') } });
  expectError(assert, json, 504, 'upstream_timeout');
  const stored = await messages(token, path);
  assert.equal(stored.length, 4, 'both user messages are kept');
  assert.deepEqual(stored.filter((m) => m.role === 'assistant').map((m) => m.status), ['error', 'error']);
});

test('a stream cut mid-way ends with event: error and keeps the partial text once', async () => {
  const { token, path } = await setup('cut');
  const content = unique('Cut me off');
  const s = await streamTurn(`${path}/messages`, { token, json: { content } });
  const last = s.events.at(-1);
  assert.equal(last.event, 'error');
  assert.equal(last.data.error.code, 'upstream_error');
  const full = await simAnswer('sim-small+tokens=20+interval=10', [{ role: 'user', content }]);
  assert.ok(full.startsWith(s.text) && s.text.length > 0 && s.text.length < full.length);
  assert.equal(last.data.assistant_message.status, 'error');
  assert.equal(last.data.assistant_message.content, s.text, 'partial text stored, nothing replayed or duplicated');
  assert.equal(last.data.assistant_message.usage.is_estimated, true);
});

test('a malformed chunk is skipped and the stream completes', async () => {
  const { token, path } = await setup('malformed');
  const s = await streamTurn(`${path}/messages`, { token, json: { content: unique('Malformed ahead') } });
  const last = s.events.at(-1);
  assert.equal(last.event, 'done', JSON.stringify(last));
  assert.equal(last.data.assistant_message.content, s.text);
  assert.ok(s.text.length > 0);
});

test('an Anthropic-format upstream streams the same way', async () => {
  const { token, path } = await setup('claude');
  const content = unique('Hello Claude');
  const s = await streamTurn(`${path}/messages`, { token, json: { content } });
  const done = s.events.at(-1);
  assert.equal(done.event, 'done', JSON.stringify(done));
  assert.ok(s.events.filter((e) => e.event === 'delta').length >= 10);
  const a = done.data.assistant_message;
  assert.equal(a.provider, 'anthropic');
  assert.equal(a.content, s.text);
  assert.equal(a.usage.completion_tokens, 16);
  assert.equal(a.usage.is_estimated, false);
  const [rec] = await simRequests(content);
  assert.equal(rec.path, '/v1/messages');
});

test('regenerate makes a sibling answer; edit-and-resend makes a branch; ?leaf= follows each', async () => {
  const { token, path } = await setup();
  const q1 = unique('Question one');
  const t1 = (await api('POST', `${path}/messages`, { token, json: { content: q1 } })).body;
  const q2 = unique('Question two');
  const t2 = (await api('POST', `${path}/messages`, { token, json: { content: q2 } })).body;

  const regen = await streamTurn(`${path}/messages/${t2.assistant_message.message_id}/regenerate`, { token, json: {} });
  const sibling = regen.events.at(-1).data.assistant_message;
  assert.equal(regen.events[0].data.user_message.message_id, t2.user_message.message_id);
  assert.equal(sibling.parent_id, t2.user_message.message_id);
  assert.notEqual(sibling.message_id, t2.assistant_message.message_id);

  const edited = unique('Question two, edited');
  const t3 = (await api('POST', `${path}/messages`, { token, json: { content: edited, parent_id: t1.assistant_message.message_id } })).body;
  assert.equal(t3.user_message.parent_id, t1.assistant_message.message_id);
  const [req] = await simRequests(edited);
  assert.deepEqual(req.body.messages.map((m) => m.content), [q1, t1.assistant_message.content, edited], 'the branch context excludes the other branch');

  const leaf = async (id) => (await messages(token, path, `?leaf=${id}`)).map((m) => m.message_id);
  assert.deepEqual(await leaf(t2.assistant_message.message_id), [t1.user_message.message_id, t1.assistant_message.message_id, t2.user_message.message_id, t2.assistant_message.message_id]);
  assert.deepEqual(await leaf(sibling.message_id), [t1.user_message.message_id, t1.assistant_message.message_id, t2.user_message.message_id, sibling.message_id]);
  assert.deepEqual(await leaf(t3.assistant_message.message_id), [t1.user_message.message_id, t1.assistant_message.message_id, t3.user_message.message_id, t3.assistant_message.message_id]);
  assert.equal((await messages(token, path)).length, 7);

  const json = await api('POST', `${path}/messages/${t1.user_message.message_id}/regenerate`, { token });
  assert.equal(json.status, 201, json.text);
  assert.equal(json.body.assistant_message.parent_id, t1.user_message.message_id);
});

test('"parent_id": null starts a new root branch (the first question edited); absent follows the latest', async () => {
  const { token, path } = await setup();
  const q1 = unique('First question');
  const t1 = (await api('POST', `${path}/messages`, { token, json: { content: q1 } })).body;
  const titled = (await api('GET', path, { token })).body.title;
  const edited = unique('First question, edited');
  const res = await api('POST', `${path}/messages`, { token, json: { content: edited, parent_id: null } });
  assert.equal(res.status, 201, res.text);
  const root = res.body;
  assert.equal(root.user_message.parent_id, null, 'a second root');
  assert.equal(root.assistant_message.parent_id, root.user_message.message_id);
  const [req] = await simRequests(edited);
  assert.deepEqual(req.body.messages.map((m) => m.content), [edited], 'the new root sees no other branch');
  // Both branches are kept and each can be read by its leaf.
  const all = await messages(token, path);
  assert.equal(all.length, 4);
  assert.equal(all.filter((m) => m.parent_id === null).length, 2);
  const leaf = async (id) => (await messages(token, path, `?leaf=${id}`)).map((m) => m.message_id);
  assert.deepEqual(await leaf(t1.assistant_message.message_id), [t1.user_message.message_id, t1.assistant_message.message_id]);
  assert.deepEqual(await leaf(root.assistant_message.message_id), [root.user_message.message_id, root.assistant_message.message_id]);
  // The title the first question gave stays.
  assert.equal((await api('GET', path, { token })).body.title, titled);
  // Absent: after the newest message (the new branch's answer).
  const next = (await api('POST', `${path}/messages`, { token, json: { content: unique('Follow-up') } })).body;
  assert.equal(next.user_message.parent_id, root.assistant_message.message_id);
  // Bad parents: not a string or null, or a string that is no message here; nothing is stored.
  for (const [parent_id, status] of [[7, 422], [false, 422], [{}, 422], [['msg_x'], 422], ['', 404], ['msg_AAAAAAAAAAAAAAAAAAAAAA', 404]]) {
    const bad = await api('POST', `${path}/messages`, { token, json: { content: 'hi', parent_id } });
    expectError(assert, bad, status);
  }
  assert.equal((await messages(token, path)).length, 6);
  // A new root in an empty conversation is its first message.
  const fresh = (await api('POST', '/api/v1/conversations', { token, json: {} })).body;
  const first = await api('POST', `/api/v1/conversations/${fresh.conversation_id}/messages`, { token, json: { content: unique('Fresh'), parent_id: null } });
  assert.equal(first.status, 201, first.text);
  assert.equal(first.body.user_message.parent_id, null);
});

test("another user's conversation is 404 with no upstream call", async () => {
  const { path } = await setup();
  const other = await registerUser();
  const content = unique('Intruder message');
  expectError(assert, await api('POST', `${path}/messages`, { token: other.access_token, json: { content } }), 404, 'not_found');
  const s = await streamTurn(`${path}/messages`, { token: other.access_token, json: { content } });
  assert.equal(s.status, 404);
  assert.deepEqual(await simRequests(content), []);
});

test('bad chat input is rejected before anything is stored', async () => {
  const { token, path, u } = await setup();
  for (const [json, status] of [
    [{ content: '' }, 422],
    [{ content: '   ' }, 422],
    [{ content: 'x'.repeat(32 * 1024 + 1) }, 422],
    [{ content: 'hi', role: 'assistant' }, 422],
    [{ content: 'hi', model: 'no-such-model' }, 422],
    [{ content: 'hi', parent_id: 'msg_AAAAAAAAAAAAAAAAAAAAAA' }, 404],
    [{ content: 'hi', parent_id: 'garbage' }, 404],
    [{}, 422],
  ]) {
    const res = await api('POST', `${path}/messages`, { token, json });
    assert.equal(res.status, status, `${JSON.stringify(json).slice(0, 60)}: ${res.text}`);
  }
  const unknownModel = await api('POST', `${path}/messages`, { token, json: { content: 'hi', model: 'no-such-model' } });
  assert.match(unknownModel.body.error.message, /valid models: .*sim-small/);
  expectError(assert, await api('POST', `${path}/messages`, { token, body: '{"content":', headers: { 'content-type': 'application/json' } }), 400);
  expectError(assert, await api('POST', `${path}/messages/msg_AAAAAAAAAAAAAAAAAAAAAA/regenerate`, { token }), 404);
  expectError(assert, await api('POST', `${path}/messages/x/regenerate`, { token, json: { model: 'nope' } }), 404);
  // A message of another conversation cannot be a parent here.
  const other = (await api('POST', '/api/v1/conversations', { token, json: { messages: [{ role: 'user', content: 'elsewhere' }] } })).body;
  const otherMsg = (await messages(token, `/api/v1/conversations/${other.conversation_id}`))[0];
  expectError(assert, await api('POST', `${path}/messages`, { token, json: { content: 'hi', parent_id: otherMsg.message_id } }), 404);
  assert.deepEqual(await messages(token, path), []);
  assert.ok(u);
});

test('regenerate answers from its own branch: the question and what precedes it, nothing else', async () => {
  const u = await registerUser();
  const token = u.access_token;
  const q1 = unique('First question');
  const q2 = unique('Second question');
  const imported = await api('POST', '/api/v1/conversations', {
    token,
    json: {
      tools: [],
      messages: [
        { id: 'hello', role: 'assistant', content: 'Hello, ask me anything.' },
        { id: 'q1', parent_id: 'hello', role: 'user', content: q1 },
        { id: 'a1', role: 'assistant', content: 'First answer.' },
        { id: 'q2', role: 'user', content: q2 },
        { id: 'a2', role: 'assistant', content: 'Second answer.' },
        { id: 'other', parent_id: 'q1', role: 'assistant', content: 'Another first answer.' },
      ],
    },
  });
  assert.equal(imported.status, 201, imported.text);
  const path = `/api/v1/conversations/${imported.body.conversation_id}`;
  const byContent = new Map((await messages(token, path)).map((m) => [m.content, m]));

  // An answer: a sibling, with the branch up to its question as context.
  const a2 = byContent.get('Second answer.');
  const again = await api('POST', `${path}/messages/${a2.message_id}/regenerate`, { token });
  assert.equal(again.status, 201, again.text);
  assert.equal(again.body.assistant_message.parent_id, byContent.get(q2).message_id);
  const [sent] = await simRequests(q2);
  // (The greeting before the first question is left out: the context starts at a user turn.)
  assert.deepEqual(sent.body.messages.map((m) => m.content), [q1, 'First answer.', q2]);

  // A question: answered anew from its own branch (the other answer to q1 is not in it).
  const anew = await api('POST', `${path}/messages/${byContent.get(q1).message_id}/regenerate`, { token });
  assert.equal(anew.status, 201, anew.text);
  assert.equal(anew.body.assistant_message.parent_id, byContent.get(q1).message_id);

  // An answer with no question before it cannot be regenerated.
  expectError(assert, await api('POST', `${path}/messages/${byContent.get('Hello, ask me anything.').message_id}/regenerate`, { token }), 422, 'validation_failed');

  // A message of another of the user's conversations is not found here, and nothing is sent.
  const elsewhere = await api('POST', '/api/v1/conversations', { token, json: {} });
  const before = (await simRequests(q2)).length;
  expectError(assert, await api('POST', `/api/v1/conversations/${elsewhere.body.conversation_id}/messages/${a2.message_id}/regenerate`, { token }), 404, 'not_found');
  assert.equal((await simRequests(q2)).length, before);
  assert.equal((await messages(token, path)).length, 8, 'two answers were added, nothing else');
});

test('the context window keeps the newest messages that fit the model budget', async () => {
  const { token, path } = await setup('tiny');
  const old = unique('old '.repeat(120));
  await api('POST', `${path}/messages`, { token, json: { content: old } });
  const recent = unique('recent question');
  await api('POST', `${path}/messages`, { token, json: { content: recent } });
  const [req] = await simRequests(recent);
  const [system, ...rest] = req.body.messages;
  assert.deepEqual(rest.map((m) => m.content), [recent], 'the old turn no longer fits 100 tokens');
  // It reaches the model summarized instead (docs/architecture.md, "The context of a turn").
  assert.equal(system.role, 'system');
  assert.match(system.content, /<summary>\nold old old/);
});
