// sim/anthropic.mjs — Anthropic Messages wire format: validation, errors, message objects, the SSE event sequence, scripted tool use.
// Implements the provider interface described in openai.mjs.

import { contentText, stableId } from './text.mjs';
import { callsPlan, resultsPlan, scriptedCalls, sentArguments } from './tools.mjs';
import { toolArguments } from './openai.mjs';

export const name = 'anthropic';
export const authMessage = 'invalid x-api-key';

export function authorized(headers, apiKey) {
  return headers['x-api-key'] === apiKey;
}

export function headers(ctx) {
  return { 'request-id': ctx.requestId };
}

const ERROR_TYPES = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

/** Anthropic error shape: { type: "error", error: { type, message }, request_id }. */
export function errorBody(status, message, ctx) {
  const type = ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
  return { type: 'error', error: { type, message }, request_id: ctx?.requestId ?? null };
}

export function validate(body) {
  if (typeof body.model !== 'string' || !body.model) return 'model: Field required';
  if (body.max_tokens === undefined) return 'max_tokens: Field required';
  if (!(Number.isInteger(body.max_tokens) && body.max_tokens >= 1)) return 'max_tokens: Input should be an integer >= 1';
  if (!Array.isArray(body.messages)) return 'messages: Field required';
  if (body.messages.length === 0) return 'messages: at least one message is required';
  if (body.system != null && typeof body.system !== 'string' && !Array.isArray(body.system)) {
    return 'system: Input should be a valid string or list of text blocks';
  }
  return null;
}

/** Prompt texts: the system prompt (if any) then each message's text. */
export function texts(body) {
  const msgs = body.messages.map((m) => contentText(m?.content));
  const system = contentText(body.system);
  return system ? [system, ...msgs] : msgs;
}

export function maxTokens(body) {
  return body.max_tokens;
}

/**
 * The answer's plan, or null for a generated text answer. A newest user message with `tool_result`
 * blocks gets a text quoting each result (`tool_loop`: the previous `tool_use` calls again); one
 * with `/tool NAME {json}` lines calls the offered tools they name, in order. A forcing
 * `tool_choice` (`any`, or `tool` with its name) always gets a call: the scripted ones it allows,
 * else one to the named (or first) tool with arguments sampled from its `input_schema`.
 */
export function plan(ctx) {
  const { body } = ctx;
  const last = body.messages.at(-1);
  if (last?.role !== 'user') return null;
  const none = body.tool_choice?.type === 'none';
  const named = body.tool_choice?.type === 'tool' ? body.tool_choice.name : null;
  const forced = body.tool_choice?.type === 'any' || named !== null;
  const tools = (Array.isArray(body.tools) ? body.tools : []).filter((t) => typeof t?.name === 'string' && t.name);
  const offered = new Set(tools.map((t) => t.name));
  const results = (Array.isArray(last.content) ? last.content : []).filter((b) => b?.type === 'tool_result');
  if (results.length && !forced) {
    const again = ctx.opts.tool_loop && !none ? previousCalls(body.messages.at(-2), offered) : [];
    if (again.length) return scripted(ctx, again);
    return resultsPlan(results.map((r) => contentText(r.content)));
  }
  if (none) return null;
  const { calls } = results.length ? { calls: [] } : scriptedCalls(contentText(last.content), offered);
  const allowed = named === null ? calls : calls.filter((c) => c.name === named);
  if (allowed.length) return scripted(ctx, allowed);
  const tool = forced ? tools.find((t) => named === null || t.name === named) : null;
  if (!tool) return null;
  return scripted(ctx, [{ name: tool.name, raw: toolArguments({ name: tool.name, parameters: tool.input_schema }, ctx.seed) }]);
}

/** The `tool_use` blocks of the assistant message that the tool results answer, if still offered. */
function previousCalls(message, offered) {
  if (message?.role !== 'assistant' || !Array.isArray(message.content)) return [];
  return message.content
    .filter((b) => b?.type === 'tool_use' && offered.has(b.name))
    .map((b) => ({ name: b.name, raw: JSON.stringify(b.input ?? {}) }));
}

function scripted(ctx, calls) {
  return callsPlan(calls, (i, name) => stableId('toolu_01', `${ctx.requestId}\n${i}\n${name}`, 22));
}

/** A tool_use block's input: the arguments as sent, or {} when max_tokens cut them short. */
function toolInput(text) {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

function stopReason(plan) {
  if (plan.truncated) return 'max_tokens';
  return plan.calls ? 'tool_use' : 'end_turn';
}

function messageId(ctx) {
  return stableId('msg_01', ctx.requestId, 22);
}

function usage(input, output) {
  return { input_tokens: input, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: output };
}

/** Non-stream `message` object. */
export function complete(ctx, plan) {
  const answer = {
    id: messageId(ctx),
    type: 'message',
    role: 'assistant',
    model: ctx.base,
    content: plan.calls
      ? sentArguments(plan).map((c) => ({ type: 'tool_use', id: c.id, name: c.name, input: toolInput(c.arguments) }))
      : [{ type: 'text', text: plan.tokens.join('') }],
    stop_reason: stopReason(plan),
    stop_sequence: null,
    usage: usage(ctx.promptTokens, plan.tokens.length),
  };
  if (ctx.opts.no_usage) delete answer.usage;
  return answer;
}

const event = (type, data) => `event: ${type}\ndata: ${data}\n\n`;

/** message_start, content_block_start, ping, content_block_delta*, content_block_stop, message_delta, message_stop. */
export function frames(ctx, plan) {
  const start = {
    type: 'message_start',
    message: {
      id: messageId(ctx),
      type: 'message',
      role: 'assistant',
      model: ctx.base,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: usage(ctx.promptTokens, 1),
    },
  };
  const delta = {
    type: 'message_delta',
    delta: { stop_reason: stopReason(plan), stop_sequence: null },
    usage: { output_tokens: plan.tokens.length },
  };
  if (ctx.opts.no_usage) {
    delete start.message.usage;
    delete delta.usage;
  }
  const stop = (i) => event('content_block_stop', `{"type":"content_block_stop","index":${i}}`);
  const post = [
    stop(plan.calls ? (plan.owner[plan.tokens.length - 1] ?? 0) : 0),
    event('message_delta', JSON.stringify(delta)),
    event('message_stop', '{"type":"message_stop"}'),
  ];
  if (plan.calls) {
    const open = (i) => {
      const { id, name } = plan.calls[i];
      const block = { type: 'content_block_start', index: i, content_block: { type: 'tool_use', id, name, input: {} } };
      return event('content_block_start', JSON.stringify(block));
    };
    const token = (t, k) => {
      const i = plan.owner[k];
      const piece = event('content_block_delta', JSON.stringify({ type: 'content_block_delta', index: i, delta: { type: 'input_json_delta', partial_json: t } }));
      return plan.first[k] && i > 0 ? [stop(i - 1), open(i), piece] : piece;
    };
    return { pre: [event('message_start', JSON.stringify(start)), open(0), event('ping', '{"type":"ping"}')], token, post };
  }
  return {
    pre: [
      event('message_start', JSON.stringify(start)),
      event('content_block_start', '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'),
      event('ping', '{"type":"ping"}'),
    ],
    token: (t) =>
      event('content_block_delta', `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":${JSON.stringify(t)}}}`),
    post,
  };
}
