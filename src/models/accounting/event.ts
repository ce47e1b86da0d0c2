import type { EventTopics } from '../../bus/events.ts';
import type { CallContext } from '../../core/context.ts';
import type { ModelResponse } from '../../core/contracts/models.ts';

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
  return {
    ...(ctx.conversationId ? { conversationId: ctx.conversationId } : {}),
    model: response.model,
    inputTokens: response.usage.inputTokens,
    outputTokens: response.usage.outputTokens,
    latencyMs: response.latencyMs,
    cached: response.cached ?? false,
    fallbackUsed: response.fallbackUsed ?? false,
    ...(response.tier !== undefined ? { tier: response.tier } : {}),
    ...(response.route !== undefined ? { route: response.route } : {}),
    ...(response.deployment !== undefined ? { deployment: response.deployment } : {}),
    ...(response.attempts !== undefined ? { attempts: response.attempts } : {}),
    ...(response.costUsd !== undefined ? { costUsd: response.costUsd } : {}),
    ...(ctx.agentId ? { agentId: ctx.agentId } : {}),
    ...(ctx.userId ? { userId: ctx.userId } : {}),
    source,
  };
}
