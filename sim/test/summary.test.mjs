// sim/test/summary.test.mjs — summary requests: recognised by edgechat's instruction, answered with the previous summary and the user's lines, for both providers.

import test from 'node:test';
import assert from 'node:assert/strict';
import { startSim, postJson } from '../testkit.mjs';
import { generateTokens, seedText } from '../text.mjs';
import { SUMMARY_MARKER, summaryAnswer } from '../summary.mjs';

const T = { timeout: 5000 };
const INSTRUCTION = `${SUMMARY_MARKER} whose older messages no longer fit. Merge ... at most 90 words.`;
const INPUT =
  '<previous_summary>\nMy cat is called Miso.\nI live in Lyon.\n</previous_summary>\n\n' +
  `<transcript>\nuser: I am allergic to peanuts.\nassistant: Noted, no peanuts.\nuser: ${'long '.repeat(60)}\n</transcript>`;
const EXPECTED = `My cat is called Miso.\nI live in Lyon.\nI am allergic to peanuts.\n${'long '.repeat(40)}`;

test('a summary request is answered with the previous summary, then each user line cut to 200 characters', () => {
  assert.equal(summaryAnswer([INSTRUCTION, INPUT]), EXPECTED);
  assert.equal(summaryAnswer([INSTRUCTION, '<transcript>\nuser: hi\n</transcript>']), 'hi');
  assert.equal(summaryAnswer([INSTRUCTION, '<transcript>\nassistant: hi\n</transcript>']), 'Nothing to summarize.');
  // Only a prompt that starts with the instruction is a summary request.
  assert.equal(summaryAnswer(['Be brief.', INPUT]), null);
  assert.equal(summaryAnswer([INPUT]), null);
  assert.equal(summaryAnswer([]), null);
});

test('both providers answer a summary request with the summary, and max_tokens cuts its words', T, async () => {
  const { url, close } = await startSim();
  try {
    const openai = await postJson(`${url}/v1/chat/completions`, {
      model: 'sim-small',
      messages: [{ role: 'system', content: INSTRUCTION }, { role: 'user', content: INPUT }],
    });
    const body = await openai.json();
    assert.equal(body.choices[0].message.content, EXPECTED);
    assert.equal(body.choices[0].finish_reason, 'stop');
    assert.equal(body.usage.completion_tokens, EXPECTED.split(/(?= )/).length);

    const anthropic = await postJson(`${url}/v1/messages`, {
      model: 'sim-claude',
      max_tokens: 5,
      system: INSTRUCTION,
      messages: [{ role: 'user', content: INPUT }],
    });
    const message = await anthropic.json();
    assert.equal(message.content[0].text, 'My cat is called Miso.\nI');
    assert.equal(message.stop_reason, 'max_tokens');

    // Any other request is answered as before.
    const plain = await postJson(`${url}/v1/chat/completions`, { model: 'sim-small', messages: [{ role: 'user', content: INPUT }] });
    assert.equal((await plain.json()).choices[0].message.content, generateTokens(seedText('sim-small', [INPUT]), 32).join(''));
  } finally {
    await close();
  }
});
