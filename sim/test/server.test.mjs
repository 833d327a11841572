// sim/test/server.test.mjs — server-level behaviour: health, models, 404, auth, request records API, CLI lifecycle.

import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { startSim, postJson, waitFor } from '../testkit.mjs';

const T = { timeout: 5000 }; // every test is bounded
const user = (content) => [{ role: 'user', content }];

test('health, models list and unknown paths', T, async () => {
  const { url, close } = await startSim();
  try {
    const health = await fetch(url + '/health');
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'ok' });

    const models = await (await fetch(url + '/v1/models')).json();
    assert.equal(models.object, 'list');
    assert.ok(models.data.some((m) => m.id === 'sim-small') && models.data.some((m) => m.id === 'sim-large'));
    for (const m of models.data) assert.deepEqual(Object.keys(m), ['id', 'object', 'created', 'owned_by']);
    assert.ok(models.data.every((m) => m.object === 'model' && m.owned_by === 'edgechat-sim'));

    const missing = await fetch(url + '/v2/nothing');
    assert.equal(missing.status, 404);
    assert.equal(typeof (await missing.json()).error.message, 'string');
    const wrongMethod = await fetch(url + '/v1/chat/completions');
    assert.equal(wrongMethod.status, 405);
    await wrongMethod.arrayBuffer();
  } finally {
    await close();
  }
});

test('--api-key: OpenAI needs Authorization Bearer, Anthropic needs x-api-key; values are never recorded', T, async () => {
  const { url, sim, close } = await startSim({ apiKey: 'sekret' });
  try {
    const oa = { model: 'sim-small+tokens=2', messages: user('auth') };
    const an = { ...oa, max_tokens: 5 };

    const r1 = await postJson(url + '/v1/chat/completions', oa);
    assert.equal(r1.status, 401);
    assert.deepEqual((await r1.json()).error, {
      message: (await import('../openai.mjs')).authMessage, type: 'invalid_request_error', param: null, code: 'invalid_api_key',
    });
    const r2 = await postJson(url + '/v1/chat/completions', oa, { headers: { authorization: 'Bearer wrong' } });
    assert.equal(r2.status, 401);
    await r2.arrayBuffer();
    const r3 = await postJson(url + '/v1/chat/completions', oa, { headers: { authorization: 'Bearer sekret' } });
    assert.equal(r3.status, 200);
    await r3.arrayBuffer();

    const r4 = await postJson(url + '/v1/messages', an, { headers: { authorization: 'Bearer sekret' } });
    assert.equal(r4.status, 401);
    const e4 = await r4.json();
    assert.equal(e4.type, 'error');
    assert.equal(e4.error.type, 'authentication_error');
    const r5 = await postJson(url + '/v1/messages', an, { headers: { 'x-api-key': 'sekret' } });
    assert.equal(r5.status, 200);
    await r5.arrayBuffer();

    assert.equal((await fetch(url + '/v1/models')).status, 401);
    assert.equal((await fetch(url + '/v1/models', { headers: { authorization: 'Bearer sekret' } })).status, 200);

    await waitFor(() => sim.requests.length === 5 && sim.requests.every((r) => r.finished_at));
    assert.deepEqual(sim.requests.map((r) => [r.status, r.has_auth]), [[401, false], [401, true], [200, true], [401, true], [200, true]]);
    assert.ok(!JSON.stringify(sim.requests).includes('sekret'));
  } finally {
    await close();
  }
});

test('without an api key any credentials (or none) are accepted', T, async () => {
  const { url, close } = await startSim();
  try {
    const res = await postJson(url + '/v1/messages', { model: 'sim-small', max_tokens: 3, messages: user('x') }, {
      headers: { 'x-api-key': 'whatever' },
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  } finally {
    await close();
  }
});

test('GET /_sim/requests filters by model and prompt content; DELETE clears', T, async () => {
  const { url, sim, close } = await startSim();
  try {
    await (await postJson(url + '/v1/chat/completions', { model: 'sim-small+tokens=2', messages: user('alpha needle') })).arrayBuffer();
    await (await postJson(url + '/v1/messages', { model: 'sim-large', max_tokens: 4, system: 'sys needle', messages: user('beta') })).arrayBuffer();
    await (await postJson(url + '/v1/chat/completions', '{broken')).arrayBuffer();
    await waitFor(() => sim.requests.length === 3 && sim.requests.every((r) => r.finished_at));

    const all = (await (await fetch(url + '/_sim/requests')).json()).data;
    assert.deepEqual(all.map((r) => r.seq), [1, 2, 3]);
    const rec = all[0];
    for (const key of ['seq', 'path', 'model', 'options', 'body', 'has_auth', 'received_at', 'first_byte_at',
      'finished_at', 'chunks_sent', 'completed', 'aborted']) {
      assert.ok(key in rec, `record has ${key}`);
    }
    assert.equal(rec.completed, true);
    assert.ok(rec.received_at <= rec.first_byte_at && rec.first_byte_at <= rec.finished_at);
    assert.deepEqual(all[2].body, null);
    assert.equal(all[2].status, 400);

    const get = async (q) => (await (await fetch(`${url}/_sim/requests?${q}`)).json()).data.map((r) => r.seq);
    assert.deepEqual(await get('model=large'), [2]);
    assert.deepEqual(await get('model=tokens%3D2'), [1]);
    assert.deepEqual(await get('contains=needle'), [1, 2]);
    assert.deepEqual(await get('contains=beta&model=sim-large'), [2]);

    const del = await fetch(url + '/_sim/requests', { method: 'DELETE' });
    assert.deepEqual(await del.json(), { deleted: 3 });
    assert.equal(sim.requests.length, 0);
    assert.deepEqual((await (await fetch(url + '/_sim/requests')).json()).data, []);
  } finally {
    await close();
  }
});

test('CLI: prints one listening line, serves, exits cleanly on SIGTERM with a hanging request open', T, async () => {
  const script = fileURLToPath(new URL('../server.mjs', import.meta.url));
  const child = spawn(process.execPath, [script, '--port', '0', '--host', '127.0.0.1', '--tokens', '3', '--interval-ms', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d; });
  try {
    await waitFor(() => stdout.includes('\n'), 5000);
    const m = /^sim listening on (http:\/\/127\.0\.0\.1:(\d+))\n$/.exec(stdout);
    assert.ok(m, `unexpected stdout: ${JSON.stringify(stdout)}`);
    const base = m[1];
    const body = await (await postJson(base + '/v1/chat/completions', { model: 'sim-small', messages: user('cli') })).json();
    assert.equal(body.usage.completion_tokens, 3);

    const hanging = await postJson(base + '/v1/chat/completions', { model: 'sim-small+hang', stream: true, messages: user('x') });
    const pending = hanging.text().catch(() => 'closed');
    child.kill('SIGTERM');
    const [code, signal] = await once(child, 'exit');
    assert.equal(code, 0);
    assert.equal(signal, null);
    assert.equal(await pending, 'closed');
    assert.equal(stdout.split('\n').filter(Boolean).length, 1);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});
