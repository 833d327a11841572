// `npm run admin -- grant|revoke EMAIL [--remote] [--persist-to DIR]`: the operator makes an
// existing account an admin (or a user again) in D1 through `wrangler d1 execute`: the local
// database of `npm run dev` by default, the deployed one with --remote. It is how the first
// admin is made (no address becomes admin by registering); later ones an admin makes through
// the admin API. The change is written to the admin audit log with `operator` as its author.
//
// `wrangler d1 execute` takes SQL text and cannot bind parameters, so the email never enters
// the SQL as text: it is checked like the worker's registration checks it, then written as
// a hex blob literal (X'...', cast to TEXT), which only hex digits can spell. The other
// values are constants, the clock and a random base64url id.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WRANGLER = path.join(ROOT, 'node_modules/wrangler/bin/wrangler.js');
/** Where `npm run dev` keeps its local D1 (scripts/dev.mjs). */
export const DEV_STATE_DIR = path.join(ROOT, '.wrangler/state');
/** The audit log's author of the changes this command makes. */
export const OPERATOR = 'operator';

const USAGE = `usage: npm run admin -- grant|revoke EMAIL [--remote] [--persist-to DIR]
  grant   make the account of EMAIL an admin
  revoke  make it a plain user again
  --remote          the deployed database (default: the local one of \`npm run dev\`)
  --persist-to DIR  the local database kept under DIR (default .wrangler/state)`;

/**
 * The address as the worker stores it (trimmed, ASCII letters lowercased), or null when the
 * worker would not have accepted it (the rule of `normalize_email` in crates/core).
 */
export function normalizeEmail(raw) {
  const email = String(raw).trim().replace(/[A-Z]/g, (c) => c.toLowerCase());
  if (Buffer.byteLength(email) > 254 || /[\s\p{Cc}]/u.test(email)) return null;
  const at = email.indexOf('@');
  if (at < 0) return null;
  const [local, domain] = [email.slice(0, at), email.slice(at + 1)];
  const domainOk = domain.includes('.') && !domain.includes('@') && !domain.startsWith('.')
    && !domain.endsWith('.') && !domain.includes('..');
  return local.length > 0 && Buffer.byteLength(local) <= 64 && domainOk ? email : null;
}

/** `text` as an SQLite expression that no input can break out of: a hex blob read as TEXT. */
export function textLiteral(text) {
  return `CAST(X'${Buffer.from(text, 'utf8').toString('hex')}' AS TEXT)`;
}

/**
 * The statements of one change: the account as it was, the audit row (only when the role
 * changes) and the change itself.
 */
export function roleChangeSql(email, role, now = Date.now(), auditId = `aud_${randomBytes(16).toString('base64url')}`) {
  if (role !== 'admin' && role !== 'user') throw new Error(`unknown role ${role}`);
  if (!/^aud_[A-Za-z0-9_-]{22}$/.test(auditId) || !Number.isSafeInteger(now)) throw new Error('bad audit id or time');
  const who = textLiteral(email);
  const detail = JSON.stringify({ role, plan: null, is_disabled: null });
  return [
    `SELECT user_id, role FROM users WHERE email = ${who}`,
    'INSERT INTO admin_audit (admin_audit_id, admin_user_id, target_user_id, action, detail, created_at) '
      + `SELECT '${auditId}', '${OPERATOR}', user_id, 'update_user', '${detail}', ${now} FROM users WHERE email = ${who} AND role <> '${role}'`,
    `UPDATE users SET role = '${role}', updated_at = ${now} WHERE email = ${who} AND role <> '${role}' RETURNING user_id`,
  ].join('; ');
}

/** Runs wrangler with `args`; resolves to its stdout, rejects with its output on failure. */
function wrangler(args) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [WRANGLER, ...args], { cwd: ROOT, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`wrangler d1 execute failed:\n${`${stdout}\n${stderr}`.trim().slice(-4000)}`));
      else resolve(stdout);
    });
  });
}

/**
 * Gives the account of `email` the `role` ('admin' or 'user') in the local database under
 * `persistTo` (default: `npm run dev`'s), or the deployed one when `remote`.
 * Resolves to { outcome: 'changed' | 'unchanged' | 'no_such_user', email, user_id }.
 */
export async function setRole(rawEmail, role, { remote = false, persistTo = DEV_STATE_DIR } = {}) {
  const email = normalizeEmail(rawEmail);
  if (!email) throw new UsageError(`not an email address: ${JSON.stringify(String(rawEmail))}`);
  // wrangler would make an empty database where there is none: say what is missing instead.
  if (!remote && !existsSync(persistTo)) throw new Error(`no local database under ${shown(persistTo)}: start \`npm run dev\` once first`);
  const where = remote ? ['--remote', '--yes'] : ['--local', '--persist-to', persistTo];
  const out = await wrangler(['d1', 'execute', 'DB', ...where, '--json', '--command', roleChangeSql(email, role)]);
  const results = JSON.parse(out.slice(out.indexOf('[')));
  const [before] = results[0]?.results ?? [];
  if (!before) return { outcome: 'no_such_user', email, user_id: null };
  const changed = (results[2]?.results ?? []).length > 0;
  return { outcome: changed ? 'changed' : 'unchanged', email, user_id: before.user_id };
}

class UsageError extends Error {}

/** `dir` relative to the working directory when it is under it, else absolute. */
function shown(dir) {
  const rel = path.relative(process.cwd(), dir);
  return rel === '' ? '.' : rel.startsWith('..') || path.isAbsolute(rel) ? path.resolve(dir) : rel;
}

/** The command line: says what it did; exits 1 when there is no such user, 2 on bad usage. */
async function main(argv) {
  const args = [...argv];
  const flag = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? args.splice(i, 1) : null;
  };
  const option = (name) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const [, value] = args.splice(i, 2);
    if (value === undefined) throw new UsageError(`${name} needs a value`);
    return value;
  };
  const remote = Boolean(flag('--remote'));
  const persistTo = option('--persist-to');
  if (remote && persistTo) throw new UsageError('--persist-to is for the local database only');
  if (flag('--help') || flag('-h')) return console.log(USAGE), 0;
  const [command, email, ...rest] = args;
  const role = { grant: 'admin', revoke: 'user' }[command];
  if (!role || !email || rest.length) throw new UsageError(USAGE);
  const db = remote ? 'the deployed database' : `the local database (${shown(persistTo ?? DEV_STATE_DIR)})`;
  const r = await setRole(email, role, { remote, persistTo: persistTo ?? DEV_STATE_DIR });
  if (r.outcome === 'no_such_user') {
    console.error(`no account ${r.email} in ${db}: it must register first`);
    return 1;
  }
  if (r.outcome === 'unchanged') {
    console.log(`${r.email} (${r.user_id}) is already ${role === 'admin' ? 'an admin' : 'not an admin'} in ${db}`);
  } else {
    console.log(`${command === 'grant' ? 'granted admin to' : 'revoked admin from'} ${r.email} (${r.user_id}) in ${db}`);
  }
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err instanceof UsageError ? err.message : `admin: ${err.message}`);
      process.exit(err instanceof UsageError ? 2 : 1);
    },
  );
}
