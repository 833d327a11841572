// sim/openai.mjs — OpenAI Chat Completions wire format: validation, errors, completion objects, chunk stream, tool calls.
//
// Provider interface used by engine.mjs: authorized, authMessage, headers, errorBody, validate, texts,
// maxTokens, plan (optional), complete, frames ({ pre: string[], token(tok, k): string | string[], post: string[] }).

import { contentText, rngFor, stableId, VOCAB } from './text.mjs';
import { ARG_FRAGMENT, callsPlan, resultsPlan, scriptedCalls, sentArguments } from './tools.mjs';

const FINGERPRINT = 'fp_edgechat_sim';

export const name = 'openai';
export const authMessage = 'Incorrect API key provided. You can find your API key in your account settings.';

export function authorized(headers, apiKey) {
  return headers.authorization === `Bearer ${apiKey}`;
}

export function headers(ctx) {
  return { 'x-request-id': ctx.requestId };
}

/** OpenAI error shape: { error: { message, type, param, code } }. */
export function errorBody(status, message) {
  const [type, code] = ERROR_TYPES[status] ?? (status >= 500 ? ['server_error', null] : ['invalid_request_error', null]);
  return { error: { message, type, param: null, code } };
}

const ERROR_TYPES = {
  401: ['invalid_request_error', 'invalid_api_key'],
  404: ['invalid_request_error', 'unknown_url'],
  429: ['requests', 'rate_limit_exceeded'],
};

export function validate(body) {
  if (typeof body.model !== 'string' || !body.model) return 'you must provide a model parameter';
  if (!Array.isArray(body.messages) || body.messages.length === 0) return "Missing required parameter: 'messages'.";
  for (const key of ['max_tokens', 'max_completion_tokens']) {
    const v = body[key];
    if (v != null && !(Number.isInteger(v) && v >= 1)) return `Invalid '${key}': expected an integer >= 1.`;
  }
  if (body.tools != null && !Array.isArray(body.tools)) return "Invalid 'tools': expected an array.";
  const top = body.top_logprobs;
  if (top != null && !(Number.isInteger(top) && top >= 0 && top <= 20)) {
    return "Invalid 'top_logprobs': expected an integer between 0 and 20.";
  }
  if (top != null && body.logprobs !== true) return "'logprobs' must be true when 'top_logprobs' is set.";
  return null;
}

export function texts(body) {
  return body.messages.map((m) => contentText(m?.content));
}

export function maxTokens(body) {
  return body.max_completion_tokens ?? body.max_tokens ?? undefined;
}

/**
 * The answer's plan, or null for a generated text answer. Scripted first: `/tool NAME {json}` lines
 * in a newest user message call the offered tools they name (none usable: text); after tool
 * results, a text quoting them (`tool_loop`: the same calls again) unless tool_choice forces a
 * call. Otherwise a call to a sampled tool when tools are offered (arguments streamed as fragments).
 */
export function plan(ctx) {
  const { body } = ctx;
  const choice = body.tool_choice;
  const forced = choice === 'required' || (choice !== null && typeof choice === 'object');
  const offered = new Set(offeredFunctions(body).map((f) => f.name));
  const messages = body.messages;
  let first = messages.length;
  while (first > 0 && messages[first - 1]?.role === 'tool') first--;
  if (first < messages.length && !forced) {
    const again = ctx.opts.tool_loop && choice !== 'none' ? previousCalls(messages[first - 1], offered) : [];
    if (again.length) return scripted(ctx, again);
    return resultsPlan(messages.slice(first).map((m) => contentText(m.content)));
  }
  if (first === messages.length && messages.at(-1)?.role === 'user' && choice !== 'none') {
    const { lines, calls } = scriptedCalls(contentText(messages.at(-1).content), offered);
    if (calls.length) return scripted(ctx, calls);
    if (lines) return null;
  }
  return sampledPlan(ctx) ?? jsonPlan(ctx);
}

/**
 * JSON mode: with `response_format` `json_schema` the text answer is JSON with one deterministic
 * value per property of its schema (`json_object`: `{"answer": ...}`), in 8-character pieces.
 */
function jsonPlan(ctx) {
  const format = ctx.body.response_format;
  if (format?.type !== 'json_schema' && format?.type !== 'json_object') return null;
  const schema =
    format.type === 'json_schema' ? format.json_schema?.schema : { properties: { answer: { type: 'string' } } };
  const text = JSON.stringify(sampleObject(schema, rngFor(`${ctx.seed}\njson`), 0));
  const tokens = [];
  for (let i = 0; i < text.length; i += ARG_FRAGMENT) tokens.push(text.slice(i, i + ARG_FRAGMENT));
  return { tokens };
}

/** The calls of the assistant message that the trailing tool results answer, if still offered. */
function previousCalls(message, offered) {
  if (message?.role !== 'assistant' || !Array.isArray(message.tool_calls)) return [];
  return message.tool_calls
    .map((c) => ({ name: c?.function?.name, raw: String(c?.function?.arguments ?? '') }))
    .filter((c) => offered.has(c.name));
}

function scripted(ctx, calls) {
  return callsPlan(calls, (i, name) => stableId('call_', `${ctx.requestId}\n${i}\n${name}`));
}

function offeredFunctions(body) {
  return (body.tools ?? []).filter((t) => t?.type === 'function' && t.function?.name).map((t) => t.function);
}

function sampledPlan(ctx) {
  const fn = pickTool(ctx.body);
  if (!fn) return null;
  const args = toolArguments(fn, ctx.seed);
  const tokens = [];
  for (let i = 0; i < args.length; i += ARG_FRAGMENT) tokens.push(args.slice(i, i + ARG_FRAGMENT));
  return { tokens, tool: { id: stableId('call_', `${ctx.seed}\n${fn.name}`), name: fn.name } };
}

/**
 * The function to call: none if no tools or tool_choice "none" or an explicit "auto" (the model
 * then decides, and without a `/tool` line it answers in text, as an agent's model does to a
 * plain question); the named one for { type: "function", function: { name } }; otherwise the
 * first. With tool_choice unset and a tool result as the last message, answer in text instead,
 * so agent loops terminate.
 */
function pickTool(body) {
  const fns = offeredFunctions(body);
  const choice = body.tool_choice;
  if (fns.length === 0 || choice === 'none' || choice === 'auto') return null;
  if (choice && typeof choice === 'object') return fns.find((f) => f.name === choice.function?.name) ?? fns[0];
  if (choice !== 'required' && body.messages.at(-1)?.role === 'tool') return null;
  return fns[0];
}

/** Deterministic JSON arguments: one value per property of the function's parameters schema. */
export function toolArguments(fn, seed) {
  const rng = rngFor(`${seed}\n${fn.name}`);
  return JSON.stringify(sampleObject(fn.parameters, rng, 0));
}

function sampleObject(schema, rng, depth) {
  const out = {};
  const props = schema?.properties;
  if (props && typeof props === 'object' && depth < 4) {
    for (const [key, sub] of Object.entries(props)) out[key] = sampleValue(sub, rng, depth + 1);
  }
  return out;
}

function sampleValue(schema, rng, depth) {
  const pick = (list) => list[Math.floor(rng() * list.length)];
  if (Array.isArray(schema?.enum) && schema.enum.length) return pick(schema.enum);
  const type = Array.isArray(schema?.type) ? schema.type[0] : schema?.type;
  switch (type) {
    case 'integer': return Math.floor(rng() * 100);
    case 'number': return Math.round(rng() * 10000) / 100;
    case 'boolean': return rng() < 0.5;
    case 'null': return null;
    case 'array': return depth < 4 ? [sampleValue(schema.items, rng, depth + 1)] : [];
    case 'object': return sampleObject(schema, rng, depth);
    default: return `${pick(VOCAB)} ${pick(VOCAB)}`;
  }
}

function finishReason(plan) {
  if (plan.truncated) return 'length';
  return plan.tool || plan.calls ? 'tool_calls' : 'stop';
}

function usage(ctx, plan) {
  const completion = plan.tokens.length;
  return {
    prompt_tokens: ctx.promptTokens,
    completion_tokens: completion,
    total_tokens: ctx.promptTokens + completion,
    prompt_tokens_details: { cached_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0 },
  };
}

function completionId(ctx) {
  return stableId('chatcmpl-', ctx.requestId, 29);
}

/**
 * The `logprobs` of a choice when the request has `logprobs: true` (text answers only), else
 * null: per token its log probability, UTF-8 bytes and `top_logprobs` alternatives, made up but
 * deterministic. Streamed, it makes every chunk several times larger, as the real API does.
 */
function tokenLogprobs(body, tokens, from) {
  if (body.logprobs !== true) return null;
  const top = body.top_logprobs ?? 0;
  const entry = (token, k, j) => ({
    token,
    logprob: -((k % 7) + j + 1) / 8,
    bytes: [...encoder.encode(token)],
  });
  const content = tokens.map((token, i) => {
    const k = from + i;
    const alternatives = [];
    for (let j = 0; j < top; j++) alternatives.push(entry(j === 0 ? token : ` ${VOCAB[(k * 31 + j) % VOCAB.length]}`, k, j));
    return { ...entry(token, k, 0), top_logprobs: alternatives };
  });
  return { content, refusal: null };
}

const encoder = new TextEncoder();

/** Non-stream `chat.completion` object. */
export function complete(ctx, plan) {
  const text = plan.tokens.join('');
  const message = plan.calls
    ? {
        role: 'assistant',
        content: null,
        tool_calls: sentArguments(plan).map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })),
        refusal: null,
      }
    : plan.tool
    ? {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: plan.tool.id, type: 'function', function: { name: plan.tool.name, arguments: text } }],
        refusal: null,
      }
    : { role: 'assistant', content: text, refusal: null };
  const answer = {
    id: completionId(ctx),
    object: 'chat.completion',
    created: ctx.created,
    model: ctx.base,
    choices: [
      { index: 0, message, logprobs: plan.tool || plan.calls ? null : tokenLogprobs(ctx.body, plan.tokens, 0), finish_reason: finishReason(plan) },
    ],
    usage: usage(ctx, plan),
    system_fingerprint: FINGERPRINT,
  };
  if (ctx.opts.no_usage) delete answer.usage;
  return answer;
}

/** `data: {chat.completion.chunk}` events, built from string templates (cheap per token). */
export function frames(ctx, plan) {
  const includeUsage = ctx.body.stream_options?.include_usage === true;
  const head =
    `data: {"id":"${completionId(ctx)}","object":"chat.completion.chunk","created":${ctx.created},` +
    `"model":${JSON.stringify(ctx.base)},"system_fingerprint":"${FINGERPRINT}","choices":[`;
  const tail = includeUsage ? '],"usage":null}\n\n' : ']}\n\n';
  const chunk = (delta, finish = 'null', logprobs = 'null') =>
    `${head}{"index":0,"delta":${delta},"logprobs":${logprobs},"finish_reason":${finish}}${tail}`;

  const post = [chunk('{}', `"${finishReason(plan)}"`)];
  if (includeUsage && !ctx.opts.no_usage) post.push(`${head}],"usage":${JSON.stringify(usage(ctx, plan))}}\n\n`);
  post.push('data: [DONE]\n\n');
  if (plan.calls) return { pre: [chunk(callHeader(plan, 0, { role: 'assistant', content: null }, { refusal: null }))], token: callToken(plan, chunk), post };

  const { tool } = plan;
  const first = tool
    ? JSON.stringify({
        role: 'assistant',
        content: null,
        tool_calls: [{ index: 0, id: tool.id, type: 'function', function: { name: tool.name, arguments: '' } }],
        refusal: null,
      })
    : '{"role":"assistant","content":"","refusal":null}';
  const token = tool
    ? (t) => chunk(`{"tool_calls":[{"index":0,"function":{"arguments":${JSON.stringify(t)}}}]}`)
    : ctx.body.logprobs === true
      ? (t, k) => chunk(`{"content":${JSON.stringify(t)}}`, 'null', JSON.stringify(tokenLogprobs(ctx.body, [t], k)))
      : (t) => chunk(`{"content":${JSON.stringify(t)}}`);

  return { pre: [chunk(first)], token, post };
}

/** The delta opening call `i` of a scripted plan (id, name, empty arguments), between `before` and `after` members. */
function callHeader(plan, i, before = {}, after = {}) {
  const { id, name } = plan.calls[i];
  return JSON.stringify({ ...before, tool_calls: [{ index: i, id, type: 'function', function: { name, arguments: '' } }], ...after });
}

/** Argument fragment k of a scripted plan; the first fragment of a later call comes after that call's header chunk. */
function callToken(plan, chunk) {
  return (t, k) => {
    const i = plan.owner[k];
    const fragment = chunk(`{"tool_calls":[{"index":${i},"function":{"arguments":${JSON.stringify(t)}}}]}`);
    return plan.first[k] && i > 0 ? [chunk(callHeader(plan, i)), fragment] : fragment;
  };
}
