// The MCP server (POST /mcp): the official SDK's Client over its Streamable HTTP transport
// with an API key (scope tools) lists and calls every built-in tool; bad arguments come back
// as isError results; another user's key sees nothing of the first user's tasks and
// memories; and the raw JSON-RPC cases (parse error, invalid request, unknown method,
// invalid params, notifications, batches, versions) and the HTTP ones (401, 403, 405) by fetch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { api, expectError, BASE } from '../support/client.mjs';
import { keyOf, registerUser } from '../support/accounts.mjs';

const TOOLS = ['add_task', 'list_tasks', 'update_task', 'complete_task', 'delete_task', 'remember', 'recall', 'forget', 'search_conversations'];

async function connect(token) {
  const transport = new StreamableHTTPClientTransport(new URL(`${BASE}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: 'edgechat-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

/** Calls a tool; returns {isError, text, json} (json: the text parsed when it is JSON). */
async function call(client, name, args) {
  const res = await client.callTool({ name, arguments: args });
  assert.equal(res.content.length, 1);
  assert.equal(res.content[0].type, 'text');
  const text = res.content[0].text;
  let json = null;
  try { json = JSON.parse(text); } catch {}
  // A successful object result is also structured content, equal to the text's JSON.
  if (res.isError !== true && json && typeof json === 'object' && !Array.isArray(json)) {
    assert.deepEqual(res.structuredContent, json);
  } else {
    assert.equal(res.structuredContent, undefined);
  }
  return { isError: res.isError === true, text, json };
}

async function ok(client, name, args) {
  const r = await call(client, name, args);
  assert.equal(r.isError, false, `${name}: ${r.text}`);
  return r.json;
}

/** A raw JSON-RPC POST. */
function rpc(token, body, headers = {}) {
  return api('POST', '/mcp', { token, body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } });
}

test('the SDK client initializes, pings and lists every tool with its input schema', async () => {
  const u = await registerUser();
  const client = await connect(await keyOf(u, ['tools']));
  assert.equal(client.getServerVersion().name, 'edgechat');
  assert.deepEqual(client.getServerCapabilities().tools, { listChanged: false });
  await client.ping();
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name), TOOLS);
  for (const t of tools) {
    assert.ok(t.description.length > 10, t.name);
    assert.equal(t.inputSchema.type, 'object', t.name);
    assert.equal(t.inputSchema.additionalProperties, false, t.name);
  }
  const add = tools.find((t) => t.name === 'add_task');
  assert.deepEqual(add.inputSchema.required, ['title']);
  assert.deepEqual(Object.keys(add.inputSchema.properties).sort(), ['due_at', 'notes', 'title']);
  await client.close();
});

test('every tool runs through the SDK client on the caller\'s data, seen by REST too', async () => {
  const u = await registerUser();
  const client = await connect(await keyOf(u, ['tools']));

  const milk = await ok(client, 'add_task', { title: 'buy milk', due_at: '2027-01-10T09:00:00Z' });
  assert.match(milk.task_id, /^tsk_/);
  assert.equal(milk.status, 'open');
  const bread = await ok(client, 'add_task', { title: 'buy bread', notes: 'rye' });
  const rest = await api('GET', `/api/v1/tasks/${milk.task_id}`, { token: u.access_token });
  assert.equal(rest.body.title, 'buy milk');

  const listed = await ok(client, 'list_tasks', {});
  assert.deepEqual(listed.tasks.map((t) => t.title), ['buy bread', 'buy milk']);
  assert.equal(listed.truncated, false);
  assert.deepEqual((await ok(client, 'list_tasks', { due_before: '2027-02-01T00:00:00Z' })).tasks.map((t) => t.title), ['buy milk']);
  const one = await ok(client, 'list_tasks', { limit: 1 });
  assert.equal(one.tasks.length, 1);
  assert.equal(one.truncated, true);

  const renamed = await ok(client, 'update_task', { task_id: bread.task_id, title: 'buy sourdough', notes: null });
  assert.equal(renamed.title, 'buy sourdough');
  assert.equal(renamed.notes, null);
  const done = await ok(client, 'complete_task', { task_id: milk.task_id });
  assert.equal(done.status, 'done');
  assert.ok(done.completed_at);
  assert.deepEqual((await ok(client, 'list_tasks', { status: 'done' })).tasks.map((t) => t.task_id), [milk.task_id]);
  assert.deepEqual((await ok(client, 'list_tasks', { status: 'open' })).tasks.map((t) => t.task_id), [bread.task_id]);
  assert.deepEqual(await ok(client, 'delete_task', { task_id: bread.task_id }), { deleted: bread.task_id });
  assert.equal((await api('GET', `/api/v1/tasks/${bread.task_id}`, { token: u.access_token })).status, 404);

  const tea = await ok(client, 'remember', { content: 'prefers jasmine tea' });
  assert.match(tea.memory_id, /^mem_/);
  await ok(client, 'remember', { content: 'works night shifts' });
  const recalled = await ok(client, 'recall', { query: 'jasmine' });
  assert.deepEqual(recalled.memories.map((m) => m.content), ['prefers jasmine tea']);
  assert.deepEqual((await ok(client, 'recall', { query: 'coffee' })).memories, []);
  assert.deepEqual(await ok(client, 'forget', { memory_id: tea.memory_id }), { forgotten: tea.memory_id });
  assert.deepEqual((await ok(client, 'recall', { query: 'jasmine' })).memories, []);
  assert.deepEqual((await api('GET', '/api/v1/memories', { token: u.access_token })).body.data.map((m) => m.content), ['works night shifts']);

  const conv = await api('POST', '/api/v1/conversations', { token: u.access_token, json: { title: 'trip', messages: [{ role: 'user', content: 'plan a visit to Quimper' }, { role: 'assistant', content: 'sure' }] } });
  assert.equal(conv.status, 201, conv.text);
  const found = await ok(client, 'search_conversations', { query: 'quimper' });
  assert.deepEqual(found.conversations.map((c) => [c.conversation_id, c.title]), [[conv.body.conversation_id, 'trip']]);
  assert.deepEqual((await ok(client, 'search_conversations', { query: 'lisbon' })).conversations, []);
  await client.close();
});

test('bad arguments and unknown ids come back as isError results, changing nothing', async () => {
  const u = await registerUser();
  const client = await connect(u.access_token); // a session's access token works too
  const cases = [
    ['add_task', {}, /title/],
    ['add_task', { title: '' }, /title/],
    ['add_task', { title: 'x', owner: 'usr_x' }, /owner/],
    ['add_task', { title: 'x', due_at: 'friday' }, /due_at/],
    ['list_tasks', { status: 'closed' }, /status/],
    ['list_tasks', { limit: 500 }, /limit/],
    ['update_task', { task_id: 'tsk_nope', title: 'x' }, /task_id/],
    ['update_task', { task_id: 'tsk_AAAAAAAAAAAAAAAAAAAAAA' }, /nothing to update|no such task/],
    ['complete_task', { task_id: 'tsk_AAAAAAAAAAAAAAAAAAAAAA' }, /no such task/],
    ['delete_task', {}, /task_id/],
    ['remember', { content: '   ' }, /content/],
    ['recall', { query: '()' }, /query/],
    ['forget', { memory_id: 'mem_AAAAAAAAAAAAAAAAAAAAAA' }, /no such memory/],
    ['search_conversations', { query: 'x', limit: 0 }, /limit/],
  ];
  for (const [name, args, pattern] of cases) {
    const r = await call(client, name, args);
    assert.equal(r.isError, true, `${name} ${JSON.stringify(args)}: ${r.text}`);
    assert.match(r.text, pattern, name);
  }
  assert.deepEqual((await ok(client, 'list_tasks', {})).tasks, []);
  assert.deepEqual((await api('GET', '/api/v1/memories', { token: u.access_token })).body.data, []);
  await client.close();
});

test("another user's key sees nothing of the first user's tasks and memories", async () => {
  const a = await registerUser();
  const b = await registerUser();
  const ca = await connect(await keyOf(a, ['tools']));
  const cb = await connect(await keyOf(b, ['tools']));
  const task = await ok(ca, 'add_task', { title: 'a private errand' });
  const memory = await ok(ca, 'remember', { content: 'a secret zucchini recipe' });
  await api('POST', '/api/v1/conversations', { token: a.access_token, json: { title: 'zucchini talk', messages: [{ role: 'user', content: 'zucchini' }] } });

  assert.deepEqual((await ok(cb, 'list_tasks', {})).tasks, []);
  assert.deepEqual((await ok(cb, 'recall', { query: 'zucchini' })).memories, []);
  assert.deepEqual((await ok(cb, 'search_conversations', { query: 'zucchini' })).conversations, []);
  for (const [name, args] of [['update_task', { task_id: task.task_id, title: 'mine' }], ['complete_task', { task_id: task.task_id }], ['delete_task', { task_id: task.task_id }], ['forget', { memory_id: memory.memory_id }]]) {
    const r = await call(cb, name, args);
    assert.equal(r.isError, true, name);
    assert.match(r.text, /no such/, name);
  }
  const still = await ok(ca, 'list_tasks', {});
  assert.deepEqual(still.tasks.map((t) => [t.title, t.status]), [['a private errand', 'open']]);
  assert.equal((await ok(ca, 'recall', { query: 'zucchini' })).memories.length, 1);
  await ca.close();
  await cb.close();
});

test('credentials: 401 without one (WWW-Authenticate), 403 for a key without tools, 405 for GET', async () => {
  const u = await registerUser();
  const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };
  const none = await rpc(undefined, ping);
  expectError(assert, none, 401, 'unauthorized');
  assert.match(none.headers.get('www-authenticate'), /^Bearer/);
  for (const scopes of [['gateway'], ['chat', 'read']]) {
    expectError(assert, await rpc(await keyOf(u, scopes), ping), 403, 'insufficient_scope');
  }
  const key = await keyOf(u, ['tools']);
  const get = await api('GET', '/mcp', { token: key, headers: { accept: 'text/event-stream' } });
  assert.equal(get.status, 405);
  assert.equal(get.headers.get('allow'), 'POST');
  expectError(assert, await rpc(key, ping, { origin: 'https://evil.example' }), 403, 'forbidden');
  expectError(assert, await api('POST', '/mcp', { token: key, body: JSON.stringify(ping), headers: { 'content-type': 'text/plain' } }), 415);
});

test('raw JSON-RPC: results, notifications, and the error codes', async () => {
  const u = await registerUser();
  const key = await keyOf(u, ['tools']);
  const V = { 'mcp-protocol-version': '2025-06-18' };

  const init = await rpc(key, { jsonrpc: '2.0', id: 'i', method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  assert.equal(init.status, 200);
  assert.match(init.headers.get('content-type'), /^application\/json/);
  assert.equal(init.body.jsonrpc, '2.0');
  assert.equal(init.body.id, 'i');
  assert.equal(init.body.result.protocolVersion, '2025-06-18');
  const old = await rpc(key, { jsonrpc: '2.0', id: 2, method: 'initialize', params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  assert.equal(old.body.result.protocolVersion, '2025-11-25', 'an unserved version gets the newest served');

  const note = await rpc(key, { jsonrpc: '2.0', method: 'notifications/initialized' }, V);
  assert.equal(note.status, 202);
  assert.equal(note.text, '');
  assert.deepEqual((await rpc(key, { jsonrpc: '2.0', id: 3, method: 'ping' }, V)).body, { jsonrpc: '2.0', id: 3, result: {} });

  const parse = await rpc(key, '{"jsonrpc":"2.0",', V);
  assert.equal(parse.status, 400);
  assert.deepEqual([parse.body.id, parse.body.error.code], [null, -32700]);
  for (const bad of [{ jsonrpc: '1.0', id: 4, method: 'ping' }, { jsonrpc: '2.0', id: 4, method: 5 }, 'true']) {
    const res = await rpc(key, bad, V);
    assert.equal(res.status, 400, JSON.stringify(bad));
    assert.equal(res.body.error.code, -32600);
  }
  const unknown = await rpc(key, { jsonrpc: '2.0', id: 5, method: 'resources/list' }, V);
  assert.equal(unknown.status, 200);
  assert.deepEqual([unknown.body.id, unknown.body.error.code], [5, -32601]);
  for (const params of [{ name: 'rm_rf' }, { arguments: {} }, { name: 'add_task', arguments: 'title' }]) {
    const res = await rpc(key, { jsonrpc: '2.0', id: 6, method: 'tools/call', params }, V);
    assert.deepEqual([res.status, res.body.id, res.body.error.code], [200, 6, -32602], JSON.stringify(params));
  }
  const noVersion = await rpc(key, { jsonrpc: '2.0', id: 7, method: 'initialize', params: {} }, V);
  assert.equal(noVersion.body.error.code, -32602);
  const badHeader = await rpc(key, { jsonrpc: '2.0', id: 8, method: 'ping' }, { 'mcp-protocol-version': '1999-01-01' });
  assert.deepEqual([badHeader.status, badHeader.body.error.code], [400, -32600]);
  const bad = await rpc(key, { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'add_task', arguments: { title: 7 } } }, V);
  assert.equal(bad.status, 200);
  assert.equal(bad.body.result.isError, true);
  assert.match(bad.body.result.content[0].text, /title/);
});

test('batches: answered in 2025-03-26 (or without a version header), refused in later versions', async () => {
  const u = await registerUser();
  const key = await keyOf(u, ['tools']);
  const batch = [
    { jsonrpc: '2.0', id: 1, method: 'ping' },
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'add_task', arguments: { title: 'batched' } } },
    { jsonrpc: '2.0', id: 3, method: 'nope' },
    { jsonrpc: '1.0', id: 4, method: 'ping' },
  ];
  for (const headers of [{}, { 'mcp-protocol-version': '2025-03-26' }]) {
    const res = await rpc(key, batch, headers);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body.map((r) => r.id), [1, 2, 3, 4]);
    assert.deepEqual(res.body[0].result, {});
    assert.equal(res.body[1].result.isError, false);
    assert.equal(res.body[2].error.code, -32601);
    assert.equal(res.body[3].error.code, -32600);
  }
  const notes = await rpc(key, [{ jsonrpc: '2.0', method: 'notifications/initialized' }]);
  assert.equal(notes.status, 202);
  const later = await rpc(key, batch, { 'mcp-protocol-version': '2025-06-18' });
  assert.deepEqual([later.status, later.body.id, later.body.error.code], [400, null, -32600]);
  const empty = await rpc(key, []);
  assert.deepEqual([empty.status, empty.body.error.code], [400, -32600]);
  const initInBatch = await rpc(key, [{ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26' } }]);
  assert.equal(initInBatch.body[0].error.code, -32600);
  const tasks = await api('GET', '/api/v1/tasks', { token: u.access_token });
  assert.deepEqual(tasks.body.data.map((t) => t.title), ['batched', 'batched']);
});
