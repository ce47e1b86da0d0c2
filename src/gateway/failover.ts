import { type CallContext, remainingMs, withTimeout } from '../core/context.ts';
import type { CallMiddleware } from '../core/contract.ts';
import { ClawmeshError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { callFields, type Logger } from '../observability/logger.ts';
import { answeredByService } from '../transport/wire.ts';

/** Options of {@link conversationFailover}. */
export interface FailoverOptions {
  /**
   * The longest wait for one attempt, in milliseconds. A replica that died mid-turn never
   * answers; after this the call goes again, to whichever replica takes it. Also the longest
   * the call keeps going again while no replica can be reached (a restart takes less; a
   * service that stays down fails the call then, not at the caller's deadline).
   */
  attemptTimeoutMs: number;
  /** Pause before the first retry, in milliseconds (default 50), doubled after each (at most 1 s). */
  retryDelayMs?: number;
  logger?: Logger;
}

/** The longest pause between two tries of one message. */
const MAX_RETRY_DELAY_MS = 1000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Makes `conversation.handle` survive the loss of a conversation replica: every message gets a
 * `messageId` (kept across attempts), and a call that no replica answered (`UNAVAILABLE` from the
 * transport: no instance, a broken connection) or that outlives
 * `attemptTimeoutMs` is sent again until the caller's deadline, or, while no replica can be
 * reached at all, for `attemptTimeoutMs`. The conversation role runs a
 * message id once — a retry of a finished turn gets the stored reply, a retry of a running one
 * waits for it — so failover never gives a message two turns or two replies.
 */
export function conversationFailover(options: FailoverOptions): CallMiddleware {
  const retryDelayMs = options.retryDelayMs ?? 50;
  return (service, next) => async (method, input, ctx) => {
    if (method !== 'handle') return next(method, input, ctx);
    const message = input as { messageId?: string };
    const stable = message.messageId ? message : { ...message, messageId: `${ctx.requestId}:${newId()}` };
    let unreachableSince: number | undefined;
    for (let attempt = 1; ; attempt++) {
      const attemptCtx: CallContext = withTimeout(ctx, options.attemptTimeoutMs);
      try {
        return await next(method, stable, attemptCtx);
      } catch (err) {
        // Only when no replica answered: an UNAVAILABLE the conversation service sent back
        // (a model or skill host down) would only run the turn, and its tools, again.
        const unreachable =
          err instanceof ClawmeshError && err.code === 'UNAVAILABLE' && !answeredByService(err);
        const retry =
          unreachable ||
          (err instanceof ClawmeshError &&
            err.code === 'DEADLINE_EXCEEDED' &&
            attemptCtx.deadline < ctx.deadline);
        // The pause doubles (up to a second), so a service that stays away (down, or no URL
        // configured) costs a few tries and log lines per message, not one every 50 ms.
        const delayMs = Math.min(MAX_RETRY_DELAY_MS, retryDelayMs * 2 ** (attempt - 1));
        if (unreachable) unreachableSince ??= Date.now();
        else unreachableSince = undefined;
        const awayTooLong =
          unreachableSince !== undefined &&
          Date.now() + delayMs - unreachableSince > options.attemptTimeoutMs;
        if (!retry || remainingMs(ctx) <= delayMs || awayTooLong) throw err;
        // `rpcService`, not `service`: the logger's own `service` names this process.
        const fields = {
          ...callFields(ctx),
          rpcService: service,
          attempt,
          code: err.code,
          messageId: stable.messageId,
        };
        if (attempt === 1) options.logger?.warn(fields, 'conversation call failed; sending it again');
        else options.logger?.debug({ ...fields, err: err.message }, 'conversation call failed again');
        await sleep(delayMs);
      }
    }
  };
}
