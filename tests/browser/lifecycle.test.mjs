// A conversation's life on the chat page: the first question edited into a new root branch, a
// refused first message that leaves nothing behind, the length counter, date groups in the
// sidebar, and a second tab that follows without reloading.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { execSql } from '../support/stack.mjs';
import {
  answerAfter, apiGet, apiLogin, assertClean, conversationId, launchBrowser, openPage, registerViaUi, sendViaUi, shot,
  startBrowserStack, storedMessages, unique, watchPage,
} from './helpers.mjs';

// A small limit, so that the counter and the refusal are reached with little typing.
const MAX_BYTES = 2000;

let stack;
let browser;

before(async () => {
  stack = await startBrowserStack({ logName: 'lifecycle', vars: { MAX_MESSAGE_BYTES: String(MAX_BYTES) } });
  browser = await launchBrowser();
}, { timeout: 120000 });

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** The user's conversations as the API lists them. */
async function listed(token) {
  const { status, body } = await apiGet(stack.url, token, '/api/v1/conversations?limit=100');
  assert.equal(status, 200);
  return body.data;
}

/** The page's problems, less the console line a refused request leaves (the page shows it). */
const withoutRefusals = (problems) => problems.filter((p) => !/status of 422/.test(p));

describe('a conversation on the page', { timeout: 120000 }, () => {
  let page;
  let problems;
  let email;
  let context;
  let token;

  before(async () => {
    ({ page, problems, context } = await openPage(browser));
    email = unique('life');
    await registerViaUi(page, stack.url, email, 'Tester');
    token = await apiLogin(stack.url, email);
  });

  after(async () => {
    await context?.close();
  });

  test('the limit is the server\'s: GET /api/v1/limits', async () => {
    const res = await fetch(`${stack.url}/api/v1/limits`);
    assert.equal(res.status, 200);
    assert.equal((await res.json()).message_bytes, MAX_BYTES);
  });

  test('the first question can be edited: a new root branch, with the branch switcher', { timeout: 40000 }, async () => {
    await answerAfter(page, () => sendViaUi(page, 'first question as asked', 'echo'));
    await answerAfter(page, () => sendViaUi(page, 'a follow-up', 'echo'));
    const first = page.locator('#messages article.user').first();
    await first.getByRole('button', { name: 'Edit' }).click();
    // While editing, its Edit button is gone.
    await page.getByLabel('Edit message').waitFor();
    assert.equal(await first.getByRole('button', { name: 'Edit' }).count(), 0);
    await page.getByLabel('Edit message').fill('first question, edited');
    await answerAfter(page, () => page.getByLabel('Edit message').press('Enter'));
    assert.equal(await page.locator('#messages article.user').count(), 1, 'the new branch has only the edited question');
    assert.equal(await page.locator('#messages article.user .body').innerText(), 'first question, edited');
    const user = page.locator('#messages article.user').first();
    assert.equal(await user.locator('.branches .count').innerText(), '2/2');
    await user.getByRole('button', { name: 'Previous version' }).click();
    await page.waitForFunction(() => document.querySelectorAll('#messages article.user').length === 2);
    assert.equal(await page.locator('#messages article.user .body').first().innerText(), 'first question as asked');
    const stored = await storedMessages(stack.url, token, await conversationId(page));
    assert.equal(stored.length, 6);
    assert.equal(stored.filter((m) => m.parent_id === null).length, 2, 'two roots');
    await assertClean(page, problems);
  });

  test('the counter warns near the limit and a message over it is not sent', { timeout: 30000 }, async () => {
    await page.getByRole('button', { name: '+ New chat' }).click();
    const before = (await listed(token)).length;
    const box = page.getByLabel('Message', { exact: true });
    await box.fill('short');
    assert.equal(await page.locator('#counter').isVisible(), false);
    await box.fill('x'.repeat(MAX_BYTES - 100));
    await page.locator('#counter').waitFor({ state: 'visible' });
    assert.match(await page.locator('#counter').innerText(), /1,900 \/ 2,000 bytes/);
    assert.equal(await page.locator('#counter.over').count(), 0);
    // Bytes, as the server counts them: 700 three-byte characters are 2,100 bytes.
    await box.fill('€'.repeat(700));
    await page.locator('#counter.over').waitFor();
    await box.press('Enter');
    await page.locator('#error').waitFor({ state: 'visible' });
    assert.match(await page.locator('#error-text').innerText(), /too long/);
    assert.equal(await box.inputValue(), '€'.repeat(700), 'the text stays to be shortened');
    assert.equal((await listed(token)).length, before, 'no conversation was made');
    await shot(page, 'lifecycle-counter');
    await box.fill('');
    await assertClean(page, problems);
  });

  test('a first message the server refuses leaves no conversation behind (page and API)', { timeout: 30000 }, async () => {
    // The page does not know the limit here (as when its limits request fails): the server refuses.
    await page.route('**/api/v1/limits', (r) => r.fulfill({ status: 200, contentType: 'application/json', body: '{}' }));
    await page.goto(`${stack.url}/`);
    await page.locator('#conversations li.conv').first().waitFor();
    const before = await listed(token);
    const sidebar = await page.locator('#conversations li.conv').count();
    const box = page.getByLabel('Message', { exact: true });
    await box.fill('y'.repeat(MAX_BYTES + 1));
    await box.press('Enter');
    await page.locator('#error').waitFor({ state: 'visible' });
    assert.match(await page.locator('#error-text').innerText(), /at most 2000 bytes/);
    await page.locator('#send').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#conversations li.conv').count(), sidebar, 'nothing new in the sidebar');
    assert.doesNotMatch(await page.locator('#conversations').innerText(), /Untitled chat/);
    assert.equal(await page.evaluate(() => location.hash), '');
    assert.equal(await page.locator('#chat-title').innerText(), 'New chat');
    // The deletion is on its way when the error shows: the API list comes back to what it was.
    for (let i = 0; ; i++) {
      const now = await listed(token);
      if (now.length === before.length) {
        assert.deepEqual(now.map((c) => c.conversation_id), before.map((c) => c.conversation_id));
        break;
      }
      assert.ok(i < 40, 'the refused conversation was deleted');
      await new Promise((r) => setTimeout(r, 100));
    }
    await page.unroute('**/api/v1/limits');
    await page.reload();
    await page.locator('#conversations li.conv').first().waitFor();
    assert.equal(await page.locator('#conversations li.conv').count(), sidebar);
    assert.deepEqual(withoutRefusals(problems), []);
    problems.length = 0;
  });

  test('a generated title appears after the first answer, and its call is in the usage records', { timeout: 40000 }, async () => {
    const user = (await apiGet(stack.url, token, '/api/v1/users/me')).body.user_id;
    const echoCalls = async () => (await execSql(stack.persistDir, `SELECT COUNT(*) AS n FROM usage_records WHERE user_id = '${user}' AND model = 'echo'`))[0].results[0].n;
    const before = await echoCalls();
    await page.getByRole('button', { name: '+ New chat' }).click();
    const question = 'Please explain in some detail how walruses find their way across the sea ice at night';
    await answerAfter(page, () => sendViaUi(page, question, 'echo'));
    const id = await conversationId(page);
    // The simulator names a conversation by its question's first six words.
    const generated = 'Please explain in some detail how';
    await page.waitForFunction((t) => document.getElementById('chat-title').textContent === t, generated);
    await page.locator(`#conversations li.conv[data-id="${id}"]`, { hasText: generated }).waitFor();
    const { body } = await apiGet(stack.url, token, `/api/v1/conversations/${id}`);
    assert.equal(body.title, generated);
    let after = await echoCalls();
    for (let i = 0; after < before + 2 && i < 30; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await echoCalls();
    }
    assert.equal(after, before + 2, 'the answer and the title call are recorded');
    await assertClean(page, problems);
  });

  test('a second tab shows a new conversation and its title without reloading', { timeout: 40000 }, async () => {
    const tab = await context.newPage();
    const tabProblems = await watchPage(tab);
    await tab.goto(`${stack.url}/`);
    await tab.locator('#app').waitFor({ state: 'visible' });
    await tab.locator('#conversations li.conv').first().waitFor();
    await page.getByRole('button', { name: '+ New chat' }).click();
    await answerAfter(page, () => sendViaUi(page, 'walrus migration routes', 'echo'));
    const id = await conversationId(page);
    const item = tab.locator(`#conversations li.conv[data-id="${id}"]`);
    await item.waitFor();
    await tab.waitForFunction((cid) => /walrus migration/.test(document.querySelector(`#conversations li.conv[data-id="${cid}"]`)?.textContent ?? ''), id);
    // A rename here shows there too.
    await page.locator(`#conversations li.conv[data-id="${id}"]`).getByRole('button', { name: /^Rename/ }).click();
    await page.getByLabel('New title').fill('Walrus routes, renamed');
    await page.getByLabel('New title').press('Enter');
    await tab.waitForFunction((cid) => /Walrus routes, renamed/.test(document.querySelector(`#conversations li.conv[data-id="${cid}"]`)?.textContent ?? ''), id);
    await assertClean(tab, tabProblems);
    await tab.close();
    await assertClean(page, problems);
  });

  test('Escape stops an answer; the view ends at the end of an answer', { timeout: 40000 }, async () => {
    await page.getByRole('button', { name: '+ New chat' }).click();
    await page.setViewportSize({ width: 1200, height: 500 });
    try {
      await answerAfter(page, () => sendViaUi(page, 'Tell me a long story', 'paced'));
      await answerAfter(page, () => sendViaUi(page, 'And one more', 'paced'));
      const gap = () => page.evaluate(() => { const b = document.getElementById('messages'); return b.scrollHeight - b.scrollTop - b.clientHeight; });
      assert.ok((await gap()) < 2, `at the end (${await gap()} px left)`);
      await sendViaUi(page, 'Another long story', 'paced');
      await page.locator('#messages article.live').waitFor();
      await page.keyboard.press('Escape');
      await page.locator('#send').waitFor({ state: 'visible' });
      await page.waitForFunction(() => document.querySelector('#messages article.assistant:last-of-type')?.dataset.status === 'cancelled');
    } finally {
      await page.setViewportSize({ width: 1200, height: 800 });
    }
    await assertClean(page, problems);
  });

  test('the sidebar groups conversations by date, with a time to tell equal titles apart', { timeout: 60000 }, async () => {
    const day = 86400000;
    const now = Date.now();
    const make = async (title) => {
      const res = await fetch(`${stack.url}/api/v1/conversations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ title, messages: [{ role: 'user', content: `About ${title}` }] }),
      });
      const text = await res.text();
      assert.equal(res.status, 201, text);
      return JSON.parse(text).conversation_id;
    };
    const ages = [['Same title', 0], ['Same title', 0], ['Yesterday chat', 1], ['Last week chat', 4], ['Old chat', 40]];
    const ids = [];
    for (const [title] of ages) ids.push(await make(title));
    // Ages the API cannot set: the stored times are moved back.
    const sql = ages.map(([, days], i) => `UPDATE conversations SET updated_at = ${now - days * day - i * 60000} WHERE conversation_id = '${ids[i]}';`).join(' ');
    await execSql(stack.persistDir, sql);
    await page.getByRole('button', { name: '+ New chat' }).click();
    await page.reload();
    await page.locator('#conversations li.conv').first().waitFor();
    const groups = await page.locator('#conversations .conv-group').allInnerTexts();
    assert.deepEqual(groups.slice(0, 3), ['Today', 'Yesterday', 'Previous 7 days'], `groups: ${groups}`);
    assert.equal(groups.length, 4, `an older group: ${groups}`);
    // Equal titles show different times.
    const same = page.locator('#conversations li.conv', { hasText: 'Same title' });
    assert.equal(await same.count(), 2);
    const times = await same.locator('time').allInnerTexts();
    assert.notEqual(times[0], times[1]);
    await shot(page, 'lifecycle-sidebar-desktop');
    await assertClean(page, problems);
  });

  test('the date groups on a phone', { timeout: 30000 }, async () => {
    const phone = await browser.newContext({ viewport: { width: 375, height: 700 }, isMobile: true, hasTouch: true });
    try {
      const p = await phone.newPage();
      const phoneProblems = await watchPage(p);
      await p.goto(`${stack.url}/`);
      await p.getByLabel('Email').fill(email);
      await p.getByLabel('Password').fill('correct horse battery');
      await p.locator('#auth-submit').click();
      await p.locator('#app').waitFor({ state: 'visible' });
      await p.locator('#menu').click();
      await p.locator('#conversations .conv-group').first().waitFor({ state: 'visible' });
      // The sidebar slides in: wait until it is all on screen.
      await p.waitForFunction(() => document.querySelector('.sidebar').getBoundingClientRect().left >= 0);
      await p.waitForTimeout(250);
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 0, `no sideways scrolling (${overflow}px)`);
      await shot(p, 'lifecycle-sidebar-phone');
      await assertClean(p, phoneProblems);
    } finally {
      await phone.close();
    }
  });
});
