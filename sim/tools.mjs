// sim/tools.mjs — scripted tool calls shared by both providers: `/tool NAME {json}` lines, argument fragments, the answer after tool results.

import { echoTokens } from './text.mjs';

/** Characters of tool-call arguments per streamed delta. */
export const ARG_FRAGMENT = 8;
/** Characters of each tool result quoted in the answer after the results. */
const RESULT_QUOTE = 200;

// `/tool`, then (if anything) a space, a name and the arguments; a line missing a part is still a `/tool` line.
const TOOL_LINE = /^[ \t]*\/tool(?:[ \t]+(\S*)[ \t]*(.*?))?[ \t]*$/;

/**
 * The `/tool NAME {json}` lines of a user message, in order: `{ lines, calls }` where `lines` counts
 * every line in that syntax and `calls` keeps those whose JSON parses and whose NAME is in `offered`
 * (a Set of tool names). `raw` is the JSON exactly as written: arguments are passed on unvalidated.
 */
export function scriptedCalls(text, offered) {
  let lines = 0;
  const calls = [];
  for (const line of String(text).split(/\r?\n/)) {
    const m = TOOL_LINE.exec(line);
    if (!m) continue;
    lines++;
    const [, name = '', raw = ''] = m;
    if (!offered.has(name) || !parses(raw)) continue;
    calls.push({ name, raw });
  }
  return { lines, calls };
}

function parses(raw) {
  try {
    JSON.parse(raw);
    return true;
  } catch {
    return false;
  }
}

/**
 * A plan calling `calls` ([{ name, raw }]) with ids from `makeId(i, name)`: tokens are the argument
 * fragments of every call in order, `owner[k]` the call index of token k, `first[k]` true when
 * token k opens its call. A call with empty arguments still gets one (empty) fragment.
 */
export function callsPlan(calls, makeId) {
  const tokens = [];
  const owner = [];
  const first = [];
  calls.forEach((call, i) => {
    const raw = call.raw;
    for (let at = 0; at < Math.max(1, raw.length); at += ARG_FRAGMENT) {
      tokens.push(raw.slice(at, at + ARG_FRAGMENT));
      owner.push(i);
      first.push(at === 0);
    }
  });
  return { tokens, owner, first, calls: calls.map((c, i) => ({ ...c, id: makeId(i, c.name) })) };
}

/** The argument text of each call that got at least one token (all of them unless max_tokens cut the plan). */
export function sentArguments(plan) {
  const out = plan.calls.map(() => null);
  plan.tokens.forEach((t, k) => {
    const i = plan.owner[k];
    out[i] = (out[i] ?? '') + t;
  });
  return plan.calls.map((call, i) => ({ ...call, arguments: out[i] })).filter((c) => c.arguments !== null);
}

/** The text answer after tool results: one `Done: <first 200 characters>` line per result, as tokens. */
export function resultsPlan(results) {
  const text = results.map((r) => `Done: ${[...String(r)].slice(0, RESULT_QUOTE).join('')}`).join('\n');
  return { tokens: echoTokens(text) };
}
