// The OpenAI-compatible gateway over raw HTTP: shapes, errors, translation, tools, cache and
// usage records (the official SDKs are exercised in openai_sdk.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api } from '../support/client.mjs';
import { registerUser } from '../support/accounts.mjs';
import { simAnswer, simRequests, eventually } from '../support/sim.mjs';
import { execSql } from '../support/stack.mjs';

const unique = (text) => `${text} [${randomBytes(4).toString('hex')}]`;

async function keyedUser() {
  const u = await registerUser();
  const key = await api('POST', '/api/v1/keys', { token: u.access_token, json: { name: 'gateway' } });
  return { ...u, key: key.body.key, api_key_id: key.body.api_key_id };
}

const complete = (token, json, headers = {}) => api('POST', '/v1/chat/completions', { token, json, headers });

async function sse(token, json, headers = {}) {
  const res = await fetch(`${process.env.EDGECHAT_URL}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify({ ...json, stream: true }),
  });
  const text = await res.text();
  const data = text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
  return { res, raw: text, data, chunks: data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d)) };
}

function expectOpenAiError(res, status, code) {
  assert.equal(res.status, status, res.text);
  assert.deepEqual(Object.keys(res.body), ['error']);
  assert.deepEqual(Object.keys(res.body.error).sort(), ['code', 'message', 'param', 'type']);
  if (code !== undefined) assert.equal(res.body.error.code, code);
  return res.body.error;
}

test('GET /v1/models lists the routed models in OpenAI shape', async () => {
  const u = await keyedUser();
  const res = await api('GET', '/v1/models', { token: u.key });
  assert.equal(res.status, 200);
  assert.equal(res.body.object, 'list');
  const ids = res.body.data.map((m) => m.id);
  assert.ok(ids.includes('sim-small') && ids.includes('claude'));
  assert.equal(res.body.data.find((m) => m.id === 'claude').owned_by, 'anthropic');
  // The routes' default says so (a page can name it); no other model carries `default`.
  assert.deepEqual(res.body.data.filter((m) => 'default' in m).map((m) => [m.id, m.default]), [['sim-small', true]]);
  expectOpenAiError(await api('GET', '/v1/models'), 401, 'invalid_api_key');
});

test('a completion passes through the OpenAI upstream unchanged, by API key or access token', async () => {
  const u = await keyedUser();
  const content = unique('Say something');
  const messages = [{ role: 'user', content }];
  const expected = await simAnswer('sim-small+tokens=24+interval=15', messages);
  for (const token of [u.key, u.access_token]) {
    const res = await complete(token, { model: 'sim-small', messages, logit_bias: { 1: 0 } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.object, 'chat.completion');
    assert.equal(res.body.choices[0].message.content, expected);
    assert.equal(res.body.usage.completion_tokens, 24);
    assert.equal(res.headers.get('x-edgechat-cache'), 'bypass');
  }
  const recs = (await simRequests(content)).filter((r) => r.body.logit_bias);
  assert.equal(recs.length, 2);
  assert.deepEqual(recs[0].body.logit_bias, { 1: 0 }, 'unknown fields pass through');
  assert.equal(recs[0].model, 'sim-small+tokens=24+interval=15', 'the routed upstream model is sent');
});

test('the upstream gets the client\'s body as written: its member order, the last of a repeated name', async () => {
  const u = await keyedUser();
  const content = unique('Keep my order');
  // Raw text: a repeated "user" and members in no sorted order.
  const body = `{"stream":false,"messages":[{"content":${JSON.stringify(content)},"role":"user"}],"user":"first","model":"sim-small","metadata":{"zeta":1,"alpha":[2,{"y":true,"b":null}]},"user":"last"}`;
  const res = await api('POST', '/v1/chat/completions', { token: u.key, body, headers: { 'content-type': 'application/json' } });
  assert.equal(res.status, 200, res.text);
  const [rec] = await simRequests(content);
  assert.deepEqual(Object.keys(rec.body), ['stream', 'messages', 'user', 'model', 'metadata']);
  assert.deepEqual(Object.keys(rec.body.messages[0]), ['content', 'role']);
  assert.equal(rec.body.user, 'last');
  assert.deepEqual(rec.body.metadata, { zeta: 1, alpha: [2, { y: true, b: null }] });
  assert.deepEqual(Object.keys(rec.body.metadata), ['zeta', 'alpha']);
});

test('JSON nested deeper than 128 levels is a 400, and the worker answers the next request', async () => {
  const u = await keyedUser();
  const deep = (n) => '['.repeat(n) + ']'.repeat(n);
  const gateway = (metadata) => api('POST', '/v1/chat/completions', {
    token: u.key,
    body: `{"model":"sim-small","messages":[{"role":"user","content":"x"}],"metadata":${metadata}}`,
    headers: { 'content-type': 'application/json' },
  });
  const err = expectOpenAiError(await gateway(deep(100_000)), 400);
  assert.match(err.message, /nested too deeply/);
  const chat = await api('POST', '/api/v1/conversations', { token: u.access_token, body: `{"title":${deep(5000)}}`, headers: { 'content-type': 'application/json' } });
  assert.equal(chat.status, 400, chat.text);
  assert.equal(chat.body.error.code, 'invalid_json');
  // 127 levels inside the body object (128 with it) still parse: the request goes on to its checks.
  assert.equal((await gateway(deep(127))).status, 200);
  assert.equal((await api('GET', '/health')).status, 200);
});

test('a stream ends with [DONE] and carries usage when asked', async () => {
  const u = await keyedUser();
  const content = unique('Stream it');
  const s = await sse(u.key, { model: 'sim-small', messages: [{ role: 'user', content }], stream_options: { include_usage: true } });
  assert.equal(s.res.status, 200);
  assert.match(s.res.headers.get('content-type'), /^text\/event-stream/);
  assert.equal(s.data.at(-1), '[DONE]');
  const text = s.chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, await simAnswer('sim-small+tokens=24+interval=15', [{ role: 'user', content }]));
  assert.equal(s.chunks.at(-1).usage.completion_tokens, 24);
  assert.ok(s.chunks.every((c) => c.object === 'chat.completion.chunk'));
});

test('an Anthropic upstream is translated to OpenAI format, streamed and not', async () => {
  const u = await keyedUser();
  const content = unique('Hi Claude');
  const messages = [{ role: 'system', content: 'Be kind.' }, { role: 'user', content }];
  const res = await complete(u.key, { model: 'claude', messages });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.object, 'chat.completion');
  assert.equal(res.body.model, 'claude');
  assert.match(res.body.id, /^chatcmpl-/);
  assert.equal(res.body.choices[0].finish_reason, 'stop');
  assert.equal(res.body.usage.completion_tokens, 16);
  const [rec] = await simRequests(content);
  assert.equal(rec.path, '/v1/messages');
  assert.equal(rec.body.system, 'Be kind.');

  const s = await sse(u.key, { model: 'claude', messages, stream_options: { include_usage: true } });
  assert.equal(s.data.at(-1), '[DONE]');
  assert.equal(s.chunks[0].choices[0].delta.role, 'assistant');
  const text = s.chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.equal(text, res.body.choices[0].message.content);
  assert.equal(s.chunks.at(-2).choices[0].finish_reason, 'stop');
  assert.equal(s.chunks.at(-1).usage.completion_tokens, 16);
});

test('tool calls stream through intact', async () => {
  const u = await keyedUser();
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  const s = await sse(u.key, { model: 'sim-small', messages: [{ role: 'user', content: unique('Weather in Lisbon?') }], tools });
  const calls = s.chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
  assert.equal(calls[0].function.name, 'get_weather');
  const args = calls.map((c) => c.function.arguments ?? '').join('');
  assert.equal(typeof JSON.parse(args), 'object');
  assert.equal(s.chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0].finish_reason, 'tool_calls');
  // Translated for an Anthropic route (tests/integration/gateway_tools.test.mjs has the details).
  const claude = await complete(u.key, { model: 'claude', messages: [{ role: 'user', content: `${unique('Weather in Oslo?')}\n/tool get_weather {"city":"Oslo"}` }], tools });
  assert.equal(claude.status, 200, claude.text);
  assert.equal(claude.body.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(claude.body.choices[0].message.tool_calls.map((t) => [t.function.name, t.function.arguments]), [['get_weather', '{"city":"Oslo"}']]);
});

test('JSON mode on a translated (Anthropic) route is answered in JSON, never silently dropped', async () => {
  const u = await keyedUser();
  for (const response_format of [{ type: 'json_object' }, { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } }]) {
    const content = unique('Answer in JSON');
    const res = await complete(u.key, { model: 'claude', messages: [{ role: 'user', content }], response_format });
    assert.equal(res.status, 200, res.text);
    assert.equal(typeof JSON.parse(res.body.choices[0].message.content), 'object');
    const [upstream] = await simRequests(content);
    assert.equal(upstream.body.tool_choice.type, 'tool', 'asked as a forced tool');
  }
  const text = await complete(u.key, { model: 'claude', messages: [{ role: 'user', content: unique('plain') }], response_format: { type: 'text' } });
  assert.equal(text.status, 200, text.text);
  const openai = await complete(u.key, { model: 'sim-small', messages: [{ role: 'user', content: unique('json please') }], response_format: { type: 'json_object' } });
  assert.equal(openai.status, 200, openai.text);
});

test('errors take OpenAI shapes and statuses', async () => {
  const u = await keyedUser();
  expectOpenAiError(await complete('ec_sk_' + 'A'.repeat(43), { model: 'sim-small', messages: [{ role: 'user', content: 'x' }] }), 401, 'invalid_api_key');
  expectOpenAiError(await complete(undefined, { model: 'sim-small', messages: [] }), 401, 'invalid_api_key');
  const nf = expectOpenAiError(await complete(u.key, { model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }), 404, 'model_not_found');
  assert.equal(nf.param, 'model');
  for (const [json, param] of [
    [{ model: 'sim-small', messages: [] }, 'messages'],
    [{ model: 'sim-small', messages: [{ role: 'user', content: 'x' }], temperature: 5 }, 'temperature'],
    [{ messages: [{ role: 'user', content: 'x' }] }, 'model'],
    [{ model: 'sim-small', messages: [{ role: 'alien', content: 'x' }] }, 'messages[0].role'],
  ]) {
    const err = expectOpenAiError(await complete(u.key, json), 400);
    assert.equal(err.param, param);
    assert.equal(err.type, 'invalid_request_error');
  }
  const bad = await api('POST', '/v1/chat/completions', { token: u.key, body: '{"model":', headers: { 'content-type': 'application/json' } });
  expectOpenAiError(bad, 400);
  expectOpenAiError(await api('GET', '/v1/chat/completions', { token: u.key }), 405);
  const timeout = await complete(u.key, { model: 'hang', messages: [{ role: 'user', content: unique('hang') }] });
  expectOpenAiError(timeout, 504, 'upstream_timeout');
});

test('deterministic requests are cached per user, streamed or not, and no-cache bypasses', async () => {
  const u = await keyedUser();
  const content = unique('Cache me');
  const body = { model: 'sim-small', messages: [{ role: 'user', content }], temperature: 0 };
  const first = await complete(u.key, body);
  assert.equal(first.headers.get('x-edgechat-cache'), 'miss');
  const second = await eventually(async () => {
    const r = await complete(u.key, body);
    return r.headers.get('x-edgechat-cache') === 'hit' ? r : null;
  }, { what: 'a cache hit' });
  assert.equal(second.body.choices[0].message.content, first.body.choices[0].message.content);
  assert.equal(second.body.usage.completion_tokens, 24);
  assert.equal((await simRequests(content)).length, 1, 'the hit made no upstream call');

  const streamed = await sse(u.key, { ...body, stream_options: { include_usage: true } });
  assert.equal(streamed.res.headers.get('x-edgechat-cache'), 'hit');
  assert.ok(streamed.chunks.length > 5, 'replayed as chunks');
  assert.equal(streamed.chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), first.body.choices[0].message.content);
  assert.equal(streamed.data.at(-1), '[DONE]');
  assert.equal(streamed.chunks.at(-1).usage.completion_tokens, 24);

  const bypass = await complete(u.key, body, { 'cache-control': 'no-cache' });
  assert.equal(bypass.headers.get('x-edgechat-cache'), 'bypass');
  assert.equal((await simRequests(content)).length, 2);
  const other = await keyedUser();
  assert.equal((await complete(other.key, body)).headers.get('x-edgechat-cache'), 'miss', 'another user never sees this cache');
  const warm = await complete(u.key, { ...body, temperature: 0.7 });
  assert.equal(warm.headers.get('x-edgechat-cache'), 'bypass');
});

test('usage is recorded per user, key and model, including cancelled streams', async () => {
  const u = await keyedUser();
  await complete(u.key, { model: 'sim-small', messages: [{ role: 'user', content: unique('count me') }] });
  const controller = new AbortController();
  const res = await fetch(`${process.env.EDGECHAT_URL}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${u.key}` },
    body: JSON.stringify({ model: 'slow', stream: true, messages: [{ role: 'user', content: unique('long one') }] }),
    signal: controller.signal,
  });
  let seen = 0;
  try {
    for await (const chunk of res.body) {
      seen += chunk.length;
      if (seen > 400) controller.abort();
    }
  } catch {}
  const rows = await eventually(async () => {
    const [r] = await execSql(process.env.EDGECHAT_PERSIST_DIR, `SELECT model, api_key_id, status, completion_tokens, source FROM usage_records WHERE user_id = '${u.user.user_id}' ORDER BY created_at`);
    return r.results.length === 2 ? r.results : null;
  }, { what: 'two usage records', timeoutMs: 10000 });
  assert.deepEqual(rows.map((r) => [r.model, r.status, r.source, r.api_key_id]), [
    ['sim-small', 'complete', 'gateway', u.api_key_id],
    ['slow', 'cancelled', 'gateway', u.api_key_id],
  ]);
  assert.equal(rows[0].completion_tokens, 24);
  assert.ok(rows[1].completion_tokens > 0 && rows[1].completion_tokens < 400, `${rows[1].completion_tokens} tokens counted`);
});
