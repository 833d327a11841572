// sim/test/units.test.mjs — pure-function tests: text generation, option grammar, CLI args, SSE malforming.

import test from 'node:test';
import assert from 'node:assert/strict';
import { generateTokens, echoTokens, seedText, promptTokens, contentText, VOCAB } from '../text.mjs';
import { parseModel, parseOptionList, resolveOptions, OptionError } from '../options.mjs';
import { malform } from '../engine.mjs';
import { parseArgs } from '../server.mjs';

test('generateTokens is deterministic, sized, prefix-stable; each token is whitespace and one word', () => {
  const a = generateTokens('sim-small\nhello', 20);
  assert.deepEqual(a, generateTokens('sim-small\nhello', 20));
  assert.equal(a.length, 20);
  assert.ok(!/^\s/.test(a[0]));
  for (const t of a) assert.match(t, /^\s*\S+$/);
  assert.deepEqual(generateTokens('sim-small\nhello', 5), a.slice(0, 5), 'prefix-stable');
  assert.notDeepEqual(generateTokens('sim-small\nbye', 20), a);
  assert.deepEqual(generateTokens('x', 0), []);
});

test('a plain prompt gets prose paragraphs of vocabulary words with some formatting', () => {
  const text = generateTokens(seedText('sim-small', ['Tell me a story']), 400).join('');
  const paras = text.split('\n\n');
  assert.ok(paras.length >= 3, 'several paragraphs');
  for (const p of paras.slice(0, -1)) assert.match(p, /^[A-Z][^\n]*\.$/, 'sentences, no headings, lists or code');
  assert.match(text, /\*\*\w+\*\*|\*\w+\*|`\w+`/, 'some bold, italic or code words');
  const words = text.replace(/[*`.]/g, ' ').toLowerCase().split(/\s+/).filter(Boolean);
  for (const w of words) assert.ok(VOCAB.includes(w), `${w} is a vocabulary word`);
});

test('the answer is shaped by what the prompt asks for: code, a table, math, a list', () => {
  const answer = (prompt, n = 400) => generateTokens(seedText('sim-small', [prompt]), n).join('');
  const code = answer('Write a function that counts words');
  assert.match(code, /^## \w/, 'a heading first');
  assert.match(code, /\n```python\ndef \w+\(items\):\n[\s\S]+?\n```\n/, 'a fenced Python block');
  assert.match(code, /\n### \w[\s\S]*\n- \*\*\w+\*\*: [^\n]*\n  - \w/, 'subheadings and a nested list');
  assert.match(answer('A rust function please'), /```rust\nuse std::collections::HashMap;/);
  assert.match(answer('Show it in TypeScript code'), /```typescript\n/);
  const table = answer('Make a table of them');
  assert.match(table, /\n\| \w+ \| Count \| \w+ \|\n\| --- \| ---: \| --- \|\n(\| \w+ \| \d+ \| [\w ]+ \|\n){3,}/);
  assert.doesNotMatch(table, /```/, 'no code when none is asked for');
  const math = answer('What is the equation?');
  assert.match(math, /\$[^$\n]+\$/, 'inline math');
  assert.match(math, /\n\$\$\n[^$]+\n\$\$/, 'display math');
  assert.match(answer('Give me a list of steps'), /\n1\. \w[^\n]*\n   - \w[^\n]*\n   - \w[^\n]*\n2\. /);
  const all = answer('A table, a python function and the equation', 600);
  assert.ok(all.indexOf('```python') < all.indexOf('| ---') && all.indexOf('| ---') < all.indexOf('$$'), 'each asked block, in order');
  assert.equal(answer('code', 7), generateTokens(seedText('sim-small', ['code']), 7).join(''));
});

test('echo tokens, seed text, prompt token count, content text', () => {
  assert.deepEqual(echoTokens('a <b>x</b>  c'), ['a', ' <b>x</b>', ' ', ' c']);
  assert.equal(echoTokens('a <b>x</b>  c').join(''), 'a <b>x</b>  c');
  assert.deepEqual(echoTokens(''), []);
  assert.equal(seedText('m', ['a', 'b']), 'm\na\nb');
  assert.equal(promptTokens(['']), 1);
  assert.equal(promptTokens(['abcd', 'e']), 2);
  assert.equal(contentText([{ type: 'text', text: 'a' }, { type: 'image_url' }, { type: 'text', text: 'b' }]), 'ab');
  assert.equal(contentText(null), '');
});

test('option grammar: model suffixes, flags, header override, errors', () => {
  assert.deepEqual(parseModel('sim-small'), { base: 'sim-small', options: {} });
  assert.deepEqual(parseModel('sim-small+tokens=64+interval=20+echo'), {
    base: 'sim-small',
    options: { tokens: 64, interval: 20, echo: true },
  });
  assert.deepEqual(parseOptionList('retry-after=3+hang=0'), { retry_after: 3, hang: false });
  assert.deepEqual(resolveOptions('m+tokens=9+delay=5', 'tokens=5 + interval=0'), {
    base: 'm',
    options: { tokens: 5, delay: 5, interval: 0 },
  });
  assert.throws(() => parseModel('m+bogus=1'), OptionError);
  assert.throws(() => parseModel('m+tokens=-1'), OptionError);
  assert.throws(() => parseModel('m+tokens'), OptionError);
  assert.throws(() => parseModel('m+echo=yes'), OptionError);
});

test('malform truncates the data payload into invalid JSON', () => {
  const bad = malform('event: ping\ndata: {"type":"ping"}\n\n');
  assert.ok(bad.startsWith('event: ping\ndata: ') && bad.endsWith('\n\n'));
  assert.throws(() => JSON.parse(bad.split('data: ')[1]));
  assert.equal(malform('data: [DONE]\n\n'), 'data: [DO\n\n');
});

test('CLI argument parsing', () => {
  assert.deepEqual(parseArgs(['--port', '0', '--host=::1', '--api-key', 'k', '--tokens', '8', '--interval-ms=0']), {
    port: 0, host: '::1', apiKey: 'k', tokens: 8, intervalMs: 0,
  });
  assert.equal(parseArgs([], { SIM_PORT: '8787', SIM_HOST: '0.0.0.0' }).port, 8787);
  assert.throws(() => parseArgs(['--nope']));
  assert.throws(() => parseArgs(['--port']));
});
