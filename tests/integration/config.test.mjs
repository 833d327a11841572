// Configuration is validated with errors that name the bad variable (and never its value).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker } from '../support/stack.mjs';
import { api, expectError } from '../support/client.mjs';

test('a worker with bad settings stays live but is not ready, naming each bad variable', async (t) => {
  const worker = await startWorker({ vars: { JWT_SECRET: 'too-short-secret', MAX_BODY_BYTES: 'lots', CORS_ORIGINS: 'not-an-origin' } });
  t.after(() => worker.stop());
  const live = await api('GET', '/health', { base: worker.url });
  assert.equal(live.status, 200);
  const ready = await api('GET', '/health/ready', { base: worker.url });
  const err = expectError(assert, ready, 503, 'unavailable');
  assert.match(err.message, /JWT_SECRET must be at least 32 bytes/);
  assert.match(err.message, /MAX_BODY_BYTES/);
  assert.match(err.message, /CORS_ORIGINS/);
  assert.doesNotMatch(err.message, /too-short-secret|lots/);
});

test('a worker without JWT_SECRET reports it missing', async (t) => {
  const worker = await startWorker({ vars: { MAX_BODY_BYTES: '2048' } });
  t.after(() => worker.stop());
  const ready = await api('GET', '/health/ready', { base: worker.url });
  const err = expectError(assert, ready, 503, 'unavailable');
  assert.equal(err.message, 'not ready: config: JWT_SECRET is missing');
  // MAX_BODY_BYTES is honoured: 2049 bytes is over this worker's cap.
  const big = await api('POST', '/health', { base: worker.url, body: 'x'.repeat(2049) });
  expectError(assert, big, 413, 'payload_too_large');
});
