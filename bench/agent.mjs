// bench/agent.mjs — the agent loop's added latency: plain chat turns against turns that call a tool, interleaved on one worker and one simulator.
import http from 'node:http';
import { api, summarize } from './load.mjs';
import { streamOnce } from './sse-client.mjs';
import * as T from './targets.mjs';
import { mulberry32 } from '../sim/text.mjs';

/**
 * Turns per kind (after `warmupRounds` unmeasured rounds of each), and the pause after each
 * turn so that one turn's trailing work (waitUntil) does not land in the next one's time.
 */
export const AGENT = { rounds: 50, warmupRounds: 3, pauseMs: 25, seed: 24 };

const QUESTION = 'Tell me something about rivers.';
const ADD_TASK = '/tool add_task {"title":"bench"}';

/**
 * The kinds of turn, all on the same simulator model (8 tokens, interval 0: no simulated
 * generation time) and each in a fresh conversation with a title (no title call): `tools`
 * is the conversation's setting, `toolCalls` the tool steps the turn must make, `modelCalls`
 * its model calls. The looping kind's model calls the tool again after each result (the
 * simulator's `tool_loop`) until the worker's last allowed step (MAX_TOOL_STEPS), sent with
 * tool choice none, answers in text.
 */
export const KINDS = [
  { id: 'plain', label: 'plain turn, no tools offered (`tools: []`)', tools: [], content: QUESTION, model: 'bench-fast', toolCalls: 0, modelCalls: 1 },
  { id: 'offered', label: 'plain turn, `add_task` offered, not called', tools: ['add_task'], content: QUESTION, model: 'bench-fast', toolCalls: 0, modelCalls: 1 },
  { id: 'oneTool', label: 'one tool step (`add_task`), then the answer', tools: ['add_task'], content: `${QUESTION}\n${ADD_TASK}`, model: 'bench-fast', toolCalls: 1, modelCalls: 2 },
  {
    id: 'toolLoop', label: `${T.MAX_TOOL_STEPS - 1} tool steps (\`add_task\` each), then the answer`, tools: ['add_task'], content: `${QUESTION}\n${ADD_TASK}`,
    model: 'bench-tool-loop', toolCalls: T.MAX_TOOL_STEPS - 1, modelCalls: T.MAX_TOOL_STEPS,
  },
];

function shuffled(items, random) {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * What is wrong with one turn's stream for its kind, or null: it must end with `done`, carry
 * one `tool_result` per expected tool call, and store the steps (one per model call, every
 * call run and ok) in the assistant message.
 */
export function turnProblem(kind, r) {
  if (r.error) return r.error;
  if (!r.done) return 'no done event';
  const results = r.eventsAt.tool_result?.length ?? 0;
  if (results !== kind.toolCalls) return `${results} tool_result events, expected ${kind.toolCalls}`;
  let message;
  try { message = JSON.parse(r.finalData).assistant_message; } catch { return 'unparseable done event'; }
  const steps = message?.steps ?? [];
  const expectedSteps = kind.toolCalls ? kind.modelCalls : 0;
  if (steps.length !== expectedSteps) return `${steps.length} steps stored, expected ${expectedSteps}`;
  const calls = steps.flatMap((s) => s.tool_calls ?? []);
  if (calls.length !== kind.toolCalls || calls.some((c) => c.ok !== true)) return `tool calls stored: ${JSON.stringify(calls.map((c) => [c.name, c.ok]))}`;
  return null;
}

/**
 * Each kind's turns: `rounds` rounds, each running every kind once in a shuffled order (so
 * that drift and each turn's predecessor hit every kind alike), one keep-alive connection,
 * `Accept: text/event-stream`. Per turn: the arrival of its first `tool_call`, every
 * `tool_result` and `done`, measured from the request; and the worker's CPU from the
 * request to the end of the pause after it. `log` reports progress.
 */
export async function measureAgentTurns(target, token, { rounds = AGENT.rounds, warmupRounds = AGENT.warmupRounds, pauseMs = AGENT.pauseMs, seed = AGENT.seed, log = () => {} } = {}) {
  const total = rounds + warmupRounds;
  const conversations = {};
  for (const kind of KINDS) {
    conversations[kind.id] = [];
    for (let i = 0; i < total; i++) {
      const c = await api(target.url, 'POST', '/api/v1/conversations', { token, json: { title: `bench agent ${kind.id} ${i}`, tools: kind.tools } });
      if (c.status !== 201) throw new Error(`create conversation failed: HTTP ${c.status} ${c.text.slice(0, 200)}`);
      conversations[kind.id].push(c.json.conversation_id);
    }
  }
  const pids = target.pids();
  // Seeded, so that a run's order of turns can be repeated.
  const random = mulberry32(seed);
  const samples = Object.fromEntries(KINDS.map((k) => [k.id, { done: [], toolCall: [], toolResult: [], lastToolResult: [], stepGap: [], cpu: [], errors: 0, firstError: null }]));
  const pairs = KINDS.map(() => []); // per round, [kind's done − plain's done]
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const started = performance.now();
  try {
    for (let round = 0; round < total; round++) {
      const measured = round >= warmupRounds;
      const doneThisRound = {};
      for (const kind of shuffled(KINDS, random)) {
        const id = conversations[kind.id][round];
        const cpuBefore = pids.length ? T.cpuMs(pids) : null;
        const r = await streamOnce(agent, target.url, {
          path: `/api/v1/conversations/${id}/messages`,
          headers: { authorization: `Bearer ${token}` },
          body: { content: kind.content, model: kind.model },
          kind: 'edgechat',
          keepFinal: true,
          timeoutMs: 20_000,
        });
        await new Promise((res) => setTimeout(res, pauseMs));
        if (!measured) continue;
        const s = samples[kind.id];
        const problem = turnProblem(kind, r);
        if (problem) { s.errors++; s.firstError ??= T.scrub(problem).slice(0, 200); continue; }
        const at = r.eventsAt;
        s.done.push(at.done[0]);
        doneThisRound[kind.id] = at.done[0];
        if (cpuBefore !== null) s.cpu.push(T.cpuMs(pids) - cpuBefore);
        if (kind.toolCalls) {
          s.toolCall.push(at.tool_call[0]);
          s.toolResult.push(at.tool_result[0]);
          s.lastToolResult.push(at.tool_result.at(-1));
          for (let k = 1; k < at.tool_result.length; k++) s.stepGap.push(at.tool_result[k] - at.tool_result[k - 1]);
        }
      }
      if (measured && doneThisRound.plain !== undefined) {
        KINDS.forEach((k, i) => { if (doneThisRound[k.id] !== undefined) pairs[i].push(doneThisRound[k.id] - doneThisRound.plain); });
      }
      if (round === warmupRounds - 1) log(`  agent turns: ${warmupRounds} warm-up rounds done`);
    }
  } finally {
    agent.destroy();
  }
  const kinds = {};
  KINDS.forEach((kind, i) => {
    const s = samples[kind.id];
    kinds[kind.id] = {
      label: kind.label,
      toolCalls: kind.toolCalls,
      modelCalls: kind.modelCalls,
      turns: s.done.length,
      errors: s.errors,
      firstError: s.firstError,
      done: summarize(s.done),
      toolCall: kind.toolCalls ? summarize(s.toolCall) : null,
      toolResult: kind.toolCalls ? summarize(s.toolResult) : null,
      lastToolResult: kind.toolCalls > 1 ? summarize(s.lastToolResult) : null,
      stepGap: kind.toolCalls > 1 ? summarize(s.stepGap) : null,
      // CPU readings are clock ticks (10 ms): only their mean over many turns means anything.
      cpuPerTurnMs: s.cpu.length ? summarize(s.cpu).mean : null,
      pairedAbovePlain: summarize(pairs[i]),
    };
  });
  return { rounds, warmupRounds, pauseMs, seed, maxToolSteps: T.MAX_TOOL_STEPS, upstream: T.UPSTREAM.fast, seconds: (performance.now() - started) / 1000, kinds };
}
