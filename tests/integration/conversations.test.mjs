// Conversations and message history: CRUD, import, branches, pagination, search, owner-only
// access, limits, and a KV cache that never serves the owner stale data.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api, expectError } from '../support/client.mjs';
import { PASSWORD, login, registerUser } from '../support/accounts.mjs';
import { simRequests } from '../support/sim.mjs';
import { logLine } from '../support/logs.mjs';
import { startWorker, TEST_VARS } from '../support/stack.mjs';

const create = (token, json) => api('POST', '/api/v1/conversations', { token, json });

test('a logged-out token reads nothing, also where the reads share a round trip with the session check', async () => {
  const u = await registerUser();
  const token = u.access_token;
  const word = `w${randomBytes(4).toString('hex')}`;
  const c = (await create(token, { title: word, messages: [{ role: 'user', content: `about ${word}` }, { role: 'assistant', content: 'an answer' }] })).body;
  await create(token, { title: 'second' });
  const page = await api('GET', '/api/v1/conversations?limit=1', { token });
  assert.ok(page.body.next_cursor, page.text);
  const msgs = (await api('GET', `/api/v1/conversations/${c.conversation_id}/messages`, { token })).body.data;
  assert.equal(msgs.length, 2);
  const apiKey = (await api('POST', '/api/v1/keys', { token, json: { name: 'reads', scopes: ['read'] } })).body.key;
  assert.equal((await api('POST', '/api/v1/auth/logout', { token })).status, 204);

  const path = `/api/v1/conversations/${c.conversation_id}`;
  const content = `after logout ${word}`;
  for (const [method, url, json] of [
    ['GET', `/api/v1/conversations?limit=1&cursor=${page.body.next_cursor}`],
    ['GET', `/api/v1/conversations?q=${word}`],
    ['GET', `${path}/messages`],
    ['GET', `${path}/messages?leaf=${msgs[1].message_id}`],
    ['POST', `${path}/messages`, { content }],
    ['POST', `${path}/messages/${msgs[1].message_id}/regenerate`, {}],
    ['PATCH', path, { title: 'renamed after logout' }],
    ['GET', '/api/v1/keys'],
    ['GET', '/api/v1/usage?days=7'],
  ]) {
    const res = await api(method, url, { token, json });
    expectError(assert, res, 401, 'invalid_token');
    assert.ok(!res.text.includes(word) && !res.text.includes('an answer'), `${method} ${url} leaked data: ${res.text}`);
  }
  assert.deepEqual(await simRequests(content), [], 'nothing went upstream');
  const again = (await login(u.user.email, PASSWORD)).body.access_token;
  assert.equal((await api('GET', `${path}/messages`, { token: again })).body.data.length, 2, 'nothing was stored');
  assert.equal((await api('GET', path, { token: again })).body.title, word, 'nothing was changed');

  // An API key (looked up first, then the reads) does not depend on the session.
  assert.deepEqual((await api('GET', `${path}/messages`, { token: apiKey })).body.data.map((m) => m.content), [`about ${word}`, 'an answer']);
  assert.equal((await api('GET', `/api/v1/conversations?limit=1&cursor=${page.body.next_cursor}`, { token: apiKey })).body.data.length, 1);
  expectError(assert, await api('GET', '/api/v1/keys', { token: apiKey }), 403, 'session_required');
  assert.equal((await api('GET', '/api/v1/usage?days=7', { token: apiKey })).status, 200);

  // Without a token, a bad query or body is still a 401 first.
  expectError(assert, await api('GET', '/api/v1/conversations?limit=0&cursor=junk'), 401, 'unauthorized');
  expectError(assert, await api('GET', `${path}/messages?limit=1000`), 401, 'unauthorized');
  expectError(assert, await api('GET', '/api/v1/usage?days=0'), 401, 'unauthorized');
  expectError(assert, await api('PATCH', path, { json: { role: 'admin' } }), 401, 'unauthorized');
  expectError(assert, await api('POST', `${path}/messages`, { json: { content: '' } }), 401, 'unauthorized');
  expectError(assert, await api('POST', `${path}/messages/junk/regenerate`, { body: '{', headers: { 'content-type': 'application/json' } }), 401, 'unauthorized');
});

test('create, read, update and delete a conversation', async () => {
  const u = await registerUser();
  const res = await create(u.access_token, { title: '  Trip plans ', system_prompt: 'Be brief.' });
  assert.equal(res.status, 201, res.text);
  const c = res.body;
  assert.match(c.conversation_id, /^cnv_[A-Za-z0-9_-]{22}$/);
  assert.equal(c.title, 'Trip plans');
  assert.equal(c.system_prompt, 'Be brief.');
  assert.equal(c.model, 'sim-small');
  assert.equal(c.message_count, 0);
  assert.equal(c.created_at, c.updated_at);

  const got = await api('GET', `/api/v1/conversations/${c.conversation_id}`, { token: u.access_token });
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, c);

  const patched = await api('PATCH', `/api/v1/conversations/${c.conversation_id}`, {
    token: u.access_token, json: { title: 'Trip to Lisbon', system_prompt: null, model: 'sim-large' },
  });
  assert.equal(patched.status, 200, patched.text);
  assert.equal(patched.body.title, 'Trip to Lisbon');
  assert.equal(patched.body.system_prompt, null);
  assert.equal(patched.body.model, 'sim-large');
  const reread = await api('GET', `/api/v1/conversations/${c.conversation_id}`, { token: u.access_token });
  assert.deepEqual(reread.body, patched.body, 'a read after a write shows the write');

  const del = await api('DELETE', `/api/v1/conversations/${c.conversation_id}`, { token: u.access_token });
  assert.equal(del.status, 204);
  expectError(assert, await api('GET', `/api/v1/conversations/${c.conversation_id}`, { token: u.access_token }), 404, 'not_found');
  expectError(assert, await api('DELETE', `/api/v1/conversations/${c.conversation_id}`, { token: u.access_token }), 404, 'not_found');
  expectError(assert, await api('GET', `/api/v1/conversations/${c.conversation_id}/messages`, { token: u.access_token }), 404);
});

test('an import stores a message tree atomically and ?leaf= returns one branch', async () => {
  const u = await registerUser();
  const res = await create(u.access_token, {
    title: 'Imported',
    messages: [
      { id: 'q', role: 'user', content: 'What is the capital of Portugal?' },
      { id: 'a1', role: 'assistant', content: 'Lisbon.' },
      { id: 'q2', role: 'user', content: 'And its population?' },
      { id: 'a2', parent_id: 'q', role: 'assistant', content: 'It is Lisbon, on the Tagus.' },
    ],
  });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.message_count, 4);
  const id = res.body.conversation_id;
  const list = await api('GET', `/api/v1/conversations/${id}/messages`, { token: u.access_token });
  assert.equal(list.status, 200);
  const msgs = list.body.data;
  assert.deepEqual(msgs.map((m) => m.content), ['What is the capital of Portugal?', 'Lisbon.', 'And its population?', 'It is Lisbon, on the Tagus.']);
  assert.equal(msgs[0].parent_id, null);
  assert.equal(msgs[1].parent_id, msgs[0].message_id);
  assert.equal(msgs[2].parent_id, msgs[1].message_id);
  assert.equal(msgs[3].parent_id, msgs[0].message_id, 'the second answer is a sibling branch');
  for (const m of msgs) {
    assert.equal(m.status, 'complete');
    assert.equal(m.conversation_id, id);
    assert.match(m.message_id, /^msg_/);
  }
  const branchA = await api('GET', `/api/v1/conversations/${id}/messages?leaf=${msgs[2].message_id}`, { token: u.access_token });
  assert.deepEqual(branchA.body.data.map((m) => m.content), ['What is the capital of Portugal?', 'Lisbon.', 'And its population?']);
  assert.equal(branchA.body.next_cursor, null);
  const branchB = await api('GET', `/api/v1/conversations/${id}/messages?leaf=${msgs[3].message_id}`, { token: u.access_token });
  assert.deepEqual(branchB.body.data.map((m) => m.content), ['What is the capital of Portugal?', 'It is Lisbon, on the Tagus.']);
  expectError(assert, await api('GET', `/api/v1/conversations/${id}/messages?leaf=msg_AAAAAAAAAAAAAAAAAAAAAA`, { token: u.access_token }), 404);
  expectError(assert, await api('GET', `/api/v1/conversations/${id}/messages?leaf=nonsense`, { token: u.access_token }), 404);
});

test('a bad import stores nothing', async () => {
  const u = await registerUser();
  for (const messages of [
    [{ role: 'user', content: 'ok' }, { role: 'robot', content: 'bad role' }],
    [{ role: 'user', content: 'ok' }, { role: 'user', content: 'x', parent_id: 'missing' }],
    [{ role: 'user', content: 'x'.repeat(32 * 1024 + 1) }],
    [{ role: 'user', content: '   ' }],
    [{ role: 'user', content: 'x', user_id: 'usr_someone' }],
  ]) {
    expectError(assert, await create(u.access_token, { title: 'bad', messages }), 422);
  }
  const list = await api('GET', '/api/v1/conversations', { token: u.access_token });
  assert.deepEqual(list.body.data, []);
});

test('oversized fields and unknown fields are 422, malformed JSON 400', async () => {
  const u = await registerUser();
  for (const json of [
    { title: 'x'.repeat(201) },
    { system_prompt: 'x'.repeat(8 * 1024 + 1) },
    { title: 'ok', user_id: 'usr_x' },
    { title: 'ok', message_count: 5 },
    { model: 'bad model name' },
    { title: 5 },
  ]) {
    expectError(assert, await create(u.access_token, json), 422);
  }
  expectError(assert, await api('POST', '/api/v1/conversations', { token: u.access_token, body: '{"title":', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
  const c = (await create(u.access_token, { title: 'keep me' })).body;
  for (const json of [{}, { title: 'x'.repeat(201) }, { conversation_id: 'cnv_x' }, { message_count: 9 }, { system_prompt: 'x'.repeat(8193) }]) {
    expectError(assert, await api('PATCH', `/api/v1/conversations/${c.conversation_id}`, { token: u.access_token, json }), 422);
  }
  const after = await api('GET', `/api/v1/conversations/${c.conversation_id}`, { token: u.access_token });
  assert.equal(after.body.title, 'keep me');
});

test("another user's conversation is 404 on every verb and stays unchanged", async () => {
  const a = await registerUser();
  const b = await registerUser();
  const c = (await create(a.access_token, { title: 'private', messages: [{ role: 'user', content: 'secret words' }] })).body;
  const path = `/api/v1/conversations/${c.conversation_id}`;
  expectError(assert, await api('GET', path, { token: b.access_token }), 404, 'not_found');
  expectError(assert, await api('PATCH', path, { token: b.access_token, json: { title: 'mine now' } }), 404, 'not_found');
  expectError(assert, await api('DELETE', path, { token: b.access_token }), 404, 'not_found');
  expectError(assert, await api('GET', `${path}/messages`, { token: b.access_token }), 404, 'not_found');
  const search = await api('GET', '/api/v1/conversations?q=secret', { token: b.access_token });
  assert.deepEqual(search.body.data, [], 'search never crosses users');
  assert.deepEqual((await api('GET', '/api/v1/conversations', { token: b.access_token })).body.data, []);
  const still = await api('GET', path, { token: a.access_token });
  assert.equal(still.status, 200);
  assert.equal(still.body.title, 'private');
  assert.equal((await api('GET', `${path}/messages`, { token: a.access_token })).body.data.length, 1);
  expectError(assert, await api('GET', path), 401);
});

test('pagination walks 250 conversations with no duplicates or gaps while more are created', async () => {
  const u = await registerUser();
  const ids = new Set();
  for (let i = 0; i < 250; i += 25) {
    const batch = await Promise.all(Array.from({ length: 25 }, (_, j) => create(u.access_token, { title: `conv ${i + j}` })));
    for (const r of batch) {
      assert.equal(r.status, 201, r.text);
      ids.add(r.body.conversation_id);
    }
  }
  const seen = [];
  let cursor = null;
  let pages = 0;
  do {
    const res = await api('GET', `/api/v1/conversations?limit=40${cursor ? `&cursor=${cursor}` : ''}`, { token: u.access_token });
    assert.equal(res.status, 200, res.text);
    assert.ok(res.body.data.length <= 40);
    seen.push(...res.body.data.map((c) => c.conversation_id));
    cursor = res.body.next_cursor;
    pages++;
    // New conversations arrive during the walk; they sort before the cursor.
    await create(u.access_token, { title: `during walk ${pages}` });
  } while (cursor);
  const original = seen.filter((id) => ids.has(id));
  assert.equal(new Set(seen).size, seen.length, 'no duplicates');
  assert.equal(original.length, 250, 'no gaps');
  assert.equal(pages, 7);
});

test('bad limits and cursors are 400', async () => {
  const u = await registerUser();
  for (const q of ['limit=0', 'limit=101', 'limit=-1', 'limit=abc', 'cursor=not-a-cursor', 'cursor=%00%01']) {
    const res = await api('GET', `/api/v1/conversations?${q}`, { token: u.access_token });
    assert.equal(res.status, 400, `${q}: ${res.text}`);
    assert.match(res.body.error.code, /^invalid_(limit|cursor)$/);
  }
  const c = (await create(u.access_token, { title: 't' })).body;
  expectError(assert, await api('GET', `/api/v1/conversations/${c.conversation_id}/messages?limit=1000`, { token: u.access_token }), 400, 'invalid_limit');
});

test('search finds conversations by title and by message text, ranked', async () => {
  const u = await registerUser();
  const word = `zephyr${randomBytes(3).toString('hex')}`;
  const byTitle = (await create(u.access_token, { title: `About ${word} winds` })).body;
  const byText = (await create(u.access_token, { title: 'Weather', messages: [{ role: 'user', content: `Tell me about the ${word} please` }] })).body;
  await create(u.access_token, { title: 'Unrelated' });
  const res = await api('GET', `/api/v1/conversations?q=${encodeURIComponent(word)}`, { token: u.access_token });
  assert.equal(res.status, 200, res.text);
  const found = res.body.data.map((c) => c.conversation_id);
  assert.deepEqual(found.sort(), [byTitle.conversation_id, byText.conversation_id].sort());
  const prefix = await api('GET', `/api/v1/conversations?q=${word.slice(0, 8)}`, { token: u.access_token });
  assert.equal(prefix.body.data.length, 2, 'the last term matches as a prefix');
  const paged = await api('GET', `/api/v1/conversations?q=${word}&limit=1`, { token: u.access_token });
  assert.equal(paged.body.data.length, 1);
  assert.ok(paged.body.next_cursor);
  const next = await api('GET', `/api/v1/conversations?q=${word}&limit=1&cursor=${paged.body.next_cursor}`, { token: u.access_token });
  assert.equal(next.body.data.length, 1);
  assert.notEqual(next.body.data[0].conversation_id, paged.body.data[0].conversation_id);
});

test('odd search inputs are a result or a 400, never a 500', async () => {
  const u = await registerUser();
  await create(u.access_token, { title: 'café "quoted" NEAR things', messages: [{ role: 'user', content: 'naïve 日本語 text' }] });
  for (const q of ['"', '*', 'NEAR(', '-', 'a OR b', 'title:x', '(a', '^x', 'café', '日本語', '🙂', "'; DROP TABLE messages; --", 'NOT', 'x'.repeat(300), '""""', 'a*b', '\\']) {
    const res = await api('GET', `/api/v1/conversations?q=${encodeURIComponent(q)}`, { token: u.access_token });
    assert.ok([200, 400].includes(res.status), `${q}: ${res.status} ${res.text}`);
    if (res.status === 400) assert.equal(res.body.error.code, 'invalid_query');
  }
  const hit = await api('GET', `/api/v1/conversations?q=${encodeURIComponent('日本語')}`, { token: u.access_token });
  assert.equal(hit.body.data.length, 1);
});

test('the list and a conversation are cached in KV and never stale after the owner writes', async () => {
  const u = await registerUser();
  const first = await create(u.access_token, { title: 'one' });
  const snow = 'snow \u2603, \u65e5\u672c\u8a9e, \u{1F600}';
  await create(u.access_token, { title: snow });
  const miss = await api('GET', '/api/v1/conversations', { token: u.access_token });
  assert.equal(miss.headers.get('x-edgechat-cache'), 'miss');
  let hit;
  for (let i = 0; i < 20; i++) {
    hit = await api('GET', '/api/v1/conversations', { token: u.access_token });
    if (hit.headers.get('x-edgechat-cache') === 'hit') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(hit.headers.get('x-edgechat-cache'), 'hit');
  // A hit is sent from KV's string as it is: the same bytes, type and headers as the miss.
  assert.equal(hit.text, miss.text);
  assert.equal(hit.body.data[0].title, snow);
  for (const name of ['content-type', 'x-content-type-options', 'content-security-policy']) {
    assert.equal(hit.headers.get(name), miss.headers.get(name), name);
  }
  assert.equal(hit.headers.get('content-type'), 'application/json; charset=utf-8');
  const missLog = await logLine(miss.headers.get('x-request-id'));
  const hitLog = await logLine(hit.headers.get('x-request-id'));
  assert.ok(hitLog.d1_rows_read < missLog.d1_rows_read, `hit read ${hitLog.d1_rows_read} rows, miss ${missLog.d1_rows_read}`);

  const second = await create(u.access_token, { title: 'two' });
  const afterCreate = await api('GET', '/api/v1/conversations', { token: u.access_token });
  assert.equal(afterCreate.headers.get('x-edgechat-cache'), 'miss');
  assert.deepEqual(afterCreate.body.data.map((c) => c.title), ['two', snow, 'one']);

  const path = `/api/v1/conversations/${first.body.conversation_id}`;
  await api('GET', path, { token: u.access_token });
  await new Promise((r) => setTimeout(r, 300));
  await api('PATCH', path, { token: u.access_token, json: { title: 'one, renamed' } });
  assert.equal((await api('GET', path, { token: u.access_token })).body.title, 'one, renamed');
  assert.deepEqual((await api('GET', '/api/v1/conversations', { token: u.access_token })).body.data.map((c) => c.title), ['one, renamed', 'two', snow]);
  await api('DELETE', `/api/v1/conversations/${second.body.conversation_id}`, { token: u.access_token });
  assert.deepEqual((await api('GET', '/api/v1/conversations', { token: u.access_token })).body.data.map((c) => c.title), ['one, renamed', snow]);
});

test('deleting the account deletes its conversations', async () => {
  const u = await registerUser();
  const word = `quasar${randomBytes(3).toString('hex')}`;
  await create(u.access_token, { title: word, messages: [{ role: 'user', content: word }] });
  assert.equal((await api('DELETE', '/api/v1/users/me', { token: u.access_token, json: { current_password: u.password } })).status, 204);
  const again = await registerUser({ email: u.email });
  assert.deepEqual((await api('GET', `/api/v1/conversations?q=${word}`, { token: again.access_token })).body.data, []);
});

test('per-user conversation and per-conversation message limits are enforced', async (t) => {
  const worker = await startWorker({ vars: { ...TEST_VARS, MAX_CONVERSATIONS_PER_USER: '2', MAX_MESSAGES_PER_CONVERSATION: '3' } });
  t.after(() => worker.stop());
  const base = worker.url;
  const reg = await api('POST', '/api/v1/auth/register', { base, json: { email: `limits-${randomBytes(4).toString('hex')}@test.example`, password: 'correct horse battery' } });
  const token = reg.body.access_token;
  const msgs = (n) => Array.from({ length: n }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `m${i}` }));
  expectError(assert, await api('POST', '/api/v1/conversations', { base, token, json: { messages: msgs(4) } }), 422);
  assert.equal((await api('POST', '/api/v1/conversations', { base, token, json: { messages: msgs(3) } })).status, 201);
  assert.equal((await api('POST', '/api/v1/conversations', { base, token, json: {} })).status, 201);
  expectError(assert, await api('POST', '/api/v1/conversations', { base, token, json: {} }), 409, 'conversation_limit_reached');
  const list = await api('GET', '/api/v1/conversations', { base, token });
  assert.equal(list.body.data.length, 2);
  await api('DELETE', `/api/v1/conversations/${list.body.data[0].conversation_id}`, { base, token });
  assert.equal((await api('POST', '/api/v1/conversations', { base, token, json: {} })).status, 201, 'deleting frees a slot');
});

test('a generated title: one recorded call after the first answer, the first words when it fails, never over a user title', async () => {
  const { execSql } = await import('../support/stack.mjs');
  const u = await registerUser();
  const token = u.access_token;
  const rows = async () => (await execSql(process.env.EDGECHAT_PERSIST_DIR, `SELECT model, status, source, prompt_tokens, completion_tokens FROM usage_records WHERE user_id = '${u.user.user_id}' ORDER BY created_at`))[0].results;
  // The record is written with the call's settlement, which may land just after the answer.
  const records = async (n) => {
    for (let i = 0; ; i++) {
      const got = await rows();
      if (n === undefined || got.length >= n || i >= 30) return got;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const question = `How do walruses find their way home ${randomBytes(4).toString('hex')}?`;
  const c = (await create(token, {})).body;
  const path = `/api/v1/conversations/${c.conversation_id}`;
  // No answer yet: nothing to name it by, and no call.
  const early = await api('POST', `${path}/title`, { token });
  assert.equal(early.status, 200, early.text);
  assert.equal(early.body.title, '');
  assert.equal((await rows()).length, 0);
  const turn = await api('POST', `${path}/messages`, { token, json: { content: question } });
  assert.equal(turn.status, 201, turn.text);
  const before = await records(1); // the turn's own record first
  const res = await api('POST', `${path}/title`, { token });
  assert.equal(res.status, 200, res.text);
  const title = res.body.title;
  // The simulator names it by the question's first six words, in quotes with a full stop, which are taken off.
  assert.equal(title, question.split(' ').slice(0, 6).join(' '));
  // The simulator answers deterministically: the same prompt gives the same title.
  const [req] = await simRequests(question.slice(0, 30));
  assert.ok(req, 'the model was asked');
  const after = await records(before.length + 1);
  assert.equal(after.length, before.length + 1, 'one usage record for the title call');
  assert.equal(after.at(-1).status, 'complete');
  assert.equal(after.at(-1).source, 'chat');
  assert.ok(after.at(-1).completion_tokens > 0);
  assert.equal((await api('GET', path, { token })).body.title, title);
  const list = (await api('GET', '/api/v1/conversations', { token })).body.data;
  assert.equal(list.find((x) => x.conversation_id === c.conversation_id).title, title, 'the list shows it (no stale cache)');
  // Named once: asked again, no second call.
  assert.equal((await api('POST', `${path}/title`, { token })).body.title, title);
  assert.equal((await records()).length, after.length);
  // A title the user set is never replaced, and costs no call.
  assert.equal((await api('PATCH', path, { token, json: { title: 'My walrus notes' } })).status, 200);
  const kept = await api('POST', `${path}/title`, { token });
  assert.equal(kept.body.title, 'My walrus notes');
  assert.equal((await records()).length, after.length);

  // A failing model: the first words of the first question are the title, and the failed call is recorded.
  const q2 = `Tell me about tides ${randomBytes(4).toString('hex')}`;
  const broken = (await create(token, { model: 'broken', messages: [{ role: 'user', content: q2 }, { role: 'assistant', content: 'Tides are...' }] })).body;
  const n = (await records()).length;
  const fb = await api('POST', `/api/v1/conversations/${broken.conversation_id}/title`, { token });
  assert.equal(fb.status, 200, fb.text);
  assert.equal(fb.body.title, q2);
  const last = await records(n + 1);
  assert.equal(last.length, n + 1);
  assert.equal(last.at(-1).model, 'broken');
  assert.notEqual(last.at(-1).status, 'complete');

  // Another user's conversation is 404; a bad id too.
  const other = await registerUser();
  expectError(assert, await api('POST', `${path}/title`, { token: other.access_token }), 404);
  expectError(assert, await api('POST', '/api/v1/conversations/nope/title', { token }), 404);
});

test('GET /api/v1/limits states the limits, with no credential', async () => {
  const res = await api('GET', '/api/v1/limits');
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(Object.keys(res.body).sort(), ['message_bytes', 'messages_per_conversation', 'system_prompt_bytes', 'title_chars']);
  assert.equal(res.body.message_bytes, 32 * 1024);
  // The limit stated is the one enforced.
  const token = (await registerUser()).access_token;
  const c = (await create(token, {})).body;
  const over = await api('POST', `/api/v1/conversations/${c.conversation_id}/messages`, { token, json: { content: 'x'.repeat(res.body.message_bytes + 1) } });
  expectError(assert, over, 422);
});
