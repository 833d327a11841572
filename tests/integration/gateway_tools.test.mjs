// Tools and JSON mode through the gateway on a translated (Anthropic) route, with the official
// OpenAI Node SDK: tool definitions, tool_choice, tool calls and results go to the simulator in
// Anthropic's form and its answers come back in OpenAI's (calls, argument fragments, finish
// reasons); `response_format` json_schema / json_object become a forced tool whose input is the
// answer's text; what a model cannot do is refused with 400 naming the parameter; /v1/models says
// what each model supports. Runs against a worker of its own in bare workerd (extra routes: a
// Workers AI model and an Anthropic model without JSON mode), with direct reads of usage records.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import OpenAI, { BadRequestError } from 'openai';
import { api as call } from '../support/client.mjs';
import { PASSWORD, uniqueEmail } from '../support/accounts.mjs';
import { eventually, simRequests } from '../support/sim.mjs';
import { simVars, TEST_VARS } from '../support/stack.mjs';
import { startBareWorker } from '../support/miniflare.mjs';

const TIMEOUT = { timeout: 30_000 };
const ROUTES = {
  ...JSON.parse(TEST_VARS.MODEL_ROUTES).models,
  // Never called: refused before any upstream call.
  llama: { provider: 'workers-ai', upstream: '@cf/meta/llama-3.1-8b-instruct' },
  'claude-text': { provider: 'anthropic', upstream: 'sim-claude+tokens=16+interval=10', capabilities: { json_mode: false } },
};

// One user makes every call: room for all of them in a minute.
const PLANS = { free: { requests_per_minute: 1000, tokens_per_day: 10_000_000, concurrent_streams: 4, models: ['*'] } };

const WEATHER = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The current weather in a city.',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] },
  },
};
const TIME = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } } } } };
// Long enough to arrive in several fragments (the simulator sends 8 characters each).
const PARIS = '{"city":"Paris, \\"Île-de-France\\"","days":15}';

let worker;
let client;
let user;
before(async () => {
  worker = await startBareWorker(simVars({ MODEL_ROUTES: JSON.stringify({ default: 'sim-small', models: ROUTES }), PLANS: JSON.stringify(PLANS) }));
  const res = await call('POST', '/api/v1/auth/register', { base: worker.url, json: { email: uniqueEmail('tools'), password: PASSWORD } });
  assert.equal(res.status, 201, res.text);
  user = res.body;
  const key = await call('POST', '/api/v1/keys', { base: worker.url, token: user.access_token, json: { name: 'tools' } });
  assert.equal(key.status, 201, key.text);
  client = new OpenAI({ baseURL: `${worker.url}/v1`, apiKey: key.body.key, timeout: 20_000, maxRetries: 0 });
});
after(() => worker?.stop());

// The tag goes on a line of its own, first, so that a `/tool` line stays whole.
const unique = (text) => `[${randomBytes(6).toString('hex')}]\n${text}`;
const user1 = (content) => [{ role: 'user', content }];

/** The requests the simulator received for a `unique` content (found by its tag). */
const sent = (content) => simRequests(content.split('\n')[0]);

/** The one request the simulator received for a `unique` content. */
async function upstreamBody(content) {
  const [r, ...more] = await sent(content);
  assert.equal(more.length, 0, 'one upstream request');
  return r.body;
}

/** Every chunk of a streamed create(). */
async function chunksOf(params) {
  const chunks = [];
  for await (const chunk of await client.chat.completions.create({ ...params, stream: true })) chunks.push(chunk);
  return chunks;
}

/** A 400 from the SDK naming `param`. */
const badRequest = (param) => (err) => {
  assert.ok(err instanceof BadRequestError, `expected BadRequestError, got ${err?.constructor?.name} ${err?.status}: ${err?.message}`);
  assert.equal(err.status, 400);
  assert.equal(err.error.param, param, err.message);
  assert.equal(err.error.type, 'invalid_request_error');
  return true;
};

test('a whole answer calling a tool has tool_calls and finish_reason tool_calls; the tools reach Anthropic translated', TIMEOUT, async () => {
  const content = unique(`Weather, please.\n/tool get_weather ${PARIS}`);
  const res = await client.chat.completions.create({ model: 'claude', messages: user1(content), tools: [WEATHER, TIME] });
  const [choice] = res.choices;
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.role, 'assistant');
  assert.equal(choice.message.content, null, 'no text next to the call');
  assert.equal(choice.message.tool_calls.length, 1);
  const [tc] = choice.message.tool_calls;
  assert.match(tc.id, /^toolu_01/);
  assert.equal(tc.type, 'function');
  assert.equal(tc.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(tc.function.arguments), JSON.parse(PARIS));
  const body = await upstreamBody(content);
  assert.deepEqual(body.tools, [
    { name: 'get_weather', description: 'The current weather in a city.', input_schema: WEATHER.function.parameters },
    { name: 'get_time', input_schema: TIME.function.parameters },
  ]);
  assert.equal(body.tool_choice, undefined, 'auto is the default: not sent');
});

test('a streamed tool call arrives as delta.tool_calls fragments that reassemble to the simulator\'s arguments', TIMEOUT, async () => {
  const content = unique(`Two things.\n/tool get_weather ${PARIS}\n/tool get_time {"zone":"Europe/Paris"}`);
  const chunks = await chunksOf({ model: 'claude', messages: user1(content), tools: [WEATHER, TIME], stream_options: { include_usage: true } });
  const fragments = chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
  const calls = [];
  for (const f of fragments) {
    if (f.id) {
      assert.equal(f.index, calls.length, 'a new call takes the next index');
      assert.equal(f.type, 'function');
      assert.equal(f.function.arguments, '', 'the first fragment names the call, without arguments');
      calls.push({ id: f.id, name: f.function.name, arguments: '' });
    } else {
      assert.equal(f.function.name, undefined);
      calls[f.index].arguments += f.function.arguments;
    }
  }
  assert.ok(fragments.length >= 2 + Math.ceil(PARIS.length / 8), `${fragments.length} fragments`);
  assert.deepEqual(calls.map((c) => [c.name, c.arguments]), [['get_weather', PARIS], ['get_time', '{"zone":"Europe/Paris"}']]);
  for (const c of calls) assert.match(c.id, /^toolu_01/);
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), '', 'no text');
  const finishes = chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean);
  assert.deepEqual(finishes, ['tool_calls']);
  assert.ok(chunks.at(-1).usage.completion_tokens > 0, 'the usage chunk');
  // The SDK's own assembly agrees.
  const final = await client.chat.completions
    .stream({ model: 'claude', messages: user1(content), tools: [WEATHER, TIME] })
    .finalChatCompletion();
  assert.deepEqual(final.choices[0].message.tool_calls.map((t) => [t.function.name, t.function.arguments]), calls.map((c) => [c.name, c.arguments]));
});

test('the second turn sends the calls and their results as tool_use / tool_result and gets a text answer', TIMEOUT, async () => {
  const content = unique(`/tool get_weather ${PARIS}`);
  const first = await client.chat.completions.create({ model: 'claude', messages: user1(content), tools: [WEATHER] });
  const message = first.choices[0].message;
  const id = message.tool_calls[0].id;
  const result = '{"sky":"clear","temp_c":21}';
  const messages = [...user1(content), message, { role: 'tool', tool_call_id: id, content: result }];
  for (const stream of [false, true]) {
    let text;
    let finish;
    if (stream) {
      const chunks = await chunksOf({ model: 'claude', messages, tools: [WEATHER] });
      text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
      finish = chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean);
    } else {
      const res = await client.chat.completions.create({ model: 'claude', messages, tools: [WEATHER] });
      text = res.choices[0].message.content;
      finish = [res.choices[0].finish_reason];
      assert.equal(res.choices[0].message.tool_calls, undefined);
    }
    assert.equal(text, `Done: ${result}`);
    assert.deepEqual(finish, ['stop']);
  }
  const [second] = (await sent(content)).filter((r) => r.body.messages.length === 3);
  assert.deepEqual(second.body.messages.slice(1), [
    { role: 'assistant', content: [{ type: 'tool_use', id, name: 'get_weather', input: JSON.parse(PARIS) }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: id, content: result }] },
  ]);
});

test('tool_choice none, required and a named function reach Anthropic as none, any and tool', TIMEOUT, async () => {
  const cases = [
    ['none', { type: 'none' }, null],
    ['required', { type: 'any' }, 'get_weather'],
    [{ type: 'function', function: { name: 'get_time' } }, { type: 'tool', name: 'get_time' }, 'get_time'],
  ];
  for (const [tool_choice, upstream, called] of cases) {
    const content = unique('What now?');
    const res = await client.chat.completions.create({ model: 'claude', messages: user1(content), tools: [WEATHER, TIME], tool_choice });
    assert.deepEqual((await upstreamBody(content)).tool_choice, upstream);
    const { message, finish_reason } = res.choices[0];
    if (called) {
      assert.equal(finish_reason, 'tool_calls');
      assert.equal(message.tool_calls[0].function.name, called);
      assert.equal(typeof JSON.parse(message.tool_calls[0].function.arguments), 'object');
    } else {
      assert.equal(finish_reason, 'stop');
      assert.ok(message.content.length > 0);
    }
  }
});

const CITY_SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string' }, temp_c: { type: 'number' }, sunny: { type: 'boolean' } },
  required: ['city', 'temp_c', 'sunny'],
};

test('json_schema is answered with text that JSON.parses to the schema, whole and streamed, as a forced tool upstream', TIMEOUT, async () => {
  const response_format = { type: 'json_schema', json_schema: { name: 'city_weather', schema: CITY_SCHEMA } };
  const content = unique('The weather in Oslo as JSON.');
  const res = await client.chat.completions.create({ model: 'claude', messages: user1(content), response_format });
  const { message, finish_reason } = res.choices[0];
  assert.equal(finish_reason, 'stop');
  assert.equal(message.tool_calls, undefined, 'no tool call is shown');
  const answer = JSON.parse(message.content);
  assert.equal(typeof answer.city, 'string');
  assert.equal(typeof answer.temp_c, 'number');
  assert.equal(typeof answer.sunny, 'boolean');
  const body = await upstreamBody(content);
  assert.deepEqual(body.tools.map((t) => [t.name, t.input_schema]), [['city_weather', CITY_SCHEMA]]);
  assert.deepEqual(body.tool_choice, { type: 'tool', name: 'city_weather' });

  // Streamed: the tool's input pieces are content deltas; a scripted answer comes back exactly.
  const exact = '{"city":"Oslo","temp_c":-3.5,"sunny":false}';
  const chunks = await chunksOf({ model: 'claude', messages: user1(unique(`/tool city_weather ${exact}`)), response_format });
  const pieces = chunks.map((c) => c.choices[0]?.delta?.content ?? '').filter(Boolean);
  assert.ok(pieces.length > 3, `${pieces.length} content deltas`);
  assert.equal(pieces.join(''), exact);
  assert.ok(chunks.every((c) => c.choices[0]?.delta?.tool_calls === undefined));
  assert.deepEqual(chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean), ['stop']);
  const whole = await client.chat.completions.create({ model: 'claude', messages: user1(unique(`/tool city_weather ${exact}`)), response_format });
  assert.equal(whole.choices[0].message.content, exact);
});

test('json_object is answered with a JSON object, whole and streamed', TIMEOUT, async () => {
  const response_format = { type: 'json_object' };
  const content = unique('Describe a cat as a JSON object.');
  const res = await client.chat.completions.create({ model: 'claude', messages: user1(content), response_format });
  const parsed = JSON.parse(res.choices[0].message.content);
  assert.equal(typeof parsed, 'object');
  assert.ok(parsed !== null && !Array.isArray(parsed));
  assert.equal(res.choices[0].finish_reason, 'stop');
  const body = await upstreamBody(content);
  assert.deepEqual(body.tools.map((t) => [t.name, t.input_schema]), [['json_object', { type: 'object' }]]);
  assert.deepEqual(body.tool_choice, { type: 'tool', name: 'json_object' });
  const chunks = await chunksOf({ model: 'claude', messages: user1(unique('/tool json_object {"name":"Tom","legs":4}')), response_format });
  assert.deepEqual(JSON.parse(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')), { name: 'Tom', legs: 4 });
});

test('bad tool definitions, choices and unsupported features are 400s naming the parameter, and nothing reaches the upstream', TIMEOUT, async () => {
  const jsonMode = { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object' } } };
  const cases = [
    [{ model: 'claude', tools: [{ type: 'function', function: { name: 'get weather' } }] }, 'tools[0].function.name'],
    [{ model: 'claude', tools: [{ type: 'function', function: { name: 'f', parameters: 'none' } }] }, 'tools[0].function.parameters'],
    [{ model: 'claude', tools: [WEATHER, WEATHER] }, 'tools[1].function.name'],
    [{ model: 'claude', tools: [{ type: 'function' }] }, 'tools[0]'],
    [{ model: 'claude', tools: [WEATHER], tool_choice: { type: 'function', function: { name: 'get_time' } } }, 'tool_choice.function.name'],
    [{ model: 'claude', tools: [WEATHER], tool_choice: 'sometimes' }, 'tool_choice'],
    [{ model: 'claude', response_format: { type: 'json_schema', json_schema: { name: 'a b' } } }, 'response_format.json_schema.name'],
    [{ model: 'claude', tools: [WEATHER], response_format: jsonMode }, 'response_format'],
    [{ model: 'claude-text', response_format: { type: 'json_object' } }, 'response_format'],
    [{ model: 'llama', tools: [WEATHER] }, 'tools'],
    [{ model: 'llama', response_format: jsonMode }, 'response_format'],
  ];
  const image = { role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] };
  const content = unique('an image');
  await assert.rejects(client.chat.completions.create({ model: 'claude', messages: [...user1(content), image] }), badRequest('messages'), 'images on a model without vision');
  assert.equal((await sent(content)).length, 0);
  for (const [params, param] of cases) {
    const content = unique('refused');
    await assert.rejects(client.chat.completions.create({ ...params, messages: user1(content) }), badRequest(param), JSON.stringify(params));
    assert.equal((await sent(content)).length, 0, `${param}: nothing reaches the upstream`);
  }
  // The same tools and JSON mode together pass as sent to an OpenAI-compatible route.
  const both = await client.chat.completions.create({ model: 'sim-small', messages: user1(unique('both')), tools: [WEATHER], response_format: jsonMode });
  assert.equal(both.choices.length, 1);
});

test('tool-call and JSON-mode answers are billed the upstream\'s usage', TIMEOUT, async () => {
  const before = await usageRows();
  const calls = await client.chat.completions.create({ model: 'claude', messages: user1(unique(`/tool get_weather ${PARIS}`)), tools: [WEATHER] });
  const streamed = await chunksOf({ model: 'claude', messages: user1(unique(`/tool get_weather ${PARIS}`)), tools: [WEATHER], stream_options: { include_usage: true } });
  const json = await client.chat.completions.create({ model: 'claude', messages: user1(unique('JSON')), response_format: { type: 'json_object' } });
  const rows = await eventually(async () => {
    const all = await usageRows();
    return all.length >= before.length + 3 ? all.slice(before.length) : null;
  }, { what: '3 usage records', timeoutMs: 20_000 });
  const usages = [calls.usage, streamed.at(-1).usage, json.usage];
  assert.deepEqual(
    rows.map((r) => [r.model, r.status, r.prompt_tokens, r.completion_tokens, r.is_usage_estimated]),
    usages.map((u) => ['claude', 'complete', u.prompt_tokens, u.completion_tokens, 0]),
  );
  // The simulator bills one token per argument fragment.
  assert.equal(calls.usage.completion_tokens, Math.ceil(PARIS.length / 8));
});

async function usageRows() {
  const r = await worker.db
    .prepare("SELECT model, status, prompt_tokens, completion_tokens, is_usage_estimated FROM usage_records WHERE user_id = ? AND source = 'gateway' ORDER BY created_at, rowid")
    .bind(user.user.user_id)
    .all();
  return r.results;
}

test('/v1/models says what each model supports and its limits', TIMEOUT, async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m);
  const byId = Object.fromEntries(models.map((m) => [m.id, m]));
  assert.deepEqual(Object.keys(byId), Object.keys(ROUTES));
  assert.deepEqual(byId.claude.capabilities, { tools: true, json_mode: true, vision: false });
  assert.deepEqual(byId['sim-small'].capabilities, { tools: true, json_mode: true, vision: true });
  assert.deepEqual(byId.llama.capabilities, { tools: false, json_mode: false, vision: false });
  assert.deepEqual(byId['claude-text'].capabilities, { tools: true, json_mode: false, vision: false });
  assert.deepEqual([byId.tiny.context_window, byId.tiny.max_output_tokens], [200, 100]);
  assert.deepEqual([byId.claude.context_window, byId.claude.max_output_tokens], [8192, 1024]);
  for (const m of models) assert.deepEqual([m.object, m.created, typeof m.owned_by], ['model', 0, 'string']);
  const one = await client.models.retrieve('claude');
  assert.deepEqual(one, byId.claude);
});

test('a deterministic JSON-mode answer is cached as its text; a tool-call answer is never cached', TIMEOUT, async () => {
  const raw = (params) => call('POST', '/v1/chat/completions', { base: worker.url, token: user.access_token, json: params });
  const json = { model: 'claude', temperature: 0, messages: user1(unique('/tool json_object {"cached":true}')), response_format: { type: 'json_object' } };
  const first = await raw(json);
  assert.equal(first.status, 200, first.text);
  assert.equal(first.headers.get('x-edgechat-cache'), 'miss');
  const hit = await eventually(async () => {
    const r = await raw(json);
    return r.headers.get('x-edgechat-cache') === 'hit' ? r : null;
  }, { what: 'a cache hit' });
  assert.equal(hit.body.choices[0].message.content, '{"cached":true}');
  assert.equal(hit.body.choices[0].finish_reason, 'stop');
  const tools = { model: 'claude', temperature: 0, messages: user1(unique('/tool get_weather {"city":"Rome"}')), tools: [WEATHER] };
  for (let i = 0; i < 2; i++) {
    const r = await raw(tools);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.choices[0].finish_reason, 'tool_calls');
    assert.notEqual(r.headers.get('x-edgechat-cache'), 'hit');
  }
  assert.equal((await sent(tools.messages[0].content)).length, 2, 'both reached the model');
});
