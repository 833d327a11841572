// How answers look in a real browser: Markdown from the simulator's real answers (tables, nested
// lists, highlighted code, math), model output kept as text, copy buttons, the phone layout
// without sideways scrolling, and screenshots of desktop, phone and dark mode.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TEST_VARS } from '../support/stack.mjs';
import {
  answerAfter, apiLogin, assertClean, conversationId, launchBrowser, openPage, registerViaUi, sendViaUi, shot,
  startBrowserStack, storedMessages, unique, watchPage,
} from './helpers.mjs';

let stack;
let browser;

before(async () => {
  const routes = JSON.parse(TEST_VARS.MODEL_ROUTES);
  // Long answers, streamed quickly: every block the prompt asks for fits.
  routes.models.rich = { provider: 'openai', upstream: 'sim-small+tokens=700+interval=1' };
  routes.models.paced = { provider: 'openai', upstream: 'sim-small+tokens=100+interval=30' };
  stack = await startBrowserStack({ logName: 'render', vars: { MODEL_ROUTES: JSON.stringify(routes) } });
  browser = await launchBrowser();
}, { timeout: 120000 });

after(async () => {
  await browser?.close();
  await stack?.stop();
});

const PROMPT = 'Give me a list of steps, a table of results, a Python function and the equation';
const LONG_TITLE = 'A conversation title that is much longer than any phone screen is wide, '.repeat(2).trim();
const LONG_LINE = `const ${'veryLongIdentifier_'.repeat(20)} = ${'1 + '.repeat(40)}1;`;

/** What the simulator answers, not streamed, to the last request it got that holds `text`. */
async function simAnswer(text) {
  const { data } = await (await fetch(`${stack.simUrl}/_sim/requests?contains=${encodeURIComponent(text)}`)).json();
  // The answer's request, not the title call after it (its prompt quotes the question).
  const asked = data.filter((r) => !String(r.body.messages?.[0]?.content ?? '').startsWith('Write a short title'));
  const { stream, stream_options, ...body } = asked.at(-1).body;
  const res = await fetch(`${stack.simUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return (await res.json()).choices[0].message.content;
}

/** The page's width and its viewport's, and the elements sticking out on the right (for messages). */
async function overflow(page) {
  return page.evaluate(() => ({
    viewport: window.innerWidth,
    doc: document.documentElement.scrollWidth,
    body: document.body.scrollWidth,
    out: [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && e.checkVisibility())
      .slice(0, 5).map((e) => `${e.tagName}#${e.id}.${e.className}`),
  }));
}

describe('rendering answers', { timeout: 180000 }, () => {
  let page;
  let problems;
  let context;
  let email;
  let answer;
  let stored;
  let richId;

  before(async () => {
    ({ page, problems, context } = await openPage(browser));
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.url });
    email = unique('render');
    await registerViaUi(page, stack.url, email, 'Renderer');
  });

  after(async () => {
    await context?.close();
  });

  test('a real answer renders its heading, table, nested list, highlighted code and math', { timeout: 60000 }, async (t) => {
    answer = await answerAfter(page, () => sendViaUi(page, PROMPT, 'rich'), { timeout: 40000 });
    const body = answer.locator('.body');
    const token = await apiLogin(stack.url, email);
    richId = await conversationId(page);
    stored = (await storedMessages(stack.url, token, richId))[1].content;
    assert.equal(stored, await simAnswer(PROMPT), 'the simulator\'s answer, as stored');

    // Headings start below the page's own: "##" is an h4, "###" an h5.
    assert.equal(await body.locator('h4').count(), 1);
    assert.ok(await body.locator('h5').count() >= 1);
    // The table: a header row, right-aligned numbers (a class, not a style), inside a scroller.
    const table = body.locator('.table-wrap > table');
    assert.equal(await table.count(), 1);
    assert.equal(await table.locator('thead th').count(), 3);
    assert.equal(await table.locator('thead th').nth(1).textContent(), 'Count');
    const rows = await table.locator('tbody tr').count();
    assert.ok(rows >= 3, `${rows} rows`);
    assert.equal(await table.locator('tbody td.align-right').count(), rows);
    assert.match(await table.locator('tbody td.align-right').first().textContent(), /^\d+$/);
    // Nested lists: the numbered steps' first item holds a bullet list; so do the sections'.
    assert.equal(await body.locator('ol > li:first-child > ul > li').count(), 2);
    assert.ok(await body.locator('ul > li > ul > li').count() >= 1);
    // Code: highlighted once highlight.js and its Python chunk arrived, labelled, in a scroller.
    const block = body.locator('.code-block');
    assert.equal(await block.count(), 1);
    assert.equal(await block.locator('.code-lang').textContent(), 'python');
    await block.locator('pre code.language-python .hljs-keyword').first().waitFor();
    const keywords = await block.locator('.hljs-keyword').allTextContents();
    assert.ok(keywords.includes('def') && keywords.includes('return'), `keywords: ${keywords}`);
    const fence = /```python\n([\s\S]*?)\n```/.exec(stored)[1];
    assert.equal(await block.locator('pre code').textContent(), `${fence}\n`, 'the code as written');
    // Math: KaTeX (loaded on first use) typesets the inline and the display formula, with
    // MathML for screen readers that keeps the source.
    await body.locator('.math-display .katex-display').waitFor();
    assert.equal(await body.locator('.math-inline .katex').count(), 1);
    const display = /\n\$\$\n([^$]+)\n\$\$/.exec(stored)[1];
    assert.equal(await body.locator('.math-display annotation').textContent(), display);
    const sheet = await page.evaluate(() => [...document.styleSheets].some((s) => s.href?.endsWith('/assets/katex/katex.min.css')));
    assert.ok(sheet, 'KaTeX stylesheet loaded from the page\'s own origin');
    // KaTeX's fonts are files of the page's origin too: a typeset formula uses one.
    await page.waitForFunction(() => [...document.fonts].some((f) => f.family.includes('KaTeX') && f.status === 'loaded'));
    await block.evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await shot(page, 'render-desktop');

    // Streaming re-renders the growing answer once per frame: a whole render of this answer
    // (about 4 KB of Markdown, with code and math cached as after the first frames) must fit a frame.
    const ms = await page.evaluate(async (text) => {
      const { renderMarkdown } = await import('/assets/markdown.js');
      const div = document.createElement('div');
      document.getElementById('messages').append(div);
      const times = [];
      for (let i = 0; i < 15; i++) {
        const t0 = performance.now();
        renderMarkdown(div, text.slice(0, text.length - i)); // a different text each time, as when streaming
        times.push(performance.now() - t0);
      }
      div.remove();
      return times.sort((a, b) => a - b)[7];
    }, stored);
    t.diagnostic(`rendering the ${stored.length}-character answer: ${ms.toFixed(2)} ms (median)`);
    assert.ok(ms < 16, `a render takes ${ms} ms`);
    await assertClean(page, problems);
  });

  test('copy: a code block copies its code, a message copies its Markdown', { timeout: 30000 }, async () => {
    const codeCopy = answer.locator('.code-block').getByRole('button', { name: 'Copy python code' });
    await codeCopy.click();
    await page.waitForFunction((b) => b.textContent === 'Copied', await codeCopy.elementHandle());
    const fence = /```python\n([\s\S]*?)\n```/.exec(stored)[1];
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), fence);
    assert.equal(await page.locator('#status').textContent(), 'Copied to the clipboard.');

    const msgCopy = answer.locator('.tools').getByRole('button', { name: 'Copy answer' });
    await msgCopy.click();
    await page.waitForFunction((b) => b.textContent === 'Copied', await msgCopy.elementHandle());
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), stored);

    const mine = page.locator('#messages article.user').last().getByRole('button', { name: 'Copy your message' });
    await mine.click();
    await page.waitForFunction((b) => b.textContent === 'Copied', await mine.elementHandle());
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), PROMPT);
    // The "Copied" state goes back by itself.
    await page.waitForFunction(() => [...document.querySelectorAll('button.copy')].every((b) => b.textContent === 'Copy'), null, { timeout: 5000 });
    await assertClean(page, problems);
  });

  test('model output stays text: raw HTML is shown, a javascript: link is no link', { timeout: 30000 }, async () => {
    await page.getByRole('button', { name: '+ New chat' }).click();
    const payload = 'Raw <img src=x onerror=window.__pwned=1> and <b>bold?</b> <span style="color:red">red</span>\n\n'
      + '[click me](javascript:window.__pwned=2) [data](data:text/html,x) [ok](https://example.org/a) <javascript:alert(1)>\n\n'
      + '| a | b |\n| - | - |\n| <i>x</i> | $\\href{javascript:alert(1)}{y}$ |';
    const a = await answerAfter(page, () => sendViaUi(page, payload, 'echo'));
    await page.waitForTimeout(300);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    const text = await a.locator('.body').innerText();
    assert.match(text, /<img src=x onerror=window\.__pwned=1>/);
    assert.match(text, /<b>bold\?<\/b> <span style="color:red">red<\/span>/);
    assert.match(text, /\[click me\]\(javascript:window\.__pwned=2\)/);
    assert.match(text, /<i>x<\/i>/);
    const links = await a.locator('.body a').evaluateAll((as) => as.map((x) => [x.getAttribute('href'), x.rel, x.target]));
    assert.deepEqual(links, [['https://example.org/a', 'noopener noreferrer', '_blank']]);
    const tags = await a.locator('.body').evaluate((b) => [...b.querySelectorAll('img, b, i, script, iframe, [style]:not(.katex *)')].map((e) => e.tagName));
    assert.deepEqual(tags, []);
    // \href needs KaTeX's trust, which the page never gives: no link inside the formula either.
    await a.locator('.body .math-inline.typeset').waitFor();
    assert.equal(await a.locator('.body .math a').count(), 0);
    await assertClean(page, problems);
  });

  test('phones at 320 and 375 px: no sideways overflow with a long title and a long code line', { timeout: 60000 }, async () => {
    await page.getByRole('button', { name: '+ New chat' }).click();
    const md = `Here is a long line:\n\n\`\`\`js\n${LONG_LINE}\n\`\`\`\n\nAnd a long word: ${'x'.repeat(200)}`;
    await answerAfter(page, () => sendViaUi(page, md, 'echo'));
    const id = await conversationId(page);
    const token = await apiLogin(stack.url, email);
    const res = await fetch(`${stack.url}/api/v1/conversations/${id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: LONG_TITLE }),
    });
    assert.equal(res.status, 200);
    await page.reload();
    await page.locator('#messages .code-block').first().waitFor();
    await page.waitForFunction((t) => document.getElementById('chat-title').textContent === t, LONG_TITLE);

    for (const width of [320, 375]) {
      await page.setViewportSize({ width, height: 700 });
      await page.waitForTimeout(100);
      const o = await overflow(page);
      assert.equal(o.doc, width, `document width at ${width}px: ${JSON.stringify(o)}`);
      assert.equal(o.body, width, `body width at ${width}px: ${JSON.stringify(o)}`);
      // The code block scrolls inside itself.
      const pre = await page.locator('#messages .code-block pre').first().evaluate((p) => ({ scroll: p.scrollWidth, client: p.clientWidth, right: p.getBoundingClientRect().right }));
      assert.ok(pre.scroll > pre.client, `the code scrolls inside (${JSON.stringify(pre)})`);
      assert.ok(pre.right <= width, `the code block fits (${JSON.stringify(pre)})`);
      // The header's buttons are all on screen.
      for (const sel of ['#menu', '#chat-title', '#model', '#usage-open', '#logout']) {
        const box = await page.locator(sel).boundingBox();
        assert.ok(box && box.x >= 0 && box.x + box.width <= width && box.y >= 0 && box.y + box.height <= 700, `${sel} on screen at ${width}px: ${JSON.stringify(box)}`);
      }
      // The usage dialog fits too.
      await page.getByRole('button', { name: 'Usage' }).click();
      const dialog = page.getByRole('dialog', { name: 'Usage and plan' });
      await dialog.locator('table, p.muted').first().waitFor();
      const box = await dialog.boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= width, `usage dialog on screen at ${width}px: ${JSON.stringify(box)}`);
      assert.ok(await dialog.getByRole('button', { name: 'Close' }).isVisible());
      assert.equal((await overflow(page)).doc, width);
      if (width === 375) await shot(page, 'render-phone-usage');
      await dialog.getByRole('button', { name: 'Close' }).click();
    }
    await page.setViewportSize({ width: 1200, height: 800 });
    await assertClean(page, problems);
  });

  test('screenshots: phone and dark mode with the rich answer', { timeout: 60000 }, async () => {
    for (const [name, options] of [['render-phone', { viewport: { width: 375, height: 700 } }], ['render-dark', { viewport: { width: 1200, height: 800 }, colorScheme: 'dark' }]]) {
      const ctx = await browser.newContext(options);
      try {
        const p = await ctx.newPage();
        const issues = await watchPage(p);
        await p.goto(`${stack.url}/`);
        // A fresh context has no session: log in, then open the rich answer's conversation.
        await p.locator('#auth').waitFor({ state: 'visible' });
        await p.getByLabel('Email').fill(email);
        await p.getByLabel('Password').fill('correct horse battery');
        await p.locator('#auth-submit').click();
        await p.locator('#app').waitFor({ state: 'visible' });
        await p.goto(`${stack.url}/#${richId}`);
        await p.locator('#messages .katex').first().waitFor();
        await p.locator('#messages .hljs-keyword').first().waitFor();
        // The code block, the table and the math in view (the page opens at the answer's end).
        await p.locator('#messages .code-block').first().evaluate((e) => e.scrollIntoView({ block: 'start' }));
        if (name === 'render-phone') {
          const o = await overflow(p);
          assert.equal(o.doc, 375, JSON.stringify(o));
        } else {
          const bg = await p.evaluate(() => getComputedStyle(document.body).backgroundColor);
          assert.equal(bg, 'rgb(21, 24, 28)', 'the dark palette');
        }
        await shot(p, name);
        await assertClean(p, issues);
      } finally {
        await ctx.close();
      }
    }
  });
});
