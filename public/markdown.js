// A tiny, safe Markdown renderer for model output. It builds DOM nodes and only ever puts the
// text into them through text nodes: no innerHTML, so nothing in the text can become markup,
// script or a non-http(s) link. Supports paragraphs, line breaks, headings, lists, quotes,
// rules, fenced code, `code`, **bold**, *italic*, [links](https://...) and bare URLs.

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)/;
const HEADING = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const ITEM = /^\s{0,3}([-*+]|\d{1,9}[.)])\s+(.*)$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const RULE = /^ {0,3}([-*_])(\s*\1){2,}\s*$/;

function el(tag, cls) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  return e;
}

/** A link element for an http(s) URL, or null for anything else. */
function link(url, text) {
  let u;
  try { u = new URL(url); } catch { return null; }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  const a = el('a');
  a.href = u.href;
  a.rel = 'noopener noreferrer';
  a.target = '_blank';
  a.textContent = text;
  return a;
}

// `code` | **bold** | __bold__ | *italic* | _italic_ | [text](url) | bare URL
const INLINE = /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)|\*\*(?=\S)([\s\S]*?\S)\*\*|__(?=\S)([\s\S]*?\S)__(?!\w)|\*(?=[^\s*])([\s\S]*?[^\s*])\*(?!\*)|(?<!\w)_(?=[^\s_])([\s\S]*?[^\s_])_(?!\w)|\[([^\]\n]+)\]\((https?:\/\/[^\s()]+)\)|(https?:\/\/[^\s<>"'`]+)/g;

/** Appends `text` to `parent` with inline formatting. */
function inline(parent, text, depth = 0) {
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (i) parent.append(el('br'));
    spans(parent, line, depth);
  });
}

function spans(parent, text, depth) {
  if (depth > 4) { parent.append(text); return; }
  let last = 0;
  INLINE.lastIndex = 0;
  const matches = [...text.matchAll(INLINE)];
  for (const m of matches) {
    parent.append(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[1]) {
      const c = el('code');
      c.textContent = m[2].length > 2 && m[2].startsWith(' ') && m[2].endsWith(' ') ? m[2].slice(1, -1) : m[2];
      parent.append(c);
    } else if (m[3] || m[4]) {
      const b = el('strong');
      spans(b, m[3] || m[4], depth + 1);
      parent.append(b);
    } else if (m[5] || m[6]) {
      const i = el('em');
      spans(i, m[5] || m[6], depth + 1);
      parent.append(i);
    } else if (m[7]) {
      parent.append(link(m[8], m[7]) || m[0]);
    } else {
      // A bare URL: trailing punctuation belongs to the sentence, not the link.
      const url = m[9].replace(/[.,;:!?)\]'"]+$/, '');
      parent.append(link(url, url) || url, m[9].slice(url.length));
    }
  }
  parent.append(text.slice(last));
}

/** Renders `text` as block elements into `parent` (replacing what was there). */
export function renderMarkdown(parent, text) {
  const frag = document.createDocumentFragment();
  blocks(frag, String(text ?? '').replace(/\r\n?/g, '\n').split('\n'), 0);
  parent.replaceChildren(frag);
}

function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || ITEM.test(line) || QUOTE.test(line) || RULE.test(line);
}

function blocks(parent, lines, depth) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let m;
    if (!line.trim()) { i++; continue; }
    if ((m = FENCE.exec(line))) {
      const fence = m[1];
      const body = [];
      i++;
      while (i < lines.length && !new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`).test(lines[i])) body.push(lines[i++]);
      if (i >= lines.length) while (body.length && !body[body.length - 1].trim()) body.pop(); // still streaming
      i++; // the closing fence
      const pre = el('pre');
      const code = el('code');
      if (m[2]) pre.dataset.lang = m[2];
      code.textContent = body.join('\n');
      pre.append(code);
      parent.append(pre);
    } else if (RULE.test(line)) {
      parent.append(el('hr'));
      i++;
    } else if ((m = HEADING.exec(line))) {
      const h = el(`h${Math.min(6, m[1].length + 2)}`);
      inline(h, m[2], depth);
      parent.append(h);
      i++;
    } else if (depth < 3 && QUOTE.test(line)) {
      const inner = [];
      while (i < lines.length && (m = QUOTE.exec(lines[i]))) { inner.push(m[1]); i++; }
      const q = el('blockquote');
      blocks(q, inner, depth + 1);
      parent.append(q);
    } else if ((m = ITEM.exec(line))) {
      const ordered = /\d/.test(m[1]);
      const list = el(ordered ? 'ol' : 'ul');
      if (ordered && parseInt(m[1], 10) !== 1) list.start = parseInt(m[1], 10);
      while (i < lines.length) {
        const im = ITEM.exec(lines[i]);
        if (!im || /\d/.test(im[1]) !== ordered) break;
        const body = [im[2]];
        i++;
        // Continuation lines: indented, or plain text right under the item.
        while (i < lines.length && lines[i].trim() && !ITEM.test(lines[i]) && (/^\s/.test(lines[i]) || !startsBlock(lines[i]))) {
          body.push(lines[i].trim());
          i++;
        }
        const li = el('li');
        inline(li, body.join('\n'), depth);
        list.append(li);
        // A blank line between items keeps the list going.
        if (i + 1 < lines.length && !lines[i]?.trim() && ITEM.test(lines[i + 1])) i++;
      }
      parent.append(list);
    } else {
      const para = [];
      while (i < lines.length && lines[i].trim() && !(para.length && startsBlock(lines[i]))) para.push(lines[i++]);
      const p = el('p');
      inline(p, para.join('\n'), depth);
      parent.append(p);
    }
  }
}
