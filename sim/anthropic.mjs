// sim/anthropic.mjs — Anthropic Messages wire format: validation, errors, message objects and the SSE event sequence.
// Implements the provider interface described in openai.mjs (text answers only, no tool use).

import { contentText, stableId } from './text.mjs';

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

function stopReason(plan) {
  return plan.truncated ? 'max_tokens' : 'end_turn';
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
    content: [{ type: 'text', text: plan.tokens.join('') }],
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
  return {
    pre: [
      event('message_start', JSON.stringify(start)),
      event('content_block_start', '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'),
      event('ping', '{"type":"ping"}'),
    ],
    token: (t) =>
      event('content_block_delta', `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":${JSON.stringify(t)}}}`),
    post: [
      event('content_block_stop', '{"type":"content_block_stop","index":0}'),
      event('message_delta', JSON.stringify(delta)),
      event('message_stop', '{"type":"message_stop"}'),
    ],
  };
}
