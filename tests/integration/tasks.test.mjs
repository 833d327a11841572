// /api/v1/tasks: create, read, change, complete, delete; cursor pages and the status and
// due_before filters; owner-only (another user's ids answer 404); bad input (400/422); the
// scopes that open it; and the account's deletion taking the tasks with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, expectError } from '../support/client.mjs';
import { PASSWORD, keyOf, registerUser } from '../support/accounts.mjs';
import { execSql } from '../support/stack.mjs';

const FIELDS = ['completed_at', 'created_at', 'due_at', 'notes', 'status', 'task_id', 'title', 'updated_at'];

async function add(u, json) {
  const res = await api('POST', '/api/v1/tasks', { token: u.access_token ?? u, json });
  assert.equal(res.status, 201, res.text);
  return res.body;
}

test('a task is created, read, changed, completed, reopened and deleted', async () => {
  const u = await registerUser();
  const t = await add(u, { title: '  buy milk ', notes: '2 litres', due_at: '2027-01-31T09:00:00+01:00' });
  assert.deepEqual(Object.keys(t).sort(), FIELDS);
  assert.match(t.task_id, /^tsk_[A-Za-z0-9_-]{22}$/);
  assert.equal(t.title, 'buy milk');
  assert.equal(t.status, 'open');
  assert.equal(t.due_at, '2027-01-31T08:00:00.000Z');
  assert.equal(t.completed_at, null);

  const got = await api('GET', `/api/v1/tasks/${t.task_id}`, { token: u.access_token });
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, t);

  const done = await api('PATCH', `/api/v1/tasks/${t.task_id}`, { token: u.access_token, json: { status: 'done', notes: null } });
  assert.equal(done.status, 200, done.text);
  assert.equal(done.body.status, 'done');
  assert.equal(done.body.notes, null);
  assert.ok(done.body.completed_at);
  assert.equal(done.body.title, 'buy milk');
  assert.deepEqual((await api('GET', `/api/v1/tasks/${t.task_id}`, { token: u.access_token })).body, done.body);

  const reopened = await api('PATCH', `/api/v1/tasks/${t.task_id}`, { token: u.access_token, json: { status: 'open', due_at: null, title: 'oat milk' } });
  assert.equal(reopened.status, 200);
  assert.equal(reopened.body.completed_at, null);
  assert.equal(reopened.body.due_at, null);
  assert.equal(reopened.body.title, 'oat milk');

  const del = await api('DELETE', `/api/v1/tasks/${t.task_id}`, { token: u.access_token });
  assert.equal(del.status, 204);
  assert.equal(del.text, '');
  expectError(assert, await api('GET', `/api/v1/tasks/${t.task_id}`, { token: u.access_token }), 404, 'not_found');
  expectError(assert, await api('DELETE', `/api/v1/tasks/${t.task_id}`, { token: u.access_token }), 404, 'not_found');
});

test('the list pages newest first and filters by status and due_before', async () => {
  const u = await registerUser();
  const made = [];
  for (let i = 0; i < 5; i++) {
    made.push(await add(u, { title: `t${i}`, due_at: i < 3 ? `2027-0${i + 1}-01T00:00:00Z` : undefined }));
  }
  await api('PATCH', `/api/v1/tasks/${made[1].task_id}`, { token: u.access_token, json: { status: 'done' } });
  await api('PATCH', `/api/v1/tasks/${made[4].task_id}`, { token: u.access_token, json: { status: 'done' } });

  const seen = [];
  let cursor = null;
  do {
    const res = await api('GET', `/api/v1/tasks?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: u.access_token });
    assert.equal(res.status, 200, res.text);
    assert.ok(res.body.data.length <= 2);
    seen.push(...res.body.data.map((t) => t.title));
    cursor = res.body.next_cursor;
  } while (cursor);
  assert.deepEqual(seen, ['t4', 't3', 't2', 't1', 't0']);

  const titles = async (q) => {
    const res = await api('GET', `/api/v1/tasks?${q}`, { token: u.access_token });
    assert.equal(res.status, 200, res.text);
    return res.body.data.map((t) => t.title);
  };
  assert.deepEqual(await titles('status=open'), ['t3', 't2', 't0']);
  assert.deepEqual(await titles('status=done'), ['t4', 't1']);
  assert.deepEqual(await titles('due_before=2027-02-15T00:00:00Z'), ['t1', 't0']);
  assert.deepEqual(await titles('status=open&due_before=2027-12-31T00:00:00Z'), ['t2', 't0']);
  const page = await api('GET', '/api/v1/tasks?status=open&limit=1', { token: u.access_token });
  assert.deepEqual(page.body.data.map((t) => t.title), ['t3']);
  const next = await api('GET', `/api/v1/tasks?status=open&limit=5&cursor=${page.body.next_cursor}`, { token: u.access_token });
  assert.deepEqual(next.body.data.map((t) => t.title), ['t2', 't0']);
  assert.equal(next.body.next_cursor, null);
});

test("another user's tasks answer 404 and never show in lists", async () => {
  const owner = await registerUser();
  const other = await registerUser();
  const t = await add(owner, { title: 'private' });
  for (const [method, json] of [['GET'], ['PATCH', { title: 'mine now' }], ['DELETE']]) {
    expectError(assert, await api(method, `/api/v1/tasks/${t.task_id}`, { token: other.access_token, json }), 404, 'not_found');
  }
  assert.deepEqual((await api('GET', '/api/v1/tasks', { token: other.access_token })).body.data, []);
  const still = await api('GET', `/api/v1/tasks/${t.task_id}`, { token: owner.access_token });
  assert.equal(still.body.title, 'private');
  expectError(assert, await api('GET', '/api/v1/tasks/tsk_malformed', { token: owner.access_token }), 404, 'not_found');
});

test('bad input is refused: 400 for syntax and query, 415, 422 for shape, unknown fields and values', async () => {
  const u = await registerUser();
  const t = await add(u, { title: 'x' });
  const token = u.access_token;
  expectError(assert, await api('POST', '/api/v1/tasks', { token, body: '{"title":', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
  expectError(assert, await api('POST', '/api/v1/tasks', { token, body: 'title=x', headers: { 'content-type': 'text/plain' } }), 415);
  for (const json of [{}, { title: '' }, { title: 'a'.repeat(201) }, { title: 'a', owner: 'usr_x' }, { title: 'a', due_at: 'tomorrow' },
    { title: 'a', notes: 'n'.repeat(4001) }, { title: 5 }, [{ title: 'a' }]]) {
    expectError(assert, await api('POST', '/api/v1/tasks', { token, json }), 422, 'validation_failed');
  }
  for (const json of [{}, { status: 'closed' }, { title: '  ' }, { due_at: '2027-01-01' }, { user_id: 'usr_x' }, { notes: 5 }]) {
    expectError(assert, await api('PATCH', `/api/v1/tasks/${t.task_id}`, { token, json }), 422, 'validation_failed');
  }
  expectError(assert, await api('PATCH', `/api/v1/tasks/${t.task_id}`, { token, body: '{', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
  expectError(assert, await api('GET', '/api/v1/tasks?status=closed', { token }), 400, 'invalid_status');
  expectError(assert, await api('GET', '/api/v1/tasks?due_before=soon', { token }), 400, 'invalid_due_before');
  expectError(assert, await api('GET', '/api/v1/tasks?limit=0', { token }), 400, 'invalid_limit');
  expectError(assert, await api('GET', '/api/v1/tasks?cursor=nope', { token }), 400, 'invalid_cursor');
  expectError(assert, await api('GET', '/api/v1/tasks'), 401, 'unauthorized');
  // Nothing was changed by the refused writes.
  assert.deepEqual((await api('GET', `/api/v1/tasks/${t.task_id}`, { token })).body, t);
});

test('scopes: read reads, chat and tools write, gateway gets 403', async () => {
  const u = await registerUser();
  const t = await add(u, { title: 'scoped' });
  const gateway = await keyOf(u, ['gateway']);
  const read = await keyOf(u, ['read']);
  const tools = await keyOf(u, ['tools']);
  const chat = await keyOf(u, ['chat']);
  expectError(assert, await api('GET', '/api/v1/tasks', { token: gateway }), 403, 'insufficient_scope');
  expectError(assert, await api('POST', '/api/v1/tasks', { token: gateway, json: { title: 'no' } }), 403, 'insufficient_scope');
  expectError(assert, await api('GET', `/api/v1/tasks/${t.task_id}`, { token: gateway }), 403, 'insufficient_scope');
  assert.equal((await api('GET', `/api/v1/tasks/${t.task_id}`, { token: read })).status, 200);
  expectError(assert, await api('POST', '/api/v1/tasks', { token: read, json: { title: 'no' } }), 403, 'insufficient_scope');
  expectError(assert, await api('DELETE', `/api/v1/tasks/${t.task_id}`, { token: read }), 403, 'insufficient_scope');
  assert.equal((await add(tools, { title: 'by tools' })).title, 'by tools');
  assert.equal((await add(chat, { title: 'by chat' })).title, 'by chat');
  assert.equal((await api('GET', '/api/v1/tasks', { token: tools })).body.data.length, 3);
});

test("deleting the account deletes the user's tasks", async () => {
  const u = await registerUser();
  await add(u, { title: 'gone with the account' });
  assert.equal((await api('DELETE', '/api/v1/users/me', { token: u.access_token, json: { current_password: PASSWORD } })).status, 204);
  const [r] = await execSql(process.env.EDGECHAT_PERSIST_DIR, `SELECT COUNT(*) AS n FROM tasks WHERE user_id = '${u.user.user_id}'`);
  assert.equal(r.results[0].n, 0);
});
