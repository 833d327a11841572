// Account helpers for integration tests: unique users, registration, and JWTs crafted with
// the test secret to attack the token checks.
import { createHmac, randomBytes } from 'node:crypto';
import { api } from './client.mjs';
import { setRole } from '../../scripts/admin.mjs';
import { TEST_VARS } from './stack.mjs';

export const PASSWORD = 'correct horse battery';

/** An email no other test uses. */
export function uniqueEmail(tag = 'user') {
  return `${tag}-${randomBytes(6).toString('hex')}@test.example`;
}

/** A client address of its own, so login throttling in one test never touches another. */
export function uniqueIp() {
  const b = randomBytes(3);
  return `10.${b[0]}.${b[1]}.${b[2]}`;
}

/** Registers a fresh user; returns the token response plus the credentials used. */
export async function registerUser({ email = uniqueEmail(), password = PASSWORD, display_name } = {}) {
  const res = await api('POST', '/api/v1/auth/register', { json: { email, password, display_name } });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${res.text}`);
  return { ...res.body, email, password };
}

/** A new API key of user `u` (a registerUser result) with `scopes`; returns the key itself. */
export async function keyOf(u, scopes) {
  const res = await api('POST', '/api/v1/keys', { token: u.access_token, json: { name: 'k', scopes } });
  if (res.status !== 201) throw new Error(`key creation failed: ${res.status} ${res.text}`);
  return res.body.key;
}

/** Makes the account of `email` an admin in the local D1 under `persistDir`, through the
 * code of the operator's `npm run admin -- grant`. */
export async function grantAdmin(persistDir, email) {
  const { outcome } = await setRole(email, 'admin', { persistTo: persistDir });
  if (outcome === 'no_such_user') throw new Error(`no user ${email} to make admin`);
}

export async function login(email, password, { ip = uniqueIp() } = {}) {
  return api('POST', '/api/v1/auth/login', { json: { email, password }, headers: { 'cf-connecting-ip': ip } });
}

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Signs `payload` under `header` with HMAC-SHA256/384/512 and the worker's test secret. */
export function signJwt(payload, { header = { alg: 'HS256', typ: 'JWT' }, secret = TEST_VARS.JWT_SECRET, hash = 'sha256' } = {}) {
  const head = `${b64url(header)}.${b64url(payload)}`;
  return `${head}.${createHmac(hash, secret).update(head).digest('base64url')}`;
}

/** The claims of a JWT (unverified). */
export function decodeJwt(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
}
