// A small HTTP client for integration tests: JSON in, {status, headers, body, text} out.
export const BASE = process.env.EDGECHAT_URL;
export const SIM = process.env.SIM_URL;

if (!BASE) throw new Error('EDGECHAT_URL is not set: run the integration suite with `npm test` or `node tests/run.mjs`');

/**
 * fetch, but a GET or HEAD that gets no answer in 20 s is sent once more: after a client
 * aborts a stream, wrangler dev's proxy can park a GET in its retry queue for good (it
 * mistakes the broken stream for a worker restart). Other methods are never resent.
 */
async function send(url, init) {
  const idempotent = init.method === 'GET' || init.method === 'HEAD';
  if (!idempotent) return fetch(url, init);
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(20_000) });
  } catch {
    return fetch(url, { ...init, signal: AbortSignal.timeout(20_000) });
  }
}

/**
 * Sends a request to the worker. `json` is sent as an application/json body; `body` is sent
 * as is. Returns the status, headers, raw text and parsed JSON (or null).
 */
export async function api(method, path, { json, body, headers = {}, token, base = BASE } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (json !== undefined) {
    h['content-type'] ??= 'application/json';
    body = JSON.stringify(json);
  }
  const res = await send(base + path, { method, headers: h, body });
  const text = await res.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch {}
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** Asserts the documented error shape and returns the error object. */
export function expectError(assert, res, status, code) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(Object.keys(res.body), ['error']);
  const err = res.body.error;
  assert.deepEqual(Object.keys(err).sort(), ['code', 'message', 'request_id']);
  if (code) assert.equal(err.code, code);
  assert.ok(err.message.length > 0);
  assert.equal(err.request_id, res.headers.get('x-request-id'));
  return err;
}
