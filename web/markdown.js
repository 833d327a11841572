//! The chat page's Markdown pipeline for model output: markdown-it (raw HTML off: it shows as
//! text) turns the text into HTML, DOMPurify checks that HTML against a short allow-list as a
//! second guard, then code blocks get a language label and a copy button, and formulas are typeset.
//! Highlighting (highlight.js) and math (KaTeX) load on first use; a block rendered before its
//! language or KaTeX arrived is rendered again once it has.
import DOMPurify from 'dompurify';
import MarkdownIt from 'markdown-it';
import { tex } from '@mdit/plugin-tex';
import { highlight, languageOf, loadLanguage } from './highlight.js';
import { loadMath, mathReady, typeset } from './math.js';

const escape = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// What the render in progress still needs loaded (markdown-it's callbacks get no context of ours).
let needs = null;

const md = new MarkdownIt({
  html: false, // raw HTML in the text is text
  linkify: true, // bare http(s) URLs become links
  breaks: true, // a single newline is a line break, as people type in a chat
  highlight(code, info) {
    const lang = languageOf(info);
    if (!lang) return '';
    const html = highlight(code, lang);
    if (html === null) needs?.langs.add(lang);
    return html ?? '';
  },
});
// Words like "main.py" are not links, and entities are shown as written.
md.linkify.set({ fuzzyLink: false });
md.disable('entity');
// Links: http(s) and mailto only; anything else stays text.
md.validateLink = (url) => /^(https?:|mailto:)/i.test(url.trim());

md.use(tex, {
  delimiters: 'all',
  // A placeholder with the source (shown as is until KaTeX is there), typeset after sanitizing.
  render(source, display) {
    if (needs) needs.math = true;
    const tag = display ? 'div' : 'span';
    return `<${tag} class="math math-${display ? 'display' : 'inline'}" data-tex="${escape(source)}">${escape(source)}</${tag}>`;
  },
});

// Headings start at h3: the page's own h1/h2 stay above an answer's headings.
md.core.ruler.push('shift_headings', (state) => {
  for (const t of state.tokens) if (t.type === 'heading_open' || t.type === 'heading_close') t.tag = `h${Math.min(6, +t.tag.slice(1) + 2)}`;
});

const rules = md.renderer.rules;
// Links open in a new tab without handing it this page.
rules.link_open = (tokens, i, opts, env, self) => {
  tokens[i].attrSet('target', '_blank');
  tokens[i].attrSet('rel', 'noopener noreferrer');
  return self.renderToken(tokens, i, opts);
};
// Table alignment as a class (the page's CSP refuses style attributes); wide tables scroll.
for (const name of ['th_open', 'td_open']) {
  rules[name] = (tokens, i, opts, env, self) => {
    const t = tokens[i];
    const align = /text-align:\s*(left|center|right)/.exec(t.attrGet('style') || '')?.[1];
    t.attrs = (t.attrs || []).filter(([k]) => k !== 'style');
    if (align) t.attrJoin('class', `align-${align}`);
    return self.renderToken(tokens, i, opts);
  };
}
rules.table_open = () => '<div class="table-wrap"><table>\n';
rules.table_close = () => '</table></div>\n';

// The second guard: only these elements and attributes, links only to http(s)/mailto.
const PURIFY = {
  ALLOWED_TAGS: ['p', 'br', 'strong', 'em', 's', 'code', 'pre', 'a', 'ul', 'ol', 'li', 'h3', 'h4', 'h5', 'h6',
    'blockquote', 'hr', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'span', 'div'],
  ALLOWED_ATTR: ['href', 'target', 'rel', 'class', 'start', 'data-tex'],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  RETURN_DOM_FRAGMENT: true,
};
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.nodeName !== 'A') return;
  if (!node.hasAttribute('href')) {
    node.replaceWith(...node.childNodes); // not a link any more: its text stays
    return;
  }
  node.setAttribute('target', '_blank');
  node.setAttribute('rel', 'noopener noreferrer');
});

/** Copies `text` to the clipboard; resolves true when it did. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No async clipboard (an insecure origin, an old browser): the selection way.
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.className = 'copy-buffer';
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch {}
    area.remove();
    return ok;
  }
}

/** A button copying `text()` with a visible "Copied" state; `label` is its accessible name. */
export function copyButton(text, label, className = '') {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = `copy small${className ? ` ${className}` : ''}`;
  b.setAttribute('aria-label', label);
  b.title = label;
  b.textContent = 'Copy';
  let timer = 0;
  b.addEventListener('click', async () => {
    const ok = await copyText(text());
    clearTimeout(timer);
    b.textContent = ok ? 'Copied' : 'Copy failed';
    b.classList.toggle('copied', ok);
    const status = document.getElementById('status');
    if (status) status.textContent = ok ? 'Copied to the clipboard.' : 'Could not copy.';
    timer = setTimeout(() => { b.textContent = 'Copy'; b.classList.remove('copied'); }, 2000);
  });
  return b;
}

/** Code blocks get a header: the language and a copy button. */
function decorateCode(root) {
  for (const pre of root.querySelectorAll('pre')) {
    const code = pre.querySelector('code');
    if (!code) continue;
    const lang = /(?:^|\s)language-(\S+)/.exec(code.className)?.[1] || '';
    if (lang) pre.dataset.lang = lang;
    const head = document.createElement('div');
    head.className = 'code-head';
    const name = document.createElement('span');
    name.className = 'code-lang';
    name.textContent = lang || 'text';
    head.append(name, copyButton(() => code.textContent.replace(/\n$/, ''), `Copy ${lang || 'code'} code`, 'copy-code'));
    const box = document.createElement('div');
    box.className = 'code-block';
    pre.replaceWith(box);
    box.append(head, pre);
  }
}

const shown = new WeakMap(); // element -> the text last rendered into it

/** Renders Markdown `text` into `parent`, replacing what was there. */
export function renderMarkdown(parent, text) {
  const source = String(text ?? '');
  const wants = { langs: new Set(), math: false };
  needs = wants;
  let html;
  try {
    html = md.render(source);
  } finally {
    needs = null;
  }
  const frag = DOMPurify.sanitize(html, PURIFY);
  decorateCode(frag);
  if (wants.math && mathReady()) typeset(frag);
  parent.replaceChildren(frag);
  shown.set(parent, source);
  const waits = [...wants.langs].map(loadLanguage);
  if (wants.math && !mathReady()) waits.push(loadMath());
  if (waits.length) {
    // Again once something arrived (a chunk that failed to load leaves the block as it is).
    Promise.all(waits).then((got) => {
      if (got.some(Boolean) && parent.isConnected && shown.get(parent) === source) renderMarkdown(parent, source);
    });
  }
}
