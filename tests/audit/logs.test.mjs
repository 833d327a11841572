// Runs after the integration suite, over everything the worker logged during it: no
// password, token, API key, secret or message content ever appears in a log line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TEST_VARS } from '../support/stack.mjs';
import { PASSWORD } from '../support/accounts.mjs';

const log = readFileSync(process.env.EDGECHAT_WORKER_LOG, 'utf8');
// The worker's own lines (JSON); wrangler's proxy prints request lines of its own.
const lines = log.split('\n').filter((l) => l.startsWith('{'));

test('the worker logged one JSON line per request during the run', () => {
  const requests = lines.filter((l) => l.includes('"msg":"request"'));
  assert.ok(requests.length > 500, `only ${requests.length} request lines`);
  for (const l of requests) {
    const v = JSON.parse(l);
    for (const field of ['request_id', 'method', 'status', 'duration_ms']) assert.ok(field in v, `${field} missing in ${l}`);
  }
});

test('no secret, password, token, API key or message content appears in any log line', () => {
  const forbidden = [
    ['JWT_SECRET', TEST_VARS.JWT_SECRET],
    ['STRIPE_WEBHOOK_SECRET', TEST_VARS.STRIPE_WEBHOOK_SECRET],
    ['a password', PASSWORD],
    ['a password', 'new password 1'],
    ['a password', 'wrong password!'],
    ['message content', 'Tell me about tides'],
    ['message content', 'Write a very long story'],
    ['message content', 'What is the capital of Portugal'],
    ['message content', 'secret words'],
  ];
  const patterns = [
    ['an access token (JWT)', /eyJ[A-Za-z0-9_-]{10,}\.eyJ/],
    ['a refresh token', /ec_rt_[A-Za-z0-9_-]{20,}/],
    ['an API key', /ec_sk_[A-Za-z0-9_-]{20,}/],
    ['a Stripe secret', /whsec_[A-Za-z0-9_]{8,}/],
    ['a bearer header', /Bearer [A-Za-z0-9._-]{20,}/],
  ];
  for (const line of lines) {
    for (const [what, value] of forbidden) assert.ok(!line.includes(value), `${what} in a log line: ${line.slice(0, 200)}`);
    for (const [what, re] of patterns) assert.ok(!re.test(line), `${what} in a log line: ${line.slice(0, 200)}`);
  }
});
