// The official `openai` JS SDK in a real browser, on a page of another loopback origin (a web
// app calling the gateway with an API key): the SDK bundled for the browser with esbuild at test
// time, its CORS preflights (it sends `x-stainless-*` headers) answered for an allowed origin,
// models, a completion, a stream and embeddings equal to the simulator's, and a page on an
// origin that is not allowed refused by the browser.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import { ROOT, TEST_VARS, freePort } from '../support/stack.mjs';
import { PASSWORD, assertClean, launchBrowser, openPage, shot, startBrowserStack, unique } from './helpers.mjs';

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>openai sdk</title>
<script src="/openai.js"></script></head><body><pre id="out"></pre></body></html>`;

let stack;
let browser;
let dir;
let allowed;
let denied;
let apiKey;

/** A static site on 127.0.0.1 serving the page and the SDK bundle; resolves to its origin. */
async function site(port, bundle) {
  const server = http.createServer((req, res) => {
    const [type, body] = req.url === '/openai.js' ? ['text/javascript', bundle] : ['text/html; charset=utf-8', PAGE];
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'edgechat-sdk-page-'));
  const outfile = path.join(dir, 'openai.js');
  // The package as published, bundled the way a web app's build would.
  await build({
    stdin: { contents: "import OpenAI from 'openai'; window.OpenAI = OpenAI;", resolveDir: ROOT, loader: 'js' },
    bundle: true, format: 'iife', platform: 'browser', outfile, logLevel: 'warning',
  });
  const bundle = readFileSync(outfile);
  allowed = await site(await freePort(), bundle);
  denied = await site(await freePort(), bundle);
  stack = await startBrowserStack({
    logName: 'openai-sdk',
    vars: { CORS_ORIGINS: `${TEST_VARS.CORS_ORIGINS},${allowed.origin}` },
  });
  browser = await launchBrowser();
  const reg = await fetch(`${stack.url}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: unique('sdk'), password: PASSWORD }),
  });
  const { access_token: token } = await reg.json();
  const key = await fetch(`${stack.url}/api/v1/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ name: 'web app' }),
  });
  apiKey = (await key.json()).key;
  assert.match(apiKey, /^ec_sk_/);
}, { timeout: 120000 });

after(async () => {
  await browser?.close();
  await stack?.stop();
  await allowed?.close();
  await denied?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Every request the page's network stack makes, CORS preflights included (which Playwright's
 * own request events leave out; Chromium reports them as OPTIONS requests of type Other), with
 * their status once answered. */
async function recordNetwork(page) {
  const cdp = await page.context().newCDPSession(page);
  const byId = new Map();
  cdp.on('Network.requestWillBeSent', (e) => {
    byId.set(e.requestId, { method: e.request.method, url: e.request.url, headers: e.request.headers, status: null });
  });
  cdp.on('Network.responseReceived', (e) => {
    const r = byId.get(e.requestId);
    if (r) r.status = e.response.status;
  });
  await cdp.send('Network.enable');
  return () => [...byId.values()];
}

/** The simulator's own answer for an upstream model string. */
async function sim(pathname, body) {
  const res = await fetch(`${stack.simUrl}${pathname}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  return res.json();
}

/** Runs the SDK calls in the page and shows their results in it, as JSON in `#out`. */
function callGateway({ base, key, content, texts }) {
  const out = document.getElementById('out');
  const client = new window.OpenAI({ baseURL: `${base}/v1`, apiKey: key, dangerouslyAllowBrowser: true, maxRetries: 0, timeout: 20000 });
  const run = async () => {
    const models = [];
    for await (const m of client.models.list()) models.push(m.id);
    const messages = [{ role: 'user', content }];
    const completion = await client.chat.completions.create({ model: 'sim-small', messages });
    const stream = await client.chat.completions.create({ model: 'sim-small', messages, stream: true, stream_options: { include_usage: true } });
    let streamed = '';
    let chunks = 0;
    let streamUsage = null;
    for await (const chunk of stream) {
      chunks += 1;
      streamed += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) streamUsage = chunk.usage;
    }
    const embeddings = await client.embeddings.create({ model: 'sim-embed', input: texts });
    return {
      models,
      completion: { text: completion.choices[0].message.content, usage: completion.usage },
      stream: { text: streamed, chunks, usage: streamUsage },
      embeddings: { vectors: embeddings.data.map((d) => Array.from(d.embedding)), usage: embeddings.usage },
    };
  };
  return run().then(
    (result) => { out.textContent = JSON.stringify({ ok: true, result }); },
    (err) => { out.textContent = JSON.stringify({ ok: false, name: err?.constructor?.name, message: String(err?.message) }); },
  );
}

async function shown(page) {
  await page.waitForFunction(() => document.getElementById('out').textContent.length > 0, null, { timeout: 30000 });
  return JSON.parse(await page.locator('#out').textContent());
}

test('a page of an allowed origin uses the gateway through the openai SDK', { timeout: 60000 }, async () => {
  const { page, context, problems } = await openPage(browser);
  try {
    const network = await recordNetwork(page);
    await page.goto(`${allowed.origin}/`);
    const content = `What is the tide today? ${Date.now()}`;
    const texts = [`the moon ${Date.now()}`, 'the sea'];
    await page.evaluate(callGateway, { base: stack.url, key: apiKey, content, texts });
    const got = await shown(page);
    await shot(page, 'openai-sdk-allowed');
    assert.equal(got.ok, true, JSON.stringify(got));
    const { result } = got;
    for (const id of ['sim-small', 'claude', 'sim-embed']) assert.ok(result.models.includes(id), `${id} in ${result.models}`);

    const messages = [{ role: 'user', content }];
    const expected = await sim('/v1/chat/completions', { model: 'sim-small+tokens=24+interval=15', messages });
    assert.equal(result.completion.text, expected.choices[0].message.content);
    assert.deepEqual(result.completion.usage, expected.usage);
    assert.equal(result.stream.text, expected.choices[0].message.content);
    assert.ok(result.stream.chunks > 3, `the answer streamed in ${result.stream.chunks} chunks`);
    assert.equal(result.stream.usage?.completion_tokens, 24);
    assert.ok(result.stream.usage.prompt_tokens > 0);

    const vectors = await sim('/v1/embeddings', { model: 'sim-embed', input: texts, encoding_format: 'float' });
    assert.deepEqual(result.embeddings.vectors, vectors.data.map((d) => d.embedding));
    assert.deepEqual(result.embeddings.usage, vectors.usage);

    // The SDK's requests were preflighted (authorization and its x-stainless-* headers) and
    // the worker granted each preflight.
    const toGateway = network().filter((r) => r.url.startsWith(`${stack.url}/v1/`));
    const preflights = toGateway.filter((r) => r.method === 'OPTIONS');
    const asked = (r) => (r.headers['Access-Control-Request-Headers'] ?? r.headers['access-control-request-headers'] ?? '').toLowerCase();
    assert.ok(preflights.length >= 1, `preflights: ${JSON.stringify(toGateway.map((r) => [r.method, r.url]))}`);
    for (const p of preflights) {
      assert.equal(p.method, 'OPTIONS');
      assert.equal(p.status, 204, JSON.stringify(p));
      assert.match(asked(p), /authorization/);
      assert.match(asked(p), /x-stainless-/);
    }
    const paths = new Set(preflights.map((p) => new URL(p.url).pathname));
    for (const p of ['/v1/models', '/v1/chat/completions', '/v1/embeddings']) assert.ok(paths.has(p), `a preflight for ${p}: ${[...paths]}`);
    const calls = toGateway.filter((r) => r.method !== 'OPTIONS');
    assert.ok(calls.length >= 4 && calls.every((r) => r.status === 200), JSON.stringify(calls.map((r) => [r.method, r.url, r.status])));
    await assertClean(page, problems);
  } finally {
    await context.close();
  }
});

test('a page of an origin that is not allowed is refused by the browser', { timeout: 60000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    const network = await recordNetwork(page);
    await page.goto(`${denied.origin}/`);
    await page.evaluate(callGateway, { base: stack.url, key: apiKey, content: 'never answered', texts: ['x'] });
    const got = await shown(page);
    assert.equal(got.ok, false, JSON.stringify(got));
    assert.equal(got.name, 'APIConnectionError', JSON.stringify(got));
    const preflight = network().find((r) => r.method === 'OPTIONS' && r.url === `${stack.url}/v1/models`);
    assert.ok(preflight, 'the browser asked first');
    assert.equal(preflight.status, 403);
    assert.ok(!network().some((r) => r.url.startsWith(`${stack.url}/v1/`) && r.method === 'GET' && r.status === 200), 'no call went through');
  } finally {
    await context.close();
  }
});
