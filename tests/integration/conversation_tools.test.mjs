// Which built-in tools a conversation offers: every built-in by default, a list set at
// creation or by PATCH ([] offers none, null goes back to the default), unknown or repeated
// names refused with 422 naming the item, the cached view never stale, owner-only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, expectError } from '../support/client.mjs';
import { registerUser } from '../support/accounts.mjs';

const TOOLS = ['add_task', 'list_tasks', 'update_task', 'complete_task', 'delete_task', 'remember', 'recall', 'forget', 'search_conversations'];

const create = (token, json) => api('POST', '/api/v1/conversations', { token, json });

test('a conversation offers every built-in tool by default, and the list and the view say so', async () => {
  const u = await registerUser();
  const token = u.access_token;
  for (const json of [{}, { tools: null }]) {
    const res = await create(token, json);
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(res.body.tools, TOOLS);
    assert.deepEqual((await api('GET', `/api/v1/conversations/${res.body.conversation_id}`, { token })).body.tools, TOOLS);
  }
  const page = await api('GET', '/api/v1/conversations', { token });
  assert.deepEqual(page.body.data.map((c) => c.tools), [TOOLS, TOOLS]);
});

test('tools set at creation, then changed by PATCH to none, to a subset and back to the default', async () => {
  const u = await registerUser();
  const token = u.access_token;
  const res = await create(token, { title: 'todo only', tools: ['list_tasks', 'add_task'] });
  assert.equal(res.status, 201, res.text);
  assert.deepEqual(res.body.tools, ['list_tasks', 'add_task'], 'the order given is kept');
  const path = `/api/v1/conversations/${res.body.conversation_id}`;
  // Read once so the view is cached; every write below must be seen at once.
  assert.deepEqual((await api('GET', path, { token })).body.tools, ['list_tasks', 'add_task']);
  await new Promise((r) => setTimeout(r, 300));

  const none = await api('PATCH', path, { token, json: { tools: [] } });
  assert.equal(none.status, 200, none.text);
  assert.deepEqual(none.body.tools, []);
  assert.equal(none.body.title, 'todo only', 'the other members are kept');
  assert.deepEqual((await api('GET', path, { token })).body.tools, []);
  assert.deepEqual((await api('GET', '/api/v1/conversations', { token })).body.data[0].tools, []);

  const subset = await api('PATCH', path, { token, json: { tools: ['recall', 'remember', 'forget'] } });
  assert.deepEqual(subset.body.tools, ['recall', 'remember', 'forget']);
  assert.deepEqual((await api('GET', path, { token })).body.tools, ['recall', 'remember', 'forget']);

  // A PATCH of another member keeps the tools; null restores every built-in.
  assert.deepEqual((await api('PATCH', path, { token, json: { title: 'renamed' } })).body.tools, ['recall', 'remember', 'forget']);
  assert.deepEqual((await api('PATCH', path, { token, json: { tools: null } })).body.tools, TOOLS);
  assert.deepEqual((await api('GET', path, { token })).body.tools, TOOLS);

  // Created with none.
  const bare = await create(token, { tools: [] });
  assert.deepEqual(bare.body.tools, []);
  assert.deepEqual((await api('GET', `/api/v1/conversations/${bare.body.conversation_id}`, { token })).body.tools, []);
});

test('an import keeps working alongside a tool list', async () => {
  const u = await registerUser();
  const token = u.access_token;
  const res = await create(token, {
    tools: ['search_conversations'],
    messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }],
  });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.message_count, 2);
  assert.deepEqual(res.body.tools, ['search_conversations']);
  const msgs = await api('GET', `/api/v1/conversations/${res.body.conversation_id}/messages`, { token });
  assert.deepEqual(msgs.body.data.map((m) => m.content), ['hi', 'hello']);
});

test('unknown, repeated or too many tool names are 422 naming the item, and nothing is stored or changed', async () => {
  const u = await registerUser();
  const token = u.access_token;
  const cases = [
    [{ tools: ['add_task', 'recall', 'rm_rf'] }, 'tools[2]'],
    [{ tools: ['recall', 'recall'] }, 'tools[1]'],
    [{ tools: [...TOOLS, 'recall'] }, 'tools'],
    [{ tools: 'recall' }, 'tools'],
    [{ tools: [5] }, 'tools[0]'],
    [{ tools: ['Add_Task'] }, 'tools[0]'],
  ];
  for (const [json, field] of cases) {
    const err = expectError(assert, await create(token, json), 422, 'validation_failed');
    assert.ok(err.message.includes(field), `${JSON.stringify(json)}: ${err.message}`);
  }
  assert.deepEqual((await api('GET', '/api/v1/conversations', { token })).body.data, [], 'nothing was created');

  const c = (await create(token, { tools: ['recall'] })).body;
  const path = `/api/v1/conversations/${c.conversation_id}`;
  for (const [json, field] of cases) {
    const err = expectError(assert, await api('PATCH', path, { token, json }), 422, 'validation_failed');
    assert.ok(err.message.includes(field), `${JSON.stringify(json)}: ${err.message}`);
  }
  assert.deepEqual((await api('GET', path, { token })).body.tools, ['recall'], 'nothing was changed');
});

test("another user can neither read nor change a conversation's tools", async () => {
  const owner = await registerUser();
  const other = await registerUser();
  const c = (await create(owner.access_token, { tools: ['recall'] })).body;
  const path = `/api/v1/conversations/${c.conversation_id}`;
  expectError(assert, await api('GET', path, { token: other.access_token }), 404, 'not_found');
  expectError(assert, await api('PATCH', path, { token: other.access_token, json: { tools: [] } }), 404, 'not_found');
  assert.deepEqual((await api('GET', path, { token: owner.access_token })).body.tools, ['recall']);
});
