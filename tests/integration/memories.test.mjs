// /api/v1/memories: notes kept about the user: create, list in cursor pages, full-text search
// (`?q=`, only the user's own), delete; owner-only 404s; bad input; scopes; the account's
// deletion taking them with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, expectError } from '../support/client.mjs';
import { PASSWORD, keyOf, registerUser } from '../support/accounts.mjs';
import { execSql } from '../support/stack.mjs';

async function remember(token, content) {
  const res = await api('POST', '/api/v1/memories', { token, json: { content } });
  assert.equal(res.status, 201, res.text);
  return res.body;
}

const list = async (token, q = '') => {
  const res = await api('GET', `/api/v1/memories${q}`, { token });
  assert.equal(res.status, 200, res.text);
  return res.body;
};

test('memories are created, listed newest first in pages, searched and deleted', async () => {
  const u = await registerUser();
  const t = u.access_token;
  const m = await remember(t, '  prefers green tea in the morning ');
  assert.deepEqual(Object.keys(m).sort(), ['content', 'created_at', 'memory_id']);
  assert.match(m.memory_id, /^mem_[A-Za-z0-9_-]{22}$/);
  assert.equal(m.content, 'prefers green tea in the morning');
  await remember(t, 'lives in Lyon');
  await remember(t, 'allergic to peanuts');

  const first = await list(t, '?limit=2');
  assert.deepEqual(first.data.map((x) => x.content), ['allergic to peanuts', 'lives in Lyon']);
  const second = await list(t, `?limit=2&cursor=${first.next_cursor}`);
  assert.deepEqual(second.data.map((x) => x.content), ['prefers green tea in the morning']);
  assert.equal(second.next_cursor, null);

  assert.deepEqual((await list(t, '?q=tea')).data.map((x) => x.memory_id), [m.memory_id]);
  assert.deepEqual((await list(t, '?q=LYO')).data.map((x) => x.content), ['lives in Lyon']);
  assert.deepEqual((await list(t, '?q=coffee')).data, []);
  // FTS5 syntax is text here, not operators.
  assert.deepEqual((await list(t, `?q=${encodeURIComponent('tea OR lyon')}`)).data, []);

  assert.equal((await api('DELETE', `/api/v1/memories/${m.memory_id}`, { token: t })).status, 204);
  assert.deepEqual((await list(t, '?q=tea')).data, []);
  expectError(assert, await api('DELETE', `/api/v1/memories/${m.memory_id}`, { token: t }), 404, 'not_found');
});

test('search pages through ranked results with its own cursor', async () => {
  const u = await registerUser();
  for (let i = 0; i < 3; i++) await remember(u.access_token, `likes hiking number ${i}`);
  await remember(u.access_token, 'likes nothing else');
  const first = await list(u.access_token, '?q=hiking&limit=2');
  assert.equal(first.data.length, 2);
  const second = await list(u.access_token, `?q=hiking&limit=2&cursor=${first.next_cursor}`);
  assert.equal(second.data.length, 1);
  assert.equal(second.next_cursor, null);
  const all = [...first.data, ...second.data].map((x) => x.content).sort();
  assert.deepEqual(all, ['likes hiking number 0', 'likes hiking number 1', 'likes hiking number 2']);
  // A search cursor is not a list cursor, and the reverse.
  expectError(assert, await api('GET', `/api/v1/memories?cursor=${first.next_cursor}`, { token: u.access_token }), 400, 'invalid_cursor');
  const plain = await list(u.access_token, '?limit=1');
  expectError(assert, await api('GET', `/api/v1/memories?q=hiking&cursor=${plain.next_cursor}`, { token: u.access_token }), 400, 'invalid_cursor');
});

test("another user's memories are invisible: not listed, not found, not deleted", async () => {
  const owner = await registerUser();
  const other = await registerUser();
  const m = await remember(owner.access_token, 'secret favourite colour is teal');
  assert.deepEqual((await list(other.access_token)).data, []);
  assert.deepEqual((await list(other.access_token, '?q=teal')).data, []);
  expectError(assert, await api('DELETE', `/api/v1/memories/${m.memory_id}`, { token: other.access_token }), 404, 'not_found');
  assert.deepEqual((await list(owner.access_token, '?q=teal')).data.map((x) => x.memory_id), [m.memory_id]);
  expectError(assert, await api('DELETE', '/api/v1/memories/mem_bad', { token: owner.access_token }), 404, 'not_found');
});

test('bad input is refused: 400, 415 and 422', async () => {
  const u = await registerUser();
  const token = u.access_token;
  expectError(assert, await api('POST', '/api/v1/memories', { token, body: '{"content"', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
  expectError(assert, await api('POST', '/api/v1/memories', { token, body: 'x', headers: { 'content-type': 'text/plain' } }), 415);
  for (const json of [{}, { content: '' }, { content: '   ' }, { content: 'x'.repeat(2001) }, { content: 'a', user_id: 'usr_x' }, { content: 1 }]) {
    expectError(assert, await api('POST', '/api/v1/memories', { token, json }), 422, 'validation_failed');
  }
  expectError(assert, await api('GET', '/api/v1/memories?q=', { token }), 400, 'invalid_query');
  expectError(assert, await api('GET', `/api/v1/memories?q=${encodeURIComponent('"*()')}`, { token }), 400, 'invalid_query');
  expectError(assert, await api('GET', '/api/v1/memories?limit=101', { token }), 400, 'invalid_limit');
  expectError(assert, await api('POST', '/api/v1/memories', { json: { content: 'a' } }), 401, 'unauthorized');
  assert.deepEqual((await list(token)).data, []);
});

test('scopes: read lists, chat and tools write, gateway gets 403', async () => {
  const u = await registerUser();
  const m = await remember(u.access_token, 'scoped note');
  const gateway = await keyOf(u, ['gateway']);
  const read = await keyOf(u, ['read']);
  const tools = await keyOf(u, ['tools']);
  expectError(assert, await api('GET', '/api/v1/memories', { token: gateway }), 403, 'insufficient_scope');
  expectError(assert, await api('POST', '/api/v1/memories', { token: gateway, json: { content: 'no' } }), 403, 'insufficient_scope');
  expectError(assert, await api('DELETE', `/api/v1/memories/${m.memory_id}`, { token: gateway }), 403, 'insufficient_scope');
  assert.equal((await list(read)).data.length, 1);
  expectError(assert, await api('POST', '/api/v1/memories', { token: read, json: { content: 'no' } }), 403, 'insufficient_scope');
  await remember(tools, 'by tools');
  assert.equal((await api('DELETE', `/api/v1/memories/${m.memory_id}`, { token: tools })).status, 204);
  assert.deepEqual((await list(read)).data.map((x) => x.content), ['by tools']);
});

test("deleting the account deletes the user's memories and their index entries", async () => {
  const u = await registerUser();
  await remember(u.access_token, 'zanzibarian fact');
  assert.equal((await api('DELETE', '/api/v1/users/me', { token: u.access_token, json: { current_password: PASSWORD } })).status, 204);
  const [r] = await execSql(process.env.EDGECHAT_PERSIST_DIR,
    `SELECT (SELECT COUNT(*) FROM memories WHERE user_id = '${u.user.user_id}') AS rows_left, (SELECT COUNT(*) FROM memories_fts WHERE memories_fts MATCH '"zanzibarian"') AS hits`);
  assert.deepEqual(r.results[0], { rows_left: 0, hits: 0 });
});
