// Admission of model calls: the worst case reserved before any upstream call, output caps
// and choices bounded, cost-changing fields governed per route, fallbacks kept inside the
// plan, and stream slots and reservations that cannot leak when an instance dies.
// Runs its own worker with its own plans and a few extra routes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api, expectError } from '../support/client.mjs';
import { grantAdmin, PASSWORD } from '../support/accounts.mjs';
import { eventually, simRequests } from '../support/sim.mjs';
import { execSql, simVars, startWorker, TEST_VARS } from '../support/stack.mjs';

const PLANS = {
  free: { requests_per_minute: 1000, tokens_per_day: 10_000_000, concurrent_streams: 1, models: ['*'] },
  // A budget smaller than one default answer (1024 tokens), larger than one capped answer.
  budget: { requests_per_minute: 1000, tokens_per_day: 120, concurrent_streams: 5, max_n: 3, models: ['*'] },
  multi: { requests_per_minute: 1000, tokens_per_day: 10_000_000, concurrent_streams: 5, max_n: 3, models: ['*'] },
  narrow: { requests_per_minute: 1000, tokens_per_day: 10_000_000, concurrent_streams: 5, models: ['broken'] },
};
const ROUTES = JSON.parse(TEST_VARS.MODEL_ROUTES);
Object.assign(ROUTES.models, {
  capped: { provider: 'openai', upstream: 'sim-small+tokens=4+interval=1', max_output_tokens: 50 },
  tiered: { provider: 'openai', upstream: 'sim-small+tokens=4+interval=1', allow_fields: ['service_tier'] },
  long: { provider: 'openai', upstream: 'sim-small+tokens=2400+interval=25' },
});

let worker;
let base;
before(async () => {
  worker = await startWorker({
    vars: simVars({ PLANS: JSON.stringify(PLANS), MODEL_ROUTES: JSON.stringify(ROUTES) }),
  });
  base = worker.url;
});
after(() => worker?.stop());

const call = (method, path, opts = {}) => api(method, path, { base, ...opts });
const unique = (t) => `${t} [${randomBytes(4).toString('hex')}]`;
const sql = async (text) => (await execSql(worker.persistDir, text))[0].results;

async function user() {
  const email = `adm-${randomBytes(5).toString('hex')}@test.example`;
  const res = await call('POST', '/api/v1/auth/register', { json: { email, password: PASSWORD } });
  assert.equal(res.status, 201, res.text);
  return res.body;
}

let admin;
async function onPlan(plan) {
  admin ??= (async () => {
    const a = await user();
    await grantAdmin(worker.persistDir, a.user.email);
    return a;
  })();
  const u = await user();
  const res = await call('PATCH', `/api/v1/admin/users/${u.user.user_id}`, { token: (await admin).access_token, json: { plan } });
  assert.equal(res.status, 200, res.text);
  return u;
}

const complete = (u, json) => call('POST', '/v1/chat/completions', { token: u.access_token, json });
const ask = (model, content, extra = {}) => ({ model, messages: [{ role: 'user', content }], ...extra });

/** A 400 in OpenAI's shape naming `param`. */
function expectInvalid(res, param) {
  assert.equal(res.status, 400, res.text);
  assert.deepEqual(Object.keys(res.body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(res.body.error.type, 'invalid_request_error');
  assert.equal(res.body.error.param, param, res.text);
}

test('a call whose worst case exceeds what is left of the day is refused before any upstream call', async () => {
  const u = await onPlan('budget');
  // Nothing used yet, but a default answer may take 1024 tokens of the 120.
  const content = unique('too big');
  const refused = await complete(u, ask('sim-small', content));
  assert.equal(refused.status, 429, refused.text);
  assert.equal(refused.body.error.code, 'rate_limit_exceeded');
  assert.match(refused.body.error.message, /may use up to \d+ tokens, more than is left of the daily budget of 120 tokens/);
  assert.ok(Number(refused.headers.get('retry-after')) > 0);
  assert.equal(refused.headers.get('ratelimit-limit'), '120');
  assert.equal(refused.headers.get('ratelimit-remaining'), '0');
  const streamed = await complete(u, ask('sim-small', content, { stream: true }));
  assert.equal(streamed.status, 429, streamed.text);
  assert.deepEqual(await simRequests(content), [], 'the upstream saw nothing');
  // A call whose worst case fits (50 output tokens) goes through.
  const fits = unique('fits');
  assert.equal((await complete(u, ask('capped', fits))).status, 200);
  assert.equal((await simRequests(fits)).length, 1);

  // Chat turns reserve the same way: the conversation's default model is refused, nothing stored.
  const conv = (await call('POST', '/api/v1/conversations', { token: u.access_token, json: {} })).body;
  const path = `/api/v1/conversations/${conv.conversation_id}/messages`;
  const turn = unique('turn too big');
  expectError(assert, await call('POST', path, { token: u.access_token, json: { content: turn } }), 429, 'token_budget_exceeded');
  assert.deepEqual(await simRequests(turn), []);
  assert.deepEqual((await call('GET', path, { token: u.access_token })).body.data, []);
  // Offering the built-in tools adds their definitions to the prompt estimate: too big again.
  const small = unique('turn that fits');
  const withTools = await call('POST', path, { token: u.access_token, json: { content: small, model: 'capped' } });
  expectError(assert, withTools, 429, 'token_budget_exceeded');
  const bare = (await call('POST', '/api/v1/conversations', { token: u.access_token, json: { tools: [] } })).body;
  const barePath = `/api/v1/conversations/${bare.conversation_id}/messages`;
  assert.equal((await call('POST', barePath, { token: u.access_token, json: { content: small, model: 'capped' } })).status, 201);
});

test('an output cap above the route\'s is refused naming the field, and the pair must agree', async () => {
  const u = await onPlan('free');
  const content = unique('cap');
  const over = await complete(u, ask('capped', content, { max_tokens: 51 }));
  expectInvalid(over, 'max_tokens');
  assert.match(over.body.error.message, /max_tokens is too large: 51\. Model capped supports at most 50 completion tokens/);
  expectInvalid(await complete(u, ask('capped', content, { max_completion_tokens: 1_000_000 })), 'max_completion_tokens');
  expectInvalid(await complete(u, ask('capped', content, { max_tokens: 10, max_completion_tokens: 20 })), 'max_tokens');
  assert.deepEqual(await simRequests(content), []);
  const atCap = unique('at the cap');
  assert.equal((await complete(u, ask('capped', atCap, { max_tokens: 50, max_completion_tokens: 50 }))).status, 200);
  assert.equal((await simRequests(atCap))[0].body.max_tokens, 50, 'the body goes upstream as sent');
});

test('n is bounded by the plan and counted in the reservation', async () => {
  const free = await onPlan('free');
  const content = unique('choices');
  const over = await complete(free, ask('capped', content, { n: 2 }));
  expectInvalid(over, 'n');
  assert.match(over.body.error.message, /above the 1 choices per request of the free plan/);
  const multi = await onPlan('multi');
  expectInvalid(await complete(multi, ask('capped', content, { n: 4 })), 'n');
  expectInvalid(await complete(multi, ask('claude', content, { n: 2 })), 'n');
  assert.deepEqual(await simRequests(content), []);
  const two = unique('two choices');
  assert.equal((await complete(multi, ask('capped', two, { n: 2 }))).status, 200);
  assert.equal((await simRequests(two))[0].body.n, 2);
  // 3 x 50 output tokens do not fit in 120; one choice does.
  const budget = await onPlan('budget');
  const three = unique('three choices');
  const refused = await complete(budget, ask('capped', three, { n: 3 }));
  assert.equal(refused.status, 429, refused.text);
  assert.match(refused.body.error.message, /daily budget of 120 tokens/);
  assert.deepEqual(await simRequests(three), []);
  assert.equal((await complete(budget, ask('capped', three, { n: 1 }))).status, 200);
});

test('a request for several choices is never answered from the one-choice cache', async () => {
  const u = await onPlan('multi');
  const several = ask('capped', unique('two deterministic choices'), { n: 2, temperature: 0 });
  const first = await complete(u, several);
  assert.equal(first.status, 200, first.text);
  assert.equal(first.headers.get('x-edgechat-cache'), 'bypass');
  // A one-choice request is cached (so the entry of the first, had it made one, is written by now).
  const one = ask('capped', unique('one deterministic choice'), { temperature: 0 });
  assert.equal((await complete(u, one)).headers.get('x-edgechat-cache'), 'miss');
  await eventually(async () => (await complete(u, one)).headers.get('x-edgechat-cache') === 'hit', { what: 'a cache hit' });
  const again = await complete(u, several);
  assert.equal(again.headers.get('x-edgechat-cache'), 'bypass');
  assert.equal((await simRequests(several.messages[0].content)).length, 2, 'both went upstream');
});

test('cost-changing fields pass only where the route allows them; unknown fields pass untouched', async () => {
  const u = await onPlan('free');
  const content = unique('governed');
  for (const [field, value] of [['service_tier', 'priority'], ['store', true], ['web_search_options', {}], ['audio', { voice: 'alloy', format: 'mp3' }], ['modalities', ['text', 'audio']], ['prediction', { type: 'content', content: 'x' }], ['reasoning_effort', 'high']]) {
    const res = await complete(u, ask('capped', content, { [field]: value }));
    expectInvalid(res, field);
    assert.match(res.body.error.message, new RegExp(`^${field} changes the price of a call and is not enabled for model capped`));
  }
  expectInvalid(await complete(u, ask('tiered', content, { store: true })), 'store');
  assert.deepEqual(await simRequests(content), []);
  const tiered = unique('tiered');
  assert.equal((await complete(u, ask('tiered', tiered, { service_tier: 'priority' }))).status, 200);
  assert.equal((await simRequests(tiered))[0].body.service_tier, 'priority');
  const unknown = unique('unknown field');
  const res = await complete(u, ask('capped', unknown, { x_trace: { id: 7 }, service_tier: null }));
  assert.equal(res.status, 200, res.text);
  assert.deepEqual((await simRequests(unknown))[0].body.x_trace, { id: 7 });
});

test('a fallback outside the plan is not tried, on the gateway and in chat', async () => {
  const narrow = await onPlan('narrow');
  const content = unique('narrow');
  const res = await complete(narrow, ask('broken', content));
  assert.equal(res.status, 502, res.text);
  const seen = await simRequests(content);
  assert.ok(seen.length >= 1 && seen.every((r) => r.model.startsWith('sim-small+status=500')), JSON.stringify(seen.map((r) => r.model)));
  const conv = (await call('POST', '/api/v1/conversations', { token: narrow.access_token, json: { model: 'broken' } })).body;
  const turn = unique('narrow turn');
  const failed = await call('POST', `/api/v1/conversations/${conv.conversation_id}/messages`, { token: narrow.access_token, json: { content: turn } });
  expectError(assert, failed, 502, 'upstream_error');
  assert.ok((await simRequests(turn)).every((r) => !r.model.startsWith('sim-large')));
  // With every model in the plan, the same call falls back.
  const free = await onPlan('free');
  const wide = unique('wide');
  assert.equal((await complete(free, ask('broken', wide))).status, 200);
  assert.ok((await simRequests(wide)).some((r) => r.model.startsWith('sim-large')));
});

test('a stream slot not renewed for a minute is free again; a fresh one still counts', async () => {
  const u = await onPlan('free'); // one stream at a time
  const id = u.user.user_id;
  await sql(`INSERT INTO active_streams (stream_id, user_id, started_at) VALUES ('str_stale_${randomBytes(6).toString('hex')}', '${id}', ${Date.now() - 61_000})`);
  const first = await complete(u, ask('capped', unique('after a dead stream'), { stream: true }));
  assert.equal(first.status, 200, first.text);
  assert.match(first.text, /data: \[DONE\]/);
  await eventually(async () => (await sql(`SELECT COUNT(*) AS n FROM active_streams WHERE user_id = '${id}'`))[0].n === 0, { what: 'the slot released' });
  await sql(`INSERT INTO active_streams (stream_id, user_id, started_at) VALUES ('str_fresh_${randomBytes(6).toString('hex')}', '${id}', ${Date.now() - 1_000})`);
  const content = unique('beside a live stream');
  const second = await complete(u, ask('capped', content, { stream: true }));
  assert.equal(second.status, 429, second.text);
  assert.match(second.body.error.message, /streams at once/);
  assert.deepEqual(await simRequests(content), []);
});

test('a running stream renews its slot and its reservation', { timeout: 120_000 }, async () => {
  const u = await onPlan('multi');
  const id = u.user.user_id;
  const started = Date.now();
  const controller = new AbortController();
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST', signal: controller.signal,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${u.access_token}` },
    body: JSON.stringify(ask('long', unique('a long story'), { stream: true })),
  });
  assert.equal(res.status, 200);
  const reading = (async () => { try { for await (const _ of res.body); } catch {} })();
  const lease = async () => (await sql(`SELECT s.started_at, r.expires_at FROM active_streams s, reservations r WHERE s.user_id = '${id}' AND r.user_id = '${id}'`))[0];
  const taken = await lease();
  assert.ok(taken, 'the stream holds a slot and a reservation');
  await new Promise((r) => setTimeout(r, 22_000));
  const renewed = await lease();
  assert.ok(renewed, 'still held while the stream runs');
  assert.ok(renewed.started_at >= started + 15_000, `the slot's lease was renewed (${renewed.started_at - started} ms after the start)`);
  assert.ok(renewed.expires_at > taken.expires_at + 15_000, 'the reservation was renewed');
  controller.abort();
  await reading;
  await eventually(async () => (await sql(`SELECT COUNT(*) AS n FROM active_streams WHERE user_id = '${id}'`))[0].n === 0, { timeoutMs: 10_000, what: 'the slot released' });
});

test('a reservation that never settled is settled by the user\'s next request', async () => {
  const u = await onPlan('free');
  const id = u.user.user_id;
  const now = Date.now();
  const day = new Date(now).toISOString().slice(0, 10);
  const stale = `rsv_stale${randomBytes(6).toString('hex')}`;
  const live = `rsv_live${randomBytes(6).toString('hex')}`;
  const row = (rid, expires) => `('${rid}', '${id}', '${day}', 11, 22, 'lost-model', 'gateway', NULL, ${now - 200_000}, ${expires})`;
  await sql(`INSERT INTO reservations (reservation_id, user_id, day, prompt_tokens, completion_tokens, model, source, api_key_id, created_at, expires_at) VALUES ${row(stale, now - 1_000)}, ${row(live, now + 600_000)}`);
  assert.equal((await complete(u, ask('capped', unique('next request')))).status, 200);
  const records = await sql(`SELECT status, prompt_tokens, completion_tokens, is_usage_estimated, model, source FROM usage_records WHERE usage_record_id = 'use_${stale.slice(4)}'`);
  assert.deepEqual(records, [{ status: 'unsettled', prompt_tokens: 11, completion_tokens: 22, is_usage_estimated: 1, model: 'lost-model', source: 'gateway' }]);
  const usage = (await call('GET', '/api/v1/usage', { token: u.access_token })).body.usage;
  assert.ok(usage.some((r) => r.model === 'lost-model' && r.prompt_tokens === 11 && r.completion_tokens === 22), JSON.stringify(usage));
  // The expired reservation is gone, the live one stays, and the call's own was settled.
  await eventually(async () => {
    const left = await sql(`SELECT reservation_id FROM reservations WHERE user_id = '${id}'`);
    return left.length === 1 && left[0].reservation_id === live;
  }, { what: 'only the live reservation left' });
});
