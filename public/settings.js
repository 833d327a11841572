// The chat page's settings dialogs: a chat's system prompt and model, the account (display name,
// password, deletion) and API keys. Loaded by app.js on first use; init() hands over its helpers.
// Each dialog's content is built when it opens and removed when it closes, so its fields never
// shadow the login form's and a new key's secret does not stay in the page.

let h, $, api, API, state, announce, confirmDialog, signedOut, modelTraits;

export function init(ctx) {
  ({ h, $, api, API, state, announce, confirmDialog, signedOut, modelTraits } = ctx);
}

// The server's default limit (MAX_SYSTEM_PROMPT_BYTES); a lower configured one answers 422, shown.
const SYSTEM_PROMPT_BYTES = 8192;
const SCOPES = [
  ['gateway', 'Gateway: the OpenAI- and Anthropic-compatible API (/v1)'],
  ['chat', 'Chat: conversations and messages, read and write'],
  ['read', 'Read: conversations, messages, usage and profile, read only'],
  ['tools', 'Tools: the MCP server'],
];

/** Opens `dlg` modal with `body` as its content; the content goes when it closes (so its
 * fields never shadow the login form's) and focus goes back to what opened it. */
function openDialog(dlg, body, focusFirst) {
  const opener = document.activeElement;
  dlg.replaceChildren(...body);
  dlg.addEventListener('close', () => {
    dlg.replaceChildren();
    if (opener?.isConnected && !$('app').hidden) opener.focus();
  }, { once: true });
  dlg.showModal();
  (focusFirst || dlg.querySelector('input, select, textarea, button'))?.focus();
}

function closeButton(dlg) {
  return h('button', { type: 'button', onclick: () => dlg.close() }, 'Close');
}

/** A status line under a form: `ok` is shown as information, anything else as an error. */
function formNote(id) {
  const p = h('p', { id, className: 'note', role: 'status', 'aria-live': 'polite' });
  p.set = (text, ok) => { p.textContent = text; p.className = `note ${ok ? 'ok' : 'error'}`; };
  return p;
}

function bytes(s) {
  return new TextEncoder().encode(s).length;
}

// ---- chat settings: system prompt and model

export function chatSettings() {
  const dlg = $('chat-settings');
  const conv = state.conv;
  const prompt = h('textarea', { id: 'cs-prompt', rows: 6, 'aria-describedby': 'cs-prompt-count' });
  prompt.value = conv ? conv.system_prompt || '' : state.draft.system_prompt;
  const count = h('p', { id: 'cs-prompt-count', className: 'muted small' });
  const showCount = () => {
    const n = bytes(prompt.value);
    count.textContent = `${n.toLocaleString()} of ${SYSTEM_PROMPT_BYTES.toLocaleString()} bytes`;
    count.classList.toggle('error', n > SYSTEM_PROMPT_BYTES);
  };
  prompt.addEventListener('input', showCount);
  showCount();
  const current = conv ? conv.model : $('model').value;
  const def = state.models.find((m) => m.default);
  const options = [
    ...(conv ? [] : [{ id: '', label: `Default${def ? `: ${def.id}` : ''}`, traits: def ? `${def.owned_by} · ${modelTraits(def)}` : '' }]),
    ...state.models.map((m) => ({ id: m.id, label: `${m.id}${m.default ? ' (default)' : ''}`, traits: `${m.owned_by} · ${modelTraits(m)}` })),
  ];
  const radios = options.map((o, i) => h('label', { className: 'pick' },
    h('input', { type: 'radio', name: 'cs-model', value: o.id, checked: o.id === current, 'aria-describedby': `cs-m${i}` }),
    h('span', {}, h('strong', {}, o.label), h('span', { id: `cs-m${i}`, className: 'muted small' }, ` ${o.traits}`))));
  const note = formNote('cs-note');
  const save = h('button', { type: 'submit', className: 'primary' }, 'Save');
  const form = h('form', { className: 'stack', noValidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const model = form.querySelector('input[name=cs-model]:checked')?.value ?? '';
    if (bytes(prompt.value) > SYSTEM_PROMPT_BYTES) { note.set(`The system prompt is longer than ${SYSTEM_PROMPT_BYTES} bytes.`); prompt.focus(); return; }
    if (!state.conv) {
      state.draft.system_prompt = prompt.value;
      $('model').value = model;
      dlg.close();
      announce('Chat settings saved; they apply to this chat when you send its first message.');
      return;
    }
    save.disabled = true;
    try {
      const body = { system_prompt: prompt.value.trim() ? prompt.value : null };
      if (model && model !== state.conv.model) body.model = model;
      Object.assign(state.conv, await api(`${API}/conversations/${state.conv.conversation_id}`, { method: 'PATCH', body }));
      if ([...$('model').options].some((o) => o.value === state.conv.model)) $('model').value = state.conv.model;
      dlg.close();
      announce('Chat settings saved.');
    } catch (err) {
      note.set(`Could not save: ${err.message}`);
      save.disabled = false;
    }
  } },
  h('label', { htmlFor: 'cs-prompt' }, 'System prompt'),
  prompt, count,
  h('fieldset', { className: 'picks' }, h('legend', {}, 'Model'), ...radios),
  note,
  h('div', { className: 'row' }, closeButton(dlg), save));
  openDialog(dlg, [h('h2', { id: 'chat-settings-title' }, conv ? 'Chat settings' : 'Settings for the new chat'), form], prompt);
}

// ---- account: display name, password, deletion

export function accountSettings() {
  const dlg = $('account');
  const u = state.user || {};
  const field = (id, label, props) => [h('label', { htmlFor: id }, label), h('input', { id, ...props })];

  const nameNote = formNote('acc-name-note');
  const nameForm = h('form', { className: 'stack', noValidate: true, onsubmit: async (e) => {
    e.preventDefault();
    try {
      state.user = await api(`${API}/users/me`, { method: 'PATCH', body: { display_name: $('acc-name').value.trim() } });
      showUserLine();
      nameNote.set('Display name saved.', true);
    } catch (err) { nameNote.set(`Could not save the name: ${err.message}`); }
  } },
  h('h3', {}, 'Profile'),
  h('p', { className: 'muted small' }, `Email: ${u.email || ''}`),
  ...field('acc-name', 'Display name', { value: u.display_name || '', maxLength: 100, autocomplete: 'nickname' }),
  nameNote, h('div', { className: 'row' }, h('button', { type: 'submit' }, 'Save name')));

  const pwNote = formNote('acc-pw-note');
  const pwForm = h('form', { className: 'stack', noValidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const current = $('acc-current'); const next = $('acc-new');
    if (next.value.length < 8) { pwNote.set('The new password is too short: use at least 8 characters.'); next.focus(); return; }
    try {
      const user = await api(`${API}/users/me`, { method: 'PATCH', body: { password: next.value, current_password: current.value } });
      if (user) state.user = user;
      current.value = ''; next.value = '';
      pwNote.set('Password changed. Other sessions are signed out.', true);
      current.focus();
    } catch (err) {
      const wrong = err.status === 403;
      pwNote.set(wrong ? 'The current password is wrong.' : `Could not change the password: ${err.message}`);
      (wrong || /current/i.test(err.message) ? current : next).focus();
    }
  } },
  h('h3', {}, 'Password'),
  ...field('acc-current', 'Current password', { type: 'password', autocomplete: 'current-password', required: true }),
  ...field('acc-new', 'New password', { type: 'password', autocomplete: 'new-password', minLength: 8, maxLength: 128, required: true, 'aria-describedby': 'acc-new-hint' }),
  h('p', { id: 'acc-new-hint', className: 'muted small' }, 'At least 8 characters.'),
  pwNote, h('div', { className: 'row' }, h('button', { type: 'submit' }, 'Change password')));

  const delNote = formNote('acc-del-note');
  const delForm = h('form', { className: 'stack', noValidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const pw = $('acc-del-password');
    if (!pw.value) { delNote.set('Enter your current password to delete the account.'); pw.focus(); return; }
    if (!(await confirmDialog('Delete your account, its conversations and its API keys for good?', 'Delete account'))) { pw.focus(); return; }
    try {
      await api(`${API}/users/me`, { method: 'DELETE', body: { current_password: pw.value } });
    } catch (err) {
      delNote.set(err.status === 403 ? 'The current password is wrong.' : `Could not delete the account: ${err.message}`);
      pw.focus();
      return;
    }
    dlg.close();
    history.replaceState(null, '', location.pathname);
    signedOut('Your account has been deleted.', true);
  } },
  h('h3', {}, 'Delete account'),
  h('p', { className: 'muted small' }, 'Deletes your conversations, tasks and API keys. It cannot be undone.'),
  ...field('acc-del-password', 'Current password to delete', { type: 'password', autocomplete: 'current-password' }),
  delNote, h('div', { className: 'row' }, h('button', { type: 'submit', className: 'danger' }, 'Delete account…')));

  openDialog(dlg, [h('h2', { id: 'account-title' }, 'Account'), nameForm, pwForm, delForm, h('div', { className: 'row' }, closeButton(dlg))]);
}

function showUserLine() {
  const u = state.user;
  $('user-line').textContent = u ? `Signed in as ${u.display_name || u.email}${u.plan ? ` · ${u.plan} plan` : ''}` : '';
}

// ---- API keys

function when(t) {
  return t ? new Date(t).toLocaleString() : 'never';
}

export function apiKeys() {
  const dlg = $('keys');
  const list = h('div', { id: 'keys-list', 'aria-live': 'polite' }, 'Loading…');
  const note = formNote('keys-note');
  const shown = h('div', { id: 'key-shown', className: 'key-shown', hidden: true });
  const name = h('input', { id: 'key-name', required: true, maxLength: 100, autocomplete: 'off' });
  const boxes = SCOPES.map(([s, label]) => h('label', { className: 'check' },
    h('input', { type: 'checkbox', name: 'key-scope', value: s, checked: s === 'gateway' }), ` ${label}`));

  async function load(focusAfter) {
    try {
      const { data } = await api(`${API}/keys`);
      list.replaceChildren(data.length
        ? h('table', { className: 'keys' }, h('caption', { className: 'visually-hidden' }, 'Your API keys'),
          h('thead', {}, h('tr', {}, ...['Name', 'Key', 'Scopes', 'Created', 'Last used', ''].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, data.map((k) => h('tr', { 'data-id': k.api_key_id },
            h('td', {}, k.name), h('td', {}, h('code', {}, `${k.key_prefix}…`)), h('td', {}, k.scopes.join(', ')),
            h('td', {}, when(k.created_at)), h('td', {}, when(k.last_used_at)),
            h('td', {}, h('button', { type: 'button', className: 'small', 'aria-label': `Revoke ${k.name}`, onclick: () => revoke(k) }, 'Revoke'))))))
        : h('p', { className: 'muted' }, 'No API keys yet.'));
    } catch (err) {
      list.textContent = `Could not load the keys: ${err.message}`;
    }
    focusAfter?.focus();
  }

  async function revoke(k) {
    if (!(await confirmDialog(`Revoke the key “${k.name}”? Programs using it stop working.`, 'Revoke'))) {
      list.querySelector(`tr[data-id="${k.api_key_id}"] button`)?.focus();
      return;
    }
    try {
      await api(`${API}/keys/${k.api_key_id}`, { method: 'DELETE' });
      note.set(`Key “${k.name}” revoked.`, true);
      announce(`Key ${k.name} revoked.`);
    } catch (err) { note.set(`Could not revoke the key: ${err.message}`); }
    await load(name);
  }

  const form = h('form', { className: 'stack', noValidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const scopes = boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value);
    if (!name.value.trim()) { note.set('Give the key a name.'); name.focus(); return; }
    if (!scopes.length) { note.set('Pick at least one scope.'); boxes[0].querySelector('input').focus(); return; }
    try {
      const k = await api(`${API}/keys`, { method: 'POST', body: { name: name.value.trim(), scopes } });
      const secret = h('input', { id: 'key-secret', readOnly: true, value: k.key, 'aria-describedby': 'key-once', spellcheck: false });
      const copy = h('button', { type: 'button', onclick: async () => {
        try { await navigator.clipboard.writeText(k.key); copy.textContent = 'Copied'; announce('Key copied.'); }
        catch { secret.select(); copy.textContent = 'Press Ctrl+C'; }
      } }, 'Copy');
      shown.replaceChildren(
        h('p', { id: 'key-once', className: 'warn' }, h('strong', {}, `Key “${k.name}” created. Copy it now: you won't see it again.`)),
        h('label', { htmlFor: 'key-secret' }, 'New API key'),
        h('div', { className: 'row left' }, secret, copy));
      shown.hidden = false;
      name.value = '';
      note.set('', true);
      secret.focus();
      secret.select();
      await load();
    } catch (err) {
      note.set(`Could not create the key: ${err.message}`);
      name.focus();
    }
  } },
  h('h3', {}, 'New key'),
  h('label', { htmlFor: 'key-name' }, 'Key name'), name,
  h('fieldset', { className: 'picks' }, h('legend', {}, 'Scopes'), ...boxes),
  note, h('div', { className: 'row' }, h('button', { type: 'submit', className: 'primary' }, 'Create key')));

  openDialog(dlg, [h('h2', { id: 'keys-title' }, 'API keys'), form, shown, h('h3', {}, 'Your keys'), list, h('div', { className: 'row' }, closeButton(dlg))], name);
  load();
}
