// Streamed pass-through calls are billed from the upstream's own usage: the gateway always asks
// an OpenAI-compatible upstream for it, hands a client that did not ask the stream it would
// have had from a direct call (no usage event, no "usage":null), and reads the usage at the
// stream's end however long the stream is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api, SIM } from '../support/client.mjs';
import { registerUser } from '../support/accounts.mjs';
import { simRequests, eventually } from '../support/sim.mjs';
import { execSql } from '../support/stack.mjs';

const unique = (text) => `${text} [${randomBytes(4).toString('hex')}]`;
const SMALL = 'sim-small+tokens=24+interval=15';
const LONG = 'sim-small+tokens=3000+interval=0';
const tools = [{
  type: 'function',
  function: {
    name: 'book_flight',
    parameters: {
      type: 'object',
      properties: { from: { type: 'string' }, to: { type: 'string' }, seats: { type: 'integer' }, notes: { type: 'string' } },
    },
  },
}];

async function keyedUser() {
  const u = await registerUser();
  const key = await api('POST', '/api/v1/keys', { token: u.access_token, json: { name: 'usage' } });
  return { ...u, key: key.body.key };
}

/** A streamed call's raw text from `url` (the gateway, or the simulator directly). */
async function streamed(url, token, body) {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ ...body, stream: true }),
  });
  assert.equal(res.status, 200);
  const raw = await res.text();
  const data = raw.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
  assert.equal(data.at(-1), '[DONE]', 'the stream ends normally');
  return { raw, chunks: data.slice(0, -1).map((d) => JSON.parse(d)) };
}

/** The same call made straight to the simulator, with the upstream's model name. */
const direct = (upstream, body) => streamed(SIM, null, { ...body, model: upstream });

/** What differs between two answers to the same call: each one's id and time. */
const normalized = (raw) => raw.replace(/"id":"chatcmpl-[^"]*"/g, '"id":"-"').replace(/"created":\d+/g, '"created":0');

/** The usage the simulator reports at the end of its stream with include_usage. */
async function upstreamUsage(upstream, body) {
  const { chunks } = await direct(upstream, { ...body, stream_options: { include_usage: true } });
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  return last.usage;
}

/** The user's usage records, oldest first, once there are `n`. */
const records = (user, n) => eventually(async () => {
  const [r] = await execSql(process.env.EDGECHAT_PERSIST_DIR,
    `SELECT model, status, prompt_tokens, completion_tokens, is_usage_estimated FROM usage_records WHERE user_id = '${user.user.user_id}' ORDER BY created_at`);
  return r.results.length >= n ? r.results : null;
}, { what: `${n} usage records`, timeoutMs: 10000 });

test('a streamed tool call without include_usage is billed the upstream usage; the client sees no usage', async () => {
  const u = await keyedUser();
  const content = unique('Book me a flight to Lisbon');
  const body = { model: 'sim-small', messages: [{ role: 'user', content }], tools };
  const got = await streamed(process.env.EDGECHAT_URL, u.key, body);
  const calls = got.chunks.flatMap((c) => c.choices[0]?.delta?.tool_calls ?? []);
  assert.equal(calls[0].function.name, 'book_flight');
  assert.ok(!got.raw.includes('"usage"'), 'no usage member anywhere in the client stream');
  assert.ok(got.chunks.every((c) => c.choices.length === 1), 'no usage chunk');

  const [sent] = await simRequests(content);
  assert.equal(sent.body.stream_options?.include_usage, true, 'the gateway asked the upstream for usage');
  // Exactly what the same call straight to the upstream gives, but for its id and time.
  const plain = await direct(SMALL, body);
  assert.equal(normalized(got.raw), normalized(plain.raw));

  const usage = await upstreamUsage(SMALL, body);
  assert.ok(usage.completion_tokens > 0);
  const [row] = await records(u, 1);
  assert.deepEqual(row, {
    model: 'sim-small',
    status: 'complete',
    prompt_tokens: usage.prompt_tokens,
    completion_tokens: usage.completion_tokens,
    is_usage_estimated: 0,
  });
});

test('the client\'s stream_options are kept; include_usage false is as unset; a client that asked gets the stream untouched', async () => {
  const u = await keyedUser();
  const refused = unique('No usage for me');
  const body = { model: 'sim-small', messages: [{ role: 'user', content: refused }], stream_options: { include_usage: false } };
  const got = await streamed(process.env.EDGECHAT_URL, u.key, body);
  assert.ok(!got.raw.includes('"usage"'));
  const [sent] = await simRequests(refused);
  assert.deepEqual(sent.body.stream_options, { include_usage: true });

  const asked = unique('Usage please');
  const askedBody = { model: 'sim-small', messages: [{ role: 'user', content: asked }], stream_options: { include_usage: true } };
  const mine = await streamed(process.env.EDGECHAT_URL, u.key, askedBody);
  const upstream = await direct(SMALL, askedBody);
  assert.equal(normalized(mine.raw), normalized(upstream.raw), 'the usage chunk and every "usage":null as the upstream sent them');
  assert.ok(mine.chunks.slice(0, -1).every((c) => c.usage === null));
  assert.equal(mine.chunks.at(-1).usage.completion_tokens, 24);

  const rows = await records(u, 2);
  assert.deepEqual(rows.map((r) => [r.completion_tokens, r.is_usage_estimated]), [[24, 0], [24, 0]]);
});

test('a stream of over 4 MiB is billed the usage at its end, whether the client asked for it or not', { timeout: 60_000 }, async () => {
  const u = await keyedUser();
  const contents = [unique('A long answer with odds'), unique('Another long answer with odds')];
  const bodies = [
    { model: 'long', messages: [{ role: 'user', content: contents[0] }], logprobs: true, top_logprobs: 20, stream_options: { include_usage: true } },
    { model: 'long', messages: [{ role: 'user', content: contents[1] }], logprobs: true, top_logprobs: 20 },
  ];
  const expected = [];
  for (const body of bodies) {
    const got = await streamed(process.env.EDGECHAT_URL, u.key, body);
    assert.ok(got.raw.length > 4 * 1024 * 1024, `${got.raw.length} bytes streamed`);
    const last = got.chunks.at(-1);
    if (body.stream_options) assert.equal(last.usage.completion_tokens, 3000, 'the client asked: its usage chunk is there');
    else assert.ok(!got.raw.includes('"usage"'), 'the client did not ask: no usage');
    const { stream_options: _, ...plain } = body;
    expected.push(await upstreamUsage(LONG, plain));
  }
  const rows = await records(u, 2);
  assert.deepEqual(rows, expected.map((usage) => ({
    model: 'long',
    status: 'complete',
    prompt_tokens: usage.prompt_tokens,
    completion_tokens: usage.completion_tokens,
    is_usage_estimated: 0,
  })));
  assert.equal(expected[0].completion_tokens, 3000);
});
