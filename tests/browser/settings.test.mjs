// The page's settings in a real browser: a chat's system prompt and model, the model picker,
// the account (display name, password, deletion), API keys, informational messages, focus after
// each dialog, and screenshots of the dialogs on a desktop, a phone and in dark mode.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  PASSWORD, answerAfter, apiGet, apiLogin, assertClean, conversationId, launchBrowser, openPage, registerViaUi,
  sendViaUi, shot, startBrowserStack, unique,
} from './helpers.mjs';

let stack;
let browser;

before(async () => {
  stack = await startBrowserStack({ logName: 'settings' });
  browser = await launchBrowser();
}, { timeout: 120000 });

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** Requests the simulator received whose system prompt or messages contain `text`. */
async function simRequests(text) {
  return (await (await fetch(`${stack.simUrl}/_sim/requests?contains=${encodeURIComponent(text)}`)).json()).data;
}

async function eventually(check, what) {
  for (const deadline = Date.now() + 5000; ;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const focusedId = (page) => page.evaluate(() => document.activeElement?.id);
/** Waits (up to 5 s) for the focus to land on `id`: the page moves it after a dialog's close event. */
async function focusLandsOn(page, id, what = `focus on #${id}`) {
  try {
    await page.waitForFunction((want) => document.activeElement?.id === want, id, { timeout: 5000 });
  } catch {
    assert.fail(`${what}: the focus is on #${await focusedId(page)}`);
  }
}
const dialog = (page, name) => page.getByRole('dialog', { name });

async function openChatSettings(page) {
  await page.getByRole('button', { name: 'Chat settings' }).click();
  const dlg = page.locator('#chat-settings');
  await dlg.waitFor({ state: 'visible' });
  return dlg;
}

test('a system prompt set on the page reaches the model, for a new chat and an existing one', { timeout: 60000 }, async () => {
  const { context, page, problems } = await openPage(browser);
  try {
    const email = unique('sp');
    await registerViaUi(page, stack.url, email);
    const first = `pirate-${Date.now().toString(36)}`;
    let dlg = await openChatSettings(page);
    await focusLandsOn(page, 'cs-prompt', 'focus starts in the system prompt');
    await dlg.getByLabel('System prompt').fill(`Talk like a ${first}.`);
    assert.match(await dlg.locator('#cs-prompt-count').innerText(), /of 8,192 bytes/);
    await dlg.getByRole('button', { name: 'Save' }).click();
    await dlg.waitFor({ state: 'hidden' });
    await focusLandsOn(page, 'chat-settings-open', 'focus goes back to the button');

    await answerAfter(page, () => sendViaUi(page, 'hello there', 'sim-small'));
    const id = await conversationId(page);
    const sent = await eventually(() => simRequests(first).then((r) => r.length && r), 'the system prompt upstream');
    const system = sent.at(-1).body.messages.filter((m) => m.role === 'system');
    assert.match(JSON.stringify(system), new RegExp(first), 'sent as a system message');

    // An existing conversation: the new prompt is stored (PATCH) and used by the next turn.
    const second = `poet-${Date.now().toString(36)}`;
    dlg = await openChatSettings(page);
    assert.match(await dlg.getByLabel('System prompt').inputValue(), new RegExp(first));
    await dlg.getByLabel('System prompt').fill(`Answer as a ${second}.`);
    await dlg.getByRole('button', { name: 'Save' }).click();
    await dlg.waitFor({ state: 'hidden' });
    const token = await apiLogin(stack.url, email);
    assert.match((await apiGet(stack.url, token, `/api/v1/conversations/${id}`)).body.system_prompt, new RegExp(second));
    await answerAfter(page, () => sendViaUi(page, 'and again'));
    await eventually(() => simRequests(second).then((r) => r.length), 'the new system prompt upstream');

    // Escape closes the dialog and focus goes back to its button.
    await openChatSettings(page);
    await page.keyboard.press('Escape');
    await page.locator('#chat-settings').waitFor({ state: 'hidden' });
    await focusLandsOn(page, 'chat-settings-open');
    await assertClean(page, problems);
  } finally {
    await context.close();
  }
});

test('the model picker names each chat model, its provider and abilities, and the default; picking one changes the chat', { timeout: 60000 }, async () => {
  const { context, page, problems } = await openPage(browser);
  try {
    const email = unique('picker');
    await registerViaUi(page, stack.url, email);
    const token = await apiLogin(stack.url, email);
    const models = (await apiGet(stack.url, token, '/v1/models')).body.data;
    assert.deepEqual(models.filter((m) => m.default).map((m) => m.id), ['sim-small'], 'the API names the default');

    // The header's quick picker.
    const options = await page.locator('#model option').allInnerTexts();
    assert.equal(options[0], 'default (sim-small)');
    assert.ok(options.includes('claude (anthropic) — tools, JSON · 8k context'), options.join('\n'));
    assert.ok(options.includes('sim-small (openai) — tools, JSON, vision · 8k context · default'), options.join('\n'));
    assert.ok(!options.some((o) => /embed/.test(o)), 'no embedding models');

    await answerAfter(page, () => sendViaUi(page, 'which model', 'sim-small'));
    const id = await conversationId(page);
    const dlg = await openChatSettings(page);
    const picks = dlg.getByRole('radiogroup', { name: 'Model' }).or(dlg.locator('fieldset'));
    const text = await picks.first().innerText();
    assert.match(text, /sim-small \(default\)\s+openai · tools, JSON, vision · 8k context/);
    assert.match(text, /claude\s+anthropic · tools, JSON · 8k context/);
    assert.match(text, /tiny\s+openai · tools, JSON, vision · 200 context/);
    assert.equal(await dlg.getByRole('radio', { name: /^sim-small/ }).isChecked(), true);
    await shot(page, 'settings-chat-desktop');
    await dlg.getByRole('radio', { name: /^sim-large/ }).check();
    await dlg.getByRole('button', { name: 'Save' }).click();
    await dlg.waitFor({ state: 'hidden' });
    assert.equal((await apiGet(stack.url, token, `/api/v1/conversations/${id}`)).body.model, 'sim-large');
    assert.equal(await page.locator('#model').inputValue(), 'sim-large');
    await assertClean(page, problems);
  } finally {
    await context.close();
  }
});

test('account: display name and password change (wrong current password and too short shown), log in with the new one', { timeout: 60000 }, async () => {
  const { context, page, problems } = await openPage(browser);
  try {
    const email = unique('acct');
    await registerViaUi(page, stack.url, email, 'Old Name');
    await page.getByRole('button', { name: 'Account' }).click();
    const dlg = dialog(page, 'Account');
    await dlg.waitFor();
    await dlg.getByLabel('Display name', { exact: true }).fill('New Name');
    await dlg.getByRole('button', { name: 'Save name' }).click();
    await dlg.getByText('Display name saved.').waitFor();
    assert.match(await page.locator('#user-line').innerText(), /New Name/);

    const current = dlg.getByLabel('Current password', { exact: true });
    const next = dlg.getByLabel('New password', { exact: true });
    await current.fill('not my password');
    await next.fill('a brand new password');
    await dlg.getByRole('button', { name: 'Change password' }).click();
    const note = dlg.locator('#acc-pw-note');
    await note.filter({ hasText: 'The current password is wrong.' }).waitFor();
    assert.match(await note.getAttribute('class'), /error/);
    await focusLandsOn(page, 'acc-current');

    await current.fill(PASSWORD);
    await next.fill('short');
    await dlg.getByRole('button', { name: 'Change password' }).click();
    await note.filter({ hasText: /too short/ }).waitFor();
    await focusLandsOn(page, 'acc-new');

    await next.fill('a brand new password');
    await dlg.getByRole('button', { name: 'Change password' }).click();
    await note.filter({ hasText: 'Password changed.' }).waitFor();
    assert.match(await note.getAttribute('class'), /ok/);
    await shot(page, 'settings-account-desktop');
    await dlg.getByRole('button', { name: 'Close' }).click();
    await dlg.waitFor({ state: 'hidden' });
    await focusLandsOn(page, 'account-open', 'focus goes back to the Account button');

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.locator('#auth').waitFor({ state: 'visible' });
    await page.locator('#auth-email').fill(email);
    await page.locator('#auth-password').fill(PASSWORD);
    await page.locator('#auth-submit').click();
    await page.locator('#auth-error.error').filter({ hasText: /\S/ }).waitFor();
    await page.locator('#auth-password').fill('a brand new password');
    await page.locator('#auth-submit').click();
    await page.locator('#app').waitFor({ state: 'visible' });
    assert.match(await page.locator('#user-line').innerText(), /New Name/);
    await assertClean(page, problems.filter((p) => !/status of 40[13]/.test(p)));
  } finally {
    await context.close();
  }
});

test('deleting the account asks for the current password and a confirmation, then shows the login screen', { timeout: 60000 }, async () => {
  const { context, page, problems } = await openPage(browser);
  try {
    const email = unique('gone');
    await registerViaUi(page, stack.url, email);
    const token = await apiLogin(stack.url, email);
    await page.getByRole('button', { name: 'Account' }).click();
    const dlg = dialog(page, 'Account');
    const pw = dlg.getByLabel('Current password to delete');
    await pw.fill('wrong password!');
    await dlg.getByRole('button', { name: 'Delete account…' }).click();
    await page.locator('#confirm').getByRole('button', { name: 'Delete account' }).click();
    await dlg.locator('#acc-del-note').filter({ hasText: 'The current password is wrong.' }).waitFor();
    assert.equal((await apiGet(stack.url, token, '/api/v1/users/me')).status, 200, 'still there');

    // Cancelling the confirmation keeps the account and focus in the field.
    await pw.fill(PASSWORD);
    await dlg.getByRole('button', { name: 'Delete account…' }).click();
    await page.locator('#confirm').getByRole('button', { name: 'Cancel' }).click();
    await focusLandsOn(page, 'acc-del-password');

    await dlg.getByRole('button', { name: 'Delete account…' }).click();
    await page.locator('#confirm').getByRole('button', { name: 'Delete account' }).click();
    await page.locator('#auth').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#auth-error').innerText(), 'Your account has been deleted.');
    assert.equal(await page.locator('#auth-error').getAttribute('class'), 'info');
    await focusLandsOn(page, 'auth-email');
    assert.equal((await apiGet(stack.url, token, '/api/v1/users/me')).status, 401, 'the old token is refused');
    await assertClean(page, problems.filter((p) => !/status of 403/.test(p)));
  } finally {
    await context.close();
  }
});

test('an API key made on the page works on /v1/models until it is revoked', { timeout: 60000 }, async () => {
  const { context, page, problems } = await openPage(browser);
  try {
    await registerViaUi(page, stack.url, unique('keys'));
    await page.getByRole('button', { name: 'API keys' }).click();
    const dlg = dialog(page, 'API keys');
    await dlg.getByText('No API keys yet.').waitFor();
    await focusLandsOn(page, 'key-name');
    assert.equal(await dlg.getByRole('checkbox', { name: /^Gateway/ }).isChecked(), true, 'gateway by default');
    assert.equal(await dlg.getByRole('checkbox', { name: /^Chat/ }).isChecked(), false);
    await dlg.getByLabel('Key name').fill('ci runner');
    await dlg.getByRole('checkbox', { name: /^Read/ }).check();
    await dlg.getByRole('button', { name: 'Create key' }).click();
    const secret = dlg.getByLabel('New API key');
    await secret.waitFor();
    assert.match(await dlg.locator('#key-shown').innerText(), /you won't see it again/);
    await focusLandsOn(page, 'key-secret');
    assert.equal(await dlg.getByRole('button', { name: 'Copy' }).isVisible(), true);
    const key = await secret.inputValue();
    assert.match(key, /^ec_sk_/);
    const row = dlg.locator('table.keys tbody tr');
    await row.first().waitFor();
    const cells = await row.first().locator('td').allInnerTexts();
    assert.equal(cells[0], 'ci runner');
    assert.ok(key.startsWith(cells[1].replace(/…$/, '')), 'the prefix is the key\'s start');
    assert.equal(cells[2], 'gateway, read');
    assert.equal(cells[4], 'never');
    await shot(page, 'settings-keys-desktop');

    const models = () => fetch(`${stack.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal((await models()).status, 200);

    await dlg.getByRole('button', { name: 'Revoke ci runner' }).click();
    await page.locator('#confirm').getByRole('button', { name: 'Revoke' }).click();
    await dlg.getByText('No API keys yet.').waitFor();
    await focusLandsOn(page, 'key-name');
    assert.equal((await models()).status, 401);

    await page.keyboard.press('Escape');
    await dlg.waitFor({ state: 'hidden' });
    await focusLandsOn(page, 'keys-open', 'focus goes back to the API keys button');
    assert.equal(await page.locator('#keys').innerHTML(), '', 'the secret is gone from the page');
    await assertClean(page, problems);
  } finally {
    await context.close();
  }
});

test('"You are logged out." is information, a failed login an error; a lockout says its wait once', { timeout: 60000 }, async () => {
  const { context, page, problems } = await openPage(browser);
  try {
    const email = unique('info');
    await registerViaUi(page, stack.url, email);
    await page.getByRole('button', { name: 'Log out' }).click();
    const msg = page.locator('#auth-error');
    await msg.filter({ hasText: 'You are logged out.' }).waitFor();
    assert.equal(await msg.getAttribute('class'), 'info');
    assert.equal(await msg.getAttribute('role'), 'status');
    const color = await msg.evaluate((e) => getComputedStyle(e).color);
    const danger = await page.evaluate(() => { const p = document.createElement('p'); p.className = 'error'; document.body.append(p); const c = getComputedStyle(p).color; p.remove(); return c; });
    assert.notEqual(color, danger, 'not in the error colour');
    await shot(page, 'settings-logged-out-info');

    for (let i = 0; i < 30; i++) {
      await page.locator('#auth-email').fill(email);
      await page.locator('#auth-password').fill(`wrong password ${i}`);
      await page.locator('#auth-submit').click();
      await page.waitForFunction(() => !document.querySelector('#auth-submit').disabled && document.querySelector('#auth-error.error'));
      if (/too many/i.test(await msg.innerText())) break;
    }
    const text = await msg.innerText();
    assert.equal(await msg.getAttribute('role'), 'alert');
    assert.match(text, /^Too many failed logins\. Try again in \d+ minutes\.$/);
    assert.equal(text.match(/retry|try again/gi).length, 1, text);
    await assertClean(page, problems.filter((p) => !/status of (401|429)/.test(p)));
  } finally {
    await context.close();
  }
});

test('screenshots: the settings and keys dialogs on a phone (375x700) and in dark mode', { timeout: 60000 }, async () => {
  for (const [name, viewport, scheme] of [['phone', { width: 375, height: 700 }, 'light'], ['dark', { width: 1200, height: 800 }, 'dark']]) {
    const { context, page, problems } = await openPage(browser, { viewport });
    try {
      await page.emulateMedia({ colorScheme: scheme });
      await registerViaUi(page, stack.url, unique(`shot-${name}`));
      const phone = viewport.width < 600;
      await openChatSettings(page);
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth), 'no sideways scrolling');
      await shot(page, `settings-chat-${name}`);
      await page.keyboard.press('Escape');
      if (phone) await page.getByRole('button', { name: 'Conversations' }).click();
      await page.getByRole('button', { name: 'Account' }).click();
      await dialog(page, 'Account').waitFor();
      await shot(page, `settings-account-${name}`);
      await page.keyboard.press('Escape');
      await focusLandsOn(page, 'account-open', 'Escape closes the dialog, not the list behind it');
      await page.getByRole('button', { name: 'API keys' }).click();
      const dlg = dialog(page, 'API keys');
      await dlg.getByLabel('Key name').fill('laptop');
      await dlg.getByRole('button', { name: 'Create key' }).click();
      await dlg.locator('table.keys').waitFor();
      await shot(page, `settings-keys-${name}`);
      await page.keyboard.press('Escape');
      await assertClean(page, problems);
    } finally {
      await context.close();
    }
  }
});
