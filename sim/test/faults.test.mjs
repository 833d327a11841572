// sim/test/faults.test.mjs — fault modes over real HTTP: status/retry_after, fail_times, delay, cut, malformed, hang, aborts.

import test from 'node:test';
import assert from 'node:assert/strict';
import { startSim, postJson, readSse, tryJson, waitFor, sleep } from '../testkit.mjs';

const T = { timeout: 5000 }; // every test is bounded
const OPENAI = '/v1/chat/completions';
const ANTHROPIC = '/v1/messages';
const user = (content) => [{ role: 'user', content }];
const chat = (model, extra = {}) => ({ model, messages: user('fault test'), ...extra });

test('status=429 with retry_after, in both provider shapes', T, async () => {
  const { url, sim, close } = await startSim();
  try {
    const res = await postJson(url + OPENAI, chat('sim-small+status=429+retry_after=7', { stream: true }));
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '7');
    const body = await res.json();
    assert.equal(body.error.code, 'rate_limit_exceeded');
    assert.equal(typeof body.error.message, 'string');

    const res2 = await postJson(url + ANTHROPIC, chat('sim-small+status=429+retry_after=1', { max_tokens: 9 }));
    assert.equal(res2.status, 429);
    assert.equal(res2.headers.get('retry-after'), '1');
    assert.deepEqual((await res2.json()).error.type, 'rate_limit_error');

    const res3 = await postJson(url + ANTHROPIC, chat('sim-small+status=529', { max_tokens: 9 }));
    assert.equal(res3.status, 529);
    assert.equal((await res3.json()).error.type, 'overloaded_error');
    await waitFor(() => sim.requests.length === 3 && sim.requests.every((r) => r.completed));
    assert.deepEqual(sim.requests.map((r) => r.status), [429, 429, 529]);
  } finally {
    await close();
  }
});

test('status=500 / 503 in the OpenAI shape (server_error) and Anthropic api_error', T, async () => {
  const { url, close } = await startSim();
  try {
    for (const code of [500, 503]) {
      const res = await postJson(url + OPENAI, chat(`sim-small+status=${code}`));
      assert.equal(res.status, code);
      assert.equal((await res.json()).error.type, 'server_error');
    }
    const res = await postJson(url + ANTHROPIC, chat('sim-small+status=500', { max_tokens: 5 }));
    assert.equal(res.status, 500);
    assert.deepEqual(Object.keys(await res.json()), ['type', 'error', 'request_id']);
  } finally {
    await close();
  }
});

test('fail_times=K fails the first K identical requests, then succeeds; counters are per prompt', T, async () => {
  const { url, close } = await startSim();
  try {
    const model = 'sim-small+status=503+fail_times=2+tokens=3';
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const res = await postJson(url + OPENAI, chat(model));
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    assert.deepEqual(statuses, [503, 503, 200, 200]);
    const other = await postJson(url + OPENAI, { model, messages: user('another prompt') });
    assert.equal(other.status, 503);
    const viaHeader = await postJson(url + ANTHROPIC, chat('sim-small', { max_tokens: 5 }), {
      headers: { 'x-sim-options': 'fail_times=1' },
    });
    assert.equal(viaHeader.status, 500, 'fail_times without status defaults to 500');
  } finally {
    await close();
  }
});

test('delay=MS holds back the first byte', T, async () => {
  const { url, sim, close } = await startSim();
  try {
    const t0 = performance.now();
    const res = await postJson(url + OPENAI, chat('sim-small+delay=150+tokens=2', { stream: true }));
    assert.ok(performance.now() - t0 >= 140, 'headers not before the delay');
    await readSse(res);
    await waitFor(() => sim.requests[0].completed);
    assert.ok(sim.requests[0].first_byte_at - sim.requests[0].received_at >= 145);
  } finally {
    await close();
  }
});

test('cut=N streams N tokens then drops the connection (no finish, no [DONE])', T, async () => {
  const { url, sim, close } = await startSim();
  try {
    const res = await postJson(url + OPENAI, chat('sim-small+tokens=10+cut=3', { stream: true }));
    assert.equal(res.status, 200);
    const { events, error } = await readSse(res);
    assert.ok(error, 'the body read fails on the cut connection');
    assert.equal(events.length, 4, 'role chunk + 3 tokens');
    assert.ok(!events.some((e) => e.data === '[DONE]'));
    assert.ok(events.every((e) => JSON.parse(e.data).choices[0].finish_reason === null));

    const res2 = await postJson(url + ANTHROPIC, chat('sim-small+tokens=10+cut=2', { max_tokens: 50, stream: true }));
    const out2 = await readSse(res2);
    assert.ok(out2.error);
    assert.ok(!out2.events.some((e) => e.event === 'message_stop'));
    assert.equal(out2.events.filter((e) => e.event === 'content_block_delta').length, 2);

    await assert.rejects(postJson(url + OPENAI, chat('sim-small+cut=0')), 'non-stream cut drops before answering');
    await waitFor(() => sim.requests.length === 3 && sim.requests.every((r) => r.finished_at));
    for (const rec of sim.requests) {
      assert.equal(rec.completed, false);
      assert.equal(rec.aborted, false);
    }
    assert.deepEqual(sim.requests.map((r) => r.tokens_sent), [3, 2, 0]);
  } finally {
    await close();
  }
});

test('malformed=N corrupts exactly the Nth event and the stream carries on', T, async () => {
  const { url, close } = await startSim();
  try {
    const res = await postJson(url + OPENAI, chat('sim-small+tokens=5+malformed=3', { stream: true }));
    const { events, error } = await readSse(res);
    assert.equal(error, null);
    assert.equal(events.length, 1 + 5 + 1 + 1);
    const bad = events.map((e, i) => [i, e.data]).filter(([, d]) => d !== '[DONE]' && tryJson(d) === undefined);
    assert.deepEqual(bad.map(([i]) => i), [2]);
    assert.equal(events.at(-1).data, '[DONE]');

    const res2 = await postJson(url + ANTHROPIC, chat('sim-small+tokens=3+malformed=1', { max_tokens: 9, stream: true }));
    const out2 = await readSse(res2);
    assert.equal(out2.events[0].event, 'message_start');
    assert.equal(tryJson(out2.events[0].data), undefined);
    assert.ok(out2.events.slice(1).every((e) => tryJson(e.data)));
    assert.equal(out2.events.at(-1).event, 'message_stop');
  } finally {
    await close();
  }
});

test('hang sends headers then nothing; a client abort is recorded as aborted', T, async () => {
  const { url, sim, close } = await startSim();
  try {
    for (const stream of [true, false]) {
      const ac = new AbortController();
      const res = await postJson(url + OPENAI, chat('sim-small+hang', { stream }), { signal: ac.signal });
      assert.equal(res.status, 200);
      setTimeout(() => ac.abort(), 200);
      const t0 = performance.now();
      await assert.rejects(res.text());
      assert.ok(performance.now() - t0 >= 150);
    }
    await waitFor(() => sim.requests.length === 2 && sim.requests.every((r) => r.aborted));
    for (const rec of sim.requests) {
      assert.equal(rec.completed, false);
      assert.equal(rec.chunks_sent, 0);
      assert.ok(rec.first_byte_at && rec.finished_at - rec.first_byte_at >= 150);
    }
  } finally {
    await close();
  }
});

test('client abort mid-stream is recorded and stops generation', T, async () => {
  const { url, sim, close } = await startSim();
  try {
    const ac = new AbortController();
    const total = 50;
    const res = await postJson(url + ANTHROPIC, chat(`sim-small+tokens=${total}+interval=10`, { max_tokens: 100, stream: true }), {
      signal: ac.signal,
    });
    const { events } = await readSse(res, (ev, all) => all.length >= 6);
    assert.equal(events.length, 6);
    ac.abort();
    const rec = await waitFor(() => sim.requests[0].aborted && sim.requests[0]);
    const sentAtAbort = rec.tokens_sent;
    await sleep(60);
    assert.equal(rec.tokens_sent, sentAtAbort, 'no tokens generated after the abort');
    assert.ok(rec.tokens_sent < total);
    assert.ok(rec.chunks_sent < total + 6);
    assert.equal(rec.completed, false);
  } finally {
    await close();
  }
});

test('pad_kib=N pads a whole answer to over N KiB; streams are unchanged', T, async () => {
  const { url, close } = await startSim();
  try {
    const res = await postJson(url + OPENAI, chat('sim-small+tokens=3+pad_kib=64'));
    const text = await res.text();
    assert.equal(res.status, 200);
    assert.ok(text.length > 64 * 1024, `${text.length} bytes`);
    const body = JSON.parse(text);
    assert.equal(body.sim_padding.length, 64 * 1024);
    assert.equal(body.usage.completion_tokens, 3, 'still a whole answer');
    const streamed = await readSse(await postJson(url + OPENAI, chat('sim-small+tokens=3+pad_kib=64', { stream: true })));
    assert.ok(streamed.events.every((e) => !e.data.includes('sim_padding')));
  } finally {
    await close();
  }
});

test('garbage answers a 200 that is not JSON, in both providers', T, async () => {
  const { url, close } = await startSim();
  try {
    for (const [path, extra] of [[OPENAI, {}], [ANTHROPIC, { max_tokens: 5 }]]) {
      const res = await postJson(url + path, chat('sim-small+garbage', extra));
      assert.equal(res.status, 200);
      const text = await res.text();
      assert.match(text, /^<html>/);
      assert.equal(tryJson(text), undefined);
    }
  } finally {
    await close();
  }
});

test('no_usage leaves usage out of answers and streams, even when the client asks for it', T, async () => {
  const { url, close } = await startSim();
  try {
    const whole = await (await postJson(url + OPENAI, chat('sim-small+tokens=3+no_usage'))).json();
    assert.equal(whole.usage, undefined);
    assert.equal(whole.choices[0].message.content.split(' ').length, 3);
    const streamed = await readSse(await postJson(url + OPENAI, chat('sim-small+tokens=3+no_usage', { stream: true, stream_options: { include_usage: true } })));
    const chunks = streamed.events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data));
    assert.ok(chunks.length >= 5 && chunks.every((c) => !c.usage), 'no usage chunk');
    assert.equal(streamed.events.at(-1).data, '[DONE]');
    const message = await (await postJson(url + ANTHROPIC, chat('sim-small+tokens=3+no_usage', { max_tokens: 9 }))).json();
    assert.equal(message.usage, undefined);
    const events = (await readSse(await postJson(url + ANTHROPIC, chat('sim-small+tokens=3+no_usage', { max_tokens: 9, stream: true })))).events;
    assert.ok(events.length > 5 && events.every((e) => !e.data.includes('"usage"')));
  } finally {
    await close();
  }
});
