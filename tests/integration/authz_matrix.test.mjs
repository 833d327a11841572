// The authorization matrix, generated from the API document (which a core test proves equal
// to the route table and to the scope check): every bearer-protected operation answers 401
// without a token, every owner-scoped one 404 to another user's ids (changing nothing), every
// admin one 403 to a non-admin, every session-only one 403 to an API key with every scope, and
// every other one 403 to an API key without the scopes it accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { api } from '../support/client.mjs';
import { registerUser } from '../support/accounts.mjs';
import { ROOT } from '../support/stack.mjs';

const doc = JSON.parse(readFileSync(path.join(ROOT, 'public/openapi.json'), 'utf8'));
const operations = Object.entries(doc.paths)
  .filter(([, ops]) => !ops['x-static'])
  .flatMap(([p, ops]) => Object.entries(ops)
    .filter(([m]) => ['get', 'post', 'patch', 'delete', 'put'].includes(m))
    .map(([m, op]) => ({ method: m.toUpperCase(), path: p, bearer: (op.security ?? doc.security ?? []).some((s) => 'bearerAuth' in s), access: op['x-edgechat-access'] })));
const SCOPES = ['gateway', 'chat', 'read', 'tools'];

/** A body each operation accepts, so ownership (not validation) decides the answer. */
const BODIES = {
  'PATCH /api/v1/users/me': { display_name: 'x' },
  'POST /api/v1/keys': { name: 'k' },
  'POST /api/v1/conversations': {},
  'PATCH /api/v1/conversations/{conversation_id}': { title: 'taken over' },
  'POST /api/v1/conversations/{conversation_id}/messages': { content: 'hello' },
  'POST /api/v1/conversations/{conversation_id}/messages/{message_id}/regenerate': {},
  'POST /v1/chat/completions': { model: 'sim-small', messages: [{ role: 'user', content: 'x' }] },
  'POST /v1/embeddings': { model: 'sim-embed', input: 'x' },
  'PATCH /api/v1/admin/users/{user_id}': { plan: 'free' },
  'POST /api/v1/auth/logout': {},
  'POST /api/v1/tasks': { title: 'x' },
  'PATCH /api/v1/tasks/{task_id}': { title: 'taken over' },
  'POST /api/v1/memories': { content: 'x' },
};

async function ownerFixture() {
  const a = await registerUser();
  const conv = (await api('POST', '/api/v1/conversations', { token: a.access_token, json: { title: 'mine', messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] } })).body;
  const msgs = (await api('GET', `/api/v1/conversations/${conv.conversation_id}/messages`, { token: a.access_token })).body.data;
  const key = (await api('POST', '/api/v1/keys', { token: a.access_token, json: { name: 'mine' } })).body;
  const task = (await api('POST', '/api/v1/tasks', { token: a.access_token, json: { title: 'mine' } })).body;
  const memory = (await api('POST', '/api/v1/memories', { token: a.access_token, json: { content: 'mine' } })).body;
  return { a, ids: { conversation_id: conv.conversation_id, message_id: msgs[1].message_id, api_key_id: key.api_key_id, user_id: a.user.user_id, task_id: task.task_id, memory_id: memory.memory_id } };
}

const fill = (p, ids) => p.replace(/\{(\w+)\}/g, (_, name) => ids[name]);

test('the matrix covers every operation of the document', () => {
  assert.ok(operations.length >= 28, `${operations.length} operations`);
});

test('every bearer-protected operation answers 401 without a token', async () => {
  const { ids } = await ownerFixture();
  for (const op of operations.filter((o) => o.bearer)) {
    const res = await api(op.method, fill(op.path, ids), { json: BODIES[`${op.method} ${op.path}`] });
    assert.equal(res.status, 401, `${op.method} ${op.path}: ${res.status} ${res.text.slice(0, 120)}`);
  }
});

test("every owner-scoped operation answers 404 to another user's ids and changes nothing", async () => {
  const { a, ids } = await ownerFixture();
  const b = await registerUser();
  const scoped = operations.filter((o) => /\{(conversation_id|message_id|api_key_id|task_id|memory_id)\}/.test(o.path));
  assert.ok(scoped.length >= 11);
  for (const op of scoped) {
    const res = await api(op.method, fill(op.path, ids), { token: b.access_token, json: BODIES[`${op.method} ${op.path}`] });
    assert.equal(res.status, 404, `${op.method} ${op.path}: ${res.status} ${res.text.slice(0, 120)}`);
  }
  const conv = await api('GET', `/api/v1/conversations/${ids.conversation_id}`, { token: a.access_token });
  assert.equal(conv.body.title, 'mine');
  assert.equal(conv.body.message_count, 2);
  const keys = await api('GET', '/api/v1/keys', { token: a.access_token });
  assert.equal(keys.body.data.length, 1);
  const task = await api('GET', `/api/v1/tasks/${ids.task_id}`, { token: a.access_token });
  assert.equal(task.body.title, 'mine');
  const memories = await api('GET', '/api/v1/memories', { token: a.access_token });
  assert.deepEqual(memories.body.data.map((m) => m.memory_id), [ids.memory_id]);
});

test('every admin operation answers 403 to a non-admin', async () => {
  const { ids } = await ownerFixture();
  const b = await registerUser();
  const admin = operations.filter((o) => o.path.startsWith('/api/v1/admin/'));
  assert.ok(admin.length >= 5);
  for (const op of admin) {
    const res = await api(op.method, fill(op.path, ids), { token: b.access_token, json: BODIES[`${op.method} ${op.path}`] });
    assert.equal(res.status, 403, `${op.method} ${op.path}: ${res.status}`);
  }
});

test('every bearer-protected operation says what an API key needs', () => {
  for (const op of operations.filter((o) => o.bearer)) {
    assert.ok(op.access === 'session' || (Array.isArray(op.access) && op.access.every((s) => SCOPES.includes(s))), `${op.method} ${op.path}: ${op.access}`);
  }
});

test('every session-only operation answers 403 session_required to an API key with every scope', async () => {
  const { a, ids } = await ownerFixture();
  const key = (await api('POST', '/api/v1/keys', { token: a.access_token, json: { name: 'all', scopes: SCOPES } })).body.key;
  const sessionOnly = operations.filter((o) => o.access === 'session');
  assert.ok(sessionOnly.length >= 11, `${sessionOnly.length} session-only operations`);
  for (const op of sessionOnly) {
    const res = await api(op.method, fill(op.path, ids), { token: key, json: BODIES[`${op.method} ${op.path}`] });
    assert.equal(res.status, 403, `${op.method} ${op.path}: ${res.status} ${res.text.slice(0, 120)}`);
    assert.equal(res.body.error.code, 'session_required', `${op.method} ${op.path}`);
  }
  assert.equal((await api('GET', '/api/v1/keys', { token: a.access_token })).body.data.length, 2, 'no key was made or revoked');
  assert.equal((await api('GET', '/api/v1/users/me', { token: a.access_token })).status, 200, 'the account is still there');
});

test('every scoped operation answers 403 insufficient_scope to an API key without its scopes', async () => {
  const { a, ids } = await ownerFixture();
  const scoped = operations.filter((o) => Array.isArray(o.access));
  assert.ok(scoped.length >= 12, `${scoped.length} scoped operations`);
  for (const op of scoped) {
    const scopes = SCOPES.filter((s) => !op.access.includes(s));
    const key = (await api('POST', '/api/v1/keys', { token: a.access_token, json: { name: 'lacking', scopes } })).body.key;
    const res = await api(op.method, fill(op.path, ids), { token: key, json: BODIES[`${op.method} ${op.path}`] });
    assert.equal(res.status, 403, `${op.method} ${op.path} with ${scopes}: ${res.status} ${res.text.slice(0, 120)}`);
    if (op.path.startsWith('/v1/messages')) {
      // Anthropic's error shape: a type by status, and the reason in the message.
      assert.equal(res.body.error.type, 'permission_error', `${op.method} ${op.path}`);
      assert.match(res.body.error.message, /lacks the scope/, `${op.method} ${op.path}`);
    } else {
      assert.equal(res.body.error.code, 'insufficient_scope', `${op.method} ${op.path}`);
    }
  }
  const conv = await api('GET', `/api/v1/conversations/${ids.conversation_id}`, { token: a.access_token });
  assert.equal(conv.body.title, 'mine');
  assert.equal(conv.body.message_count, 2);
});
