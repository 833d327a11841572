// Accounts: registration, login, refresh rotation, logout, profile and account deletion.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, expectError } from '../support/client.mjs';
import { PASSWORD, login, registerUser, uniqueEmail, uniqueIp } from '../support/accounts.mjs';

const me = (token) => api('GET', '/api/v1/users/me', { token });
const refresh = (refresh_token, headers) => api('POST', '/api/v1/auth/refresh', { json: { refresh_token }, headers });

test('register creates a user and returns a token pair', async () => {
  const email = uniqueEmail('Reg').replace('reg', 'REG');
  const res = await api('POST', '/api/v1/auth/register', { json: { email: `  ${email} `, password: PASSWORD, display_name: ' Ada ' } });
  assert.equal(res.status, 201, res.text);
  const { user, access_token, refresh_token, token_type, expires_in } = res.body;
  assert.equal(user.email, email.toLowerCase());
  assert.equal(user.display_name, 'Ada');
  assert.equal(user.role, 'user');
  assert.equal(user.plan, 'free');
  assert.match(user.user_id, /^usr_[A-Za-z0-9_-]{22}$/);
  assert.match(user.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(token_type, 'Bearer');
  assert.equal(expires_in, 900);
  assert.equal(access_token.split('.').length, 3);
  assert.match(refresh_token, /^ec_rt_[A-Za-z0-9_-]{43}$/);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.equal(res.body.user.password_hash, undefined);
  const got = await me(access_token);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, user);
});

test('a duplicate email is 409, compared case-insensitively', async () => {
  const { email } = await registerUser();
  const res = await api('POST', '/api/v1/auth/register', { json: { email: email.toUpperCase(), password: PASSWORD } });
  expectError(assert, res, 409, 'email_taken');
});

test('weak, overlong and malformed registrations are 422 and create nothing', async () => {
  const email = uniqueEmail();
  for (const json of [
    { email, password: 'short' },
    { email, password: 'x'.repeat(129) },
    { email: 'not-an-email', password: PASSWORD },
    { email, password: PASSWORD, display_name: 'x'.repeat(101) },
    { email },
    { email, password: 12345678 },
  ]) {
    expectError(assert, await api('POST', '/api/v1/auth/register', { json }), 422, 'validation_failed');
  }
  // Nothing was stored under that email.
  assert.equal((await api('POST', '/api/v1/auth/register', { json: { email, password: PASSWORD } })).status, 201);
});

test('forbidden fields in register are 422 and no admin is made', async () => {
  const email = uniqueEmail();
  for (const field of ['role', 'is_disabled', 'plan', 'user_id']) {
    const res = await api('POST', '/api/v1/auth/register', { json: { email, password: PASSWORD, [field]: field === 'is_disabled' ? 0 : 'admin' } });
    const err = expectError(assert, res, 422, 'validation_failed');
    assert.match(err.message, new RegExp(field));
  }
  const created = await registerUser({ email });
  assert.equal(created.user.role, 'user');
});

test('malformed JSON is 400, a wrong content type 415, a chunked body over the cap 413', async () => {
  const bad = await api('POST', '/api/v1/auth/register', { body: '{"email":', headers: { 'content-type': 'application/json' } });
  expectError(assert, bad, 400, 'invalid_json');
  const form = await api('POST', '/api/v1/auth/register', { body: 'email=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  expectError(assert, form, 415, 'unsupported_media_type');
  const noType = await api('POST', '/api/v1/auth/login', { body: '{}' });
  expectError(assert, noType, 415, 'unsupported_media_type');
  const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
  let sent = 0;
  const stream = new ReadableStream({
    pull(controller) {
      if (sent++ < 20) controller.enqueue(chunk); else controller.close();
    },
  });
  const res = await fetch(process.env.EDGECHAT_URL + '/api/v1/auth/register', {
    method: 'POST', body: stream, duplex: 'half', headers: { 'content-type': 'application/json' },
  });
  assert.equal(res.status, 413);
  assert.equal((await res.json()).error.code, 'payload_too_large');
});

test('registering an address listed in the old ADMIN_EMAILS gives a plain user', async () => {
  // The shared worker still sets ADMIN_EMAILS=admin@test.example, as an old deployment may.
  const res = await api('POST', '/api/v1/auth/register', { json: { email: 'Admin@Test.Example', password: PASSWORD } });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.user.role, 'user');
  assert.equal((await me(res.body.access_token)).body.role, 'user');
  expectError(assert, await api('GET', '/api/v1/admin/users', { token: res.body.access_token }), 403);
});

test('login returns a new session; wrong password and unknown email get identical 401s', async () => {
  const { email, user } = await registerUser();
  const ok = await login(email.toUpperCase(), PASSWORD);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.body.user.user_id, user.user_id);
  assert.equal((await me(ok.body.access_token)).status, 200);

  const wrong = await login(email, 'wrong password!');
  const unknown = await login(uniqueEmail('ghost'), 'wrong password!');
  expectError(assert, wrong, 401, 'invalid_credentials');
  expectError(assert, unknown, 401, 'invalid_credentials');
  const strip = (r) => r.text.replace(r.body.error.request_id, '');
  assert.equal(strip(wrong), strip(unknown));
  assert.equal(wrong.headers.get('content-length'), unknown.headers.get('content-length'));
});

test('refresh rotates; reusing an old refresh token revokes the newer one too', async () => {
  const first = await registerUser();
  const second = await refresh(first.refresh_token);
  assert.equal(second.status, 200, second.text);
  assert.notEqual(second.body.refresh_token, first.refresh_token);
  assert.equal((await me(second.body.access_token)).status, 200);

  const reuse = await refresh(first.refresh_token);
  expectError(assert, reuse, 401, 'invalid_refresh_token');
  expectError(assert, await refresh(second.body.refresh_token), 401, 'invalid_refresh_token');
  expectError(assert, await me(second.body.access_token), 401, 'invalid_token');
  expectError(assert, await me(first.access_token), 401, 'invalid_token');
});

test('refresh rejects garbage, unknown and missing tokens with 401', async () => {
  for (const token of ['nope', 'ec_rt_short', `ec_rt_${'A'.repeat(43)}`]) {
    expectError(assert, await refresh(token), 401, 'invalid_refresh_token');
  }
  expectError(assert, await api('POST', '/api/v1/auth/refresh', { json: {} }), 401, 'invalid_refresh_token');
  expectError(assert, await api('POST', '/api/v1/auth/refresh', { json: { refresh_token: 'x', extra: 1 } }), 422);
});

test('the refresh cookie is HttpOnly, Secure, SameSite=Strict and works same-site only', async () => {
  const email = uniqueEmail();
  const reg = await api('POST', '/api/v1/auth/register', { json: { email, password: PASSWORD } });
  const setCookie = reg.headers.get('set-cookie');
  for (const part of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/api/v1/auth']) assert.match(setCookie, new RegExp(part));
  const cookie = setCookie.split(';')[0];
  const crossSite = await api('POST', '/api/v1/auth/refresh', { json: {}, headers: { cookie, origin: 'https://evil.example' } });
  expectError(assert, crossSite, 403, 'forbidden');
  const sameSite = await api('POST', '/api/v1/auth/refresh', { json: {}, headers: { cookie, origin: process.env.EDGECHAT_URL } });
  assert.equal(sameSite.status, 200, sameSite.text);
  assert.notEqual(sameSite.headers.get('set-cookie').split(';')[0], cookie);
});

test('logout kills the access token and the refresh token at once', async () => {
  const u = await registerUser();
  const res = await api('POST', '/api/v1/auth/logout', { token: u.access_token });
  assert.equal(res.status, 204);
  assert.match(res.headers.get('set-cookie'), /Max-Age=0/);
  expectError(assert, await me(u.access_token), 401, 'invalid_token');
  expectError(assert, await refresh(u.refresh_token), 401, 'invalid_refresh_token');
  expectError(assert, await api('POST', '/api/v1/auth/logout'), 401, 'unauthorized');
});

test('PATCH /users/me changes the display name and rejects forbidden fields', async () => {
  const u = await registerUser({ display_name: 'Before' });
  const res = await api('PATCH', '/api/v1/users/me', { token: u.access_token, json: { display_name: 'After' } });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.display_name, 'After');
  assert.equal((await me(u.access_token)).body.display_name, 'After');
  for (const json of [{ role: 'admin' }, { display_name: 'X', plan: 'pro' }, { is_disabled: 1 }, { user_id: 'usr_x' }]) {
    expectError(assert, await api('PATCH', '/api/v1/users/me', { token: u.access_token, json }), 422);
  }
  expectError(assert, await api('PATCH', '/api/v1/users/me', { token: u.access_token, json: {} }), 422);
  expectError(assert, await api('PATCH', '/api/v1/users/me', { token: u.access_token, json: { display_name: 'x'.repeat(101) } }), 422);
  const after = (await me(u.access_token)).body;
  assert.equal(after.role, 'user');
  assert.equal(after.plan, 'free');
  assert.equal(after.display_name, 'After');
});

test('a password change needs the current password and signs out other sessions', async () => {
  const u = await registerUser();
  const other = await login(u.email, PASSWORD);
  const wrong = await api('PATCH', '/api/v1/users/me', { token: u.access_token, json: { password: 'new password 1', current_password: 'not it at all' } });
  expectError(assert, wrong, 403, 'forbidden');
  const missing = await api('PATCH', '/api/v1/users/me', { token: u.access_token, json: { password: 'new password 1' } });
  expectError(assert, missing, 422);
  const weak = await api('PATCH', '/api/v1/users/me', { token: u.access_token, json: { password: 'short', current_password: PASSWORD } });
  expectError(assert, weak, 422);
  const ok = await api('PATCH', '/api/v1/users/me', { token: u.access_token, json: { password: 'new password 1', current_password: PASSWORD } });
  assert.equal(ok.status, 200, ok.text);
  assert.equal((await me(u.access_token)).status, 200, 'this session stays');
  expectError(assert, await me(other.body.access_token), 401, 'invalid_token');
  expectError(assert, await login(u.email, PASSWORD), 401, 'invalid_credentials');
  assert.equal((await login(u.email, 'new password 1')).status, 200);
});

test('DELETE /users/me needs the current password: missing is 422, wrong is 403, and nothing goes', async () => {
  const u = await registerUser();
  const del = (init) => api('DELETE', '/api/v1/users/me', { token: u.access_token, ...init });
  expectError(assert, await del({}), 422, 'validation_failed');
  expectError(assert, await del({ json: {} }), 422, 'validation_failed');
  expectError(assert, await del({ json: { current_password: null } }), 422, 'validation_failed');
  expectError(assert, await del({ json: { current_password: 7 } }), 422, 'validation_failed');
  expectError(assert, await del({ json: { current_password: PASSWORD, extra: true } }), 422, 'validation_failed');
  expectError(assert, await del({ body: '{"current_password":', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
  expectError(assert, await del({ json: { current_password: 'not the password' } }), 403, 'forbidden');
  expectError(assert, await del({ json: { current_password: '' } }), 403, 'forbidden');
  assert.equal((await me(u.access_token)).status, 200, 'the account is still there');
  assert.equal((await login(u.email, PASSWORD)).status, 200);
});

test('DELETE /users/me removes the account, its sessions and its keys', async () => {
  const u = await registerUser();
  const key = await api('POST', '/api/v1/keys', { token: u.access_token, json: { name: 'ci' } });
  assert.equal(key.status, 201);
  const res = await api('DELETE', '/api/v1/users/me', { token: u.access_token, json: { current_password: PASSWORD } });
  assert.equal(res.status, 204);
  expectError(assert, await me(u.access_token), 401, 'invalid_token');
  expectError(assert, await me(key.body.key), 401, 'invalid_token');
  expectError(assert, await refresh(u.refresh_token), 401, 'invalid_refresh_token');
  expectError(assert, await login(u.email, PASSWORD), 401, 'invalid_credentials');
  // The email is free again.
  assert.equal((await api('POST', '/api/v1/auth/register', { json: { email: u.email, password: PASSWORD } })).status, 201);
});

test('repeated failed logins for one email from one address are locked out with 429 and Retry-After', async () => {
  const u = await registerUser();
  const ip = uniqueIp();
  for (let i = 0; i < 5; i++) expectError(assert, await login(u.email, 'wrong password!', { ip }), 401);
  const locked = await login(u.email, PASSWORD, { ip });
  expectError(assert, locked, 429, 'too_many_login_attempts');
  const retry = Number(locked.headers.get('retry-after'));
  assert.ok(retry > 800 && retry <= 900, `Retry-After ${retry}`);
});

test('login throttling is exact under concurrency: 20 parallel failures from one address, exactly 5 checked', async () => {
  const u = await registerUser();
  const ip = uniqueIp();
  const results = await Promise.all(Array.from({ length: 20 }, () => login(u.email, 'wrong password!', { ip })));
  const statuses = results.map((r) => r.status).sort();
  assert.equal(statuses.filter((s) => s === 401).length, 5, statuses.join(','));
  assert.equal(statuses.filter((s) => s === 429).length, 15);
});

test('one client address is locked out after 20 failures across emails', async () => {
  const ip = uniqueIp();
  for (let i = 0; i < 20; i++) expectError(assert, await login(uniqueEmail('spray'), 'wrong password!', { ip }), 401);
  expectError(assert, await login(uniqueEmail('spray'), 'wrong password!', { ip }), 429, 'too_many_login_attempts');
  const u = await registerUser();
  assert.equal((await login(u.email, PASSWORD)).status, 200, 'other addresses are unaffected');
});

test('two refreshes racing with the same token: exactly one wins and the family is revoked', async () => {
  const u = await registerUser();
  const results = await Promise.all([refresh(u.refresh_token), refresh(u.refresh_token)]);
  const statuses = results.map((r) => r.status).sort();
  assert.deepEqual(statuses, [200, 401]);
  const winner = results.find((r) => r.status === 200);
  // The loser's reuse revoked the session, so the winner's new pair is dead too.
  expectError(assert, await refresh(winner.body.refresh_token), 401, 'invalid_refresh_token');
});
