// sim/test/tools.test.mjs — scripted tool calls (`/tool NAME {json}` lines), the answer after tool results, and tool_loop, for both providers.

import test from 'node:test';
import assert from 'node:assert/strict';
import { startSim, postJson, readSse } from '../testkit.mjs';
import { generateTokens, seedText } from '../text.mjs';

const T = { timeout: 5000 }; // every test is bounded
const OPENAI = '/v1/chat/completions';
const ANTHROPIC = '/v1/messages';

const openaiTools = [
  { type: 'function', function: { name: 'add_task', parameters: { type: 'object', properties: { title: { type: 'string' } }, required: ['title'] } } },
  { type: 'function', function: { name: 'list_tasks', parameters: { type: 'object', properties: { status: { type: 'string' } } } } },
];
const anthropicTools = [
  { name: 'add_task', input_schema: { type: 'object', properties: { title: { type: 'string' } }, required: ['title'] } },
  { name: 'list_tasks', input_schema: { type: 'object', properties: { status: { type: 'string' } } } },
];

// The second call's arguments are wrong for its schema (a number, an unknown key) and pass on as written.
const ADD = '{"title": "buy milk", "due": "tomorrow"}';
const LIST = '{"status":42}';
const TWO_CALLS = `Please do this.\n/tool add_task ${ADD}\n  /tool list_tasks ${LIST}\nthanks`;
const fragments = (raw) => Math.ceil(raw.length / 8);

async function sse(url, path, body) {
  const res = await postJson(url + path, { ...body, stream: true });
  assert.equal(res.status, 200);
  const out = await readSse(res);
  assert.equal(out.error, null);
  assert.equal(out.rest, '');
  return out.events;
}

/** OpenAI chunks (without [DONE]) of a streamed request. */
async function openaiChunks(url, body) {
  const events = await sse(url, OPENAI, body);
  assert.equal(events.at(-1).data, '[DONE]');
  return events.slice(0, -1).map((e) => JSON.parse(e.data));
}

test('OpenAI: /tool lines become tool_calls in order, arguments exactly as written, usage counting them', T, async () => {
  const { url, close } = await startSim();
  try {
    const req = { model: 'sim-small', messages: [{ role: 'system', content: 'Be useful.' }, { role: 'user', content: TWO_CALLS }], tools: openaiTools };
    const body = await (await postJson(url + OPENAI, req)).json();
    const choice = body.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    assert.equal(choice.logprobs, null);
    const calls = choice.message.tool_calls;
    assert.deepEqual(calls.map((c) => [c.type, c.function.name, c.function.arguments]), [
      ['function', 'add_task', ADD],
      ['function', 'list_tasks', LIST],
    ]);
    for (const c of calls) assert.match(c.id, /^call_[A-Za-z0-9]{24}$/);
    assert.notEqual(calls[0].id, calls[1].id);
    const completion = fragments(ADD) + fragments(LIST);
    assert.equal(body.usage.completion_tokens, completion);
    assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + completion);
    assert.equal(body.usage.prompt_tokens, Math.ceil(('Be useful.' + TWO_CALLS).length / 4));
  } finally {
    await close();
  }
});

test('OpenAI stream: each call opens with its id and name, then its arguments in several ordered pieces', T, async () => {
  const { url, close } = await startSim();
  try {
    const req = { model: 'sim-small', messages: [{ role: 'user', content: TWO_CALLS }], tools: openaiTools, stream_options: { include_usage: true } };
    const chunks = await openaiChunks(url, req);
    const head = chunks[0].choices[0].delta;
    assert.equal(head.role, 'assistant');
    assert.equal(head.content, null);
    const deltas = [head, ...chunks.slice(1).map((c) => c.choices[0]?.delta ?? {})].flatMap((d) => d.tool_calls ?? []);
    // Shape in order: header 0, pieces of 0, header 1, pieces of 1; nothing else carries tool_calls.
    const headers = deltas.filter((d) => d.id);
    assert.deepEqual(headers.map((d) => [d.index, d.type, d.function.name, d.function.arguments]), [
      [0, 'function', 'add_task', ''],
      [1, 'function', 'list_tasks', ''],
    ]);
    for (const h of headers) assert.match(h.id, /^call_[A-Za-z0-9]{24}$/);
    const order = deltas.map((d) => (d.id ? `h${d.index}` : `p${d.index}`));
    assert.deepEqual(order, ['h0', ...Array(fragments(ADD)).fill('p0'), 'h1', ...Array(fragments(LIST)).fill('p1')]);
    for (const d of deltas.filter((x) => !x.id)) assert.deepEqual(Object.keys(d), ['index', 'function']);
    const args = (i) => deltas.filter((d) => d.index === i).map((d) => d.function.arguments).join('');
    assert.equal(args(0), ADD);
    assert.equal(args(1), LIST);
    assert.ok(deltas.filter((d) => d.index === 0 && !d.id).length >= 3, 'arguments arrive in several pieces');

    const finish = chunks.at(-2).choices[0];
    assert.deepEqual(finish.delta, {});
    assert.equal(finish.finish_reason, 'tool_calls');
    assert.deepEqual(chunks.at(-1).choices, []);
    assert.equal(chunks.at(-1).usage.completion_tokens, fragments(ADD) + fragments(LIST));
  } finally {
    await close();
  }
});

test('Anthropic: /tool lines become tool_use blocks with stop_reason "tool_use", streamed as input_json_delta', T, async () => {
  const { url, close } = await startSim();
  try {
    const req = { model: 'sim-small', max_tokens: 100, messages: [{ role: 'user', content: [{ type: 'text', text: TWO_CALLS }] }], tools: anthropicTools };
    const body = await (await postJson(url + ANTHROPIC, req)).json();
    assert.equal(body.stop_reason, 'tool_use');
    assert.deepEqual(body.content.map((b) => [b.type, b.name, b.input]), [
      ['tool_use', 'add_task', JSON.parse(ADD)],
      ['tool_use', 'list_tasks', JSON.parse(LIST)],
    ]);
    for (const b of body.content) assert.match(b.id, /^toolu_01[A-Za-z0-9]{22}$/);
    assert.notEqual(body.content[0].id, body.content[1].id);
    assert.equal(body.usage.output_tokens, fragments(ADD) + fragments(LIST));

    const events = await sse(url, ANTHROPIC, req);
    assert.deepEqual(events.map((e) => e.event), [
      'message_start', 'content_block_start', 'ping',
      ...Array(fragments(ADD)).fill('content_block_delta'),
      'content_block_stop', 'content_block_start',
      ...Array(fragments(LIST)).fill('content_block_delta'),
      'content_block_stop', 'message_delta', 'message_stop',
    ]);
    const data = events.map((e) => JSON.parse(e.data));
    data.forEach((d, i) => assert.equal(d.type, events[i].event));
    const starts = data.filter((d) => d.type === 'content_block_start');
    assert.deepEqual(starts.map((s) => [s.index, s.content_block.type, s.content_block.name, s.content_block.input]), [
      [0, 'tool_use', 'add_task', {}],
      [1, 'tool_use', 'list_tasks', {}],
    ]);
    for (const s of starts) assert.match(s.content_block.id, /^toolu_01[A-Za-z0-9]{22}$/);
    assert.deepEqual(data.filter((d) => d.type === 'content_block_stop').map((d) => d.index), [0, 1]);
    const pieces = data.filter((d) => d.type === 'content_block_delta');
    for (const p of pieces) assert.equal(p.delta.type, 'input_json_delta');
    const json = (i) => pieces.filter((p) => p.index === i).map((p) => p.delta.partial_json).join('');
    assert.equal(json(0), ADD);
    assert.equal(json(1), LIST);
    assert.deepEqual(data.at(-2), { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: fragments(ADD) + fragments(LIST) } });
  } finally {
    await close();
  }
});

test('a /tool line with unparseable JSON or an unoffered tool is ignored; no usable line means a normal text answer', T, async () => {
  const { url, close } = await startSim();
  try {
    const mixed = '/tool add_task {"title": "x"\n/tool delete_everything {}\n/tool list_tasks {"status":"open"}';
    const o = await (await postJson(url + OPENAI, { model: 'sim-small', messages: [{ role: 'user', content: mixed }], tools: openaiTools })).json();
    assert.deepEqual(o.choices[0].message.tool_calls.map((c) => [c.function.name, c.function.arguments]), [['list_tasks', '{"status":"open"}']]);
    const a = await (await postJson(url + ANTHROPIC, { model: 'sim-small', max_tokens: 50, messages: [{ role: 'user', content: mixed }], tools: anthropicTools })).json();
    assert.deepEqual(a.content.map((b) => [b.name, b.input]), [['list_tasks', { status: 'open' }]]);

    for (const content of ['/tool add_task {"title": "x"', '/tool delete_everything {"id": 1}', '/tool add_task', '/tool add_task not json']) {
      const text = generateTokens(seedText('sim-small', [content]), 5).join('');
      // OpenAI: text, not even the sampled call that offered tools otherwise get.
      const body = await (await postJson(url + OPENAI, { model: 'sim-small+tokens=5', messages: [{ role: 'user', content }], tools: openaiTools })).json();
      assert.equal(body.choices[0].finish_reason, 'stop', content);
      assert.equal(body.choices[0].message.content, text, content);
      assert.equal(body.choices[0].message.tool_calls, undefined);
      const chunks = await openaiChunks(url, { model: 'sim-small+tokens=5', messages: [{ role: 'user', content }], tools: openaiTools });
      assert.equal(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), text);
      assert.ok(chunks.every((c) => c.choices[0].delta.tool_calls === undefined));

      const msg = await (await postJson(url + ANTHROPIC, { model: 'sim-small+tokens=5', max_tokens: 50, messages: [{ role: 'user', content }], tools: anthropicTools })).json();
      assert.equal(msg.stop_reason, 'end_turn', content);
      assert.deepEqual(msg.content, [{ type: 'text', text }]);
    }
    // No tools offered at all: a /tool line is plain text too.
    const bare = await (await postJson(url + ANTHROPIC, { model: 'sim-small', max_tokens: 50, messages: [{ role: 'user', content: '/tool add_task {}' }] })).json();
    assert.equal(bare.content[0].type, 'text');
    // tool_choice "none" wins over /tool lines.
    const none = await (await postJson(url + OPENAI, { model: 'sim-small', messages: [{ role: 'user', content: '/tool add_task {}' }], tools: openaiTools, tool_choice: 'none' })).json();
    assert.equal(none.choices[0].finish_reason, 'stop');
  } finally {
    await close();
  }
});

const long = 'r'.repeat(150) + 'é'.repeat(100);
const openaiAfter = (content) => [
  { role: 'user', content },
  { role: 'assistant', content: null, tool_calls: [
    { id: 'call_a', type: 'function', function: { name: 'add_task', arguments: ADD } },
    { id: 'call_b', type: 'function', function: { name: 'list_tasks', arguments: LIST } },
  ] },
  { role: 'tool', tool_call_id: 'call_a', content: '{"id":7,"title":"buy milk"}' },
  { role: 'tool', tool_call_id: 'call_b', content: [{ type: 'text', text: long }] },
];
const anthropicAfter = (content) => [
  { role: 'user', content },
  { role: 'assistant', content: [
    { type: 'tool_use', id: 'toolu_a', name: 'add_task', input: JSON.parse(ADD) },
    { type: 'tool_use', id: 'toolu_b', name: 'list_tasks', input: JSON.parse(LIST) },
  ] },
  { role: 'user', content: [
    { type: 'tool_result', tool_use_id: 'toolu_a', content: '{"id":7,"title":"buy milk"}' },
    { type: 'tool_result', tool_use_id: 'toolu_b', content: [{ type: 'text', text: long }], is_error: true },
  ] },
];
const DONE = `Done: {"id":7,"title":"buy milk"}\nDone: ${'r'.repeat(150)}${'é'.repeat(50)}`;

test('after tool results the answer is text quoting each result (200 characters), even when the user message had /tool lines', T, async () => {
  const { url, close } = await startSim();
  try {
    const o = { model: 'sim-small+tokens=3', messages: openaiAfter(TWO_CALLS), tools: openaiTools };
    const body = await (await postJson(url + OPENAI, o)).json();
    assert.equal(body.choices[0].finish_reason, 'stop');
    assert.equal(body.choices[0].message.content, DONE);
    assert.equal(body.usage.completion_tokens, DONE.split(' ').length);
    const chunks = await openaiChunks(url, o);
    assert.equal(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), DONE);
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');

    const a = { model: 'sim-small', max_tokens: 500, messages: anthropicAfter(TWO_CALLS), tools: anthropicTools };
    const msg = await (await postJson(url + ANTHROPIC, a)).json();
    assert.equal(msg.stop_reason, 'end_turn');
    assert.deepEqual(msg.content, [{ type: 'text', text: DONE }]);
    const events = await sse(url, ANTHROPIC, a);
    const deltas = events.filter((e) => e.event === 'content_block_delta').map((e) => JSON.parse(e.data).delta);
    assert.equal(deltas.map((d) => d.text).join(''), DONE);
    assert.equal(JSON.parse(events.at(-2).data).delta.stop_reason, 'end_turn');
  } finally {
    await close();
  }
});

test('tool_loop: after the results the model calls the same tools again with the same arguments', T, async () => {
  const { url, close } = await startSim();
  try {
    const o = await (await postJson(url + OPENAI, { model: 'sim-small+tool_loop', messages: openaiAfter('go'), tools: openaiTools })).json();
    assert.equal(o.choices[0].finish_reason, 'tool_calls');
    const calls = o.choices[0].message.tool_calls;
    assert.deepEqual(calls.map((c) => [c.function.name, c.function.arguments]), [['add_task', ADD], ['list_tasks', LIST]]);
    assert.ok(calls.every((c) => /^call_[A-Za-z0-9]{24}$/.test(c.id) && c.id !== 'call_a' && c.id !== 'call_b'));
    const chunks = await openaiChunks(url, { model: 'sim-small', messages: openaiAfter('go'), tools: openaiTools });
    assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop', 'without the option the loop ends');

    const events = await sse(url, ANTHROPIC, { model: 'sim-small', max_tokens: 100, messages: anthropicAfter('go'), tools: anthropicTools }, );
    assert.equal(JSON.parse(events.at(-2).data).delta.stop_reason, 'end_turn');
    const res = await postJson(url + ANTHROPIC, { model: 'sim-small', max_tokens: 100, messages: anthropicAfter('go'), tools: anthropicTools, stream: true }, { headers: { 'x-sim-options': 'tool_loop' } });
    const looped = (await readSse(res)).events.map((e) => JSON.parse(e.data));
    assert.equal(looped.at(-2).delta.stop_reason, 'tool_use');
    assert.deepEqual(looped.filter((d) => d.type === 'content_block_start').map((d) => d.content_block.name), ['add_task', 'list_tasks']);
    const json = looped.filter((d) => d.type === 'content_block_delta' && d.index === 0).map((d) => d.delta.partial_json).join('');
    assert.deepEqual(JSON.parse(json), JSON.parse(ADD));

    // A tool no longer offered is not called again: the loop ends in text.
    const gone = await (await postJson(url + OPENAI, { model: 'sim-small+tool_loop', messages: openaiAfter('go'), tools: [] })).json();
    assert.equal(gone.choices[0].message.content, DONE);
  } finally {
    await close();
  }
});

test('max_tokens cuts scripted tool arguments short with finish "length" / stop_reason "max_tokens"', T, async () => {
  const { url, close } = await startSim();
  try {
    const o = await (await postJson(url + OPENAI, { model: 'sim-small', max_tokens: 2, messages: [{ role: 'user', content: TWO_CALLS }], tools: openaiTools })).json();
    assert.equal(o.choices[0].finish_reason, 'length');
    assert.deepEqual(o.choices[0].message.tool_calls.map((c) => c.function.arguments), [ADD.slice(0, 16)]);
    const events = await sse(url, ANTHROPIC, { model: 'sim-small', max_tokens: 2, messages: [{ role: 'user', content: TWO_CALLS }], tools: anthropicTools });
    assert.deepEqual(events.map((e) => e.event), [
      'message_start', 'content_block_start', 'ping', 'content_block_delta', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop',
    ]);
    assert.equal(JSON.parse(events.at(-2).data).delta.stop_reason, 'max_tokens');
  } finally {
    await close();
  }
});

test('OpenAI: with tool_choice "auto" sent explicitly, a message without /tool lines is answered in text, one with them calls', T, async () => {
  const { url, close } = await startSim();
  try {
    const plain = { model: 'sim-small', messages: [{ role: 'user', content: 'hello there' }], tools: openaiTools, tool_choice: 'auto' };
    const text = (await (await postJson(url + OPENAI, plain)).json()).choices[0];
    assert.equal(text.finish_reason, 'stop');
    assert.equal(typeof text.message.content, 'string');
    assert.equal(text.message.tool_calls, undefined);
    const unset = { ...plain, tool_choice: undefined };
    assert.equal((await (await postJson(url + OPENAI, unset)).json()).choices[0].finish_reason, 'tool_calls', 'unset still samples a call');
    const scripted = { ...plain, messages: [{ role: 'user', content: TWO_CALLS }] };
    const calls = (await (await postJson(url + OPENAI, scripted)).json()).choices[0];
    assert.deepEqual(calls.message.tool_calls.map((c) => c.function.name), ['add_task', 'list_tasks']);
  } finally {
    await close();
  }
});

test('Anthropic: a forcing tool_choice always gets a call, scripted where allowed, else sampled from the schema', T, async () => {
  const { url, close } = await startSim();
  try {
    const ask = async (content, tool_choice) => (await postJson(url + ANTHROPIC, { model: 'sim-small', max_tokens: 200, messages: [{ role: 'user', content }], tools: anthropicTools, tool_choice })).json();
    const sampled = await ask('what next?', { type: 'any' });
    assert.equal(sampled.stop_reason, 'tool_use');
    assert.equal(sampled.content.length, 1);
    assert.equal(sampled.content[0].name, 'add_task');
    assert.equal(typeof sampled.content[0].input.title, 'string');
    const named = await ask(`/tool add_task ${ADD}`, { type: 'tool', name: 'list_tasks' });
    assert.deepEqual(named.content.map((b) => b.name), ['list_tasks'], 'the scripted call to another tool is not allowed');
    const scripted = await ask(`/tool add_task ${ADD}`, { type: 'tool', name: 'add_task' });
    assert.deepEqual(scripted.content[0].input, JSON.parse(ADD));
    assert.equal((await ask('hello', { type: 'auto' })).stop_reason, 'end_turn');
  } finally {
    await close();
  }
});
