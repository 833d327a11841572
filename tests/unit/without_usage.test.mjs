// The usage filter of the pass-through relay (src/js/relay.js): a stream the gateway asked usage
// for reaches a client that did not ask exactly as a direct call would, wherever its chunks split.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withoutUsage } from '../../src/js/relay.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** `text` through the filter, cut into chunks at `cuts` (byte offsets). */
async function filter(text, cuts = []) {
  const bytes = enc.encode(text);
  const edges = [0, ...cuts, bytes.length];
  const source = new ReadableStream({
    start(c) {
      for (let i = 1; i < edges.length; i++) c.enqueue(bytes.slice(edges[i - 1], edges[i]));
      c.close();
    },
  });
  const out = [];
  for await (const chunk of source.pipeThrough(withoutUsage())) out.push(...chunk);
  return dec.decode(new Uint8Array(out));
}

const head = '"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":"fp"';
const chunk = (delta, finish = 'null', usage = true) =>
  `data: {${head},"choices":[{"index":0,"delta":${delta},"logprobs":null,"finish_reason":${finish}}]${usage ? ',"usage":null' : ''}}\n\n`;
const usageEvent = `data: {${head},"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}\n\n`;
const stream = (usage) =>
  chunk('{"role":"assistant","content":"","refusal":null}', 'null', usage) +
  chunk('{"content":"caf\\u00e9 \\"usage\\":null, \\\\"}', 'null', usage) +
  chunk('{"tool_calls":[{"index":0,"function":{"arguments":"{\\"usage\\":null}"}}]}', 'null', usage) +
  chunk('{}', '"stop"', usage) +
  (usage ? usageEvent : '') +
  'data: [DONE]\n\n';

test('the usage event and each "usage":null go; every other byte stays', async () => {
  assert.equal(await filter(stream(true)), stream(false));
});

test('the same whatever the chunk boundaries (every single cut, and byte by byte)', async () => {
  const text = stream(true);
  const length = enc.encode(text).length;
  for (let cut = 1; cut < length; cut++) assert.equal(await filter(text, [cut]), stream(false), `cut at ${cut}`);
  const everyByte = Array.from({ length: length - 1 }, (_, i) => i + 1);
  assert.equal(await filter(text, everyByte), stream(false));
});

test('what it does not know passes as it is: comments, CRLF lines, other members, a cut-off end', async () => {
  const crlf = `: keep-alive\r\n\r\ndata: {"a":1 , "usage" : null ,"b":{"usage":null}}\r\n\r\n`;
  assert.equal(await filter(crlf, [5, 30]), `: keep-alive\r\n\r\ndata: {"a":1 ,"b":{"usage":null}}\r\n\r\n`);
  const inside = 'data: {"choices":[{"delta":{"content":"x"}}],"usage":null,"obfuscation":"a\\"b"}\n\n';
  assert.equal(await filter(inside, [20]), 'data: {"choices":[{"delta":{"content":"x"}}],"obfuscation":"a\\"b"}\n\n');
  const first = 'data: {"usage":null,"choices":[]}\n\n';
  assert.equal(await filter(first), 'data: {"choices":[]}\n\n', 'a leading usage member goes with the comma after it');
  const notOurs = 'data: {"choices":[{"index":0}],"usage":{"completion_tokens":1}}\n\nevent: x\ndata: not json\n\n';
  assert.equal(await filter(notOurs), notOurs, 'usage next to choices is not the usage event');
  assert.equal(await filter('data: {"usage":null,"x":1'), 'data: {"usage":null,"x":1', 'an unfinished event');
});
