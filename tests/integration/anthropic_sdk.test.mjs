// The official Anthropic Node SDK (`@anthropic-ai/sdk`) against POST /v1/messages and
// /v1/messages/count_tokens, used unmodified apart from base URL and API key (plus a timeout and
// no automatic retries, so a test sees the gateway's first answer). The Anthropic-routed model
// (`claude`) gets the client's body as sent and answers untouched; the OpenAI-routed one
// (`sim-small`) is translated both ways. Expected answers come from the simulator.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import Anthropic, {
  APIError,
  AuthenticationError,
  BadRequestError,
  NotFoundError,
  PermissionDeniedError,
} from '@anthropic-ai/sdk';
import { BASE } from '../support/client.mjs';
import { keyOf, registerUser } from '../support/accounts.mjs';
import { eventually, simAnswer, simRequests } from '../support/sim.mjs';
import { execSql } from '../support/stack.mjs';

// The upstream strings the test models map to (TEST_VARS.MODEL_ROUTES in support/stack.mjs).
const SIM_SMALL = 'sim-small+tokens=24+interval=15';
const SIM_CLAUDE = 'sim-claude+tokens=16+interval=10';
const MODELS = [
  { model: 'claude', upstream: SIM_CLAUDE, tokens: 16, native: true },
  { model: 'sim-small', upstream: SIM_SMALL, tokens: 24, native: false },
];
const TIMEOUT = { timeout: 30_000 };

const unique = (text) => `${text} [${randomBytes(6).toString('hex')}]`;
const user = (content) => [{ role: 'user', content }];

const WEATHER_TOOL = {
  name: 'get_weather',
  description: 'The current weather in a city.',
  input_schema: {
    type: 'object',
    properties: { city: { type: 'string', description: 'The city name.' } },
    required: ['city'],
  },
};

const sdk = (options) => new Anthropic({ baseURL: BASE, timeout: 20_000, maxRetries: 0, ...options });

/** A fresh user and an SDK client on their new API key (scope `gateway` unless told). */
async function caller(scopes = ['gateway']) {
  const u = await registerUser();
  const key = await keyOf(u, scopes);
  return { u, key, client: sdk({ apiKey: key }) };
}

/** The user's usage records, oldest first, once there are `n`. */
const records = (u, n) =>
  eventually(
    async () => {
      const [r] = await execSql(
        process.env.EDGECHAT_PERSIST_DIR,
        `SELECT model, provider, status, prompt_tokens, completion_tokens, api_key_id FROM usage_records WHERE user_id = '${u.user.user_id}' ORDER BY created_at`,
      );
      return r.results.length >= n ? r.results : null;
    },
    { what: `${n} usage records`, timeoutMs: 10_000 },
  );

/** Checks an SDK error: its class, status and Anthropic's error shape. */
const anthropicError = (Class, status, type) => (err) => {
  assert.ok(err instanceof Class, `expected ${Class.name}, got ${err?.constructor?.name} ${err?.status}: ${err?.message}`);
  assert.equal(err.status, status);
  assert.equal(err.error?.type, 'error', `error body: ${JSON.stringify(err.error)}`);
  assert.equal(err.error.error.type, type);
  assert.equal(typeof err.error.error.message, 'string');
  assert.ok(err.error.error.message.length > 0);
  assert.ok(err.requestID, 'the error response carries request-id');
  return true;
};

let main;
before(async () => {
  main = await caller();
});

for (const { model, upstream, tokens, native } of MODELS) {
  const how = native ? 'passes through' : 'is translated';
  const path = native ? '/v1/messages' : '/v1/chat/completions';

  test(`messages.create on ${model} ${how}: the simulator's answer as a message`, TIMEOUT, async () => {
    const content = unique('Describe the tides');
    const params = { model, max_tokens: 200, messages: user(content), temperature: 0.7, top_k: 5 };
    const msg = await main.client.messages.create(params);
    const sent = await simRequests(content); // before simAnswer adds one
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.match(msg.id, /^msg_/);
    assert.deepEqual(msg.content, [{ type: 'text', text: await simAnswer(upstream, user(content)) }]);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(msg.usage.output_tokens, tokens);
    assert.ok(msg.usage.input_tokens > 0);
    assert.deepEqual(sent.map((r) => r.path), [path]);
    if (native) {
      // The client's own body, with the route's upstream model.
      assert.deepEqual(sent[0].body, { ...params, model: upstream });
    } else {
      assert.equal(msg.model, model);
      assert.equal(sent[0].body.max_tokens, 200);
      assert.equal(sent[0].body.top_k, undefined, 'top_k is not sent to a Chat Completions upstream');
    }
  });

  test(`messages.stream on ${model} ${how}: text events and finalMessage`, TIMEOUT, async () => {
    const content = unique('Explain rainbows');
    const stream = main.client.messages.stream({ model, max_tokens: 200, messages: user(content) });
    const pieces = [];
    stream.on('text', (delta) => pieces.push(delta));
    const final = await stream.finalMessage();
    const sent = await simRequests(content);
    const expected = await simAnswer(upstream, user(content));
    assert.equal(pieces.join(''), expected);
    assert.ok(pieces.length >= 2, `the answer arrives in several deltas, not ${pieces.length}`);
    assert.deepEqual(final.content, [{ type: 'text', text: expected }]);
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.output_tokens, tokens);
    assert.ok(final.usage.input_tokens > 0);
    assert.match(final.id, /^msg_/);
    assert.deepEqual(sent.map((r) => [r.path, r.body.stream]), [[path, true]]);
  });

  for (const streamed of [false, true]) {
    const mode = streamed ? 'streamed' : 'whole';
    test(`tools on ${model} (${mode}): a tool_use answer, then a tool_result turn giving text`, TIMEOUT, async () => {
      const question = `${unique('What is the weather in Lisbon?')}\n/tool get_weather {"city":"Lisbon"}`;
      const ask = (messages) => ({ model, max_tokens: 300, tools: [WEATHER_TOOL], messages });
      const send = (params) =>
        streamed ? main.client.messages.stream(params).finalMessage() : main.client.messages.create(params);
      const first = await send(ask(user(question)));
      assert.equal(first.stop_reason, 'tool_use', JSON.stringify(first));
      const uses = first.content.filter((b) => b.type === 'tool_use');
      assert.equal(uses.length, 1, JSON.stringify(first.content));
      const [use] = uses;
      assert.equal(use.name, 'get_weather');
      assert.ok(use.id, 'the tool_use block has an id');
      assert.deepEqual(use.input, { city: 'Lisbon' });

      const result = unique('Sunny, 21 C');
      const turns = [
        ...user(question),
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: result }] },
      ];
      const second = await send(ask(turns));
      assert.equal(second.stop_reason, 'end_turn');
      assert.deepEqual(second.content, [{ type: 'text', text: `Done: ${result}` }]);
      const sent = await simRequests(result);
      assert.equal(sent.length, 1);
      if (native) {
        assert.deepEqual(sent[0].body.messages[2].content[0].tool_use_id, use.id);
      } else {
        assert.deepEqual(sent[0].body.messages.at(-1), { role: 'tool', tool_call_id: use.id, content: result });
      }
    });
  }
}

test('the calls are billed to the caller and its key, from the upstream usage', TIMEOUT, async () => {
  const { u, client } = await caller();
  const a = await client.messages.create({ model: 'claude', max_tokens: 100, messages: user(unique('Bill me')) });
  const b = await client.messages.stream({ model: 'sim-small', max_tokens: 100, messages: user(unique('Bill me too')) }).finalMessage();
  const rows = await records(u, 2);
  assert.equal(rows.length, 2);
  assert.deepEqual(
    rows.map((r) => [r.model, r.provider, r.status, r.prompt_tokens, r.completion_tokens]),
    [
      ['claude', 'anthropic', 'complete', a.usage.input_tokens, a.usage.output_tokens],
      ['sim-small', 'openai', 'complete', b.usage.input_tokens, b.usage.output_tokens],
    ],
  );
  assert.ok(rows.every((r) => r.api_key_id), 'the key is recorded');
});

test('countTokens estimates the prompt; more text counts more', TIMEOUT, async () => {
  const short = await main.client.messages.countTokens({ model: 'claude', messages: user('Hi') });
  const long = await main.client.messages.countTokens({
    model: 'sim-small',
    system: 'You are terse.',
    tools: [WEATHER_TOOL],
    messages: user('Hi '.repeat(200)),
  });
  assert.deepEqual(Object.keys(short), ['input_tokens']);
  assert.ok(Number.isInteger(short.input_tokens) && short.input_tokens > 0, JSON.stringify(short));
  assert.ok(long.input_tokens > short.input_tokens + 100, `${long.input_tokens} vs ${short.input_tokens}`);
  await assert.rejects(
    main.client.messages.countTokens({ model: 'no-such-model', messages: user('Hi') }),
    anthropicError(NotFoundError, 404, 'not_found_error'),
  );
});

test('a Bearer API key works as well as x-api-key', TIMEOUT, async () => {
  const bearer = sdk({ apiKey: null, authToken: main.key });
  const msg = await bearer.messages.create({ model: 'sim-small', max_tokens: 50, messages: user(unique('Bearer')) });
  assert.equal(msg.type, 'message');
});

test('a missing or wrong key is an AuthenticationError in Anthropic shape', TIMEOUT, async () => {
  const content = unique('Who am I?');
  for (const apiKey of [`ec_sk_${'A'.repeat(43)}`, 'not-a-key']) {
    await assert.rejects(
      sdk({ apiKey }).messages.create({ model: 'claude', max_tokens: 50, messages: user(content) }),
      anthropicError(AuthenticationError, 401, 'authentication_error'),
    );
  }
  const res = await fetch(`${BASE}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude', max_tokens: 50, messages: user(content) }),
  });
  assert.equal(res.status, 401);
  const body = await res.json();
  assert.equal(body.type, 'error');
  assert.equal(body.error.type, 'authentication_error');
  assert.deepEqual(await simRequests(content), []);
});

test('a key without the gateway scope is a PermissionDeniedError', TIMEOUT, async () => {
  const { client } = await caller(['chat']);
  const content = unique('Not allowed');
  await assert.rejects(
    client.messages.create({ model: 'claude', max_tokens: 50, messages: user(content) }),
    anthropicError(PermissionDeniedError, 403, 'permission_error'),
  );
  assert.deepEqual(await simRequests(content), []);
});

test('an unknown model is a NotFoundError; invalid requests are BadRequestErrors; none is billed', TIMEOUT, async () => {
  const { u, client } = await caller();
  const content = unique('Refused');
  await assert.rejects(
    client.messages.create({ model: 'no-such-model', max_tokens: 50, messages: user(content) }),
    anthropicError(NotFoundError, 404, 'not_found_error'),
  );
  for (const params of [
    { model: 'claude', messages: user(content) },
    { model: 'claude', max_tokens: 50, messages: [{ role: 'user', content: 5 }] },
    { model: 'claude', max_tokens: 50, messages: [{ role: 'user', content: [{ type: 'video', text: content }] }] },
    { model: 'sim-small', max_tokens: 50, messages: user(content), stop_sequences: ['a', 'b', 'c', 'd', 'e'] },
  ]) {
    await assert.rejects(client.messages.create(params), (err) => {
      anthropicError(BadRequestError, 400, 'invalid_request_error')(err);
      return true;
    });
  }
  assert.deepEqual(await simRequests(content), []);
  // A later call's record is the user's only one.
  await client.messages.create({ model: 'sim-small', max_tokens: 50, messages: user(unique('Billed')) });
  const rows = await records(u, 1);
  assert.deepEqual(rows.map((r) => [r.model, r.status]), [['sim-small', 'complete']]);
});

test('temperature 0: the second identical request is answered from the cache, whole and streamed', TIMEOUT, async () => {
  const content = unique('Name three rivers');
  const params = { model: 'claude', max_tokens: 100, messages: user(content), temperature: 0 };
  const { data: first, response: r1 } = await main.client.messages.create(params).withResponse();
  const { data: second, response: r2 } = await main.client.messages.create(params).withResponse();
  assert.deepEqual([r1.headers.get('x-edgechat-cache'), r2.headers.get('x-edgechat-cache')], ['miss', 'hit']);
  assert.deepEqual(second.content, first.content);
  assert.equal(second.stop_reason, 'end_turn');
  assert.match(second.id, /^msg_/);
  const pieces = [];
  const replay = main.client.messages.stream(params).on('text', (t) => pieces.push(t));
  const third = await replay.finalMessage();
  assert.equal(pieces.join(''), first.content[0].text);
  assert.deepEqual(third.content, first.content);
  assert.equal((await simRequests(content)).length, 1, 'one request reached the simulator');
});

test('a model that fails over answers from its fallback, translated', TIMEOUT, async () => {
  const content = unique('Fall back');
  const msg = await main.client.messages.create({ model: 'broken', max_tokens: 100, messages: user(content) });
  assert.equal(msg.model, 'sim-large');
  assert.deepEqual(msg.content, [{ type: 'text', text: await simAnswer('sim-large+tokens=8+interval=5', user(content)) }]);
});

test('a stream the model breaks off ends with an error event the SDK raises', TIMEOUT, async () => {
  const stream = main.client.messages.stream({ model: 'cut', max_tokens: 100, messages: user(unique('Cut me off')) });
  const pieces = [];
  stream.on('text', (t) => pieces.push(t));
  await assert.rejects(stream.finalMessage(), (err) => {
    assert.ok(err instanceof APIError, `${err?.constructor?.name}: ${err?.message}`);
    assert.equal(err.type, 'api_error');
    return true;
  });
  assert.ok(pieces.length > 0, 'text came before the break');
});

test('x-api-key authenticates on every /v1 route and nowhere else', TIMEOUT, async () => {
  const models = await fetch(`${BASE}/v1/models`, { headers: { 'x-api-key': main.key } });
  assert.equal(models.status, 200);
  assert.ok((await models.json()).data.some((m) => m.id === 'claude'));
  const me = await fetch(`${BASE}/api/v1/users/me`, { headers: { 'x-api-key': main.key } });
  assert.equal(me.status, 401);
});
