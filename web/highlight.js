//! Code highlighting for the chat page: highlight.js core and each language are separate chunks,
//! loaded the first time a code block asks for them, so the first page load carries none.

// Canonical names of the languages we load, each its own chunk (dynamic imports).
const LOADERS = {
  bash: () => import('highlight.js/lib/languages/bash'),
  c: () => import('highlight.js/lib/languages/c'),
  cpp: () => import('highlight.js/lib/languages/cpp'),
  csharp: () => import('highlight.js/lib/languages/csharp'),
  css: () => import('highlight.js/lib/languages/css'),
  diff: () => import('highlight.js/lib/languages/diff'),
  dockerfile: () => import('highlight.js/lib/languages/dockerfile'),
  go: () => import('highlight.js/lib/languages/go'),
  graphql: () => import('highlight.js/lib/languages/graphql'),
  ini: () => import('highlight.js/lib/languages/ini'),
  java: () => import('highlight.js/lib/languages/java'),
  javascript: () => import('highlight.js/lib/languages/javascript'),
  json: () => import('highlight.js/lib/languages/json'),
  kotlin: () => import('highlight.js/lib/languages/kotlin'),
  latex: () => import('highlight.js/lib/languages/latex'),
  lua: () => import('highlight.js/lib/languages/lua'),
  makefile: () => import('highlight.js/lib/languages/makefile'),
  markdown: () => import('highlight.js/lib/languages/markdown'),
  php: () => import('highlight.js/lib/languages/php'),
  plaintext: () => import('highlight.js/lib/languages/plaintext'),
  powershell: () => import('highlight.js/lib/languages/powershell'),
  python: () => import('highlight.js/lib/languages/python'),
  ruby: () => import('highlight.js/lib/languages/ruby'),
  rust: () => import('highlight.js/lib/languages/rust'),
  scss: () => import('highlight.js/lib/languages/scss'),
  shell: () => import('highlight.js/lib/languages/shell'),
  sql: () => import('highlight.js/lib/languages/sql'),
  swift: () => import('highlight.js/lib/languages/swift'),
  typescript: () => import('highlight.js/lib/languages/typescript'),
  xml: () => import('highlight.js/lib/languages/xml'),
  yaml: () => import('highlight.js/lib/languages/yaml'),
};

// What people write after the fence, mapped to the names above.
const ALIASES = {
  sh: 'bash', zsh: 'bash', console: 'shell', 'shell-session': 'shell', h: 'c', 'c++': 'cpp', cc: 'cpp', hpp: 'cpp',
  cxx: 'cpp', cs: 'csharp', 'c#': 'csharp', patch: 'diff', docker: 'dockerfile', golang: 'go', gql: 'graphql',
  toml: 'ini', js: 'javascript', jsx: 'javascript', mjs: 'javascript', cjs: 'javascript', node: 'javascript',
  jsonc: 'json', kt: 'kotlin', tex: 'latex', make: 'makefile', md: 'markdown', ps: 'powershell', ps1: 'powershell',
  py: 'python', python3: 'python', rb: 'ruby', rs: 'rust', ts: 'typescript', tsx: 'typescript', html: 'xml',
  htm: 'xml', svg: 'xml', xhtml: 'xml', yml: 'yaml', text: 'plaintext', txt: 'plaintext', plain: 'plaintext',
};

let core = null; // highlight.js core once loaded
const ready = new Set(); // languages registered with it
const loading = new Map(); // language -> Promise

/** The canonical language for a fence's info word, or null for one we do not highlight. */
export function languageOf(word) {
  const w = String(word || '').toLowerCase();
  const name = ALIASES[w] || w;
  return Object.hasOwn(LOADERS, name) ? name : null;
}

/** Loads highlight.js core and `lang` (once); resolves true when both are there. */
export function loadLanguage(lang) {
  if (!loading.has(lang)) {
    const p = Promise.all([import('highlight.js/lib/core'), LOADERS[lang]()]).then(([c, l]) => {
      core = c.default;
      core.registerLanguage(lang, l.default);
      ready.add(lang);
      return true;
    });
    // A failed chunk (offline) leaves the code plain; a later render tries again.
    loading.set(lang, p.catch(() => { loading.delete(lang); return false; }));
  }
  return loading.get(lang);
}

// Highlighted HTML of finished blocks: a streaming answer is re-rendered every frame, and only its
// last block changes.
const cache = new Map();
const CACHE_MAX = 200;

/** Highlighted HTML (hljs spans; text escaped by highlight.js) for `code` in `lang`, or null
 * when that language is not loaded yet. */
export function highlight(code, lang) {
  if (!ready.has(lang)) return null;
  const key = `${lang}\u0000${code}`;
  let html = cache.get(key);
  if (html === undefined) {
    html = core.highlight(code, { language: lang, ignoreIllegals: true }).value;
    if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value);
    cache.set(key, html);
  }
  return html;
}
