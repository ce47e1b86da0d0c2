import type { CallContext } from '../core/context.ts';
import { traceIdOf } from '../core/context.ts';
import type { HookContext } from '../plugins/types.ts';

/** The hook context of one turn, minus the logger the runner adds per plugin. */
export type HookScope = Omit<HookContext, 'logger'>;

/** The hook scope of a turn's call context. */
export function hookScopeOf(ctx: CallContext, ids: { conversationId: string; agentId: string }): HookScope {
  return {
    requestId: ctx.requestId,
    traceId: traceIdOf(ctx),
    spanId: ctx.traceparent.slice(36, 52),
    conversationId: ids.conversationId,
    agentId: ids.agentId,
    channel: ctx.channel ?? 'unknown',
    userId: ctx.userId ?? 'unknown',
    deadline: ctx.deadline,
  };
}
