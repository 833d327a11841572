// Memory before identity: every route that needs a credential checks it (it is in the header)
// before reading the body, so an anonymous caller can make the worker hold nothing. The
// uploads that never end go to a worker of its own in bare workerd: wrangler dev's proxy holds
// every answer until the request's body has ended.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { api, expectError } from '../support/client.mjs';
import { PASSWORD, registerUser, signJwt, uniqueEmail } from '../support/accounts.mjs';
import { simVars } from '../support/stack.mjs';
import { startBareWorker } from '../support/miniflare.mjs';

let bare;
before(async () => {
  bare = await startBareWorker(simVars());
});
after(() => bare?.stop());

const id = (prefix) => `${prefix}_${randomBytes(16).toString('base64url')}`;
const CONVERSATION = id('cnv');

/** Every route that takes a body and needs a credential. */
const WRITES = [
  ['POST', '/v1/chat/completions'],
  ['POST', '/api/v1/conversations'],
  ['PATCH', `/api/v1/conversations/${CONVERSATION}`],
  ['POST', `/api/v1/conversations/${CONVERSATION}/messages`],
  ['POST', `/api/v1/conversations/${CONVERSATION}/messages/${id('msg')}/regenerate`],
  ['POST', '/api/v1/keys'],
  ['PATCH', '/api/v1/users/me'],
  ['DELETE', '/api/v1/users/me'],
  ['POST', '/api/v1/auth/logout'],
  ['PATCH', `/api/v1/admin/users/${id('usr')}`],
];

const now = () => Math.floor(Date.now() / 1000);
/** No credential, and credentials that are wrong without any lookup and after one. */
const WRONG = {
  none: undefined,
  'a token with a bad signature': `Bearer ${signJwt({ sub: id('usr'), sid: id('ses'), iat: now(), nbf: now(), exp: now() + 600, iss: 'edgechat', aud: 'edgechat', typ: 'access' }, { secret: 'not-the-secret-0123456789abcdef0123456789' })}`,
  'an unknown API key': `Bearer ec_sk_${randomBytes(32).toString('base64url')}`,
};

/**
 * Sends the head and the start of a body that never ends; resolves to the status the worker
 * answers with, or to 'no answer' if none comes within `ms` while the body is still open.
 */
function answerWhileUploading(method, path, authorization, ms = 5000) {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'application/json', 'transfer-encoding': 'chunked' };
    if (authorization) headers.authorization = authorization;
    const req = http.request(new URL(path, bare.url), { method, headers });
    const timer = setTimeout(() => { req.destroy(); resolve('no answer'); }, ms);
    req.on('response', (res) => {
      clearTimeout(timer);
      res.resume();
      req.destroy();
      resolve(res.statusCode);
    });
    req.on('error', (err) => { clearTimeout(timer); if (!['ECONNRESET', 'EPIPE'].includes(err.code)) reject(err); });
    // The body is started and kept open: a worker that reads it first never gets to answer.
    req.write('{"messages": [{"role": "user", "content": "');
    req.write('x'.repeat(64 * 1024));
  });
}

test('a request without a valid credential gets its 401 while its body is still being sent', async () => {
  for (const [method, path] of WRITES) {
    for (const [why, authorization] of Object.entries(WRONG)) {
      assert.equal(await answerWhileUploading(method, path, authorization), 401, `${method} ${path} with ${why}`);
    }
  }
});

test('a 2 MiB body without a valid credential is 401, not 413; with one it is 413', async () => {
  const big = `{"content": "${'x'.repeat(2 * 1024 * 1024)}"}`;
  for (const [method, path] of WRITES) {
    for (const [why, authorization] of Object.entries(WRONG)) {
      const headers = { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) };
      const res = await api(method, path, { body: big, headers });
      assert.equal(res.status, 401, `${method} ${path} with ${why}: ${res.status} ${res.text.slice(0, 200)}`);
    }
  }
  // The cap still holds once the caller is known.
  const u = await registerUser();
  expectError(assert, await api('POST', '/api/v1/conversations', { token: u.access_token, body: big, headers: { 'content-type': 'application/json' } }), 413, 'payload_too_large');
  expectError(assert, await api('PATCH', '/api/v1/users/me', { token: u.access_token, body: big, headers: { 'content-type': 'application/json' } }), 413, 'payload_too_large');
});

test('a key without the route\'s scope gets its 403 before its body is read', async () => {
  const u = await api('POST', '/api/v1/auth/register', { base: bare.url, json: { email: uniqueEmail('first'), password: PASSWORD } });
  assert.equal(u.status, 201, u.text);
  const key = await api('POST', '/api/v1/keys', { base: bare.url, token: u.body.access_token, json: { name: 'gateway only' } });
  assert.equal(key.status, 201, key.text);
  const authorization = `Bearer ${key.body.key}`;
  assert.equal(await answerWhileUploading('POST', '/api/v1/conversations', authorization), 403);
  assert.equal(await answerWhileUploading('POST', `/api/v1/conversations/${CONVERSATION}/messages`, authorization), 403);
  assert.equal(await answerWhileUploading('DELETE', '/api/v1/users/me', authorization), 403);
});
