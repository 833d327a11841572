// The operator's `npm run admin -- grant|revoke EMAIL`, run as the operator runs it, against
// the shared worker's local D1 (`--persist-to`): it makes an existing account admin, says
// what it did, and exits non-zero for an unknown account or a bad address, changing nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { api, expectError } from '../support/client.mjs';
import { registerUser, uniqueEmail } from '../support/accounts.mjs';
import { ROOT } from '../support/stack.mjs';

const persistDir = process.env.EDGECHAT_PERSIST_DIR;

/** `npm run admin -- ...args --persist-to <the test state>`: { code, stdout, stderr }. */
function admin(...args) {
  return new Promise((resolve) => {
    execFile('npm', ['run', '--silent', 'admin', '--', ...args, '--persist-to', persistDir], { cwd: ROOT }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

const me = async (u) => (await api('GET', '/api/v1/users/me', { token: u.access_token })).body;
const adminUsers = (u) => api('GET', '/api/v1/admin/users', { token: u.access_token });

test('grant makes an existing account admin, audited as the operator; revoke undoes it', async () => {
  const u = await registerUser({ email: uniqueEmail('operator-grant') });
  expectError(assert, await adminUsers(u), 403);

  const granted = await admin('grant', `  ${u.email.toUpperCase()} `);
  assert.equal(granted.code, 0, granted.stderr);
  assert.match(granted.stdout, new RegExp(`granted admin to ${u.email} \\(${u.user.user_id}\\)`));
  assert.equal((await me(u)).role, 'admin', 'the session it already had is an admin one now');
  assert.equal((await adminUsers(u)).status, 200);

  const audit = (await api('GET', '/api/v1/admin/audit?limit=100', { token: u.access_token })).body.data
    .filter((a) => a.target_user_id === u.user.user_id);
  assert.equal(audit.length, 1);
  assert.equal(audit[0].admin_user_id, 'operator');
  assert.equal(audit[0].action, 'update_user');
  assert.deepEqual(audit[0].detail, { role: 'admin', plan: null, is_disabled: null });
  assert.match(audit[0].admin_audit_id, /^aud_[A-Za-z0-9_-]{22}$/);

  const again = await admin('grant', u.email);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /is already an admin/);

  const revoked = await admin('revoke', u.email);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.match(revoked.stdout, new RegExp(`revoked admin from ${u.email}`));
  assert.equal((await me(u)).role, 'user');
  expectError(assert, await adminUsers(u), 403);
});

test('an unknown account, a bad address or bad usage exits non-zero and changes nothing', async () => {
  const bystander = await registerUser({ email: uniqueEmail('bystander') });
  const unknown = await admin('grant', uniqueEmail('ghost'));
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no account ghost-[0-9a-f]+@test\.example in the local database/);
  assert.equal(unknown.stdout, '');

  for (const args of [['grant', 'not-an-email'], ['grant', 'a b@test.example'], ['grant'], ['promote', bystander.email], ['grant', bystander.email, 'extra']]) {
    const res = await admin(...args);
    assert.equal(res.code, 2, `${args.join(' ')}: ${res.stdout}${res.stderr}`);
  }
  assert.equal((await me(bystander)).role, 'user');
});

test('an address shaped to break out of SQL is only ever compared as text', async () => {
  // Pasted into `WHERE email = '...'` this reads `email = '' OR '1' < '2@a.co'`: every account.
  const evil = `'or'1'<'2@a.co`;
  const bystander = await registerUser({ email: uniqueEmail('bystander') });
  const unknown = await admin('grant', evil);
  assert.equal(unknown.code, 1, unknown.stdout);
  assert.equal((await me(bystander)).role, 'user');

  // The worker accepts that address, so the command must find it exactly.
  const owner = await registerUser({ email: evil });
  const granted = await admin('grant', evil);
  assert.equal(granted.code, 0, granted.stderr);
  assert.equal((await me(owner)).role, 'admin');
  assert.equal((await me(bystander)).role, 'user');
  assert.equal((await admin('revoke', evil)).code, 0);
});
