// sim/text.mjs — deterministic text: hashing, PRNG, generated Markdown answers as tokens, prompt text extraction and counting.

const VOCAB = (
  'the of and to in is that for it as with was on be by at this from or have an they which ' +
  'one you were all we when there can more about would so some what up out time if will ' +
  'other into has its two then could first water been people way like over these long ' +
  'little very after words called just where most know through back much before line right ' +
  'too means old any same tell boy follow came want show also around form three small set ' +
  'put end does another well large must big even such because turn here why ask went men ' +
  'read need land different home us move try kind hand picture again change off play spell ' +
  'air away animal house point page letter mother answer found study still learn should ' +
  'world high every near add food between own below country plant last school father keep ' +
  'tree never start city earth eye light thought head under story saw left few while along ' +
  'might close something seem next hard open example begin life always those both paper ' +
  'together got group often run important until children side feet car mile night walk ' +
  'white sea began grow took river four carry state once book hear stop without second later'
).split(' ');

export { VOCAB };

/** 32-bit FNV-1a over the UTF-8 bytes of `text`. */
export function fnv1a(text) {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(String(text), 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32 PRNG: returns a function yielding floats in [0, 1). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random generator seeded from a string. */
export function rngFor(seedText) {
  return mulberry32(fnv1a(seedText));
}

// ---------------------------------------------------------------- generated answers

// What a prompt asks for, by the words in it (anywhere in the seed text: the system prompt and
// every message). Each kind found adds its block to a structured answer; none gives prose.
const ASKS = {
  code: /\b(code|coding|function|script|program|snippet|implement\w*|python|javascript|typescript|rust|golang|bash|shell|sql)\b/i,
  table: /\b(table|tables|tabular|columns?|spreadsheet|comparison)\b/i,
  math: /\b(math|maths|equations?|formulas?|integral|derivative|latex)\b/i,
  list: /\b(list|lists|steps|outline|bullets?|checklist)\b/i,
};

// The language of the code block: the first one the prompt names (Python when none).
const LANGUAGES = [
  ['typescript', /\btypescript\b/i], ['javascript', /\b(javascript|node\.?js)\b/i], ['rust', /\brust\b/i],
  ['go', /\bgolang\b/i], ['bash', /\b(bash|shell)\b/i], ['sql', /\bsql\b/i], ['python', /\bpython\b/i],
];

// Code templates: NAME and ARG are replaced by words drawn for the answer.
const CODE = {
  python: [
    'def NAME(items):',
    '    """Count how often each ARG appears."""',
    '    counts = {}',
    '    for item in items:',
    '        counts[item] = counts.get(item, 0) + 1',
    '    return sorted(counts.items(), key=lambda pair: -pair[1])',
    '',
    'print(NAME(["ARG", "NAME", "ARG"]))',
  ],
  javascript: [
    '// Count how often each ARG appears.',
    'export function NAME(items) {',
    '  const counts = new Map();',
    '  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);',
    '  return [...counts].sort((a, b) => b[1] - a[1]);',
    '}',
    '',
    "console.log(NAME(['ARG', 'NAME', 'ARG']));",
  ],
  typescript: [
    '// Count how often each ARG appears.',
    'export function NAME(items: string[]): Array<[string, number]> {',
    '  const counts = new Map<string, number>();',
    '  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);',
    '  return [...counts].sort((a, b) => b[1] - a[1]);',
    '}',
  ],
  rust: [
    'use std::collections::HashMap;',
    '',
    '/// Count how often each ARG appears.',
    'fn NAME(items: &[&str]) -> Vec<(String, usize)> {',
    '    let mut counts: HashMap<String, usize> = HashMap::new();',
    '    for item in items {',
    '        *counts.entry(item.to_string()).or_default() += 1;',
    '    }',
    '    let mut out: Vec<_> = counts.into_iter().collect();',
    '    out.sort_by(|a, b| b.1.cmp(&a.1));',
    '    out',
    '}',
  ],
  go: [
    '// NAME counts how often each ARG appears.',
    'func NAME(items []string) map[string]int {',
    '\tcounts := make(map[string]int)',
    '\tfor _, item := range items {',
    '\t\tcounts[item]++',
    '\t}',
    '\treturn counts',
    '}',
  ],
  bash: [
    '#!/usr/bin/env bash',
    '# Count how often each ARG appears in a file.',
    'set -euo pipefail',
    'NAME() {',
    '  tr -s "[:space:]" "\\n" < "$1" | sort | uniq -c | sort -rn | head -n 10',
    '}',
    'NAME "${1:-ARG.txt}"',
  ],
  sql: [
    '-- How often each ARG appears.',
    'SELECT NAME, COUNT(*) AS total',
    'FROM ARG',
    'GROUP BY NAME',
    'ORDER BY total DESC',
    'LIMIT 10;',
  ],
};

const FORMULAS = [
  ['a^2 + b^2 = c^2', 'x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}'],
  ['e^{i\\pi} + 1 = 0', '\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}'],
  ['f(x) = x^2', '\\int_0^1 x^2 \\, dx = \\frac{1}{3}'],
];

/** Draws words, sentences and Markdown blocks from one seeded generator. */
function writer(rng) {
  const pick = (list) => list[Math.floor(rng() * list.length)];
  const int = (lo, hi) => lo + Math.floor(rng() * (hi - lo + 1));
  const word = () => pick(VOCAB);
  const words = (k) => Array.from({ length: k }, word);
  const cap = (w) => w.charAt(0).toUpperCase() + w.slice(1);
  const title = () => words(int(2, 4)).map(cap).join(' ');
  const sentence = () => {
    const ws = words(int(6, 14));
    // Some formatting now and then: a bold, italic or code word.
    const r = rng();
    const i = int(1, ws.length - 1);
    if (r < 0.2) ws[i] = `**${ws[i]}**`;
    else if (r < 0.35) ws[i] = `*${ws[i]}*`;
    else if (r < 0.45) ws[i] = `\`${ws[i]}\``;
    return `${cap(ws.join(' '))}.`;
  };
  const paragraph = (lo, hi) => Array.from({ length: int(lo, hi) }, sentence).join(' ');
  const item = () => `${cap(words(int(3, 8)).join(' '))}`;
  const nestedList = () => {
    const lines = [];
    const n = int(2, 4);
    for (let i = 0; i < n; i++) {
      lines.push(`- **${cap(word())}**: ${words(int(3, 7)).join(' ')}`);
      if (i === 0 || rng() < 0.4) for (let j = int(1, 2); j > 0; j--) lines.push(`  - ${item()}`);
    }
    return lines.join('\n');
  };
  const steps = () => {
    const lines = [];
    for (let i = 1, n = int(3, 4); i <= n; i++) {
      lines.push(`${i}. ${item()}`);
      if (i === 1) lines.push(`   - ${item()}`, `   - ${item()}`);
    }
    return lines.join('\n');
  };
  const code = (lang) => {
    const name = `${word()}_${word()}`.replace(/[^a-z_]/g, '');
    const arg = word();
    const body = CODE[lang].map((l) => l.replaceAll('NAME', name).replaceAll('ARG', arg)).join('\n');
    return `\`\`\`${lang}\n${body}\n\`\`\``;
  };
  const table = () => {
    const rows = [`| ${cap(word())} | Count | ${cap(word())} |`, '| --- | ---: | --- |'];
    for (let i = 0, n = int(3, 5); i < n; i++) rows.push(`| ${word()} | ${int(1, 999)} | ${words(int(2, 5)).join(' ')} |`);
    return rows.join('\n');
  };
  const math = () => {
    const [inline, display] = pick(FORMULAS);
    return [`${cap(words(int(4, 8)).join(' '))} $${inline}$ ${words(int(3, 6)).join(' ')}:`, `$$\n${display}\n$$`];
  };
  return { title, paragraph, nestedList, steps, code, table, math, sentence, pick };
}

/** The answer's Markdown blocks, in order, without end: a structured answer (heading, what the
 * prompt asked for, then sections with subheadings and nested lists) or prose paragraphs. */
function* answerBlocks(seedText, rng) {
  const w = writer(rng);
  const asked = Object.keys(ASKS).filter((k) => ASKS[k].test(seedText));
  if (!asked.length) {
    for (;;) yield w.paragraph(2, 4);
  }
  yield `## ${w.title()}`;
  yield w.paragraph(1, 2);
  for (const kind of asked) {
    if (kind === 'code') {
      const lang = LANGUAGES.find(([, re]) => re.test(seedText))?.[0] ?? 'python';
      yield w.sentence();
      yield w.code(lang);
    } else if (kind === 'table') {
      yield w.sentence();
      yield w.table();
    } else if (kind === 'math') {
      yield* w.math();
    } else {
      yield w.steps();
    }
  }
  for (;;) {
    yield `### ${w.title()}`;
    yield w.paragraph(1, 3);
    yield w.nestedList();
  }
}

/**
 * The generated answer's first `n` tokens: Markdown shaped by the prompt (see answerBlocks), cut
 * into tokens of optional whitespace and one run of non-space characters ("## Title\n\nText" ->
 * ["##", " Title", "\n\nText"]). Pure and deterministic: the same seed gives the same tokens, and
 * a smaller `n` gives a prefix of a larger one's.
 */
export function generateTokens(seedText, n) {
  const count = Math.max(0, n | 0);
  const out = [];
  if (!count) return out;
  const rng = rngFor(seedText);
  let first = true;
  for (const block of answerBlocks(String(seedText), rng)) {
    const text = first ? block : `\n\n${block}`;
    first = false;
    for (const token of text.match(/\s*\S+/g) ?? []) {
      out.push(token);
      if (out.length === count) return out;
    }
  }
  return out;
}

/** Split text into tokens before each space, keeping the spaces ("a b  c" -> ["a", " b", " ", " c"]). */
export function echoTokens(text) {
  return text ? text.split(/(?= )/) : [];
}

/** The seed string for a request: base model name and every prompt text, newline-joined. */
export function seedText(baseModel, texts) {
  return [baseModel, ...texts].join('\n');
}

/** Text of a message content: a string, or the concatenated `text` of an array of parts/blocks. */
export function contentText(content) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let s = '';
  for (const part of content) if (part && typeof part.text === 'string') s += part.text;
  return s;
}

/** Prompt token estimate: ceil(total characters / 4), at least 1. */
export function promptTokens(texts) {
  let chars = 0;
  for (const t of texts) chars += t.length;
  return Math.max(1, Math.ceil(chars / 4));
}

/** Text of the last message with role "user" ('' if none). */
export function lastUserText(messages) {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.role === 'user') return contentText(messages[i].content);
  }
  return '';
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A deterministic `prefix` + `len` alphanumeric characters derived from `seed`. */
export function stableId(prefix, seed, len = 24) {
  const rng = rngFor(seed);
  let s = prefix;
  for (let i = 0; i < len; i++) s += ALNUM[Math.floor(rng() * ALNUM.length)];
  return s;
}
