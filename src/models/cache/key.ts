import { createHash } from 'node:crypto';
import type { ModelRequest } from '../../core/contracts/models.ts';
import type { ContentPart, ToolSpec } from '../../core/messages.ts';

/**
 * Whether a request may be answered from the cache: with no temperature (the provider's
 * default) or temperature 0 always; above 0 only when configured, since such answers vary by
 * design.
 */
export function isCacheable(
  request: Pick<ModelRequest, 'temperature'>,
  cacheNonZeroTemperature: boolean,
): boolean {
  return cacheNonZeroTemperature || request.temperature === undefined || request.temperature === 0;
}

/**
 * The cache key of a request: a SHA-256 over the target it was routed to (a tier or an exact
 * model) and the normalized request — messages (role, content, tool calls, tool call id, name,
 * and their text and image parts), tools, temperature, max tokens, top p, seed, penalties, tool
 * choice, parallel tool calls, stop sequences, response format, reasoning effort, verbosity and
 * logit bias, each in a fixed order so that equal requests hash equally
 * whatever the order of their keys.
 */
export function cacheKey(target: string, request: ModelRequest): string {
  const hash = createHash('sha256');
  hash.update(target);
  hash.update('\u0000');
  for (const message of request.messages) {
    hash.update(
      JSON.stringify([
        message.role,
        message.content,
        message.toolCalls?.map((call) => [call.id, call.name, call.arguments]) ?? null,
        message.toolCallId ?? null,
        message.name ?? null,
        message.parts?.map(partText) ?? null,
      ]),
    );
    hash.update('\u0001');
  }
  hash.update(
    JSON.stringify([
      request.tools?.map(toolText) ?? null,
      request.temperature ?? null,
      request.maxTokens ?? null,
      request.topP ?? null,
      request.seed ?? null,
      request.frequencyPenalty ?? null,
      request.presencePenalty ?? null,
      request.toolChoice ?? null,
      request.parallelToolCalls ?? null,
      request.stop ?? null,
      request.responseFormat ? canonical(request.responseFormat) : null,
      request.reasoningEffort ?? null,
      request.verbosity ?? null,
      request.logitBias ? canonical(request.logitBias) : null,
    ]),
  );
  return hash.digest('base64url');
}

/** A content part as a fixed-order array: an image's URL and detail, or a text. */
function partText(part: ContentPart): unknown[] {
  return part.type === 'image' ? [part.type, part.url, part.detail ?? null] : [part.type, part.text];
}

/** Tool specs are usually the same objects call after call: their canonical text is kept. */
const toolTexts = new WeakMap<object, string>();

function toolText(tool: ToolSpec): string {
  let text = toolTexts.get(tool);
  if (text === undefined) {
    text = JSON.stringify([tool.name, tool.description, canonical(tool.parameters)]);
    toolTexts.set(tool, text);
  }
  return text;
}

/** A JSON value with object keys sorted, so `{a,b}` and `{b,a}` hash the same. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = canonical((value as Record<string, unknown>)[key]);
  return out;
}
