// Answers that outlive the page: a reload, a conversation switch and a dropped connection
// re-attach to the running answer (the resume stream), a send repeated after its response was
// lost stores one turn (Idempotency-Key), Escape stops an answer, and a second tab sees the
// answer stream, where Stop (the cancel endpoint) ends it in every tab.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  answerAfter, apiLogin, assertClean, conversationId, launchBrowser, openPage, registerViaUi, sendViaUi, settledMessage,
  letters, shot, squash, startBrowserStack, storedMessages, unique, waitForAnswer, waitForLiveText, watchPage,
} from './helpers.mjs';

let stack;
let browser;

before(async () => {
  stack = await startBrowserStack({ logName: 'resume' });
  browser = await launchBrowser();
}, { timeout: 180000 });

after(async () => {
  await browser?.close();
  await stack?.stop();
});

const liveLength = (page) => page.evaluate(() => document.querySelector('#messages article.live .body')?.textContent.length ?? -1);

/** The resume requests a page makes: `ids()` gives the Last-Event-ID each one sent. */
function recordResumes(page) {
  const seen = [];
  page.on('request', (r) => {
    if (/\/messages\/[^/]+\/stream$/.test(new URL(r.url()).pathname)) seen.push(r.allHeaders().then((h) => h['last-event-id'] ?? null));
  });
  return { ids: () => Promise.all(seen) };
}

describe('answers that survive the page', { timeout: 180000 }, () => {
  let context;
  let page;
  let problems;
  let email;
  let token;

  before(async () => {
    ({ context, page, problems } = await openPage(browser));
    email = unique('resume');
    await registerViaUi(page, stack.url, email, 'Resumer');
    token = await apiLogin(stack.url, email);
  });

  after(async () => {
    await context?.close();
  });

  test('a reload mid-answer re-attaches, and the answer streams on to the end', { timeout: 60000 }, async () => {
    await sendViaUi(page, 'Tell me a long story', 'slow');
    await waitForLiveText(page, 40);
    const id = await conversationId(page);
    const resumes = recordResumes(page);
    await page.reload();

    // Re-attached from the first event: the answer is live again and still growing.
    await page.locator('#messages article.assistant.live').waitFor();
    await waitForLiveText(page, 40);
    const early = await liveLength(page);
    await page.waitForFunction((n) => (document.querySelector('#messages article.live .body')?.textContent.length ?? 0) > n + 40, early);
    assert.equal(await page.locator('#stop').isVisible(), true, 'Stop is offered for the re-attached answer');
    assert.deepEqual(await resumes.ids(), ['0']);

    const answer = await waitForAnswer(page, { count: 1, timeout: 30000 });
    assert.equal(await answer.getAttribute('data-status'), 'complete');
    const stored = await storedMessages(stack.url, token, id);
    assert.equal(stored.length, 2, 'one question, one answer');
    assert.equal(stored[1].status, 'complete');
    assert.equal(letters(await answer.locator('.body').innerText()), letters(stored[1].content));
    assert.equal(await page.locator('#status').textContent(), 'Answer complete.');
    assert.equal(await page.locator('#send').isVisible(), true);
    await shot(page, 'resume-reloaded');
    await assertClean(page, problems);
  });

  test('switching conversation mid-answer does not stop it; switching back re-attaches', { timeout: 60000 }, async () => {
    await page.getByRole('button', { name: '+ New chat' }).click();
    await answerAfter(page, () => sendViaUi(page, 'a short one', 'echo'));
    const other = await conversationId(page);
    await page.getByRole('button', { name: '+ New chat' }).click();
    await sendViaUi(page, 'Say a lot', 'slow');
    await waitForLiveText(page, 40);
    const id = await conversationId(page);
    const asst = await page.locator('#messages article.assistant.live').getAttribute('data-id');

    await page.locator(`#conversations li.conv[data-id="${other}"] button.open`).click();
    await page.waitForFunction((o) => location.hash === `#${o}` && document.querySelector('#messages article.assistant')?.textContent.includes('a short one'), other);
    assert.equal(await page.locator('#messages article.live').count(), 0);
    assert.equal(await page.locator('#send').isVisible(), true, 'this conversation can be used meanwhile');
    await page.waitForTimeout(800);
    const meanwhile = (await storedMessages(stack.url, token, id)).find((m) => m.message_id === asst);
    assert.equal(meanwhile.status, 'streaming', 'the answer runs on without a reader');

    await page.locator(`#conversations li.conv[data-id="${id}"] button.open`).click();
    await page.locator(`#messages article.live[data-id="${asst}"]`).waitFor();
    const answer = await waitForAnswer(page, { timeout: 30000 });
    assert.equal(await answer.getAttribute('data-id'), asst);
    assert.equal(await answer.getAttribute('data-status'), 'complete');
    const stored = await settledMessage(stack.url, token, id, asst);
    assert.equal(stored.status, 'complete');
    assert.equal(letters(await answer.locator('.body').innerText()), letters(stored.content));
    await assertClean(page, problems);
  });

  test('a connection dropped mid-answer resumes after the last event seen', { timeout: 60000 }, async () => {
    await page.getByRole('button', { name: '+ New chat' }).click();
    // The first chat POST's body fails after three deltas, as a lost network does.
    await page.evaluate(() => {
      const real = window.fetch;
      window.__passed = '';
      let cut = false;
      window.fetch = async (url, init = {}) => {
        const res = await real(url, init);
        if (cut || init.method !== 'POST' || !/\/messages$/.test(String(url))) return res;
        cut = true;
        const reader = res.body.getReader();
        const text = new TextDecoder();
        let failNow = false;
        return new Response(new ReadableStream({
          async pull(ctrl) {
            if (failNow) {
              reader.cancel();
              ctrl.error(new TypeError('network error'));
              return;
            }
            const { value, done } = await reader.read();
            if (done) return ctrl.close();
            window.__passed += text.decode(value, { stream: true });
            ctrl.enqueue(value);
            failNow = (window.__passed.match(/^event: delta$/gm) || []).length >= 3;
          },
        }), { status: res.status, headers: res.headers });
      };
    });
    const resumes = recordResumes(page);
    await sendViaUi(page, 'Keep talking', 'slow');
    const answer = await waitForAnswer(page, { count: 1, timeout: 30000 });
    const passed = await page.evaluate(() => window.__passed);
    // The last whole event that got through before the cut.
    const whole = passed.split('\n\n').slice(0, -1).join('\n\n');
    const lastId = Math.max(...[...whole.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])));
    assert.ok(lastId >= 4, `the cut came after the message event and three deltas (${lastId})`);
    assert.deepEqual(await resumes.ids(), [String(lastId)], 'one resume, from the last event seen');

    const stored = await storedMessages(stack.url, token, await conversationId(page));
    assert.equal(stored.length, 2);
    assert.equal(stored[1].status, 'complete');
    assert.equal(await answer.getAttribute('data-status'), 'complete');
    assert.equal(letters(await answer.locator('.body').innerText()), letters(stored[1].content), 'no delta lost or doubled');
    assert.equal(await page.locator('#error').isVisible(), false);
    await assertClean(page, problems);
  });

  test('a send whose response never arrived is sent again with the same key, and stored once', { timeout: 60000 }, async () => {
    await page.getByRole('button', { name: '+ New chat' }).click();
    // The first chat POST reaches the worker, but the page only sees a network failure.
    await page.evaluate(() => {
      const real = window.fetch;
      window.__keys = [];
      let failed = false;
      window.fetch = async (url, init = {}) => {
        if (init.method !== 'POST' || !/\/messages$/.test(String(url))) return real(url, init);
        window.__keys.push(init.headers['idempotency-key']);
        const res = await real(url, init);
        if (failed) return res;
        failed = true;
        res.body.cancel();
        throw new TypeError('Failed to fetch');
      };
    });
    const answer = await answerAfter(page, () => sendViaUi(page, 'Once only please', 'paced'), { timeout: 30000 });
    const keys = await page.evaluate(() => window.__keys);
    assert.equal(keys.length, 2, 'sent twice');
    assert.match(keys[0], /^[0-9a-f]{32}$/);
    assert.equal(keys[1], keys[0], 'with the same Idempotency-Key');

    const stored = await storedMessages(stack.url, token, await conversationId(page));
    assert.deepEqual(stored.map((m) => m.role), ['user', 'assistant'], 'one turn stored');
    assert.equal(stored[1].status, 'complete');
    assert.equal(await answer.getAttribute('data-id'), stored[1].message_id);
    assert.equal(letters(await answer.locator('.body').innerText()), letters(stored[1].content));
    assert.equal(await page.locator('#messages article').count(), 2);
    await assertClean(page, problems);
  });

  test('Escape while an answer streams stops it through the cancel endpoint', { timeout: 60000 }, async () => {
    await page.getByRole('button', { name: '+ New chat' }).click();
    const cancels = [];
    const onRequest = (r) => /\/messages\/[^/]+\/cancel$/.test(r.url()) && cancels.push(r.method());
    page.on('request', onRequest);
    try {
      await sendViaUi(page, 'Go on and on', 'slow');
      await waitForLiveText(page, 40);
      const asst = await page.locator('#messages article.live').getAttribute('data-id');
      await page.keyboard.press('Escape');
      await page.waitForFunction((a) => document.querySelector(`#messages article[data-id="${a}"]`)?.dataset.status === 'cancelled', asst);
      assert.deepEqual(cancels, ['POST']);
      const stored = await settledMessage(stack.url, token, await conversationId(page), asst);
      assert.equal(stored.status, 'cancelled');
      const answer = page.locator(`#messages article[data-id="${asst}"]`);
      assert.equal(letters(await answer.locator('.body').innerText()), letters(stored.content));
      assert.equal(await page.locator('#status').textContent(), 'Answer stopped.');
      await page.locator('#send').waitFor();
    } finally {
      page.off('request', onRequest);
    }
    await assertClean(page, problems);
  });

  test('a second tab sees the answer stream; Stop there ends it in both tabs', { timeout: 60000 }, async () => {
    await page.getByRole('button', { name: '+ New chat' }).click();
    await answerAfter(page, () => sendViaUi(page, 'first words', 'echo'));
    const id = await conversationId(page);
    const tab = await context.newPage();
    const tabProblems = await watchPage(tab);
    try {
      await tab.goto(`${stack.url}/#${id}`);
      await tab.locator('#messages article.assistant').waitFor();
      assert.equal(await tab.locator('#messages article').count(), 2);

      await sendViaUi(page, 'Say a lot', 'slow');
      // The other tab learns of the turn and reads it as it streams.
      await waitForLiveText(tab, 40);
      const asst = await tab.locator('#messages article.live').getAttribute('data-id');
      assert.equal(await page.locator('#messages article.live').getAttribute('data-id'), asst, 'the same answer in both tabs');
      const early = await liveLength(tab);
      await tab.waitForFunction((n) => (document.querySelector('#messages article.live .body')?.textContent.length ?? 0) > n + 20, early);
      await shot(tab, 'resume-second-tab');

      await tab.getByRole('button', { name: 'Stop' }).click();
      const stopped = (p) => p.waitForFunction((a) => document.querySelector(`#messages article[data-id="${a}"]`)?.dataset.status === 'cancelled', asst);
      await Promise.all([stopped(tab), stopped(page)]);
      const stored = await settledMessage(stack.url, token, id, asst);
      assert.equal(stored.status, 'cancelled');
      assert.ok(stored.content.length > 0, 'the partial answer is kept');
      for (const p of [page, tab]) {
        const answer = p.locator(`#messages article[data-id="${asst}"]`);
        assert.equal(await answer.locator('.badge').textContent(), 'stopped');
        assert.equal(letters(await answer.locator('.body').innerText()), letters(stored.content));
        assert.equal(await p.locator('#status').textContent(), 'Answer stopped.');
        await p.locator('#send').waitFor();
        assert.equal(await p.locator('#messages article.live').count(), 0);
      }
      await shot(page, 'resume-stopped-elsewhere');
      await assertClean(tab, tabProblems);
      await assertClean(page, problems);
    } finally {
      await tab.close();
    }
  });
});
