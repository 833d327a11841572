// The official OpenAI SDKs against the OpenAI-compatible gateway (/v1/models, /v1/chat/completions),
// used unmodified apart from base URL and API key (plus a timeout and no automatic retries, so a
// test is bounded and sees the gateway's first answer): the npm `openai` package here, and the
// Python `openai` package through tests/sdk/test_openai_python.py in the venv that
// scripts/setup-python.sh installs (EDGECHAT_PY_VENV). Expected answers come from the simulator.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import path from 'node:path';
import OpenAI, { AuthenticationError, BadRequestError, NotFoundError } from 'openai';
import { api, BASE, SIM } from '../support/client.mjs';
import { registerUser } from '../support/accounts.mjs';
import { simAnswer, simRequests } from '../support/sim.mjs';
import { ROOT } from '../support/stack.mjs';

// The upstream strings the test models map to (TEST_VARS.MODEL_ROUTES in support/stack.mjs).
const SIM_SMALL = 'sim-small+tokens=24+interval=15';
const SIM_CLAUDE = 'sim-claude+tokens=16+interval=10';
const TIMEOUT = { timeout: 30_000 };

const unique = (text) => `${text} [${randomBytes(6).toString('hex')}]`;
const user = (content) => [{ role: 'user', content }];

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The current weather in a city.',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', description: 'The city name.' } },
      required: ['city'],
    },
  },
};

/** A fresh user's new API key (`ec_sk_...`). */
async function createApiKey() {
  const u = await registerUser();
  const res = await api('POST', '/api/v1/keys', { token: u.access_token, json: { name: 'sdk' } });
  assert.equal(res.status, 201, res.text);
  assert.match(res.body.key, /^ec_sk_/);
  return res.body.key;
}

const sdk = (apiKey) => new OpenAI({ baseURL: `${BASE}/v1`, apiKey, timeout: 20_000, maxRetries: 0 });

/** The simulator's own non-streamed completion for an upstream model string. */
async function simCompletion(model, messages, extra = {}) {
  const res = await fetch(`${SIM}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages, ...extra }),
  });
  assert.equal(res.status, 200);
  return res.json();
}

/** Checks an SDK error: its class, status, OpenAI error shape and request id. */
const openAiError = (Class, status) => (err) => {
  assert.ok(err instanceof Class, `expected ${Class.name}, got ${err?.constructor?.name} ${err?.status}: ${err?.message}`);
  assert.equal(err.status, status);
  const body = err.error;
  assert.equal(typeof body, 'object', `error body: ${JSON.stringify(body)}`);
  for (const key of ['message', 'type', 'param', 'code']) assert.ok(key in body, `error body has ${key}: ${JSON.stringify(body)}`);
  assert.equal(typeof body.message, 'string');
  assert.ok(body.message.length > 0);
  assert.equal(typeof body.type, 'string');
  assert.ok(body.type.length > 0);
  assert.ok(err.requestID, 'the error response carries x-request-id');
  return true;
};

let client;
before(async () => {
  client = sdk(await createApiKey());
});

test('models.list contains the test models', TIMEOUT, async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m);
  const ids = models.map((m) => m.id);
  for (const name of ['sim-small', 'claude']) assert.ok(ids.includes(name), `${name} in ${ids}`);
  for (const m of models) assert.equal(m.object, 'model');
});

test('models.retrieve answers a routed model and raises NotFoundError for any other', TIMEOUT, async () => {
  const m = await client.models.retrieve('claude');
  assert.deepEqual({ id: m.id, object: m.object, owned_by: m.owned_by }, { id: 'claude', object: 'model', owned_by: 'anthropic' });
  await assert.rejects(client.models.retrieve('no-such-model'), (err) => {
    openAiError(NotFoundError, 404)(err);
    assert.equal(err.error.code, 'model_not_found');
    return true;
  });
});

test('a completion is the simulator answer', TIMEOUT, async () => {
  const messages = user(unique('Describe the tides'));
  const res = await client.chat.completions.create({ model: 'sim-small', messages });
  const expected = await simAnswer(SIM_SMALL, messages);
  assert.equal(res.object, 'chat.completion');
  assert.equal(res.model, 'sim-small');
  assert.equal(res.choices.length, 1);
  const [choice] = res.choices;
  assert.equal(choice.message.role, 'assistant');
  assert.equal(choice.message.content, expected);
  assert.equal(choice.finish_reason, 'stop');
  assert.equal(res.usage.completion_tokens, 24);
  assert.ok(res.usage.prompt_tokens > 0);
  assert.equal(res.usage.total_tokens, res.usage.prompt_tokens + res.usage.completion_tokens);
});

test('a stream with include_usage is the simulator answer, usage in the final chunk', TIMEOUT, async () => {
  const messages = user(unique('Explain rainbows'));
  const stream = await client.chat.completions.create({
    model: 'sim-small',
    messages,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const expected = await simAnswer(SIM_SMALL, messages);
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
  const pieces = chunks.flatMap((c) => (c.choices[0]?.delta?.content ? [c.choices[0].delta.content] : []));
  assert.equal(pieces.join(''), expected);
  assert.ok(pieces.length >= 2, `the answer arrives in several deltas, not ${pieces.length}`);
  assert.deepEqual(chunks.flatMap((c) => c.choices.filter((ch) => ch.finish_reason).map((ch) => ch.finish_reason)), ['stop']);
  const last = chunks.at(-1);
  assert.ok(last.usage, `the final chunk carries usage: ${JSON.stringify(last)}`);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage.completion_tokens, 24);
  assert.ok(chunks.slice(0, -1).every((c) => c.usage == null), 'only the final chunk carries usage');
});

test('a streamed tool call assembles into one get_weather call with JSON arguments', TIMEOUT, async () => {
  const messages = user(unique('What is the weather in Lisbon?'));
  // The SDK's stream helper: we assemble the deltas ourselves and compare with its own result.
  const stream = client.chat.completions.stream({ model: 'sim-small', messages, tools: [WEATHER_TOOL] });
  const calls = new Map();
  const finish = [];
  let text = '';
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      text += choice.delta.content ?? '';
      for (const tc of choice.delta.tool_calls ?? []) {
        const call = calls.get(tc.index) ?? { id: '', name: '', arguments: '' };
        call.id += tc.id ?? '';
        call.name += tc.function?.name ?? '';
        call.arguments += tc.function?.arguments ?? '';
        calls.set(tc.index, call);
      }
      if (choice.finish_reason) finish.push(choice.finish_reason);
    }
  }
  assert.deepEqual(finish, ['tool_calls']);
  assert.equal(calls.size, 1, JSON.stringify([...calls.values()]));
  const [call] = calls.values();
  assert.equal(call.name, 'get_weather');
  assert.ok(call.id, 'the tool call has an id');
  assert.equal(text, '', 'no text next to the tool call');
  const args = JSON.parse(call.arguments);
  assert.equal(typeof args.city, 'string');
  const upstream = await simCompletion(SIM_SMALL, messages, { tools: [WEATHER_TOOL] });
  assert.deepEqual(args, JSON.parse(upstream.choices[0].message.tool_calls[0].function.arguments));

  const final = await stream.finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  assert.deepEqual(
    final.choices[0].message.tool_calls.map((t) => [t.id, t.type, t.function.name, t.function.arguments]),
    [[call.id, 'function', 'get_weather', call.arguments]],
  );
});

test('a wrong API key is an AuthenticationError', TIMEOUT, async () => {
  const bad = sdk(`ec_sk_${'A'.repeat(43)}`);
  await assert.rejects(
    bad.chat.completions.create({ model: 'sim-small', messages: user(unique('Who am I?')) }),
    openAiError(AuthenticationError, 401),
  );
  await assert.rejects(bad.models.list(), openAiError(AuthenticationError, 401));
});

test('an unknown model is a NotFoundError', TIMEOUT, async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages: user(unique('Anyone there?')) }),
    openAiError(NotFoundError, 404),
  );
});

test('temperature out of range is a BadRequestError and never reaches the upstream', TIMEOUT, async () => {
  const content = unique('Too hot');
  await assert.rejects(
    client.chat.completions.create({ model: 'sim-small', messages: user(content), temperature: 5 }),
    openAiError(BadRequestError, 400),
  );
  assert.deepEqual(await simRequests(content), []);
});

test('empty messages is a BadRequestError', TIMEOUT, async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'sim-small', messages: [] }),
    openAiError(BadRequestError, 400),
  );
});

/** The same request twice, with raw responses: [[cache header, content], [cache header, content]]. */
async function twice(content, params) {
  const out = [];
  for (let i = 0; i < 2; i++) {
    const { data, response } = await client.chat.completions
      .create({ model: 'sim-small', messages: user(content), ...params })
      .withResponse();
    out.push([response.headers.get('x-edgechat-cache'), data.choices[0].message.content]);
  }
  return out;
}

test('temperature 0: the second identical request is a cache hit with the same content', TIMEOUT, async () => {
  const content = unique('Name three rivers');
  const [[h1, c1], [h2, c2]] = await twice(content, { temperature: 0 });
  assert.equal(h1, 'miss');
  assert.equal(h2, 'hit');
  assert.equal(c2, c1);
  assert.equal((await simRequests(content)).length, 1, 'one request reached the simulator'); // before simAnswer adds one
  assert.equal(c1, await simAnswer(SIM_SMALL, user(content)));
});

test('a seed: the second identical request is a cache hit with the same content', TIMEOUT, async () => {
  const content = unique('Name three mountains');
  const [[h1, c1], [h2, c2]] = await twice(content, { seed: 42 });
  assert.deepEqual([h1, h2], ['miss', 'hit']);
  assert.equal(c2, c1);
  assert.equal((await simRequests(content)).length, 1);
});

test('non-deterministic requests are never served from the cache', TIMEOUT, async () => {
  const content = unique('Name three lakes');
  const [[h1], [h2]] = await twice(content, { temperature: 0.7 });
  assert.notEqual(h1, 'hit');
  assert.notEqual(h2, 'hit');
  assert.equal((await simRequests(content)).length, 2);
});

test('an Anthropic-routed model streams text through the OpenAI SDK', TIMEOUT, async () => {
  const messages = user(unique('Hello Claude'));
  const stream = await client.chat.completions.create({
    model: 'claude',
    messages,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const recs = await simRequests(messages[0].content); // before simAnswer adds one
  assert.deepEqual(recs.map((r) => r.path), ['/v1/messages']);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
  assert.ok(text.length > 0);
  // The simulator's text depends on the base model and the prompt only, not on the wire format.
  assert.equal(text, await simAnswer(SIM_CLAUDE, messages));
  assert.deepEqual(chunks.flatMap((c) => c.choices.filter((ch) => ch.finish_reason).map((ch) => ch.finish_reason)), ['stop']);
  assert.equal(chunks.at(-1).usage?.completion_tokens, 16);
});

test('the official Python SDK passes tests/sdk/test_openai_python.py', { timeout: 150_000 }, async (t) => {
  const venv = process.env.EDGECHAT_PY_VENV;
  assert.ok(
    venv,
    'EDGECHAT_PY_VENV is not set: it names the venv with the Python openai SDK. `npm test` sets it; by hand: ' +
      'EDGECHAT_PY_VENV="$(bash scripts/setup-python.sh | tail -n 1)" node tests/run.mjs openai_sdk',
  );
  const python = path.join(venv, 'bin', 'python');
  assert.ok(existsSync(python), `${python} does not exist: rerun scripts/setup-python.sh`);
  const apiKey = await createApiKey();
  const env = { ...process.env, EDGECHAT_URL: BASE, SIM_URL: SIM, EDGECHAT_API_KEY: apiKey, PYTHONUNBUFFERED: '1' };
  delete env.PYTHONPATH;
  delete env.PYTHONHOME;
  const child = spawn(python, [path.join(ROOT, 'tests/sdk/test_openai_python.py')], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  // Each Python test bounds itself at 30 s; this bounds the whole script.
  const killer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const [code, signal] = await once(child, 'exit');
  clearTimeout(killer);
  for (const line of stdout.trimEnd().split('\n')) t.diagnostic(`python sdk › ${line}`);
  const report = `exit ${code ?? signal}\n--- stdout\n${stdout}--- stderr\n${stderr}`;
  assert.equal(code, 0, report);
  const last = stdout.trimEnd().split('\n').at(-1);
  const m = last.match(/^(\d+) passed, 0 failed$/);
  assert.ok(m, `last line ${JSON.stringify(last)}\n${report}`);
  assert.ok(Number(m[1]) >= 12, `only ${m[1]} Python tests ran\n${report}`);
});
