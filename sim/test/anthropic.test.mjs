// sim/test/anthropic.test.mjs — Anthropic Messages over real HTTP: message shape, SSE event order, caps, validation.

import test from 'node:test';
import assert from 'node:assert/strict';
import { startSim, postJson, readSse, waitFor } from '../testkit.mjs';
import { generateTokens, seedText } from '../text.mjs';

const T = { timeout: 5000 }; // every test is bounded
const PATH = '/v1/messages';
const user = (content) => [{ role: 'user', content }];

test('non-stream message has the Anthropic shape; system text is part of the seed and the usage', T, async () => {
  const { url, sim, close } = await startSim();
  try {
    const res = await postJson(url + PATH, {
      model: 'sim-small+tokens=5',
      max_tokens: 100,
      system: [{ type: 'text', text: 'You are terse.' }],
      messages: user([{ type: 'text', text: 'Hi!' }]),
    });
    assert.equal(res.status, 200);
    assert.ok(res.headers.get('request-id'));
    const body = await res.json();
    assert.match(body.id, /^msg_/);
    const text = generateTokens(seedText('sim-small', ['You are terse.', 'Hi!']), 5).join('');
    assert.deepEqual(
      { ...body, id: null, usage: null },
      { id: null, type: 'message', role: 'assistant', model: 'sim-small', content: [{ type: 'text', text }],
        stop_reason: 'end_turn', stop_sequence: null, usage: null },
    );
    assert.equal(body.usage.input_tokens, Math.ceil('You are terse.Hi!'.length / 4));
    assert.equal(body.usage.output_tokens, 5);
    await waitFor(() => sim.requests[0]?.completed);
    assert.equal(sim.requests[0].path, PATH);
  } finally {
    await close();
  }
});

test('stream follows the real event sequence and matches the non-stream text', T, async () => {
  const { url, close } = await startSim();
  try {
    const req = { model: 'sim-large+tokens=6', max_tokens: 64, messages: user('stream please'), stream: true };
    const res = await postJson(url + PATH, req);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/event-stream/);
    const { events, error, rest } = await readSse(res);
    assert.equal(error, null);
    assert.equal(rest, '');
    assert.deepEqual(events.map((e) => e.event), [
      'message_start', 'content_block_start', 'ping',
      ...Array(6).fill('content_block_delta'),
      'content_block_stop', 'message_delta', 'message_stop',
    ]);
    const data = events.map((e) => JSON.parse(e.data));
    data.forEach((d, i) => assert.equal(d.type, events[i].event));
    const start = data[0].message;
    assert.deepEqual(start.content, []);
    assert.equal(start.model, 'sim-large');
    assert.equal(start.stop_reason, null);
    assert.equal(start.usage.input_tokens, Math.ceil('stream please'.length / 4));
    assert.equal(start.usage.output_tokens, 1);
    assert.deepEqual(data[1], { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    const deltas = data.slice(3, 9);
    for (const d of deltas) assert.equal(d.delta.type, 'text_delta');
    assert.deepEqual(data[9], { type: 'content_block_stop', index: 0 });
    assert.deepEqual(data[10], { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 6 } });

    const streamed = deltas.map((d) => d.delta.text).join('');
    const whole = await (await postJson(url + PATH, { ...req, stream: false })).json();
    assert.equal(streamed, whole.content[0].text);
    assert.equal(streamed, generateTokens(seedText('sim-large', ['stream please']), 6).join(''));
  } finally {
    await close();
  }
});

test('max_tokens caps the answer with stop_reason "max_tokens"', T, async () => {
  const { url, close } = await startSim();
  try {
    const req = { model: 'sim-small+tokens=10', max_tokens: 4, messages: user('cap') };
    const body = await (await postJson(url + PATH, req)).json();
    assert.equal(body.stop_reason, 'max_tokens');
    assert.equal(body.usage.output_tokens, 4);
    const { events } = await readSse(await postJson(url + PATH, { ...req, stream: true }));
    const delta = JSON.parse(events.find((e) => e.event === 'message_delta').data);
    assert.equal(delta.delta.stop_reason, 'max_tokens');
    assert.equal(delta.usage.output_tokens, 4);
    assert.equal(events.filter((e) => e.event === 'content_block_delta').length, 4);
  } finally {
    await close();
  }
});

test('missing max_tokens and malformed JSON get 400 invalid_request_error in the Anthropic shape', T, async () => {
  const { url, close } = await startSim();
  try {
    for (const bad of [JSON.stringify({ model: 'sim-small', messages: user('x') }), '{"model":']) {
      const res = await postJson(url + PATH, bad);
      assert.equal(res.status, 400);
      const body = await res.json();
      assert.equal(body.type, 'error');
      assert.equal(body.error.type, 'invalid_request_error');
      assert.equal(typeof body.error.message, 'string');
    }
    const res = await postJson(url + PATH, { model: 'sim-small', messages: user('x') });
    assert.match((await res.json()).error.message, /max_tokens/);
  } finally {
    await close();
  }
});
