// The edgechat chat page: no framework; this file is served as written. The access token lives only in memory;
// the refresh token only in its HttpOnly cookie (used by /api/v1/auth/refresh on load and on
// any 401). Model output is rendered by /assets/markdown.js (built from web/markdown.js by
// scripts/build-page.sh: markdown-it with raw HTML off, then DOMPurify).

// The renderer loads beside this file (index.html preloads it) without holding up the first
// screen: startApp waits for it before showing messages; were it to fail, answers show as text.
let md = null;
const markdownReady = import('./assets/markdown.js').then((m) => { md = m; }, () => {});

const $ = (id) => document.getElementById(id);
const API = '/api/v1';

const state = {
  token: null,
  user: null,
  convs: [],
  convCursor: null,
  conv: null, // the open conversation, or null for a new chat
  msgs: new Map(), // message_id -> message
  kids: new Map(), // parent_id ('' for the root) -> child ids, oldest first
  choice: new Map(), // parent key -> the child shown
  turn: null, // the answer this page reads now (see newTurn)
  editing: null, // message_id of the user message being edited
  openCalls: new Set(), // ids of the tool calls the user expanded (kept across re-renders)
  tasks: { open: [], done: [], openCursor: null, doneCursor: null, loaded: false },
};

// ---------------------------------------------------------------- helpers

function h(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k in e && !k.includes('-')) e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...children.flat().filter((c) => c != null && c !== false));
  return e;
}

function announce(text) {
  $('status').textContent = text;
}

function duration(seconds) {
  const s = Math.max(1, Math.ceil(seconds));
  if (s < 90) return `${s} second${s === 1 ? '' : 's'}`;
  if (s < 5400) return `${Math.round(s / 60)} minutes`;
  const hours = Math.floor(s / 3600);
  const min = Math.round((s % 3600) / 60);
  return `${hours} h${min ? ` ${min} min` : ''}`;
}

class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** A readable message for an error body ({error:{code,message}}) and its status. */
function describe(status, error, retryAfter) {
  const code = error?.code || error?.type || '';
  let text = (error?.message || `the request failed (HTTP ${status || 'error'})`).replace(/\.$/, '');
  // The server's text ends "; retry in 840 s" when it also sends Retry-After: say it once.
  if (retryAfter) text = text.replace(/;?\s*retry in \d+ ?s$/i, '');
  if (/too_many_(login|registration)/.test(code)) {
    return `${text.charAt(0).toUpperCase()}${text.slice(1)}.${retryAfter ? ` Try again in ${duration(retryAfter)}.` : ''}`;
  }
  if (status === 429 || /quota|rate_limit|too_many|budget/.test(code)) {
    return `Limit reached: ${text}.${retryAfter ? ` Try again in ${duration(retryAfter)}.` : ''}`;
  }
  if (status >= 500 || /upstream|provider|timeout/.test(code)) {
    return `The model could not answer: ${text}. Try again or pick another model.`;
  }
  return `${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

async function errorFrom(res) {
  let body = null;
  try { body = await res.json(); } catch {}
  const retry = Number(res.headers.get('retry-after')) || null;
  return new ApiError(res.status, body?.error?.code || '', describe(res.status, body?.error, retry), retry);
}

const NETWORK = 'Network error: the server could not be reached. Check your connection and try again.';

// ---------------------------------------------------------------- auth and requests

let refreshing = null;

/** Trades the refresh cookie for a new token pair; true on success. One at a time, across
 * tabs too (Web Locks): a refresh token is single-use, and presenting a used one revokes the
 * session, so two refreshes racing with the same cookie would sign the user out. */
function refresh() {
  const run = async () => {
    try {
      const res = await fetch(`${API}/auth/refresh`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
        credentials: 'same-origin',
      });
      if (!res.ok) return false;
      setSession(await res.json());
      return true;
    } catch {
      throw new ApiError(0, 'network', NETWORK);
    }
  };
  refreshing ??= (navigator.locks ? navigator.locks.request('edgechat-refresh', run) : run()).finally(() => {
    refreshing = null;
  });
  return refreshing;
}

function setSession(body) {
  state.token = body.access_token;
  if (body.user) state.user = body.user;
}

/** fetch with the bearer token, JSON bodies, errors as ApiError, and one transparent refresh
 * and retry on 401. `stream: true` returns the Response itself. */
async function api(path, { method = 'GET', body, headers = {}, signal, stream, auth = true } = {}, retried = false) {
  const hdrs = { ...headers };
  if (auth && state.token) hdrs.authorization = `Bearer ${state.token}`;
  if (body !== undefined) hdrs['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers: hdrs, body: body === undefined ? undefined : JSON.stringify(body), signal, credentials: 'same-origin' });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', NETWORK);
  }
  if (res.status === 401 && auth && !retried) {
    if (await refresh()) return api(path, { method, body, headers, signal, stream, auth }, true);
    signedOut('Your session has ended. Please log in again.');
    throw new ApiError(401, 'unauthorized', 'Your session has ended. Please log in again.');
  }
  if (!res.ok) throw await errorFrom(res);
  if (stream) return res;
  return res.status === 204 ? null : res.json();
}

function signedOut(message, info = false) {
  setAuthMode(false); // whoever signed out (or was signed out) has an account: log in, not register
  detachTurn();
  state.token = null;
  state.user = null;
  state.conv = null;
  state.convs = [];
  state.tasks = { open: [], done: [], openCursor: null, doneCursor: null, loaded: false };
  tasksSeq++;
  renderTasks();
  clearTree();
  showAuth(message, info);
}

// ---------------------------------------------------------------- auth screen

let registering = false;

function setAuthMode(register) {
  registering = register;
  $('auth-title').textContent = register ? 'Create an account' : 'Log in';
  $('auth-submit').textContent = register ? 'Create account' : 'Log in';
  $('auth-switch-text').textContent = register ? 'Already have an account?' : 'No account yet?';
  $('auth-switch').textContent = register ? 'Log in instead' : 'Create an account';
  $('auth-name-row').hidden = !register;
  $('auth-password').autocomplete = register ? 'new-password' : 'current-password';
  $('auth-error').hidden = true;
}

function showAuth(message, info = false) {
  $('boot').hidden = true;
  $('app').hidden = true;
  $('auth').hidden = false;
  const err = $('auth-error');
  err.textContent = message || '';
  err.hidden = !message;
  // "You are logged out." is news, not a failure: shown (and announced) as information.
  err.className = info ? 'info' : 'error';
  err.setAttribute('role', info ? 'status' : 'alert');
  $('auth-email').focus();
}

async function submitAuth(ev) {
  ev.preventDefault();
  const email = $('auth-email').value.trim();
  const password = $('auth-password').value;
  const err = $('auth-error');
  if (!email || !password) {
    err.textContent = 'Enter your email and password.';
    err.hidden = false;
    return;
  }
  const body = { email, password };
  const name = $('auth-name').value.trim();
  if (registering && name) body.display_name = name;
  $('auth-submit').disabled = true;
  try {
    setSession(await api(`${API}/auth/${registering ? 'register' : 'login'}`, { method: 'POST', body, auth: false }));
    $('auth-password').value = '';
    await startApp();
  } catch (e) {
    err.textContent = e.message;
    err.className = 'error';
    err.setAttribute('role', 'alert');
    err.hidden = false;
  } finally {
    $('auth-submit').disabled = false;
  }
}

async function logout() {
  try {
    await api(`${API}/auth/logout`, { method: 'POST', body: {} });
  } catch {}
  history.replaceState(null, '', location.pathname);
  signedOut('You are logged out.', true);
}

// ---------------------------------------------------------------- app shell

async function startApp() {
  $('boot').hidden = true;
  $('auth').hidden = true;
  $('app').hidden = false;
  if (!state.user) state.user = await api(`${API}/users/me`).catch(() => null);
  const u = state.user;
  $('user-line').textContent = u ? `Signed in as ${u.display_name || u.email}${u.plan ? ` · ${u.plan} plan` : ''}` : '';
  loadModels();
  loadLimits();
  loadTasks();
  await markdownReady;
  await loadConversations();
  await openFromHash();
  // Unless the user went somewhere meanwhile (a button clicked while the list was loading).
  if (document.activeElement === document.body || !document.activeElement) $('composer-input').focus();
}

// ---------------------------------------------------------------- message length

let maxMessageBytes = 0; // from the server's GET /api/v1/limits; 0 until known
const utf8 = new TextEncoder();

async function loadLimits() {
  try {
    maxMessageBytes = (await api(`${API}/limits`, { auth: false })).message_bytes || 0;
    updateCounter();
  } catch {} // no counter then: the server still refuses what is too long
}

/** Shows the message's size under the composer from 80% of the server's limit on, in red
 * beyond it. True when the message fits. */
function updateCounter() {
  const counter = $('counter');
  const bytes = utf8.encode($('composer-input').value).length;
  const near = maxMessageBytes > 0 && bytes >= maxMessageBytes * 0.8;
  const over = maxMessageBytes > 0 && bytes > maxMessageBytes;
  counter.hidden = !near;
  counter.classList.toggle('over', over);
  if (near) counter.textContent = `${bytes.toLocaleString('en')} / ${maxMessageBytes.toLocaleString('en')} bytes${over ? ': too long to send' : ''}`;
  return !over;
}

async function loadModels() {
  try {
    const { data } = await api('/v1/models');
    const select = $('model');
    const current = select.value;
    // Embedding models answer no chat.
    const chat = data.filter((m) => m.kind !== 'embedding');
    state.models = chat;
    const def = chat.find((m) => m.default);
    select.replaceChildren(h('option', { value: '' }, def ? `default (${def.id})` : 'default'), ...chat.map((m) => h('option', { value: m.id }, modelLabel(m))));
    select.value = state.conv?.model && chat.some((m) => m.id === state.conv.model) ? state.conv.model : current;
  } catch (e) {
    showError(`Could not load the models: ${e.message}`);
  }
}

function showError(text) {
  $('error-text').textContent = text;
  $('error').hidden = !text;
}

function setNav(open) {
  document.body.classList.toggle('nav-open', open);
  $('menu').setAttribute('aria-expanded', String(open));
  $('scrim').hidden = !open;
  if (open) $('new-chat').focus();
}

// ---------------------------------------------------------------- conversations

async function loadConversations(more = false) {
  const q = $('search').value.trim();
  const params = new URLSearchParams({ limit: '30' });
  if (q) params.set('q', q);
  if (more && state.convCursor) params.set('cursor', state.convCursor);
  try {
    const page = await api(`${API}/conversations?${params}`);
    if (q !== $('search').value.trim()) return; // a newer search is under way
    state.convs = more ? state.convs.concat(page.data) : page.data;
    state.convCursor = page.next_cursor;
    renderConversations();
  } catch (e) {
    showError(`Could not load your conversations: ${e.message}`);
  }
}

function convTitle(c) {
  return c.title || 'Untitled chat';
}

/** The sidebar group of a time: Today, Yesterday, Previous 7 days, then by month. */
function dateGroup(when, now = new Date()) {
  const day = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((day(now) - day(when)) / 86400000);
  if (days <= 0) return 'Today';
  if (days === 1) return 'Yesterday';
  if (days <= 7) return 'Previous 7 days';
  return when.toLocaleDateString(undefined, { month: 'long', year: 'numeric' });
}

/** A short time beside a title, so that equal titles can be told apart: the time of day for
 * today and yesterday, else the date. */
function shortWhen(when, group) {
  return group === 'Today' || group === 'Yesterday'
    ? when.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
    : when.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
}

function renderConversations() {
  const list = $('conversations');
  let group = null;
  const items = state.convs.flatMap((c) => {
    const current = state.conv?.conversation_id === c.conversation_id;
    const title = convTitle(c);
    const when = new Date(c.updated_at || c.created_at || Date.now());
    const g = dateGroup(when);
    const heading = g !== group ? h('li', { className: 'conv-group', role: 'presentation' }, g) : null;
    group = g;
    const item = h('li', { className: `conv${current ? ' current' : ''}`, 'data-id': c.conversation_id },
      h('button', { type: 'button', className: 'open', 'aria-current': current ? 'page' : null, title: `${title} · ${when.toLocaleString()}`, onclick: () => openConversation(c.conversation_id) }, title),
      h('time', { className: 'when', dateTime: when.toISOString() }, shortWhen(when, g)),
      h('button', { type: 'button', className: 'icon', 'aria-label': `Rename “${title}”`, title: 'Rename', onclick: (e) => startRename(c, e.currentTarget.closest('li')) }, '✎'),
      h('button', { type: 'button', className: 'icon', 'aria-label': `Delete “${title}”`, title: 'Delete', onclick: () => deleteConversation(c) }, '✕'));
    return heading ? [heading, item] : [item];
  });
  if (!items.length) items.push(h('li', { className: 'muted small none' }, $('search').value.trim() ? 'No matching conversations.' : 'No conversations yet.'));
  list.replaceChildren(...items);
  $('more-convs').hidden = !state.convCursor;
}

function startRename(c, li) {
  const input = h('input', { value: c.title || '', 'aria-label': 'New title', maxLength: 200 });
  const cancel = () => renderConversations();
  const form = h('form', { className: 'rename', onsubmit: async (e) => {
    e.preventDefault();
    const title = input.value.trim();
    if (!title || title === c.title) return cancel();
    try {
      const updated = await api(`${API}/conversations/${c.conversation_id}`, { method: 'PATCH', body: { title } });
      Object.assign(c, updated);
      if (state.conv?.conversation_id === c.conversation_id) { state.conv = c; setTitle(); }
      tellListChanged(c.conversation_id);
      announce('Conversation renamed.');
    } catch (err) {
      showError(`Could not rename: ${err.message}`);
    }
    renderConversations();
  } },
  input,
  h('button', { type: 'submit', className: 'icon', 'aria-label': 'Save title' }, '✓'),
  h('button', { type: 'button', className: 'icon', 'aria-label': 'Cancel rename', onclick: cancel }, '×'));
  input.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.stopPropagation(); cancel(); } });
  li.replaceChildren(form);
  input.focus();
  input.select();
}

function confirmDialog(text, action = 'Delete') {
  const dlg = $('confirm');
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = action;
  dlg.returnValue = '';
  dlg.showModal();
  return new Promise((resolve) => dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true }));
}

async function deleteConversation(c) {
  if (!(await confirmDialog(`Delete “${convTitle(c)}” and all its messages?`))) return;
  try {
    await api(`${API}/conversations/${c.conversation_id}`, { method: 'DELETE' });
    state.convs = state.convs.filter((x) => x.conversation_id !== c.conversation_id);
    if (state.conv?.conversation_id === c.conversation_id) newChat();
    renderConversations();
    tellListChanged(c.conversation_id);
    announce('Conversation deleted.');
  } catch (e) {
    showError(`Could not delete: ${e.message}`);
  }
}

function setTitle() {
  const t = state.conv ? convTitle(state.conv) : 'New chat';
  $('chat-title').textContent = t;
  document.title = `${t} · edgechat`;
}

function newChat() {
  detachTurn();
  state.conv = null;
  clearTree();
  if (location.hash) history.pushState(null, '', location.pathname);
  setTitle();
  render();
  renderConversations();
  setNav(false);
  $('composer-input').focus();
}

async function openFromHash() {
  const id = decodeURIComponent(location.hash.slice(1));
  if (/^cnv_[\w-]+$/.test(id)) await openConversation(id, { push: false });
  else if (state.conv) newChat();
  else { setTitle(); render(); }
}

async function openConversation(id, { push = true } = {}) {
  // Leaving a conversation stops reading its answer, not the answer.
  if (state.turn && state.turn.convId !== id) detachTurn();
  setNav(false);
  showError('');
  try {
    const conv = state.convs.find((c) => c.conversation_id === id) || (await api(`${API}/conversations/${id}`));
    state.conv = conv;
    if (push && location.hash !== `#${id}`) history.pushState(null, '', `#${id}`);
    setTitle();
    renderConversations();
    const select = $('model');
    if ([...select.options].some((o) => o.value === conv.model)) select.value = conv.model;
    await loadMessages();
  } catch (e) {
    if (e.status === 404) {
      history.replaceState(null, '', location.pathname);
      newChat();
      showError('That conversation does not exist (or is not yours).');
    } else showError(`Could not open the conversation: ${e.message}`);
  }
}

// ---------------------------------------------------------------- message tree

function clearTree() {
  state.msgs.clear();
  state.kids.clear();
  state.choice.clear();
  state.editing = null;
}

function addMsg(m) {
  const known = state.msgs.has(m.message_id);
  state.msgs.set(m.message_id, { ...state.msgs.get(m.message_id), ...m });
  if (!known) {
    const key = m.parent_id || '';
    if (!state.kids.has(key)) state.kids.set(key, []);
    state.kids.get(key).push(m.message_id);
  }
}

/** Shows the branch holding `id`: every ancestor chooses the child on its way. */
function choose(id) {
  for (let m = state.msgs.get(id); m; m = state.msgs.get(m.parent_id)) state.choice.set(m.parent_id || '', m.message_id);
}

/** The messages shown: from the root down the chosen children to a leaf. */
function path() {
  const out = [];
  for (let key = ''; ;) {
    const kids = state.kids.get(key);
    if (!kids?.length) return out;
    let id = state.choice.get(key);
    if (!kids.includes(id)) id = kids[kids.length - 1];
    out.push(state.msgs.get(id));
    key = id;
  }
}

async function loadMessages() {
  const id = state.conv.conversation_id;
  const all = [];
  let cursor = null;
  do {
    const params = new URLSearchParams({ limit: '100' });
    if (cursor) params.set('cursor', cursor);
    const page = await api(`${API}/conversations/${id}/messages?${params}`);
    if (state.conv?.conversation_id !== id) return;
    all.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor && all.length < 5000);
  // The answer read here is newer than its stored row.
  const live = state.turn?.convId === id ? state.msgs.get(state.turn.assistantId) : null;
  clearTree();
  all.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0));
  for (const m of all) addMsg(m);
  if (live) addMsg(live);
  if (all.length) choose(all[all.length - 1].message_id); // the newest branch
  render();
  scrollToEnd(true);
  // An answer still running on the server (a reload, another tab's send): read it here too.
  const last = path().filter((m) => m.role === 'assistant').at(-1);
  if (last?.status === 'streaming') attach(last);
}

// ---------------------------------------------------------------- rendering

const STATUS_LABEL = { cancelled: 'stopped', error: 'failed', streaming: 'answering…', reconnecting: 'reconnecting…' };

function render() {
  const box = $('messages');
  const shown = path();
  const nodes = shown.map(messageNode);
  if (!nodes.length) nodes.push(h('p', { id: 'empty', className: 'empty muted' }, state.conv ? 'No messages yet.' : 'Ask anything to start a conversation.'));
  box.replaceChildren(...nodes);
}

function messageNode(m) {
  const mine = m.role === 'user';
  const live = state.turn?.assistantId === m.message_id;
  const siblings = state.kids.get(m.parent_id || '') || [];
  const index = siblings.indexOf(m.message_id);
  const status = live ? 'streaming' : m.status;
  const badge = STATUS_LABEL[live && state.turn.reconnecting ? 'reconnecting' : status];
  const body = h('div', { className: 'body' });
  if (mine) body.textContent = m.content;
  else renderAnswer(body, m, live);

  const tools = h('div', { className: 'tools' });
  if (siblings.length > 1) {
    const go = (d) => () => { state.choice.set(m.parent_id || '', siblings[index + d]); render(); };
    tools.append(h('span', { className: 'branches', role: 'group', 'aria-label': `Version ${index + 1} of ${siblings.length}` },
      h('button', { type: 'button', className: 'icon', 'aria-label': 'Previous version', disabled: index === 0 || !!state.turn, onclick: go(-1) }, '‹'),
      h('span', { className: 'count' }, `${index + 1}/${siblings.length}`),
      h('button', { type: 'button', className: 'icon', 'aria-label': 'Next version', disabled: index === siblings.length - 1 || !!state.turn, onclick: go(1) }, '›')));
  }
  // Copies the message as written (its Markdown), once it is complete.
  if (!live && m.content && md) tools.append(md.copyButton(() => m.content, mine ? 'Copy your message' : 'Copy answer', 'copy-msg'));
  if (!state.turn) {
    // Any question can be edited: the first one starts a new root branch. Not while editing it.
    if (mine && state.editing !== m.message_id) tools.append(h('button', { type: 'button', className: 'small', onclick: () => startEdit(m) }, 'Edit'));
    if (!mine && m.parent_id) tools.append(h('button', { type: 'button', className: 'small', onclick: () => regenerate(m) }, 'Regenerate'));
  }
  const meta = h('div', { className: 'meta' },
    h('span', { className: 'who' }, mine ? 'You' : `Assistant${m.model ? ` · ${m.model}` : ''}`),
    badge && h('span', { className: `badge ${status}` }, badge));

  const node = h('article', { className: `msg ${mine ? 'user' : 'assistant'}${live ? ' live' : ''}`, 'data-id': m.message_id, 'data-status': status, 'aria-label': mine ? 'You' : 'Assistant' }, meta, body, tools);
  if (state.editing === m.message_id) body.replaceWith(editForm(m));
  return node;
}

/** True when the answer called tools: it is then shown step by step. */
function hasToolCalls(m) {
  return Array.isArray(m.steps) && m.steps.some((s) => s.tool_calls?.length);
}

/** An answer's body: Markdown for a plain answer; for a tool turn each step's text in order,
 * each tool call after it as a collapsed <details>. */
function renderAnswer(body, m, live) {
  const renderMarkdown = md ? md.renderMarkdown : (el, text) => { el.textContent = text; };
  if (!hasToolCalls(m)) {
    renderMarkdown(body, m.content);
    return;
  }
  const parts = [];
  for (const step of m.steps) {
    if (step.text) {
      const text = h('div', { className: 'step-text' });
      renderMarkdown(text, step.text);
      parts.push(text);
    }
    for (const call of step.tool_calls || []) parts.push(toolCallNode(call, live));
  }
  body.replaceChildren(...parts);
}

/** JSON text pretty-printed when it parses, else as sent. */
function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text ?? '';
  }
}

/** One tool call: its name and outcome in the summary, arguments and result inside. Tool
 * output is untrusted data: every part goes in as text, never as markup. */
function toolCallNode(call, live) {
  const done = typeof call.ok === 'boolean';
  const details = h('details', { className: `tool-call ${done ? (call.ok ? 'ok' : 'failed') : 'pending'}`, 'data-call-id': call.id || '' },
    h('summary', {},
      h('span', { className: 'tool-label' }, 'Tool '),
      h('code', { className: 'tool-name' }, call.name || '?'),
      ' ',
      h('span', { className: 'tool-mark' }, done ? (call.ok ? '✓ ok' : '✗ error') : live ? 'running…' : 'no result')),
    h('div', { className: 'tool-io' },
      h('p', { className: 'tool-io-label' }, 'Arguments'),
      h('pre', { className: 'tool-args' }, prettyJson(call.arguments)),
      h('p', { className: 'tool-io-label' }, done && !call.ok ? 'Error' : 'Result'),
      done ? h('pre', { className: 'tool-result' }, prettyJson(call.result)) : h('p', { className: 'muted' }, live ? 'Running…' : 'The tool did not finish.')));
  if (call.id && state.openCalls.has(call.id)) details.open = true;
  details.addEventListener('toggle', () => {
    if (!call.id) return;
    if (details.open) state.openCalls.add(call.id);
    else state.openCalls.delete(call.id);
  });
  return details;
}

function updateBubble(id) {
  const m = state.msgs.get(id);
  const node = $('messages').querySelector(`article[data-id="${CSS.escape(id)}"] .body`);
  if (!m || !node) return;
  renderAnswer(node, m, state.turn?.assistantId === id);
  scrollToEnd();
}

let pending = new Set();
let frame = 0;
function scheduleBubble(id) {
  pending.add(id);
  frame ||= requestAnimationFrame(() => {
    frame = 0;
    const ids = pending;
    pending = new Set();
    ids.forEach(updateBubble);
  });
}

// Whether the view follows the end: it does unless the user scrolled up. Kept at scroll time,
// since an answer's final rendering can grow the log by more than any "near the end" margin.
let atEnd = true;

function scrollToEnd(force) {
  const box = $('messages');
  if (force || atEnd || box.scrollHeight - box.scrollTop - box.clientHeight < 120) box.scrollTop = box.scrollHeight;
}

function startEdit(m) {
  state.editing = m.message_id;
  render();
  const ta = $('messages').querySelector('.edit textarea');
  ta?.focus();
}

function editForm(m) {
  const ta = h('textarea', { value: m.content, rows: 3, 'aria-label': 'Edit message' });
  const cancel = () => { state.editing = null; render(); };
  const submit = async (e) => {
    e?.preventDefault();
    const content = ta.value.trim();
    if (!content) return;
    state.editing = null;
    await send(content, m.parent_id ?? null); // null: a new root branch
  };
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) submit(e);
    else if (e.key === 'Escape') cancel();
  });
  return h('form', { className: 'edit', onsubmit: submit }, ta,
    h('div', { className: 'row' },
      h('button', { type: 'submit', className: 'primary small' }, 'Send'),
      h('button', { type: 'button', className: 'small', onclick: cancel }, 'Cancel')));
}

// ---------------------------------------------------------------- sending and streaming

function setBusy(busy) {
  $('send').hidden = busy;
  $('stop').hidden = !busy;
  $('stop').disabled = false;
  // The log is read once the answer is complete, not at every token.
  $('messages').setAttribute('aria-busy', String(busy));
}

/** Sends `content` below `parentId` (the shown leaf unless editing; null starts a new root
 * branch, undefined follows the latest message). */
async function send(content, parentId) {
  if (state.turn) return;
  showError('');
  const model = $('model').value || undefined;
  // A new conversation is listed once its first message is accepted; a refused one (too long,
  // over a limit) deletes it again, so that no empty conversation is left behind.
  let fresh = null;
  if (!state.conv) {
    try {
      fresh = state.conv = await api(`${API}/conversations`, { method: 'POST', body: draftConversation(model) });
    } catch (e) {
      showError(`Could not start a conversation: ${e.message}`);
      return false;
    }
  }
  const body = { content, model };
  if (parentId !== undefined) body.parent_id = parentId;
  // The conversation moves to the top of the list, where the server sorts it too.
  if (!fresh && !$('search').value.trim() && state.convs[0] !== state.conv) {
    state.convs = [state.conv, ...state.convs.filter((c) => c.conversation_id !== state.conv.conversation_id)];
    renderConversations();
  }
  const sending = stream(`${API}/conversations/${state.conv.conversation_id}/messages`, body);
  if (fresh) state.turn.fresh = fresh;
  const sent = await sending;
  if (fresh && !sent) {
    api(`${API}/conversations/${fresh.conversation_id}`, { method: 'DELETE' }).catch(() => {});
    if (fresh.system_prompt) state.draft = { system_prompt: fresh.system_prompt }; // kept for the next try
    if (state.conv === fresh) {
      state.conv = null;
      setTitle();
      render();
    }
  }
  return sent;
}

/** Lists a new conversation once its first message was accepted. */
function listFresh(conv) {
  if (!state.convs.includes(conv)) state.convs.unshift(conv);
  if (state.conv === conv) {
    history.pushState(null, '', `#${conv.conversation_id}`);
    setTitle();
  }
  renderConversations();
}

function regenerate(m) {
  if (state.turn) return;
  showError('');
  const model = $('model').value || undefined;
  return stream(`${API}/conversations/${state.conv.conversation_id}/messages/${m.message_id}/regenerate`, model ? { model } : {});
}

/** Stops reading the answer here (a conversation switch, signing out). The turn goes on on the
 * server; opening its conversation again re-attaches to it. */
function detachTurn() {
  const turn = state.turn;
  if (!turn) return;
  turn.detached = true;
  turn.controller.abort();
  state.turn = null;
  setBusy(false);
}

/** Stop cancels the turn on the server, for every tab and device reading it; its streams then
 * end with `done` (cancelled). Before the turn has an id, the cancel waits for it. */
function stop() {
  const turn = state.turn;
  if (!turn || turn.cancelling) return;
  turn.cancelling = true;
  $('stop').disabled = true;
  announce('Stopping…');
  if (turn.assistantId) cancelTurn(turn);
}

async function cancelTurn(turn) {
  try {
    const m = (await api(`${API}/conversations/${turn.convId}/messages/${turn.assistantId}/cancel`, { method: 'POST' }))?.assistant_message;
    // The answer is the final state: no need to wait for the stream to say it too.
    if (m && m.status !== 'streaming') endTurn(turn, 'done', { assistant_message: m });
  } catch (e) {
    if (turn.ended || turn.detached) return;
    turn.cancelling = false;
    if (state.turn === turn) $('stop').disabled = false;
    showError(`Could not stop the answer: ${e.message}`);
  }
}

function endTurn(turn, event, data) {
  onEvent(turn, event, data);
  turn.controller.abort();
}

/** The answer this page reads now; `assistantId` is known at once when re-attaching. */
function newTurn(convId, assistantId = null) {
  const turn = { controller: new AbortController(), convId, assistantId, resumed: !!assistantId, lastId: 0, sent: false, cancelling: false, detached: false, ended: false, reconnecting: false, usedTools: false };
  state.turn = turn;
  setBusy(true);
  render();
  return turn;
}

/** POSTs a chat turn and renders its SSE events as they arrive. True when it was sent. */
function stream(url, body) {
  const turn = newTurn(state.conv.conversation_id);
  // The same key on a repeat makes the server return the same turn instead of a second one.
  const key = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
  announce('Sending…');
  return readTurn(turn, () => api(url, { method: 'POST', body, headers: { accept: 'text/event-stream', 'idempotency-key': key }, signal: turn.controller.signal, stream: true }));
}

const noResume = new Set(); // answers whose resume the worker refused

/** Reads an answer that runs on the server (after a reload, a conversation switch, another
 * tab's send): all its events from the first, then live. */
function attach(m) {
  if (state.turn || noResume.has(m.message_id)) return;
  const turn = newTurn(state.conv.conversation_id, m.message_id);
  announce('The assistant is answering…');
  readTurn(turn);
}

/** Waits `ms`, less when the page stops reading or the browser is back online. */
const sleep = (ms, signal) => new Promise((resolve) => {
  const done = () => {
    clearTimeout(t);
    removeEventListener('online', done);
    signal.removeEventListener('abort', done);
    resolve();
  };
  const t = setTimeout(done, ms);
  signal.addEventListener('abort', done);
  addEventListener('online', done);
});

/** Reads `turn` until `done`/`error` or until the page stops reading it. `post` opens a new turn
 * and is repeated (same Idempotency-Key) while no event has come; once the turn has an id, a
 * lost connection resumes after the last event seen, with backoff. */
async function follow(turn, post) {
  const { signal } = turn.controller;
  let delay = 500;
  for (let tries = 1; ; tries++) {
    const seen = turn.lastId;
    try {
      const res = turn.assistantId
        ? await api(`${API}/conversations/${turn.convId}/messages/${turn.assistantId}/stream`, { headers: { accept: 'text/event-stream', 'last-event-id': String(turn.lastId) }, signal, stream: true })
        : await post();
      turn.sent = true;
      if (!(res.headers.get('content-type') || '').startsWith('text/event-stream')) {
        const j = await res.json();
        onEvent(turn, 'message', { user_message: j.user_message, assistant_message_id: j.assistant_message.message_id });
        onEvent(turn, 'done', j);
        return;
      }
      await readEvents(res.body, (event, data, id) => onEvent(turn, event, data, id));
    } catch (e) {
      if (turn.ended || signal.aborted) return;
      // A resume refused: the worker has no such answer (deleted, or a bad id).
      if (turn.assistantId && e.status >= 400 && e.status < 500) throw Object.assign(e, { lost: true });
      // Retried: a lost connection (a failed fetch or body read), a 5xx of a resume, and a repeat
      // of a send whose first try the worker is still taking in.
      const retry = e instanceof TypeError || (e instanceof ApiError && (e.status === 0 || (e.status >= 500 && turn.assistantId) || e.code === 'idempotency_key_in_use'));
      if (!retry) throw e;
    }
    if (turn.ended || signal.aborted) return;
    if (!turn.assistantId && tries >= 3) throw new ApiError(0, 'network', NETWORK);
    if (turn.lastId > seen) delay = 500;
    setReconnecting(turn, true);
    announce('Connection lost: reconnecting…');
    await sleep(delay, signal);
    delay = Math.min(delay * 2, 10000);
  }
}

function setReconnecting(turn, on) {
  if (turn.reconnecting === on) return;
  turn.reconnecting = on;
  if (state.turn === turn) render();
}

async function readTurn(turn, post) {
  try {
    await follow(turn, post);
  } catch (e) {
    const m = state.msgs.get(turn.assistantId);
    if (e.lost && turn.resumed) {
      // Not to be read (gone, or not this user's any more): show the answer as stored.
      noResume.add(turn.assistantId);
      setTimeout(() => state.conv?.conversation_id === turn.convId && !state.turn && loadMessages().catch(() => {}), 400);
    } else if (!turn.detached) {
      if (m && m.status === 'streaming') m.status = 'error';
      showError(e.lost ? 'The connection was lost before the answer finished; what arrived is kept. Try again or regenerate.' : e.message || NETWORK);
      announce('The answer failed.');
    }
  }
  if (state.turn === turn) {
    state.turn = null;
    setBusy(false);
  }
  // A tool may have changed the tasks.
  if (turn.usedTools) loadTasks();
  if (!turn.detached && state.conv?.conversation_id === turn.convId) {
    render();
    scrollToEnd(); // the whole answer in view, unless the user scrolled up
  }
  // The button that started the turn may be gone: keep the keyboard somewhere useful.
  if (document.activeElement === document.body) $('composer-input').focus();
  return turn.sent;
}

/** Reads an SSE body, calling `on(event, data, id)` for every event with JSON data. */
async function readEvents(body, on) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let id = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let m;
    while ((m = /\r?\n\r?\n/.exec(buf))) {
      const block = buf.slice(0, m.index);
      buf = buf.slice(m.index + m[0].length);
      let event = 'message';
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (!line || line.startsWith(':')) continue; // comments: heartbeats
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        const v = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'event') event = v;
        else if (field === 'data') data.push(v);
        else if (field === 'id') id = v;
      }
      if (data.length) on(event, JSON.parse(data.join('\n')), id);
    }
  }
}

function onEvent(turn, event, data, id) {
  if (turn.ended || turn.detached) return;
  if (id != null) {
    if (+id <= turn.lastId) return; // seen already
    turn.lastId = +id;
  }
  setReconnecting(turn, false);
  const shown = state.conv && state.turn === turn;
  if (event === 'message') {
    const u = data.user_message;
    const known = state.msgs.get(data.assistant_message_id);
    addMsg(u);
    // Re-attached: the events start again from the first, so the text does too.
    addMsg({ message_id: data.assistant_message_id, parent_id: u.message_id, role: 'assistant', content: '', steps: [], status: 'streaming', model: known?.model ?? u.model, created_at: known?.created_at ?? new Date().toISOString() });
    turn.assistantId = data.assistant_message_id;
    if (turn.fresh) { listFresh(turn.fresh); turn.fresh = null; }
    choose(data.assistant_message_id);
    if (!turn.resumed) {
      if (state.conv) state.conv.message_count = (state.conv.message_count || 0) + 2;
      tell('started', turn);
    }
    if (shown) { render(); scrollToEnd(true); }
    announce('The assistant is answering…');
    if (turn.cancelling) cancelTurn(turn);
  } else if (event === 'delta') {
    const m = state.msgs.get(turn.assistantId);
    if (!m) return;
    m.content += data.text ?? '';
    // A step's text comes before its tool calls: text after a call starts the next step.
    let last = m.steps.at(-1);
    if (!last || last.tool_calls.length) m.steps.push((last = { text: '', tool_calls: [] }));
    last.text += data.text ?? '';
    scheduleBubble(m.message_id);
  } else if (event === 'tool_call') {
    const m = state.msgs.get(turn.assistantId);
    if (!m) return;
    // A call belongs to the step streaming now, unless it names another step than the calls
    // before it (a step of calls only, with no text before them).
    let last = m.steps.at(-1);
    if (!last || (last.tool_calls.length && last.n !== data.step)) m.steps.push((last = { text: '', tool_calls: [] }));
    last.n ??= data.step;
    last.tool_calls.push({ id: data.id, name: data.name, arguments: data.arguments });
    announce(`The assistant is using the tool ${data.name}…`);
    scheduleBubble(m.message_id);
  } else if (event === 'tool_result') {
    const m = state.msgs.get(turn.assistantId);
    if (!m) return;
    turn.usedTools = true;
    const call = m.steps.flatMap((s) => s.tool_calls).find((c) => c.id === data.id);
    if (call) Object.assign(call, { ok: !!data.ok, result: data.result ?? '' });
    scheduleBubble(m.message_id);
  } else if (event === 'done' || event === 'error') {
    turn.ended = true;
    const final = data.assistant_message;
    if (hasToolCalls(final || {})) turn.usedTools = true;
    if (final) addMsg(final);
    else if (state.msgs.has(turn.assistantId)) state.msgs.get(turn.assistantId).status = event === 'done' ? 'complete' : 'error';
    if (event === 'done') announce(final?.status === 'cancelled' ? 'Answer stopped.' : 'Answer complete.');
    else {
      const err = data.error || {};
      showError(describe(0, err, null) + (final?.content ? ' The partial answer is kept.' : ''));
      announce('The answer failed.');
    }
    tell('ended', turn);
    refreshTitle(event === 'done' && final?.status === 'complete');
  }
}

// ---------------------------------------------------------------- other tabs

// Tabs of the same browser tell each other when a turn starts or ends, so that a tab showing
// the same conversation reads the answer too (and Stop there cancels it everywhere).
const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('edgechat') : null;

function tell(type, turn) {
  channel?.postMessage({ type, user: state.user?.user_id, conv: turn.convId, message: turn.assistantId });
}

/** Tells the other tabs that the conversation list changed (a rename, a deletion). */
function tellListChanged(convId) {
  channel?.postMessage({ type: 'listed', user: state.user?.user_id, conv: convId });
}

channel?.addEventListener('message', ({ data: d }) => {
  if (!state.token || !d || d.user !== state.user?.user_id) return;
  // The list follows: a new conversation, its title once its first answer is in, a rename or
  // a deletion in another tab.
  const listed = state.convs.find((c) => c.conversation_id === d.conv);
  const search = $('search').value.trim();
  if (d.type === 'listed' || (d.type === 'started' && !listed) || (d.type === 'ended' && (!listed || !listed.title))) {
    if (!search) loadConversations().then(() => followList(d.conv));
  }
  if (d.type === 'listed') return;
  if (d.conv !== state.conv?.conversation_id) return;
  if (state.turn) return;
  const status = state.msgs.get(d.message)?.status;
  if (d.type === 'started' ? status !== 'streaming' : status === 'streaming') syncMessages(d.message, 4);
});

/** After the list was loaded again on another tab's word: the open conversation's title, or
 * a new chat when it was deleted there. */
function followList(convId) {
  if (!state.conv || state.conv.conversation_id !== convId) return;
  const fresh = state.convs.find((c) => c.conversation_id === convId);
  if (fresh) {
    Object.assign(state.conv, fresh);
    setTitle();
  } else {
    api(`${API}/conversations/${convId}`).catch((e) => { if (e.status === 404) newChat(); });
  }
}

/** Loads the messages again until `id` is among them (another tab's write may still be on
 * its way); a running answer is attached to by loadMessages. */
async function syncMessages(id, tries) {
  const conv = state.conv;
  await loadMessages().catch(() => {});
  if (--tries > 0 && state.conv === conv && !state.msgs.has(id)) setTimeout(() => syncMessages(id, tries), 300);
}

/** A first answer gives the conversation a title: one short model call names it (the first
 * words of the question when that fails); show it, here and in the other tabs. */
async function refreshTitle(answered) {
  const c = state.conv;
  if (!c || c.title) return;
  try {
    const url = `${API}/conversations/${c.conversation_id}`;
    // A failed or stopped answer names nothing: the conversation as it is.
    const fresh = answered ? await api(`${url}/title`, { method: 'POST' }) : await api(url);
    if (answered) tellListChanged(c.conversation_id);
    Object.assign(c, fresh);
    const listed = state.convs.find((x) => x.conversation_id === c.conversation_id);
    if (listed && listed !== c) Object.assign(listed, fresh);
    if (state.conv === c) setTitle();
    renderConversations();
  } catch {}
}

// ---------------------------------------------------------------- tasks

let tasksSeq = 0;

/** Loads the user's tasks: the open ones, then the recently done ones. `more` ('open' or
 * 'done') appends that group's next page instead. */
async function loadTasks(more) {
  const t = state.tasks;
  const page = (status, cursor) => {
    const params = new URLSearchParams({ status, limit: status === 'open' ? '50' : '20' });
    if (cursor) params.set('cursor', cursor);
    return api(`${API}/tasks?${params}`);
  };
  const seq = ++tasksSeq;
  $('tasks').setAttribute('aria-busy', 'true');
  try {
    if (more) {
      const p = await page(more, t[`${more}Cursor`]);
      if (seq !== tasksSeq) return;
      t[more] = t[more].concat(p.data);
      t[`${more}Cursor`] = p.next_cursor;
    } else {
      const [open, done] = await Promise.all([page('open'), page('done')]);
      if (seq !== tasksSeq) return;
      Object.assign(t, { open: open.data, openCursor: open.next_cursor, done: done.data, doneCursor: done.next_cursor, loaded: true });
    }
    renderTasks();
  } catch (e) {
    if (seq === tasksSeq && e.status !== 401) showError(`Could not load your tasks: ${e.message}`);
  } finally {
    if (seq === tasksSeq) $('tasks').setAttribute('aria-busy', 'false');
  }
}

function taskNode(task) {
  const done = task.status === 'done';
  const box = h('input', { type: 'checkbox', checked: done, onchange: () => setTaskStatus(task, box.checked ? 'done' : 'open') });
  const due = task.due_at ? new Date(task.due_at) : null;
  return h('li', { className: `task${done ? ' done' : ''}`, 'data-id': task.task_id },
    h('label', { title: task.notes || null }, box, h('span', { className: 'task-title' }, task.title)),
    due && !Number.isNaN(due.getTime()) && h('time', { className: 'muted small', dateTime: task.due_at }, `due ${due.toLocaleDateString()}`),
    h('button', { type: 'button', className: 'icon', 'aria-label': `Delete task “${task.title}”`, title: 'Delete', onclick: () => deleteTask(task) }, '✕'));
}

function renderTasks() {
  const t = state.tasks;
  const open = t.open.map(taskNode);
  if (!open.length) open.push(h('li', { className: 'muted small none' }, 'No open tasks.'));
  $('tasks-open').replaceChildren(...open);
  $('tasks-done').replaceChildren(...t.done.map(taskNode));
  $('tasks-done-group').hidden = !t.done.length;
  $('more-open-tasks').hidden = !t.openCursor;
  $('more-done-tasks').hidden = !t.doneCursor;
}

async function setTaskStatus(task, status) {
  try {
    await api(`${API}/tasks/${encodeURIComponent(task.task_id)}`, { method: 'PATCH', body: { status } });
    announce(status === 'done' ? `Task “${task.title}” done.` : `Task “${task.title}” reopened.`);
  } catch (e) {
    showError(`Could not change the task: ${e.message}`);
  }
  await loadTasks();
}

async function deleteTask(task) {
  if (!(await confirmDialog(`Delete the task “${task.title}”?`))) return;
  try {
    await api(`${API}/tasks/${encodeURIComponent(task.task_id)}`, { method: 'DELETE' });
    announce('Task deleted.');
  } catch (e) {
    showError(`Could not delete the task: ${e.message}`);
  }
  await loadTasks();
}

// ---------------------------------------------------------------- usage

async function showUsage() {
  const dlg = $('usage');
  const out = $('usage-body');
  out.textContent = 'Loading…';
  dlg.showModal();
  try {
    const u = await api(`${API}/usage`);
    const p = u.plan || {};
    const used = u.today?.tokens_used ?? 0;
    const limit = u.today?.tokens_limit ?? p.tokens_per_day;
    const fmt = (n) => (n == null ? '—' : Number(n).toLocaleString());
    const rows = (u.usage || []).map((r) => h('tr', {}, h('td', {}, r.day), h('td', {}, r.model), h('td', {}, fmt(r.requests)), h('td', {}, fmt(r.prompt_tokens)), h('td', {}, fmt(r.completion_tokens))));
    out.replaceChildren(
      h('p', {}, 'Plan: ', h('strong', {}, p.name || state.user?.plan || '—')),
      h('ul', { className: 'plain' },
        h('li', {}, `${fmt(p.requests_per_minute)} requests per minute`),
        h('li', {}, `${fmt(p.tokens_per_day)} tokens per day`),
        h('li', {}, `${fmt(p.concurrent_streams)} answers at a time`),
        h('li', {}, `Models: ${(p.models || []).map((m) => (m === '*' ? 'all' : m)).join(', ') || '—'}`)),
      h('p', {}, `Today (${u.today?.day || ''}): ${fmt(used)} of ${fmt(limit)} tokens`),
      h('progress', { max: limit || 1, value: Math.min(used, limit || 1), 'aria-label': 'Tokens used today' }),
      rows.length
        ? h('table', {}, h('caption', {}, 'Recent usage'), h('thead', {}, h('tr', {}, ...['Day', 'Model', 'Requests', 'Prompt tokens', 'Completion tokens'].map((t) => h('th', { scope: 'col' }, t)))), h('tbody', {}, rows))
        : h('p', { className: 'muted' }, 'No usage yet.'));
  } catch (e) {
    out.textContent = `Could not load usage: ${e.message}`;
  }
}

// ---------------------------------------------------------------- settings: chat, account, API keys

// The dialogs live in settings.js, loaded on first use (the first load stays small).
state.models = []; // chat models from /v1/models
state.draft = { system_prompt: '' }; // settings of a new chat, sent when it is created

/** "tools, JSON, vision · 128k context" for a model. */
function modelTraits(m) {
  const c = m.capabilities || {};
  const can = [c.tools && 'tools', c.json_mode && 'JSON', c.vision && 'vision'].filter(Boolean);
  const ctx = m.context_window >= 1024 ? `${Math.round(m.context_window / 1024)}k` : String(m.context_window);
  return `${can.length ? can.join(', ') : 'text only'} · ${ctx} context`;
}

function modelLabel(m) {
  return `${m.id} (${m.owned_by}) — ${modelTraits(m)}${m.default ? ' · default' : ''}`;
}

/** The body of a new conversation: the picked model and the settings made before it existed. */
function draftConversation(model) {
  const body = model ? { model } : {};
  if (state.draft.system_prompt.trim()) body.system_prompt = state.draft.system_prompt;
  state.draft = { system_prompt: '' };
  return body;
}

let settingsModule = null;

/** Opens the settings dialog `name` (chatSettings, accountSettings, apiKeys) of settings.js. */
async function openSettings(name) {
  try {
    settingsModule ??= import('./settings.js').then((m) => {
      m.init({ h, $, api, API, state, announce, confirmDialog, signedOut, modelTraits });
      return m;
    });
    (await settingsModule)[name]();
  } catch (e) {
    settingsModule = null;
    showError(`Could not open the settings: ${e.message}`);
  }
}

// ---------------------------------------------------------------- wiring

function wire() {
  $('auth-form').addEventListener('submit', submitAuth);
  $('auth-switch').addEventListener('click', () => setAuthMode(!registering));
  $('logout').addEventListener('click', logout);
  $('menu').addEventListener('click', () => setNav(!document.body.classList.contains('nav-open')));
  $('scrim').addEventListener('click', () => setNav(false));
  $('new-chat').addEventListener('click', newChat);
  $('more-convs').addEventListener('click', () => loadConversations(true));
  $('usage-open').addEventListener('click', showUsage);
  $('chat-settings-open').addEventListener('click', () => openSettings('chatSettings'));
  $('account-open').addEventListener('click', () => openSettings('accountSettings'));
  $('keys-open').addEventListener('click', () => openSettings('apiKeys'));
  $('tasks-refresh').addEventListener('click', () => loadTasks());
  $('more-open-tasks').addEventListener('click', () => loadTasks('open'));
  $('more-done-tasks').addEventListener('click', () => loadTasks('done'));
  $('error-close').addEventListener('click', () => showError(''));
  $('stop').addEventListener('click', stop);
  $('messages').addEventListener('scroll', (e) => {
    const box = e.currentTarget;
    atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
  }, { passive: true });
  // Escape stops a running answer, unless it closes something else first (a dialog, an edit).
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || e.defaultPrevented || !state.turn || $('stop').hidden || $('stop').disabled) return;
    if (document.querySelector('dialog[open]') || e.target.closest?.('.edit, .rename')) return;
    e.preventDefault();
    stop();
  });
  let timer = 0;
  $('search').addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(() => loadConversations(), 250); });
  $('model').addEventListener('change', () => {
    const model = $('model').value;
    if (state.conv && model && model !== state.conv.model) {
      api(`${API}/conversations/${state.conv.conversation_id}`, { method: 'PATCH', body: { model } })
        .then((c) => Object.assign(state.conv, c))
        .catch((e) => showError(`Could not change the model: ${e.message}`));
    }
  });
  const input = $('composer-input');
  $('composer').addEventListener('submit', async (e) => {
    e.preventDefault();
    const content = input.value.trim();
    if (!content || state.turn) return;
    if (!updateCounter()) {
      showError(`The message is too long: at most ${maxMessageBytes.toLocaleString('en')} bytes.`);
      return;
    }
    const leaf = path().at(-1);
    input.value = '';
    updateCounter();
    if (!(await send(content, leaf?.message_id)) && !input.value) input.value = content; // not sent: keep it
  });
  input.addEventListener('input', updateCounter);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.ctrlKey && !e.altKey && !e.metaKey && !e.isComposing) {
      e.preventDefault();
      $('composer').requestSubmit();
    }
  });
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || document.querySelector('dialog.settings[open]')) return;
    if (document.body.classList.contains('nav-open')) { setNav(false); $('menu').focus(); }
    else if (state.turn && !document.querySelector('dialog[open]')) stop();
  });
  addEventListener('popstate', () => state.token && openFromHash());
}

async function boot() {
  wire();
  setAuthMode(false);
  let ok = false;
  try {
    ok = await refresh();
  } catch (e) {
    showAuth(e.message);
    return;
  }
  if (ok) {
    try { await startApp(); } catch (e) { showError(e.message); }
  } else showAuth();
}

boot();
