// sim/test/units.test.mjs — pure-function tests: text generation, option grammar, CLI args, SSE malforming.

import test from 'node:test';
import assert from 'node:assert/strict';
import { generateTokens, echoTokens, seedText, promptTokens, contentText, VOCAB } from '../text.mjs';
import { parseModel, parseOptionList, resolveOptions, OptionError } from '../options.mjs';
import { malform } from '../engine.mjs';
import { parseArgs } from '../server.mjs';

test('generateTokens is deterministic, sized, space-prefixed vocabulary words', () => {
  const a = generateTokens('sim-small\nhello', 20);
  assert.deepEqual(a, generateTokens('sim-small\nhello', 20));
  assert.equal(a.length, 20);
  assert.ok(!a[0].startsWith(' '));
  for (const t of a.slice(1)) assert.ok(t.startsWith(' ') && VOCAB.includes(t.slice(1)));
  assert.deepEqual(generateTokens('sim-small\nhello', 5), a.slice(0, 5), 'prefix-stable');
  assert.notDeepEqual(generateTokens('sim-small\nbye', 20), a);
  assert.deepEqual(generateTokens('x', 0), []);
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
