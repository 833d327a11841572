// Talks to the test run's LLM simulator: what it would answer, and what it received.
import { SIM } from './client.mjs';

/** The simulator's non-streamed answer to `messages` for an upstream model string. */
export async function simAnswer(upstreamModel, messages) {
  const res = await fetch(`${SIM}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: upstreamModel, messages }),
  });
  const body = await res.json();
  return body.choices[0].message.content;
}

/** Requests the simulator received whose messages contain `text`. */
export async function simRequests(text) {
  const res = await fetch(`${SIM}/_sim/requests?contains=${encodeURIComponent(text)}`);
  return (await res.json()).data;
}

/** Polls until `check()` returns a truthy value (or the time is up); returns it. */
export async function eventually(check, { timeoutMs = 5000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
