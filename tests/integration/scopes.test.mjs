// API key scopes and expiry: what each scope opens, what no key may ever do (the routes that
// need a session), the default scope, validation of the creation body, and expired keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, expectError } from '../support/client.mjs';
import { registerUser, login, PASSWORD } from '../support/accounts.mjs';
import { execSql } from '../support/stack.mjs';

const EVERY = ['gateway', 'chat', 'read', 'tools'];
const COMPLETION = { model: 'sim-small', messages: [{ role: 'user', content: 'hi' }] };

async function keyOf(u, json) {
  const res = await api('POST', '/api/v1/keys', { token: u.access_token, json: { name: 'k', ...json } });
  assert.equal(res.status, 201, res.text);
  return res.body;
}

function expectOpenAi403(res, code) {
  assert.equal(res.status, 403, res.text);
  assert.deepEqual(Object.keys(res.body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(res.body.error.code, code);
}

test('a key is created with the default scope gateway, and the list shows scopes, expiry and last use', async () => {
  const u = await registerUser();
  const created = await keyOf(u, {});
  assert.deepEqual(created.scopes, ['gateway']);
  assert.equal(created.expires_at, null);
  assert.equal((await api('POST', '/v1/chat/completions', { token: created.key, json: COMPLETION })).status, 200);
  assert.equal((await api('GET', '/v1/models', { token: created.key })).status, 200);
  // gateway opens nothing outside /v1/*.
  expectError(assert, await api('GET', '/api/v1/conversations', { token: created.key }), 403, 'insufficient_scope');
  expectError(assert, await api('GET', '/api/v1/users/me', { token: created.key }), 403, 'insufficient_scope');

  const expires = new Date(Date.now() + 30 * 86_400_000).toISOString();
  const reader = await keyOf(u, { scopes: ['read', 'chat'], expires_at: expires });
  assert.deepEqual(reader.scopes, ['chat', 'read']);
  assert.equal(reader.expires_at, expires);
  // last_used_at is written after the response: wait for it.
  let byId = {};
  for (let i = 0; i < 30 && !byId[created.api_key_id]?.last_used_at; i++) {
    if (i) await new Promise((r) => setTimeout(r, 100));
    const listed = (await api('GET', '/api/v1/keys', { token: u.access_token })).body.data;
    byId = Object.fromEntries(listed.map((k) => [k.api_key_id, k]));
  }
  assert.deepEqual(byId[created.api_key_id].scopes, ['gateway']);
  assert.equal(byId[created.api_key_id].expires_at, null);
  assert.ok(byId[created.api_key_id].last_used_at, 'last use is listed');
  assert.deepEqual(byId[reader.api_key_id].scopes, ['chat', 'read']);
  assert.equal(byId[reader.api_key_id].expires_at, expires);
  assert.equal(byId[reader.api_key_id].last_used_at, null);
});

test('a key without gateway gets 403 on /v1/chat/completions, in OpenAI\'s error shape', async () => {
  const u = await registerUser();
  const key = (await keyOf(u, { scopes: ['chat', 'read', 'tools'] })).key;
  expectOpenAi403(await api('POST', '/v1/chat/completions', { token: key, json: COMPLETION }), 'insufficient_scope');
  expectOpenAi403(await api('GET', '/v1/models', { token: key }), 'insufficient_scope');
  // The session still has full access.
  assert.equal((await api('POST', '/v1/chat/completions', { token: u.access_token, json: COMPLETION })).status, 200);
});

test('a read key lists and reads conversations, messages and usage but cannot write', async () => {
  const u = await registerUser();
  const conv = (await api('POST', '/api/v1/conversations', { token: u.access_token, json: { title: 'mine', messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] } })).body;
  const key = (await keyOf(u, { scopes: ['read'] })).key;
  const path = `/api/v1/conversations/${conv.conversation_id}`;
  assert.equal((await api('GET', '/api/v1/conversations', { token: key })).body.data[0].conversation_id, conv.conversation_id);
  assert.equal((await api('GET', path, { token: key })).body.title, 'mine');
  assert.equal((await api('GET', `${path}/messages`, { token: key })).body.data.length, 2);
  assert.equal((await api('GET', '/api/v1/usage?days=7', { token: key })).status, 200);
  assert.equal((await api('GET', '/api/v1/users/me', { token: key })).body.user_id, u.user.user_id);
  for (const [method, url, json] of [
    ['POST', '/api/v1/conversations', { title: 'new' }],
    ['PATCH', path, { title: 'renamed' }],
    ['DELETE', path],
    ['POST', `${path}/messages`, { content: 'more' }],
  ]) {
    expectError(assert, await api(method, url, { token: key, json }), 403, 'insufficient_scope');
  }
  expectOpenAi403(await api('POST', '/v1/chat/completions', { token: key, json: COMPLETION }), 'insufficient_scope');
  const after = await api('GET', path, { token: u.access_token });
  assert.equal(after.body.title, 'mine', 'nothing was changed');
  assert.equal(after.body.message_count, 2, 'nothing was stored');
  assert.equal((await api('GET', '/api/v1/conversations', { token: u.access_token })).body.data.length, 1, 'nothing was created');
});

test('a chat key creates conversations and chats', async () => {
  const u = await registerUser();
  const key = (await keyOf(u, { scopes: ['chat'] })).key;
  const conv = await api('POST', '/api/v1/conversations', { token: key, json: { title: 'by key' } });
  assert.equal(conv.status, 201, conv.text);
  const turn = await api('POST', `/api/v1/conversations/${conv.body.conversation_id}/messages`, { token: key, json: { content: 'hello there' } });
  assert.ok([200, 201].includes(turn.status), turn.text);
  assert.equal(turn.body.assistant_message.status, 'complete');
  assert.equal((await api('GET', `/api/v1/conversations/${conv.body.conversation_id}/messages`, { token: key })).body.data.length, 2);
  expectOpenAi403(await api('POST', '/v1/chat/completions', { token: key, json: COMPLETION }), 'insufficient_scope');
});

test('a key with every scope still cannot manage keys, the account, logout or admin: those need a session', async () => {
  const u = await registerUser();
  const own = await keyOf(u, { scopes: EVERY });
  for (const [method, url, json] of [
    ['POST', '/api/v1/keys', { name: 'minted by a key', scopes: EVERY }],
    ['GET', '/api/v1/keys'],
    ['DELETE', `/api/v1/keys/${own.api_key_id}`],
    ['PATCH', '/api/v1/users/me', { password: 'a new password 1', current_password: PASSWORD }],
    ['PATCH', '/api/v1/users/me', { display_name: 'renamed by a key' }],
    ['DELETE', '/api/v1/users/me'],
    ['POST', '/api/v1/auth/logout', {}],
    ['GET', '/api/v1/admin/users'],
    ['PATCH', `/api/v1/admin/users/${u.user.user_id}`, { plan: 'pro' }],
  ]) {
    expectError(assert, await api(method, url, { token: own.key, json }), 403, 'session_required');
  }
  // Nothing changed: one key, same password, same name, the account and the key alive.
  const keys = (await api('GET', '/api/v1/keys', { token: u.access_token })).body.data;
  assert.deepEqual(keys.map((k) => k.api_key_id), [own.api_key_id]);
  assert.equal((await login(u.email, PASSWORD)).status, 200);
  const me = await api('GET', '/api/v1/users/me', { token: own.key });
  assert.equal(me.status, 200);
  assert.equal(me.body.display_name, null);
  assert.equal(me.body.plan, 'free');
});

test('bad scopes or expiry in a key creation are 422 naming the field, and create nothing', async () => {
  const u = await registerUser();
  const day = 86_400_000;
  for (const [json, field] of [
    [{ scopes: [] }, 'scopes'],
    [{ scopes: ['admin'] }, 'scopes'],
    [{ scopes: ['gateway', 'gateway'] }, 'scopes'],
    [{ scopes: 'gateway' }, 'scopes'],
    [{ scopes: [1] }, 'scopes'],
    [{ scopes: { gateway: true } }, 'scopes'],
    [{ expires_at: new Date(Date.now() - day).toISOString() }, 'expires_at'],
    [{ expires_at: new Date(Date.now() + 400 * day).toISOString() }, 'expires_at'],
    [{ expires_at: 'next week' }, 'expires_at'],
    [{ expires_at: 1893456000000 }, 'expires_at'],
  ]) {
    const err = expectError(assert, await api('POST', '/api/v1/keys', { token: u.access_token, json: { name: 'k', ...json } }), 422, 'validation_failed');
    assert.ok(err.message.startsWith(`${field}`), `${JSON.stringify(json)}: ${err.message}`);
  }
  assert.deepEqual((await api('GET', '/api/v1/keys', { token: u.access_token })).body.data, []);
});

test('an expired key is 401 like a revoked one', async () => {
  const u = await registerUser();
  const created = await keyOf(u, { scopes: ['gateway', 'read'], expires_at: new Date(Date.now() + 86_400_000).toISOString() });
  assert.equal((await api('GET', '/api/v1/users/me', { token: created.key })).status, 200);
  // Let the day pass: move the key's expiry just into the past.
  await execSql(process.env.EDGECHAT_PERSIST_DIR, `UPDATE api_keys SET expires_at = ${Date.now() - 1000} WHERE api_key_id = '${created.api_key_id}'`);
  expectError(assert, await api('GET', '/api/v1/users/me', { token: created.key }), 401, 'invalid_token');
  const gw = await api('POST', '/v1/chat/completions', { token: created.key, json: COMPLETION });
  assert.equal(gw.status, 401);
  assert.equal(gw.body.error.code, 'invalid_api_key');
  // Still listed (with its expiry), so its owner can see why it stopped and revoke it.
  const listed = (await api('GET', '/api/v1/keys', { token: u.access_token })).body.data;
  assert.equal(listed.length, 1);
  assert.ok(Date.parse(listed[0].expires_at) < Date.now());
});
