// Billing integrity of the gateway: a failed call is never free (an answer over the size
// limit, an undecodable answer, a cut stream, a client leaving), estimates count everything
// billed (tool calls, tool definitions, image parts), and a request body is parsed without
// amplification. Runs against workers of its own in bare workerd, with fault routes to the
// simulator and direct reads of the usage records.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api as call } from '../support/client.mjs';
import { PASSWORD, uniqueEmail } from '../support/accounts.mjs';
import { eventually } from '../support/sim.mjs';
import { simVars, TEST_VARS } from '../support/stack.mjs';
import { startBareWorker } from '../support/miniflare.mjs';

/** A tool whose arguments stream in many fragments (the simulator sends 8 characters each). */
const WEATHER = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather of a city over the next days.',
    parameters: {
      type: 'object',
      properties: Object.fromEntries(['city', 'country', 'region', 'street', 'unit', 'lang', 'note', 'source'].map((k) => [k, { type: 'string' }])),
    },
  },
};

const ROUTES = {
  ...JSON.parse(TEST_VARS.MODEL_ROUTES).models,
  // A whole answer of about 5 MiB: over the gateway's 4 MiB limit.
  huge: { provider: 'openai', upstream: 'sim-small+tokens=3+pad_kib=5000' },
  garbage: { provider: 'openai', upstream: 'sim-small+garbage' },
  'claude-cut': { provider: 'anthropic', upstream: 'sim-claude+tokens=20+cut=5+interval=10' },
  'slow-tools': { provider: 'openai', upstream: 'sim-small+interval=150' },
  'no-usage': { provider: 'openai', upstream: 'sim-small+tokens=6+interval=5+no_usage' },
};

let worker;
let BASE;
before(async () => {
  worker = await startBareWorker(simVars({ MODEL_ROUTES: JSON.stringify({ default: 'sim-small', models: ROUTES }) }));
  BASE = worker.url;
});
after(() => worker?.stop());

const api = (method, path, opts = {}) => call(method, path, { base: BASE, ...opts });
const unique = (t) => `${t} [${randomBytes(4).toString('hex')}]`;

async function registerUser(base = BASE) {
  const res = await call('POST', '/api/v1/auth/register', { base, json: { email: uniqueEmail('billing'), password: PASSWORD } });
  assert.equal(res.status, 201, res.text);
  return res.body;
}

/** The user's usage records of `source`, oldest first, once there are `count`. */
async function usageRecords(userId, count, source = 'gateway') {
  return eventually(async () => {
    const r = await worker.db
      .prepare('SELECT model, status, prompt_tokens, completion_tokens, is_usage_estimated FROM usage_records WHERE user_id = ? AND source = ? ORDER BY created_at')
      .bind(userId, source)
      .all();
    return r.results.length >= count ? r.results : null;
  }, { what: `${count} ${source} usage records`, timeoutMs: 20000 });
}

/** A streamed gateway call read to its end (or until `abortAfterMs`); the text received. */
async function stream(token, json, abortAfterMs) {
  const controller = new AbortController();
  const timer = abortAfterMs ? setTimeout(() => controller.abort(), abortAfterMs) : null;
  let text = '';
  try {
    const res = await fetch(`${BASE}/v1/chat/completions`, {
      method: 'POST', signal: controller.signal,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ ...json, stream: true }),
    });
    assert.equal(res.status, 200);
    for await (const chunk of res.body) text += Buffer.from(chunk).toString();
  } catch (err) {
    // An abort, or the connection reset where a passed-through upstream broke off.
    if (err.name !== 'AbortError' && !text) throw err;
  } finally {
    clearTimeout(timer);
  }
  return text;
}

const tokens = (r) => r.prompt_tokens + r.completion_tokens;

test('an answer over the size limit is charged what was reserved, recorded as too_large', async () => {
  const u = await registerUser();
  const res = await api('POST', '/v1/chat/completions', {
    token: u.access_token,
    json: { model: 'huge', max_tokens: 50, messages: [{ role: 'user', content: unique('a very long answer') }] },
  });
  assert.equal(res.status, 502, res.text.slice(0, 300));
  assert.equal(res.body.error.code, 'upstream_error');
  const [r] = await usageRecords(u.user.user_id, 1);
  assert.equal(r.status, 'too_large');
  assert.ok(r.prompt_tokens > 0, 'the prompt estimate');
  assert.ok(r.completion_tokens >= 50, `the output cap that was reserved (${r.completion_tokens})`);
  assert.equal(r.is_usage_estimated, 1);
});

test('an answer that is not the provider\'s JSON is charged what was reserved, recorded as undecodable', async () => {
  const u = await registerUser();
  const res = await api('POST', '/v1/chat/completions', {
    token: u.access_token,
    json: { model: 'garbage', max_tokens: 40, messages: [{ role: 'user', content: unique('answer in html') }] },
  });
  assert.equal(res.status, 502, res.text);
  const [r] = await usageRecords(u.user.user_id, 1);
  assert.equal(r.status, 'undecodable');
  assert.ok(r.completion_tokens >= 40 && r.prompt_tokens > 0, JSON.stringify(r));
});

test('a stream cut off by its upstream is charged what arrived, recorded as cut, passed through or translated', async () => {
  const u = await registerUser();
  const passed = await stream(u.access_token, { model: 'cut', messages: [{ role: 'user', content: unique('cut me off') }] });
  assert.doesNotMatch(passed, /\[DONE\]/);
  const translated = await stream(u.access_token, { model: 'claude-cut', messages: [{ role: 'user', content: unique('cut me off too') }] });
  assert.match(translated, /"code":"upstream_error"/, 'a translated stream ends with an error event');
  const rows = await usageRecords(u.user.user_id, 2);
  assert.deepEqual(rows.map((r) => [r.model, r.status]), [['cut', 'cut'], ['claude-cut', 'cut']]);
  for (const r of rows) {
    assert.ok(r.prompt_tokens > 0, `${r.model}: the prompt`);
    assert.ok(r.completion_tokens >= 2, `${r.model}: the 5 tokens that arrived (${r.completion_tokens})`);
  }
});

test('a chat turn whose stream is cut off is charged what arrived, recorded as cut', async () => {
  const u = await registerUser();
  const conv = (await api('POST', '/api/v1/conversations', { token: u.access_token, json: { model: 'cut' } })).body;
  const res = await api('POST', `/api/v1/conversations/${conv.conversation_id}/messages`, {
    token: u.access_token, json: { content: unique('a turn cut short') },
  });
  assert.equal(res.status, 502, res.text);
  const [r] = await usageRecords(u.user.user_id, 1, 'chat');
  assert.equal(r.status, 'cut');
  assert.ok(r.prompt_tokens > 0 && r.completion_tokens > 0, JSON.stringify(r));
});

test('a client leaving a tool-call stream is charged the arguments that arrived, recorded as cancelled', async () => {
  const u = await registerUser();
  const text = await stream(u.access_token, {
    model: 'slow-tools', tools: [WEATHER], messages: [{ role: 'user', content: unique('weather, slowly') }],
  }, 1000);
  const fragments = (text.match(/"arguments":"/g) ?? []).length;
  assert.ok(fragments >= 3, `argument fragments arrived before leaving (${fragments})`);
  assert.doesNotMatch(text, /\[DONE\]/, 'the client left before the end');
  const [r] = await usageRecords(u.user.user_id, 1);
  assert.equal(r.status, 'cancelled');
  assert.ok(r.prompt_tokens > 0);
  // The header names the tool; each later fragment carries 8 characters of arguments.
  assert.ok(r.completion_tokens >= 3, `the name and arguments received are counted (${r.completion_tokens})`);
});

test('a tool-call answer from an upstream that reports no usage is estimated from its name and arguments', async () => {
  const u = await registerUser();
  const json = { model: 'no-usage', tools: [WEATHER], tool_choice: 'required', messages: [{ role: 'user', content: unique('weather?') }] };
  const res = await api('POST', '/v1/chat/completions', { token: u.access_token, json });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.usage, undefined, 'the upstream reported no usage');
  const call = res.body.choices[0].message.tool_calls[0].function;
  const streamed = await stream(u.access_token, json);
  assert.match(streamed, /"tool_calls"/);
  const rows = await usageRecords(u.user.user_id, 2);
  const least = Math.ceil((call.name.length + call.arguments.length) / 4);
  for (const r of rows) {
    assert.equal(r.status, 'complete');
    assert.equal(r.is_usage_estimated, 1);
    assert.ok(r.completion_tokens >= least, `${r.completion_tokens} >= ${least}: name and arguments counted`);
  }
});

test('an estimated prompt counts tool definitions and image parts', async () => {
  const u = await registerUser();
  const content = unique('What is in this picture?');
  const send = (json) => api('POST', '/v1/chat/completions', { token: u.access_token, json: { model: 'no-usage', ...json } });
  const plain = await send({ messages: [{ role: 'user', content }] });
  const tools = await send({ messages: [{ role: 'user', content }], tools: [WEATHER], tool_choice: 'none' });
  const image = await send({ messages: [{ role: 'user', content: [{ type: 'text', text: content }, { type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }] }] });
  for (const res of [plain, tools, image]) assert.equal(res.status, 200, res.text);
  const [p, t, i] = await usageRecords(u.user.user_id, 3);
  for (const r of [p, t, i]) assert.equal(r.is_usage_estimated, 1);
  const schema = Math.ceil(JSON.stringify([WEATHER]).length / 4);
  assert.ok(t.prompt_tokens >= p.prompt_tokens + schema, `tools: ${t.prompt_tokens} vs ${p.prompt_tokens} + ${schema}`);
  assert.ok(i.prompt_tokens >= p.prompt_tokens + 85, `an image part: ${i.prompt_tokens} vs ${p.prompt_tokens}`);
});

test('1 MiB bodies of tiny parts are read without growing the wasm memory past a few MiB', async (t) => {
  // A worker of its own: wasm memory only grows, so it must not have served anything else.
  const fresh = await startBareWorker(simVars());
  t.after(() => fresh.stop());
  const u = await registerUser(fresh.url);
  const baseline = await eventually(() => fresh.wasmMemoryKib(), { what: 'a request log line' });
  const fill = (item, room) => Array(Math.floor(room / (item.length + 1))).fill(item).join(',');
  const room = 1024 * 1024 - 200;
  const bodies = [
    [`{"model":"sim-small","messages":[{"role":"user","content":[${fill('{}', room)}]}]}`, 'messages[0].content'],
    [`{"model":"sim-small","messages":[${fill('1', room)}]}`, 'messages[0]'],
    [`{"model":"sim-small","messages":[{"role":"user","content":"x"}],"tools":[${fill('{}', room)}]}`, 'tools[0]'],
  ];
  for (const [body, param] of bodies) {
    assert.ok(body.length <= 1024 * 1024 && body.length > 1000 * 1024, `${body.length} bytes`);
    const res = await call('POST', '/v1/chat/completions', {
      base: fresh.url, token: u.access_token, body, headers: { 'content-type': 'application/json' },
    });
    assert.equal(res.status, 400, res.text.slice(0, 200));
    assert.equal(res.body.error.param, param);
  }
  // A deterministic request (a cache key is made of it) that is accepted and relayed.
  const cached = `{"model":"sim-small","temperature":0,"messages":[{"role":"user","content":"x"}],"metadata":[${fill('1', room - 100)}]}`;
  const res = await call('POST', '/v1/chat/completions', {
    base: fresh.url, token: u.access_token, body: cached, headers: { 'content-type': 'application/json' },
  });
  assert.equal(res.status, 200, res.text.slice(0, 200));
  // The log line of the last request carries the memory after it.
  await new Promise((r) => setTimeout(r, 300));
  const after = fresh.wasmMemoryKib();
  console.log(`wasm memory: ${baseline} KiB after registering, ${after} KiB after four 1 MiB bodies`);
  assert.ok(after <= 8 * 1024, `wasm memory ${after} KiB (at most 8 MiB)`);
});
