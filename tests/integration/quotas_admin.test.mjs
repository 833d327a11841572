// Plan limits enforced exactly before any upstream call, the usage API, and the admin API.
// Runs its own worker with small plans so limits are reached quickly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api, expectError } from '../support/client.mjs';
import { grantAdmin, PASSWORD } from '../support/accounts.mjs';
import { simRequests } from '../support/sim.mjs';
import { simVars, startWorker } from '../support/stack.mjs';
import { streamTurn } from '../support/sse.mjs';

let worker;
let base;
const PLANS = {
  free: { requests_per_minute: 5, tokens_per_day: 10_000_000, concurrent_streams: 1, models: ['*'] },
  metered: { requests_per_minute: 100, tokens_per_day: 50, concurrent_streams: 5, models: ['sim-small', 'tiny'] },
  roomy: { requests_per_minute: 1000, tokens_per_day: 10_000_000, concurrent_streams: 5, models: ['*'] },
};

before(async () => {
  worker = await startWorker({ vars: simVars({ PLANS: JSON.stringify(PLANS) }) });
  base = worker.url;
});
after(() => worker?.stop());

const call = (method, path, opts = {}) => api(method, path, { base, ...opts });
const unique = (t) => `${t} [${randomBytes(4).toString('hex')}]`;

async function user(email = `q-${randomBytes(5).toString('hex')}@test.example`) {
  const res = await call('POST', '/api/v1/auth/register', { json: { email, password: PASSWORD } });
  if (res.status === 409) return (await call('POST', '/api/v1/auth/login', { json: { email, password: PASSWORD } })).body;
  assert.equal(res.status, 201, res.text);
  return res.body;
}

/** This worker's admin: a fresh account that the operator's grant made admin (made once). */
let made;
function adminAccount() {
  made ??= (async () => {
    const account = await user();
    await grantAdmin(worker.persistDir, account.user.email);
    return account;
  })();
  return made;
}

async function setPlan(admin, u, plan) {
  const res = await call('PATCH', `/api/v1/admin/users/${u.user.user_id}`, { token: admin.access_token, json: { plan } });
  assert.equal(res.status, 200, res.text);
}

test('50 parallel requests against 5 requests per minute let exactly 5 through', async () => {
  const u = await user();
  const content = unique('parallel');
  const results = await Promise.all(Array.from({ length: 50 }, () =>
    call('POST', '/v1/chat/completions', { token: u.access_token, json: { model: 'tiny', messages: [{ role: 'user', content }] } })));
  const ok = results.filter((r) => r.status === 200);
  const limited = results.filter((r) => r.status === 429);
  assert.equal(ok.length, 5, results.map((r) => r.status).join(','));
  assert.equal(limited.length, 45);
  const r = limited[0];
  assert.ok(Number(r.headers.get('retry-after')) >= 1 && Number(r.headers.get('retry-after')) <= 60);
  assert.equal(r.headers.get('ratelimit-limit'), '5');
  assert.equal(r.headers.get('ratelimit-remaining'), '0');
  assert.equal(r.body.error.code, 'rate_limit_exceeded', 'OpenAI shape on /v1');
  assert.equal((await simRequests(content)).length, 5, 'refused requests never reach the upstream');
  const chat = await call('GET', '/api/v1/conversations', { token: u.access_token });
  assert.equal(chat.status, 200, 'reads are not model calls and are not limited');
});

test('a user over the daily token budget gets 429 with Retry-After and no upstream call', async () => {
  const admin = await adminAccount();
  const u = await user();
  await setPlan(admin, u, 'metered');
  const conv = (await call('POST', '/api/v1/conversations', { token: u.access_token, json: {} })).body;
  const path = `/api/v1/conversations/${conv.conversation_id}/messages`;
  let refused;
  for (let i = 0; i < 5 && !refused; i++) {
    const res = await call('POST', path, { token: u.access_token, json: { content: unique(`turn ${i}`) } });
    if (res.status === 429) refused = res;
    else assert.equal(res.status, 201, res.text);
  }
  assert.ok(refused, 'the budget ran out');
  expectError(assert, refused, 429, 'token_budget_exceeded');
  assert.ok(Number(refused.headers.get('retry-after')) > 0);
  assert.equal(refused.headers.get('ratelimit-limit'), '50');
  const content = unique('over budget');
  expectError(assert, await call('POST', path, { token: u.access_token, json: { content } }), 429);
  assert.deepEqual(await simRequests(content), []);
  // Streamed calls over budget are refused for the budget every time: the stream slot each
  // one takes in the same batch is given back (the plan allows 5 at once).
  for (let i = 0; i < 7; i++) {
    const res = await call('POST', '/v1/chat/completions', {
      token: u.access_token, json: { model: 'sim-small', stream: true, messages: [{ role: 'user', content }] },
    });
    assert.equal(res.status, 429, res.text);
    assert.match(res.body.error.message, /daily budget/, `attempt ${i + 1}: ${res.text}`);
  }
  // With budget again, every slot is there: none was kept by the refused calls.
  await setPlan(admin, u, 'roomy');
  const streams = await Promise.all([1, 2, 3, 4, 5].map(() => call('POST', '/v1/chat/completions', {
    token: u.access_token, json: { model: 'sim-small', stream: true, messages: [{ role: 'user', content: unique('back') }] },
  })));
  assert.deepEqual(streams.map((r) => r.status), [200, 200, 200, 200, 200]);
  await setPlan(admin, u, 'metered');
  const usage = await call('GET', '/api/v1/usage', { token: u.access_token });
  assert.equal(usage.body.plan.name, 'metered');
  assert.ok(usage.body.today.tokens_used >= 50);
  assert.ok(usage.body.usage.length >= 1);
  assert.equal(usage.body.usage[0].model, 'sim-small');
  expectError(assert, await call('POST', path, { token: u.access_token, json: { content: 'x', model: 'claude' } }), 403, 'model_not_in_plan');
});

test('concurrent streams are capped by the plan and freed when a turn ends', async () => {
  const u = await user();
  const conv = (await call('POST', '/api/v1/conversations', { token: u.access_token, json: { model: 'slow' } })).body;
  const path = `/api/v1/conversations/${conv.conversation_id}/messages`;
  // The first turn holds its slot while it runs, read or not (its reader leaves at once).
  const first = await streamTurn(path, { token: u.access_token, json: { content: unique('long story') }, base, stopWhen: (e) => e.event === 'message' });
  const firstId = first.events[0].data.assistant_message_id;
  const secondContent = unique('second');
  const second = await streamTurn(path, { token: u.access_token, json: { content: secondContent }, base });
  assert.equal(second.status, 429);
  assert.equal(second.body.error.code, 'too_many_streams');
  const stored = (await call('GET', `${path}?limit=100`, { token: u.access_token })).body.data;
  assert.ok(!stored.some((m) => m.content === secondContent), 'a turn refused a stream slot stores nothing');
  const cancelled = await call('POST', `${path}/${firstId}/cancel`, { token: u.access_token });
  assert.equal(cancelled.status, 200, cancelled.text);
  let third;
  for (let i = 0; i < 40; i++) {
    await new Promise((r) => setTimeout(r, 150));
    third = await streamTurn(path, { token: u.access_token, json: { content: unique('third') }, base, stopAfterDeltas: 1 });
    if (third.status === 200) break;
  }
  assert.equal(third.status, 200, 'the slot is released when the first turn ends');
});

// A gateway call's counting rides in the D1 batch that checks its credential, gated on the
// credential being live and on the plan this worker last saw for it. These drive both sides
// of each gate: a dead credential, and a plan that changed since.
const completion = (token, content, model = 'tiny') =>
  call('POST', '/v1/chat/completions', { token, json: { model, messages: [{ role: 'user', content }] } });
// Counts per minute: a test that counts calls starts well inside a minute.
async function awayFromMinuteEdge() {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 10_000) await new Promise((r) => setTimeout(r, left + 100));
}
/** The OpenAI error shape of /v1 (401 is `invalid_api_key`, every 429 `rate_limit_exceeded`). */
function expectOpenAiError(res, status, code) {
  assert.equal(res.status, status, res.text);
  assert.deepEqual(Object.keys(res.body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(res.body.error.code, code);
}
const tokensToday = async (u) => (await call('GET', '/api/v1/usage', { token: u.access_token })).body.today.tokens_used;

test('gateway calls with a dead token or key count nothing and reach no upstream', async () => {
  await awayFromMinuteEdge();
  const admin = await adminAccount();
  const u = await user();
  const key = (await call('POST', '/api/v1/keys', { token: u.access_token, json: { name: 'gw' } })).body.key;
  const content = unique('dead credential');
  assert.equal((await completion(key, unique('key seen once'))).status, 200, 'the key works (and this worker has seen it)');
  // A logged-out session and a revoked key, each used after this worker has seen them live.
  const session = await call('POST', '/api/v1/auth/login', { json: { email: u.user.email, password: PASSWORD } });
  assert.equal((await completion(session.body.access_token, unique('session seen once'))).status, 200);
  assert.equal((await call('POST', '/api/v1/auth/logout', { token: session.body.access_token, json: { refresh_token: session.body.refresh_token } })).status, 204);
  const keys = (await call('GET', '/api/v1/keys', { token: u.access_token })).body.data;
  assert.equal((await call('DELETE', `/api/v1/keys/${keys[0].api_key_id}`, { token: u.access_token })).status, 204);
  const before = await tokensToday(u);
  for (let i = 0; i < 4; i++) {
    expectOpenAiError(await completion(session.body.access_token, content), 401, 'invalid_api_key');
    expectOpenAiError(await completion(key, content), 401, 'invalid_api_key');
  }
  assert.deepEqual(await simRequests(content), [], 'nothing went upstream');
  assert.equal(await tokensToday(u), before, 'no tokens were reserved');
  // The minute (5 calls on free; 2 used above) still has exactly 3 calls left.
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await completion(u.access_token, unique(`after ${i}`))).status);
  assert.deepEqual(statuses, [200, 200, 200, 429]);
  // A disabled user's live token, seen by this worker, counts nothing either.
  const v = await user();
  assert.equal((await completion(v.access_token, unique('before disabling'))).status, 200);
  await call('PATCH', `/api/v1/admin/users/${v.user.user_id}`, { token: admin.access_token, json: { is_disabled: true } });
  expectOpenAiError(await completion(v.access_token, content), 401, 'invalid_api_key');
  assert.deepEqual(await simRequests(content), []);
});

test('gateway calls are counted against the plan the user has now, not the one last seen', async () => {
  await awayFromMinuteEdge();
  const admin = await adminAccount();
  const u = await user();
  const key = (await call('POST', '/api/v1/keys', { token: u.access_token, json: { name: 'gw' } })).body.key;
  // Roomy allows 1000 calls a minute; free allows 5.
  await setPlan(admin, u, 'roomy');
  const statuses = [];
  for (let i = 0; i < 8; i++) statuses.push((await completion(i % 2 ? key : u.access_token, unique(`roomy ${i}`))).status);
  assert.deepEqual(statuses, Array(8).fill(200));
  // Back on free with 8 calls in the minute already: both credentials were last seen on
  // roomy, and both are now refused by free's limit.
  await setPlan(admin, u, 'free');
  for (const credential of [u.access_token, key]) {
    const res = await completion(credential, unique('free again'));
    expectOpenAiError(res, 429, 'rate_limit_exceeded');
    assert.equal(res.headers.get('ratelimit-limit'), '5');
  }
  // Metered does not include the model: 403, with nothing counted or sent.
  await setPlan(admin, u, 'metered');
  const content = unique('not in plan');
  const before = await tokensToday(u);
  for (const credential of [u.access_token, key]) {
    expectOpenAiError(await completion(credential, content, 'sim-large'), 403, 'model_not_in_plan');
  }
  assert.deepEqual(await simRequests(content), []);
  assert.equal(await tokensToday(u), before, 'no tokens were reserved');
});

test('a chat turn refused by the plan stores no message and leaves the conversation as it was', async () => {
  await awayFromMinuteEdge();
  const admin = await adminAccount();
  const u = await user();
  const conv = (await call('POST', '/api/v1/conversations', { token: u.access_token, json: {} })).body;
  const path = `/api/v1/conversations/${conv.conversation_id}/messages`;
  const sent = [];
  for (let i = 0; i < 5; i++) {
    const content = unique(`kept ${i}`);
    sent.push(content);
    assert.equal((await call('POST', path, { token: u.access_token, json: { content } })).status, 201);
  }
  const stored = async () => (await call('GET', `${path}?limit=100`, { token: u.access_token })).body.data;
  const before = await stored();
  assert.equal(before.length, 10);
  const listed = async () => (await call('GET', `/api/v1/conversations/${conv.conversation_id}`, { token: u.access_token })).body;
  const convBefore = await listed();
  // The minute's sixth turn (free: 5 a minute), then over the day's budget (metered: 50 tokens).
  const refusedRate = unique('refused by the minute');
  expectError(assert, await call('POST', path, { token: u.access_token, json: { content: refusedRate } }), 429, 'rate_limited');
  await setPlan(admin, u, 'metered');
  const refusedBudget = unique('refused by the budget');
  expectError(assert, await call('POST', path, { token: u.access_token, json: { content: refusedBudget, model: 'tiny' } }), 429, 'token_budget_exceeded');
  const after = await stored();
  assert.deepEqual(after.map((m) => m.message_id), before.map((m) => m.message_id), 'no message was added');
  assert.ok(!after.some((m) => m.content === refusedRate || m.content === refusedBudget));
  const convAfter = await listed();
  assert.equal(convAfter.message_count, 10);
  assert.equal(convAfter.updated_at, convBefore.updated_at);
  assert.deepEqual(await simRequests(refusedRate), []);
  assert.deepEqual(await simRequests(refusedBudget), []);
});

test('admin endpoints answer 403 to everyone but admins', async () => {
  const u = await user();
  for (const [method, path] of [
    ['GET', '/api/v1/admin/users'], ['PATCH', `/api/v1/admin/users/${u.user.user_id}`], ['GET', '/api/v1/admin/usage'],
    ['GET', '/api/v1/admin/webhook-events'], ['GET', '/api/v1/admin/audit'],
  ]) {
    expectError(assert, await call(method, path, { token: u.access_token, json: method === 'PATCH' ? { plan: 'roomy' } : undefined }), 403, 'forbidden');
    expectError(assert, await call(method, path), 401);
  }
  assert.equal((await call('GET', '/api/v1/users/me', { token: u.access_token })).body.plan, 'free');
});

test('admins search users, change them with an audit trail, and disabling kills live tokens', async () => {
  const admin = await adminAccount();
  const tag = randomBytes(4).toString('hex');
  const target = await user(`target-${tag}@test.example`);
  await user(`target-${tag}-2@test.example`);
  const found = await call('GET', `/api/v1/admin/users?q=TARGET-${tag}&limit=1`, { token: admin.access_token });
  assert.equal(found.status, 200, found.text);
  assert.equal(found.body.data.length, 1);
  assert.ok(found.body.next_cursor);
  const page2 = await call('GET', `/api/v1/admin/users?q=target-${tag}&limit=1&cursor=${found.body.next_cursor}`, { token: admin.access_token });
  assert.equal(page2.body.data.length, 1);
  assert.notEqual(page2.body.data[0].user_id, found.body.data[0].user_id);
  assert.deepEqual((await call('GET', '/api/v1/admin/users?q=%25', { token: admin.access_token })).body.data, [], 'wildcards are literal');

  const path = `/api/v1/admin/users/${target.user.user_id}`;
  for (const json of [{}, { role: 'root' }, { plan: 'gold' }, { is_disabled: 'yes' }, { email: 'x@y.z' }]) {
    expectError(assert, await call('PATCH', path, { token: admin.access_token, json }), 422);
  }
  expectError(assert, await call('PATCH', '/api/v1/admin/users/usr_AAAAAAAAAAAAAAAAAAAAAA', { token: admin.access_token, json: { plan: 'roomy' } }), 404);
  expectError(assert, await call('PATCH', `/api/v1/admin/users/${admin.user.user_id}`, { token: admin.access_token, json: { is_disabled: true } }), 422);
  const promoted = await call('PATCH', path, { token: admin.access_token, json: { plan: 'roomy', role: 'admin' } });
  assert.equal(promoted.status, 200, promoted.text);
  assert.equal(promoted.body.plan, 'roomy');
  assert.equal(promoted.body.role, 'admin');
  assert.equal((await call('GET', '/api/v1/users/me', { token: target.access_token })).status, 200);
  const disabled = await call('PATCH', path, { token: admin.access_token, json: { is_disabled: true } });
  assert.equal(disabled.body.is_disabled, true);
  expectError(assert, await call('GET', '/api/v1/users/me', { token: target.access_token }), 401, 'invalid_token');
  expectError(assert, await call('POST', '/api/v1/auth/refresh', { json: { refresh_token: target.refresh_token } }), 401);

  const audit = await call('GET', '/api/v1/admin/audit?limit=100', { token: admin.access_token });
  const mine = audit.body.data.filter((a) => a.target_user_id === target.user.user_id);
  assert.equal(mine.length, 2);
  assert.deepEqual(mine.map((a) => a.detail), [{ role: null, plan: null, is_disabled: true }, { role: 'admin', plan: 'roomy', is_disabled: null }]);
  assert.equal(mine[0].admin_user_id, admin.user.user_id);
});

test('admins read usage by user, model and day, and the webhook log', async () => {
  const admin = await adminAccount();
  for (const group of ['user', 'model', 'day']) {
    const res = await call('GET', `/api/v1/admin/usage?group=${group}&days=7`, { token: admin.access_token });
    assert.equal(res.status, 200, res.text);
    assert.ok(res.body.data.length >= 1, group);
    assert.ok(res.body.data.every((r) => r.requests >= 1));
  }
  expectError(assert, await call('GET', '/api/v1/admin/usage?group=week', { token: admin.access_token }), 400);
  const events = await call('GET', '/api/v1/admin/webhook-events', { token: admin.access_token });
  assert.equal(events.status, 200);
  assert.ok(Array.isArray(events.body.data));
});
