// The chat page's agent turns in a real browser: tool calls shown collapsed in the answer, their
// arguments and results as text, the tasks panel, and the same steps after a reload.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  answerAfter, assertClean, apiLogin, conversationId, launchBrowser, openPage, registerViaUi, sendViaUi, shot,
  startBrowserStack, storedMessages, unique,
} from './helpers.mjs';

let stack;
let browser;

before(async () => {
  stack = await startBrowserStack({ logName: 'tools' });
  browser = await launchBrowser();
}, { timeout: 120000 });

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** What the answer's body shows, in order: ['text', ...] for a step's text, ['tool', name, mark,
 * open] for a tool call. */
function bodyParts(answer) {
  return answer.locator('.body > *').evaluateAll((els) => els.map((e) => (e.matches('details.tool-call')
    ? ['tool', e.querySelector('.tool-name').textContent, e.querySelector('.tool-mark').textContent, e.open]
    : ['text', e.textContent.trim()])));
}

const tasksPanel = (page) => page.getByRole('region', { name: 'Tasks' });

describe('a tool turn on the real worker', { timeout: 120000 }, () => {
  let page;
  let problems;
  let email;
  let context;

  before(async () => {
    ({ page, problems, context } = await openPage(browser));
    email = unique('tools');
    await registerViaUi(page, stack.url, email, 'Tool user');
  });

  after(async () => {
    await context?.close();
  });

  test('add_task: a collapsed tool call with an ok result, the task listed, the same after a reload', { timeout: 60000 }, async () => {
    await tasksPanel(page).getByText('No open tasks.').waitFor();
    const answer = await answerAfter(page, () => sendViaUi(page, 'Please note this down.\n/tool add_task {"title":"buy milk"}', 'sim-small'));
    assert.equal(await answer.getAttribute('data-status'), 'complete');

    const parts = await bodyParts(answer);
    assert.deepEqual(parts.filter((p) => p[0] === 'tool'), [['tool', 'add_task', '✓ ok', false]], 'one call, collapsed');
    const last = parts.at(-1);
    assert.equal(last[0], 'text', 'the answer text comes after the call');
    assert.match(last[1], /^Done: .*buy milk/);
    const call = answer.locator('details.tool-call');
    assert.equal(await call.locator('.tool-args').isVisible(), false, 'arguments hidden until expanded');

    await call.locator('summary').click();
    assert.equal(await call.evaluate((d) => d.open), true);
    assert.deepEqual(JSON.parse(await call.locator('.tool-args').textContent()), { title: 'buy milk' });
    const result = JSON.parse(await call.locator('.tool-result').textContent());
    assert.equal(result.title, 'buy milk');
    assert.match(result.task_id, /^tsk_/);
    assert.equal(result.status, 'open');
    await shot(page, 'tools-expanded');

    // The panel was refreshed after the turn without being asked.
    const panel = tasksPanel(page);
    await panel.getByRole('list').first().getByText('buy milk', { exact: true }).waitFor();
    assert.equal(await panel.getByRole('checkbox', { name: 'buy milk' }).isChecked(), false);

    // Stored: one assistant message with its steps; the page shows them again after a reload.
    const token = await apiLogin(stack.url, email);
    const stored = await storedMessages(stack.url, token, await conversationId(page));
    assert.equal(stored.length, 2);
    const steps = stored[1].steps;
    assert.equal(steps.length, 2);
    assert.equal(steps[0].tool_calls[0].name, 'add_task');
    assert.equal(steps[0].tool_calls[0].ok, true);

    await page.reload();
    const again = page.locator('#messages article.assistant').last();
    await again.locator('details.tool-call').waitFor();
    assert.deepEqual(await bodyParts(again), parts, 'the same steps, collapsed again');
    await again.locator('details.tool-call summary').click();
    assert.deepEqual(JSON.parse(await again.locator('.tool-args').textContent()), { title: 'buy milk' });
    assert.equal(JSON.parse(await again.locator('.tool-result').textContent()).task_id, result.task_id);
    await tasksPanel(page).getByText('buy milk', { exact: true }).waitFor();
    await shot(page, 'tools-reloaded');
    await assertClean(page, problems);
  });

  test('a tool result holding HTML is shown as text, in the answer and in the tasks panel', { timeout: 60000 }, async () => {
    const title = '<img src=x onerror=window.__pwned=1>';
    await page.getByRole('button', { name: '+ New chat' }).click();
    const answer = await answerAfter(page, () => sendViaUi(page, `/tool add_task ${JSON.stringify({ title })}`, 'sim-small'));
    const call = answer.locator('details.tool-call');
    await call.locator('summary').click();
    assert.equal(JSON.parse(await call.locator('.tool-args').textContent()).title, title);
    assert.equal(JSON.parse(await call.locator('.tool-result').textContent()).title, title);
    await tasksPanel(page).getByText(title, { exact: true }).waitFor();
    await page.waitForTimeout(300); // give an injected onerror a chance to run

    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    const tags = await page.evaluate(() => [...document.querySelectorAll('#messages img, #tasks-panel img, #messages script')].map((e) => e.tagName));
    assert.deepEqual(tags, []);
    await assertClean(page, problems);
  });

  test('completing and deleting a task from the panel', { timeout: 30000 }, async () => {
    const panel = tasksPanel(page);
    await panel.getByRole('checkbox', { name: 'buy milk' }).check();
    const done = panel.getByRole('list', { name: 'Done' });
    await done.getByText('buy milk', { exact: true }).waitFor();
    assert.equal(await done.getByRole('checkbox', { name: 'buy milk' }).isChecked(), true);
    const token = await apiLogin(stack.url, email);
    const listed = async () => (await (await fetch(`${stack.url}/api/v1/tasks`, { headers: { authorization: `Bearer ${token}` } })).json()).data;
    assert.equal((await listed()).find((t) => t.title === 'buy milk').status, 'done');

    await panel.getByRole('button', { name: 'Delete task “buy milk”' }).click();
    await page.locator('#confirm').getByRole('button', { name: 'Delete' }).click();
    await panel.getByText('buy milk', { exact: true }).waitFor({ state: 'detached' });
    assert.equal((await listed()).some((t) => t.title === 'buy milk'), false);
    await assertClean(page, problems);
  });
});

describe('tool steps from a scripted stream', { timeout: 60000 }, () => {
  // Events in the documented order, for a turn of three model calls (text, calls, a failed
  // call, the answer): checks the rendering of every part without depending on the model.
  const ids = { conv: null, user: 'msg_user00000000000000000000', asst: 'msg_asst00000000000000000000' };
  const steps = [
    { text: 'Let me look.', tool_calls: [{ id: 'call_1', name: 'list_tasks', arguments: '{"status":"open"}', ok: true, result: '{"tasks":[{"title":"<b>bold</b>"}]}' }] },
    { text: '', tool_calls: [{ id: 'call_2', name: 'complete_task', arguments: '{"task_id":"nope"}', ok: false, result: 'task not found' }] },
    { text: 'Nothing to **complete**.', tool_calls: [] },
  ];
  const view = (m) => ({ conversation_id: ids.conv, model: 'sim-small', provider: null, usage: null, time_to_first_token_ms: null, duration_ms: null, created_at: new Date().toISOString(), ...m });
  const user = () => view({ message_id: ids.user, parent_id: null, role: 'user', content: 'check', status: 'complete' });
  const assistant = () => view({ message_id: ids.asst, parent_id: ids.user, role: 'assistant', content: steps.map((s) => s.text).join(''), status: 'complete', provider: 'openai', steps });

  function sse() {
    const events = [['message', { user_message: user(), assistant_message_id: ids.asst }]];
    steps.forEach((s, n) => {
      if (s.text) events.push(['delta', { text: s.text.slice(0, 5) }], ['delta', { text: s.text.slice(5) }]);
      for (const c of s.tool_calls) {
        events.push(['tool_call', { step: n + 1, id: c.id, name: c.name, arguments: c.arguments }]);
        events.push(['tool_result', { step: n + 1, id: c.id, name: c.name, ok: c.ok, result: c.result }]);
      }
    });
    // The final message without its steps: what the page shows is built from the events alone.
    const { steps: _, ...final } = assistant();
    events.push(['done', { assistant_message: final }]);
    return events.map(([e, d], i) => `id: ${i + 1}\nevent: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join('');
  }

  test('steps render in order from the events and from the stored steps, collapsed, marked ok or error, as text; the tasks are reloaded', { timeout: 60000 }, async () => {
    const { context, page, problems } = await openPage(browser);
    try {
      await registerViaUi(page, stack.url, unique('steps'));
      let taskLoads = 0;
      await context.route(/\/api\/v1\/tasks\?/, (route) => { taskLoads++; return route.fallback(); });
      await context.route(/\/api\/v1\/conversations\/cnv_[\w-]+\/messages(\?.*)?$/, (route) => {
        ids.conv = route.request().url().match(/cnv_[\w-]+/)[0];
        if (route.request().method() === 'POST') return route.fulfill({ status: 200, contentType: 'text/event-stream', body: sse() });
        return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ data: [user(), assistant()], next_cursor: null }) });
      });
      await page.waitForFunction(() => document.getElementById('tasks').getAttribute('aria-busy') === 'false');
      const loadsBefore = taskLoads;
      const answer = await answerAfter(page, () => sendViaUi(page, 'check', 'sim-small'));
      const expected = [
        ['text', 'Let me look.'],
        ['tool', 'list_tasks', '✓ ok', false],
        ['tool', 'complete_task', '✗ error', false],
        ['text', 'Nothing to complete.'],
      ];
      assert.deepEqual(await bodyParts(answer), expected);
      assert.equal(await answer.locator('.step-text strong').textContent(), 'complete', 'step text is Markdown');
      const failed = answer.locator('details.tool-call').nth(1);
      await failed.locator('summary').click();
      assert.equal(await failed.locator('.tool-result').textContent(), 'task not found');
      const ok = answer.locator('details.tool-call').first();
      await ok.locator('summary').click();
      assert.equal(JSON.parse(await ok.locator('.tool-result').textContent()).tasks[0].title, '<b>bold</b>');
      assert.equal(await answer.locator('b').count(), 0);
      await page.waitForFunction(() => document.getElementById('tasks').getAttribute('aria-busy') === 'false');
      assert.ok(taskLoads >= loadsBefore + 2, 'open and done tasks were reloaded after the turn');
      await shot(page, 'tools-scripted');

      // A reload renders the stored steps the same way, collapsed again.
      await page.reload();
      const again = page.locator('#messages article.assistant').last();
      await again.locator('details.tool-call').first().waitFor();
      assert.deepEqual(await bodyParts(again), expected);
      await assertClean(page, problems);
    } finally {
      await context.close();
    }
  });
});

test('a plain answer (no steps) renders as before', { timeout: 30000 }, async () => {
  const { context, page, problems } = await openPage(browser);
  try {
    await registerViaUi(page, stack.url, unique('plain'));
    const answer = await answerAfter(page, () => sendViaUi(page, 'plain **text**', 'echo'));
    assert.equal(await answer.locator('details').count(), 0);
    assert.equal(await answer.locator('.body > p > strong').textContent(), 'text');
    await assertClean(page, problems);
  } finally {
    await context.close();
  }
});
