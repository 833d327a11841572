// Per-user caps on stored tasks and memories (MAX_TASKS_PER_USER, MAX_MEMORIES_PER_USER): the
// next one over REST is 409 in the documented shape, over MCP `tools/call` an isError result;
// concurrent creations never pass the cap; the cap is per user and frees up on delete.
// Runs its own worker with small caps.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { api, expectError } from '../support/client.mjs';
import { PASSWORD } from '../support/accounts.mjs';
import { simVars, startWorker } from '../support/stack.mjs';

const MAX_TASKS = 3;
const MAX_MEMORIES = 2;

let worker;
let base;
before(async () => {
  worker = await startWorker({
    vars: simVars({ MAX_TASKS_PER_USER: String(MAX_TASKS), MAX_MEMORIES_PER_USER: String(MAX_MEMORIES) }),
  });
  base = worker.url;
});
after(() => worker?.stop());

const call = (method, path, opts = {}) => api(method, path, { base, ...opts });

async function user() {
  const email = `caps-${randomBytes(5).toString('hex')}@test.example`;
  const res = await call('POST', '/api/v1/auth/register', { json: { email, password: PASSWORD } });
  assert.equal(res.status, 201, res.text);
  return res.body;
}

const addTask = (u, title) => call('POST', '/api/v1/tasks', { token: u.access_token, json: { title } });
const addMemory = (u, content) => call('POST', '/api/v1/memories', { token: u.access_token, json: { content } });
const count = async (u, path) => (await call('GET', `${path}?limit=100`, { token: u.access_token })).body.data.length;

async function connect(u) {
  const res = await call('POST', '/api/v1/keys', { token: u.access_token, json: { name: 'mcp', scopes: ['tools'] } });
  assert.equal(res.status, 201, res.text);
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${res.body.key}` } },
  });
  const client = new Client({ name: 'edgechat-caps-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

async function tool(client, name, args) {
  const res = await client.callTool({ name, arguments: args });
  return { isError: res.isError === true, text: res.content[0].text };
}

test('the task after the cap is refused with 409 task_limit_reached, and deleting one frees a place', async () => {
  const u = await user();
  const ids = [];
  for (let i = 0; i < MAX_TASKS; i++) {
    const res = await addTask(u, `task ${i}`);
    assert.equal(res.status, 201, res.text);
    ids.push(res.body.task_id);
  }
  const err = expectError(assert, await addTask(u, 'one too many'), 409, 'task_limit_reached');
  assert.match(err.message, new RegExp(`at most ${MAX_TASKS} tasks`));
  assert.equal(await count(u, '/api/v1/tasks'), MAX_TASKS);

  // Per user: another user still has every place.
  assert.equal((await addTask(await user(), 'mine')).status, 201);

  assert.equal((await call('DELETE', `/api/v1/tasks/${ids[0]}`, { token: u.access_token })).status, 204);
  assert.equal((await addTask(u, 'after a delete')).status, 201);
  expectError(assert, await addTask(u, 'full again'), 409, 'task_limit_reached');
});

test('the memory after the cap is refused with 409 memory_limit_reached', async () => {
  const u = await user();
  for (let i = 0; i < MAX_MEMORIES; i++) assert.equal((await addMemory(u, `fact ${i}`)).status, 201);
  const err = expectError(assert, await addMemory(u, 'one too many'), 409, 'memory_limit_reached');
  assert.match(err.message, new RegExp(`at most ${MAX_MEMORIES} memories`));
  assert.equal(await count(u, '/api/v1/memories'), MAX_MEMORIES);
  const recall = await call('GET', '/api/v1/memories?q=many', { token: u.access_token });
  assert.deepEqual(recall.body.data, [], 'the refused memory is not in the full-text index either');
});

test('over MCP, add_task and remember beyond the cap are tool errors saying so, and nothing is stored', async () => {
  const u = await user();
  const client = await connect(u);
  for (let i = 0; i < MAX_TASKS; i++) assert.equal((await tool(client, 'add_task', { title: `t${i}` })).isError, false);
  const task = await tool(client, 'add_task', { title: 'one too many' });
  assert.equal(task.isError, true, task.text);
  assert.match(task.text, new RegExp(`at most ${MAX_TASKS} tasks per user`));
  for (let i = 0; i < MAX_MEMORIES; i++) assert.equal((await tool(client, 'remember', { content: `m${i}` })).isError, false);
  const memory = await tool(client, 'remember', { content: 'one too many' });
  assert.equal(memory.isError, true, memory.text);
  assert.match(memory.text, new RegExp(`at most ${MAX_MEMORIES} memories per user`));
  await client.close();
  assert.equal(await count(u, '/api/v1/tasks'), MAX_TASKS);
  assert.equal(await count(u, '/api/v1/memories'), MAX_MEMORIES);
  // REST sees the same cap the tools filled.
  expectError(assert, await addTask(u, 'over REST'), 409, 'task_limit_reached');
});

test('concurrent creations never pass the cap', async () => {
  const u = await user();
  const tasks = await Promise.all(Array.from({ length: 12 }, (_, i) => addTask(u, `race ${i}`)));
  const memories = await Promise.all(Array.from({ length: 12 }, (_, i) => addMemory(u, `race ${i}`)));
  for (const [results, cap, code] of [[tasks, MAX_TASKS, 'task_limit_reached'], [memories, MAX_MEMORIES, 'memory_limit_reached']]) {
    assert.equal(results.filter((r) => r.status === 201).length, cap, results.map((r) => r.status).join(','));
    for (const r of results.filter((r) => r.status !== 201)) expectError(assert, r, 409, code);
  }
  assert.equal(await count(u, '/api/v1/tasks'), MAX_TASKS);
  assert.equal(await count(u, '/api/v1/memories'), MAX_MEMORIES);

  // The same race through MCP tools.
  const v = await user();
  const client = await connect(v);
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => tool(client, 'add_task', { title: `mcp race ${i}` })));
  assert.equal(results.filter((r) => !r.isError).length, MAX_TASKS);
  await client.close();
  assert.equal(await count(v, '/api/v1/tasks'), MAX_TASKS);
});
