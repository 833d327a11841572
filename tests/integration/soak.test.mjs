// Load and soak, loopback only and bounded: 256 concurrent chat streams for 60 s plus
// background REST traffic against a worker of its own in bare workerd (Miniflare: wrangler
// dev's proxy answers 503 itself beyond ~200 concurrent requests). Afterwards every user message has
// an assistant answer with a final status, no response was a 5xx, and the worker's memory
// did not grow without bound. Figures go to test-artifacts/soak.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { api } from '../support/client.mjs';
import { TEST_VARS } from '../support/stack.mjs';
import { rssKib, startBareWorker } from '../support/miniflare.mjs';

const STREAMS = Number(process.env.SOAK_STREAMS || 256);
const SECONDS = Number(process.env.SOAK_SECONDS || 60);
const USERS = 32;
const TURNS_PER_CONVERSATION = 8;

test(`${STREAMS} concurrent streams for ${SECONDS} s lose nothing and never answer 5xx`, { timeout: (SECONDS + 240) * 1000 }, async (t) => {
  const worker = await startBareWorker({
      ...TEST_VARS,
      OPENAI_BASE_URL: `${process.env.SIM_URL}/v1`,
      ANTHROPIC_BASE_URL: process.env.SIM_URL,
      PASSWORD_HASH_ITERATIONS: '1000',
      UPSTREAM_FIRST_BYTE_TIMEOUT_MS: '60000',
      PLANS: JSON.stringify({ free: { requests_per_minute: 100000, tokens_per_day: 1e12, concurrent_streams: 1000, models: ['*'] } }),
  });
  t.after(() => worker.stop());
  const base = worker.url;
  const users = await Promise.all(Array.from({ length: USERS }, async (_, i) => {
    const r = await api('POST', '/api/v1/auth/register', { base, json: { email: `soak-${i}-${Date.now()}@test.example`, password: 'correct horse battery' } });
    assert.equal(r.status, 201, r.text);
    return r.body.access_token;
  }));

  const stats = { restFailed: 0, samples: [], failedRequests: 0, turns: 0, completed: 0, errorEvents: 0, status5xx: 0, otherStatus: 0, deltas: 0, rest: 0, rest5xx: 0 };
  const rss = [rssKib(worker.pids)];
  const wasm = [];
  const deadline = Date.now() + SECONDS * 1000;
  const sampler = setInterval(() => { rss.push(rssKib(worker.pids)); wasm.push(worker.wasmMemoryKib()); }, 5000);
  // A failed assertion must not leave the sampler holding the test process open.
  t.after(() => clearInterval(sampler));

  // Each streamer starts a fresh conversation every TURNS_PER_CONVERSATION turns, so every
  // turn carries a history of about the same size and the working set stays the same however
  // fast the machine is: memory growth then means a leak, not longer histories.
  async function streamer(i) {
    const token = users[i % USERS];
    let path;
    for (let turn = 0; Date.now() < deadline; turn++) {
      if (turn % TURNS_PER_CONVERSATION === 0) {
        const conv = await api('POST', '/api/v1/conversations', { base, token, json: {} }).catch((err) => {
          if (stats.samples.length < 3) stats.samples.push(`create: ${err.cause?.code ?? err.cause?.message ?? err.message}`);
          return null;
        });
        if (!conv) { stats.failedRequests++; turn--; continue; }
        if (conv.status !== 201) { stats.otherStatus++; continue; }
        path = `/api/v1/conversations/${conv.body.conversation_id}/messages`;
      }
      stats.turns++;
      const res = await fetch(base + path, {
        method: 'POST',
        headers: { accept: 'text/event-stream', 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ content: `soak turn ${stats.turns}` }),
        signal: AbortSignal.timeout(90_000),
      }).catch((err) => {
        if (stats.samples.length < 3) stats.samples.push(`fetch: ${err.cause?.code ?? err.cause?.message ?? err.message}`);
        return null;
      });
      if (!res) { stats.failedRequests++; continue; }
      if (res.status >= 500) {
        stats.status5xx++;
        if (stats.samples.length < 3) stats.samples.push(`${res.status} ${(await res.clone().text()).slice(0, 200)}`);
      }
      if (res.status !== 200) { stats.otherStatus++; await res.arrayBuffer(); continue; }
      const text = await res.text().catch(() => null);
      if (text === null) { stats.failedRequests++; continue; }
      stats.deltas += (text.match(/event: delta/g) || []).length;
      if (text.includes('event: done')) stats.completed++;
      if (text.includes('event: error')) stats.errorEvents++;
    }
  }
  async function rester(i) {
    const token = users[i % USERS];
    while (Date.now() < deadline) {
      const r = await api('GET', '/api/v1/conversations?limit=5', { base, token }).catch(() => null);
      stats.rest++;
      if (!r) stats.restFailed++;
      else if (r.status >= 500) stats.rest5xx++;
      await new Promise((res) => setTimeout(res, 50));
    }
  }
  const started = Date.now();
  await Promise.all([...Array.from({ length: STREAMS }, (_, i) => streamer(i)), ...Array.from({ length: 4 }, (_, i) => rester(i))]);
  clearInterval(sampler);
  rss.push(rssKib(worker.pids));
  wasm.push(worker.wasmMemoryKib());
  const elapsed = (Date.now() - started) / 1000;

  // Let finalization under wait_until finish, then count user messages without a final answer.
  await new Promise((r) => setTimeout(r, 3000));
  const lost = await worker.db.prepare("SELECT COUNT(*) AS n FROM messages q WHERE q.role = 'user' AND NOT EXISTS (SELECT 1 FROM messages a WHERE a.parent_id = q.message_id AND a.role = 'assistant' AND a.status IN ('complete', 'cancelled', 'error'))").all();
  const total = await worker.db.prepare("SELECT COUNT(*) AS n, SUM(role = 'assistant' AND status = 'complete') AS complete FROM messages").all();
  const figures = {
    streams: STREAMS, seconds: elapsed, ...stats, turns_per_second: +(stats.completed / elapsed).toFixed(1),
    stored_messages: total.results[0].n, stored_complete_answers: total.results[0].complete,
    user_messages_without_final_answer: lost.results[0].n,
    workerd_rss_kib: { first: rss[0], last: rss.at(-1), max: Math.max(...rss), samples: rss },
    wasm_memory_kib: { last: wasm.at(-1), max: Math.max(...wasm), samples: wasm },
  };
  writeFileSync(path.join(process.env.EDGECHAT_ARTIFACTS, 'soak.json'), JSON.stringify(figures, null, 2));
  console.log(`soak: ${JSON.stringify({ ...figures, workerd_rss_kib: { ...figures.workerd_rss_kib, samples: undefined } })}`);

  assert.equal(stats.status5xx + stats.rest5xx, 0, 'no 5xx');
  assert.equal(figures.user_messages_without_final_answer, 0, 'every user message has a finalized answer');
  assert.ok(stats.completed > STREAMS, `only ${stats.completed} turns completed`);
  assert.equal(stats.otherStatus, 0, 'no refused turns');
  // On this 2-core machine a few hundred of the ~2,500 connections are reset under full load
  // before the worker reads them (nothing of theirs is stored): reported, bounded, not hidden.
  assert.ok(stats.failedRequests <= stats.turns * 0.2, `${stats.failedRequests} of ${stats.turns} requests failed to connect`);
  // Memory: the isolate's wasm memory never shrinks, so a leak in our code shows in it. With
  // histories of a bounded length the working set is steady once the load has ramped up, so
  // it must level off: the second half's peak within 1.25x the first half's. A leak of 1 KiB
  // per turn (~3 MiB over the second half's ~3,000 turns) would break that.
  // (The workerd process's resident memory also holds in-process D1 and V8's heap, which
  // grow with the data and the load; it is reported, and bounded well under a gigabyte.)
  const half = Math.floor(wasm.length / 2);
  const [early, late] = [Math.max(...wasm.slice(0, half)), Math.max(...wasm.slice(half))];
  assert.ok(wasm[0] > 0 && late <= early * 1.25, `wasm memory ${JSON.stringify(wasm)}`);
  assert.ok(Math.max(...rss) < 1024 * 1024, `rss ${JSON.stringify(rss)}`);
});
