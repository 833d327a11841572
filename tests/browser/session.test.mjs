// The chat page in a real browser: users kept apart, log out and in, a phone-sized screen,
// the keyboard, and the errors a user must be told about (upstream failure, network loss,
// quota). The free plan here allows 6 chat requests a minute, so every test uses its own user.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  answerAfter, assertClean, conversationId, launchBrowser, loginViaUi, openPage, registerViaUi, sendViaUi,
  shot, startBrowserStack, unique,
} from './helpers.mjs';

const RPM = 6;
let stack;
let browser;

before(async () => {
  stack = await startBrowserStack({
    logName: 'session',
    plans: { free: { requests_per_minute: RPM, tokens_per_day: 10_000_000, concurrent_streams: 4, models: ['*'] } },
  });
  browser = await launchBrowser();
}, { timeout: 120000 });

after(async () => {
  await browser?.close();
  await stack?.stop();
});

const errorBanner = (page) => page.getByRole('alert').filter({ hasText: /\S/ });

test('a second user cannot see the first user\'s chats', { timeout: 30000 }, async () => {
  const a = await openPage(browser);
  const b = await openPage(browser);
  try {
    await registerViaUi(a.page, stack.url, unique('alice'), 'Alice');
    await answerAfter(a.page, () => sendViaUi(a.page, 'alice secret plans', 'echo'));
    const id = await conversationId(a.page);

    await registerViaUi(b.page, stack.url, unique('bob'), 'Bob');
    await b.page.locator('#conversations li').first().waitFor();
    assert.equal(await b.page.locator('#conversations li.conv').count(), 0);
    assert.match(await b.page.locator('#conversations').innerText(), /No conversations yet/);
    await b.page.getByLabel('Search conversations').fill('secret');
    await b.page.waitForTimeout(600);
    assert.equal(await b.page.locator('#conversations li.conv').count(), 0);

    // Even with the conversation's id in the address, Bob gets nothing.
    await b.page.goto(`${stack.url}/#${id}`);
    await b.page.locator('#app').waitFor({ state: 'visible' });
    await errorBanner(b.page).waitFor();
    assert.match(await errorBanner(b.page).innerText(), /does not exist/);
    assert.equal(await b.page.locator('#messages article').count(), 0);
    assert.doesNotMatch(await b.page.locator('body').innerText(), /alice secret plans/);
    await shot(b.page, 'session-other-user');

    // Alice still has it.
    await a.page.reload();
    await a.page.locator('#messages article.assistant').waitFor();
    assert.match(await a.page.locator('#messages').innerText(), /alice secret plans/);
    await assertClean(a.page, a.problems);
    b.problems.splice(0, Infinity, ...b.problems.filter((p) => !/status of 404/.test(p))); // Alice's id: 404
    await assertClean(b.page, b.problems);
  } finally {
    await a.context.close();
    await b.context.close();
  }
});

test('log out ends the session; logging in again brings the history back', { timeout: 30000 }, async () => {
  const { context, page, problems } = await openPage(browser);
  try {
    const email = unique('carol');
    await registerViaUi(page, stack.url, email);
    await answerAfter(page, () => sendViaUi(page, 'remember the milk', 'echo'));

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.locator('#auth').waitFor({ state: 'visible' });
    assert.match(await page.locator('#auth-error').innerText(), /logged out/);
    await shot(page, 'session-logged-out');
    assert.equal(await page.locator('#app').isVisible(), false);
    const cookies = await context.cookies();
    assert.equal(cookies.filter((c) => c.path === '/api/v1/auth' && c.value).length, 0, 'the refresh cookie is gone');

    await page.reload();
    await page.locator('#auth').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#app').isVisible(), false, 'a reload does not sign back in');

    await page.getByLabel('Password').fill('wrong password!');
    await page.getByLabel('Email').fill(email);
    await page.locator('#auth-submit').click();
    await page.locator('#auth-error').filter({ hasText: /\S/ }).waitFor();
    assert.equal(await page.locator('#app').isVisible(), false);

    await loginViaUi(page, email);
    await page.locator('#conversations li.conv').first().waitFor();
    assert.match(await page.locator('#conversations').innerText(), /remember the milk/);
    await page.locator('#conversations li.conv button.open').first().click();
    await page.locator('#messages article.assistant').waitFor();
    assert.match(await page.locator('#messages').innerText(), /remember the milk/);
    assert.deepEqual(problems.filter((p) => !/status of 401/.test(p)), []);
  } finally {
    await context.close();
  }
});

test('an expired access token is refreshed through the cookie and the request retried once', { timeout: 30000 }, async () => {
  const { context, page, problems } = await openPage(browser);
  try {
    await registerViaUi(page, stack.url, unique('ivan'));
    const refreshes = [];
    page.on('request', (r) => { if (r.url().endsWith('/api/v1/auth/refresh')) refreshes.push(r.headers().authorization); });
    // The server answers the next usage request 401, as it does when a token has expired.
    let refused = 0;
    await context.route(/\/api\/v1\/usage$/, (route) => {
      if (refused++) return route.fallback();
      return route.fulfill({ status: 401, contentType: 'application/json', body: '{"error":{"code":"unauthorized","message":"token expired","request_id":"x"}}' });
    });
    await page.getByRole('button', { name: 'Usage' }).click();
    const dialog = page.getByRole('dialog', { name: 'Usage and plan' });
    await dialog.getByText('Plan: free').waitFor();
    assert.equal(refused, 2, 'refused once, then retried');
    assert.deepEqual(refreshes, [undefined], 'one refresh, by cookie alone');
    await dialog.getByRole('button', { name: 'Close' }).click();
    // The new access token works for everything after.
    await answerAfter(page, () => sendViaUi(page, 'still here', 'echo'));
    assert.equal(refreshes.length, 1);
    await context.unroute(/\/api\/v1\/usage$/);
    assert.deepEqual(problems.filter((p) => !/status of 401/.test(p)), []);
  } finally {
    await context.close();
  }
});

test('a phone-sized screen (375x700) works, the conversation list behind a button', { timeout: 30000 }, async () => {
  const { context, page, problems } = await openPage(browser, { viewport: { width: 375, height: 700 } });
  try {
    await registerViaUi(page, stack.url, unique('dave'));
    const menu = page.getByRole('button', { name: 'Conversations' });
    const sidebar = page.getByRole('navigation', { name: 'Conversations' });
    assert.equal(await menu.isVisible(), true);
    assert.equal(await sidebar.isVisible(), false, 'the list is collapsed');

    const answer = await answerAfter(page, () => sendViaUi(page, 'hello from a phone', 'sim-small'));
    assert.ok((await answer.locator('.body').innerText()).length > 20);
    assert.equal(await answer.isVisible(), true);
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 375), 'no sideways scrolling');
    await shot(page, 'phone-chat');

    await menu.click();
    await sidebar.waitFor({ state: 'visible' });
    assert.equal(await menu.getAttribute('aria-expanded'), 'true');
    await page.locator('#conversations li.conv').first().waitFor();
    await page.waitForTimeout(300); // the slide-in transition
    await shot(page, 'phone-sidebar');
    await page.keyboard.press('Escape');
    await sidebar.waitFor({ state: 'hidden' });
    assert.equal(await menu.getAttribute('aria-expanded'), 'false');

    await menu.click();
    await sidebar.waitFor({ state: 'visible' });
    await page.getByRole('button', { name: '+ New chat' }).click();
    await sidebar.waitFor({ state: 'hidden' });
    assert.equal(await page.locator('#messages article').count(), 0);
    await menu.click();
    await page.locator('#conversations li.conv button.open').first().click();
    await sidebar.waitFor({ state: 'hidden' });
    await page.locator('#messages article.assistant').waitFor();
    await assertClean(page, problems);
  } finally {
    await context.close();
  }
});

test('keyboard: Enter sends, Shift+Enter is a new line, focus is visible', { timeout: 30000 }, async () => {
  const { context, page, problems } = await openPage(browser);
  try {
    await registerViaUi(page, stack.url, unique('erin'));
    await page.getByLabel('Model').selectOption('echo');
    const box = page.getByLabel('Message', { exact: true });
    await box.focus();
    await page.keyboard.type('line one');
    await page.keyboard.press('Shift+Enter');
    await page.keyboard.type('line two');
    assert.equal(await box.inputValue(), 'line one\nline two');
    assert.equal(await page.locator('#messages article').count(), 0, 'Shift+Enter did not send');
    const answer = await answerAfter(page, () => page.keyboard.press('Enter'));
    assert.equal(await answer.locator('.body').innerText(), 'line one\nline two');
    assert.equal(await box.inputValue(), '');

    // Tab reaches the buttons, and the focused one shows an outline.
    await page.getByRole('button', { name: 'Usage' }).focus();
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const e = document.activeElement;
      return { text: e.textContent, tag: e.tagName, outline: getComputedStyle(e).outlineStyle };
    });
    assert.deepEqual(focused, { text: 'Log out', tag: 'BUTTON', outline: 'solid' });
    // Every control has an accessible name.
    const unnamed = await page.evaluate(() => [...document.querySelectorAll('button, input, select, textarea')]
      .filter((e) => e.offsetParent && !(e.labels?.length || e.getAttribute('aria-label') || e.textContent.trim()))
      .map((e) => e.outerHTML));
    assert.deepEqual(unnamed, []);
    await assertClean(page, problems);
  } finally {
    await context.close();
  }
});

test('an upstream failure is explained, and the failed answer marked', { timeout: 30000 }, async () => {
  const { context, page, problems } = await openPage(browser);
  try {
    await registerViaUi(page, stack.url, unique('frank'));
    const answer = await answerAfter(page, () => sendViaUi(page, 'are you there?', 'hang'));
    assert.equal(await answer.getAttribute('data-status'), 'error');
    assert.equal(await answer.locator('.badge').textContent(), 'failed');
    const banner = errorBanner(page);
    await banner.waitFor();
    assert.match(await banner.innerText(), /The model could not answer/);
    assert.equal(await page.locator('#status').textContent(), 'The answer failed.');
    await shot(page, 'error-upstream');
    await page.getByRole('button', { name: 'Dismiss error' }).click();
    await banner.waitFor({ state: 'hidden' });
    // The question is kept and can be answered again.
    const again = await answerAfter(page, async () => {
      await page.getByLabel('Model').selectOption('echo');
      await answer.getByRole('button', { name: 'Regenerate' }).click();
    });
    assert.equal(await again.locator('.body').innerText(), 'are you there?');
    await assertClean(page, problems);
  } finally {
    await context.close();
  }
});

test('losing the network is explained, before and during an answer', { timeout: 30000 }, async () => {
  const { context, page, problems } = await openPage(browser);
  try {
    await registerViaUi(page, stack.url, unique('grace'));
    await context.setOffline(true);
    await sendViaUi(page, 'anyone?', 'echo');
    const banner = errorBanner(page);
    await banner.waitFor();
    assert.match(await banner.innerText(), /Network error/);
    assert.equal(await page.getByLabel('Message', { exact: true }).inputValue(), 'anyone?', 'the unsent text is kept');
    await context.setOffline(false);

    // A connection that drops mid-answer: the body ends after a few deltas, with no done or
    // error event (offline emulation does not cut a response already streaming). The page then
    // asks to resume the answer, which this made-up id cannot be (404): the loss is explained.
    await context.route(/\/messages$/, async (route) => {
      const { content, parent_id } = route.request().postDataJSON();
      const user = { message_id: 'msg_dropped_q', parent_id: parent_id ?? null, role: 'user', content, status: 'complete', model: 'slow', created_at: new Date().toISOString() };
      const events = [['message', { user_message: user, assistant_message_id: 'msg_dropped_a' }],
        ...['The first ', 'words of an ', 'answer that never ends'].map((text) => ['delta', { text }])];
      await route.fulfill({
        status: 200,
        headers: { 'content-type': 'text/event-stream; charset=utf-8' },
        body: events.map(([e, d], i) => `id: ${i + 1}\nevent: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join('') + ': ping\n\n',
      });
    });
    await sendViaUi(page, 'tell me everything', 'slow');
    await page.waitForFunction(() => !document.querySelector('#messages article.live') && document.querySelector('#messages article.assistant'));
    await banner.waitFor();
    assert.match(await banner.innerText(), /connection was lost before the answer finished/);
    const answer = page.locator('#messages article.assistant').last();
    assert.equal(await answer.locator('.body').innerText(), 'The first words of an answer that never ends');
    assert.equal(await answer.getAttribute('data-status'), 'error');
    assert.equal(await page.locator('#send').isVisible(), true);
    await shot(page, 'error-network');
    await context.unroute(/\/messages$/);
    assert.deepEqual(problems.filter((p) => !/ERR_INTERNET_DISCONNECTED|ERR_NETWORK_CHANGED|Failed to fetch|status of 404/.test(p)), []);
  } finally {
    await context.close();
  }
});

test('a quota refusal says when to try again', { timeout: 60000 }, async () => {
  const { context, page, problems } = await openPage(browser);
  try {
    await registerViaUi(page, stack.url, unique('heidi'));
    // The limit counts requests per clock minute (the worker runs on this machine's clock):
    // with under 20 s of this minute left, the requests could straddle two minutes and the
    // last one be let through, so start at the top of the next minute.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 40_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 200));
    // The first answer's title call is a request too: RPM - 1 messages and it fill the minute.
    for (let i = 0; i < RPM - 1; i++) await answerAfter(page, () => sendViaUi(page, `message ${i}`, 'echo'));
    await sendViaUi(page, 'one too many', 'echo');
    const banner = errorBanner(page);
    await banner.waitFor();
    assert.match(await banner.innerText(), new RegExp(`Limit reached: at most ${RPM} requests per minute.*Try again in \\d+ seconds?\\.`));
    assert.equal(await page.getByLabel('Message', { exact: true }).inputValue(), 'one too many', 'the unsent text is kept');
    assert.equal(await page.locator('#messages article.assistant').count(), RPM - 1);
    await shot(page, 'error-quota');
    assert.deepEqual(problems.filter((p) => !/status of 429/.test(p)), []);
  } finally {
    await context.close();
  }
});
