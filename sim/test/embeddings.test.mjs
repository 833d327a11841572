// sim/test/embeddings.test.mjs — POST /v1/embeddings over real HTTP: deterministic vectors, float and base64, dimensions, usage, errors.

import test from 'node:test';
import assert from 'node:assert/strict';
import { startSim, postJson } from '../testkit.mjs';
import { DEFAULT_DIMENSIONS, toBase64, vector } from '../embeddings.mjs';

const T = { timeout: 5000 };
const PATH = '/v1/embeddings';

const decode = (b64) => {
  const bytes = Buffer.from(b64, 'base64');
  return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
};
const norm = (v) => Math.hypot(...v);

test('an input always gets the same unit vector, another input another one', T, async () => {
  const { url, close } = await startSim();
  try {
    const res = await postJson(url + PATH, { model: 'sim-embed', input: ['the tides', 'the tides', 'rainbows'] });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.object, 'list');
    assert.equal(body.model, 'sim-embed');
    assert.deepEqual(body.data.map((d) => [d.object, d.index, d.embedding.length]), [0, 1, 2].map((i) => ['embedding', i, DEFAULT_DIMENSIONS]));
    const [a, b, c] = body.data.map((d) => d.embedding);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.ok(Math.abs(norm(a) - 1) < 1e-5);
    assert.deepEqual(a, vector('sim-embed', 'the tides'));
    // The base model is part of the seed, the options are not.
    const other = await (await postJson(url + PATH, { model: 'sim-embed+delay=1', input: 'the tides' })).json();
    assert.deepEqual(other.data[0].embedding, a);
    assert.deepEqual(body.usage, { prompt_tokens: 3 + 3 + 2, total_tokens: 8 });
  } finally {
    await close();
  }
});

test('base64 is the float vector as little-endian float32; dimensions shortens it', T, async () => {
  const { url, close } = await startSim();
  try {
    const input = 'same words';
    const float = await (await postJson(url + PATH, { model: 'sim-embed', input, encoding_format: 'float' })).json();
    const b64 = await (await postJson(url + PATH, { model: 'sim-embed', input, encoding_format: 'base64' })).json();
    assert.equal(typeof b64.data[0].embedding, 'string');
    assert.deepEqual(decode(b64.data[0].embedding), float.data[0].embedding);
    assert.equal(b64.data[0].embedding, toBase64(float.data[0].embedding));
    const short = await (await postJson(url + PATH, { model: 'sim-embed', input, dimensions: 8 })).json();
    assert.equal(short.data[0].embedding.length, 8);
    assert.ok(Math.abs(norm(short.data[0].embedding) - 1) < 1e-5);
    const tokens = await (await postJson(url + PATH, { model: 'sim-embed', input: [[1, 2, 3], [4]] })).json();
    assert.equal(tokens.data.length, 2);
    assert.deepEqual(tokens.usage, { prompt_tokens: 4, total_tokens: 4 });
    const noUsage = await (await postJson(url + PATH, { model: 'sim-embed+no_usage', input })).json();
    assert.equal(noUsage.usage, undefined);
  } finally {
    await close();
  }
});

test('bad requests are 400s in OpenAI shape; fault options apply', T, async () => {
  const { url, sim, close } = await startSim();
  try {
    for (const body of [
      { input: 'x' },
      { model: 'sim-embed' },
      { model: 'sim-embed', input: '' },
      { model: 'sim-embed', input: [] },
      { model: 'sim-embed', input: ['a', 1] },
      { model: 'sim-embed', input: 'x', encoding_format: 'int8' },
      { model: 'sim-embed', input: 'x', dimensions: 0 },
    ]) {
      const res = await postJson(url + PATH, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal((await res.json()).error.type, 'invalid_request_error');
    }
    const failed = await postJson(url + PATH, { model: 'sim-embed+status=503', input: 'x' });
    assert.equal(failed.status, 503);
    const garbage = await postJson(url + PATH, { model: 'sim-embed+garbage', input: 'x' });
    assert.match(await garbage.text(), /<html>/);
    const recorded = sim.requests.at(-1);
    assert.equal(recorded.path, PATH);
    assert.equal(recorded.model, 'sim-embed+garbage');
    const found = await (await fetch(`${url}/_sim/requests?contains=${encodeURIComponent('"x"')}`)).json();
    assert.ok(found.data.some((r) => r.path === PATH));
  } finally {
    await close();
  }
});
