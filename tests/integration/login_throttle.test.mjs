// Login and registration throttling: an attacker's failures lock the attacker's address, never
// the victim's login from an address that has not failed; registrations are limited per address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { api, expectError } from '../support/client.mjs';
import { PASSWORD, login, registerUser, uniqueEmail, uniqueIp } from '../support/accounts.mjs';
import { startWorker, TEST_VARS } from '../support/stack.mjs';

const WRONG = 'wrong password!';
const retryAfter = (res) => Number(res.headers.get('retry-after'));

test('an attacker failing for a victim\'s email locks out the attacker\'s address, not the victim', async () => {
  const victim = await registerUser();
  const attacker = uniqueIp();
  for (let i = 0; i < 5; i++) expectError(assert, await login(victim.email, WRONG, { ip: attacker }), 401);
  for (let i = 0; i < 10; i++) {
    const refused = expectError(assert, await login(victim.email, WRONG, { ip: attacker }), 429, 'too_many_login_attempts');
    assert.match(refused.message, /retry in \d+ s/);
  }
  // The right password from the attacker's address is refused too: the lock does not say whether it was right.
  const right = await login(victim.email, PASSWORD, { ip: attacker });
  expectError(assert, right, 429, 'too_many_login_attempts');
  assert.ok(retryAfter(right) > 800 && retryAfter(right) <= 900, `Retry-After ${retryAfter(right)}`);
  // The victim, from an address that has not failed, logs in at once.
  const res = await login(victim.email, PASSWORD, { ip: uniqueIp() });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.user.user_id, victim.user.user_id);
});

test('failures for one email from many addresses make the failed addresses wait, never a fresh one with the right password', async () => {
  const victim = await registerUser();
  // 12 addresses fail once each: a fresh address always gets its try.
  const attackers = Array.from({ length: 12 }, uniqueIp);
  for (const ip of attackers) expectError(assert, await login(victim.email, WRONG, { ip }), 401);
  // Past 5 failures for the email, an address that failed for it waits (2^6 s after 12), right password or not.
  for (const ip of attackers.slice(-3)) {
    const waiting = await login(victim.email, PASSWORD, { ip });
    expectError(assert, waiting, 429, 'too_many_login_attempts');
    assert.ok(retryAfter(waiting) > 60 && retryAfter(waiting) <= 64, `Retry-After ${retryAfter(waiting)}`);
  }
  // The victim from fresh addresses: through every time, right after the failures.
  for (let i = 0; i < 3; i++) assert.equal((await login(victim.email, PASSWORD, { ip: uniqueIp() })).status, 200);
  // Other emails from the attackers' addresses are not affected by this email's failures.
  const other = await registerUser();
  assert.equal((await login(other.email, PASSWORD, { ip: attackers[0] })).status, 200);
});

test('the wait of a failed address doubles with each failure of the email and then lets it try again', async () => {
  const victim = await registerUser();
  const mine = uniqueIp();
  expectError(assert, await login(victim.email, WRONG, { ip: mine }), 401);
  // Five more failures from other addresses: six for the email, so failed addresses wait 1 s.
  for (let i = 0; i < 5; i++) expectError(assert, await login(victim.email, WRONG, { ip: uniqueIp() }), 401);
  const first = await login(victim.email, PASSWORD, { ip: mine });
  expectError(assert, first, 429, 'too_many_login_attempts');
  assert.equal(retryAfter(first), 1);
  // One more failure elsewhere: the wait is 2 s from it.
  expectError(assert, await login(victim.email, WRONG, { ip: uniqueIp() }), 401);
  const second = await login(victim.email, PASSWORD, { ip: mine });
  expectError(assert, second, 429, 'too_many_login_attempts');
  assert.ok([1, 2].includes(retryAfter(second)), `Retry-After ${retryAfter(second)}`);
  // Waiting out the delay lets the right password through (the refused attempts were not held against it).
  await sleep(retryAfter(second) * 1000 + 300);
  const res = await login(victim.email, PASSWORD, { ip: mine });
  assert.equal(res.status, 200, res.text);
});

test('registrations beyond the per-address limit are 429 with Retry-After; another address still registers', async (t) => {
  // The default limit (10 an hour), which the shared test worker raises.
  const { REGISTER_MAX_PER_IP, ...vars } = TEST_VARS;
  const worker = await startWorker({ vars });
  t.after(() => worker.stop());
  const register = (ip, email = uniqueEmail('reg')) =>
    api('POST', '/api/v1/auth/register', { base: worker.url, json: { email, password: PASSWORD }, headers: { 'cf-connecting-ip': ip } });
  const busy = uniqueIp();
  const first = await register(busy);
  assert.equal(first.status, 201, first.text);
  // A taken email counts too: it tells whether the account exists.
  expectError(assert, await register(busy, first.body.user.email), 409, 'email_taken');
  for (let i = 0; i < 8; i++) assert.equal((await register(busy)).status, 201);
  const refused = await register(busy);
  expectError(assert, refused, 429, 'too_many_registrations');
  assert.ok(retryAfter(refused) > 3500 && retryAfter(refused) <= 3600, `Retry-After ${retryAfter(refused)}`);
  expectError(assert, await register(busy, first.body.user.email), 429, 'too_many_registrations');
  // Malformed attempts are answered (422) without being refused or counted.
  expectError(assert, await register(busy, 'not an email'), 422, 'validation_failed');
  assert.equal((await register(uniqueIp())).status, 201, 'another address still registers');
});
