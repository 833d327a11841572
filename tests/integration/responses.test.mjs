// POST /v1/responses (OpenAI's Responses API) through the official `openai` npm SDK, unmodified
// apart from base URL and API key: text and tool calls, whole and streamed, on the OpenAI-routed
// model and the Anthropic-routed one, JSON output, stored output items referred to by
// item_reference, refusals of what needs more stored state, usage records and the cache.
// Expected answers come from the simulator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import OpenAI, { AuthenticationError, BadRequestError } from 'openai';
import { api, BASE } from '../support/client.mjs';
import { registerUser } from '../support/accounts.mjs';
import { eventually, simAnswer, simRequests } from '../support/sim.mjs';
import { execSql } from '../support/stack.mjs';

// The upstream strings the test models map to (TEST_VARS.MODEL_ROUTES in support/stack.mjs).
const SIM_SMALL = 'sim-small+tokens=24+interval=15';
const SIM_CLAUDE = 'sim-claude+tokens=16+interval=10';
const TIMEOUT = { timeout: 30_000 };
const MODELS = [
  ['sim-small', SIM_SMALL, 24],
  ['claude', SIM_CLAUDE, 16],
];

const unique = (text) => `${text} [${randomBytes(6).toString('hex')}]`;
const user = (content) => [{ role: 'user', content }];

const WEATHER = {
  type: 'function',
  name: 'get_weather',
  description: 'The current weather in a city.',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string', description: 'The city name.' } },
    required: ['city'],
    additionalProperties: false,
  },
  strict: true,
};

const sdk = (apiKey) => new OpenAI({ baseURL: `${BASE}/v1`, apiKey, timeout: 20_000, maxRetries: 0 });

/** A fresh user and their new API key. */
async function keyedUser() {
  const u = await registerUser();
  const res = await api('POST', '/api/v1/keys', { token: u.access_token, json: { name: 'responses' } });
  assert.equal(res.status, 201, res.text);
  return { ...u, key: res.body.key, client: sdk(res.body.key) };
}

/** The user's gateway usage records, oldest first, once there are `n`. */
const records = (u, n) =>
  eventually(
    async () => {
      const [r] = await execSql(
        process.env.EDGECHAT_PERSIST_DIR,
        `SELECT model, status, prompt_tokens, completion_tokens FROM usage_records WHERE user_id = '${u.user.user_id}' ORDER BY created_at`,
      );
      return r.results.length >= n ? r.results : null;
    },
    { what: `${n} usage records`, timeoutMs: 10_000 },
  );

/** Every event of a streamed response, checking their numbering. */
async function collect(stream) {
  const events = [];
  for await (const event of stream) events.push(event);
  events.forEach((e, i) => assert.equal(e.sequence_number, i, `event ${i} (${e.type}) is numbered in order`));
  return events;
}

const deltas = (events, type = 'response.output_text.delta') => events.filter((e) => e.type === type).map((e) => e.delta).join('');


for (const [model, upstream, tokens] of MODELS) {
  test(`${model}: a response is the simulator's answer, with usage and a usage record`, TIMEOUT, async () => {
    const u = await keyedUser();
    const content = unique('Describe the tides');
    const res = await u.client.responses.create({ model, input: content });
    assert.equal(res.object, 'response');
    assert.match(res.id, /^resp_/);
    assert.equal(res.status, 'completed');
    assert.equal(res.model, model);
    assert.equal(res.error, null);
    assert.equal(res.incomplete_details, null);
    assert.equal(res.store, true, 'stored by default, as OpenAI does');
    assert.equal(res.output_text, await simAnswer(upstream, user(content)));
    assert.equal(res.output.length, 1);
    const [message] = res.output;
    assert.equal(message.type, 'message');
    assert.equal(message.role, 'assistant');
    assert.equal(message.status, 'completed');
    assert.match(message.id, /^msg_/);
    assert.deepEqual(message.content.map((p) => [p.type, p.annotations]), [['output_text', []]]);
    assert.equal(res.usage.output_tokens, tokens);
    assert.ok(res.usage.input_tokens > 0);
    assert.equal(res.usage.total_tokens, res.usage.input_tokens + res.usage.output_tokens);
    assert.equal(res.usage.input_tokens_details.cached_tokens, 0);
    assert.equal(res.usage.output_tokens_details.reasoning_tokens, 0);
    const [rec] = await records(u, 1);
    assert.deepEqual(
      { model: rec.model, status: rec.status, prompt_tokens: rec.prompt_tokens, completion_tokens: rec.completion_tokens },
      { model, status: 'complete', prompt_tokens: res.usage.input_tokens, completion_tokens: tokens },
    );
  });

  test(`${model}: a streamed response is the typed event sequence of the same answer`, TIMEOUT, async () => {
    const { client } = await keyedUser();
    const content = unique('Explain rainbows');
    const instructions = 'Answer like a poet.';
    const events = await collect(await client.responses.create({ model, input: content, instructions, stream: true }));
    const expected = await simAnswer(upstream, [{ role: 'system', content: instructions }, ...user(content)]);
    const types = events.map((e) => e.type);
    const [first, second, added, partAdded] = types;
    assert.deepEqual([first, second, added, partAdded], [
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.content_part.added',
    ]);
    assert.deepEqual(types.slice(-4), [
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const pieces = events.filter((e) => e.type === 'response.output_text.delta');
    assert.ok(pieces.length >= 2, `the answer arrives in several deltas, not ${pieces.length}`);
    assert.equal(deltas(events), expected);
    const itemId = events[2].item.id;
    assert.ok(pieces.every((e) => e.item_id === itemId && e.output_index === 0 && e.content_index === 0));
    assert.equal(events.find((e) => e.type === 'response.output_text.done').text, expected);
    const done = events.at(-1).response;
    assert.equal(done.status, 'completed');
    assert.equal(done.instructions, instructions);
    assert.equal(done.output[0].content[0].text, expected);
    assert.equal(done.usage.output_tokens, tokens);
    assert.equal(events[0].response.id, done.id);
  });

  test(`${model}: a function call, then its output, gives the model's text`, TIMEOUT, async () => {
    const { client } = await keyedUser();
    const tag = unique('Weather, please.');
    const content = `${tag}\n/tool get_weather {"city":"Oslo"}`;
    const first = await client.responses.create({ model, input: content, tools: [WEATHER] });
    assert.equal(first.status, 'completed');
    const calls = first.output.filter((i) => i.type === 'function_call');
    assert.equal(calls.length, 1, JSON.stringify(first.output));
    const [call] = calls;
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Oslo' });
    assert.ok(call.call_id, 'the call has a call_id');
    assert.match(call.id, /^fc_/);
    assert.equal(first.output_text, '');

    const output = JSON.stringify({ city: 'Oslo', sky: 'clear' });
    const second = await client.responses.create({
      model,
      tools: [WEATHER],
      input: [
        { role: 'user', content },
        ...first.output,
        { type: 'function_call_output', call_id: call.call_id, output },
      ],
    });
    assert.equal(second.status, 'completed');
    assert.equal(second.output_text, `Done: ${output}`);
    const recs = await simRequests(tag);
    assert.equal(recs.length, 2);
    assert.ok(JSON.stringify(recs[1].body).includes('clear'), 'the tool output reached the model');
  });

  test(`${model}: a streamed function call arrives as a function_call item with argument deltas`, TIMEOUT, async () => {
    const { client } = await keyedUser();
    const content = `${unique('Weather?')}\n/tool get_weather {"city":"Lisbon, Portugal"}`;
    const events = await collect(await client.responses.create({ model, input: content, tools: [WEATHER], stream: true }));
    const added = events.filter((e) => e.type === 'response.output_item.added').map((e) => e.item);
    assert.deepEqual(added.map((i) => [i.type, i.name, i.arguments]), [['function_call', 'get_weather', '']]);
    const args = deltas(events, 'response.function_call_arguments.delta');
    assert.deepEqual(JSON.parse(args), { city: 'Lisbon, Portugal' });
    const argsDone = events.find((e) => e.type === 'response.function_call_arguments.done');
    assert.equal(argsDone.arguments, args);
    assert.equal(argsDone.item_id, added[0].id);
    const done = events.at(-1);
    assert.equal(done.type, 'response.completed');
    assert.deepEqual(
      done.response.output.map((i) => [i.type, i.call_id, i.name, i.arguments, i.status]),
      [['function_call', added[0].call_id, 'get_weather', args, 'completed']],
    );
  });

  test(`${model}: max_output_tokens cuts the answer: an incomplete response`, TIMEOUT, async () => {
    const { client } = await keyedUser();
    const content = unique('Tell me everything');
    const res = await client.responses.create({ model, input: content, max_output_tokens: 5 });
    assert.equal(res.status, 'incomplete');
    assert.deepEqual(res.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(res.usage.output_tokens, 5);
    assert.equal(res.max_output_tokens, 5);
    const events = await collect(
      await client.responses.create({ model, input: content, max_output_tokens: 5, stream: true }),
    );
    assert.equal(events.at(-1).type, 'response.incomplete');
    assert.deepEqual(events.at(-1).response.incomplete_details, { reason: 'max_output_tokens' });
    assert.equal(deltas(events), res.output_text);
  });
}

test('the SDK stream helper assembles the final response', TIMEOUT, async () => {
  const { client } = await keyedUser();
  const content = unique('Name a river');
  const stream = client.responses.stream({ model: 'sim-small', input: content });
  let text = '';
  stream.on('response.output_text.delta', (e) => (text += e.delta));
  const final = await stream.finalResponse();
  const expected = await simAnswer(SIM_SMALL, user(content));
  assert.equal(text, expected);
  assert.equal(final.output_text, expected);
});

for (const [model] of MODELS) {
  test(`${model}: text.format json_schema: the answer parses as JSON of the schema, whole and streamed`, TIMEOUT, async () => {
    const { client } = await keyedUser();
    const schema = {
      type: 'object',
      properties: { name: { type: 'string' }, population: { type: 'integer' } },
      required: ['name', 'population'],
      additionalProperties: false,
    };
    const content = unique('A city as JSON');
    const text = { format: { type: 'json_schema', name: 'city', schema, strict: true } };
    const res = await client.responses.create({ model, input: content, text });
    assert.equal(res.status, 'completed');
    const value = JSON.parse(res.output_text);
    assert.equal(typeof value.name, 'string');
    assert.ok(Number.isInteger(value.population));
    assert.equal(res.text.format.type, 'json_schema');
    const events = await collect(await client.responses.create({ model, input: unique('Another city'), text, stream: true }));
    assert.deepEqual(Object.keys(JSON.parse(deltas(events))).sort(), ['name', 'population']);
    assert.equal(events.at(-1).type, 'response.completed');
  });
}

test('a deterministic response is cached: the same request again is a hit with the same text', TIMEOUT, async () => {
  const { client } = await keyedUser();
  const content = unique('Name three lakes');
  const out = [];
  for (let i = 0; i < 2; i++) {
    const { data, response } = await client.responses
      .create({ model: 'sim-small', input: content, temperature: 0 })
      .withResponse();
    out.push([response.headers.get('x-edgechat-cache'), data.output_text, data.id]);
  }
  assert.deepEqual(out.map((o) => o[0]), ['miss', 'hit']);
  assert.equal(out[1][1], out[0][1]);
  assert.notEqual(out[1][2], out[0][2], 'each response has its own id');
  assert.equal((await simRequests(content)).length, 1);
  // A streaming client is replayed the cached answer as events.
  const events = await collect(
    await client.responses.create({ model: 'sim-small', input: content, temperature: 0, stream: true }),
  );
  assert.equal(deltas(events), out[0][1]);
  assert.equal(events.at(-1).type, 'response.completed');
});

test('a model stream that breaks off ends with response.failed; a whole answer that does is a 502', TIMEOUT, async () => {
  const { client } = await keyedUser();
  const events = await collect(await client.responses.create({ model: 'cut', input: unique('Go on'), stream: true }));
  const last = events.at(-1);
  assert.equal(last.type, 'response.failed');
  assert.equal(last.response.status, 'failed');
  assert.equal(last.response.error.code, 'upstream_error');
  assert.ok(deltas(events).length > 0, 'the text before the break arrived');
  assert.ok(!events.some((e) => e.type === 'response.completed'));
  await assert.rejects(client.responses.create({ model: 'cut', input: unique('Go on') }), (err) => {
    assert.equal(err.status, 502);
    assert.equal(err.error.type, 'server_error');
    return true;
  });
});

/** Checks an SDK error: class, status, OpenAI error shape, and the param it names. */
const refused = (param) => (err) => {
  assert.ok(err instanceof BadRequestError, `expected BadRequestError, got ${err?.constructor?.name} ${err?.status}: ${err?.message}`);
  assert.equal(err.status, 400);
  assert.equal(err.error.type, 'invalid_request_error');
  assert.equal(err.error.param, param, JSON.stringify(err.error));
  assert.ok(err.error.message.length > 0);
  return true;
};

test('what needs stored state, built-in tools and bad shapes are 400s naming the param; nothing is billed', TIMEOUT, async () => {
  const u = await keyedUser();
  const content = unique('Refuse me');
  const cases = [
    [{ input: content, store: 'yes' }, 'store'],
    [{ input: content, previous_response_id: 'resp_0123' }, 'previous_response_id'],
    [{ input: content, conversation: 'conv_1' }, 'conversation'],
    [{ input: content, background: true }, 'background'],
    [{ input: content, tools: [{ type: 'web_search' }] }, 'tools[0].type'],
    [{ input: content, tools: [{ type: 'function', description: 'no name' }] }, 'tools[0].name'],
    [{ input: [{ type: 'item_reference', id: 'msg_1' }] }, 'input[0].id'],
    [{ input: [{ role: 'user', content: content }, { type: 'file_search_call', id: 'fs_1' }] }, 'input[1].type'],
    [{}, 'input'],
    [{ input: [] }, 'input'],
    [{ input: content, temperature: 7 }, 'temperature'],
    [{ input: content, text: { format: { type: 'json_schema', schema: {} } } }, 'text.format.name'],
  ];
  for (const [params, param] of cases) {
    await assert.rejects(u.client.responses.create({ model: 'sim-small', ...params }), refused(param));
  }
  // The gateway's own chat rules name the Responses member the caller sent.
  await assert.rejects(u.client.responses.create({ model: 'tiny', input: content, max_output_tokens: 500 }), refused('max_output_tokens'));
  // store: false (what stateless clients send) is fine.
  const ok = await u.client.responses.create({ model: 'sim-small', input: unique('Stateless'), store: false });
  assert.equal(ok.status, 'completed');
  assert.deepEqual(await simRequests(content), [], 'no refused request reached the model');
  const recs = await records(u, 1);
  assert.equal(recs.length, 1, `only the accepted call is recorded: ${JSON.stringify(recs)}`);
});

test('output items of stored answers (the default) can be referred to by item_reference; not with store: false, nor by another user', TIMEOUT, async () => {
  const u = await keyedUser();
  const tag = unique('Weather, please.');
  const content = `${tag}\n/tool get_weather {"city":"Oslo"}`;
  // Streamed: the items a stream sent are the ones kept.
  const events = await collect(await u.client.responses.create({ model: 'sim-small', input: content, tools: [WEATHER], stream: true }));
  const first = events.at(-1).response;
  assert.equal(first.store, true);
  const call = first.output.find((i) => i.type === 'function_call');
  assert.ok(call, JSON.stringify(first.output));
  const output = JSON.stringify({ city: 'Oslo', sky: 'clear' });
  const input = [
    { role: 'user', content },
    { type: 'item_reference', id: call.id },
    { type: 'function_call_output', call_id: call.call_id, output },
  ];
  const second = await u.client.responses.create({ model: 'sim-small', tools: [WEATHER], input });
  assert.equal(second.output_text, `Done: ${output}`);
  const recs = await simRequests(tag);
  assert.equal(recs.length, 2);
  const assistant = recs[1].body.messages.find((m) => m.role === 'assistant');
  assert.deepEqual(assistant.tool_calls.map((c) => [c.id, c.function.name]), [[call.call_id, 'get_weather']]);

  // A whole answer's message item, referred to in the next turn, is its text.
  const hello = unique('Hello');
  const answer = await u.client.responses.create({ model: 'sim-small', input: hello });
  const next = unique('And then?');
  const third = await u.client.responses.create({
    model: 'sim-small',
    input: [{ role: 'user', content: hello }, { type: 'item_reference', id: answer.output[0].id }, { role: 'user', content: next }],
  });
  assert.equal(
    third.output_text,
    await simAnswer(SIM_SMALL, [...user(hello), { role: 'assistant', content: answer.output_text }, ...user(next)]),
  );

  // Another user cannot refer to them, and store: false keeps nothing.
  const other = await keyedUser();
  await assert.rejects(other.client.responses.create({ model: 'sim-small', tools: [WEATHER], input }), refused('input[1].id'));
  const unstored = await u.client.responses.create({ model: 'sim-small', input: unique('Forget me'), store: false });
  assert.equal(unstored.store, false);
  await assert.rejects(
    u.client.responses.create({ model: 'sim-small', input: [{ type: 'item_reference', id: unstored.output[0].id }] }),
    refused('input[0].id'),
  );
});

test('a wrong API key is an AuthenticationError; an unknown model a 404', TIMEOUT, async () => {
  const { client } = await keyedUser();
  const bad = sdk(`ec_sk_${'A'.repeat(43)}`);
  await assert.rejects(bad.responses.create({ model: 'sim-small', input: unique('Who am I?') }), (err) => {
    assert.ok(err instanceof AuthenticationError, `got ${err?.constructor?.name}`);
    assert.equal(err.status, 401);
    assert.equal(err.error.code, 'invalid_api_key');
    return true;
  });
  await assert.rejects(client.responses.create({ model: 'no-such-model', input: 'x' }), (err) => {
    assert.equal(err.status, 404);
    assert.equal(err.error.code, 'model_not_found');
    return true;
  });
});

test('a key without the gateway scope is refused', TIMEOUT, async () => {
  const u = await registerUser();
  const res = await api('POST', '/api/v1/keys', { token: u.access_token, json: { name: 'read', scopes: ['read'] } });
  assert.equal(res.status, 201, res.text);
  await assert.rejects(sdk(res.body.key).responses.create({ model: 'sim-small', input: 'x' }), (err) => {
    assert.equal(err.status, 403);
    return true;
  });
});
