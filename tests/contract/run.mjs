// Contract fuzzing: schemathesis generates requests from public/openapi.json (as the worker
// serves it at /openapi.json) and checks that no response is a 5xx and that every response
// matches the document.
//
// As a module: `prepareFixtures(url)` makes the users, keys and conversations whose ids the
// run's path parameters use, and `runSchemathesis(...)` runs the pinned schemathesis CLI
// (tests/integration/contract.test.mjs does both against a worker of its own).
// As a script, against a worker that is already running (`npm run dev`):
//   node tests/contract/run.mjs [URL]        (default http://127.0.0.1:8787)
// (its fixtures user is new and not an admin, so admin routes answer 403, unless
// EDGECHAT_CONTRACT_ADMIN_EMAIL names an account made admin with `npm run admin -- grant`;
// model calls count against that user's plan, so expect 429s on the default free plan).
// Environment: EDGECHAT_CONTRACT_VENV (else scripts/setup-contract.sh is run),
// EDGECHAT_CONTRACT_EXAMPLES (generated cases per operation and phase, default 25),
// EDGECHAT_CONTRACT_SEED (default fixed, "random" for a new one each run),
// EDGECHAT_CONTRACT_WORKERS (default 4), EDGECHAT_CONTRACT_REPORT (schemathesis report formats,
// default junit; e.g. junit,har to keep every request and response), EDGECHAT_CONTRACT_CHECKS (comma-separated, default
// CHECKS below; "all" adds schemathesis's stricter probes, which also flag what the document
// cannot express, such as unknown model names or opaque cursors being refused).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PASSWORD = 'contract-password-1';
/** Routed model names of the test workers, offered for `model` fields half of the time. */
export const MODELS = ['sim-small', 'sim-large', 'claude', 'echo'];
/** The checks the run enforces: no 5xx, and status, content type, headers and body of every
 * response as documented. */
export const CHECKS = [
  'not_a_server_error',
  'response_schema_conformance',
  'status_code_conformance',
  'content_type_conformance',
  'response_headers_conformance',
];
const DEFAULT_SEED = 20260422;

/** The schemathesis venv: EDGECHAT_CONTRACT_VENV, or the one scripts/setup-contract.sh makes. */
export function contractVenv() {
  if (process.env.EDGECHAT_CONTRACT_VENV) return process.env.EDGECHAT_CONTRACT_VENV;
  const out = execFileSync('bash', [path.join(ROOT, 'scripts/setup-contract.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return out.trim().split('\n').at(-1);
}

async function call(base, method, route, { json, token } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + route, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch {}
  return { status: res.status, body, text };
}

async function expect(res, status, what) {
  if (res.status !== status) throw new Error(`contract fixtures: ${what} answered ${res.status}: ${res.text.slice(0, 500)}`);
  return res.body;
}

/**
 * Registers (or signs in) `email`; returns the token response.
 */
async function account(base, email) {
  const reg = await call(base, 'POST', '/api/v1/auth/register', { json: { email, password: PASSWORD } });
  if (reg.status === 201) return reg.body;
  if (reg.status !== 409) await expect(reg, 201, `register ${email}`);
  return expect(await call(base, 'POST', '/api/v1/auth/login', { json: { email, password: PASSWORD } }), 200, `login ${email}`);
}

/**
 * Creates what the run's path parameters point at, and the credentials it uses; returns them
 * as the environment variables the generated schemathesis config reads.
 * `adminEmail`'s account should be an admin (else admin routes answer 403, which the document
 * allows too); `grantAdmin(email)`, when given, makes it one once it exists.
 */
export async function prepareFixtures(base, { adminEmail = `contract-${randomBytes(5).toString('hex')}@test.example`, grantAdmin } = {}) {
  const tag = randomBytes(5).toString('hex');
  const admin = await account(base, adminEmail);
  if (grantAdmin) await grantAdmin(adminEmail);
  const role = (await expect(await call(base, 'GET', '/api/v1/users/me', { token: admin.access_token }), 200, 'me')).role;
  // A fixtures account reused across runs fills up with the keys earlier runs generated.
  const keys = await expect(await call(base, 'GET', '/api/v1/keys', { token: admin.access_token }), 200, 'list keys');
  if (keys.data.length > 90) {
    for (const k of keys.data) await call(base, 'DELETE', `/api/v1/keys/${k.api_key_id}`, { token: admin.access_token });
  }
  // Every scope, so the key reaches every route an API key may use.
  const key = await expect(await call(base, 'POST', '/api/v1/keys', { token: admin.access_token, json: { name: 'contract', scopes: ['gateway', 'chat', 'read', 'tools'] } }), 201, 'create key');
  const spare = await expect(await call(base, 'POST', '/api/v1/keys', { token: admin.access_token, json: { name: 'contract spare' } }), 201, 'create spare key');
  // A second session of the admin, for logout to end.
  const session = await expect(await call(base, 'POST', '/api/v1/auth/login', { json: { email: adminEmail, password: PASSWORD } }), 200, 'login');
  const conversation = await expect(await call(base, 'POST', '/api/v1/conversations', {
    token: key.key,
    json: {
      title: 'contract',
      messages: [
        { role: 'user', content: 'What is a contract test?' },
        { role: 'assistant', content: 'A check that an API answers what its document says.' },
      ],
    },
  }), 201, 'create conversation');
  const spareConversation = await expect(await call(base, 'POST', '/api/v1/conversations', { token: key.key, json: { title: 'to delete' } }), 201, 'create spare conversation');
  const messages = await expect(await call(base, 'GET', `/api/v1/conversations/${conversation.conversation_id}/messages`, { token: key.key }), 200, 'list messages');
  const [question, answer] = messages.data;
  const task = await expect(await call(base, 'POST', '/api/v1/tasks', { token: key.key, json: { title: 'contract' } }), 201, 'create task');
  const spareTask = await expect(await call(base, 'POST', '/api/v1/tasks', { token: key.key, json: { title: 'to delete' } }), 201, 'create spare task');
  const memory = await expect(await call(base, 'POST', '/api/v1/memories', { token: key.key, json: { content: 'to forget' } }), 201, 'create memory');
  // A user for the admin to change, and one whose account `DELETE /users/me` removes.
  const target = await account(base, `contract-target-${tag}@test.example`);
  const doomed = await account(base, `contract-doomed-${tag}@test.example`);
  return {
    EDGECHAT_CONTRACT_API_KEY: key.key,
    EDGECHAT_CONTRACT_SPARE_KEY_ID: spare.api_key_id,
    EDGECHAT_CONTRACT_SESSION_TOKEN: session.access_token,
    EDGECHAT_CONTRACT_ADMIN_TOKEN: admin.access_token,
    EDGECHAT_CONTRACT_CONVERSATION_ID: conversation.conversation_id,
    EDGECHAT_CONTRACT_SPARE_CONVERSATION_ID: spareConversation.conversation_id,
    EDGECHAT_CONTRACT_QUESTION_ID: question.message_id,
    EDGECHAT_CONTRACT_MESSAGE_ID: answer.message_id,
    EDGECHAT_CONTRACT_TARGET_USER_ID: target.user.user_id,
    EDGECHAT_CONTRACT_TASK_ID: task.task_id,
    EDGECHAT_CONTRACT_SPARE_TASK_ID: spareTask.task_id,
    EDGECHAT_CONTRACT_MEMORY_ID: memory.memory_id,
    EDGECHAT_CONTRACT_DOOMED_TOKEN: doomed.access_token,
    EDGECHAT_CONTRACT_IS_ADMIN: String(role === 'admin'),
  };
}

/** The operations an API key may never call (`x-edgechat-access: "session"`), but for logout
 * and deleteMe, which have credentials of their own. */
const SESSION_OPERATIONS = ['updateMe', 'createKey', 'listKeys', 'deleteKey', 'adminListUsers', 'adminUpdateUser', 'adminUsage', 'adminWebhookEvents', 'adminAudit'];

const toml = (v) => JSON.stringify(v); // TOML basic strings and arrays of them read like JSON

/** Fixtures that are credentials: the config names them, schemathesis reads them from its
 * environment, so they are never written to disk. */
const SECRET_FIXTURES = ['EDGECHAT_CONTRACT_API_KEY', 'EDGECHAT_CONTRACT_SESSION_TOKEN', 'EDGECHAT_CONTRACT_ADMIN_TOKEN', 'EDGECHAT_CONTRACT_DOOMED_TOKEN'];

/** The schemathesis.toml of a run: real ids and model names from `fixtures`; `${NAME}` is read
 * from the environment by schemathesis. */
export function schemathesisConfig(fixtures) {
  const f = fixtures;
  return `# Generated by tests/contract/run.mjs for one run.
# Every bearer-authenticated call acts as the fixtures' admin, by an API key with every scope;
# the routes only a session may use (keys, the account, admin: an API key gets 403
# session_required there) get the admin's first session, so admin routes answer real data.
headers = { Authorization = "Bearer \${EDGECHAT_CONTRACT_API_KEY}" }
request-timeout = 30
# Streams are read this far; stopping early is a client going away, which the worker survives.
max-stream-events = 100

[generation]
database = "none"

# Real ids, so path parameters reach existing resources rather than answering 404 throughout.
[parameters]
"path.conversation_id" = ${toml(f.EDGECHAT_CONTRACT_CONVERSATION_ID)}
"path.message_id" = ${toml(f.EDGECHAT_CONTRACT_MESSAGE_ID)}
"path.api_key_id" = ${toml(f.EDGECHAT_CONTRACT_SPARE_KEY_ID)}
"path.user_id" = ${toml(f.EDGECHAT_CONTRACT_TARGET_USER_ID)}
"path.task_id" = ${toml(f.EDGECHAT_CONTRACT_TASK_ID)}
"path.memory_id" = ${toml(f.EDGECHAT_CONTRACT_MEMORY_ID)}
# Routed model names half of the time (generated names answer 422 or 404).
"body.model" = { dictionary = "models", probability = 0.5 }
"query.leaf" = { dictionary = "messages", probability = 0.5 }

[dictionaries.models]
values = ${toml(MODELS)}

[dictionaries.messages]
values = ${toml([f.EDGECHAT_CONTRACT_QUESTION_ID, f.EDGECHAT_CONTRACT_MESSAGE_ID])}

# Destructive operations get targets and credentials of their own, so they never take away
# what the rest of the run uses.
[[operations]]
include-operation-id = "deleteConversation"
parameters = { "path.conversation_id" = ${toml(f.EDGECHAT_CONTRACT_SPARE_CONVERSATION_ID)} }

[[operations]]
include-operation-id = "deleteTask"
parameters = { "path.task_id" = ${toml(f.EDGECHAT_CONTRACT_SPARE_TASK_ID)} }

[[operations]]
include-operation-id = "deleteMe"
headers = { Authorization = "Bearer \${EDGECHAT_CONTRACT_DOOMED_TOKEN}" }

${SESSION_OPERATIONS.map((id) => `[[operations]]
include-operation-id = "${id}"
headers = { Authorization = "Bearer \${EDGECHAT_CONTRACT_ADMIN_TOKEN}" }
`).join('\n')}
[[operations]]
include-operation-id = "logout"
headers = { Authorization = "Bearer \${EDGECHAT_CONTRACT_SESSION_TOKEN}" }

# Regenerate answers as a stream (sending a message answers JSON): both forms are exercised.
[[operations]]
include-operation-id = "regenerate"
headers = { Accept = "text/event-stream" }
`;
}

/** The counts of schemathesis's closing summary ("Test cases: N generated, N passed" or
 * "N generated, N found M unique failures"). */
export function summarize(output) {
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const line = plain.match(/Test cases:\s*([^\n]*)/)?.[1] ?? '';
  const n = (word) => Number(line.match(new RegExp(`(\\d+) ${word}`))?.[1] ?? 0);
  const ops = plain.match(/API Operations:\s*([^\n]*)/)?.[1] ?? '';
  const failures = Number(line.match(/(\d+) unique failures?/)?.[1] ?? 0);
  return { generated: n('generated'), passed: n('passed'), skipped: n('skipped'), failures, operations: ops.trim(), line: line.trim() };
}

/**
 * Runs `schemathesis run` against `url` with the config made from `fixtures`; resolves to
 * {code, output, summary, seconds}. Output goes to the terminal as it comes and to
 * `workDir`/schemathesis.log, with the JUnit report beside it.
 */
export async function runSchemathesis({ venv, url, fixtures, workDir, examples, seed, workers, checks, echo = true }) {
  mkdirSync(workDir, { recursive: true });
  const configFile = path.join(workDir, 'schemathesis.toml');
  writeFileSync(configFile, schemathesisConfig(fixtures));
  examples ??= Number(process.env.EDGECHAT_CONTRACT_EXAMPLES ?? 25);
  workers ??= Number(process.env.EDGECHAT_CONTRACT_WORKERS ?? 4);
  seed ??= process.env.EDGECHAT_CONTRACT_SEED ?? String(DEFAULT_SEED);
  checks ??= process.env.EDGECHAT_CONTRACT_CHECKS?.split(',') ?? CHECKS;
  const args = [
    '--config-file', configFile,
    'run', `${url}/openapi.json`,
    '--url', url,
    '--checks', checks.join(','),
    '--phases', 'examples,coverage,fuzzing',
    '--max-examples', String(examples),
    '--workers', String(workers),
    '--report', process.env.EDGECHAT_CONTRACT_REPORT ?? 'junit',
    '--report-dir', workDir,
    '--no-color',
  ];
  if (seed !== 'random') args.push('--seed', String(seed));
  const started = Date.now();
  const child = spawn(path.join(venv, 'bin/schemathesis'), args, {
    cwd: workDir,
    env: {
      ...process.env,
      ...Object.fromEntries(SECRET_FIXTURES.map((name) => [name, fixtures[name]])),
      // Serializes ast.parse across schemathesis's worker threads (see hooks.py).
      SCHEMATHESIS_HOOKS: path.join(ROOT, 'tests/contract/hooks.py'),
      PYTHONUNBUFFERED: '1',
      NO_COLOR: '1',
      COLUMNS: '120',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk) => {
    output += chunk;
    if (echo) process.stdout.write(chunk);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const [code] = await once(child, 'exit');
  mkdirSync(workDir, { recursive: true }); // a parallel suite run may have swept the artifacts
  writeFileSync(path.join(workDir, 'schemathesis.log'), output);
  return { code, output, summary: summarize(output), seconds: (Date.now() - started) / 1000, args };
}

// As a script: fuzz a worker that is already running.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const url = (process.argv[2] ?? 'http://127.0.0.1:8787').replace(/\/$/, '');
  const venv = contractVenv();
  const fixtures = await prepareFixtures(url, { adminEmail: process.env.EDGECHAT_CONTRACT_ADMIN_EMAIL });
  const workDir = path.join(ROOT, 'test-artifacts/contract');
  const result = await runSchemathesis({ venv, url, fixtures, workDir });
  console.log(`\ncontract: ${result.summary.line || 'no summary'} in ${result.seconds.toFixed(1)} s (exit ${result.code}); log in ${path.relative(ROOT, workDir)}/`);
  process.exit(result.code ?? 1);
}

