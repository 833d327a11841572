// The chat page in a real browser against the real worker: streaming, stop, reload, branches
// and safe rendering of model output.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  answerAfter, assertClean, apiLogin, conversationId, launchBrowser, openPage, registerViaUi, sendViaUi, shot, squash,
  letters, startBrowserStack, storedMessages, unique, waitForAnswer,
} from './helpers.mjs';

let stack;
let browser;

before(async () => {
  stack = await startBrowserStack({ logName: 'chat' });
  browser = await launchBrowser();
}, { timeout: 120000 });

after(async () => {
  await browser?.close();
  await stack?.stop();
});

describe('the chat page', { timeout: 120000 }, () => {
  let page;
  let problems;
  let email;
  let context;

  before(async () => {
    ({ page, problems, context } = await openPage(browser));
    email = unique('chat');
    await registerViaUi(page, stack.url, email, 'Tester');
  });

  after(async () => {
    await context?.close();
  });

  test('an answer streams in and ends equal to the stored answer', { timeout: 30000 }, async () => {
    // Record the assistant bubble's text length at every change, with the time.
    await page.evaluate(() => {
      window.__samples = [];
      const box = document.getElementById('messages');
      new MutationObserver(() => {
        const live = box.querySelector('article.assistant.live .body');
        if (live) window.__samples.push([performance.now(), live.textContent.length]);
      }).observe(box, { childList: true, subtree: true, characterData: true });
    });
    await sendViaUi(page, 'Tell me a story', 'paced');
    await page.locator('#stop').waitFor({ state: 'visible' });
    const answer = await waitForAnswer(page);
    await shot(page, 'chat-streamed');

    const samples = await page.evaluate(() => window.__samples);
    const lengths = samples.map(([, n]) => n);
    const distinct = [...new Set(lengths)].filter((n) => n > 0);
    assert.ok(distinct.length >= 5, `the answer grew in steps, saw lengths ${distinct}`);
    for (let i = 1; i < lengths.length; i++) assert.ok(lengths[i] >= lengths[i - 1], 'the text only grows');
    const grewFor = samples.at(-1)[0] - samples.find(([, n]) => n > 0)[0];
    assert.ok(grewFor > 500, `the answer arrived over time (${Math.round(grewFor)} ms), not at once`);

    assert.equal(await answer.getAttribute('data-status'), 'complete');
    const token = await apiLogin(stack.url, email);
    const stored = await storedMessages(stack.url, token, await conversationId(page));
    assert.equal(stored.length, 2);
    assert.equal(stored[1].status, 'complete');
    assert.equal(letters(await answer.locator('.body').innerText()), letters(stored[1].content));
    await assert.doesNotReject(page.locator('#send').waitFor({ state: 'visible' }));
    assert.equal(await page.locator('#status').textContent(), 'Answer complete.');
    await assertClean(page, problems);
  });

  test('reloading keeps the history through the refresh cookie, with no token in storage', { timeout: 30000 }, async () => {
    const before = await page.locator('#messages article').count();
    const cookies = await context.cookies();
    const refresh = cookies.find((c) => c.path === '/api/v1/auth');
    assert.ok(refresh, `a refresh cookie is set: ${JSON.stringify(cookies.map((c) => c.name))}`);
    assert.equal(refresh.httpOnly, true);
    assert.equal(refresh.secure, true, 'Secure, and Chromium keeps it on 127.0.0.1');
    assert.equal(refresh.sameSite, 'Strict');

    const doc = await page.reload();
    assert.match(doc.headers()['content-security-policy'], /script-src 'self';/, 'the page runs under the strict policy');
    await page.locator('#messages article.assistant').first().waitFor();
    assert.equal(await page.locator('#auth').isVisible(), false, 'no login screen');
    assert.equal(await page.locator('#messages article').count(), before);
    assert.match(await page.locator('#conversations').innerText(), /Tell me a story/);

    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
    assert.doesNotMatch(stored, /ec_rt_|eyJ/, 'no token in web storage or script-visible cookies');
    await shot(page, 'chat-reloaded');
    await assertClean(page, problems);
  });

  test('two tabs loading at once both stay signed in (refreshes take turns)', { timeout: 30000 }, async () => {
    const second = await context.newPage();
    // Slow refreshes down so that the two loads overlap for sure.
    const slow = async (route) => { await new Promise((r) => setTimeout(r, 400)); await route.fallback(); };
    await context.route(/\/api\/v1\/auth\/refresh$/, slow);
    const log = [];
    const onRequest = (r) => r.url().endsWith('/auth/refresh') && log.push('start');
    const onDone = (r) => r.url().endsWith('/auth/refresh') && log.push('end');
    context.on('request', onRequest);
    context.on('requestfinished', onDone);
    try {
      await Promise.all([page.reload(), second.goto(`${stack.url}/`)]);
      const shown = (p) => p.locator('#app:not([hidden]), #auth:not([hidden])').first().getAttribute('id');
      assert.deepEqual(await Promise.all([shown(page), shown(second)]), ['app', 'app']);
      // A refresh token is single-use: the second tab waited for the first tab's refresh.
      assert.deepEqual(log, ['start', 'end', 'start', 'end']);
      context.off('request', onRequest);
      context.off('requestfinished', onDone);
      await context.unroute(/\/api\/v1\/auth\/refresh$/, slow);
      await second.reload();
      await second.locator('#app').waitFor({ state: 'visible' });
      await page.reload();
      await page.locator('#messages article.assistant').first().waitFor();
      assert.equal(await page.locator('#auth').isVisible(), false);
    } finally {
      await second.close();
    }
    await assertClean(page, problems);
  });

  test('Stop cancels the answer; the partial answer survives a reload, marked stopped', { timeout: 30000 }, async () => {
    await page.getByRole('button', { name: '+ New chat' }).click();
    await sendViaUi(page, 'Say a lot', 'slow');
    const live = page.locator('#messages article.assistant.live .body');
    await page.waitForFunction(() => (document.querySelector('#messages article.live .body')?.textContent.length ?? 0) > 40);
    assert.equal(await live.count(), 1);
    await page.getByRole('button', { name: 'Stop' }).click();

    const answer = page.locator('#messages article.assistant').last();
    await page.waitForFunction(() => document.querySelector('#messages article.assistant:last-of-type')?.dataset.status === 'cancelled');
    assert.equal(await answer.locator('.badge').textContent(), 'stopped');
    const shown = letters(await answer.locator('.body').innerText());
    assert.ok(shown.length > 30);
    assert.equal(await page.locator('#send').isVisible(), true);
    assert.equal(await page.locator('#status').textContent(), 'Answer stopped.');

    // The server stores what had arrived, as cancelled (poll: it finishes after the abort).
    const id = await conversationId(page);
    const token = await apiLogin(stack.url, email);
    let stored;
    for (let i = 0; i < 50; i++) {
      stored = (await storedMessages(stack.url, token, id))[1];
      if (stored.status !== 'streaming') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(stored.status, 'cancelled');
    assert.ok(stored.content.length > 0 && stored.content.length < 400 * 12, 'a partial answer');

    await page.reload();
    const again = page.locator('#messages article.assistant').last();
    await again.waitFor();
    assert.equal(await again.getAttribute('data-status'), 'cancelled');
    assert.equal(await again.locator('.badge').textContent(), 'stopped');
    const reloaded = letters(await again.locator('.body').innerText());
    assert.equal(reloaded, letters(stored.content));
    assert.ok(reloaded.startsWith(shown) || shown.startsWith(reloaded), 'what was shown is what was kept');
    await shot(page, 'chat-stopped');
    await assertClean(page, problems);
  });

  test('model output is text: no HTML, no script, no javascript: links', { timeout: 30000 }, async () => {
    const payload = 'Look <img src=x onerror=window.__pwned=1> and <script>window.__pwned=2</script> '
      + '[click](javascript:window.__pwned=3) <b>bold?</b>\n\n```html\n<svg onload=window.__pwned=4>\n```';
    await page.getByRole('button', { name: '+ New chat' }).click();
    const answer = await answerAfter(page, () => sendViaUi(page, payload, 'echo'));
    await page.waitForTimeout(300); // give an injected onerror a chance to run

    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    const text = await answer.locator('.body').innerText();
    assert.match(text, /<img src=x onerror=window\.__pwned=1>/);
    assert.match(text, /<script>window\.__pwned=2<\/script>/);
    assert.match(text, /<svg onload=window\.__pwned=4>/);
    assert.match(text, /\[click\]\(javascript:window\.__pwned=3\)/);
    const tags = await page.evaluate(() => [...document.querySelectorAll('#messages img, #messages script, #messages svg, #messages b, #messages iframe, #conversations img, #conversations script')].map((e) => e.tagName));
    assert.deepEqual(tags, []);
    const hrefs = await page.evaluate(() => [...document.querySelectorAll('#messages a')].map((a) => a.href));
    assert.deepEqual(hrefs, []);
    await shot(page, 'chat-xss');
    await assertClean(page, problems);
  });

  test('Markdown renders: bold, italic, code, lists, fenced code, safe links', { timeout: 30000 }, async () => {
    await page.getByRole('button', { name: '+ New chat' }).click();
    const md = 'Some **bold**, *italic* and `x < y` with https://example.com/a_b.\n\n- one\n- two\n\n1. first\n2. second\n\n```js\nconst a = "<b>";\n```\n\n[docs](https://example.org/docs)';
    const body = (await answerAfter(page, () => sendViaUi(page, md, 'echo'))).locator('.body');
    assert.equal(await body.locator('strong').textContent(), 'bold');
    assert.equal(await body.locator('em').textContent(), 'italic');
    assert.equal(await body.locator(':not(pre) > code').textContent(), 'x < y');
    assert.deepEqual(await body.locator('ul > li').allTextContents(), ['one', 'two']);
    assert.deepEqual(await body.locator('ol > li').allTextContents(), ['first', 'second']);
    assert.equal(await body.locator('pre code').textContent(), 'const a = "<b>";\n');
    const links = await body.locator('a').evaluateAll((as) => as.map((a) => [a.href, a.textContent, a.rel, a.target]));
    assert.deepEqual(links, [
      ['https://example.com/a_b', 'https://example.com/a_b', 'noopener noreferrer', '_blank'],
      ['https://example.org/docs', 'docs', 'noopener noreferrer', '_blank'],
    ]);
    await assertClean(page, problems);
  });

  test('the Markdown renderer only ever makes a few harmless elements', { timeout: 30000 }, async () => {
    const results = await page.evaluate(async () => {
      const { renderMarkdown } = await import('/assets/markdown.js');
      const inputs = [
        '<img src=x onerror=window.__pwned=5>', '<script>window.__pwned=6</script>', '<a href="javascript:alert(1)">x</a>',
        '[x](javascript:alert(1))', '[x](data:text/html,<script>alert(1)</script>)', '[x](JaVaScRiPt:alert(1))',
        '[x](https://ok.example/"onmouseover="alert(1))', 'https://ok.example/<b>x</b>', '**<i>bold</i>**',
        '```\n<script>window.__pwned=7</script>\n', '> quote <iframe src=x>\n> more', '# Title <svg/onload=alert(1)>',
        '- a\n- <style>*{}</style>', '&lt;escaped&gt; &amp; `&amp;`', '***nested* bold**', '1. one\n2. two\n\n---\n\ntext',
        '`unclosed code', '**unclosed bold', 'a\nb\n\nc', '\u0000\u202e rtl', 'x'.repeat(10000),
      ];
      // Markdown's elements, plus a code block's header (its language and a copy button).
      const allowed = new Set(['P', 'BR', 'STRONG', 'EM', 'S', 'CODE', 'PRE', 'A', 'UL', 'OL', 'LI', 'H3', 'H4', 'H5', 'H6', 'BLOCKQUOTE', 'HR',
        'TABLE', 'THEAD', 'TBODY', 'TR', 'TH', 'TD', 'DIV', 'SPAN', 'BUTTON']);
      const attrs = ['href', 'rel', 'target', 'data-lang', 'start', 'class', 'type', 'aria-label', 'title'];
      return inputs.map((text) => {
        const div = document.createElement('div');
        renderMarkdown(div, text);
        const bad = [...div.querySelectorAll('*')].filter((e) => !allowed.has(e.tagName) || [...e.attributes].some((a) => !attrs.includes(a.name))
          || (e.tagName === 'BUTTON' && !e.matches('.code-head > button.copy')));
        const hrefs = [...div.querySelectorAll('a')].map((a) => a.getAttribute('href'));
        div.querySelectorAll('.code-head').forEach((x) => x.remove());
        return { text, bad: bad.map((e) => e.outerHTML), hrefs, shown: div.textContent.trim() };
      });
    });
    for (const r of results) {
      assert.deepEqual(r.bad, [], `only plain elements for ${JSON.stringify(r.text)}`);
      for (const href of r.hrefs) assert.match(href, /^https:\/\/ok\.example\/[^"<>]*$/, `safe link for ${JSON.stringify(r.text)}`);
    }
    const byText = Object.fromEntries(results.map((r) => [r.text, r]));
    assert.equal(byText['<img src=x onerror=window.__pwned=5>'].shown, '<img src=x onerror=window.__pwned=5>');
    assert.equal(byText['&lt;escaped&gt; &amp; `&amp;`'].shown, '&lt;escaped&gt; &amp; &amp;', 'entities are not decoded');
    assert.equal(byText['`unclosed code'].shown, '`unclosed code');
    assert.equal(byText['```\n<script>window.__pwned=7</script>\n'].shown, '<script>window.__pwned=7</script>', 'a fence still streaming is code');
    assert.deepEqual(byText['[x](javascript:alert(1))'].hrefs, []);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
  });

  test('regenerate and edit-and-resend make branches to switch between', { timeout: 30000 }, async () => {
    await page.getByRole('button', { name: '+ New chat' }).click();
    await answerAfter(page, () => sendViaUi(page, 'first question', 'echo'));
    let answer = await answerAfter(page, () => sendViaUi(page, 'second question', 'echo'));
    assert.equal(await answer.locator('.body').innerText(), 'second question');

    // Regenerate: a new sibling answer, shown as 2/2; ‹ goes back to the first.
    await page.getByLabel('Model').selectOption('sim-small');
    answer = await answerAfter(page, () => answer.getByRole('button', { name: 'Regenerate' }).click());
    assert.equal(await answer.locator('.branches .count').textContent(), '2/2');
    assert.notEqual(await answer.locator('.body').innerText(), 'second question');
    await answer.getByRole('button', { name: 'Previous version' }).click();
    answer = page.locator('#messages article.assistant').last();
    assert.equal(await answer.locator('.branches .count').textContent(), '1/2');
    assert.equal(await answer.locator('.body').innerText(), 'second question');
    await answer.getByRole('button', { name: 'Next version' }).focus();
    await page.keyboard.press('Enter');
    assert.equal(await page.locator('#messages article.assistant').last().locator('.branches .count').textContent(), '2/2');

    // Edit the second question: a new branch below the first answer.
    await page.getByLabel('Model').selectOption('echo');
    await page.locator('#messages article.user').last().getByRole('button', { name: 'Edit' }).click();
    const edit = page.getByLabel('Edit message');
    assert.equal(await edit.inputValue(), 'second question');
    await edit.fill('edited question');
    answer = await answerAfter(page, () => edit.press('Enter'));
    assert.equal(await answer.locator('.body').innerText(), 'edited question');
    const q = page.locator('#messages article.user').last();
    assert.equal(await q.locator('.body').innerText(), 'edited question');
    assert.equal(await q.locator('.branches .count').textContent(), '2/2');
    assert.equal(await page.locator('#messages article').count(), 4, 'one path: root to leaf');
    await shot(page, 'chat-branches');

    // Back to the first version of the question: its own latest answer comes with it.
    await q.getByRole('button', { name: 'Previous version' }).click();
    assert.equal(await page.locator('#messages article.user').last().locator('.body').innerText(), 'second question');
    assert.equal(await page.locator('#messages article.assistant').last().locator('.branches .count').textContent(), '2/2');
    assert.equal(await page.locator('#messages article').count(), 4);

    // After a reload the newest branch is shown, and the whole tree is stored.
    await page.reload();
    await page.locator('#messages article.assistant').nth(1).waitFor();
    assert.equal(await page.locator('#messages article.user').last().locator('.body').innerText(), 'edited question');
    const token = await apiLogin(stack.url, email);
    const stored = await storedMessages(stack.url, token, await conversationId(page));
    assert.equal(stored.length, 7);
    await assertClean(page, problems);
  });

  test('conversations: search, rename and delete', { timeout: 30000 }, async () => {
    await page.getByRole('button', { name: '+ New chat' }).click();
    await answerAfter(page, () => sendViaUi(page, 'zebra facts please', 'echo'));
    await page.waitForFunction(() => /zebra facts/.test(document.getElementById('conversations').textContent));
    const search = page.getByLabel('Search conversations');
    await search.fill('zebra');
    await page.waitForFunction(() => document.querySelectorAll('#conversations li.conv').length === 1);
    await search.fill('');
    await page.waitForFunction(() => document.querySelectorAll('#conversations li.conv').length > 1);

    const item = page.locator('#conversations li.conv', { hasText: 'zebra facts' });
    await item.getByRole('button', { name: /^Rename/ }).click();
    const title = page.getByLabel('New title');
    await title.fill('Renamed zebras');
    await title.press('Enter');
    await page.locator('#conversations li.conv', { hasText: 'Renamed zebras' }).waitFor();
    assert.equal(await page.locator('#chat-title').textContent(), 'Renamed zebras');

    const renamed = page.locator('#conversations li.conv', { hasText: 'Renamed zebras' });
    await renamed.getByRole('button', { name: /^Delete/ }).click();
    await page.locator('#confirm').getByRole('button', { name: 'Delete' }).click();
    await page.waitForFunction(() => !/Renamed zebras/.test(document.getElementById('conversations').textContent));
    assert.equal(await page.locator('#chat-title').textContent(), 'New chat');
    await page.reload();
    await page.locator('#conversations li.conv').first().waitFor();
    assert.doesNotMatch(await page.locator('#conversations').innerText(), /Renamed zebras/);
    await assertClean(page, problems);
  });

  test('usage and plan are shown', { timeout: 30000 }, async () => {
    await page.getByRole('button', { name: 'Usage' }).click();
    const dialog = page.getByRole('dialog', { name: 'Usage and plan' });
    await dialog.locator('table').waitFor();
    const text = await dialog.innerText();
    assert.match(text, /Plan: free/);
    assert.match(text, /1,000 requests per minute/);
    assert.match(text, /Today \(\d{4}-\d\d-\d\d\): [\d,]+ of 10,000,000 tokens/);
    assert.match(text, /paced/);
    await shot(page, 'chat-usage');
    await dialog.getByRole('button', { name: 'Close' }).click();
    await assertClean(page, problems);
  });
});
