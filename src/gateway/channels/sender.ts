import type { CallContext } from '../../core/context.ts';
import { ClawmeshError } from '../../core/errors.ts';
import { callFields, type Logger } from '../../observability/logger.ts';
import type { InboxEntry, InboxStore } from '../../store/inbox-types.ts';
import type { ChannelMetrics } from './metrics.ts';
import type { ChannelAdapter, ChannelMessage } from './types.ts';

/** Retry settings of sending (the config's `channels.delivery`). */
export interface RetrySettings {
  /** Tries of one part before the delivery fails. */
  maxAttempts: number;
  /** First backoff, doubled each try. */
  baseDelayMs: number;
  /** Longest backoff. A platform's `retry_after` is honoured as given, up to {@link MAX_RETRY_AFTER_MS}. */
  maxDelayMs: number;
}

/** The longest `retry_after` honoured; a platform asking for more fails the delivery at once. */
export const MAX_RETRY_AFTER_MS = 15 * 60_000;

/** How long one send may take. */
export const SEND_TIMEOUT_MS = 30_000;

/** What {@link sendReply} needs. */
export interface SenderDeps {
  inbox: InboxStore;
  logger: Logger;
  metrics: ChannelMetrics;
  retry: RetrySettings;
  /**
   * Aborted when the gateway stops: a reply whose turn finished is still sent, but a wait between
   * tries ends at once and the entry stays `sending` for the next start.
   */
  signal: AbortSignal;
  /** A number in [0, 1) for jitter (default `Math.random`). */
  random?: () => number;
}

/** How a send ended: every part out, recorded as failed, or interrupted by a stop (resumed at next start). */
export type SendResult = 'sent' | 'failed' | 'stopped';

/** The backoff before try `attempt + 1` (1-based `attempt`): exponential with equal jitter, capped. */
export function backoffDelay(
  attempt: number,
  settings: RetrySettings,
  random: () => number = Math.random,
): number {
  const exponential = Math.min(settings.maxDelayMs, settings.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(exponential / 2 + (random() * exponential) / 2);
}

/**
 * Sends the stored reply of an inbox entry from its first unsent part, recording progress
 * after each part so a retry or a restart never sends a part twice. Each part gets
 * `maxAttempts` tries with backoff; a 429's `retryAfterMs` replaces the backoff. A refusal that
 * cannot succeed (`retryable` false), or the last try failing, records the entry as `failed`,
 * counts it and logs an error, with the ids of `ctx` (the delivery's trace) and the conversation.
 */
export async function sendReply(
  entry: InboxEntry,
  adapter: ChannelAdapter,
  deps: SenderDeps,
  ctx: CallContext,
): Promise<SendResult> {
  const message = entry.message as ChannelMessage;
  const conversationId = entry.reply?.conversationId;
  const ids = { ...callFields(ctx), ...(conversationId ? { conversationId } : {}) };
  const parts = entry.reply?.parts ?? [];
  let attempts = entry.attempts;
  for (let index = entry.partsSent; index < parts.length; index += 1) {
    for (let partAttempt = 1; ; partAttempt += 1) {
      try {
        attempts += 1;
        // A send in flight is not aborted by a stop (the platform may have taken it): only its own timeout ends it.
        const timeout = AbortSignal.timeout(SEND_TIMEOUT_MS);
        await adapter.send(message.replyTo, parts[index]!, { index, count: parts.length }, timeout);
        await deps.inbox.progress(entry.id, { partsSent: index + 1, attempts });
        break;
      } catch (err) {
        const error = ClawmeshError.from(err, 'UNAVAILABLE');
        const retryAfterMs = (error.details?.retryAfterMs as number | undefined) ?? undefined;
        const description = describe(error, parts.length > 1 ? index : undefined);
        const tooLong = retryAfterMs !== undefined && retryAfterMs > MAX_RETRY_AFTER_MS;
        if (!error.retryable || partAttempt >= deps.retry.maxAttempts || tooLong) {
          const why = tooLong
            ? `${description} (asked to wait ${Math.round(retryAfterMs! / 1000)}s)`
            : description;
          const failure = `${why} after ${partAttempt} attempt${partAttempt === 1 ? '' : 's'}`;
          await deps.inbox.progress(entry.id, { partsSent: index, attempts, error: failure });
          await deps.inbox.fail(entry.id, failure);
          deps.metrics.failed.inc({ channel: adapter.name });
          deps.metrics.deliveries.inc({ channel: adapter.name, outcome: 'failed' });
          deps.logger.error(
            {
              ...ids,
              channel: adapter.name,
              inboxId: entry.id,
              code: error.code,
              err: error.message,
              attempts: partAttempt,
            },
            'channel reply could not be sent; recorded as failed (GET /v1/deliveries?status=failed)',
          );
          return 'failed';
        }
        deps.metrics.retries.inc({ channel: adapter.name });
        await deps.inbox.progress(entry.id, { partsSent: index, attempts, error: description });
        const delay = retryAfterMs ?? backoffDelay(partAttempt, deps.retry, deps.random);
        deps.logger.warn(
          {
            ...ids,
            channel: adapter.name,
            inboxId: entry.id,
            code: error.code,
            err: error.message,
            retryInMs: delay,
          },
          'channel reply send failed; retrying',
        );
        if (!(await sleep(delay, deps.signal))) return 'stopped';
      }
    }
  }
  return 'sent';
}

function describe(error: ClawmeshError, part: number | undefined): string {
  return `${part === undefined ? '' : `part ${part + 1}: `}${error.code}: ${error.message}`;
}

/** Waits `ms`; resolves false at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
