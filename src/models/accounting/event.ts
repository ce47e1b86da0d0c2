import type { EventTopics } from '../../bus/events.ts';
import type { CallContext } from '../../core/context.ts';
import type { ModelResponse } from '../../core/contracts/models.ts';
import { ClawmeshError } from '../../core/errors.ts';

/**
 * The data of a `model.completed` event for a response of the Model Gateway: tokens, latency,
 * cache hit, fallback, the tier and route (how and why the model was chosen), the deployment,
 * attempts and cost. The agent loop and the OpenAI-compatible API publish it, each once per call.
 */
export function modelCompletedData(
  response: ModelResponse,
  ctx: CallContext,
  source: 'conversation' | 'api',
): EventTopics['model.completed'] {
  // Built by assignment: this runs for every model call, and a chain of conditional spreads
  // allocates an object per field.
  const data: EventTopics['model.completed'] = {
    model: response.model,
    inputTokens: response.usage.inputTokens,
    outputTokens: response.usage.outputTokens,
    latencyMs: response.latencyMs,
    cached: response.cached ?? false,
    fallbackUsed: response.fallbackUsed ?? false,
    source,
  };
  if (ctx.conversationId) data.conversationId = ctx.conversationId;
  if (response.tier !== undefined) data.tier = response.tier;
  if (response.route !== undefined) data.route = response.route;
  if (response.deployment !== undefined) data.deployment = response.deployment;
  if (response.attempts !== undefined) data.attempts = response.attempts;
  if (response.costUsd !== undefined) data.costUsd = response.costUsd;
  if (ctx.agentId) data.agentId = ctx.agentId;
  if (ctx.userId) data.userId = ctx.userId;
  return data;
}

/**
 * The charge a failed model call carries (`details.charged`): a stream that ended without its
 * answer after the upstream sent text, charged by the Model Gateway for an estimate of its
 * tokens. Undefined for any other error.
 */
export function chargedOf(err: unknown): ModelResponse | undefined {
  const charged = err instanceof ClawmeshError ? err.details?.charged : undefined;
  if (typeof charged !== 'object' || charged === null) return undefined;
  const response = charged as Partial<ModelResponse>;
  return typeof response.model === 'string' && typeof response.usage === 'object' && response.usage !== null
    ? (response as ModelResponse)
    : undefined;
}

/**
 * The `model.completed` data of a failed call the gateway charged for (see {@link chargedOf}),
 * marked `estimated`; undefined when the error carries no charge.
 */
export function chargedEventData(
  err: unknown,
  ctx: CallContext,
  source: 'conversation' | 'api',
): EventTopics['model.completed'] | undefined {
  const charged = chargedOf(err);
  if (!charged) return undefined;
  const data = modelCompletedData(charged, ctx, source);
  data.estimated = true;
  return data;
}
