// sim/test/openai.test.mjs — OpenAI Chat Completions over real HTTP: shapes, streaming, usage, pacing, tools, caps.

import test from 'node:test';
import assert from 'node:assert/strict';
import { startSim, postJson, readSse, waitFor } from '../testkit.mjs';
import { generateTokens, seedText } from '../text.mjs';

const T = { timeout: 5000 }; // every test is bounded
const PATH = '/v1/chat/completions';
const user = (content) => [{ role: 'user', content }];

/** Concatenate the content deltas of parsed chunks. */
const chunkText = (chunks) => chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');

async function stream(url, body, headers) {
  const res = await postJson(url + PATH, { stream: true, ...body }, { headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  assert.equal(res.headers.get('content-length'), null);
  const out = await readSse(res);
  assert.equal(out.error, null);
  assert.equal(out.rest, '');
  return out;
}

test('non-stream chat.completion has the OpenAI shape and deterministic text', T, async () => {
  const { url, sim, close } = await startSim();
  try {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'text', text: 'Hello ' }, { type: 'text', text: 'there' }] },
    ];
    const res = await postJson(url + PATH, { model: 'sim-small+tokens=6', messages, temperature: 0.2 });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    const body = await res.json();
    const expected = generateTokens(seedText('sim-small', ['Be brief.', 'Hello there']), 6).join('');
    assert.match(body.id, /^chatcmpl-/);
    assert.equal(body.object, 'chat.completion');
    assert.equal(typeof body.created, 'number');
    assert.equal(body.model, 'sim-small');
    assert.equal(typeof body.system_fingerprint, 'string');
    assert.deepEqual(body.choices, [
      { index: 0, message: { role: 'assistant', content: expected, refusal: null }, logprobs: null, finish_reason: 'stop' },
    ]);
    const promptTokens = Math.ceil('Be brief.Hello there'.length / 4);
    assert.equal(body.usage.prompt_tokens, promptTokens);
    assert.equal(body.usage.completion_tokens, 6);
    assert.equal(body.usage.total_tokens, promptTokens + 6);
    await waitFor(() => sim.requests[0]?.completed);
    const rec = sim.requests[0];
    assert.equal(rec.path, PATH);
    assert.equal(rec.model, 'sim-small+tokens=6');
    assert.deepEqual(rec.options, { tokens: 6 });
    assert.equal(rec.body.temperature, 0.2);
    assert.equal(rec.has_auth, false);
    assert.equal(rec.aborted, false);
  } finally {
    await close();
  }
});

test('stream: role chunk, one chunk per token, finish chunk, [DONE]; text matches non-stream', T, async () => {
  const { url, close } = await startSim({ tokens: 7 });
  try {
    const { events } = await stream(url, { model: 'sim-large', messages: user('stream me') });
    assert.equal(events.at(-1).data, '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    assert.equal(chunks.length, 1 + 7 + 1);
    for (const c of chunks) {
      assert.equal(c.object, 'chat.completion.chunk');
      assert.equal(c.model, 'sim-large');
      assert.equal(c.id, chunks[0].id);
      assert.ok(!('usage' in c), 'no usage field without include_usage');
    }
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '', refusal: null });
    assert.deepEqual(chunks.at(-1).choices[0], { index: 0, delta: {}, logprobs: null, finish_reason: 'stop' });
    for (const c of chunks.slice(1, -1)) assert.equal(c.choices[0].finish_reason, null);

    const expected = generateTokens(seedText('sim-large', ['stream me']), 7);
    assert.deepEqual(chunks.slice(1, -1).map((c) => c.choices[0].delta.content), expected);
    const whole = await (await postJson(url + PATH, { model: 'sim-large', messages: user('stream me') })).json();
    assert.equal(chunkText(chunks), whole.choices[0].message.content);
  } finally {
    await close();
  }
});

test('stream_options.include_usage: usage null on every chunk, then a choices:[] usage chunk before [DONE]', T, async () => {
  const { url, close } = await startSim();
  try {
    const { events } = await stream(url, {
      model: 'sim-small+tokens=4',
      messages: user('12345678'),
      stream_options: { include_usage: true },
    });
    assert.equal(events.at(-1).data, '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.prompt_tokens, 2);
    assert.equal(last.usage.completion_tokens, 4);
    assert.equal(last.usage.total_tokens, 6);
    for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
    assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
  } finally {
    await close();
  }
});

test('logprobs: each streamed token carries its logprobs and top_logprobs; the answer has them all', T, async () => {
  const { url, close } = await startSim();
  try {
    const body = { model: 'sim-small+tokens=5', messages: user('odds'), logprobs: true, top_logprobs: 3 };
    const { events } = await stream(url, body);
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    const tokens = chunks.slice(1, -1);
    assert.equal(tokens.length, 5);
    for (const c of tokens) {
      const [entry] = c.choices[0].logprobs.content;
      assert.equal(entry.token, c.choices[0].delta.content);
      assert.deepEqual(entry.bytes, [...new TextEncoder().encode(entry.token)]);
      assert.ok(entry.logprob < 0);
      assert.equal(entry.top_logprobs.length, 3);
      assert.equal(entry.top_logprobs[0].token, entry.token);
    }
    assert.equal(chunks[0].choices[0].logprobs, null);
    const res = await postJson(url + PATH, { ...body, stream: false });
    const answer = await res.json();
    const content = answer.choices[0].logprobs.content;
    assert.deepEqual(content, tokens.map((c) => c.choices[0].logprobs.content[0]));
    const plain = await postJson(url + PATH, { model: 'sim-small+tokens=5', messages: user('odds') });
    assert.equal((await plain.json()).choices[0].logprobs, null);
    const bad = await postJson(url + PATH, { model: 'sim-small', messages: user('odds'), top_logprobs: 2 });
    assert.equal(bad.status, 400);
    const over = await postJson(url + PATH, { model: 'sim-small', messages: user('odds'), logprobs: true, top_logprobs: 21 });
    assert.equal(over.status, 400);
  } finally {
    await close();
  }
});

test('tokens arrive incrementally, paced by interval', T, async () => {
  const { url, sim, close } = await startSim();
  try {
    const n = 8;
    const interval = 30;
    const { events, reads } = await stream(url, {
      model: `sim-small+tokens=${n}+interval=${interval}`,
      messages: user('pace'),
    });
    const tokenEvents = events.slice(1, 1 + n);
    const spread = tokenEvents.at(-1).at - tokenEvents[0].at;
    assert.ok(spread >= (n - 2) * interval, `spread ${spread.toFixed(1)} ms`);
    assert.ok(reads.length >= 3, `only ${reads.length} reads`);
    await waitFor(() => sim.requests[0].completed);
    const rec = sim.requests[0];
    assert.equal(rec.tokens_sent, n);
    assert.equal(rec.chunks_sent, n + 3);
    assert.ok(rec.finished_at - rec.first_byte_at >= (n - 2) * interval);
  } finally {
    await close();
  }
});

test('max_tokens / max_completion_tokens cap the answer with finish_reason "length"', T, async () => {
  const { url, close } = await startSim();
  try {
    const full = generateTokens(seedText('sim-small', ['cap']), 10);
    const res = await postJson(url + PATH, { model: 'sim-small+tokens=10', max_tokens: 3, messages: user('cap') });
    const body = await res.json();
    assert.equal(body.choices[0].finish_reason, 'length');
    assert.equal(body.choices[0].message.content, full.slice(0, 3).join(''));
    assert.equal(body.usage.completion_tokens, 3);

    const { events } = await stream(url, { model: 'sim-small+tokens=10', max_completion_tokens: 4, messages: user('cap') });
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    assert.equal(chunkText(chunks), full.slice(0, 4).join(''));
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'length');

    const exact = await (await postJson(url + PATH, { model: 'sim-small+tokens=3', max_tokens: 3, messages: user('cap') })).json();
    assert.equal(exact.choices[0].finish_reason, 'stop');
  } finally {
    await close();
  }
});

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather for a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'integer' }, unit: { type: 'string', enum: ['c', 'f'] } },
      required: ['city'],
    },
  },
};
const timeTool = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } } } } };

test('tool calls: non-stream message and streamed deltas assemble to the same valid JSON arguments', T, async () => {
  const { url, close } = await startSim();
  try {
    const req = { model: 'sim-small', messages: user('weather in Paris?'), tools: [weatherTool, timeTool] };
    const body = await (await postJson(url + PATH, req)).json();
    const choice = body.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    const [call] = choice.message.tool_calls;
    assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_weather');
    const args = JSON.parse(call.function.arguments);
    assert.deepEqual(Object.keys(args), ['city', 'days', 'unit']);
    assert.equal(typeof args.city, 'string');
    assert.ok(Number.isInteger(args.days));
    assert.ok(['c', 'f'].includes(args.unit));

    const { events } = await stream(url, req);
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    const first = chunks[0].choices[0].delta;
    assert.equal(first.role, 'assistant');
    assert.deepEqual(first.tool_calls, [{ index: 0, id: call.id, type: 'function', function: { name: 'get_weather', arguments: '' } }]);
    const fragments = chunks.slice(1, -1).map((c) => c.choices[0].delta.tool_calls[0]);
    assert.ok(fragments.length >= 3, 'several argument deltas');
    for (const f of fragments) assert.deepEqual(Object.keys(f), ['index', 'function']);
    assert.equal(fragments.map((f) => f.function.arguments).join(''), call.function.arguments);
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'tool_calls');
  } finally {
    await close();
  }
});

test('tool_choice: named function, "none", and a text answer after a tool result', T, async () => {
  const { url, close } = await startSim();
  try {
    const named = await (await postJson(url + PATH, {
      model: 'sim-small',
      messages: user('time?'),
      tools: [weatherTool, timeTool],
      tool_choice: { type: 'function', function: { name: 'get_time' } },
    })).json();
    assert.equal(named.choices[0].message.tool_calls[0].function.name, 'get_time');
    assert.deepEqual(Object.keys(JSON.parse(named.choices[0].message.tool_calls[0].function.arguments)), ['zone']);

    const none = await (await postJson(url + PATH, { model: 'sim-small', messages: user('x'), tools: [weatherTool], tool_choice: 'none' })).json();
    assert.equal(none.choices[0].finish_reason, 'stop');
    assert.equal(typeof none.choices[0].message.content, 'string');

    const after = await (await postJson(url + PATH, {
      model: 'sim-small',
      tools: [weatherTool],
      messages: [
        ...user('weather?'),
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      ],
    })).json();
    assert.equal(after.choices[0].finish_reason, 'stop');
  } finally {
    await close();
  }
});

test('echo returns the last user message verbatim (HTML untouched), streamed token by token', T, async () => {
  const { url, close } = await startSim();
  try {
    const text = '<script>alert(1)</script> & <b>bold</b>';
    const body = await (await postJson(url + PATH, { model: 'sim-small+echo', messages: user(text) })).json();
    assert.equal(body.choices[0].message.content, text);
    const { events } = await stream(url, { model: 'sim-small', messages: user(text) }, { 'x-sim-options': 'echo' });
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    assert.equal(chunks.length, 2 + text.split(' ').length);
    assert.equal(chunkText(chunks), text);
  } finally {
    await close();
  }
});

test('invalid requests get 400 in the OpenAI error shape', T, async () => {
  const { url, close } = await startSim();
  try {
    for (const bad of ['{"model": "sim-small", "messages": [', '[]', JSON.stringify({ model: 'sim-small' }),
      JSON.stringify({ model: 'sim-small+nope=1', messages: user('x') })]) {
      const res = await postJson(url + PATH, bad);
      assert.equal(res.status, 400, bad);
      const body = await res.json();
      assert.equal(body.error.type, 'invalid_request_error');
      assert.equal(typeof body.error.message, 'string');
      assert.equal(body.error.param, null);
    }
  } finally {
    await close();
  }
});

test('JSON mode answers JSON: one value per property of a json_schema, an object for json_object', T, async () => {
  const { url, close } = await startSim();
  try {
    const schema = {
      type: 'object',
      properties: { name: { type: 'string' }, age: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } },
      required: ['name', 'age', 'tags'],
    };
    const response_format = { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } };
    const body = { model: 'sim-small', messages: user('A person, please'), response_format };
    const whole = await (await postJson(url + PATH, body)).json();
    const value = JSON.parse(whole.choices[0].message.content);
    assert.deepEqual(Object.keys(value), ['name', 'age', 'tags']);
    assert.equal(typeof value.name, 'string');
    assert.ok(Number.isInteger(value.age));
    assert.equal(whole.choices[0].finish_reason, 'stop');
    const { events } = await stream(url, body);
    assert.equal(chunkText(events.slice(0, -1).map((e) => JSON.parse(e.data))), whole.choices[0].message.content);
    const plain = await (await postJson(url + PATH, { ...body, response_format: { type: 'json_object' } })).json();
    assert.equal(typeof JSON.parse(plain.choices[0].message.content).answer, 'string');
  } finally {
    await close();
  }
});
