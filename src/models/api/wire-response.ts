import type { ModelResponse } from '../../core/contracts/models.ts';
import type { ToolCall } from '../../core/messages.ts';

/*
 * The gateway's answers in OpenAI's chat-completions shapes: a whole `chat.completion`, or the
 * `chat.completion.chunk` objects of a stream. The requests' side is `wire.ts`.
 */

/** OpenAI's finish reasons; `error` has none of its own. */
function finishReason(reason: ModelResponse['finishReason']): string {
  return reason === 'error' ? 'stop' : reason;
}

/** The tool calls of a response in the wire shape. */
function wireToolCalls(calls: readonly ToolCall[]) {
  return calls.map((call) => ({
    id: call.id,
    type: 'function' as const,
    function: { name: call.name, arguments: call.arguments },
  }));
}

/** Usage in the wire shape. */
export function wireUsage(response: ModelResponse) {
  const { inputTokens, outputTokens } = response.usage;
  return {
    prompt_tokens: inputTokens,
    completion_tokens: outputTokens,
    total_tokens: inputTokens + outputTokens,
  };
}

/** The `clawmesh` object of a completion. */
export interface GatewayFields {
  cached: boolean;
  tier?: string;
  route?: ModelResponse['route'];
  deployment?: string;
  fallback_used?: boolean;
  attempts?: number;
  cost_usd?: number;
  latency_ms?: number;
}

/** The assistant message of a completion in the wire shape. */
function wireMessage(content: string, calls: readonly ToolCall[]) {
  const message: {
    role: 'assistant';
    content: string | null;
    refusal: null;
    tool_calls?: ReturnType<typeof wireToolCalls>;
  } = { role: 'assistant', content: content === '' && calls.length > 0 ? null : content, refusal: null };
  if (calls.length) message.tool_calls = wireToolCalls(calls);
  return message;
}

/** What the gateway adds to a completion, under `clawmesh` (OpenAI clients ignore unknown fields). */
export function gatewayFields(response: ModelResponse): GatewayFields {
  // Assigned in the wire order; no conditional spreads (each one clones an object).
  const fields: GatewayFields = { cached: response.cached ?? false };
  if (response.tier !== undefined) fields.tier = response.tier;
  if (response.route !== undefined) fields.route = response.route;
  if (response.deployment !== undefined) fields.deployment = response.deployment;
  fields.fallback_used = response.fallbackUsed ?? false;
  if (response.attempts !== undefined) fields.attempts = response.attempts;
  if (response.costUsd !== undefined) fields.cost_usd = response.costUsd;
  fields.latency_ms = response.latencyMs;
  return fields;
}

/** A whole `chat.completion` object. */
export function toChatCompletion(id: string, created: number, response: ModelResponse) {
  const calls = response.toolCalls;
  return {
    id,
    object: 'chat.completion',
    created,
    model: response.model,
    choices: [
      {
        index: 0,
        message: wireMessage(response.content, calls),
        logprobs: null,
        finish_reason: finishReason(response.finishReason),
      },
    ],
    usage: wireUsage(response),
    system_fingerprint: null,
    clawmesh: gatewayFields(response),
  };
}

/** The `chat.completion.chunk` objects of a stream. */
export function chunkOf(
  id: string,
  created: number,
  model: string,
  delta: Record<string, unknown>,
  finish: string | null,
  usage?: boolean,
) {
  const chunk: Record<string, unknown> = {
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  };
  if (usage) chunk.usage = null;
  return chunk;
}

/** The last chunks of a stream: tool calls (when any), the finish reason, then usage when asked. */
export function closingChunks(
  id: string,
  created: number,
  response: ModelResponse,
  includeUsage: boolean,
): unknown[] {
  const chunks: unknown[] = [];
  const calls = response.toolCalls;
  if (calls.length) {
    const toolCalls = wireToolCalls(calls).map((call, index) => ({ index, ...call }));
    chunks.push(chunkOf(id, created, response.model, { tool_calls: toolCalls }, null, includeUsage));
  }
  const last = chunkOf(id, created, response.model, {}, finishReason(response.finishReason), includeUsage);
  last.clawmesh = gatewayFields(response);
  chunks.push(last);
  if (includeUsage) {
    chunks.push({
      id,
      object: 'chat.completion.chunk',
      created,
      model: response.model,
      choices: [],
      usage: wireUsage(response),
    });
  }
  return chunks;
}
