// HTTP conventions every route shares: health, request ids, JSON 404/405, body cap, CORS,
// and the one log line per request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { api, expectError } from '../support/client.mjs';

test('GET /health answers 200 JSON with a version and a request id', async () => {
  const res = await api('GET', '/health');
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(res.body.status, 'ok');
  assert.match(res.body.version, /^\d+\.\d+\.\d+$/);
  assert.match(res.headers.get('x-request-id'), /^[0-9a-f]{32}$/);
});

test('every response gets a fresh request id unless a valid one is sent', async () => {
  const a = await api('GET', '/health');
  const b = await api('GET', '/health');
  assert.notEqual(a.headers.get('x-request-id'), b.headers.get('x-request-id'));
  const echoed = await api('GET', '/health', { headers: { 'x-request-id': 'client-req.42:a_b' } });
  assert.equal(echoed.headers.get('x-request-id'), 'client-req.42:a_b');
  const replaced = await api('GET', '/health', { headers: { 'x-request-id': 'has spaces "and quotes"' } });
  assert.match(replaced.headers.get('x-request-id'), /^[0-9a-f]{32}$/);
  const tooLong = await api('GET', '/health', { headers: { 'x-request-id': 'x'.repeat(129) } });
  assert.match(tooLong.headers.get('x-request-id'), /^[0-9a-f]{32}$/);
});

test('GET /health/ready checks D1, KV and configuration', async () => {
  const res = await api('GET', '/health/ready');
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.body, { status: 'ok', checks: { d1: 'ok', kv: 'ok', config: 'ok' } });
});

test('an unknown API path is a JSON 404 in the error shape', async () => {
  for (const path of ['/api/nope', '/api/v1/nothing-here', '/health/', '/health/ready/extra']) {
    const res = await api('GET', path);
    const err = expectError(assert, res, 404, 'route_not_found');
    assert.match(err.request_id, /^[0-9a-f]{32}$/);
  }
});

test('a wrong method on a known path is a JSON 405 with Allow', async () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    const res = await api(method, '/health');
    expectError(assert, res, 405, 'method_not_allowed');
    assert.equal(res.headers.get('allow'), 'GET');
  }
  const ready = await api('POST', '/health/ready', { json: {} });
  expectError(assert, ready, 405, 'method_not_allowed');
});

test('HEAD is answered wherever GET is', async () => {
  const res = await fetch(process.env.EDGECHAT_URL + '/health', { method: 'HEAD' });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), '');
});

test('a body over the 1 MiB cap is 413 on any POST, before routing', async () => {
  const big = 'x'.repeat(1024 * 1024 + 1);
  for (const path of ['/health', '/api/nope', '/api/v1/auth/register']) {
    const res = await api('POST', path, { body: big, headers: { 'content-type': 'application/json' } });
    expectError(assert, res, 413, 'payload_too_large');
  }
  const atCap = await api('POST', '/api/nope', { body: 'x'.repeat(1024 * 1024) });
  expectError(assert, atCap, 404, 'route_not_found');
});

test('error request ids match the x-request-id header, also when echoed', async () => {
  const res = await api('GET', '/api/missing', { headers: { 'x-request-id': 'trace-me-1' } });
  const err = expectError(assert, res, 404);
  assert.equal(err.request_id, 'trace-me-1');
});

test('CORS: an allowed origin gets a preflight grant with credentials', async () => {
  const res = await api('OPTIONS', '/health', {
    headers: {
      origin: 'https://app.test.example',
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type, authorization',
    },
  });
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.test.example');
  assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
  assert.match(res.headers.get('access-control-allow-methods'), /POST/);
  assert.equal(res.headers.get('access-control-allow-headers'), 'content-type, authorization');
  assert.ok(res.headers.get('x-request-id'));
  const actual = await api('GET', '/health', { headers: { origin: 'https://app.test.example' } });
  assert.equal(actual.headers.get('access-control-allow-origin'), 'https://app.test.example');
  assert.match(actual.headers.get('access-control-expose-headers'), /x-request-id/);
  assert.match(actual.headers.get('vary'), /Origin/);
});

test('CORS: a page using the official SDKs, or resuming a turn, passes the preflight with their headers', async () => {
  // What the openai and anthropic JS SDKs send from a browser, and what a resuming or
  // idempotent chat client adds.
  const sent = 'authorization, content-type, x-stainless-lang, x-stainless-package-version, x-stainless-os, '
    + 'x-stainless-arch, x-stainless-runtime, x-stainless-runtime-version, x-stainless-retry-count, x-stainless-timeout, '
    + 'anthropic-version, anthropic-dangerous-direct-browser-access, idempotency-key, last-event-id';
  for (const [path, method] of [['/v1/chat/completions', 'POST'], ['/v1/models/sim-small', 'GET'], ['/api/v1/conversations/c/messages', 'POST']]) {
    const res = await api('OPTIONS', path, {
      headers: { origin: 'https://app.test.example', 'access-control-request-method': method, 'access-control-request-headers': sent },
    });
    assert.equal(res.status, 204, `${path}: ${res.text}`);
    assert.equal(res.headers.get('access-control-allow-headers'), sent);
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.test.example');
  }
});

test('CORS: a disallowed origin gets no grant', async () => {
  const pre = await api('OPTIONS', '/health', {
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
  });
  expectError(assert, pre, 403, 'cors_denied');
  assert.equal(pre.headers.get('access-control-allow-origin'), null);
  const actual = await api('GET', '/health', { headers: { origin: 'https://evil.example' } });
  assert.equal(actual.status, 200);
  assert.equal(actual.headers.get('access-control-allow-origin'), null);
  assert.equal(actual.headers.get('access-control-allow-credentials'), null);
  const badHeader = await api('OPTIONS', '/health', {
    headers: { origin: 'https://app.test.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'x-admin-override' },
  });
  expectError(assert, badHeader, 403, 'cors_denied');
});

test('each request writes one JSON log line with its metadata', async () => {
  const id = `log-check-${Date.now()}`;
  await api('POST', '/health', { headers: { 'x-request-id': id } });
  const logFile = process.env.EDGECHAT_WORKER_LOG;
  let lines = [];
  for (let i = 0; i < 50 && lines.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.startsWith('{') && l.includes(`"${id}"`));
  }
  assert.equal(lines.length, 1, 'exactly one line for the request');
  const line = JSON.parse(lines[0]);
  assert.equal(line.request_id, id);
  assert.equal(line.method, 'POST');
  assert.equal(line.route, '/health');
  assert.equal(line.status, 405);
  assert.equal(line.error_code, 'method_not_allowed');
  assert.equal(typeof line.duration_ms, 'number');
});

test('every response carries the security headers; page paths are static files', async () => {
  for (const path of ['/health', '/api/nope', '/']) {
    const res = await fetch(process.env.EDGECHAT_URL + path);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
    assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
    assert.match(res.headers.get('content-security-policy'), /script-src 'self';/, path);
    assert.doesNotMatch(res.headers.get('content-security-policy'), /unsafe-inline/, path);
    await res.arrayBuffer();
  }
  const page = await fetch(process.env.EDGECHAT_URL + '/');
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  assert.match(await page.text(), /<html/i);
  const missing = await fetch(process.env.EDGECHAT_URL + '/no-such-file.txt');
  assert.equal(missing.status, 404);
  await missing.arrayBuffer();
});

test('methods the route does not know, standard or not, are 405 (never treated as GET)', async () => {
  for (const method of ['QUERY', 'PROPFIND', 'PUT']) {
    const res = await api(method, '/api/v1/users/me');
    expectError(assert, res, 405, 'method_not_allowed');
    assert.equal(res.headers.get('allow'), 'GET, PATCH, DELETE');
  }
});
