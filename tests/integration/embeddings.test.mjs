// POST /v1/embeddings through the official openai Node SDK: the vectors are the simulator's own
// (float, base64, dimensions, batches, token input), the caller is billed the upstream's prompt
// tokens in a usage record, bad requests are 400s naming the field with nothing billed or sent
// upstream, and the gateway's auth, scopes, routing and retries apply as for chat completions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import OpenAI, { AuthenticationError, BadRequestError, NotFoundError, PermissionDeniedError } from 'openai';
import { api, BASE, SIM } from '../support/client.mjs';
import { keyOf, registerUser } from '../support/accounts.mjs';
import { eventually, simRequests } from '../support/sim.mjs';
import { execSql } from '../support/stack.mjs';

const TIMEOUT = { timeout: 30_000 };
const unique = (text) => `${text} [${randomBytes(6).toString('hex')}]`;
const sdk = (apiKey) => new OpenAI({ baseURL: `${BASE}/v1`, apiKey, timeout: 20_000, maxRetries: 0 });

/** A fresh user and an SDK client on a new key of theirs (scope `gateway` unless told). */
async function caller(scopes) {
  const u = await registerUser();
  const key = await keyOf(u, scopes);
  return { u, key, client: sdk(key) };
}

/** The simulator's own answer to the same request (the upstream model `sim-embed`). */
async function simEmbeddings(body) {
  const res = await fetch(`${SIM}/v1/embeddings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'sim-embed', ...body }),
  });
  assert.equal(res.status, 200);
  return res.json();
}

/** The user's usage records, oldest first, once there are `n`. */
const records = (u, n) => eventually(async () => {
  const [r] = await execSql(process.env.EDGECHAT_PERSIST_DIR,
    `SELECT model, provider, source, status, prompt_tokens, completion_tokens, is_usage_estimated, api_key_id
     FROM usage_records WHERE user_id = '${u.user.user_id}' ORDER BY created_at`);
  return r.results.length >= n ? r.results : null;
}, { what: `${n} usage records`, timeoutMs: 10_000 });

/** Checks an SDK error: its class, status, OpenAI shape and the field it names. */
const openAiError = (Class, status, param) => (err) => {
  assert.ok(err instanceof Class, `expected ${Class.name}, got ${err?.constructor?.name} ${err?.status}: ${err?.message}`);
  assert.equal(err.status, status);
  for (const key of ['message', 'type', 'param', 'code']) assert.ok(key in err.error, `error has ${key}: ${JSON.stringify(err.error)}`);
  if (param !== undefined) assert.equal(err.error.param, param, JSON.stringify(err.error));
  assert.ok(err.requestID, 'the error carries x-request-id');
  return true;
};

test('one string: the SDK default (base64 on the wire) decodes to the simulator\'s vector; the caller is billed its prompt tokens', TIMEOUT, async () => {
  const { u, client } = await caller();
  const input = unique('The tides follow the moon');
  const res = await client.embeddings.create({ model: 'sim-embed', input });
  const expected = await simEmbeddings({ input, encoding_format: 'float' });
  assert.equal(res.object, 'list');
  assert.equal(res.data.length, 1);
  assert.equal(res.data[0].object, 'embedding');
  assert.equal(res.data[0].index, 0);
  assert.deepEqual(Array.from(res.data[0].embedding), expected.data[0].embedding);
  assert.deepEqual(res.usage, expected.usage);
  // The gateway asked the upstream for base64 as the SDK did: the client's format is the upstream's.
  const [sent] = await simRequests(input);
  assert.equal(sent.path, '/v1/embeddings');
  assert.equal(sent.body.encoding_format, 'base64');

  const [record] = await records(u, 1);
  assert.deepEqual(
    { ...record, api_key_id: typeof record.api_key_id },
    { model: 'sim-embed', provider: 'openai', source: 'gateway', status: 'complete', prompt_tokens: expected.usage.prompt_tokens,
      completion_tokens: 0, is_usage_estimated: 0, api_key_id: 'string' },
  );
  // The user sees it in their usage, and it counts against the day's tokens.
  const usage = await api('GET', '/api/v1/usage', { token: u.access_token });
  assert.equal(usage.status, 200, usage.text);
  assert.deepEqual(usage.body.usage.map(({ model, requests, prompt_tokens, completion_tokens }) => ({ model, requests, prompt_tokens, completion_tokens })),
    [{ model: 'sim-embed', requests: 1, prompt_tokens: expected.usage.prompt_tokens, completion_tokens: 0 }]);
  assert.equal(usage.body.today.tokens_used, expected.usage.prompt_tokens);
});

test('a batch keeps its order; float and base64 pass back as the upstream sends them', TIMEOUT, async () => {
  const { client } = await caller();
  const input = [unique('rivers'), unique('mountains'), unique('lakes')];
  const float = await client.embeddings.create({ model: 'sim-embed', input, encoding_format: 'float' });
  const expectedFloat = await simEmbeddings({ input, encoding_format: 'float' });
  assert.deepEqual(float.data, expectedFloat.data);
  assert.deepEqual(float.data.map((d) => d.index), [0, 1, 2]);
  assert.notDeepEqual(float.data[0].embedding, float.data[1].embedding);

  const b64 = await client.embeddings.create({ model: 'sim-embed', input, encoding_format: 'base64' });
  const expectedB64 = await simEmbeddings({ input, encoding_format: 'base64' });
  assert.equal(typeof b64.data[0].embedding, 'string');
  assert.deepEqual(b64.data, expectedB64.data);
  const decoded = Buffer.from(b64.data[2].embedding, 'base64');
  const values = Array.from({ length: decoded.length / 4 }, (_, i) => decoded.readFloatLE(i * 4));
  assert.deepEqual(values, float.data[2].embedding);
  assert.deepEqual(b64.usage, expectedB64.usage);
});

test('dimensions and token input reach the upstream; the answer is the JSON the upstream sent', TIMEOUT, async () => {
  const { key, client } = await caller();
  const input = unique('short vectors');
  const short = await client.embeddings.create({ model: 'sim-embed', input, dimensions: 16 });
  assert.equal(short.data[0].embedding.length, 16);
  assert.deepEqual(Array.from(short.data[0].embedding), (await simEmbeddings({ input, dimensions: 16, encoding_format: 'float' })).data[0].embedding);

  const tokens = await client.embeddings.create({ model: 'sim-embed', input: [[101, 202, 303], [404]], encoding_format: 'float' });
  assert.deepEqual(tokens, await simEmbeddings({ input: [[101, 202, 303], [404]], encoding_format: 'float' }));

  // Without an SDK: the JSON is exactly what the upstream answered.
  const raw = await api('POST', '/v1/embeddings', { token: key, json: { model: 'sim-embed', input, encoding_format: 'float' } });
  assert.equal(raw.status, 200, raw.text);
  assert.match(raw.headers.get('content-type'), /^application\/json/);
  assert.deepEqual(raw.body, await simEmbeddings({ input, encoding_format: 'float' }));
});

test('an access token works as well as a key, and a retryable upstream failure is retried', TIMEOUT, async () => {
  const u = await registerUser();
  const client = sdk(u.access_token);
  const input = unique('retried once');
  const res = await client.embeddings.create({ model: 'embed-flaky', input, encoding_format: 'float' });
  assert.deepEqual(res.data, (await simEmbeddings({ input, encoding_format: 'float' })).data);
  const sent = await simRequests(input);
  assert.deepEqual(sent.map((r) => [r.model, r.status]).slice(0, 2), [
    ['sim-embed+status=429+fail_times=1+retry_after=1', 429],
    ['sim-embed+status=429+fail_times=1+retry_after=1', 200],
  ]);
  const [record] = await records(u, 1);
  assert.equal(record.model, 'embed-flaky');
  assert.equal(record.api_key_id, null);
});

test('a failing model falls back to the next OpenAI-compatible one; a silent one times out, billed nothing', TIMEOUT, async () => {
  const { u, client } = await caller();
  const input = unique('fallen back');
  const res = await client.embeddings.create({ model: 'embed-broken', input, encoding_format: 'float' });
  assert.deepEqual(res.data, (await simEmbeddings({ input, encoding_format: 'float' })).data);
  const sent = await simRequests(input);
  assert.ok(sent.every((r) => r.path === '/v1/embeddings'), 'the Anthropic fallback was skipped');
  assert.deepEqual([...new Set(sent.map((r) => `${r.model} ${r.status}`))], ['sim-embed+status=500 500', 'sim-embed 200']);
  const [fallback] = await records(u, 1);
  assert.deepEqual([fallback.model, fallback.status, fallback.prompt_tokens], ['sim-embed', 'complete', res.usage.prompt_tokens]);

  const started = Date.now();
  await assert.rejects(client.embeddings.create({ model: 'embed-hang', input: unique('silence') }), (err) => {
    assert.equal(err.status, 504, err.message);
    assert.equal(err.error.code, 'upstream_timeout');
    return true;
  });
  assert.ok(Date.now() - started < 10_000);
  const [, timedOut] = await records(u, 2);
  assert.deepEqual([timedOut.model, timedOut.status, timedOut.prompt_tokens], ['embed-hang', 'error', 0]);
});

test('bad input is a 400 naming the field; nothing is billed or sent upstream', TIMEOUT, async () => {
  const { u, client } = await caller();
  const marker = unique('never sent');
  const cases = [
    [{ model: 'sim-embed', input: '' }, 'input'],
    [{ model: 'sim-embed', input: [] }, 'input'],
    [{ model: 'sim-embed', input: [marker, ''] }, 'input'],
    [{ model: 'sim-embed', input: [[1, 2], []] }, 'input'],
    [{ model: 'sim-embed', input: [marker, 7] }, 'input'],
    [{ model: 'sim-embed', input: { text: marker } }, 'input'],
    [{ model: 'sim-embed' }, 'input'],
    [{ input: marker }, 'model'],
    [{ model: 'sim-embed', input: marker, encoding_format: 'int8' }, 'encoding_format'],
    [{ model: 'sim-embed', input: marker, dimensions: 0 }, 'dimensions'],
    [{ model: 'sim-embed', input: marker, dimensions: 1.5 }, 'dimensions'],
    [{ model: 'sim-embed', input: marker, dimensions: '8' }, 'dimensions'],
    // Only OpenAI-compatible upstreams serve embeddings.
    [{ model: 'claude', input: marker }, 'model'],
  ];
  for (const [body, param] of cases) {
    await assert.rejects(client.embeddings.create({ encoding_format: 'float', ...body }), openAiError(BadRequestError, 400, param), JSON.stringify(body));
  }
  await assert.rejects(client.embeddings.create({ model: 'no-such-model', input: marker }), (err) => {
    openAiError(NotFoundError, 404, 'model')(err);
    assert.equal(err.error.code, 'model_not_found');
    return true;
  });
  const claude = await api('POST', '/v1/embeddings', { token: u.access_token, json: { model: 'claude', input: marker } });
  assert.match(claude.body.error.message, /anthropic/);
  const notJson = await api('POST', '/v1/embeddings', { token: u.access_token, body: '{"model":', headers: { 'content-type': 'application/json' } });
  assert.equal(notJson.status, 400);
  assert.equal(notJson.body.error.type, 'invalid_request_error');
  const noType = await api('POST', '/v1/embeddings', { token: u.access_token, body: JSON.stringify({ model: 'sim-embed', input: marker }) });
  assert.equal(noType.status, 415);

  assert.deepEqual(await simRequests(marker), []);
  // A good call afterwards is the user's one and only usage record.
  await client.embeddings.create({ model: 'sim-embed', input: marker });
  await new Promise((r) => setTimeout(r, 500));
  const all = await records(u, 1);
  assert.equal(all.length, 1, JSON.stringify(all));
});

test('a key without scope gateway is refused, no credential is a 401, and the model is listed', TIMEOUT, async () => {
  const { client: chatOnly } = await caller(['chat', 'read']);
  await assert.rejects(chatOnly.embeddings.create({ model: 'sim-embed', input: 'hello' }), (err) => {
    openAiError(PermissionDeniedError, 403)(err);
    assert.equal(err.error.code, 'insufficient_scope');
    return true;
  });
  const anonymous = await api('POST', '/v1/embeddings', { json: { model: 'sim-embed', input: 'hello' } });
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.body.error.code, 'invalid_api_key');
  await assert.rejects(sdk(`ec_sk_${'A'.repeat(43)}`).embeddings.create({ model: 'sim-embed', input: 'hello' }), openAiError(AuthenticationError, 401));

  const { client } = await caller();
  const models = [];
  for await (const m of client.models.list()) models.push(m);
  assert.equal(models.find((m) => m.id === 'sim-embed')?.owned_by, 'openai');
  assert.equal((await client.models.retrieve('sim-embed')).id, 'sim-embed');
});

test('an embedding model answers no chat: chat completions, responses and messages are 400 naming model, a chat is 422; nothing reaches the model', TIMEOUT, async () => {
  const { u, key, client } = await caller(['gateway', 'chat']);
  const content = unique('Chat with an embedding model');
  const listed = (await client.models.retrieve('sim-embed'));
  assert.equal(listed.kind, 'embedding');
  assert.equal((await client.models.retrieve('sim-small')).kind, 'chat');
  await assert.rejects(
    client.chat.completions.create({ model: 'sim-embed', messages: [{ role: 'user', content }] }),
    openAiError(BadRequestError, 400, 'model'),
  );
  await assert.rejects(client.responses.create({ model: 'sim-embed', input: content }), openAiError(BadRequestError, 400, 'model'));
  const message = await api('POST', '/v1/messages', {
    headers: { 'x-api-key': key },
    json: { model: 'sim-embed', max_tokens: 16, messages: [{ role: 'user', content }] },
  });
  assert.equal(message.status, 400, message.text);
  assert.equal(message.body.error.type, 'invalid_request_error');
  const conversation = await api('POST', '/api/v1/conversations', { token: u.access_token, json: { model: 'sim-embed' } });
  assert.equal(conversation.status, 422, conversation.text);
  assert.match(conversation.body.error.message, /embedding model/);
  const chat = await api('POST', '/api/v1/conversations', { token: u.access_token, json: {} });
  assert.equal(chat.status, 201, chat.text);
  const turn = await api('POST', `/api/v1/conversations/${chat.body.conversation_id}/messages`, {
    token: u.access_token,
    json: { content, model: 'sim-embed' },
  });
  assert.equal(turn.status, 422, turn.text);
  assert.deepEqual(await simRequests(content), [], 'nothing reached the model');
});
