// Memory in the context window: the user's relevant memories in the system message (their own
// only), and a summary of the branch's older part, made by the model when the branch outgrows
// the window, stored, extended incrementally, billed like any call and kept to its branch.
// Runs its own worker with a model whose window holds about five turns of these messages.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { api } from '../support/client.mjs';
import { PASSWORD, uniqueEmail } from '../support/accounts.mjs';
import { simRequests } from '../support/sim.mjs';
import { execSql, simVars, startWorker, TEST_VARS } from '../support/stack.mjs';

const ROUTES = JSON.parse(TEST_VARS.MODEL_ROUTES);
Object.assign(ROUTES.models, {
  // 600 tokens for the prompt: five turns of a 400-character question and a short answer.
  ctx: { provider: 'openai', upstream: 'sim-small+tokens=6+interval=1', context_tokens: 700, max_output_tokens: 100 },
  // The same, but a whole (non-streamed) answer is not JSON: every summary call fails.
  ctx_garbled: { provider: 'openai', upstream: 'sim-small+tokens=6+interval=1+garbage', context_tokens: 700, max_output_tokens: 100 },
});
const PLANS = {
  free: { requests_per_minute: 1000, tokens_per_day: 10_000_000, concurrent_streams: 4, models: ['*'] },
  pro: { requests_per_minute: 1000, tokens_per_day: 10_000_000, concurrent_streams: 4, models: ['*'] },
};
const SUMMARY_INSTRUCTION = 'You keep a running summary of a conversation';

let worker;
before(async () => {
  worker = await startWorker({ vars: simVars({ PLANS: JSON.stringify(PLANS), MODEL_ROUTES: JSON.stringify(ROUTES) }) });
});
after(() => worker?.stop());

const call = (method, path, opts = {}) => api(method, path, { base: worker.url, ...opts });
const tag = () => randomBytes(4).toString('hex');

async function register() {
  const res = await call('POST', '/api/v1/auth/register', { json: { email: uniqueEmail('ctx'), password: PASSWORD } });
  assert.equal(res.status, 201, res.text);
  return res.body.access_token;
}

async function conversation(token, model) {
  const res = await call('POST', '/api/v1/conversations', { token, json: model ? { model } : {} });
  assert.equal(res.status, 201, res.text);
  return `/api/v1/conversations/${res.body.conversation_id}`;
}

/** A 400-character question that starts with `fact`. */
const question = (fact) => `${fact}. ${'Some more words to make this message long. '.repeat(10)}`.slice(0, 400);

/** Posts a message (after `parent_id` if given); returns the stored user and assistant messages. */
async function turn(token, path, content, parent_id) {
  const res = await call('POST', `${path}/messages`, { token, json: parent_id ? { content, parent_id } : { content } });
  assert.equal(res.status, 201, res.text);
  assert.equal(res.body.assistant_message.status, 'complete');
  return res.body;
}

/** The model call that answered `content` (streamed, with it as the newest message). */
async function turnRequest(content) {
  const found = (await simRequests(content)).filter((r) => r.body.stream && r.body.messages.at(-1).content === content);
  assert.ok(found.length > 0, 'the turn reached the model');
  return found.at(-1);
}

/** The summary calls whose prompt contains `text`. */
async function summaryCalls(text) {
  return (await simRequests(text)).filter((r) => r.body.messages[0]?.content.startsWith(SUMMARY_INSTRUCTION));
}

const systemOf = (req) => (req.body.messages[0]?.role === 'system' ? req.body.messages[0].content : '');
const contents = (req) => req.body.messages.map((m) => m.content);

async function usageOf(token, model) {
  const res = await call('GET', '/api/v1/usage', { token });
  assert.equal(res.status, 200, res.text);
  const row = res.body.usage.find((r) => r.model === model);
  return { requests: row?.requests ?? 0, tokens: (row?.prompt_tokens ?? 0) + (row?.completion_tokens ?? 0), today: res.body.today.tokens_used };
}

test('an early fact reaches the model through the summary once it has left the window; the summary is billed and extended, not remade', async () => {
  const token = await register();
  const path = await conversation(token, 'ctx');
  const t = tag();
  const facts = Array.from({ length: 10 }, (_, i) => `Fact ${i + 1}: my code word number ${i + 1} is ${t}x${i + 1}`);
  const first = question(facts[0]);

  // Five turns fit: every one is sent whole, with no summary and no system message.
  for (let i = 0; i < 5; i++) {
    await turn(token, path, question(facts[i]));
    const req = await turnRequest(question(facts[i]));
    assert.equal(contents(req)[0], first, `turn ${i + 1} still starts at the first question`);
    assert.equal(systemOf(req), '');
  }
  assert.deepEqual(await summaryCalls(facts[0]), [], 'no summary while the branch fits');

  // The sixth outgrows the window: the model summarizes the older part once, non-streamed.
  await turn(token, path, question(facts[5]));
  const sixth = await turnRequest(question(facts[5]));
  assert.ok(!contents(sixth).includes(first), 'the first question left the window');
  const system = systemOf(sixth);
  assert.match(system, /<summary>\n[^]*<\/summary>/);
  const summary = system.slice(system.indexOf('<summary>'));
  assert.ok(summary.includes(facts[0]), `the first fact reaches the model through the summary: ${system}`);
  const [made, ...more] = await summaryCalls(facts[0]);
  assert.deepEqual(more, [], 'one summary call');
  assert.equal(made.body.stream, false);
  assert.ok(!made.body.messages[1].content.includes('<previous_summary>'), 'the first summary starts from nothing');
  assert.ok(made.body.messages[1].content.includes(`user: ${facts[0]}`));

  // The summary call is billed like any call: six turns and one summary on the model's usage.
  const usage = await usageOf(token, 'ctx');
  assert.equal(usage.requests, 7);
  const answers = (await call('GET', `${path}/messages`, { token })).body.data.filter((m) => m.role === 'assistant');
  const turnTokens = answers.reduce((sum, m) => sum + m.usage.prompt_tokens + m.usage.completion_tokens, 0);
  assert.ok(usage.tokens > turnTokens, `the summary's tokens are counted too (${usage.tokens} > ${turnTokens})`);
  assert.equal(usage.today, usage.tokens, 'and settled against the day');

  // The next turns reuse the stored summary: no new summary call while the rest fits.
  for (const i of [6, 7]) {
    await turn(token, path, question(facts[i]));
    const req = await turnRequest(question(facts[i]));
    assert.ok(systemOf(req).includes(facts[0]), `turn ${i + 1} still has the first fact`);
    assert.equal((await summaryCalls(facts[0])).length, 1, `turn ${i + 1} made no summary call`);
  }

  // Once more has left the window, the summary is extended: the previous summary plus only the
  // newly left-out messages.
  await turn(token, path, question(facts[8]));
  const ninth = await turnRequest(question(facts[8]));
  assert.ok(systemOf(ninth).includes(facts[0]), 'the first fact is carried through the extended summary');
  const calls = (await simRequests(SUMMARY_INSTRUCTION)).filter((r) => r.body.messages[1].content.includes(t));
  assert.equal(calls.length, 2, 'one more summary call');
  const input = calls[1].body.messages[1].content;
  assert.ok(input.startsWith('<previous_summary>\n') && input.includes(facts[0]), 'built on the previous summary');
  const transcript = input.slice(input.indexOf('<transcript>'));
  assert.ok(!transcript.includes(facts[0]) && !transcript.includes(facts[4]), 'not remade from the start');
  assert.ok(transcript.includes(facts[5]), 'the newly left-out messages');
  assert.equal((await usageOf(token, 'ctx')).requests, 11);

  const rows = await execSql(worker.persistDir, "SELECT COUNT(*) AS n FROM summaries");
  assert.ok(rows[0].results[0].n >= 2, 'the summaries are stored');
});

test('a stored memory reaches the model in a new conversation when the message shares its words; another user\'s never does', async () => {
  const t = tag();
  const mine = await register();
  const theirs = await register();
  const remember = async (token, content) => {
    const res = await call('POST', '/api/v1/memories', { token, json: { content } });
    assert.equal(res.status, 201, res.text);
  };
  await remember(mine, `My dog is called Biscuit${t}`);
  await remember(mine, `I listen to jazz${t} records`);
  await remember(theirs, `My dog is called Rex${t}`);

  const path = await conversation(mine);
  const content = `What should I feed my dog tonight? [${t}]`;
  await turn(mine, path, content);
  const req = await turnRequest(content);
  const system = systemOf(req);
  assert.match(system, /data about the user/);
  assert.ok(system.includes(`<memories>\n- My dog is called Biscuit${t}\n</memories>`), system);
  assert.ok(!system.includes(`Rex${t}`), 'another user\'s memory never reaches the model');
  assert.ok(!system.includes(`jazz${t}`), 'a memory sharing no word with the message is left out');
  assert.deepEqual(contents(req).slice(1), [content]);

  // A message sharing no word with any memory sends no memory section (and no system message).
  const other = await conversation(mine);
  const plain = `Tell me a joke about penguins [${t}]`;
  await turn(mine, other, plain);
  assert.deepEqual(contents(await turnRequest(plain)), [plain]);

  // The other user, asking the same, gets only their own.
  const theirPath = await conversation(theirs);
  const same = `What should I feed my dog tonight? [${t}] again`;
  await turn(theirs, theirPath, same);
  const theirSystem = systemOf(await turnRequest(same));
  assert.ok(theirSystem.includes(`Rex${t}`) && !theirSystem.includes(`Biscuit${t}`), theirSystem);
});

test('a branch made by regenerating an early question never gets the summary of the branch it left', async () => {
  const token = await register();
  const path = await conversation(token, 'ctx');
  const t = tag();
  const a = Array.from({ length: 6 }, (_, i) => question(`Branch A fact ${i + 1}: ${t}a${i + 1}`));
  const asked = [];
  for (const q of a) asked.push(await turn(token, path, q));
  assert.equal((await summaryCalls(`${t}a2`)).length, 1, 'branch A has its summary, which holds A2');

  // Answer the first question anew, then go on on that branch until it outgrows the window.
  const again = await call('POST', `${path}/messages/${asked[0].user_message.message_id}/regenerate`, { token });
  assert.equal(again.status, 201, again.text);
  let parent = again.body.assistant_message.message_id;
  for (let i = 2; i <= 7; i++) {
    const q = question(`Branch B fact ${i}: ${t}b${i}`);
    parent = (await turn(token, path, q, parent)).assistant_message.message_id;
    const req = await turnRequest(q);
    assert.ok(!JSON.stringify(req.body.messages).includes(`${t}a2`), `B${i} never sees branch A's later messages`);
  }
  // Branch B got a summary of its own, made from its own messages only, with the first fact.
  const last = await turnRequest(question(`Branch B fact 7: ${t}b7`));
  assert.ok(systemOf(last).includes(`${t}a1`), 'the shared first question reaches the model through B\'s summary');
  const bSummaries = await summaryCalls(`${t}b2`);
  assert.equal(bSummaries.length, 1);
  assert.ok(!bSummaries[0].body.messages[1].content.includes(`${t}a2`));
  assert.ok(!bSummaries[0].body.messages[1].content.includes('<previous_summary>'), 'A\'s summary is not B\'s previous one');
});

test('a failed summary call leaves the turn to go on without a summary, and is still recorded', async () => {
  const token = await register();
  const path = await conversation(token, 'ctx_garbled');
  const t = tag();
  const qs = Array.from({ length: 6 }, (_, i) => question(`Garbled fact ${i + 1}: ${t}g${i + 1}`));
  for (const q of qs) await turn(token, path, q);
  const sixth = await turnRequest(qs[5]);
  assert.ok(!contents(sixth).includes(qs[0]), 'the window still moved on');
  assert.ok(!systemOf(sixth).includes('<summary>'), 'no summary to send');
  assert.equal((await summaryCalls(`${t}g1`)).length, 1, 'the summary was asked for');
  const records = await execSql(worker.persistDir, "SELECT status, source FROM usage_records WHERE model = 'ctx_garbled' AND status != 'complete'");
  assert.ok(records[0].results.some((r) => r.status === 'undecodable' && r.source === 'chat'), JSON.stringify(records[0].results));
  assert.equal((await usageOf(token, 'ctx_garbled')).requests, 7);
});
