// Later admins: the first admin is the operator's (`npm run admin -- grant`); every later one is
// made by an admin through the admin API, audited, and takes effect at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, expectError } from '../support/client.mjs';
import { grantAdmin, registerUser } from '../support/accounts.mjs';

const listUsers = (u) => api('GET', '/api/v1/admin/users?limit=1', { token: u.access_token });
const setRole = (admin, u, role) =>
  api('PATCH', `/api/v1/admin/users/${u.user.user_id}`, { token: admin.access_token, json: { role } });

test('an admin makes another admin through the admin API, audited, and the new admin can do the same', async () => {
  const first = await registerUser();
  await grantAdmin(process.env.EDGECHAT_PERSIST_DIR, first.email);
  const second = await registerUser();
  const third = await registerUser();
  expectError(assert, await listUsers(second), 403, 'forbidden');
  expectError(assert, await setRole(second, third, 'admin'), 403, 'forbidden');

  const promoted = await setRole(first, second, 'admin');
  assert.equal(promoted.status, 200, promoted.text);
  assert.equal(promoted.body.role, 'admin');
  // At once, with the session the second user already had.
  assert.equal((await listUsers(second)).status, 200);
  assert.equal((await setRole(second, third, 'admin')).status, 200);
  assert.equal((await listUsers(third)).status, 200);
  // An admin can take it back, with the same effect at once; no admin can drop their own role.
  assert.equal((await setRole(second, third, 'user')).status, 200);
  expectError(assert, await listUsers(third), 403, 'forbidden');
  expectError(assert, await setRole(second, second, 'user'), 422, 'validation_failed');

  const audit = (await api('GET', '/api/v1/admin/audit?limit=100', { token: first.access_token })).body.data.reverse();
  const about = (u) => audit.filter((a) => a.target_user_id === u.user.user_id).map((a) => [a.admin_user_id, a.action, a.detail.role]);
  assert.deepEqual(about(second), [[first.user.user_id, 'update_user', 'admin']]);
  assert.deepEqual(about(third), [[second.user.user_id, 'update_user', 'admin'], [second.user.user_id, 'update_user', 'user']]);
});
