// Shared pieces of the browser tests: the real stack (simulator + worker under wrangler dev),
// headless Debian Chromium driven by playwright-core, and small page actions.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, TEST_VARS, startStack } from '../support/stack.mjs';

// Screenshots and the stack's logs; the integration runner's EDGECHAT_ARTIFACTS is honoured.
export const ARTIFACTS = path.join(process.env.EDGECHAT_ARTIFACTS || path.join(ROOT, 'test-artifacts'), 'browser');
const CHROMIUM = process.env.EDGECHAT_CHROMIUM || '/usr/bin/chromium';
export const PASSWORD = 'correct horse battery';

/** Test models plus one paced for watching an answer grow (~3 s), and generous plan limits
 * unless a file asks for its own; `vars` overrides any other variable. */
export async function startBrowserStack({ plans, logName, vars: extra = {} }) {
  const routes = JSON.parse(TEST_VARS.MODEL_ROUTES);
  routes.models.paced = { provider: 'openai', upstream: 'sim-small+tokens=100+interval=30' };
  const vars = {
    MODEL_ROUTES: JSON.stringify(routes),
    PLANS: JSON.stringify(plans ?? {
      free: { requests_per_minute: 1000, tokens_per_day: 10_000_000, concurrent_streams: 4, models: ['*'] },
    }),
    ...extra,
  };
  return startStack({ vars, logDir: path.join(ARTIFACTS, logName) });
}

/** Headless Chromium with a fresh profile (Playwright gives every launch its own temporary
 * user-data dir) and nothing that phones home. */
export function launchBrowser() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run bash scripts/setup-browser.sh`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A page in a new, isolated context (its own cookies). Records uncaught page errors and
 * Content-Security-Policy violations so tests can assert there were none, and any request
 * that is not to the loopback worker.
 */
/** Fails on page errors, console errors, CSP violations and off-loopback requests. */
export async function assertClean(page, problems) {
  const csp = await page.evaluate(() => window.__csp);
  assert.deepEqual([...problems, ...csp.map((v) => `CSP violation: ${v}`)], []);
}

export async function openPage(browser, { viewport = { width: 1200, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'data:' && u.hostname !== '127.0.0.1') problems.push(`request off loopback: ${r.url()}`);
  });
  page.on('console', (m) => {
    // The refresh on first load answers 401 without a cookie: that is expected.
    if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return { context, page, problems };
}

export async function shot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

/** Registers `email` through the page's form; resolves when the chat screen shows. */
export async function registerViaUi(page, url, email, displayName) {
  await page.goto(`${url}/`);
  await page.locator('#auth').waitFor({ state: 'visible' });
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  if (displayName) await page.getByLabel('Display name (optional)').fill(displayName);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator('#app').waitFor({ state: 'visible' });
  await waitForModels(page);
}

export async function loginViaUi(page, email) {
  await page.locator('#auth').waitFor({ state: 'visible' });
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.locator('#auth-submit').click();
  await page.locator('#app').waitFor({ state: 'visible' });
  await waitForModels(page);
}

export async function waitForModels(page) {
  await page.waitForFunction(() => document.querySelectorAll('#model option').length > 1);
}

/** Types `text` into the composer with `model` picked and presses Enter. */
export async function sendViaUi(page, text, model) {
  if (model) await page.getByLabel('Model').selectOption(model);
  const box = page.getByLabel('Message', { exact: true });
  await box.fill(text);
  await box.press('Enter');
}

/** The last assistant message shown, once it is no longer streaming. */
export async function waitForAnswer(page, { count, timeout = 20000 } = {}) {
  await page.waitForFunction((n) => {
    const all = document.querySelectorAll('#messages article.assistant');
    const last = all[all.length - 1];
    return (n == null || all.length === n) && last && last.dataset.status !== 'streaming';
  }, count, { timeout });
  return page.locator('#messages article.assistant').last();
}

/** Runs `action` (which starts a turn) and waits for its answer: a new assistant message,
 * last on the page, no longer streaming. */
export async function answerAfter(page, action, { timeout = 20000 } = {}) {
  const seen = await page.locator('#messages article.assistant').evaluateAll((as) => as.map((a) => a.dataset.id));
  await action();
  await page.waitForFunction((old) => {
    const last = [...document.querySelectorAll('#messages article.assistant')].at(-1);
    return last && !old.includes(last.dataset.id) && last.dataset.status !== 'streaming' && !document.querySelector('#messages article.live');
  }, seen, { timeout });
  return page.locator('#messages article.assistant').last();
}

/** The open conversation's id, from the page's address. */
export async function conversationId(page) {
  await page.waitForFunction(() => /^#cnv_/.test(location.hash));
  return page.evaluate(() => location.hash.slice(1));
}

/** An access token for `email` straight from the API (a separate session). */
export async function apiLogin(url, email) {
  const res = await fetch(`${url}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  if (!res.ok) throw new Error(`login ${res.status}: ${await res.text()}`);
  return (await res.json()).access_token;
}

export async function apiGet(url, token, p) {
  const res = await fetch(`${url}${p}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** The stored messages of a conversation, oldest first. */
export async function storedMessages(url, token, convId) {
  const { status, body } = await apiGet(url, token, `/api/v1/conversations/${convId}/messages?limit=100`);
  if (status !== 200) throw new Error(`messages ${status}`);
  return body.data;
}

export const squash = (s) => s.replace(/\s+/g, ' ').trim();

/** The letters and digits of a text: an answer's Markdown source and its rendering agree on them
 * (the simulator's prose has no list numbers, which a rendering shows as markers, not text). */
export const letters = (s) => s.replace(/[^\p{L}\p{N}]+/gu, '');

export function unique(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}@example.com`;
}

/** Records the problems `assertClean` checks on a page that `openPage` did not make (a second
 * tab in the same context). */
export async function watchPage(page) {
  page.setDefaultTimeout(15000);
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  return problems;
}

/** Waits until the answer streaming on the page shows more than `chars` characters. */
export async function waitForLiveText(page, chars = 40) {
  await page.waitForFunction((n) => (document.querySelector('#messages article.live .body')?.textContent.length ?? 0) > n, chars);
}

/** The stored message `id` once it is no longer streaming. */
export async function settledMessage(url, token, convId, id, { timeout = 20000 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const m = (await storedMessages(url, token, convId)).find((x) => x.message_id === id);
    if (m && m.status !== 'streaming') return m;
    if (Date.now() > deadline) throw new Error(`message ${id} still ${m?.status ?? 'missing'}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
