// The Vercel AI SDK (`ai` + `@ai-sdk/openai`) against the gateway, used as an app would: the
// default provider call `openai(model)`, which speaks the Responses API (every request is
// checked to go to /v1/responses), with `generateText`, `streamText`, structured output and
// multi-step tool loops, on the OpenAI-routed model and the Anthropic-routed one. Expected
// answers come from the simulator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createOpenAI } from '@ai-sdk/openai';
import { generateObject, generateText, Output, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';
import { api, BASE } from '../support/client.mjs';
import { registerUser } from '../support/accounts.mjs';
import { simAnswer, simRequests } from '../support/sim.mjs';

// The upstream strings the test models map to (TEST_VARS.MODEL_ROUTES in support/stack.mjs).
const SIM_SMALL = 'sim-small+tokens=24+interval=15';
const SIM_CLAUDE = 'sim-claude+tokens=16+interval=10';
const TIMEOUT = { timeout: 30_000 };
const MODELS = [
  ['sim-small', SIM_SMALL],
  ['claude', SIM_CLAUDE],
];

const unique = (text) => `${text} [${randomBytes(6).toString('hex')}]`;
const user = (content) => [{ role: 'user', content }];

/** The paths the providers sent requests to, and their bodies. */
const sent = [];

/** A provider for a fresh user (the free plan allows 20 requests a minute), recording what it sends. */
async function provider() {
  const u = await registerUser();
  const res = await api('POST', '/api/v1/keys', { token: u.access_token, json: { name: 'ai-sdk' } });
  assert.equal(res.status, 201, res.text);
  const recording = (url, init) => {
    sent.push({ path: new URL(url).pathname, body: init?.body ? JSON.parse(init.body) : null });
    return fetch(url, init);
  };
  return createOpenAI({ baseURL: `${BASE}/v1`, apiKey: res.body.key, fetch: recording });
}

/** Runs `f` and returns its result with the requests it sent, checking they all were Responses calls. */
async function responsesCalls(f) {
  const from = sent.length;
  const result = await f();
  const requests = sent.slice(from);
  assert.ok(requests.length > 0, 'the provider sent a request');
  assert.deepEqual([...new Set(requests.map((r) => r.path))], ['/v1/responses']);
  return { result, requests };
}

const weatherTool = () =>
  tool({
    description: 'The current weather in a city.',
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => ({ city, temperature: 21, sky: 'clear' }),
  });

for (const [model, upstream] of MODELS) {
  test(`${model}: generateText is the simulator's answer, with usage`, TIMEOUT, async () => {
    const openai = await provider();
    const prompt = unique('Describe the tides');
    const { result, requests } = await responsesCalls(() => generateText({ model: openai(model), prompt }));
    assert.equal(result.text, await simAnswer(upstream, user(prompt)));
    assert.equal(result.finishReason, 'stop');
    assert.ok(result.usage.inputTokens > 0);
    assert.ok(result.usage.outputTokens > 0);
    assert.equal(result.response.modelId, model);
    assert.match(result.response.id, /^resp_/);
    assert.equal(requests.length, 1);
    assert.equal(requests[0].body.model, model);
  });

  test(`${model}: streamText streams the simulator's answer`, TIMEOUT, async () => {
    const openai = await provider();
    const prompt = unique('Explain rainbows');
    const system = 'You are terse.';
    const { result } = await responsesCalls(async () => {
      const stream = streamText({ model: openai(model), system, prompt });
      const pieces = [];
      for await (const piece of stream.textStream) pieces.push(piece);
      return { pieces, text: await stream.text, finishReason: await stream.finishReason, usage: await stream.usage };
    });
    const expected = await simAnswer(upstream, [{ role: 'system', content: system }, ...user(prompt)]);
    assert.ok(result.pieces.length >= 2, `the answer arrives in pieces, not ${result.pieces.length}`);
    assert.equal(result.pieces.join(''), expected);
    assert.equal(result.text, expected);
    assert.equal(result.finishReason, 'stop');
    assert.ok(result.usage.outputTokens > 0);
  });

  test(`${model}: a multi-step tool loop calls the tool and answers with its result`, TIMEOUT, async () => {
    const openai = await provider();
    const tag = unique('What is the weather in Oslo?');
    const prompt = `${tag}\n/tool weather {"city":"Oslo"}`;
    let executed = 0;
    const tools = {
      weather: tool({
        description: 'The current weather in a city.',
        inputSchema: z.object({ city: z.string() }),
        execute: async ({ city }) => {
          executed++;
          return { city, temperature: 21, sky: 'clear' };
        },
      }),
    };
    const { result, requests } = await responsesCalls(() =>
      generateText({ model: openai(model), tools, stopWhen: stepCountIs(3), prompt }),
    );
    assert.equal(executed, 1, 'the tool ran once');
    assert.equal(result.steps.length, 2, JSON.stringify(result.steps.map((s) => s.finishReason)));
    const [call] = result.steps[0].toolCalls;
    assert.equal(call.toolName, 'weather');
    assert.deepEqual(call.input, { city: 'Oslo' });
    assert.equal(result.steps[0].finishReason, 'tool-calls');
    assert.equal(result.text, `Done: ${JSON.stringify({ city: 'Oslo', temperature: 21, sky: 'clear' })}`);
    assert.equal(result.finishReason, 'stop');
    assert.equal(requests.length, 2);
    // The second request carried the call and its output as items, not references to stored ones.
    const items = requests[1].body.input.map((i) => i.type ?? 'message');
    assert.deepEqual(items.slice(-2), ['function_call', 'function_call_output']);
    assert.equal((await simRequests(tag)).length, 2);
  });

  test(`${model}: streamText runs the same tool loop`, TIMEOUT, async () => {
    const openai = await provider();
    const prompt = `${unique('Weather in Lisbon?')}\n/tool weather {"city":"Lisbon"}`;
    const { result } = await responsesCalls(async () => {
      const stream = streamText({ model: openai(model), tools: { weather: weatherTool() }, stopWhen: stepCountIs(3), prompt });
      let text = '';
      for await (const piece of stream.textStream) text += piece;
      return { text, steps: await stream.steps };
    });
    assert.equal(result.steps.length, 2);
    assert.deepEqual(result.steps[0].toolCalls.map((c) => [c.toolName, c.input]), [['weather', { city: 'Lisbon' }]]);
    assert.equal(result.text, `Done: ${JSON.stringify({ city: 'Lisbon', temperature: 21, sky: 'clear' })}`);
  });
}

for (const [model] of MODELS) {
  test(`${model}: structured output with a zod schema (Output.object, streamed, and generateObject)`, TIMEOUT, async () => {
    const openai = await provider();
    const schema = z.object({ name: z.string(), population: z.number().int(), rivers: z.array(z.string()) });
    const prompt = unique('A city as JSON');
    const { result, requests } = await responsesCalls(() =>
      generateText({ model: openai(model), output: Output.object({ schema }), prompt }),
    );
    assert.equal(requests[0].body.text.format.type, 'json_schema');
    const city = result.output;
    assert.equal(typeof city.name, 'string');
    assert.ok(Number.isInteger(city.population));
    assert.ok(Array.isArray(city.rivers));

    const { result: streamed } = await responsesCalls(async () => {
      const stream = streamText({ model: openai(model), output: Output.object({ schema }), prompt: unique('A streamed city') });
      for await (const _ of stream.textStream);
      return stream.output;
    });
    assert.deepEqual(Object.keys(streamed).sort(), ['name', 'population', 'rivers']);

    const { result: legacy } = await responsesCalls(() => generateObject({ model: openai(model), schema, prompt: unique('Another city') }));
    assert.deepEqual(Object.keys(legacy.object).sort(), ['name', 'population', 'rivers']);
    assert.ok(Number.isInteger(legacy.object.population));
  });
}

test('a conversation goes on by default (earlier answers referred to as stored items) and with store: false', TIMEOUT, async () => {
  const openai = await provider();
  const first = unique('Hello there');
  const { result } = await responsesCalls(() => generateText({ model: openai('sim-small'), prompt: first }));
  const next = unique('Tell me more');
  const messages = [...user(first), ...result.response.messages, ...user(next)];
  const expected = await simAnswer(SIM_SMALL, [...user(first), { role: 'assistant', content: result.text }, ...user(next)]);
  // The default assumes the first answer was stored: its text is sent as an item_reference,
  // which the gateway reads back from the caller's stored items.
  const { result: byDefault, requests: defaultRequests } = await responsesCalls(() =>
    generateText({ model: openai('sim-small'), messages, maxRetries: 0 }),
  );
  assert.ok(
    defaultRequests[0].body.input.some((item) => item.type === 'item_reference'),
    `the SDK referred to the stored answer: ${JSON.stringify(defaultRequests[0].body.input)}`,
  );
  assert.equal(byDefault.text, expected);
  const providerOptions = { openai: { store: false } };
  const { result: second, requests } = await responsesCalls(() =>
    generateText({ model: openai('sim-small'), messages, providerOptions }),
  );
  assert.equal(requests[0].body.store, false);
  assert.ok(!requests[0].body.input.some((item) => item.type === 'item_reference'));
  assert.equal(second.text, expected);
});

test('a gateway refusal reaches the app as an API call error with its status and message', TIMEOUT, async () => {
  const openai = await provider();
  await assert.rejects(
    responsesCalls(() => generateText({ model: openai('no-such-model'), prompt: 'x', maxRetries: 0 })),
    (err) => {
      assert.equal(err.statusCode, 404, `${err?.name}: ${err?.message}`);
      assert.match(err.message, /does not exist/);
      return true;
    },
  );
});
