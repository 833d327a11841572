//! Math for the chat page: KaTeX and its stylesheet (with fonts) are loaded the first time an
//! answer holds math. Formulas are typeset straight into the DOM (katex.render sets styles through
//! CSSOM, which the page's Content-Security-Policy allows; style="" in parsed HTML it blocks).

let katex = null;
let loading = null;

export const mathReady = () => katex !== null;

/** Loads KaTeX and its stylesheet (once); resolves true when they are there. */
export function loadMath() {
  loading ??= Promise.all([
    import('katex').then((m) => { katex = m.default; }),
    new Promise((resolve) => {
      const link = document.createElement('link');
      link.rel = 'stylesheet';
      link.href = '/assets/katex/katex.min.css';
      link.onload = link.onerror = resolve;
      document.head.append(link);
    }),
  ]).then(() => true, () => { loading = null; return false; });
  return loading;
}

// Typeset formulas by source: the same formula is typeset once and cloned after that.
const cache = new Map();
const CACHE_MAX = 300;

function typesetOne(tex, display) {
  const key = `${display ? 'D' : 'I'}${tex}`;
  let node = cache.get(key);
  if (!node) {
    node = document.createElement('span');
    try {
      // Untrusted input: no \href, \url, \html*; bounded sizes and macro expansion.
      katex.render(tex, node, { displayMode: display, throwOnError: true, trust: false, strict: 'ignore', maxSize: 20, maxExpand: 200, output: 'htmlAndMathml' });
    } catch (err) {
      // The source as text (KaTeX's own error node would carry a style attribute).
      node.className = 'math-error';
      node.title = String(err?.message || err).slice(0, 200);
      node.textContent = display ? `$$${tex}$$` : `$${tex}$`;
    }
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value);
    cache.set(key, node);
  }
  return node.cloneNode(true);
}

/** Typesets every formula placeholder under `root` (KaTeX must be loaded). */
export function typeset(root) {
  for (const el of root.querySelectorAll('.math[data-tex]')) {
    el.replaceChildren(typesetOne(el.dataset.tex, el.classList.contains('math-display')));
    el.classList.add('typeset');
  }
}
